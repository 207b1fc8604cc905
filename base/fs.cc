#include "base/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <random>

#include "base/error.h"
#include "base/fd.h"

namespace hostd {

namespace {
void write_all(int fd, const std::string& data, const std::string& path) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno(errno, "Failed to write '" + path + "'");
        off += static_cast<size_t>(n);
    }
}
}  // namespace

namespace {
void write_and_rename(const std::string& path, const std::string& content, mode_t mode, std::optional<uid_t> uid,
                      std::optional<gid_t> gid, bool durable) {
    std::filesystem::path p(path);
    std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
    thread_local std::mt19937_64 rng{std::random_device{}()};
    // The ".tmp" suffix is what file watchers (Traefik) are told to ignore.
    std::string tmp = dir + "/." + p.filename().string() + "." + std::to_string(rng() % 1000000000) + ".tmp";
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd) throw_errno(errno, "Failed to create '" + tmp + "'");
    try {
        if (::fchmod(fd.get(), mode) < 0) throw_errno(errno, "Failed to chmod '" + tmp + "'");
        if ((uid || gid) && ::fchown(fd.get(), uid ? *uid : -1, gid ? *gid : -1) < 0)
            throw_errno(errno, "Failed to chown '" + tmp + "'");
        write_all(fd.get(), content, tmp);
        if (durable && ::fsync(fd.get()) < 0) throw_errno(errno, "Failed to fsync '" + tmp + "'");
        fd.reset();
        if (::rename(tmp.c_str(), path.c_str()) < 0) throw_errno(errno, "Failed to rename '" + tmp + "' to '" + path + "'");
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
    if (!durable) return;
    Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd) ::fsync(dfd.get());
}
}  // namespace

void write_file_atomic(const std::string& path, const std::string& content, mode_t mode, std::optional<uid_t> uid,
                       std::optional<gid_t> gid) {
    write_and_rename(path, content, mode, uid, gid, /*durable=*/true);
}

void write_file_replace(const std::string& path, const std::string& content, mode_t mode, std::optional<uid_t> uid,
                        std::optional<gid_t> gid) {
    write_and_rename(path, content, mode, uid, gid, /*durable=*/false);
}

std::string read_file(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_errno(errno, "Failed to open '" + path + "'", errno == ENOENT ? Errc::not_found : Errc::failed);
    std::string out;
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno(errno, "Failed to read '" + path + "'");
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

void make_dirs(const std::string& path, mode_t mode) {
    std::string cur;
    for (size_t i = 0; i <= path.size(); i++) {
        if (i == path.size() || (path[i] == '/' && i > 0)) {
            cur = path.substr(0, i);
            if (::mkdir(cur.c_str(), mode) < 0 && errno != EEXIST) throw_errno(errno, "Failed to create directory '" + cur + "'");
        }
    }
}

bool remove_file(const std::string& path) {
    if (::unlink(path.c_str()) == 0) return true;
    if (errno == ENOENT) return false;
    throw_errno(errno, "Failed to remove '" + path + "'");
}

bool path_exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace hostd

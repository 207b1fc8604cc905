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

std::string temp_path_beside(const std::string& path) {
    std::filesystem::path p(path);
    std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return dir + "/." + p.filename().string() + "." + std::to_string(rng() % 1000000000) + ".tmp";
}

// The one rename into place. The directory's fsync is best effort: once the rename is done the
// change is made, and a caller that failed here would skip what follows it (a proxy's reload)
// while a retry would find nothing left to change.
void rename_into_place(const std::string& tmp, const std::string& path, Sync sync) {
    if (::rename(tmp.c_str(), path.c_str()) < 0) throw_errno(errno, "Failed to rename '" + tmp + "' to '" + path + "'");
    if (sync == Sync::none) return;
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    Fd dfd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd) ::fsync(dfd.get());
}

}  // namespace

StagedFile::StagedFile(std::string path, const std::string& content, mode_t mode, std::optional<uid_t> uid,
                       std::optional<gid_t> gid, Sync sync)
    : path_(std::move(path)), tmp_(temp_path_beside(path_)), sync_(sync) {
    Fd fd(::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd) throw_errno(errno, "Failed to create '" + tmp_ + "'");
    try {
        if (::fchmod(fd.get(), mode) < 0) throw_errno(errno, "Failed to chmod '" + tmp_ + "'");
        if ((uid || gid) && ::fchown(fd.get(), uid ? *uid : -1, gid ? *gid : -1) < 0)
            throw_errno(errno, "Failed to chown '" + tmp_ + "'");
        write_all(fd.get(), content, tmp_);
        if (sync == Sync::fsync && ::fsync(fd.get()) < 0) throw_errno(errno, "Failed to fsync '" + tmp_ + "'");
    } catch (...) {
        ::unlink(tmp_.c_str());
        throw;
    }
}

StagedFile::~StagedFile() {
    if (!committed_) ::unlink(tmp_.c_str());
}

void StagedFile::commit() {
    rename_into_place(tmp_, path_, sync_);
    committed_ = true;
}

void replace_symlink(const std::string& target, const std::string& link) {
    const std::string tmp = temp_path_beside(link);
    if (::symlink(target.c_str(), tmp.c_str()) < 0) throw_errno(errno, "Failed to create the symlink '" + tmp + "'");
    try {
        rename_into_place(tmp, link, Sync::fsync);
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
}

void write_file_atomic(const std::string& path, const std::string& content, mode_t mode, std::optional<uid_t> uid,
                       std::optional<gid_t> gid) {
    StagedFile(path, content, mode, uid, gid, Sync::fsync).commit();
}

void write_file_replace(const std::string& path, const std::string& content, mode_t mode, std::optional<uid_t> uid,
                        std::optional<gid_t> gid) {
    StagedFile(path, content, mode, uid, gid, Sync::none).commit();
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

std::string read_tail(const std::string& path, size_t max) {
    std::string text;
    try {
        text = read_file(path);
    } catch (const Error&) {
        return "";
    }
    return text.size() > max ? text.substr(text.size() - max) : text;
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

void chown_tree(const std::string& path, uid_t uid, gid_t gid) {
    if (::lchown(path.c_str(), uid, gid) < 0) throw_errno(errno, "Failed to hand '" + path + "' to uid " + std::to_string(uid));
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec); !ec && it != std::filesystem::recursive_directory_iterator();
         it.increment(ec))
        if (::lchown(it->path().c_str(), uid, gid) < 0)
            throw_errno(errno, "Failed to hand '" + it->path().string() + "' to uid " + std::to_string(uid));
    if (ec) throw Error(Errc::failed, "Failed to walk '" + path + "': " + ec.message());
}

}  // namespace hostd

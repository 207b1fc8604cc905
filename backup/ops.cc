#include "backup/ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "base/error.h"
#include "base/exec.h"
#include "base/fs.h"
#include "pgconf/pgconf.h"

namespace hostd::backup {
namespace {

ExecResult run(const std::vector<std::string>& argv, RunAs as, const std::string& what) {
    ExecResult r = exec({.argv = argv, .uid = as.uid, .gid = as.gid});
    if (r.exit_code != 0) {
        std::string msg = r.err.empty() ? r.out : r.err;
        while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
        throw Error(Errc::failed, what + " failed (pgbackrest exited with " + std::to_string(r.exit_code) + "): " + msg);
    }
    return r;
}

void own_dir(const std::string& path, mode_t mode, RunAs owner) {
    if (::mkdir(path.c_str(), mode) < 0 && errno != EEXIST) throw_errno(errno, "Failed to make '" + path + "'");
    struct stat st{};
    if (::lstat(path.c_str(), &st) < 0) throw_errno(errno, "Failed to look at '" + path + "'");
    if (!S_ISDIR(st.st_mode)) throw Error(Errc::failed, "'" + path + "' is not a directory; move it away");
    if (::chown(path.c_str(), owner.uid, owner.gid) < 0 || ::chmod(path.c_str(), mode) < 0)
        throw_errno(errno, "Failed to hand '" + path + "' to uid " + std::to_string(owner.uid));
}

bool is_segment(const char* name) {
    // 24 hex digits, then pgBackRest's "-<sha1>" and compression extension.
    for (int i = 0; i < 24; i++)
        if (!isxdigit(static_cast<unsigned char>(name[i]))) return false;
    return name[24] == '-' || name[24] == '\0';
}

// dir_fd (owned here) and everything below it; dev: the repository's filesystem.
void walk(int dir_fd, dev_t dev, bool wal, RepoUsage& u, int depth) {
    DIR* d = ::fdopendir(dir_fd);
    if (!d) {
        ::close(dir_fd);
        return;
    }
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0))) continue;
        struct stat st{};
        if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        // Not into another filesystem mounted below (directories only: on overlayfs a file
        // reports the device of the layer it lives on).
        if (S_ISDIR(st.st_mode) && st.st_dev != dev) continue;
        u.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
        if (S_ISREG(st.st_mode) && wal && is_segment(e->d_name)) u.last_wal = std::max(u.last_wal, st.st_mtim.tv_sec);
        if (S_ISDIR(st.st_mode) && depth < 16) {
            int fd = ::openat(::dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0) walk(fd, dev, wal || (depth == 0 && std::string_view(e->d_name) == "archive"), u, depth + 1);
        }
    }
    ::closedir(d);
}

}  // namespace

RepoUsage repository_usage(const std::string& repo) {
    int fd = ::open(repo.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw_errno(errno, "Failed to open the repository '" + repo + "'");
    struct stat st{};
    if (::fstat(fd, &st) < 0) {
        int err = errno;
        ::close(fd);
        throw_errno(err, "Failed to look at the repository '" + repo + "'");
    }
    RepoUsage u;
    u.bytes = static_cast<uint64_t>(st.st_blocks) * 512;
    walk(fd, st.st_dev, false, u, 0);
    return u;
}

void make_repository(const std::string& repo_root, const std::string& repo, RunAs owner) {
    make_dirs(repo_root, 0711);
    if (::chmod(repo_root.c_str(), 0711) < 0) throw_errno(errno, "Failed to set the mode of '" + repo_root + "'");
    struct stat st{};
    const bool had = ::lstat(repo.c_str(), &st) == 0;
    own_dir(repo, 0700, owner);
    if (had && st.st_uid != owner.uid) {
        // A tenant's OS user made again with another uid: its repository follows it.
        chown_tree(repo, owner.uid, owner.gid);
    }
}

void stanza_create(const Stanza& s, const Options& o, RunAs as) {
    run(stanza_create_argv(s, o), as, "pgBackRest's stanza-create for '" + s.name + "'");
}

void run_backup(const Stanza& s, const Options& o, BackupType type, RunAs as) {
    run(backup_argv(s, o, type), as, "The " + std::string(to_string(type)) + " backup of '" + s.name + "'");
}

Info read_info(const Stanza& s, const Options& o, RunAs as) {
    return parse_info(run(info_argv(s, o), as, "pgBackRest's info for '" + s.name + "'").out, s.name);
}

void restore_branch(const Branch& b, const Options& o, Recovery& run) {
    const RunAs as = b.source_user;
    own_dir(b.work_dir, 0700, as);
    own_dir(b.pgdata, 0700, as);
    Stanza from = b.source;
    from.work_dir = b.work_dir;  // the source's own may be gone (it runs in its socket directory)
    // The recovering server takes logins on its socket only, from any role without a password
    // (hostd sets the admin's below); the branch's own pg_hba comes later.
    const std::string hba = b.work_dir + "/recovery_hba.conf";
    write_file_atomic(hba, "local all all trust\n", 0600, as.uid, as.gid);
    run.start(restore_argv(from, o, b.pgdata, b.target), recovery_server_argv(b.bindir, b.pgdata, b.work_dir, hba));
    try {
        const pgconf::ConnParams p{.host = b.work_dir, .port = kRecoveryPort, .user = b.admin_role,
                                   .connect_timeout_s = 5, .sslmode = "disable", .query_timeout_ms = 30000};
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(b.timeout_s);
        for (;;) {
            std::string in_recovery;
            try {
                in_recovery = pgconf::query_column(p, "SELECT pg_catalog.pg_is_in_recovery()").at(0);
            } catch (const Error&) {
                if (!run.running())
                    throw Error(Errc::failed, "The recovery of the branch stopped before it opened: " + run.output());
            }
            if (in_recovery == "f") break;
            if (std::chrono::steady_clock::now() > deadline)
                throw Error(Errc::unavailable, "The recovery of the branch did not reach its target in " +
                                                   std::to_string(b.timeout_s) + " s: " + run.output());
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        pgconf::set_role_password(p, b.admin_role, b.admin_password);
        // pgBackRest's recovery settings served their turn; the branch archives to its own stanza.
        // (One statement each: ALTER SYSTEM takes no transaction block.)
        for (const char* s : {"restore_command", "recovery_target_time", "recovery_target_action", "recovery_target"})
            pgconf::exec_sql(p, std::string("ALTER SYSTEM RESET ") + s);
    } catch (...) {
        run.stop();
        throw;
    }
    run.stop();
    if (path_exists(b.pgdata + "/postmaster.pid"))
        throw Error(Errc::failed, "The recovered branch did not shut down: " + run.output());
}

void queue_history_files(const std::string& pgdata, RunAs as) {
    const std::string wal = pgdata + "/pg_wal";
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(wal, ec)) {
        const std::string name = e.path().filename().string();
        if (!name.ends_with(".history") || !e.is_regular_file(ec)) continue;
        const std::string status = wal + "/archive_status/" + name;
        if (path_exists(status + ".ready") || path_exists(status + ".done")) continue;
        write_file_atomic(status + ".ready", "", 0600, as.uid, as.gid);
    }
    if (ec) throw_errno(ec.value(), "Failed to list " + wal);
}

}  // namespace hostd::backup

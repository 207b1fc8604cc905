// Effects on a tenant's data directory: initdb as the tenant's user, and syncfs.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/error.h"
#include "base/exec.h"
#include "base/fd.h"
#include "base/fs.h"
#include "pgconf/pgconf.h"

namespace hostd::pgconf {
namespace {

void validate(const InitdbOptions& o) {
    if (o.bindir.empty() || o.bindir.front() != '/')
        throw Error(Errc::invalid, "The PostgreSQL bindir must be an absolute path, not '" + o.bindir + "'", "bindir");
    if (o.pgdata.empty() || o.pgdata.front() != '/')
        throw Error(Errc::invalid, "The data directory must be an absolute path, not '" + o.pgdata + "'", "pgdata");
    if (o.superuser.empty()) throw Error(Errc::invalid, "The superuser name is empty", "superuser");
    if (o.password.empty()) throw Error(Errc::invalid, "The superuser password is empty", "password");
    // initdb reads one line of the password file: a line break would cut the password short.
    if (o.password.find_first_of(std::string("\n\r\0", 3)) != std::string::npos)
        throw Error(Errc::invalid, "The superuser password contains a line break or NUL", "password");
}

}  // namespace

void initdb(const InitdbOptions& opts, const ClusterSpec& spec, const Runner& run) {
    validate(opts);
    // Render first: a bad spec fails before anything is created.
    const std::string conf = render_postgresql_conf(spec);
    const std::string hba = render_pg_hba(spec);

    std::vector<std::string> argv{opts.bindir + "/initdb", "-D", opts.pgdata, "-U", opts.superuser,
                                  "--pwfile=/dev/stdin", "--auth=scram-sha-256",
                                  "--data-checksums", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
                                  "--no-instructions"};
    if (opts.wal_segsize_mb != 0) argv.push_back("--wal-segsize=" + std::to_string(opts.wal_segsize_mb));
    run({.argv = std::move(argv),
                  .uid = opts.uid,
                  .gid = opts.gid,
                  .cwd = "/",
                  // Never on argv (ps shows it) nor on disk; exec hands the stdin pipe to uid.
                  .input = opts.password + "\n"},
                 "Failed to initialise the PostgreSQL cluster in '" + opts.pgdata + "'");

    // Like initdb's own files, made durable by the caller's sync_filesystem.
    write_file_replace(opts.pgdata + "/postgresql.conf", conf, 0600, opts.uid, opts.gid);
    write_file_replace(opts.pgdata + "/pg_hba.conf", hba, 0600, opts.uid, opts.gid);
    write_file_replace(opts.pgdata + "/pg_ident.conf", render_pg_ident(spec), 0600, opts.uid, opts.gid);
}

void sync_filesystem(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) throw_errno(errno, "Failed to open '" + path + "' to sync its filesystem");
    if (::syncfs(fd.get()) < 0) throw_errno(errno, "Failed to sync the filesystem of '" + path + "'");
}

}  // namespace hostd::pgconf

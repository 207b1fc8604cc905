#include "backup/stream.h"

#include "base/error.h"

namespace hostd::backup {

std::vector<std::string> stream_argv(const Stream& s) {
    for (auto [what, path] : {std::pair{"bindir", &s.bindir}, {"socket_dir", &s.socket_dir}, {"pgdata", &s.pgdata}})
        if (path->empty() || path->front() != '/')
            throw Error(Errc::invalid, std::string("pg_basebackup's ") + what + " must be an absolute path, not '" + *path + "'",
                        what);
    if (s.port == 0) throw Error(Errc::invalid, "pg_basebackup needs the source's port", "port");
    if (s.role.empty() || s.role.front() == '-')
        throw Error(Errc::invalid, "pg_basebackup needs a role to log in as, not '" + s.role + "'", "role");
    for (char c : s.label)
        if (c == '\n' || c == '\r' || c == '\0') throw Error(Errc::invalid, "A backup label is one line", "label");
    // Options as one word each ("--opt=value"): a value can never be read as an option.
    return {s.bindir + "/pg_basebackup",
            "--pgdata=" + s.pgdata,
            "--host=" + s.socket_dir,
            "--port=" + std::to_string(s.port),
            "--username=" + s.role,
            "--no-password",
            "--wal-method=stream",
            "--checkpoint=fast",
            "--no-manifest",
            "--no-sync",
            "--label=" + s.label};
}

}  // namespace hostd::backup

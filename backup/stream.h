// A branch of "latest" from a tenant that is running: its cluster copied from its server now,
// rather than restored from its repository as of the last archived WAL. PostgreSQL's own
// pg_basebackup over the tenant's socket, logged in as pgBackRest's role (a superuser by peer;
// hostd's pg_hba lets it in for replication too), with the WAL written meanwhile streamed
// beside the files: the copy starts as a cluster of its own, with no archive to read. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hostd::backup {

struct Stream {
    std::string bindir;      // PostgreSQL's
    std::string socket_dir;  // the source's socket directory
    uint16_t port = 0;       // names its socket
    std::string role;        // the login (peer)
    std::string pgdata;      // the branch's, empty
    std::string label;       // shown in the source's pg_stat_progress_basebackup
};

// pg_basebackup's argv. An immediate checkpoint (the copy starts now, not at the source's next
// one), no manifest (nothing verifies it: the branch is started at once) and no fsync of each
// file (the caller syncs the branch's filesystem once). Throws Errc::invalid on an empty or
// relative path, port 0, or a role or label pg_basebackup would read otherwise.
std::vector<std::string> stream_argv(const Stream& s);

}  // namespace hostd::backup

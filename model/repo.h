// A tenant's repository on a repository host (another hostd with [repository]), as the tenant
// host asks for it and the repository host answers (wire/ renders and parses both).
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

namespace hostd {

// What the repository host needs to reach a tenant's cluster (through the tenant's own
// pgBackRest server on this host).
struct RepoRequest {
    std::string pg_host;  // this host's address
    uint16_t pg_server_port = 0;
    std::string pg_path, pg_socket_path;
    uint16_t pg_port = 0;
    std::string pg_user;
};

// Where the tenant's repository is: the repository host's server for it, and the certificate
// name its backups connect to the tenant's server with.
struct RepoBinding {
    uint16_t repo_host_port = 0;
    std::string repo_path;
    std::string backup_client;
};

struct RemoteRepoState {
    uint64_t bytes = 0;
    std::time_t last_wal = 0;
    std::string last_backup_error;
};

}  // namespace hostd

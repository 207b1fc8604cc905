// A tenant host's client of a repository host (another hostd with [repository]): HTTPS with
// this host's certificate (CN hostd@<host>), the repository host's checked against hostd's CA.
// The repository host keeps each tenant's pgBackRest repository behind a server of its own and
// runs its backups; this host asks it to make, back up, describe and drop a tenant's.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

#include "backup/pgbackrest.h"
#include "repohost/repohost.h"

namespace hostd {

struct RepoHostTls {
    std::string cert, key, ca;
};

class RepoHostClient {
public:
    // address: "ADDR:PORT" (backup.repo_host).
    RepoHostClient(std::string address, RepoHostTls tls);

    // The CN of the repository host's certificate (its hostd@<host>), from a TLS handshake.
    std::string peer_name() const;
    repohost::RepoView put(const std::string& tenant, const repohost::PgHost& pg) const;
    void backup(const std::string& tenant, backup::BackupType type) const;
    repohost::RepoView state(const std::string& tenant) const;  // with its usage
    void remove(const std::string& tenant) const;
    void retire(const std::string& tenant) const;  // a 404 is fine (nothing there to keep)

private:
    std::string base_;
    RepoHostTls tls_;
};

}  // namespace hostd

// The repository host's HTTPS API (hostd.toml [repository] listen): mutual TLS with hostd's CA;
// only a client certificate whose CN is "hostd@<host>" is served, and <host> (never the URL or
// the body) says whose repositories a request may touch. Routes (JSON; errors as the Unix
// socket API's): PUT, GET, DELETE /v1/repos/{tenant}; POST /v1/repos/{tenant}/backups and
// /v1/repos/{tenant}/retire.
#pragma once

#include <memory>
#include <string>

#include "model/config.h"

namespace hostd {

class RepoHost;

class RepoApi {
public:
    // Serves host on listen ("ADDR:PORT") with cert/key (PEM; this host's certificate) and
    // trusting ca_pem (at ca_path) for client certificates (hostd/peer_server.h).
    RepoApi(RepoHost& host, const std::string& listen, const std::string& cert_pem, const std::string& key_pem,
            const std::string& ca_pem, const std::string& ca_path);
    ~RepoApi();
    RepoApi(const RepoApi&) = delete;
    RepoApi& operator=(const RepoApi&) = delete;
    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// The role as hostd's main starts it: this host's certificate (CN hostd@<hostname>, SAN its
// listen address and host name) issued from the CA into <state_dir>/repohost, every kept
// repository's server started again, then the API. Empty when [repository] listen is not set.
struct RepositoryRole {
    std::unique_ptr<RepoHost> host;
    std::unique_ptr<RepoApi> api;
    RepositoryRole();
    RepositoryRole(RepositoryRole&&) noexcept;
    ~RepositoryRole();
};
RepositoryRole start_repository_role(const Config& cfg);

}  // namespace hostd

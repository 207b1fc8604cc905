#include "hostd/repohost_api.h"

#include "base/error.h"
#include "base/fs.h"
#include "hostd/log.h"
#include "hostd/peer_server.h"
#include "hostd/repohost_service.h"
#include "pgconf/tls.h"
#include "wire/repos.h"
#include "wire/wire.h"

namespace hostd {

namespace {

using wire::json;

json error_body(Errc code, const std::string& why, const std::string& field = "") { return peer_error(code, why, field); }

}  // namespace

struct RepoApi::Impl {
    RepoHost& host;
    std::unique_ptr<PeerServer> server;

    std::pair<int, json> dispatch(const std::string& client, const std::string& method, const std::string& url,
                                  const std::string& body) {
        constexpr std::string_view prefix = "/v1/repos/";
        if (!url.starts_with(prefix) || url.size() == prefix.size())
            return {404, error_body(Errc::not_found, "No such API path: " + url + " (this listener serves /v1/repos/{tenant})")};
        std::string tenant = url.substr(prefix.size());
        std::string action;
        if (auto slash = tenant.find('/'); slash != std::string::npos) {
            action = tenant.substr(slash + 1);
            tenant = tenant.substr(0, slash);
        }
        if (action.empty()) {
            if (method == "PUT") {
                repohost::validate_tenant(tenant);
                auto pg = wire::parse_repo_request(wire::parse_body(body));
                return {200, wire::render(host.put(client, tenant, pg), false)};
            }
            if (method == "GET") return {200, wire::render(host.get(client, tenant), true)};
            if (method == "DELETE") {
                host.remove(client, tenant);
                return {200, json{{"tenant", tenant}, {"deleted", true}}};
            }
            return {405, error_body(Errc::invalid, "Method " + method + " is not allowed on " + url)};
        }
        if (action == "retire") {
            if (method != "POST") return {405, error_body(Errc::invalid, "Method " + method + " is not allowed on " + url)};
            host.retire(client, tenant);
            return {200, json{{"tenant", tenant}, {"retired", true}}};
        }
        if (action == "backups") {
            if (method != "POST") return {405, error_body(Errc::invalid, "Method " + method + " is not allowed on " + url)};
            repohost::validate_tenant(tenant);
            const auto type = wire::parse_repo_backup(wire::parse_body(body));
            host.backup(client, tenant, type);
            return {200, json{{"tenant", tenant}, {"type", backup::to_string(type)}}};
        }
        return {404, error_body(Errc::not_found, "No such API path: " + url)};
    }
};

RepoApi::RepoApi(RepoHost& host, const std::string& listen, const std::string& cert_pem, const std::string& key_pem,
                 const std::string& ca_pem, const std::string& ca_path)
    : impl_(new Impl{host, nullptr}) {
    impl_->server = std::make_unique<PeerServer>(
        PeerServerOptions{.what = "repository API", .listen = listen, .field = "repository.listen", .cert_pem = cert_pem,
                          .key_pem = key_pem, .ca_pem = ca_pem, .ca_path = ca_path},
        [impl = impl_.get()](const std::string& client, const std::string& method, const std::string& url,
                             const std::string& body) { return impl->dispatch(client, method, url, body); });
}

RepoApi::~RepoApi() = default;

RepositoryRole::RepositoryRole() = default;
RepositoryRole::RepositoryRole(RepositoryRole&&) noexcept = default;
RepositoryRole::~RepositoryRole() = default;

RepositoryRole start_repository_role(const Config& cfg) {
    RepositoryRole role;
    if (cfg.repository_listen.empty()) return role;
    const std::string self = this_host_name();
    repohost::validate_host(self);
    repohost::Settings s = repo_settings(cfg, self);
    const pgconf::CaPaths ca = host_ca(cfg);
    // This host's certificate, new at each start, for its API (and as a client of other hosts'
    // APIs). It stays root's: no repository's unit is given it.
    const pgconf::PemPair pair = issue_host_certificate(cfg, self, {self, s.listen_address}, cfg.state_dir + "/repohost");
    make_dirs(s.state_dir, 0700);
    make_dirs(s.log_dir, 0700);
    role.host = std::make_unique<RepoHost>(s, self, make_real_repo_effects(cfg.user_ids, ca));
    role.host->reconcile();
    role.api = std::make_unique<RepoApi>(*role.host, cfg.repository_listen, pair.cert_pem, pair.key_pem,
                                         pgconf::ca_certificate_pem(ca), ca.cert);
    log::info("Repository host: serving https://" + cfg.repository_listen + "/v1/repos as hostd@" + self);
    return role;
}

}  // namespace hostd

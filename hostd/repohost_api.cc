#include "hostd/repohost_api.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/strings.h"
#include "hostd/log.h"
#include "hostd/repohost_service.h"
#include "pgconf/tls.h"
#include "wire/repos.h"
#include "wire/wire.h"

namespace hostd {

namespace {

using wire::json;

constexpr size_t kMaxBody = 64 * 1024;

struct Req {
    bool started = false;
    bool too_large = false;
    std::string body;
};

std::string render(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n"; }

MHD_Result send(MHD_Connection* c, int status, const json& body) {
    const std::string text = body.is_null() ? std::string() : render(body);
    MHD_Response* resp = MHD_create_response_from_buffer(text.size(), const_cast<char*>(text.data()), MHD_RESPMEM_MUST_COPY);
    if (!body.is_null()) MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_Result r = MHD_queue_response(c, static_cast<unsigned>(status), resp);
    MHD_destroy_response(resp);
    return r;
}

json error_body(Errc code, const std::string& why, const std::string& field = "") {
    return wire::render_error(Error(code, why, field));
}

// The client's host: its certificate verified against the CA, for client use, with CN
// "hostd@<host>". nullopt (and why) for anything else.
std::optional<std::string> client_host(MHD_Connection* c, std::string& why) {
    const MHD_ConnectionInfo* ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session) {
        why = "no TLS session";
        return std::nullopt;
    }
    auto session = static_cast<gnutls_session_t>(ci->tls_session);
    unsigned n = 0;
    const gnutls_datum_t* certs = gnutls_certificate_get_peers(session, &n);
    if (!certs || n == 0) {
        why = "this API takes only clients with a certificate (CN hostd@<host>) from hostd's CA";
        return std::nullopt;
    }
    unsigned status = 0;
    if (gnutls_certificate_verify_peers2(session, &status) != GNUTLS_E_SUCCESS || status != 0) {
        why = "the client certificate is not one of hostd's CA (or has expired)";
        return std::nullopt;
    }
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) != GNUTLS_E_SUCCESS) {
        why = "out of memory";
        return std::nullopt;
    }
    std::optional<std::string> host;
    char cn[256] = {};
    size_t cn_size = sizeof cn - 1;
    bool client_use = false;
    if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == GNUTLS_E_SUCCESS &&
        gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cn_size) == GNUTLS_E_SUCCESS) {
        for (unsigned i = 0;; i++) {
            char oid[128];
            size_t oid_size = sizeof oid;
            if (gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &oid_size, nullptr) < 0) break;
            if (std::strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) == 0) client_use = true;
        }
        if (client_use) host = repohost::host_of_cn(std::string_view(cn, cn_size));
    }
    gnutls_x509_crt_deinit(crt);
    if (!host)
        why = client_use ? "the client certificate's CN '" + std::string(cn, cn_size) + "' is not a host's (hostd@<host>)"
                         : "the client certificate is not for client use";
    return host;
}

}  // namespace

struct RepoApi::Impl {
    RepoHost& host;
    std::string cert, key, ca;
    Fd listen_fd;
    MHD_Daemon* daemon = nullptr;

    static MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method, const char*,
                                 const char* upload, size_t* upload_size, void** ctx) {
        auto* self = static_cast<Impl*>(cls);
        auto* req = static_cast<Req*>(*ctx);
        if (!req) {
            *ctx = req = new Req;
            return MHD_YES;
        }
        if (*upload_size) {
            if (req->body.size() + *upload_size > kMaxBody) req->too_large = true;
            if (!req->too_large) req->body.append(upload, *upload_size);
            *upload_size = 0;
            return MHD_YES;
        }
        try {
            std::string why;
            auto host = client_host(c, why);
            if (!host) return send(c, 403, error_body(Errc::refused, "Permission denied: " + why));
            if (req->too_large) return send(c, 413, error_body(Errc::invalid, "The request body is larger than 64 KiB", "body"));
            if (!is_utf8(req->body)) return send(c, 400, error_body(Errc::invalid, "The request body is not valid UTF-8", "body"));
            auto [status, body] = self->dispatch(*host, method ? method : "", url ? url : "", req->body);
            return send(c, status, body);
        } catch (const UpstreamError& e) {
            return send(c, 502, wire::render_error(e));
        } catch (const Error& e) {
            return send(c, wire::http_status(e.code()), wire::render_error(e));
        } catch (const std::exception& e) {
            log::error(std::string("Repository API: internal error: ") + e.what());
            return send(c, 500, error_body(Errc::failed, std::string("Internal error: ") + e.what()));
        }
    }

    static void on_completed(void*, MHD_Connection*, void** ctx, MHD_RequestTerminationCode) {
        delete static_cast<Req*>(*ctx);
        *ctx = nullptr;
    }

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
                 const std::string& ca_pem)
    : impl_(new Impl{host, cert_pem, key_pem, ca_pem}) {
    auto [addr, port] = repohost::parse_listen(listen, "repository.listen");
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family = AF_INET;
    if (addr.find(':') != std::string::npos) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = family = AF_INET6;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, addr.c_str(), &a->sin6_addr);
        len = sizeof *a;
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        inet_pton(AF_INET, addr.c_str(), &a->sin_addr);
        len = sizeof *a;
    }
    impl_->listen_fd = Fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!impl_->listen_fd) throw_errno(errno, "Failed to create the repository API's socket");
    int one = 1;
    ::setsockopt(impl_->listen_fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(impl_->listen_fd.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0)
        throw_errno(errno, "Failed to bind the repository API on " + listen + " (repository.listen)");
    if (::listen(impl_->listen_fd.get(), 64) < 0) throw_errno(errno, "Failed to listen on " + listen);
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        throw Error(Errc::failed, "This libmicrohttpd has no TLS: the repository API needs it (Debian's libmicrohttpd12 has)");
    impl_->daemon = MHD_start_daemon(
        MHD_USE_TLS | MHD_USE_POLL | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
        nullptr, nullptr, &Impl::on_request, impl_.get(), MHD_OPTION_LISTEN_SOCKET, impl_->listen_fd.get(),
        MHD_OPTION_HTTPS_MEM_CERT, impl_->cert.c_str(), MHD_OPTION_HTTPS_MEM_KEY, impl_->key.c_str(),
        // Clients are asked for a certificate from hostd's CA; each request checks it (403 without).
        MHD_OPTION_HTTPS_MEM_TRUST, impl_->ca.c_str(), MHD_OPTION_NOTIFY_COMPLETED, &Impl::on_completed, nullptr,
        MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!impl_->daemon) throw Error(Errc::failed, "Failed to start the repository API's HTTPS server on " + listen);
}

RepoApi::~RepoApi() {
    if (impl_->daemon) MHD_stop_daemon(impl_->daemon);
}

RepositoryRole::RepositoryRole() = default;
RepositoryRole::RepositoryRole(RepositoryRole&&) noexcept = default;
RepositoryRole::~RepositoryRole() = default;

RepositoryRole start_repository_role(const Config& cfg) {
    RepositoryRole role;
    if (cfg.repository_listen.empty()) return role;
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) < 0) throw_errno(errno, "Failed to read the host name");
    const std::string self = buf;
    repohost::validate_host(self);
    repohost::Settings s = repo_settings(cfg, self);
    const pgconf::CaPaths ca{.cert = cfg.state_dir + "/ca/ca.crt", .key = cfg.state_dir + "/ca/ca.key"};
    pgconf::ensure_ca(ca);
    // This host's certificate, new at each start, for its API (and as a client of other hosts'
    // APIs). It stays root's: no repository's unit is given it.
    const pgconf::PemPair pair =
        pgconf::issue_cert(ca, {.cn = "hostd@" + self, .names = {self, s.listen_address}, .server = true, .client = true});
    make_dirs(cfg.state_dir + "/repohost", 0700);
    make_dirs(s.state_dir, 0700);
    make_dirs(s.log_dir, 0700);
    write_file_atomic(cfg.state_dir + "/repohost/host.key", pair.key_pem, 0600);
    write_file_atomic(cfg.state_dir + "/repohost/host.crt", pair.cert_pem, 0644);
    role.host = std::make_unique<RepoHost>(s, self, make_real_repo_effects(cfg.user_ids, ca));
    role.host->reconcile();
    role.api = std::make_unique<RepoApi>(*role.host, cfg.repository_listen, pair.cert_pem, pair.key_pem,
                                         pgconf::ca_certificate_pem(ca));
    log::info("Repository host: serving https://" + cfg.repository_listen + "/v1/repos as hostd@" + self);
    return role;
}

}  // namespace hostd

#include "hostd/peer_server.h"

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
#include "hostd/repohost_service.h"  // UpstreamError
#include "repohost/repohost.h"

namespace hostd {

namespace {

using wire::json;

constexpr size_t kMaxBody = 64 * 1024;

struct Req {
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

// The client's host: its certificate verified against the CA, for client use, with CN
// "hostd@<host>". nullopt (and why) for anything else.
std::optional<std::string> client_host(MHD_Connection* c, const PeerServerOptions& o, std::string& why) {
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
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) != GNUTLS_E_SUCCESS) {
        why = "out of memory";
        return std::nullopt;
    }
    std::string cn;
    bool client_use = false;
    if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == GNUTLS_E_SUCCESS) {
        char buf[256] = {};
        size_t size = sizeof buf - 1;
        if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size) == GNUTLS_E_SUCCESS)
            cn.assign(buf, size);
        for (unsigned i = 0;; i++) {
            char oid[128];
            size_t oid_size = sizeof oid;
            if (gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &oid_size, nullptr) < 0) break;
            if (std::strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) == 0) client_use = true;
        }
    }
    gnutls_x509_crt_deinit(crt);
    unsigned status = 0;
    if (gnutls_certificate_verify_peers2(session, &status) != GNUTLS_E_SUCCESS || status != 0) {
        const auto claimed = repohost::host_of_cn(cn);
        if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA) && claimed)
            why = "the client certificate of '" + *claimed + "' is not from this host's CA: the hosts share one CA; copy " +
                  o.ca_path + " and the ca.key beside it from this host to host " + *claimed +
                  " (before its hostd first starts, or restart it there)";
        else
            why = "the client certificate is not one of hostd's CA (or has expired)";
        return std::nullopt;
    }
    std::optional<std::string> host;
    if (client_use) host = repohost::host_of_cn(cn);
    if (!host) {
        why = client_use ? "the client certificate's CN '" + cn + "' is not a host's (hostd@<host>)"
                         : "the client certificate is not for client use";
        return std::nullopt;
    }
    if (o.allowed_hosts && !o.allowed_hosts->contains(*host)) {
        why = "host '" + *host + "' " + o.allowed_hint;
        return std::nullopt;
    }
    return host;
}

}  // namespace

json peer_error(Errc code, const std::string& why, const std::string& field) {
    return wire::render_error(Error(code, why, field));
}

struct PeerServer::Impl {
    PeerServerOptions o;
    PeerDispatch dispatch;
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
            auto host = client_host(c, self->o, why);
            if (!host) return send(c, 403, peer_error(Errc::refused, "Permission denied: " + why));
            if (req->too_large) return send(c, 413, peer_error(Errc::invalid, "The request body is larger than 64 KiB", "body"));
            if (!is_utf8(req->body)) return send(c, 400, peer_error(Errc::invalid, "The request body is not valid UTF-8", "body"));
            auto [status, body] = self->dispatch(*host, method ? method : "", url ? url : "", req->body);
            return send(c, status, body);
        } catch (const UpstreamError& e) {
            return send(c, 502, wire::render_error(e));
        } catch (const Error& e) {
            return send(c, wire::http_status(e.code()), wire::render_error(e));
        } catch (const std::exception& e) {
            log::error(self->o.what + ": internal error: " + e.what());
            return send(c, 500, peer_error(Errc::failed, std::string("Internal error: ") + e.what()));
        }
    }

    static void on_completed(void*, MHD_Connection*, void** ctx, MHD_RequestTerminationCode) {
        delete static_cast<Req*>(*ctx);
        *ctx = nullptr;
    }
};

PeerServer::PeerServer(PeerServerOptions options, PeerDispatch dispatch)
    : impl_(new Impl{std::move(options), std::move(dispatch)}) {
    const PeerServerOptions& o = impl_->o;
    auto [addr, port] = repohost::parse_listen(o.listen, o.field);
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
    if (!impl_->listen_fd) throw_errno(errno, "Failed to create the " + o.what + "'s socket");
    int one = 1;
    ::setsockopt(impl_->listen_fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(impl_->listen_fd.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0)
        throw_errno(errno, "Failed to bind the " + o.what + " on " + o.listen + " (" + o.field + ")");
    if (::listen(impl_->listen_fd.get(), 64) < 0) throw_errno(errno, "Failed to listen on " + o.listen);
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        throw Error(Errc::failed, "This libmicrohttpd has no TLS: the " + o.what + " needs it (Debian's libmicrohttpd12 has)");
    impl_->daemon = MHD_start_daemon(
        MHD_USE_TLS | MHD_USE_POLL | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
        nullptr, nullptr, &Impl::on_request, impl_.get(), MHD_OPTION_LISTEN_SOCKET, impl_->listen_fd.get(),
        MHD_OPTION_HTTPS_MEM_CERT, o.cert_pem.c_str(), MHD_OPTION_HTTPS_MEM_KEY, o.key_pem.c_str(),
        // Clients are asked for a certificate from hostd's CA; each request checks it (403 without).
        MHD_OPTION_HTTPS_MEM_TRUST, o.ca_pem.c_str(), MHD_OPTION_NOTIFY_COMPLETED, &Impl::on_completed, nullptr,
        MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!impl_->daemon) throw Error(Errc::failed, "Failed to start the " + o.what + "'s HTTPS server on " + o.listen);
}

PeerServer::~PeerServer() {
    if (impl_->daemon) MHD_stop_daemon(impl_->daemon);
}

std::string this_host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) < 0) throw_errno(errno, "Failed to read the host name");
    return buf;
}

pgconf::CaPaths host_ca(const Config& cfg) {
    return {.cert = cfg.state_dir + "/ca/ca.crt", .key = cfg.state_dir + "/ca/ca.key"};
}

pgconf::PemPair issue_host_certificate(const Config& cfg, const std::string& self, const std::vector<std::string>& names,
                                       const std::string& dir) {
    const pgconf::CaPaths ca = host_ca(cfg);
    pgconf::ensure_ca(ca);
    // New at each start, for the API (and as a client of other hosts' APIs). It stays root's.
    const pgconf::PemPair pair = pgconf::issue_cert(ca, {.cn = "hostd@" + self, .names = names, .server = true, .client = true});
    make_dirs(dir, 0700);
    write_file_atomic(dir + "/host.key", pair.key_pem, 0600);
    write_file_atomic(dir + "/host.crt", pair.cert_pem, 0644);
    return pair;
}

}  // namespace hostd

// Host-to-host HTTPS with mutual TLS, shared by the repository host's API (repohost_api.h) and
// the HA peer API (ha_api.h): a listener that serves only clients presenting a certificate of
// hostd's CA for client use whose CN is "hostd@<host>" (and, when a list is given, <host> in
// it); everything else gets 403 with a JSON error saying why. The callers only dispatch: they
// get the client's host (from its certificate, never from the URL or body), the method, the
// path and the body, and answer a status and a JSON body. Also this host's certificate for
// those APIs, issued from the CA at start.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "model/config.h"
#include "pgconf/tls.h"
#include "wire/wire.h"

namespace hostd {

struct PeerServerOptions {
    std::string what;    // the API's name in errors and logs: "repository API", "HA peer API"
    std::string listen;  // "ADDR:PORT" or "[ADDR6]:PORT"
    std::string field;   // the setting that gave listen, in errors: "repository.listen"
    std::string cert_pem, key_pem;  // this host's certificate and key
    std::string ca_pem;             // the CA client certificates must be issued by
    std::string ca_path;            // where that CA lives here, for the error that says to copy it
    // The hosts served (the <host> of hostd@<host>); nullopt: any host the CA vouches for.
    std::optional<std::set<std::string>> allowed_hosts;
    std::string allowed_hint;  // why a host is not served: "is not in [ha] hosts"
};

// (status, JSON body) for (client host, method, path, body). Throwing hostd::Error answers its
// code's status (UpstreamError 502) with the error body; anything else 500.
using PeerDispatch = std::function<std::pair<int, wire::json>(const std::string& client_host, const std::string& method,
                                                              const std::string& url, const std::string& body)>;

class PeerServer {
public:
    PeerServer(PeerServerOptions options, PeerDispatch dispatch);
    ~PeerServer();
    PeerServer(const PeerServer&) = delete;
    PeerServer& operator=(const PeerServer&) = delete;
    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// A JSON error body as the Unix socket API's ({"error": {"code", "message"[, "field"]}}).
wire::json peer_error(Errc code, const std::string& why, const std::string& field = "");

// This host's name (gethostname).
std::string this_host_name();

// This host's certificate for host-to-host APIs: CN hostd@<self>, SANs names (its host name and
// addresses), server and client use, issued from the CA at <state_dir>/ca (made if missing) into
// <dir>/host.crt and host.key (root's), new at each start. Returns the pair written.
pgconf::PemPair issue_host_certificate(const Config& cfg, const std::string& self, const std::vector<std::string>& names,
                                       const std::string& dir);
pgconf::CaPaths host_ca(const Config& cfg);

}  // namespace hostd

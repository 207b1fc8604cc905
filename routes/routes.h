// The route model and its proxy writers. A route is what the proxy needs to send a
// tenant's public connections to its PostgreSQL. Rendering is pure; a writer validates
// before anything the proxy reads is replaced. Throws hostd::Error; never logs.
// A new proxy is one more RouteWriter: a renderer and an apply.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace hostd::routes {

struct Route {
    std::string tenant;         // validated tenant name
    std::string bind_address;   // e.g. "0.0.0.0"
    uint16_t public_port = 0;
    std::string backend_host;   // "127.0.0.1"
    uint16_t backend_port = 0;
    // Empty: the tenant has its own public port. Otherwise the TLS server name (SNI) that
    // selects this tenant on a port shared by all tenants; the stream stays TLS end to end
    // (passthrough) and the tenant's PostgreSQL terminates it. Traefik only.
    std::string sni_host;
};

// A DNS name as TLS clients send it in SNI (lower case).
bool is_dns_name(const std::string& name);

// Puts a whole route table in place: validated first, the running proxy untouched if that
// fails. Returns whether anything the proxy reads changed. force_reload: tell the proxy to
// reload even when nothing changed (start-up, after the proxy may have missed a change).
class RouteWriter {
public:
    virtual ~RouteWriter() = default;
    virtual bool apply(const std::vector<Route>& routes, bool force_reload) = 0;
};

// HAProxy config fragment owned by hostd, loaded with -f after the main config. Starts with a
// `defaults` section of its own (mode tcp; long client/server timeouts suited to idle
// PostgreSQL sessions; short connect timeout), so the main config's http defaults do not apply;
// then one `listen hostd_<tenant>` per route (sorted by tenant), `bind addr:port`,
// `server pg <backend> check`. Deterministic output for the same routes. Two routes for one
// tenant: Errc::invalid; two tenants on one public port: Errc::conflict (haproxy -c would
// accept it, and HAProxy's SO_REUSEPORT would then share the port between them).
std::string render_haproxy(const std::vector<Route>& routes);

struct HaproxySettings {
    std::string haproxy_bin = "/usr/sbin/haproxy";
    std::string main_config = "/etc/haproxy/haproxy.cfg";
    std::string hostd_config = "/etc/haproxy/hostd.cfg";  // the file hostd owns
};

// Renders, writes a temp file beside hostd_config, runs `haproxy -c -f main -f temp`; on
// failure removes the temp file and throws Errc::failed with haproxy's message (the running
// config is untouched); on success renames the temp file over hostd_config (atomic, fsync) and
// calls reload() (the caller reloads haproxy.service through systemd). Returns whether the file
// content changed (no change: no rename, no reload).
bool apply_haproxy(const HaproxySettings& s, const std::vector<Route>& routes, const std::function<void()>& reload);

std::unique_ptr<RouteWriter> haproxy_writer(HaproxySettings s, std::function<void()> reload);

// Traefik's file provider watches a directory and rebuilds its whole dynamic configuration
// from every file in it; one unparsable file freezes all route updates on the host. hostd
// owns the files named hostd-<tenant>.toml there (and nothing else in the directory).
struct TraefikSettings {
    std::string directory = "/etc/traefik/hostd";
    std::string entry_point = "postgres";     // the shared entry point of SNI routes
    std::string port_entry_point = "hostd-";  // port routes use entry point "<this><port>"
};

std::string traefik_file_name(const std::string& tenant);  // "hostd-<tenant>.toml"

// One tenant's dynamic configuration (TOML): a TCP router and a load-balancer service, both
// named hostd-<tenant>. With sni_host: on the shared entry point, rule HostSNI(`sni_host`),
// TLS passthrough (Traefik answers PostgreSQL's SSLRequest itself, reads the SNI of the
// ClientHello and passes the TLS stream on). Without: on the entry point of the route's
// public port, rule HostSNI(`*`) (plain TCP, whatever the client sends). Deterministic.
std::string render_traefik(const TraefikSettings& s, const Route& r);

// What hostd checks before a file may land in the watched directory: TOML that parses, and
// exactly the structure render_traefik makes (known keys, types, references, a HostSNI rule,
// host:port addresses). Throws Errc::failed naming the problem. The test suite checks
// rendered files against the official Traefik v3 file-provider JSON schema as well.
void check_traefik_file(const std::string& text);

// Makes the directory hold exactly one checked file per route: writes changed files
// atomically (temp name ending in .tmp, which the file provider ignores, then rename),
// removes hostd-*.toml files of tenants without a route and temp files a crash left. Files
// that are not hostd's are never touched. Returns whether any file changed. Traefik
// notices by itself; there is nothing to reload.
bool apply_traefik(const TraefikSettings& s, const std::vector<Route>& routes);

std::unique_ptr<RouteWriter> traefik_writer(TraefikSettings s);

// The static configuration an operator gives Traefik for hostd: the file provider watching
// the directory, and entry points: the shared one on sni_port when sni_port is set, else one
// per port of the public range. TOML, for traefik.toml.
std::string render_traefik_static(const TraefikSettings& s, const std::string& bind_address, uint16_t sni_port,
                                  uint16_t first_port, uint16_t last_port);

}  // namespace hostd::routes

// The route model and its proxy writers. A route is what the proxy needs to send a
// tenant's public connections to its PostgreSQL. Rendering is pure; apply() validates
// before anything the proxy reads is replaced. Throws hostd::Error; never logs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hostd::routes {

struct Route {
    std::string tenant;         // validated tenant name
    std::string bind_address;   // e.g. "0.0.0.0"
    uint16_t public_port = 0;
    std::string backend_host;   // "127.0.0.1"
    uint16_t backend_port = 0;
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

}  // namespace hostd::routes

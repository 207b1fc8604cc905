// The route model and its proxy writers. A route is what the proxy needs to send a
// tenant's public connections to its PostgreSQL. Rendering is pure; a writer validates
// before anything the proxy reads is replaced. Throws hostd::Error; never logs.
// A new proxy is one more RouteWriter: a renderer and an apply.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace hostd::routes {

// One member of an HA tenant (#17) as the proxy reaches it: its PostgreSQL, and the port its
// health check asks (Patroni's REST API).
struct RouteMember {
    std::string name;  // the proxy's server name: the member's host name
    std::string host;  // its address
    uint16_t port = 0;        // its PostgreSQL
    uint16_t check_port = 0;  // where check_path is asked
};

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
    // An HA tenant: no backend of its own (backend_host empty, backend_port 0) but one server
    // per member, each checked with an HTTP GET of check_path ("/primary": the member whose
    // Patroni holds the leader key answers 200) on its check_port; only members answering 200
    // get connections, and a member marked down has its sessions cut. HAProxy only.
    std::vector<RouteMember> members;
    std::string check_path;  // with members only: an absolute path of [A-Za-z0-9/_.-]
    // Hibernation (HAProxy, plain routes): waker_port non-zero gives the listener a backup
    // server, hostd's waker on 127.0.0.1:<waker_port> with the PROXY protocol v2 (the public
    // port in its header names the tenant). hibernated: the tenant's own server is in
    // maintenance, so every connection goes to the waker, which starts the tenant.
    uint16_t waker_port = 0;
    bool hibernated = false;
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
    // Public ports the proxy already listens on for no tenant: a new tenant given one of them
    // is routed without a reload. Safe to call while another thread applies.
    virtual std::set<uint16_t> idle_ports() const { return {}; }
};

// HAProxy's listeners for hostd, by public port. HAProxy 2.6 cannot add a listener (a bind)
// at run time, but it can switch a declared one's server: each public port hostd listens on is
// a `listen hostd_<port>` section with one server `pg`, either routing a tenant (server at the
// tenant's backend) or idle (server `disabled`: in maintenance; a connection is accepted and
// closed at once). Routing a tenant to an idle port, or unrouting one, is then a few commands
// on HAProxy's runtime socket instead of a reload.
struct HaproxyListener {
    std::string bind_address;
    std::optional<Route> route;  // nullopt: idle
    uint16_t waker_port = 0;     // the backup server `wake` (Route::waker_port); 0: none
};
struct HaproxyListeners {
    std::map<uint16_t, HaproxyListener> by_port;
};

// The listeners for a route table: one per route (on the route's bind address, with its waker
// port), plus idle ones on idle_ports (on bind_address, with waker_port; ports of routes among
// them are not idle). Validates the table like render_haproxy.
HaproxyListeners haproxy_listeners(const std::vector<Route>& routes, const std::string& bind_address,
                                   const std::set<uint16_t>& idle_ports, uint16_t waker_port = 0);

// One `listen hostd_<port>` section of render_haproxy's file (with a blank line before it). A
// route with members (an HA tenant) is a section with a server per member, HTTP health checks
// of check_path on each member's check_port (`option httpchk GET <path>`, `http-check expect
// status 200`, `default-server inter 1s fastinter 500ms fall 2 rise 1 on-marked-down
// shutdown-sessions`, `server <name> <host>:<port> check port <check_port>`). Validates the route.
std::string render_haproxy_listener(uint16_t port, const HaproxyListener& l);

// HAProxy config fragment owned by hostd, loaded with -f after the main config. A `global`
// section of its own (old workers' limits, the runtime socket at runtime_socket, admin level,
// root only); a `defaults` section of its own (mode tcp; long client/server timeouts suited to
// idle PostgreSQL sessions; short connect timeout), so the main config's http defaults do not
// apply; then one `listen hostd_<port>` per listener (sorted by port), `bind addr:port`,
// `server pg <backend> check`, `disabled` when idle; a comment names the tenant. Deterministic.
std::string render_haproxy(const HaproxyListeners& ls, const std::string& runtime_socket);

// The same for a route table and no idle listeners, with HaproxySettings' default socket. Two
// routes for one tenant: Errc::invalid; two tenants on one public port: Errc::conflict
// (haproxy -c would accept it, and HAProxy's SO_REUSEPORT would then share the port).
std::string render_haproxy(const std::vector<Route>& routes);

// How to go from the running listeners to a route table. Runtime commands when every route's
// port already has a listener (and the bind address is the same): for a port whose tenant
// goes or changes, `set server hostd_<port>/pg state maint` then `shutdown sessions server`
// (its open sessions are cut, as stopping the tenant's PostgreSQL cut them after a reload);
// for a port that gets a tenant, `set server ... addr <ip> port <n>` then `state ready`
// (kept in maintenance for a hibernated one); a tenant that goes to or comes back from
// hibernation: `state maint` or `state ready` alone (no session cut: the waker relays them). A
// listener whose waker port is not the route's reloads (the runtime API cannot add a server).
// Otherwise reload_because says why a reload is needed and commands is empty. next: the
// listeners after the commands (unchanged when a reload is needed). Validates the table.
// Routes with members (HA) never use the runtime API: a listener of theirs added, removed or
// changed (members, check path, bind) reloads, and reload_because names it; an unchanged one
// costs nothing, whatever the plain routes beside it do.
struct HaproxyPlan {
    std::string reload_because;  // empty: the commands do it
    std::vector<std::string> commands;
    HaproxyListeners next;
};
HaproxyPlan plan_haproxy(const HaproxyListeners& running, const std::vector<Route>& routes);

// Throws Errc::failed naming the command and HAProxy's words unless reply (what the runtime
// socket answered to command) says it was done: nothing for `state` and `shutdown`, "... changed
// from ..." or "no need to change ..." for `addr`.
void check_haproxy_reply(const std::string& command, const std::string& reply);

// One command on HAProxy's runtime (stats) socket, its reply. Throws Errc::unavailable when
// the socket cannot be reached, Errc::failed on a timeout or an I/O error, naming the socket.
std::string haproxy_runtime_command(const std::string& socket, const std::string& command, int timeout_ms = 2000);

struct HaproxySettings {
    std::string haproxy_bin = "/usr/sbin/haproxy";
    std::string main_config = "/etc/haproxy/haproxy.cfg";
    std::string hostd_config = "/etc/haproxy/hostd.cfg";  // the file hostd owns
    std::string runtime_socket = "/run/haproxy-hostd.sock";
    uint16_t waker_port = 0;  // idle listeners' backup server (HaproxyListener::waker_port)
    // Idle listeners kept after a reload, on ports of [first_port, last_port] (the public port
    // range); 0: none, every route change reloads.
    std::string bind_address = "0.0.0.0";
    uint16_t first_port = 0, last_port = 0;
    size_t idle_listeners = 0;
};

// Renders (no idle listeners), writes a temp file beside hostd_config, runs `haproxy -c -f
// main -f temp`; on failure removes the temp file and throws Errc::failed with haproxy's
// message (the running config is untouched); on success renames the temp file over
// hostd_config (atomic, fsync) and calls reload() (the caller reloads haproxy.service through
// systemd). Returns whether the file content changed (no change: no rename, no reload).
bool apply_haproxy(const HaproxySettings& s, const std::vector<Route>& routes, const std::function<void()>& reload);

// What the writer needs to change routes without a reload: send one runtime command and
// return the reply (haproxy_runtime_command on the settings' socket), and whether a port is
// free to listen on (for idle listeners). Empty: every change reloads.
struct HaproxyRuntime {
    std::function<std::string(const std::string&)> send;
    std::function<bool(uint16_t)> port_free;
    std::function<void(const std::string&)> note;  // why a change reloads instead
};

// The writer: the first apply (and a forced one) renders, checks and reloads, with up to
// idle_listeners idle listeners; later applies use plan_haproxy's commands when they suffice,
// writing the file after them so it stays equal to the running state, and reload otherwise
// (or when a command fails: the file is the whole truth, so the reload repairs any half-done
// change).
std::unique_ptr<RouteWriter> haproxy_writer(HaproxySettings s, std::function<void()> reload, HaproxyRuntime rt = {});

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

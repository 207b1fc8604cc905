// HAProxy: the route file hostd owns (pure rendering), the runtime commands that change routes
// without a reload (pure planning), and the writer that applies either.

#include <arpa/inet.h>

#include <algorithm>
#include <mutex>
#include <random>
#include <sstream>

#include "base/error.h"
#include "base/exec.h"
#include "base/fs.h"
#include "routes/detail.h"
#include "routes/routes.h"

namespace hostd::routes {
namespace {

using detail::host_port;

// The lines HAProxy marks [ALERT], without their "[ALERT]    (pid) : config : " prefix; the
// temp file's name is replaced by the file it was meant to become.
std::string haproxy_alerts(const std::string& output, const std::string& tmp, const std::string& target) {
    std::istringstream in(output);
    std::string line, out;
    while (std::getline(in, line)) {
        if (line.rfind("[ALERT]", 0) != 0) continue;
        auto pos = line.find(" : ");
        if (pos != std::string::npos) line = line.substr(pos + 3);
        if (line.rfind("config : ", 0) == 0) line = line.substr(9);
        for (size_t p; (p = line.find(tmp)) != std::string::npos;) line.replace(p, tmp.size(), target);
        if (!out.empty()) out += "; ";
        out += line;
    }
    if (out.empty()) {  // no [ALERT] lines: the whole output, on one line
        out = output;
        std::replace(out.begin(), out.end(), '\n', ' ');
        while (!out.empty() && out.back() == ' ') out.pop_back();
    }
    return out.empty() ? "no message" : out;
}

bool is_ip_literal(const std::string& a) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET, a.c_str(), buf) == 1 || ::inet_pton(AF_INET6, a.c_str(), buf) == 1;
}

std::string server_of(uint16_t port) { return "hostd_" + std::to_string(port) + "/pg"; }

// The address an idle listener's server is rendered with; it is in maintenance, so never used.
const char* const kIdleServer = "127.0.0.1:1";

bool same_backend(const Route& a, const Route& b) {
    return a.tenant == b.tenant && a.backend_host == b.backend_host && a.backend_port == b.backend_port;
}

bool same_members(const Route& a, const Route& b) {
    if (a.members.size() != b.members.size() || a.check_path != b.check_path) return false;
    for (size_t i = 0; i < a.members.size(); i++) {
        const RouteMember &x = a.members[i], &y = b.members[i];
        if (x.name != y.name || x.host != y.host || x.port != y.port || x.check_port != y.check_port) return false;
    }
    return true;
}

// Why a table needs a reload for its HA listeners (routes with members), "" if it does not: one
// added or changed (the runtime API cannot declare servers or checks), or one removed (its
// listener has no `pg` server to switch).
std::string ha_reload_reason(const HaproxyListeners& running, const std::vector<const Route*>& wanted) {
    std::map<uint16_t, const Route*> by_port;
    for (const Route* r : wanted) by_port[r->public_port] = r;
    for (const Route* r : wanted) {
        if (r->members.empty()) continue;
        auto it = running.by_port.find(r->public_port);
        const std::string what = "the HA listener of tenant '" + r->tenant + "' on port " + std::to_string(r->public_port);
        if (it == running.by_port.end() || !it->second.route || it->second.route->members.empty() ||
            it->second.route->tenant != r->tenant)
            return what + " is new";
        if (it->second.bind_address != r->bind_address || !same_members(*it->second.route, *r)) return what + " changed";
    }
    for (const auto& [port, l] : running.by_port) {
        if (!l.route || l.route->members.empty()) continue;
        auto w = by_port.find(port);
        if (w == by_port.end() || w->second->tenant != l.route->tenant || w->second->members.empty())
            return "the HA listener of tenant '" + l.route->tenant + "' on port " + std::to_string(port) + " goes";
    }
    return "";
}

std::vector<const Route*> checked_table(const std::vector<Route>& routes) {
    std::vector<const Route*> sorted = detail::validate_table(routes);
    for (const Route* r : sorted)
        if (!r->sni_host.empty())
            throw Error(Errc::invalid, "HAProxy routes each tenant by its own port; routing by host name (SNI) for '" +
                                           r->tenant + "' needs proxy.kind = \"traefik\"", "sni_host");
    return sorted;
}

}  // namespace

HaproxyListeners haproxy_listeners(const std::vector<Route>& routes, const std::string& bind_address,
                                   const std::set<uint16_t>& idle_ports, uint16_t waker_port) {
    HaproxyListeners ls;
    for (const Route* r : checked_table(routes))
        ls.by_port[r->public_port] = {.bind_address = r->bind_address, .route = *r, .waker_port = r->members.empty() ? r->waker_port : uint16_t(0)};
    for (uint16_t p : idle_ports) ls.by_port.try_emplace(p, HaproxyListener{.bind_address = bind_address, .waker_port = waker_port});
    return ls;
}

std::string render_haproxy(const HaproxyListeners& ls, const std::string& runtime_socket) {
    std::ostringstream o;
    o << "# Managed by hostd — do not edit; rewritten on every change.\n"
      << "# One `listen` section per public port, loaded after the main configuration\n"
      << "# (haproxy -f <main> -f <this file>); a version that adds or removes a section passes\n"
      << "# `haproxy -c` first and is loaded by a reload. A tenant routed to a port that has a\n"
      << "# section, or unrouted, is switched over the runtime socket instead (its server made\n"
      << "# ready or put in maintenance, no reload) and this file rewritten to match, so a reload\n"
      << "# or a restart brings back the same routes. A `disabled` server is an idle port: no\n"
      << "# tenant, a connection is accepted and closed at once.\n"
      << "\n"
      << "# Process-wide settings for PostgreSQL's long sessions. HAProxy 2.6 merges this second\n"
      << "# `global` section into the main one (checked with haproxy -c -dW); being in this file,\n"
      << "# it is validated with every reload. On reload, old workers keep serving their\n"
      << "# open sessions: they are cut only after 24h (like the idle timeouts) or once a worker\n"
      << "# has outlived 100 reloads, which bounds the number of old workers kept alive.\n"
      << "# The socket is hostd's runtime API (admin level, root only).\n"
      << "global\n"
      << "    hard-stop-after 24h\n"
      << "    mworker-max-reloads 100\n"
      << "    stats socket " << runtime_socket << " mode 600 level admin\n"
      << "\n"
      << "# Defaults of its own, so the main configuration's (often mode http) do not apply here.\n"
      << "# PostgreSQL sessions can sit idle for hours (pools, open psql sessions): the client and\n"
      << "# server timeouts are long so HAProxy does not cut them. The connect timeout is short so\n"
      << "# a dead backend shows at once; TCP keep-alives toward clients let the kernel notice\n"
      << "# clients that vanished without closing.\n"
      << "defaults\n"
      << "    mode tcp\n"
      << "    log global\n"
      << "    option tcplog\n"
      << "    option clitcpka\n"
      << "    timeout connect 5s\n"
      << "    timeout client 24h\n"
      << "    timeout server 24h\n"
      << "# No health checks: each listener has one server, so a check has nothing to fail over to,\n"
      << "# and every check is a TCP connection for which PostgreSQL forks a process (on a host of\n"
      << "# 500 idle tenants, checks every 30s were a quarter of its idle CPU). hostd watches its\n"
      << "# tenants itself (units, /metrics); a client sent to a backend that is down is refused\n"
      << "# after HAProxy's connect retries, as it was before a check marked it down.\n";
    if (ls.by_port.empty()) o << "\n# No routes.\n";
    for (const auto& [port, l] : ls.by_port) o << render_haproxy_listener(port, l);
    return o.str();
}

std::string render_haproxy_listener(uint16_t port, const HaproxyListener& l) {
    if (l.route) detail::validate(*l.route);
    std::ostringstream o;
    o << "\n"
      << "listen hostd_" << port << "\n";
    if (!l.route || l.route->members.empty()) {
        o << "    # " << (l.route ? "tenant " + l.route->tenant : std::string("idle")) << "\n"
          << "    bind " << host_port(l.bind_address, port) << "\n"
          << "    server pg " << (l.route ? host_port(l.route->backend_host, l.route->backend_port) : kIdleServer)
          << (l.route && !l.route->hibernated ? "" : " disabled") << "\n";
        if (l.waker_port)
            o << "    # While pg is in maintenance (a hibernated tenant, or none), hostd's waker takes the connection.\n"
              << "    server wake 127.0.0.1:" << l.waker_port << " backup send-proxy-v2\n";
        return o.str();
    }
    // An HA tenant: unlike a plain tenant's, these servers are checked (the file's "No health
    // checks" is about PostgreSQL's forks): the check asks each member's Patroni over HTTP, which
    // answers from its own state, forks nothing, about once a second per member. A member that
    // stops answering 200 (a demoted primary) is marked down after 2 checks and its sessions are
    // cut, so no client stays on it; a member that answers again is up after 1.
    const Route& r = *l.route;
    o << "    # tenant " << r.tenant << " (HA): the member answering GET " << r.check_path << " with 200\n"
      << "    # Checked, unlike single-host tenants: each member's Patroni answers from its own state,\n"
      << "    # no PostgreSQL process is forked for it.\n"
      << "    bind " << host_port(l.bind_address, port) << "\n"
      << "    mode tcp\n"
      << "    option httpchk GET " << r.check_path << "\n"
      << "    http-check expect status 200\n"
      << "    default-server inter 1s fastinter 500ms fall 2 rise 1 on-marked-down shutdown-sessions\n";
    for (const auto& m : r.members)
        o << "    server " << m.name << " " << host_port(m.host, m.port) << " check port " << m.check_port << "\n";
    return o.str();
}

std::string render_haproxy(const std::vector<Route>& routes) {
    return render_haproxy(haproxy_listeners(routes, "", {}), HaproxySettings{}.runtime_socket);
}

HaproxyPlan plan_haproxy(const HaproxyListeners& running, const std::vector<Route>& routes) {
    HaproxyPlan plan{.next = running};
    std::map<uint16_t, const Route*> wanted;
    const std::vector<const Route*> table = checked_table(routes);
    plan.reload_because = ha_reload_reason(running, table);
    if (!plan.reload_because.empty()) return plan;
    for (const Route* r : table) {
        if (!r->members.empty()) continue;  // an HA listener as it runs (ha_reload_reason)
        auto it = running.by_port.find(r->public_port);
        if (it == running.by_port.end()) {
            plan.reload_because = "no listener on port " + std::to_string(r->public_port) + " for tenant '" + r->tenant + "'";
            return plan;
        }
        if (it->second.bind_address != r->bind_address) {
            plan.reload_because = "tenant '" + r->tenant + "' binds " + r->bind_address + ", the listener on port " +
                                  std::to_string(r->public_port) + " " + it->second.bind_address;
            return plan;
        }
        if (it->second.waker_port != r->waker_port) {  // `add server` cannot make a backup server
            plan.reload_because = "the listener on port " + std::to_string(r->public_port) +
                                  (r->waker_port ? " has no waker server for hibernation" : " has a waker server no longer wanted");
            return plan;
        }
        if (!is_ip_literal(r->backend_host)) {  // `set server addr` takes an IP address only
            plan.reload_because = "the backend of tenant '" + r->tenant + "' (" + r->backend_host + ") is not an IP address";
            return plan;
        }
        wanted[r->public_port] = r;
    }
    for (auto& [port, l] : plan.next.by_port) {
        if (l.route && !l.route->members.empty()) continue;  // unchanged (ha_reload_reason)
        auto w = wanted.find(port);
        const Route* to = w == wanted.end() ? nullptr : w->second;
        if (!l.route && !to) continue;
        const std::string srv = server_of(port);
        if (l.route && to && same_backend(*l.route, *to)) {
            // Into or out of hibernation: the tenant's server in maintenance or back; the waker's
            // relayed sessions go on.
            if (l.route->hibernated != to->hibernated)
                plan.commands.push_back("set server " + srv + (to->hibernated ? " state maint" : " state ready"));
            l.route = *to;
            continue;
        }
        if (l.route) {
            plan.commands.push_back("set server " + srv + " state maint");
            plan.commands.push_back("shutdown sessions server " + srv);
        }
        if (to) {
            plan.commands.push_back("set server " + srv + " addr " + to->backend_host + " port " +
                                    std::to_string(to->backend_port));
            if (!to->hibernated) plan.commands.push_back("set server " + srv + " state ready");
        }
        l.route = to ? std::optional<Route>(*to) : std::nullopt;
    }
    return plan;
}

void check_haproxy_reply(const std::string& command, const std::string& reply) {
    std::string r = reply;
    while (!r.empty() && (r.back() == '\n' || r.back() == ' ')) r.pop_back();
    const bool addr = command.find(" addr ") != std::string::npos;
    const bool done = addr ? (r.find("changed from") != std::string::npos || r.rfind("no need to change", 0) == 0) : r.empty();
    if (done) return;
    std::replace(r.begin(), r.end(), '\n', ' ');
    throw Error(Errc::failed, "HAProxy refused '" + command + "': " + (r.empty() ? "no reply" : r));
}

namespace {

// Writes content over s.hostd_config if it differs (or force), after `haproxy -c` accepted it,
// then reloads. Returns whether the file changed.
bool install(const HaproxySettings& s, const std::string& content, const std::function<void()>& reload, bool force) {
    // Checked before it replaces the live file: a file HAProxy rejects never goes into place.
    StagedFile staged(s.hostd_config, content);

    // Not -q: with it HAProxy 2.6 also keeps its [ALERT] lines to itself.
    ExecResult r = exec({.argv = {s.haproxy_bin, "-c", "-f", s.main_config, "-f", staged.temp_path()}});
    if (r.exit_code != 0)
        throw Error(Errc::failed, "HAProxy rejected the new configuration: " +
                                      haproxy_alerts(r.err + r.out, staged.temp_path(), s.hostd_config));

    std::string current;
    bool have_current = true;
    try {
        current = read_file(s.hostd_config);
    } catch (const Error& e) {
        if (e.code() != Errc::not_found) throw;
        have_current = false;
    }
    if (have_current && current == content) {  // the staged file is removed unused
        if (force) reload();
        return false;
    }
    staged.commit();
    reload();
    return true;
}

// The ports of the `listen hostd_<port>` sections of the file as it is (what HAProxy runs
// when it was loaded last; also after runtime changes, since the file follows them), none if
// it cannot be read. idle_only: only sections whose server is `disabled`.
// word among line's space-separated words ("server pg 127.0.0.1:1 disabled", and the
// "... disabled check ..." of files written before the health checks went).
bool has_word(const std::string& line, const std::string& word) {
    std::istringstream in(line);
    for (std::string w; in >> w;)
        if (w == word) return true;
    return false;
}

std::set<uint16_t> listed_ports(const std::string& path, bool idle_only = false) {
    std::set<uint16_t> out;
    std::string text;
    try {
        text = read_file(path);
    } catch (const Error&) {
        return out;
    }
    std::istringstream in(text);
    std::optional<uint16_t> section;
    for (std::string line; std::getline(in, line);) {
        const std::string prefix = "listen hostd_";
        if (line.rfind("listen ", 0) == 0) section.reset();
        // kIdleServer too: a hibernated tenant's server is `disabled` as well, and not idle.
        if (section && idle_only && line.find(" server pg ") != std::string::npos && has_word(line, "disabled") &&
            has_word(line, kIdleServer))
            out.insert(*section);
        if (line.rfind(prefix, 0) != 0) continue;
        const std::string num = line.substr(prefix.size());
        if (num.empty() || num.size() > 5 || !std::all_of(num.begin(), num.end(), ::isdigit)) continue;
        const unsigned long p = std::stoul(num);
        if (p == 0 || p > 65535) continue;
        section = static_cast<uint16_t>(p);
        if (!idle_only) out.insert(*section);
    }
    return out;
}

}  // namespace

bool apply_haproxy(const HaproxySettings& s, const std::vector<Route>& routes, const std::function<void()>& reload) {
    return install(s, render_haproxy(haproxy_listeners(routes, s.bind_address, {}), s.runtime_socket), reload, false);
}

namespace {
class HaproxyWriter final : public RouteWriter {
public:
    HaproxyWriter(HaproxySettings s, std::function<void()> reload, HaproxyRuntime rt)
        : s_(std::move(s)), reload_(std::move(reload)), rt_(std::move(rt)) {}

    bool apply(const std::vector<Route>& routes, bool force_reload) override {
        std::lock_guard g(apply_mu_);
        std::optional<HaproxyListeners> running = get_running();
        bool force = force_reload;
        if (running && !force_reload && rt_.send) {
            HaproxyPlan plan = plan_haproxy(*running, routes);
            if (plan.reload_because.empty()) {
                if (plan.commands.empty()) return false;
                // Written beside the live file first: a full disk fails here, before any change.
                // No `haproxy -c`: the sections are the ones last checked, and HAProxy itself
                // takes or refuses each new server address below.
                StagedFile staged(s_.hostd_config, render_haproxy(plan.next, s_.runtime_socket));
                try {
                    for (const std::string& c : plan.commands) check_haproxy_reply(c, rt_.send(c));
                    set_running(plan.next);
                    staged.commit();
                    return true;
                } catch (const Error& e) {
                    // The file is the whole truth: a reload into it repairs a half-done change.
                    if (rt_.note) rt_.note(std::string("Reloading HAProxy: its runtime API failed: ") + e.what());
                    force = true;
                }
            } else if (rt_.note) {
                // Why this change reloads (idle listeners used up, a new bind address, ...).
                rt_.note("Reloading HAProxy: " + plan.reload_because);
            }
        }
        // Meanwhile idle_ports() still gives the listeners HAProxy has: they are kept first
        // (idle_for), so a create that takes one of them now still finds it after the reload.
        HaproxyListeners next = haproxy_listeners(routes, s_.bind_address, idle_for(routes, running), s_.waker_port);
        try {
            bool changed = install(s_, render_haproxy(next, s_.runtime_socket), reload_, force);
            set_running(std::move(next));
            return changed;
        } catch (...) {
            set_running(std::nullopt);  // what runs is not known now: the next change reloads
            throw;
        }
    }

    std::set<uint16_t> idle_ports() const override {
        std::lock_guard g(state_mu_);
        // Before this writer's first change (hostd just started), the file says what runs.
        if (!running_) return listed_ports(s_.hostd_config, /*idle_only=*/true);
        std::set<uint16_t> out;
        for (const auto& [p, l] : running_->by_port)
            if (!l.route) out.insert(p);
        return out;
    }

private:
    // Up to idle_listeners ports for idle listeners: those HAProxy listens on now (known, or
    // read from the file) first, then free ports of the range from a random start (random like
    // the ports given to tenants, so two hosts' guesses do not collide).
    std::set<uint16_t> idle_for(const std::vector<Route>& routes, const std::optional<HaproxyListeners>& running) const {
        std::set<uint16_t> out;
        if (s_.idle_listeners == 0 || s_.first_port == 0 || s_.last_port < s_.first_port) return out;
        std::set<uint16_t> routed;
        for (const auto& r : routes) routed.insert(r.public_port);
        auto usable = [&](uint16_t p) { return p >= s_.first_port && p <= s_.last_port && !routed.count(p); };
        std::set<uint16_t> held;
        if (running)
            for (const auto& [p, l] : running->by_port) held.insert(p);
        else
            held = listed_ports(s_.hostd_config);
        for (uint16_t p : held)
            if (out.size() < s_.idle_listeners && usable(p)) out.insert(p);
        if (!rt_.port_free) return out;
        thread_local std::mt19937 rng{std::random_device{}()};
        const uint32_t n = uint32_t(s_.last_port) - s_.first_port + 1;
        const uint32_t start = std::uniform_int_distribution<uint32_t>(0, n - 1)(rng);
        for (uint32_t i = 0; i < n && out.size() < s_.idle_listeners; i++) {
            auto p = static_cast<uint16_t>(s_.first_port + (start + i) % n);
            if (usable(p) && !held.count(p) && rt_.port_free(p)) out.insert(p);
        }
        return out;
    }

    std::optional<HaproxyListeners> get_running() const {
        std::lock_guard g(state_mu_);
        return running_;
    }
    void set_running(std::optional<HaproxyListeners> ls) {
        std::lock_guard g(state_mu_);
        running_ = std::move(ls);
    }

    HaproxySettings s_;
    std::function<void()> reload_;
    HaproxyRuntime rt_;
    std::mutex apply_mu_;
    mutable std::mutex state_mu_;
    std::optional<HaproxyListeners> running_;  // what HAProxy runs, once this writer loaded it
};
}  // namespace

std::unique_ptr<RouteWriter> haproxy_writer(HaproxySettings s, std::function<void()> reload, HaproxyRuntime rt) {
    return std::make_unique<HaproxyWriter>(std::move(s), std::move(reload), std::move(rt));
}

}  // namespace hostd::routes

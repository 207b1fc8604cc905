#include "hostd/ha_api.h"

#include <pwd.h>
#include <systemd/sd-login.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "base/error.h"
#include "base/fs.h"
#include "hostd/log.h"
#include "hostd/peer_server.h"
#include "hostd/peers.h"
#include "repohost/repohost.h"
#include "units/sockets.h"
#include "units/systemd.h"

namespace hostd {

std::pair<int, wire::json> ha_dispatch(const std::string& self, const std::string& client, const std::string& method,
                                       const std::string& url, const std::string& body, PeerHandler* handler) {
    constexpr std::string_view prefix = "/v1/ha/";
    const auto no_path = [&] {
        return std::pair{404, peer_error(Errc::not_found, "No such API path: " + url +
                                                              " (this listener serves /v1/ha/{tenant}/member, prepare, start, abort, remove, update, password, limits)")};
    };
    if (!url.starts_with(prefix)) return no_path();
    const std::string rest = url.substr(prefix.size());
    const auto slash = rest.find('/');
    if (slash == std::string::npos || slash == 0) return no_path();
    const std::string tenant = rest.substr(0, slash), verb = rest.substr(slash + 1);
    static const std::set<std::string> verbs = {"member", "prepare", "start", "abort", "remove", "update", "password", "limits"};
    if (!verbs.count(verb)) return no_path();
    const std::string want = verb == "member" ? "GET" : "POST";
    if (method != want) return {405, peer_error(Errc::invalid, "Method " + method + " is not allowed on " + url + " (" + want + ")")};
    try {
        repohost::validate_tenant(tenant);
        const wire::json b = wire::parse_body(body);
        const auto none = [&] {
            return std::pair{404, peer_error(Errc::not_found, "HA host '" + self + "' has no member of tenant '" + tenant + "'")};
        };
        if (verb == "member") {
            auto m = handler ? handler->ha_member(tenant) : std::nullopt;
            if (!m) return none();
            return {200, {{"record_state", m->record_state}, {"create_id", m->create_id}, {"hosts", m->hosts}}};
        }
        if (!handler) return none();
        log::info("HA: " + client + " asks " + verb + " of tenant '" + tenant + "'");
        if (verb == "prepare") return {200, {{"member", wire::render(handler->ha_prepare(tenant, wire::parse_ha_prepare(b)))}}};
        if (verb == "start" || verb == "update") {
            if (!b.contains("ha")) throw Error(Errc::invalid, "'ha' is missing", "ha");
            const HaSpec ha = wire::parse_ha_spec(b["ha"]);
            verb == "start" ? handler->ha_start(tenant, ha) : handler->ha_update(tenant, ha);
        } else if (verb == "password") {
            if (!b.contains("password") || !b["password"].is_string()) throw Error(Errc::invalid, "'password' must be a string", "password");
            handler->ha_password(tenant, b["password"].get<std::string>());
        } else if (verb == "limits") {
            if (!b.contains("create_id") || !b["create_id"].is_string()) throw Error(Errc::invalid, "'create_id' must be a string", "create_id");
            if (!b.contains("limits") || !b["limits"].is_object()) throw Error(Errc::invalid, "'limits' must be an object", "limits");
            handler->ha_limits(tenant, b["create_id"].get<std::string>(), wire::parse_limits(b["limits"]));
        } else if (verb == "abort") {
            if (!b.contains("create_id") || !b["create_id"].is_string()) throw Error(Errc::invalid, "'create_id' must be a string", "create_id");
            handler->ha_abort(tenant, b["create_id"].get<std::string>());
        } else {
            handler->ha_remove(tenant, b.value("purge", false));
        }
        return {200, wire::json::object()};
    } catch (const Error& e) {
        return {wire::http_status(e.code()), peer_error(e.code(), e.what(), e.field())};
    }
}

ha::EtcdMember etcd_member(const Config& cfg, const std::string& self) {
    ha::EtcdMember m;
    m.name = self;
    m.address = cfg.ha_address;
    m.client_port = cfg.ha_etcd_client_port;
    m.peer_port = cfg.ha_etcd_peer_port;
    for (const auto& h : ha_fleet(cfg))
        if (ha_etcd_host(cfg, h.name)) m.initial_cluster[h.name] = h.address;
    m.new_cluster = true;
    m.enable_v2 = true;  // Patroni 3.0.2 speaks v2 (ha.h EtcdApi; README: High availability)
    const std::string dir = kEtcdTlsDir;
    m.client_tls = {.cert_file = dir + "/client.crt", .key_file = dir + "/client.key", .ca_file = dir + "/ca.crt"};
    m.peer_tls = {.cert_file = dir + "/peer.crt", .key_file = dir + "/peer.key", .ca_file = dir + "/ca.crt"};
    return m;
}

EtcdAdminOptions etcd_admin_options(const Config& cfg, const std::string& self) {
    EtcdAdminOptions o;
    auto endpoint = [&](const std::string& addr) {
        return ha::etcd_endpoints({{addr, cfg.ha_etcd_client_port}});
    };
    if (ha_etcd_host(cfg, self)) o.endpoints.push_back(endpoint("127.0.0.1"));
    for (const auto& h : ha_fleet(cfg))
        if (ha_etcd_host(cfg, h.name) && h.name != self) o.endpoints.push_back(endpoint(h.address));
    const std::string dir = cfg.state_dir + "/ha";
    o.cert = dir + "/etcd-root.crt";
    o.key = dir + "/etcd-root.key";
    o.ca = host_ca(cfg).cert;
    return o;
}

namespace {

struct Holder {
    std::string unit;  // "" when the process is in no unit
    std::string comm;
    pid_t pid = 0;
};

// Who listens on port, other than etcd's own unit.
std::optional<Holder> port_holder(uint16_t port) {
    for (const auto& l : units::tcp_listeners()) {
        if (l.port != port) continue;
        for (pid_t pid : units::socket_holders(l.inode)) {
            Holder h{.pid = pid};
            char* unit = nullptr;
            if (sd_pid_get_unit(pid, &unit) >= 0 && unit) h.unit = unit;
            std::free(unit);
            if (h.unit == kEtcdUnit) continue;
            try {
                h.comm = read_file("/proc/" + std::to_string(pid) + "/comm");
                if (!h.comm.empty() && h.comm.back() == '\n') h.comm.pop_back();
            } catch (const Error&) {
            }
            return h;
        }
    }
    return std::nullopt;
}

}  // namespace

void start_etcd(const Config& cfg, const std::string& self, const pgconf::PemPair& host_cert) {
    const ha::EtcdMember member = etcd_member(cfg, self);
    const std::string text = ha::render_etcd(member);
    for (auto [port, key] : {std::pair{cfg.ha_etcd_client_port, "ha.etcd_client_port"}, std::pair{cfg.ha_etcd_peer_port, "ha.etcd_peer_port"}}) {
        const auto h = port_holder(port);
        if (!h) continue;
        const std::string who = (h->unit.empty() ? "process '" + h->comm + "'" : h->unit + " ('" + h->comm + "'") +
                                " pid " + std::to_string(h->pid) + (h->unit.empty() ? "" : ")");
        throw Error(Errc::conflict,
                    "Port " + std::to_string(port) + " ('" + key + "') is held by " + who + ": hostd does not start " + kEtcdUnit +
                        " beside it. " +
                        (h->unit.empty() ? std::string("Stop that process, or move etcd's ports in [ha], then restart hostd")
                                         : "Stop and mask that unit (systemctl mask --now " + h->unit +
                                               "; Debian's etcd-server enables etcd.service), then restart hostd"));
    }
    std::string old;
    try {
        old = read_file(kEtcdConfig);
    } catch (const Error&) {
    }
    make_dirs("/etc/hostd", 0755);
    // etcd's TLS files, its user's (its unit cannot read hostd's state directory).
    const passwd* etcd = ::getpwnam("etcd");
    if (!etcd) throw Error(Errc::failed, "There is no user 'etcd': install Debian's etcd-server (make deps), then restart hostd");
    make_dirs(kEtcdTlsDir, 0750);
    if (::chown(kEtcdTlsDir, 0, etcd->pw_gid) < 0) throw_errno(errno, std::string("Failed to chown ") + kEtcdTlsDir);
    const pgconf::CaPaths ca = host_ca(cfg);
    const pgconf::PemPair peer = pgconf::issue_cert(
        ca, {.cn = ha::kEtcdPeerCn, .names = {self, cfg.ha_address}, .server = true, .client = true});
    const uid_t u = etcd->pw_uid;
    const gid_t g = etcd->pw_gid;
    write_file_atomic(member.client_tls.ca_file, pgconf::ca_certificate_pem(ca), 0644, u, g);
    write_file_atomic(member.client_tls.key_file, host_cert.key_pem, 0600, u, g);
    write_file_atomic(member.client_tls.cert_file, host_cert.cert_pem, 0644, u, g);
    write_file_atomic(member.peer_tls.key_file, peer.key_pem, 0600, u, g);
    write_file_atomic(member.peer_tls.cert_file, peer.cert_pem, 0644, u, g);
    if (old != text) write_file_atomic(kEtcdConfig, text, 0644);
    auto sd = units::Systemd::connect();
    const auto st = sd.status(kEtcdUnit);
    if (st.load_state == "not-found")
        throw Error(Errc::failed, std::string(kEtcdUnit) + " is not installed (cmake --install ships it with hostd)");
    sd.enable(kEtcdUnit);
    const bool running = st.active_state == "active" || st.active_state == "activating" || st.active_state == "reloading";
    if (running && old == text) return;
    sd.reset_failed(kEtcdUnit);
    // A member of a new cluster reports ready only once a majority has started: never wait here.
    sd.enqueue(running ? "RestartUnit" : "StartUnit", kEtcdUnit);
    log::info(std::string(running ? "Restarting " : "Starting ") + kEtcdUnit + " (" + kEtcdConfig + ": member '" + self +
              "' of " + std::to_string(member.initial_cluster.size()) + ", https)");
}

struct HaRole::State {
    std::unique_ptr<PeerServer> api;
    std::unique_ptr<Peers> peers;
    std::unique_ptr<EtcdAdmin> etcd;
    std::mutex mu;
    std::condition_variable cv;
    bool stop = false;
    std::thread hello;
    std::thread auth;

    ~State() {
        {
            std::lock_guard lock(mu);
            stop = true;
        }
        cv.notify_all();
        if (hello.joinable()) hello.join();
        if (auth.joinable()) auth.join();
        api.reset();
    }

    // etcd's auth on (EtcdAdmin::ensure_auth), retried every 3 s while etcd is not there yet (a
    // new cluster waits for a majority of its members): every hostd does it at start, racing
    // safely. Logged once done, and the last failure after 5 minutes (then every 5 minutes).
    void ensure_auth() {
        auto next_warning = std::chrono::steady_clock::now() + std::chrono::minutes(5);
        for (;;) {
            try {
                etcd->ensure_auth();
                log::info("HA: etcd's auth is as hostd wants it (tenants' certificates reach their own scope only)");
                return;
            } catch (const std::exception& e) {
                if (std::chrono::steady_clock::now() >= next_warning) {
                    log::warning(std::string("HA: etcd's auth not checked yet: ") + e.what());
                    next_warning = std::chrono::steady_clock::now() + std::chrono::minutes(5);
                }
            }
            std::unique_lock lock(mu);
            if (cv.wait_for(lock, std::chrono::seconds(3), [&] { return stop; })) return;
        }
    }

    // Every other host once, retried for a while as the fleet starts: logged when it serves this
    // host, when its certificate is from another CA (at once: a retry cannot mend that), or
    // when it could not be reached within the window.
    void greet(std::vector<std::string> others) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
        std::map<std::string, std::string> last;
        while (!others.empty()) {
            std::vector<std::string> again;
            for (const auto& h : others) {
                try {
                    peers->hello(h);
                    log::info("HA: host '" + h + "' serves this host's peer requests");
                } catch (const Error& e) {
                    const std::string why = e.what();
                    if (e.code() != Errc::unavailable || why.find("not from this host's CA") != std::string::npos) {
                        log::error("HA: " + why);
                        continue;
                    }
                    last[h] = why;
                    again.push_back(h);
                }
            }
            others = std::move(again);
            std::unique_lock lock(mu);
            if (others.empty() || cv.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(3)),
                                                [&] { return stop; }))
                return;
            if (std::chrono::steady_clock::now() >= deadline) {
                for (const auto& h : others) log::warning("HA: " + last[h]);
                return;
            }
        }
    }
};

HaRole::HaRole() = default;
HaRole::HaRole(HaRole&&) noexcept = default;
HaRole::~HaRole() = default;
EtcdAdmin* HaRole::etcd_admin() const { return state ? state->etcd.get() : nullptr; }

HaRole start_ha_role(const Config& cfg, PeerHandler* handler) {
    HaRole role;
    if (!ha_on(cfg)) return role;
    const std::string self = ha_self(cfg, this_host_name());
    role.state = std::make_unique<HaRole::State>();
    const std::string dir = cfg.state_dir + "/ha";
    // Its names: the peer API's clients reach it at the address; etcd's at the address and
    // 127.0.0.1 (its client certificate).
    const pgconf::PemPair pair = issue_host_certificate(cfg, self, {self, cfg.ha_address, "127.0.0.1"}, dir);
    if (ha_etcd_host(cfg, self)) {
        try {
            start_etcd(cfg, self, pair);
        } catch (const std::exception& e) {
            log::error(std::string("HA: etcd not started: ") + e.what());
        }
    }
    {
        const EtcdAdminOptions o = etcd_admin_options(cfg, self);
        const pgconf::PemPair root = issue_etcd_root_cert(host_ca(cfg));
        write_file_atomic(o.key, root.key_pem, 0600);
        write_file_atomic(o.cert, root.cert_pem, 0644);
        role.state->etcd = make_real_etcd_admin(o);
        role.state->auth = std::thread([st = role.state.get()] { st->ensure_auth(); });
    }
    std::set<std::string> names;
    std::vector<std::string> others;
    for (const auto& h : ha_fleet(cfg)) {
        names.insert(h.name);
        if (h.name != self) others.push_back(h.name);
    }
    const std::string addr = cfg.ha_address.find(':') != std::string::npos ? "[" + cfg.ha_address + "]" : cfg.ha_address;
    const std::string listen = addr + ":" + std::to_string(cfg.ha_api_port);
    const pgconf::CaPaths ca = host_ca(cfg);
    role.state->api = std::make_unique<PeerServer>(
        PeerServerOptions{.what = "HA peer API", .listen = listen, .field = "ha.address", .cert_pem = pair.cert_pem,
                          .key_pem = pair.key_pem, .ca_pem = pgconf::ca_certificate_pem(ca), .ca_path = ca.cert,
                          .allowed_hosts = names, .allowed_hint = "is not one of this host's [ha] hosts"},
        [self, handler](const std::string& client, const std::string& method, const std::string& url, const std::string& body) {
            return ha_dispatch(self, client, method, url, body, handler);
        });
    role.state->peers = make_real_peers(cfg, dir);
    log::info("HA: serving https://" + listen + "/v1/ha as hostd@" + self + " for " + std::to_string(names.size()) + " hosts");
    if (!others.empty()) role.state->hello = std::thread([st = role.state.get(), others] { st->greet(others); });
    return role;
}

}  // namespace hostd

#include "model/tenant.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "base/error.h"
#include "base/size.h"
#include "ha/plan.h"
#include "model/layout.h"
#include "model/views.h"
#include "pgconf/pgconf.h"

namespace hostd {

std::string_view to_string(TenantState s) {
    switch (s) {
    case TenantState::creating: return "creating";
    case TenantState::ready: return "ready";
    case TenantState::deleting: return "deleting";
    case TenantState::detached: return "detached";
    }
    return "creating";
}

std::optional<TenantState> tenant_state_from(std::string_view s) {
    for (auto st : {TenantState::creating, TenantState::ready, TenantState::deleting, TenantState::detached})
        if (to_string(st) == s) return st;
    return std::nullopt;
}

void validate_name(std::string_view n) {
    auto bad = [](const std::string& why) { throw Error(Errc::invalid, "Invalid tenant name: " + why, "name"); };
    if (n.empty()) bad("it is empty");
    if (n.size() > 30) bad("it has " + std::to_string(n.size()) + " characters; at most 30 are allowed");
    if (!(n[0] >= 'a' && n[0] <= 'z')) bad("it must start with a lower-case letter (a-z)");
    for (char c : n)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            bad("only lower-case letters, digits and '-' are allowed");
    if (n.back() == '-') bad("it must not end with '-'");
    // A tenant's admin role is named after it, and hostd logs in to every tenant as this role.
    if (n == pgconf::kMonitorRole) bad("'" + std::string(n) + "' is the role hostd watches every tenant with; pick another name");
}

namespace {

uint64_t host_memory() { return static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)); }
double host_cpus() { return static_cast<double>(::sysconf(_SC_NPROCESSORS_ONLN)); }

void check_size(const std::optional<uint64_t>& v, const char* field, uint64_t lo, uint64_t hi) {
    if (v && (*v < lo || *v > hi))
        throw Error(Errc::invalid, std::string("'") + field + "' is " + format_size(*v) + "; it must be between " +
                                       format_size(lo) + " and " + format_size(hi), field);
}

void check_count(const std::optional<uint64_t>& v, const char* field, uint64_t lo, uint64_t hi) {
    if (v && (*v < lo || *v > hi))
        throw Error(Errc::invalid, std::string("'") + field + "' must be an integer between " + std::to_string(lo) +
                                       " and " + std::to_string(hi), field);
}

void check_cpu(const std::optional<double>& cpu, const Config& cfg) {
    if (!cpu) return;
    const double max_cpu = cfg.max_cpu > 0 ? cfg.max_cpu : host_cpus();
    if (!std::isfinite(*cpu) || *cpu < 0.01 || *cpu > max_cpu) {
        std::ostringstream o;
        o << "'cpu' must be between 0.01 and " << max_cpu << " (CPUs on this host)";
        throw Error(Errc::invalid, o.str(), "cpu");
    }
}

}  // namespace

void check_limits(const LimitsUpdate& u, const Config& cfg) {
    check_size(u.memory, "memory", cfg.min_memory, cfg.max_memory ? cfg.max_memory : host_memory());
    check_cpu(u.cpu, cfg);
    check_count(u.tasks, "tasks", 16, cfg.max_tasks);
    check_count(u.io_weight, "io_weight", 1, 10000);
}

void check_resize(const ResizeRequest& r, const Config& cfg) {
    check_size(r.size, "size", cfg.min_disk_size, cfg.max_disk_size);
}

std::vector<std::string> resolve_extensions(const std::vector<std::string>& asked, const Config& cfg) {
    std::vector<std::string> out;
    for (const auto& e : asked) {
        if (std::find(cfg.extensions_allowed.begin(), cfg.extensions_allowed.end(), e) == cfg.extensions_allowed.end()) {
            std::string allowed;
            for (const auto& a : cfg.extensions_allowed) allowed += (allowed.empty() ? "" : ", ") + a;
            throw Error(Errc::invalid, "Extension '" + e + "' is not among those hostd may enable on this host (" +
                                           (allowed.empty() ? std::string("none") : allowed) +
                                           "); an operator can add it to extensions.allowed in hostd.toml",
                        "extensions");
        }
        if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
    }
    std::sort(out.begin(), out.end());
    return out;
}

void check_create_ha(const CreateRequest& req, const Config& cfg) {
    if (!req.ha) return;
    check_ha_request(*req.ha);
    auto refuse = [](const char* field, const std::string& why) {
        throw Error(Errc::invalid, std::string("'ha' cannot be given with '") + field + "': " + why, "ha");
    };
    if (req.reuse) refuse("reuse", "a detached tenant's kept disk is a single host's; create the HA tenant new");
    if (req.from) refuse("from", "an HA tenant starts as a new cluster (branches from backups are single-host)");
    if (req.device || req.backend == "device")
        refuse("device", "each member gets its own disk on its own host, from that host's loop directory or device pool");
    if (!ha_on(cfg))
        throw Error(Errc::invalid, "This host is not an HA host: an HA tenant needs the [ha] section in hostd.toml (address, "
                                   "hosts) on every member host. Create the tenant without 'ha', or set [ha] up first",
                    "ha");
    if (cfg.proxy != "haproxy" || !cfg.domain.empty())
        throw Error(Errc::invalid, "An HA tenant's route follows its primary with HAProxy's health checks: it needs "
                                   "proxy.kind = \"haproxy\" with port routes (no proxy.domain) on every member host",
                    "ha");
    std::vector<std::string> hosts;
    for (const auto& h : ha_fleet(cfg)) hosts.push_back(h.name);
    for (const auto& r : req.ha->replicas)
        if (std::find(hosts.begin(), hosts.end(), r) == hosts.end())
            throw Error(Errc::invalid, "'" + r + "' is not one of this host's [ha] hosts; a replica goes on one of them", "ha.replicas");
}

CreateRequest request_of(const TenantSpec& spec) {
    CreateRequest r;
    r.filesystem = spec.filesystem;
    r.disk_size = spec.disk_size;
    r.memory = spec.memory;
    r.cpu = spec.cpu;
    r.tasks = spec.tasks;
    if (spec.io_weight) r.io_weight = spec.io_weight;
    if (!spec.settings.empty()) r.settings = spec.settings;
    if (!spec.extensions.empty()) r.extensions = spec.extensions;
    return r;
}

TenantSpec resolve_spec(const CreateRequest& req, const Config& cfg) {
    check_create_ha(req, cfg);
    TenantSpec s;
    s.backend = req.backend.value_or(req.device ? "device" : cfg.backend);
    if (s.backend != "loop" && s.backend != "device")
        throw Error(Errc::invalid, "'backend' must be \"loop\" or \"device\"", "backend");
    if (req.device) {
        s.device = *req.device;
        if (s.device.empty() || s.device.front() != '/' || s.device.find('\n') != std::string::npos)
            throw Error(Errc::invalid, "'device' must be an absolute path such as /dev/vdb", "device");
    }
    if (s.backend == "device" && s.device.empty() && cfg.devices.empty())
        throw Error(Errc::invalid, "The device backend needs 'device' (the block device to use), or a pool of "
                                   "devices in hostd.toml (storage.devices)", "device");
    if (s.backend == "loop" && !s.device.empty())
        throw Error(Errc::invalid, "'device' cannot be used with the loop backend", "device");
    s.filesystem = req.filesystem.value_or(cfg.filesystem);
    if (s.filesystem != "ext4" && s.filesystem != "xfs")
        throw Error(Errc::invalid, "'filesystem' must be \"ext4\" or \"xfs\"", "filesystem");
    if (req.force && s.backend != "device")
        throw Error(Errc::invalid, "'force' only applies to the device backend (formatting over a signature)", "force");
    check_size(req.disk_size, "disk_size", cfg.min_disk_size, cfg.max_disk_size);
    s.disk_size = req.disk_size.value_or(cfg.disk_size);
    // mkfs.xfs (xfsprogs 5.19 and later) refuses filesystems under 300 MB: say so before a disk exists.
    constexpr uint64_t kXfsMinimum = 300ull * 1000 * 1000;
    if (s.filesystem == "xfs" && s.disk_size < kXfsMinimum)
        throw Error(Errc::invalid, "xfs needs a disk of at least 300 MB (mkfs.xfs refuses smaller ones); 'disk_size' is " +
                                       format_size(s.disk_size) + ": ask for 300M or more, or use ext4", "disk_size");
    check_limits({.memory = req.memory, .cpu = req.cpu, .tasks = req.tasks, .io_weight = req.io_weight}, cfg);
    s.memory = req.memory.value_or(cfg.memory);
    s.cpu = req.cpu.value_or(cfg.cpu);
    s.tasks = req.tasks.value_or(cfg.tasks);
    s.io_weight = req.io_weight.value_or(0);
    s.settings = req.settings.value_or(Settings{});
    if (req.extensions) s.extensions = resolve_extensions(*req.extensions, cfg);
    return s;
}

TenantSpec resolve_reuse_spec(const CreateRequest& req, const TenantSpec& kept, const Config& cfg) {
    auto refuse = [](const char* field, const std::string& why) {
        throw Error(Errc::invalid, std::string("'") + field + "' cannot be given with reuse: " + why, field);
    };
    if (req.disk_size)
        refuse("disk_size", "the tenant's disk is kept as it is (" + format_size(kept.disk_size) +
                                "); grow it after the reuse with hostctl resize");
    if (req.filesystem)
        refuse("filesystem", "the kept disk is formatted " + kept.filesystem + " and holds the tenant's data");
    if (req.backend) refuse("backend", "the tenant's data is on its kept " + kept.backend + " disk");
    if (req.device) refuse("device", "the tenant's kept disk is found by its filesystem UUID");
    if (req.force) refuse("force", "a reuse formats nothing");
    check_create_ha(req, cfg);
    check_limits({.memory = req.memory, .cpu = req.cpu, .tasks = req.tasks, .io_weight = req.io_weight}, cfg);
    TenantSpec s = kept;
    s.memory = req.memory.value_or(kept.memory);
    s.cpu = req.cpu.value_or(kept.cpu);
    s.tasks = req.tasks.value_or(kept.tasks);
    s.io_weight = req.io_weight.value_or(kept.io_weight);
    if (req.settings) s.settings = edit_settings(kept.settings, {.set = *req.settings});
    return s;
}

Settings edit_settings(const Settings& current, const SettingsEdit& edit) {
    auto lower = [](std::string s) {
        for (char& c : s)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        return s;
    };
    Settings out;
    if (!edit.reset)
        for (auto& [k, v] : current) out[lower(k)] = v;
    for (auto& k : edit.unset) out.erase(lower(k));
    for (auto& [k, v] : edit.set) out[lower(k)] = v;
    return out;
}

void validate_password(std::string_view p) {
    if (p.size() < 8 || p.size() > 256)
        throw Error(Errc::invalid, "The password has " + std::to_string(p.size()) +
                                       " bytes; it must have 8 to 256", "password");
    for (unsigned char c : p)
        if (c < 0x20 || c == 0x7f)
            throw Error(Errc::invalid, "The password holds a control character (a line break, a tab, a NUL...); "
                                       "use printable characters only", "password");
}

PublicEndpoint public_endpoint(const Config& cfg, const TenantRecord& t) {
    if (cfg.domain.empty()) return {.host = cfg.public_host, .port = t.public_port, .sni_host = ""};
    std::string name = t.name + "." + cfg.domain;
    return {.host = name, .port = cfg.sni_port, .sni_host = name};
}

routes::Route route_of(const Config& cfg, const TenantRecord& t) {
    auto ep = public_endpoint(cfg, t);
    if (t.ha) {
        // Every member, on each member host: only the one whose Patroni says it is the primary
        // gets connections (ha::render_haproxy's rules, in routes/).
        routes::Route r{.tenant = t.name, .bind_address = cfg.bind_address, .public_port = t.public_port, .check_path = "/primary"};
        for (const auto& m : t.ha->members)
            if (m.pg_port && m.rest_port)
                r.members.push_back({.name = m.host, .host = m.address, .port = m.pg_port, .check_port = m.rest_port});
        return r;
    }
    routes::Route r{.tenant = t.name, .bind_address = cfg.bind_address, .public_port = ep.port, .backend_host = "127.0.0.1",
                    .backend_port = t.port, .sni_host = ep.sni_host};
    if (hibernate_on(cfg)) {  // HAProxy's backup server: hostd's waker (hostd/hibernate.h)
        r.waker_port = cfg.hibernate_waker_port;
        r.hibernated = t.hibernated;
    }
    return r;
}

const HaMember* own_member(const TenantRecord& t) {
    if (!t.ha) return nullptr;
    for (const auto& m : t.ha->members)
        if (m.pg_port == t.port && m.public_port == t.public_port) return &m;
    return nullptr;
}

std::optional<routes::Route> replica_route_of(const Config& cfg, const TenantRecord& t) {
    const HaMember* me = own_member(t);
    if (!me || !me->replica_port) return std::nullopt;
    routes::Route r = route_of(cfg, t);
    r.tenant = t.name + ".ro";
    r.public_port = me->replica_port;
    r.check_path = "/replica";
    return r;
}

std::string proxy_check_address(const Config& cfg) {
    const auto& b = cfg.bind_address;
    if (b == "0.0.0.0" || b == "*" || b.empty()) return "127.0.0.1";
    if (b == "::") return "::1";
    return b;
}

std::string connection_url(const Config& cfg, const TenantRecord& t, bool with_password) {
    if (t.ha) {
        // Every member host (libpq keeps the one that accepts writes), this host's first.
        std::vector<ha::HostPort> hosts;
        for (const auto& m : t.ha->members)
            if (m.public_port) hosts.push_back({m.public_host, m.public_port});
        std::stable_partition(hosts.begin(), hosts.end(), [&](const ha::HostPort& h) { return h.port == t.public_port && h.host == cfg.public_host; });
        // A record whose members' ports are not known yet (a create under way) has this host's only.
        if (!hosts.empty()) return ha::ha_url(hosts, t.admin_user, with_password ? t.password : "", "postgres");
    }
    // verify-full works too, with the host's CA from `hostctl ca`: the tenant's certificate
    // names the URL's host.
    auto ep = public_endpoint(cfg, t);
    return pgconf::connection_url(ep.host, ep.port, t.admin_user, with_password ? t.password : "", "postgres") +
           "?sslmode=require";
}

std::string read_only_url(const Config& cfg, const TenantRecord& t, bool with_password) {
    if (!t.ha) return "";
    std::vector<ha::HostPort> hosts;
    for (const auto& m : t.ha->members)
        if (m.replica_port) hosts.push_back({m.public_host, m.replica_port});
    if (hosts.empty()) return "";
    std::stable_partition(hosts.begin(), hosts.end(), [&](const ha::HostPort& h) { return h.host == cfg.public_host; });
    return ha::ha_url(hosts, t.admin_user, with_password ? t.password : "", "postgres", "standby");
}

TenantView view_of(const Config& cfg, const TenantRecord& t, bool with_secret) {
    const TenantLayout l = layout_of(cfg, t);
    TenantView v;
    v.name = t.name;
    v.state = t.state;
    v.step = t.step;
    v.spec = t.spec;
    v.spec.device.clear();
    v.fs_uuid = t.fs_uuid;
    v.label = t.label;
    v.device = t.device;
    v.device_id = t.device_id;
    v.image = t.image;
    v.mountpoint = l.mountpoint;
    v.unit = l.unit;
    v.os_user = t.os_user;
    v.admin_user = t.admin_user;
    v.created_at = t.created_at;
    v.port = t.port;
    v.public_port = public_endpoint(cfg, t).port;
    v.read_only = t.read_only;
    v.stopped = t.stopped;
    // The password is in the URL; only show the URL with it where secrets may be shown.
    if (t.state == TenantState::ready) v.url = connection_url(cfg, t, with_secret);
    if (t.state == TenantState::ready) v.read_only_url = read_only_url(cfg, t, with_secret);
    if (with_secret) v.password = t.password;
    if (t.ha) {
        // What the record knows; role, state, lag and timeline are Patroni's to tell.
        for (const auto& m : t.ha->members)
            v.members.push_back({.host = m.host, .address = m.address, .public_host = m.public_host, .public_port = m.public_port});
        v.ha = HaView{.synchronous = t.ha->synchronous, .strict = t.ha->strict};
    }
    return v;
}

void check_backup_owned(const Settings& s, const Config& cfg) {
    if (!backups_on(cfg)) return;
    for (const char* name : {"archive_mode", "archive_command", "archive_timeout", "archive_library", "restore_command"})
        if (s.count(name))
            throw Error(Errc::invalid,
                        std::string("'") + name + "' is hostd's on this host: it archives every tenant's WAL to the tenant's own "
                        "pgBackRest repository (backup.repo; backup.archive_timeout sets the interval)",
                        "settings");
}

}  // namespace hostd

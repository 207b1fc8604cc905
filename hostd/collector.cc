#include "hostd/collector.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include "base/error.h"
#include "hostd/manager.h"
#include "model/layout.h"
#include "pgconf/pgconf.h"
#include "storage/storage.h"
#include "units/systemd.h"

namespace hostd {
namespace {

using metrics::Family;
using metrics::Labels;

std::optional<uint64_t> read_u64(const std::string& path) {
    std::ifstream in(path);
    std::string s;
    if (!(in >> s)) return std::nullopt;
    if (s == "max") return std::nullopt;  // v2: no limit
    try {
        uint64_t v = std::stoull(s);
        if (v >= (1ull << 62)) return std::nullopt;  // v1: "no limit" is a huge number
        return v;
    } catch (...) {
        return std::nullopt;
    }
}

// "key value" lines (cgroup v2 cpu.stat) or "dev rbytes=N wbytes=N ..." (io.stat).
std::optional<uint64_t> keyed(const std::string& path, const std::string& key) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::string line;
    uint64_t sum = 0;
    bool found = false;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string tok;
        while (f >> tok) {
            if (tok == key && f >> tok) {
                sum += std::stoull(tok);
                found = true;
            } else if (tok.rfind(key + "=", 0) == 0) {
                sum += std::stoull(tok.substr(key.size() + 1));
                found = true;
            }
        }
    }
    return found ? std::optional(sum) : std::nullopt;
}

// cgroup v1 blkio: "MAJ:MIN Read N" lines; the per-device totals summed (not the "Total" line).
std::optional<uint64_t> blkio(const std::string& path, const std::string& op) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::string dev, kind;
    uint64_t v = 0, sum = 0;
    bool found = false;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        if (f >> dev >> kind >> v && kind == op) {
            sum += v;
            found = true;
        }
    }
    return found ? std::optional(sum) : std::nullopt;
}

void read_cgroup(TenantFacts& t, const std::string& cg, bool v2) {
    const std::string root = "/sys/fs/cgroup";
    if (v2) {
        const std::string d = root + cg + "/";
        t.memory_current = read_u64(d + "memory.current");
        t.memory_limit = read_u64(d + "memory.max");
        if (auto us = keyed(d + "cpu.stat", "usage_usec")) t.cpu_seconds = static_cast<double>(*us) / 1e6;
        t.tasks_current = read_u64(d + "pids.current");
        t.tasks_limit = read_u64(d + "pids.max");
        t.io_read_bytes = keyed(d + "io.stat", "rbytes");
        t.io_write_bytes = keyed(d + "io.stat", "wbytes");
    } else {
        t.memory_current = read_u64(root + "/memory" + cg + "/memory.usage_in_bytes");
        t.memory_limit = read_u64(root + "/memory" + cg + "/memory.limit_in_bytes");
        auto ns = read_u64(root + "/cpuacct" + cg + "/cpuacct.usage");  // mounted alone, or joined with cpu
        if (!ns) ns = read_u64(root + "/cpu,cpuacct" + cg + "/cpuacct.usage");
        if (ns) t.cpu_seconds = static_cast<double>(*ns) / 1e9;
        t.tasks_current = read_u64(root + "/pids" + cg + "/pids.current");
        t.tasks_limit = read_u64(root + "/pids" + cg + "/pids.max");
        t.io_read_bytes = blkio(root + "/blkio" + cg + "/blkio.throttle.io_service_bytes_recursive", "Read");
        t.io_write_bytes = blkio(root + "/blkio" + cg + "/blkio.throttle.io_service_bytes_recursive", "Write");
    }
}

Labels tl(const TenantFacts& t) { return {{"tenant", t.name}}; }

}  // namespace

std::vector<Family> metric_families(const std::vector<TenantFacts>& tenants, const HostFacts& host) {
    std::vector<Family> out;
    auto per_tenant = [&](const char* name, const char* type, const char* help, auto get) {
        Family f{name, type, help, {}};
        for (auto& t : tenants)
            if (std::optional<double> v = get(t)) f.add(tl(t), *v);
        out.push_back(std::move(f));
    };
    auto opt = [](const auto& o) -> std::optional<double> {
        return o ? std::optional<double>(static_cast<double>(*o)) : std::nullopt;
    };
    {
        Family f{"hostd_tenant_info", "gauge", "A tenant hostd knows, with its lifecycle state.", {}};
        for (auto& t : tenants) f.add({{"tenant", t.name}, {"state", t.state}}, 1);
        out.push_back(std::move(f));
    }
    per_tenant("hostd_tenant_disk_size_bytes", "gauge", "Disk size the tenant was given.", [](auto& t) { return std::optional<double>(t.disk_size); });
    per_tenant("hostd_tenant_disk_total_bytes", "gauge", "Size of the tenant's filesystem (statvfs).", [&](auto& t) { return opt(t.bytes_total); });
    per_tenant("hostd_tenant_disk_used_bytes", "gauge", "Bytes used on the tenant's filesystem.", [&](auto& t) { return opt(t.bytes_used); });
    per_tenant("hostd_tenant_disk_available_bytes", "gauge", "Bytes the tenant can still write.", [&](auto& t) { return opt(t.bytes_available); });
    per_tenant("hostd_tenant_disk_inodes", "gauge", "Inodes of the tenant's filesystem.", [&](auto& t) { return opt(t.inodes_total); });
    per_tenant("hostd_tenant_disk_inodes_used", "gauge", "Inodes in use on the tenant's filesystem.", [&](auto& t) { return opt(t.inodes_used); });
    per_tenant("hostd_tenant_read_only", "gauge", "1 while hostd's disk-full guard holds the tenant read-only.", [](auto& t) { return std::optional<double>(t.read_only ? 1 : 0); });
    per_tenant("hostd_tenant_memory_bytes", "gauge", "Memory charged to the tenant's cgroup.", [&](auto& t) { return opt(t.memory_current); });
    per_tenant("hostd_tenant_memory_limit_bytes", "gauge", "The tenant's memory limit (MemoryMax).", [&](auto& t) { return opt(t.memory_limit); });
    per_tenant("hostd_tenant_cpu_seconds_total", "counter", "CPU time used by the tenant's cgroup.", [](auto& t) { return t.cpu_seconds; });
    per_tenant("hostd_tenant_tasks", "gauge", "Processes and threads in the tenant's cgroup.", [&](auto& t) { return opt(t.tasks_current); });
    per_tenant("hostd_tenant_tasks_limit", "gauge", "The tenant's task limit (TasksMax).", [&](auto& t) { return opt(t.tasks_limit); });
    per_tenant("hostd_tenant_io_read_bytes_total", "counter", "Bytes the tenant's cgroup read from block devices (where the kernel reports it).", [&](auto& t) { return opt(t.io_read_bytes); });
    per_tenant("hostd_tenant_io_written_bytes_total", "counter", "Bytes the tenant's cgroup wrote to block devices (where the kernel reports it).", [&](auto& t) { return opt(t.io_write_bytes); });
    {
        Family f{"hostd_tenant_unit_state", "gauge", "1 for the systemd ActiveState of the tenant's unit.", {}};
        for (auto& t : tenants)
            if (!t.unit_state.empty()) f.add({{"tenant", t.name}, {"state", t.unit_state}}, 1);
        out.push_back(std::move(f));
    }
    per_tenant("hostd_tenant_restarts_total", "counter", "Times systemd restarted the tenant's PostgreSQL (NRestarts).", [&](auto& t) { return opt(t.restarts); });
    per_tenant("hostd_tenant_up", "gauge", "1 if the last libpq SELECT 1 over the tenant's socket succeeded.", [](auto& t) {
        return t.up ? std::optional<double>(*t.up ? 1 : 0) : std::nullopt;
    });
    per_tenant("hostd_tenant_connections", "gauge", "Client connections (pg_stat_activity).", [&](auto& t) { return opt(t.connections); });
    per_tenant("hostd_tenant_max_connections", "gauge", "The tenant's max_connections.", [&](auto& t) { return opt(t.max_connections); });
    per_tenant("hostd_tenant_database_bytes", "gauge", "Sum of pg_database_size over the tenant's databases.", [&](auto& t) { return opt(t.database_bytes); });

    {
        Family f{"hostd_operations_total", "counter", "Tenant operations by kind and result.", {}};
        for (auto& [key, s] : host.ops.ops) f.add({{"kind", key.first}, {"result", key.second}}, static_cast<double>(s.count));
        out.push_back(std::move(f));
    }
    {
        Family f{"hostd_operation_duration_seconds", "histogram", "How long tenant operations took.", {}};
        std::vector<double> bounds(OpStats::kBuckets.begin(), OpStats::kBuckets.end());
        for (auto& [key, s] : host.ops.ops)
            metrics::add_histogram(f, {{"kind", key.first}, {"result", key.second}}, bounds,
                                   std::vector<uint64_t>(s.buckets.begin(), s.buckets.end()), s.sum_seconds, s.count);
        out.push_back(std::move(f));
    }
    out.push_back(Family{"hostd_reconcile_runs_total", "counter", "Reconcile runs (at start and on request).", {}}
                      .add({}, static_cast<double>(host.ops.reconcile_runs)));
    out.push_back(Family{"hostd_build_info", "gauge", "hostd's version.", {}}.add({{"version", host.version}}, 1));
    out.push_back(Family{"hostd_scrape_duration_seconds", "gauge", "Time hostd spent on the previous scrape.", {}}
                      .add({}, host.last_scrape_seconds));
    out.push_back(Family{"hostd_metrics_refresh_round_seconds", "gauge",
                         "How long one pass of the PostgreSQL facts (up, connections, size) over every tenant takes: "
                         "max(metrics.refresh, tenants / metrics.refresh_budget).",
                         {}}
                      .add({}, host.refresh_round_seconds));
    return out;
}

Collector::Collector(Manager& m, const Config& cfg, std::string version) : m_(m), cfg_(cfg), version_(std::move(version)) {}

std::string Collector::scrape() {
    const auto t0 = std::chrono::steady_clock::now();
    const bool v2 = ::access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
    std::map<std::string, std::string> unit_states;
    try {
        for (auto& [unit, active] : units::Systemd::connect().list_units("hostd-postgres@*.service"))
            unit_states[unit] = active;
    } catch (const Error&) {
        // systemd unreachable: the states are simply missing from this scrape
    }
    std::set<std::string> mounted;
    for (auto& mp : storage::mounts_below(cfg_.mount_root)) mounted.insert(mp);
    std::vector<TenantFacts> facts;
    for (auto& r : m_.snapshot()) {
        TenantFacts t;
        t.name = r.name;
        t.state = std::string(to_string(r.state));
        t.read_only = r.read_only;
        t.disk_size = r.spec.disk_size;
        const TenantLayout l = layout_of(cfg_, r.name);
        const std::string& mp = l.mountpoint;
        if (mounted.count(mp)) {
            try {
                const auto d = storage::disk_stats(mp);
                t.bytes_total = d.bytes_total, t.bytes_used = d.bytes_used, t.bytes_available = d.bytes_available;
                t.inodes_total = d.inodes_total, t.inodes_used = d.inodes_used;
            } catch (const Error&) {
                // Unmounted between the listing and now: the disk facts stay unknown.
            }
        }
        if (auto it = unit_states.find(l.unit); it != unit_states.end()) {
            t.unit_state = it->second;
            if (it->second == "active") read_cgroup(t, l.cgroup, v2);
        }
        facts.push_back(std::move(t));
    }
    HostFacts host{.version = version_, .ops = m_.op_stats()};
    {
        std::lock_guard g(mu_);
        for (auto& t : facts)
            if (auto it = slow_.find(t.name); it != slow_.end()) {
                t.restarts = it->second.restarts;
                t.up = it->second.up;
                t.connections = it->second.connections;
                t.max_connections = it->second.max_connections;
                t.database_bytes = it->second.database_bytes;
            }
        host.last_scrape_seconds = last_scrape_;
        host.refresh_round_seconds = round_seconds_;
    }
    std::string text = metrics::render(metric_families(facts, host));
    std::lock_guard g(mu_);
    last_scrape_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return text;
}

double refresh_gap_seconds(size_t tenants, double refresh, double budget) {
    if (tenants == 0) return refresh;
    const double floor = budget > 0 ? 1.0 / budget : 0;
    return std::max(refresh / static_cast<double>(tenants), floor);
}

double Collector::refresh_next() {
    using Clock = std::chrono::steady_clock;
    std::vector<TenantRecord> ready;
    for (auto& r : m_.snapshot())
        if (r.state == TenantState::ready) ready.push_back(std::move(r));
    const double gap = refresh_gap_seconds(ready.size(), cfg_.metrics_refresh, cfg_.metrics_refresh_budget);
    std::set<std::string> names;
    for (auto& r : ready) names.insert(r.name);
    std::erase_if(refreshed_at_, [&](const auto& e) { return !names.count(e.first); });
    {
        std::lock_guard g(mu_);
        std::erase_if(slow_, [&](const auto& e) { return !names.count(e.first); });
        round_seconds_ = gap * static_cast<double>(ready.size());
    }
    if (ready.empty()) return gap;

    // Never refreshed first (a new tenant), then the stalest.
    auto refreshed = [&](const TenantRecord& t) {
        auto it = refreshed_at_.find(t.name);
        return it == refreshed_at_.end() ? Clock::time_point::min() : it->second;
    };
    auto stalest = std::min_element(ready.begin(), ready.end(),
                                    [&](const TenantRecord& a, const TenantRecord& b) { return refreshed(a) < refreshed(b); });
    const TenantRecord& r = *stalest;
    Slow s;
    try {
        if (!bus_) bus_.emplace(units::Systemd::connect());
        s.restarts = bus_->status(layout_of(cfg_, r.name).unit).n_restarts;
    } catch (const Error&) {
        bus_.reset();  // systemd restarted or the unit vanished: a fresh connection next time
    }
    try {
        // Over the tenant's own socket directory, as its admin: no TLS, no proxy.
        auto row = pgconf::query_column(
            {.host = layout_of(cfg_, r.name).socket_dir, .port = r.port, .user = r.admin_user, .password = r.password,
             .connect_timeout_s = 2, .sslmode = "disable"},
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()) || ' ' || "
            "current_setting('max_connections') || ' ' || (SELECT sum(pg_database_size(oid)) FROM pg_database)");
        std::istringstream f(row.empty() ? "" : row.front());
        uint64_t c = 0, mx = 0, size = 0;
        if (f >> c >> mx >> size) {
            s.connections = c;
            s.max_connections = mx;
            s.database_bytes = size;
        }
        s.up = true;
    } catch (const Error&) {
        s.up = false;
    }
    refreshed_at_[r.name] = Clock::now();
    std::lock_guard g(mu_);
    slow_[r.name] = s;
    return gap;
}

}  // namespace hostd

#include "hostd/collector.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "base/error.h"
#include "ha/plan.h"
#include "model/layout.h"

namespace hostd {
namespace {

using metrics::Family;
using metrics::Labels;

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
    per_tenant("hostd_tenant_stopped", "gauge", "1 while the tenant is stopped on purpose (hostctl stop); it has no hostd_tenant_up then.", [](auto& t) { return std::optional<double>(t.stopped ? 1 : 0); });
    per_tenant("hostd_tenant_hibernated", "gauge", "1 while the tenant hibernates ([hibernate]: idle, stopped, woken by its next connection); it has no hostd_tenant_up then.", [](auto& t) { return std::optional<double>(t.hibernated ? 1 : 0); });
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
    // Backups on: what PostgreSQL handed to pgBackRest (pg_stat_archiver, since its last start).
    if (std::any_of(tenants.begin(), tenants.end(), [](const TenantFacts& t) { return t.archive.has_value(); })) {
        auto archive = [](auto get) {
            return [get](const TenantFacts& t) { return t.archive ? std::optional<double>(get(*t.archive)) : std::nullopt; };
        };
        per_tenant("hostd_tenant_wal_archived_total", "counter", "WAL segments archived to the tenant's pgBackRest repository since its PostgreSQL started.",
                   archive([](const ArchiveFacts& a) { return static_cast<double>(a.archived); }));
        per_tenant("hostd_tenant_wal_archive_failures_total", "counter", "Failed attempts to archive a WAL segment since its PostgreSQL started.",
                   archive([](const ArchiveFacts& a) { return static_cast<double>(a.failed); }));
        per_tenant("hostd_tenant_wal_last_archived_timestamp_seconds", "gauge", "When the last WAL segment was archived (0: none since start).",
                   archive([](const ArchiveFacts& a) { return a.last_archived; }));
        per_tenant("hostd_tenant_wal_last_failed_timestamp_seconds", "gauge", "When archiving last failed (0: never since start).",
                   archive([](const ArchiveFacts& a) { return a.last_failed; }));
        per_tenant("hostd_tenant_wal_pending_segments", "gauge", "WAL segments waiting to be archived (archive_status/*.ready).",
                   archive([](const ArchiveFacts& a) { return static_cast<double>(a.pending); }));
        per_tenant("hostd_tenant_wal_oldest_pending_timestamp_seconds", "gauge", "Since when the oldest WAL segment waiting to be archived waits (0: none waits).",
                   archive([](const ArchiveFacts& a) { return a.oldest_pending; }));
    }
    // Backups on: what hostd's backup watch last saw of each repository, and failed backups.
    if (std::any_of(tenants.begin(), tenants.end(), [](const TenantFacts& t) { return t.backup.has_value(); })) {
        {
            Family f{"hostd_tenant_backup_last_success_timestamp_seconds", "gauge",
                     "When the tenant's newest backup of each type finished (pgBackRest's info; no series: none of that type).", {}};
            for (auto& t : tenants) {
                if (!t.backup) continue;
                if (t.backup->last_full) f.add({{"tenant", t.name}, {"type", "full"}}, static_cast<double>(t.backup->last_full));
                if (t.backup->last_backup && t.backup->last_type != "full")
                    f.add({{"tenant", t.name}, {"type", t.backup->last_type}}, static_cast<double>(t.backup->last_backup));
            }
            out.push_back(std::move(f));
        }
        auto backup = [](auto get) {
            return [get](const TenantFacts& t) { return t.backup ? get(*t.backup) : std::nullopt; };
        };
        per_tenant("hostd_tenant_backup_repository_bytes", "gauge", "Bytes on disk of the tenant's pgBackRest repository (backups and archived WAL).",
                   backup([](const BackupHealth& h) { return h.repo_bytes ? std::optional<double>(static_cast<double>(*h.repo_bytes)) : std::nullopt; }));
        per_tenant("hostd_tenant_wal_repository_last_timestamp_seconds", "gauge", "When the newest WAL segment reached the tenant's repository (0: none).",
                   backup([](const BackupHealth& h) { return h.checked ? std::optional<double>(static_cast<double>(h.last_wal)) : std::nullopt; }));
        per_tenant("hostd_tenant_backup_failures_total", "counter", "Backups of the tenant that failed (on request or scheduled) since hostd started.",
                   backup([](const BackupHealth& h) { return std::optional<double>(static_cast<double>(h.failures)); }));
        per_tenant("hostd_tenant_backup_last_failure_timestamp_seconds", "gauge", "When a backup of the tenant last failed (0: none since hostd started).",
                   backup([](const BackupHealth& h) { return std::optional<double>(h.last_failure ? static_cast<double>(h.last_failure->at) : 0); }));
        per_tenant("hostd_tenant_backup_failing", "gauge", "1 while the tenant's newest backup attempt failed (no backup succeeded since).",
                   backup([](const BackupHealth& h) { return std::optional<double>(h.failing() ? 1 : 0); }));
        per_tenant("hostd_tenant_backup_repository_readable", "gauge", "1 if hostd's last look at the tenant's repository (pgBackRest's info as the tenant) succeeded.",
                   backup([](const BackupHealth& h) { return h.checked ? std::optional<double>(h.error.empty() ? 1 : 0) : std::nullopt; }));
    }

    // HA tenants (#17): this host's member as its Patroni tells (role, lag, timeline).
    if (std::any_of(tenants.begin(), tenants.end(), [](const TenantFacts& t) { return t.ha.has_value(); })) {
        {
            Family f{"hostd_tenant_ha_role", "gauge",
                     "1 for the role of this host's member of an HA tenant as its Patroni reports it (primary, replica, "
                     "down: not in Patroni's answer; unknown: its Patroni did not answer).",
                     {}};
            for (auto& t : tenants)
                if (t.ha) f.add({{"tenant", t.name}, {"role", t.ha->role}}, 1);
            out.push_back(std::move(f));
        }
        auto ha = [](auto get) {
            return [get](const TenantFacts& t) { return t.ha ? get(*t.ha) : std::nullopt; };
        };
        per_tenant("hostd_tenant_ha_patroni_up", "gauge", "1 if the Patroni of this host's member answered GET /cluster at its last refresh.",
                   ha([](const HaMemberFacts& h) { return std::optional<double>(h.patroni_up ? 1 : 0); }));
        per_tenant("hostd_tenant_ha_lag_bytes", "gauge", "Bytes of WAL this host's replica is behind the primary (Patroni's lag; none for the primary or when unknown).",
                   ha([](const HaMemberFacts& h) { return h.lag_bytes ? std::optional<double>(static_cast<double>(*h.lag_bytes)) : std::nullopt; }));
        per_tenant("hostd_tenant_ha_timeline", "gauge", "The PostgreSQL timeline of this host's member (it grows with each promotion).",
                   ha([](const HaMemberFacts& h) { return h.timeline ? std::optional<double>(*h.timeline) : std::nullopt; }));
        per_tenant("hostd_tenant_ha_sync", "gauge", "1 if this host's member is the synchronous standby.",
                   ha([](const HaMemberFacts& h) { return h.patroni_up ? std::optional<double>(h.sync ? 1 : 0) : std::nullopt; }));
    }

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
    out.push_back(Family{"hostd_metrics_usage_age_seconds", "gauge",
                         "How old the disk, cgroup and unit facts of this scrape are: they are read for every tenant "
                         "every metrics.refresh seconds while hostd is scraped (0: read by this scrape).",
                         {}}
                      .add({}, host.usage_age_seconds));
    return out;
}

Collector::Collector(TenantSource tenants, std::unique_ptr<Observer> observer, const Config& cfg, std::string version)
    : tenants_(std::move(tenants)), observer_(std::move(observer)), cfg_(cfg), version_(std::move(version)) {}

std::map<std::string, Collector::Usage> Collector::read_usage(const std::vector<TenantRecord>& records) {
    std::map<std::string, std::string> unit_states;
    try {
        unit_states = observer_->unit_states();
    } catch (const Error&) {
        // systemd unreachable: the states are simply missing from this pass
    }
    const std::set<std::string> mounted = observer_->mounted();
    std::map<std::string, Usage> out;
    for (auto& r : records) {
        Usage& u = out[r.name];
        const TenantLayout w = layout_of(cfg_, r);
        if (mounted.count(w.mountpoint)) {
            try {
                u.disk = observer_->disk(w.mountpoint);
            } catch (const Error&) {
                // Unmounted between the listing and now: the disk facts stay unknown.
            }
        }
        if (auto it = unit_states.find(w.unit); it != unit_states.end()) {
            u.unit_state = it->second;
            if (it->second == "active") u.cgroup = observer_->cgroup(w.cgroup);
        }
    }
    return out;
}

void Collector::refresh_usage() {
    std::lock_guard pass(pass_mu_);
    const auto at = Clock::now();
    auto fresh = std::make_shared<const std::map<std::string, Usage>>(read_usage(tenants_.records()));
    std::lock_guard g(mu_);
    usage_ = std::move(fresh);
    usage_at_ = at;
}

void Collector::refresh_usage_if_scraped() {
    {
        std::lock_guard g(mu_);
        if (scraped_at_ == Clock::time_point{} || Clock::now() - scraped_at_ > std::chrono::minutes(10)) return;
    }
    refresh_usage();
}

std::string Collector::scrape() {
    const auto t0 = Clock::now();
    const std::vector<TenantRecord> records = tenants_.records();
    std::shared_ptr<const std::map<std::string, Usage>> usage;
    double age = 0;
    {
        std::lock_guard g(mu_);
        scraped_at_ = t0;
        const auto max_age = std::chrono::duration<double>(3 * cfg_.metrics_refresh);
        if (usage_ && cfg_.metrics_refresh > 0 && t0 - usage_at_ <= max_age) {
            usage = usage_;
            age = std::chrono::duration<double>(t0 - usage_at_).count();
        }
    }
    // No recent pass: read them now, for this scrape (a tenant created since the pass has none
    // in it: its usage appears with the next pass).
    if (!usage) usage = std::make_shared<const std::map<std::string, Usage>>(read_usage(records));
    std::vector<TenantFacts> facts;
    facts.reserve(records.size());
    for (auto& r : records) {
        TenantFacts t;
        t.name = r.name;
        t.state = std::string(to_string(r.state));
        t.read_only = r.read_only;
        t.stopped = r.stopped;
        t.hibernated = r.hibernated;
        t.disk_size = r.spec.disk_size;
        if (auto it = usage->find(r.name); it != usage->end()) {
            const Usage& u = it->second;
            if (u.disk) {
                t.bytes_total = u.disk->bytes_total, t.bytes_used = u.disk->bytes_used, t.bytes_available = u.disk->bytes_available;
                t.inodes_total = u.disk->inodes_total, t.inodes_used = u.disk->inodes_used;
            }
            t.unit_state = u.unit_state;
            if (u.cgroup) {
                t.memory_current = u.cgroup->memory_current, t.memory_limit = u.cgroup->memory_limit;
                t.tasks_current = u.cgroup->tasks_current, t.tasks_limit = u.cgroup->tasks_limit;
                t.cpu_seconds = u.cgroup->cpu_seconds;
                t.io_read_bytes = u.cgroup->io_read_bytes, t.io_write_bytes = u.cgroup->io_write_bytes;
            }
        }
        facts.push_back(std::move(t));
    }
    HostFacts host{.version = version_, .ops = tenants_.op_stats(), .usage_age_seconds = age};
    if (backups_on(cfg_) && tenants_.backups) {
        const std::map<std::string, BackupHealth> backups = tenants_.backups();
        for (auto& t : facts)
            if (auto it = backups.find(t.name); it != backups.end()) t.backup = it->second;
    }
    {
        std::lock_guard g(mu_);
        for (auto& t : facts)
            if (auto it = slow_.find(t.name); it != slow_.end() && !t.stopped && !t.hibernated) {
                t.restarts = it->second.restarts;
                t.up = it->second.up;
                t.connections = it->second.connections;
                t.max_connections = it->second.max_connections;
                t.database_bytes = it->second.database_bytes;
                if (backups_on(cfg_)) t.archive = it->second.archive;
                t.ha = it->second.ha;
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
    std::vector<TenantRecord> ready;
    for (auto& r : tenants_.records())
        if (r.state == TenantState::ready && !r.stopped && !r.hibernated) ready.push_back(std::move(r));
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

    // Never refreshed first (a new tenant, 0), then the stalest.
    auto refreshed = [&](const TenantRecord& t) {
        auto it = refreshed_at_.find(t.name);
        return it == refreshed_at_.end() ? uint64_t{0} : it->second;
    };
    const TenantRecord& r = *std::min_element(
        ready.begin(), ready.end(), [&](const TenantRecord& a, const TenantRecord& b) { return refreshed(a) < refreshed(b); });
    const TenantLayout w = layout_of(cfg_, r);
    Slow s;
    try {
        s.restarts = observer_->restarts(w.unit);
    } catch (const Error&) {
        // systemd unreachable: restarts unknown until the next refresh
    }
    // One connection per refresh (the budget counts them): the facts, with hostd's own login.
    // Only when that fails does a ping tell a tenant that is down from one that refused the
    // login (it dropped hostd's role, rewrote pg_hba.conf): up, its facts unknown.
    try {
        const PgFacts pg = observer_->pg_facts(r, w.socket_dir);
        s.connections = pg.connections;
        s.max_connections = pg.max_connections;
        s.database_bytes = pg.database_bytes;
        s.archive = pg.archive;
        s.up = true;
    } catch (const Error&) {
        s.up = observer_->pg_up(r, w.socket_dir);
    }
    // An HA member here: its own Patroni's view (one HTTP call, 2 s at most). Another member's
    // role is that member's host's to export.
    if (r.ha) {
        const HaMember* self = nullptr;
        for (const auto& m : r.ha->members)
            if (ha_on(cfg_) && m.address == cfg_.ha_address) self = &m;
        if (self) {
            HaMemberFacts h;
            try {
                std::vector<std::string> expected;
                for (const auto& m : r.ha->members) expected.push_back(m.host);
                const ha::ClusterView c = ha::parse_cluster(observer_->patroni_cluster(*self), expected);
                h.patroni_up = true;
                if (const ha::MemberStatus* me = c.find(self->host)) {
                    h.role = ha::member_role_name(me->role);
                    h.sync = me->sync;
                    h.lag_bytes = me->lag_bytes;
                    h.timeline = me->timeline;
                }
            } catch (const Error&) {
                // Patroni silent (or not answering as Patroni): role unknown, patroni_up 0
            }
            s.ha = h;
        }
    }
    refreshed_at_[r.name] = ++refreshes_;
    std::lock_guard g(mu_);
    slow_[r.name] = s;
    return gap;
}

}  // namespace hostd

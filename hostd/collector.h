// /metrics: what is known about each tenant and about hostd, as Prometheus families.
// Two speeds, so a scrape never waits on a tenant: the usage facts (unit states, mounts,
// statvfs, cgroup files: no process of the tenant is touched or woken) are read for every
// tenant every metrics.refresh seconds while hostd is scraped (refresh_usage_if_scraped, on its
// own thread), and a scrape shows the latest pass with its age (hostd_metrics_usage_age_seconds;
// with thousands of tenants those reads took most of a scrape); a scrape reads them itself when
// no pass is recent (the first scrape, or no such thread); the PostgreSQL facts
// (up, connections, database size), unit restarts and an HA member's role (its Patroni's
// /cluster) are refreshed in the background, one tenant at a time (refresh_next), and a scrape
// shows the latest: a scrape makes no HTTP call. Every read of the machine
// goes through an Observer (observe.h), so this logic is tested against a fake one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"
#include "hostd/observe.h"
#include "hostd/opstats.h"
#include "model/tenant.h"
#include "model/views.h"
#include "metrics/metrics.h"

namespace hostd {

// An HA tenant's member on this host (#17) as its own Patroni's GET /cluster tells it (one
// call per refresh of the tenant, with the slow facts).
struct HaMemberFacts {
    std::string role = "unknown";  // primary | replica | down (not in Patroni's answer) | unknown (no answer)
    bool patroni_up = false;       // its Patroni answered GET /cluster
    bool sync = false;             // the synchronous standby
    std::optional<uint64_t> lag_bytes;
    std::optional<uint32_t> timeline;
};

// Facts about one tenant; nullopt: not known (not mounted, not running, not reported).
struct TenantFacts {
    std::string name, state;
    bool read_only = false;
    bool stopped = false;  // stopped on purpose: not down, so no `up` (nor its alert)
    bool hibernated = false;  // [hibernate]: not down either, no `up`; never asked (that would not wake it)
    uint64_t disk_size = 0;
    std::optional<uint64_t> bytes_total, bytes_used, bytes_available, inodes_total, inodes_used;
    std::optional<uint64_t> memory_current, memory_limit, tasks_current, tasks_limit;
    std::optional<double> cpu_seconds;
    std::optional<uint64_t> io_read_bytes, io_write_bytes;
    std::string unit_state;  // systemd ActiveState; "" if not loaded
    // Slow facts (background refresh).
    std::optional<uint32_t> restarts;
    std::optional<bool> up;
    std::optional<uint64_t> connections, max_connections, database_bytes;
    std::optional<ArchiveFacts> archive;  // with backups on
    std::optional<BackupHealth> backup;   // with backups on: hostd's BackupWatch
    std::optional<HaMemberFacts> ha;      // an HA tenant with a member on this host
};

struct HostFacts {
    std::string version;
    OpStats ops;
    double last_scrape_seconds = 0;
    double refresh_round_seconds = 0;  // how long one pass of the slow facts over every tenant takes
    double usage_age_seconds = 0;      // how old the usage facts are (0: read by this scrape)
};

// Pure: the families for these facts, in a fixed order (golden-tested, promtool-checked).
std::vector<metrics::Family> metric_families(const std::vector<TenantFacts>& tenants, const HostFacts& host);

// Pure: seconds between two single-tenant refreshes of the slow facts. Each refresh is a
// PostgreSQL connection (a backend fork and a SCRAM exchange, about 10 ms of CPU on a 2-CPU
// VM); refreshing every tenant every `refresh` seconds makes the host's load grow with the
// tenant count (200 tenants every 5 s: 15 % of the machine, and creates 40 % slower). So a
// round takes max(refresh, tenants / budget) seconds, spread evenly: at most `budget`
// connections per second, whatever the count. No tenants: look again after `refresh`.
double refresh_gap_seconds(size_t tenants, double refresh, double budget);

// What the collector reports on: the tenants' records and the operation counters (the
// daemon wires both to its Manager). Called from scrape threads: both must be thread-safe.
struct TenantSource {
    std::function<std::vector<TenantRecord>()> records;
    std::function<OpStats()> op_stats;
    std::function<std::map<std::string, BackupHealth>()> backups;  // optional: backups on
};

class Collector {
public:
    Collector(TenantSource tenants, std::unique_ptr<Observer> observer, const Config& cfg, std::string version);
    // The exposition text of one scrape.
    std::string scrape();
    // The slow facts (libpq + systemd) of the ready tenant refreshed longest ago (or never);
    // facts of tenants no longer ready, or stopped on purpose, are dropped. Returns the seconds to wait before the
    // next call (refresh_gap_seconds).
    double refresh_next();
    // One pass of the usage facts over every tenant, kept for the scrapes that follow.
    void refresh_usage();
    // refresh_usage, if hostd was scraped in the last 10 minutes (an unwatched host reads
    // nothing); a thread calls it every metrics.refresh seconds. A scrape uses a pass up to
    // 3 × metrics.refresh old, and reads the facts itself otherwise.
    void refresh_usage_if_scraped();

private:
    // The usage facts of one tenant (TenantFacts' fast half).
    struct Usage {
        std::optional<storage::DiskStats> disk;  // mounted, and statvfs answered
        std::string unit_state;
        std::optional<CgroupUsage> cgroup;  // its unit active
    };
    using Clock = std::chrono::steady_clock;
    std::map<std::string, Usage> read_usage(const std::vector<TenantRecord>& records);

    struct Slow {
        std::optional<uint32_t> restarts;
        std::optional<bool> up;
        std::optional<uint64_t> connections, max_connections, database_bytes;
        std::optional<ArchiveFacts> archive;
        std::optional<HaMemberFacts> ha;
    };
    TenantSource tenants_;
    std::unique_ptr<Observer> observer_;
    Config cfg_;
    std::string version_;
    std::mutex mu_;  // guards slow_, last_scrape_ and the usage below
    std::map<std::string, Slow> slow_;
    double last_scrape_ = 0;
    std::shared_ptr<const std::map<std::string, Usage>> usage_;  // the last pass (nullptr: none)
    Clock::time_point usage_at_{}, scraped_at_{};
    std::mutex pass_mu_;  // one pass at a time
    double round_seconds_ = 0;
    // Only the refreshing thread touches these. Refreshes are numbered, not timed: only their
    // order matters (which tenant is the stalest).
    uint64_t refreshes_ = 0;
    std::map<std::string, uint64_t> refreshed_at_;
};

}  // namespace hostd

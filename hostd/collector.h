// /metrics: what is known about each tenant and about hostd, as Prometheus families.
// Two speeds, so a scrape never waits on a tenant: cgroup files and statvfs are read on
// every scrape (cheap: no process of the tenant is touched or woken); the PostgreSQL facts
// (up, connections, database size) and unit restarts are refreshed in the background by
// refresh_slow() and a scrape shows the latest.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "hostd/config.h"
#include "hostd/opstats.h"
#include "hostd/tenant.h"
#include "metrics/metrics.h"

namespace hostd {

class Manager;

// Facts about one tenant; nullopt: not known (not mounted, not running, not reported).
struct TenantFacts {
    std::string name, state;
    bool read_only = false;
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
};

struct HostFacts {
    std::string version;
    OpStats ops;
    double last_scrape_seconds = 0;
};

// Pure: the families for these facts, in a fixed order (golden-tested, promtool-checked).
std::vector<metrics::Family> metric_families(const std::vector<TenantFacts>& tenants, const HostFacts& host);

class Collector {
public:
    Collector(Manager& m, const Config& cfg, std::string version);
    // The exposition text of one scrape.
    std::string scrape();
    // One round of the slow facts (libpq + systemd) for every ready tenant.
    void refresh_slow();

private:
    struct Slow {
        std::optional<uint32_t> restarts;
        std::optional<bool> up;
        std::optional<uint64_t> connections, max_connections, database_bytes;
    };
    Manager& m_;
    Config cfg_;
    std::string version_;
    std::mutex mu_;  // guards slow_ and last_scrape_
    std::map<std::string, Slow> slow_;
    double last_scrape_ = 0;
};

}  // namespace hostd

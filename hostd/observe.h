// The seam between the metrics collector and the machine: the few reads it makes, as domain
// verbs. The real implementation (observe.cc) composes units/ (sd-bus), pgconf/ (libpq),
// storage/ (mount table, statvfs) and the cgroup files; tests inject a fake. The collector
// decides what a failure means, so a verb throws Error when it cannot find out rather than
// guessing a value.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "model/config.h"
#include "model/tenant.h"
#include "storage/storage.h"

namespace hostd {

// What a tenant's cgroup reports; nullopt: not reported (no such file, no limit set).
struct CgroupUsage {
    std::optional<uint64_t> memory_current, memory_limit, tasks_current, tasks_limit;
    std::optional<double> cpu_seconds;
    std::optional<uint64_t> io_read_bytes, io_write_bytes;
    bool operator==(const CgroupUsage&) const = default;
};

// What a tenant's PostgreSQL says about itself; a field missing from its answer stays nullopt.
// pg_stat_archiver: the WAL PostgreSQL handed to its archive_command (pgBackRest's push).
struct ArchiveFacts {
    uint64_t archived = 0, failed = 0;
    double last_archived = 0, last_failed = 0;  // Unix time; 0: never
    // WAL segments waiting for the archiver (pg_wal/archive_status/*.ready), and since when the
    // oldest waits (Unix time; 0: none waits).
    uint64_t pending = 0;
    double oldest_pending = 0;
    bool operator==(const ArchiveFacts&) const = default;
};

struct PgFacts {
    std::optional<uint64_t> connections, max_connections, database_bytes;
    std::optional<ArchiveFacts> archive;
    bool operator==(const PgFacts&) const = default;
};

// Called from scrapes and the refresh at once: implementations are thread-safe.
class Observer {
public:
    virtual ~Observer() = default;
    // ActiveState of every loaded tenant unit, by unit name. Throws if systemd cannot be asked.
    virtual std::map<std::string, std::string> unit_states() = 0;
    // Mount points directly below the configured mount root.
    virtual std::set<std::string> mounted() = 0;
    // statvfs of the filesystem mounted there; throws if it cannot be read (e.g. just unmounted).
    virtual storage::DiskStats disk(const std::string& mountpoint) = 0;
    // The files of the unit's cgroup (its path below a controller's root, TenantLayout::cgroup);
    // never throws (what cannot be read stays nullopt).
    virtual CgroupUsage cgroup(const std::string& cgroup_path) = 0;
    // How often systemd restarted the unit (NRestarts); throws if systemd cannot be asked.
    virtual uint32_t restarts(const std::string& unit) = 0;
    // Whether PostgreSQL accepts connections on the tenant's socket (PQping: no login, so a
    // tenant that changes its passwords or drops roles cannot make it look down, or up).
    virtual bool pg_up(const TenantRecord& t, const std::string& socket_dir) = 0;
    // Connections, max_connections and database size, asked over the tenant's socket directory
    // with hostd's own login (pgconf::monitor_params); throws if that login or query fails.
    virtual PgFacts pg_facts(const TenantRecord& t, const std::string& socket_dir) = 0;
    // An HA member's Patroni: GET /cluster's body (hostd/patroni_client.h: plain HTTP to the
    // member's address and rest_port, 2 s); throws Errc::unavailable when it does not answer.
    virtual std::string patroni_cluster(const HaMember& m) = 0;
};

std::unique_ptr<Observer> make_real_observer(const Config& cfg);

// The real cgroup files of a unit's cgroup (its path below a controller's root), as
// Observer::cgroup reads them; never throws.
CgroupUsage read_cgroup_usage(const std::string& cgroup_path);

// cgroup files, parsed from their text (pure, so unit-tested against fixtures).
namespace cgroupfs {

// One number (memory.current, pids.max, memory.limit_in_bytes, cpuacct.usage); nullopt for
// v2's "max" and v1's huge "no limit" value, as for anything that is not a number.
std::optional<uint64_t> parse_u64(std::string_view text);

// key's values summed over the lines: "key value" (v2 cpu.stat) or "dev key=value ..." (v2
// io.stat, one line per device); nullopt if key does not occur.
std::optional<uint64_t> parse_keyed(std::string_view text, std::string_view key);

// v1 blkio.throttle.io_service_bytes_recursive: "MAJ:MIN Op bytes" lines; op's bytes summed
// over the devices (the closing "Total N" line is not a device).
std::optional<uint64_t> parse_blkio(std::string_view text, std::string_view op);

// A file's text by its path below /sys/fs/cgroup ("/memory/system.slice/..."); nullopt if absent.
using ReadFile = std::function<std::optional<std::string>(const std::string& path)>;

// The usage of the cgroup at path cg ("/system.slice/x.service") in the unified (v2) or the
// per-controller (v1) hierarchy.
CgroupUsage usage(bool v2, const std::string& cg, const ReadFile& read);

}  // namespace cgroupfs
}  // namespace hostd

// What hostd answers about tenants and the host: the replies of its verbs, as domain types.
// The Manager returns them; wire/ renders them as the API's JSON (and parses them back in
// hostctl's client).
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/tenant.h"
#include "storage/storage.h"

namespace hostd {

// Live facts of a running tenant: its unit, cgroup usage and disk.
struct LiveStatus {
    std::string active_state, sub_state;  // systemd's; empty with unit_error set when unknown
    uint32_t main_pid = 0;
    uint32_t restarts = 0;
    std::optional<uint64_t> memory_current, memory_max, tasks_current, cpu_usage_nsec;
    // Bytes the unit's cgroup read from and wrote to block devices (cgroup v2 io.stat, v1 blkio);
    // nullopt where the kernel does not account them.
    std::optional<uint64_t> io_read_bytes, io_write_bytes;
    std::string unit_error;                // why the unit could not be asked
    // How the unit last failed: systemd's Result ("exit-code", "signal", "start-limit-hit", ...;
    // "success" or "" when it has not) and how PostgreSQL's main process last ended ("killed by
    // signal KILL", "exited with status 1"; "" when unknown).
    std::string result, last_exit;
    std::optional<storage::DiskStats> disk;
};

// What a ready tenant is doing now, in one word, and why when it is not serving:
//   running     PostgreSQL runs (and answered, where it was asked)
//   read-only   it runs, and the disk-full guard holds it read-only
//   stopped     stopped on purpose (hostctl stop); stays so across reconcile and reboot
//   hibernated  stopped after a quiet spell ([hibernate]); its next connection starts it
//   down        it should run and does not: the unit failed or is not running, hostd left it
//               down (reason: problem), or it runs and refuses connections (reason: the check)
//   restarting  a restart is under way (hostctl restart, or systemd after a crash)
//   starting / stopping   systemd is starting or stopping it
//   unknown     systemd could not be asked
// Other lifecycle states (creating, deleting, detached) are their own word.
struct Live {
    std::string state, reason;
};
// Pure. unit: systemd's view (active_state "" when the unit is not loaded, unit_error when
// systemd could not be asked); problem: why hostd left it down ("" if it did not); activity: a
// verb under way on it ("restarting", ...; "" if none); ping: nullopt when PostgreSQL was not
// asked, "" when it answered, else why it did not.
Live derive_live(const TenantRecord& t, const LiveStatus& unit, const std::string& problem, const std::string& activity,
                 const std::optional<std::string>& ping);

// A backup that failed: on request (hostctl backup, POST .../backups) or by its timer (the
// hostd-backup-<type>@<tenant>.service unit failed), with pgBackRest's reason.
struct BackupFailure {
    std::time_t at = 0;        // when it ended
    std::string type;          // full | diff | incr
    std::string by;            // "request" | "schedule"
    std::string message;       // pgBackRest's error (or systemd's result when it said nothing)
};

// A tenant's backups as hostd last saw them (backup.repo set): read from pgBackRest's info
// and the repository directory in the background (hostd/backupwatch.h), never per request.
struct BackupHealth {
    std::time_t checked = 0;           // when the repository was last looked at (0: not yet)
    std::string error;                 // why the last look failed ("" : it did not)
    std::time_t last_backup = 0;       // when the newest backup finished (0: none)
    std::string last_type, last_label; // and what it was
    std::time_t last_full = 0;         // when the newest full backup finished (0: none)
    std::time_t last_wal = 0;          // when the newest WAL segment reached the repository (0: none)
    std::optional<uint64_t> repo_bytes;  // bytes on disk of its repository directory
    uint64_t failures = 0;             // failed backups since hostd started
    std::optional<BackupFailure> last_failure;
    // The newest attempt failed: a failure after the newest backup.
    bool failing() const { return last_failure && last_failure->at >= last_backup; }
};

// One member of an HA tenant as hostd tells it: where it is (from the record) and what Patroni
// says of it where Patroni was asked (else role and state "unknown").
struct MemberView {
    std::string host;
    std::string role = "unknown";   // primary | replica | down (Patroni does not list it) | unknown
    std::string state = "unknown";  // running | streaming | starting | stopped | down | unknown
    std::optional<uint64_t> lag_bytes;  // WAL bytes a replica is behind (nullopt: unknown)
    std::optional<uint64_t> timeline;
    bool sync = false;              // the synchronous standby
    std::string address, public_host;
    uint16_t public_port = 0;
    bool operator==(const MemberView&) const = default;
};

// An HA tenant's Patroni cluster as a whole.
struct HaView {
    std::string leader;               // the primary's host; "" when none is known
    std::optional<uint64_t> timeline;
    bool synchronous = false, strict = false;  // the tenant's, as recorded
    std::string source;               // the host whose Patroni told this ("": none was asked or answered)
    bool operator==(const HaView&) const = default;
};

// A tenant as the API shows it: the record's public part and where it lives.
struct TenantView {
    std::string name;
    TenantState state = TenantState::creating;
    std::string step;
    TenantSpec spec;  // spec.device is not shown: `device` below is the one in use
    std::string fs_uuid, label, device, device_id, image, mountpoint, unit, os_user, admin_user, created_at;
    uint16_t port = 0;
    uint16_t public_port = 0;   // the port clients connect to (the shared one for SNI routes)
    bool read_only = false;
    std::string url;            // ready tenants only; with the password only where secrets are shown
    std::string read_only_url;  // a ready HA tenant's replicas (through each member host's proxy), as url
    std::optional<std::string> password;
    std::optional<LiveStatus> status;
    // Settings PostgreSQL runs with other values than its files say until a restart
    // (pg_settings.pending_restart), where hostd could ask (GET of a ready tenant).
    std::optional<std::vector<std::string>> pending_restart;
    std::string problem;        // why a ready tenant is not running
    bool stopped = false;       // stopped on purpose (the record's intent)
    Live live;                  // derive_live: what it is doing now ("" where not asked)
    std::optional<BackupHealth> backup;  // backup.repo set: its backups as last seen (GET of one)
    // An HA tenant: its members (none for a plain tenant) and its cluster.
    std::vector<MemberView> members;
    std::optional<HaView> ha;
};

// The record as the API shows it; with_secret adds the admin password (and puts it in the URL).
TenantView view_of(const Config& cfg, const TenantRecord& t, bool with_secret);

struct Created {
    TenantView tenant;  // with its password
    long ms = 0;
    std::string destroyed;  // what a forced create erased ("" if nothing)
};

// POST /v1/tenants/{name}/restore: the tenant brought back from its backups onto a new disk.
struct Restored {
    TenantView tenant;     // with its password (the one it had)
    long ms = 0;
    std::string target;    // what it was restored to: "latest", a time or a backup label
    std::string wal_max;   // the newest archived WAL segment when the restore began ("" if none)
};

struct Resized {
    TenantView tenant;
    long ms = 0;
    bool online = true;  // false: grown offline, PostgreSQL restarted
    std::optional<storage::DiskStats> disk;
};

struct LimitsChanged {
    TenantView tenant;
    std::vector<std::string> pending_restart;  // settings PostgreSQL applies at its next restart
};

struct Deleted {
    std::string name;
    std::string state;  // "deleted" (purged) or "detached" (data kept)
    bool purged = false;
    // Its backups: "kept" (for branches; a purged tenant's until kept_until, "" = until purged
    // by hand), "purged", or "" (backups off or none).
    std::string backups;
    std::string kept_until;
};

struct ReconcileAction {
    std::string tenant;   // "" for host-wide actions (routes)
    std::string action;
    std::string problem;  // "" when it went well
};

struct ReconcileReport {
    std::vector<ReconcileAction> actions;
    long duration_ms = 0;
};

// One backup of a tenant, as the API shows it.
struct BackupView {
    std::string label, type, prior;           // type: full | diff | incr; prior: what it builds on
    std::string started_at, finished_at;      // RFC 3339, UTC
    uint64_t size = 0, repo_size = 0, repo_delta = 0;  // cluster size; in the repository; added to it
    std::string wal_start, wal_stop;
};

// GET /v1/tenants/{name}/backups: the backups, oldest first, and what can be restored.
struct BackupList {
    std::string tenant;
    std::vector<BackupView> backups;
    std::string wal_min, wal_max;  // archived WAL segments
    // From the end of the oldest backup to the newest archived WAL: any time in between.
    std::string recoverable_from;
    bool running = false;          // a backup is in progress
    std::string status;            // pgBackRest's word ("ok", "no valid backups", ...)
    // A deleted tenant's: "detached" (deleted, data kept), "purged" (disk destroyed, backups
    // kept until kept_until; "" = until purged by hand); "" for a live tenant.
    std::string deleted;
    std::string deleted_at, kept_until;
    std::optional<BackupFailure> last_failure;  // the newest failed backup since hostd started
    bool failing = false;          // and no backup succeeded after it
};

// A deleted tenant whose backups are kept (GET /v1/deleted, hostctl backups without a name).
struct KeptView {
    std::string name;
    std::string deleted_at, kept_until;  // kept_until "": until purged by hand
    std::string repository;              // the local repository, or with a repository host the files for it here
    std::string repository_host;         // "" a local repository
    uint32_t uid = 0, gid = 0;           // the OS user that still owns them
    std::string os_user, admin_user, filesystem;
    uint64_t disk_size = 0, memory = 0;  // what a branch takes when its request leaves them out
};

struct BackupDone {
    std::string tenant;
    BackupView backup;
    long ms = 0;
};

// Capacity: what the tenants are given against what the host has.
struct HostInfo {
    uint64_t tenants = 0, tenants_active = 0;
    uint64_t memory_committed = 0, memory_total = 0;
    // limits.memory_overcommit (0: no limit); memory_free: what one more tenant may still have
    // (memory_overcommit × memory_total − memory_committed; without a limit, total − committed).
    double memory_overcommit = 0;
    uint64_t memory_free = 0;
    double cpu_committed = 0;
    uint64_t cpus = 0;
    uint64_t disk_committed = 0, loop_dir_available = 0;
    // How many more tenants the port ranges take; ports_detached: tenants deleted without
    // purge hold their ports for a reuse (same URL) until purged.
    uint64_t ports_free = 0, ports_detached = 0;
    uint64_t ports_total = 0;  // tenants the port ranges hold in all
    // [ha] (#17): this host's name among the HA hosts ("" while HA is off), its address there,
    // and every HA host's name and address ([ha] hosts, this one included).
    std::string ha_host, ha_address;
    std::vector<std::pair<std::string, std::string>> ha_hosts;
};

}  // namespace hostd

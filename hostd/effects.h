// The seam between the Manager's plans and the machine: a few domain verbs. The real
// implementation (effects_real.cc) composes storage/, units/, pgconf/, routes/; tests inject
// a fake that records calls and fails on demand. Every verb that undoes something is
// idempotent (undoing what is not there is fine), so rollback and delete can share them.
// Paths and names come from the tenant's layout (model/layout.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backup/ops.h"
#include "ha/plan.h"
#include "model/config.h"
#include "model/layout.h"
#include "model/restore.h"
#include "model/tenant.h"
#include "model/views.h"
#include "pool/pool.h"
#include "routes/routes.h"
#include "storage/storage.h"
#include "units/sockets.h"
#include "units/systemd.h"
#include "units/users.h"

namespace hostd {

// A scheduled backup whose unit failed.
struct FailedBackupUnit {
    std::string unit, tenant, type;  // hostd-backup-<type>@<tenant>.service
    std::time_t at = 0;              // when it stopped (the unit's InactiveEnterTimestamp)
    std::string message;             // pgBackRest's error, or how the unit ended
};

// How a branch's cluster was made (Effects::restore_cluster).
enum class BranchCopy {
    restored,  // from the source's repository, recovered to its target, the branch's password set
    streamed,  // copied from the running source; the branch's password is set after its start
};

class Effects {
public:
    virtual ~Effects() = default;

    // Nothing listens on port (TCP, any address) right now.
    virtual bool port_free(uint16_t port) = 0;

    // Loop images and their loop devices.
    virtual void create_image(const std::string& path, uint64_t size) = 0;
    virtual void remove_image(const std::string& path) = 0;
    virtual std::string attach_image(const std::string& path) = 0;          // → /dev/loopN
    virtual void detach_image(const std::string& path) = 0;                 // whatever loop device backs it
    virtual void grow_image(const std::string& path, uint64_t size) = 0;    // and its loop device
    // Block devices. The safety matrix of storage::check_device; force lets only "carries a
    // signature" pass, and the result says what formatting will destroy.
    virtual storage::DeviceCheck check_device(const std::string& device, bool force) = 0;
    virtual uint64_t device_size(const std::string& device) = 0;
    // Destroys every signature on a device check_device(device, force=true) accepted.
    virtual void erase_signatures(const std::string& device) = 0;
    // Gives the device back blank (storage::wipe_device), but only if it holds the filesystem
    // with fs_uuid (what hostd made): a device that holds anything else is left alone.
    virtual void wipe_device(const std::string& device, const std::string& fs_uuid) = 0;
    // Device backend: where the tenant's disk is now. t.device while it carries t.fs_uuid; else
    // the one device that does (a reboot renamed the disk); else t.device (the mount then says
    // what is missing). With the disk's stable id (storage::stable_id, "" if it has none).
    struct Located {
        std::string device, device_id;
    };
    virtual Located locate_device(const TenantRecord& t) = 0;
    // Loop backend: the space images can have: free under loop_dir (statvfs f_bavail, of the
    // nearest directory that exists) and what the images named hold already (allocated blocks;
    // a missing image holds nothing).
    struct LoopSpace {
        uint64_t available = 0, written = 0;
    };
    virtual LoopSpace loop_space(const std::vector<std::string>& images) = 0;
    // What is left of a tenant's disk (model/restore.h), for a restore and for saying why a
    // disk is missing: reads only (libblkid probes, the mount table, the unit's state).
    virtual DiskFacts disk_facts(const TenantRecord& t, const TenantLayout& l) = 0;

    // Filesystems.
    virtual void format(const std::string& device, const std::string& fs, const std::string& label,
                        const std::string& uuid) = 0;
    // Mounts by UUID at the tenant's mount point (the device found must be t.device) and checks
    // or writes the marker file.
    virtual void mount(const TenantRecord& t, const TenantLayout& l, bool fresh) = 0;
    virtual void unmount(const TenantLayout& l) = 0;  // and removes the empty mount point
    // Grows the mounted filesystem to fill its (already grown) device. Errc::unavailable when
    // it can only grow unmounted here (ext4 without CAP_SYS_RESOURCE): then grow_offline does
    // it while the filesystem is unmounted.
    virtual void grow_filesystem(const TenantRecord& t, const TenantLayout& l) = 0;
    virtual void grow_offline(const TenantRecord& t) = 0;
    // Whether grow_filesystem can work while mounted here (xfs always; ext4 needs
    // CAP_SYS_RESOURCE), so a resize can say before it starts that it must stop PostgreSQL.
    virtual bool grows_online(const TenantRecord& t) = 0;
    // Usage of the tenant's filesystem; nullopt if nothing is mounted there.
    virtual std::optional<storage::DiskStats> disk_usage(const TenantLayout& l) = 0;
    // Disk-full guard: the reserve file on the tenant's filesystem, and the read-only switch
    // (default_transaction_read_only in a file PostgreSQL reads last, then a reload).
    virtual void ensure_reserve(const TenantLayout& l, uint64_t bytes) = 0;
    virtual uint64_t release_reserve(const TenantLayout& l) = 0;
    virtual void set_read_only(const TenantRecord& t, const TenantLayout& l, bool on) = 0;

    // Identity. create_user takes a uid/gid from hostd.toml's users.ids and writes hostd's
    // marker (units::kUserMarker); find_user says whether a user carries it (OsUser::hostd).
    // delete_user removes a user that carries it and leaves any other alone.
    virtual units::OsUser create_user(const std::string& name, const std::string& home) = 0;
    virtual void delete_user(const std::string& name) = 0;
    virtual std::optional<units::OsUser> find_user(const std::string& name) = 0;

    // What exists on the machine that hostd makes, by tenant name: the reconcile compares it
    // with the records and removes what no tenant owns.
    struct Inventory {
        std::set<std::string> units;    // unit loaded and not inactive
        std::set<std::string> mounts;   // mounted at <mount_root>/<t>
        std::set<std::string> images;   // <loop_dir>/<t>.img attached to a loop device
        std::set<std::string> dropins;  // persistent unit drop-ins
        std::set<std::string> users;    // OS user made by hostd
        // The same for an HA member's unit (hostd-patroni@<t>, UnitKind::patroni); units and
        // dropins above are hostd-postgres@<t>'s.
        std::set<std::string> patroni_units, patroni_dropins;
    };
    virtual Inventory inventory() = 0;

    // Cluster: fresh initdb, or adopt an existing data directory (new uid, new port).
    virtual void init_cluster(const TenantRecord& t, const TenantLayout& l, const units::OsUser& u) = 0;
    virtual void adopt_cluster(const TenantRecord& t, const TenantLayout& l, const units::OsUser& u) = 0;

    // Backups (backup.repo set; pgBackRest runs as the tenant's OS user). prepare_backups: its
    // repository directory, the backup role and its peer login, the stanza; idempotent, needs
    // the tenant running.
    // files_current: the cluster's pg_hba/pg_ident were rendered for it by this create (initdb,
    // the pool's hand-over, a branch, a restore), so they are neither written nor reloaded again.
    virtual void prepare_backups(const TenantRecord& t, const TenantLayout& l, bool files_current) = 0;
    virtual void run_backup(const TenantRecord& t, const TenantLayout& l, backup::BackupType type) = 0;
    virtual backup::Info backup_info(const TenantRecord& t, const TenantLayout& l) = 0;
    // The tenant's repository directory on disk (backup::repository_usage); throws when it
    // cannot be read.
    virtual backup::RepoUsage repository_usage(const TenantLayout& l) = 0;
    // The scheduled backups' units (hostd-backup-<type>@<tenant>.service) that failed, with
    // when and why (pgBackRest's error from the unit's journal). Throws if systemd cannot be asked.
    virtual std::vector<FailedBackupUnit> failed_backup_units() = 0;
    // A hibernated tenant's scheduled backups (its unit stopped, stop_unit stopped its timers
    // too): its environment file written and its backup timers started (none without local
    // backups). Throws if systemd cannot be asked.
    virtual void arm_backup_timers(const TenantRecord& t, const TenantLayout& l) = 0;
    // One of its scheduled backups' units is under way (activating or active).
    virtual bool backup_running(const TenantLayout& l) = 0;
    // A branch's cluster in l.pgdata, handed to u with hostd's files for t. Of a running
    // source at "latest": copied from its server (pg_basebackup as src's OS user), its admin's
    // password set at its first start (hand_over_branch); else, or when that copy fails: src's
    // backup restored and recovered to target (as src's OS user), t's admin password set.
    virtual BranchCopy restore_cluster(const TenantRecord& src, const TenantRecord& t, const TenantLayout& l,
                                       const units::OsUser& u, const backup::Target& target) = 0;
    // A started branch copied from its running source: its admin role gets t.password (root's
    // login of the first start), and its pg_hba/pg_ident lose that login.
    virtual void hand_over_branch(const TenantRecord& t, const TenantLayout& l) = 0;
    // A tenant's backup directory (TenantLayout::backup_dir, or a deleted one's kept one):
    // whether it is there; handed (with all it holds) to u; a local repository removed with all
    // it holds.
    virtual bool has_repository(const std::string& dir) = 0;
    virtual void hand_repository(const TenantLayout& l, const units::OsUser& u) = 0;
    virtual void remove_repository(const std::string& repo) = 0;
    // With a repository host: its repository there dropped, then the tenant's files for it here
    // (its configuration, certificates) and its pgBackRest server stopped. Strict (a delete: the
    // files here say the repository there may still be) or, for a create rolled back, best effort
    // (the repository host may be why it failed: logged, the files here removed all the same).
    virtual void forget_remote_backups(const TenantLayout& l, bool best_effort) = 0;
    // A tenant deleted with its backups kept: its pgBackRest server here stopped, and its
    // repository there retired (no more scheduled backups; kept for branches and restores).
    virtual void retire_remote_backups(const TenantLayout& l) = 0;

    // Unit: its environment (the port PostgreSQL must listen on, given on its command line),
    // limits, start and wait for the job; stop also forgets failure and drop-ins.
    virtual void start_unit(const TenantLayout& l, uint16_t port, const units::Limits& limits) = 0;
    virtual void stop_unit(const TenantLayout& l) = 0;
    // Its environment and limits as start_unit, then a restart (a stop and a start, one job).
    virtual void restart_unit(const TenantLayout& l, uint16_t port, const units::Limits& limits) = 0;
    virtual bool unit_active(const TenantLayout& l) = 0;
    // The unit's reload (its ExecReload: an HA member's Patroni rereads patroni.yml).
    virtual void reload_unit(const TenantLayout& l) = 0;
    // Every loaded tenant unit, by tenant name, in one call to systemd: active_state and
    // sub_state (and for a failed one its result and last exit). A tenant whose unit is not
    // loaded is absent. Throws if systemd cannot be asked.
    virtual std::map<std::string, LiveStatus> unit_states() = 0;
    // Live change of a running tenant: new limits on its unit (persisted by systemd), the
    // tuning derived from them rewritten, PostgreSQL reloaded. Returns the settings that
    // PostgreSQL says wait for a restart (pg_settings.pending_restart).
    virtual std::vector<std::string> apply_limits(const TenantRecord& t, const TenantLayout& l) = 0;
    // An HA member's share of that: the unit's new limits only (persisted by systemd); its
    // tuning is in the member's files (write_member_files) and Patroni reloads PostgreSQL.
    virtual void set_unit_limits(const TenantRecord& t, const TenantLayout& l) = 0;

    // What PostgreSQL says waits for a restart (pg_settings.pending_restart), asked with
    // hostd's own login; nullopt when it cannot be asked (the tenant down, the login refused).
    virtual std::optional<std::vector<std::string>> pending_restart(const TenantRecord& t, const TenantLayout& l) = 0;
    // The tenant's admin role gets new_password (its SCRAM verifier, never the cleartext),
    // logged in as that role with t.password over the tenant's socket.
    virtual void set_password(const TenantRecord& t, const TenantLayout& l, const std::string& new_password) = 0;
    // An HA tenant's admin password, set on its primary (primary: that member) as Patroni's
    // superuser over TLS: the tenant's own ALTER ROLE of its admin cannot lock hostd out.
    virtual void set_ha_password(const TenantRecord& t, const HaMember& primary, const std::string& new_password) = 0;

    // PostgreSQL accepts connections on the tenant's socket (PQping: no login), within timeout.
    virtual void wait_ready(const TenantRecord& t, const TenantLayout& l, int timeout_ms) = 0;
    // One PQping there: "" when PostgreSQL accepts connections, else why not.
    virtual std::string ping(const TenantRecord& t, const TenantLayout& l) = 0;
    // The same through the proxy, as a client connects (hostaddr non-empty: an SNI route, host
    // being the TLS server name): the proxy routes to it again after a restart.
    virtual void wait_routed(const std::string& host, uint16_t port, const std::string& hostaddr, int timeout_ms) = 0;
    // hostd's own login to the tenant's cluster (pgconf::monitor_params): its pg_hba/pg_ident
    // lines and, if the login fails, the role created as the tenant's admin. Throws if it
    // cannot be made to work.
    virtual void ensure_monitor_login(const TenantRecord& t, const TenantLayout& l) = 0;
    // hostd's own role (pgconf::monitor_role_sql) made by the tenant's admin (t.password over
    // the socket): a fresh cluster has the pg_hba/pg_ident lines from its initdb, so the login
    // works at once. The admin's login is waited for up to timeout_ms, so this is also the
    // check that the cluster answers and the admin's password works (one login, not two).
    // Idempotent.
    virtual void create_monitor_role(const TenantRecord& t, const TenantLayout& l, int timeout_ms) = 0;

    // An HA member (#17). write_member_files: an empty pgdata for Patroni (the tenant's, 0700)
    // and the member's ha directory (TenantLayout::ha_dir, root's, the tenant's group may read):
    // patroni.yml as given, the tenant's settings as Patroni's custom_conf (model/patroni.h
    // ha_files), a server certificate of hostd's CA naming every member's address and public
    // host (the members verify each other's), its key (the tenant's, 0600) and the CA.
    // create_ha_admin: on the scope's first member, once Patroni's PostgreSQL runs: the tenant's
    // admin role (a superuser with t.password, as initdb makes it for a plain tenant), made as
    // Patroni's superuser over the socket, the login retried up to timeout_ms. Idempotent.
    virtual void write_member_files(const TenantRecord& t, const TenantLayout& l, const units::OsUser& u,
                                    const std::string& patroni_yml) = 0;
    virtual void create_ha_admin(const TenantRecord& t, const TenantLayout& l, int timeout_ms) = 0;
    // The tenant's Patroni scope in etcd (keys under /hostd/<tenant>/; hostd/etcd_admin.h): whether a member of it
    // is alive there (a member key: another fleet's HA tenant of that name, or one not deleted
    // yet), and its keys removed (what a failed or deleted HA tenant left). Throw
    // Errc::unavailable when etcd cannot be asked.
    // grant_ha_scope: the tenant's etcd user may read and write its scope (and nothing else):
    // before its members' Patroni start. forget_ha_scope also takes that user away.
    virtual bool ha_scope_in_use(const std::string& tenant) = 0;
    virtual void grant_ha_scope(const std::string& tenant) = 0;
    virtual void forget_ha_scope(const std::string& tenant) = 0;

    // The warm pool (hostd/warmpool.h). The ids of the images in dir (regular files named
    // <id>.img; none when dir does not exist). A formatted pool disk on device gets its cluster:
    // mounted apart from every tenant's, initdb'd by hostd's pool user with d's bootstrap role
    // and password, synced, unmounted. An image moved to a tenant's path (never over a file).
    // The tenant's label on its unmounted filesystem (only if it carries t.fs_uuid). A started
    // pool cluster handed to the tenant: its bootstrap role renamed to t.admin_user with
    // admin_secret (pgconf::scram_verifier of t.password), hostd's role made
    // (pgconf::hand_over_cluster).
    virtual std::set<std::string> pool_images(const std::string& dir) = 0;
    virtual void prepare_pool_cluster(const pool::Disk& d, const std::string& device) = 0;
    // The pool disk's filesystem made on device (d's filesystem and UUID, label "hostd-pool").
    // This mkfs and prepare_pool_cluster's initdb run in units of their own at idle CPU and I/O
    // weight (units::render_idle_job_unit), never in hostd's cgroup. stop_pool_jobs, at start:
    // every such unit a crash left running is stopped, its files removed (before the pool's
    // images are cleaned: a running initdb holds its disk).
    virtual void format_pool_disk(const pool::Disk& d, const std::string& device) = 0;
    virtual void stop_pool_jobs() = 0;
    virtual void rename_image(const std::string& from, const std::string& to) = 0;
    virtual void relabel(const TenantRecord& t) = 0;
    virtual void hand_over_cluster(const TenantRecord& t, const TenantLayout& l, const pool::Disk& d,
                                   const std::string& admin_secret) = 0;

    // The host's listening TCP sockets (owner uid, inode), and killing the processes of a user
    // that hold one: the port watch.
    virtual std::vector<units::Listener> tcp_listeners() = 0;
    virtual std::vector<pid_t> kill_socket_holders(uid_t uid, uint64_t inode) = 0;

    // libpq SELECT 1, retried until timeout. hostaddr non-empty: connect there, with host
    // only as the TLS server name (a route chosen by SNI).
    virtual void wait_sql(const std::string& host, uint16_t port, const std::string& user,
                          const std::string& password, int timeout_ms, const std::string& hostaddr) = 0;

    // The whole route table; validated before it replaces the running one. The proxy is
    // reloaded when the table changed, or always with force_reload (at start-up: a crash
    // between writing the file and reloading must not leave the proxy behind the file).
    virtual void apply_routes(const std::vector<routes::Route>& routes, bool force_reload = false) = 0;

    // Public ports the proxy listens on for no tenant yet (HAProxy's idle listeners): a create
    // takes one first, so that its route is switched on without a reload. Such a port is in use
    // (port_free says no) yet free for a tenant.
    virtual std::set<uint16_t> idle_route_ports() { return {}; }

    // The tenant unit template rendered for this configuration is the one systemd has: when the
    // installed file differs (other paths in hostd.toml), a runtime copy under
    // /run/systemd/system takes its place and systemd reloads once.
    virtual void ensure_unit_template() = 0;

    // PEM of hostd's local CA, which signs every tenant's server certificate (made on first use).
    virtual std::string ca_certificate() = 0;

    // Live facts for GET: unit state, cgroup usage, disk usage.
    virtual LiveStatus live_status(const TenantRecord& t, const TenantLayout& l) = 0;

    // An HA member's Patroni REST API (hostd/patroni_client.h: plain HTTP to its host's address
    // and rest_port). GET /cluster's body, within 2 s; throws Errc::unavailable naming the member.
    virtual std::string patroni_cluster(const HaMember& m) = 0;
    // POST /switchover {"leader", "candidate"} to m's Patroni (the leader's) with basic auth;
    // Patroni's answer when it took it (patroni::switchover_outcome: refusals are Errc::conflict).
    virtual std::string patroni_switchover(const HaMember& m, const ha::Credentials& rest, const ha::Switchover& s) = 0;
    // PATCH /config: the scope's shared parameters (patroni::patch_parameters).
    virtual void patroni_patch_parameters(const HaMember& m, const ha::Credentials& rest,
                                          const std::map<std::string, std::string>& parameters) = 0;
};

std::unique_ptr<Effects> make_real_effects(const Config& cfg);

// The proxy's writer as hostd.toml chooses it (proxy.kind). HAProxy's routes change over its
// runtime socket when they can, else by a reload through systemd. retired: the writer only
// empties the routes of a proxy no longer used (HAProxy then keeps no idle listeners).
std::unique_ptr<routes::RouteWriter> make_route_writer(const Config& cfg, bool retired = false);

}  // namespace hostd

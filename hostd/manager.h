// The Manager: hostd's tenants behind a few verbs in domain types. It owns the record store,
// the disks, the provisioner, the reconciler and the disk-full guard, checks each request
// before it takes the tenant's lock, and counts operations for /metrics. Effects are injected.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ha/plan.h"
#include "hostd/backupwatch.h"
#include "hostd/disks.h"
#include "hostd/effects.h"
#include "hostd/guard.h"
#include "hostd/opstats.h"
#include "hostd/peers.h"
#include "hostd/portwatch.h"
#include "hostd/provisioner.h"
#include "hostd/reconciler.h"
#include "hostd/store.h"
#include "hostd/warmpool.h"
#include "model/config.h"
#include "model/tenant.h"
#include "model/views.h"
#include "pgconf/settings.h"

namespace hostd {

class Manager final : public PeerHandler {
public:
    using Progress = Provisioner::Progress;

    // peers and self: on an HA host ([ha]), the client of the other hosts' peer API and this
    // host's name among them (none: HA tenants cannot be made or served here).
    Manager(Config cfg, std::unique_ptr<Effects> fx, std::unique_ptr<Peers> peers = nullptr, std::string self = "");

    // Reads every record under <state_dir>/tenants.
    void load();
    // At start-up: load, the host's CA, then reconcile (failures are logged and reported per
    // tenant, not fatal: the API must come up to let an operator see and fix things).
    void start();

    Created create(const std::string& name, const CreateRequest& req, const Progress& progress = {});
    // purge_backups (with purge): the backups go too; a name with only kept backups left
    // (model/kept.h) takes purge with purge_backups to remove them.
    Deleted remove(const std::string& name, bool purge, bool purge_backups = false);
    Resized resize(const std::string& name, const ResizeRequest& req);
    // memory, cpu, tasks, io_weight changed on the running unit without a restart; the reply
    // lists PostgreSQL settings that wait for a restart.
    LimitsChanged set_limits(const std::string& name, const LimitsUpdate& u);
    // A new password for the tenant's admin role (given, or generated as at create); the
    // reply carries it and the URL with it. hostd's own login is another role: monitoring goes on.
    TenantView set_password(const std::string& name, const PasswordRequest& req);
    // pgBackRest (backup.repo set): a backup now (type full, diff or incr: incr becomes full
    // when none exists), and the backups with what they can restore.
    BackupDone backup(const std::string& name, const std::string& type);
    BackupList backups(const std::string& name);  // also a detached or purged tenant's kept ones
    // Deleted tenants whose backups are kept, oldest deletion first.
    std::vector<KeptView> deleted() const;
    // Kept backups whose backup.deleted_retention has passed are removed, with their OS user
    // (logged); at start, on each reconcile and on hostd's hourly tick.
    void expire_kept();
    // Disaster recovery (Provisioner::restore): backups on, the tenant's disk really gone.
    Restored restore(const std::string& name, const RestoreRequest& req, const Progress& progress = {});
    // Lifecycle (Provisioner::stop/start/restart); each returns the tenant as GET shows it.
    TenantView stop(const std::string& name);
    TenantView start(const std::string& name);
    TenantView restart(const std::string& name);
    // [hibernate] (hostd/hibernate.h): Provisioner::hibernate under the tenant's lock (false at
    // once when a verb holds it), and Provisioner::wake, waiting for the lock until deadline
    // (Errc::conflict after it).
    // A backup on request (backup) holds its tenant awake: hibernate answers false meanwhile.
    bool hibernate(const std::string& name, const std::function<bool()>& still_idle);
    void wake(const std::string& name, std::chrono::steady_clock::time_point deadline);
    // POST /v1/tenants/NAME/wake (hostctl wake; a hibernated tenant's scheduled backup runs it
    // first): a hibernated tenant started as its next connection would; a running one, or one
    // down, is left as it is; one stopped on purpose is refused (409: hostctl start runs it).
    TenantView wake_now(const std::string& name);
    // An HA tenant's primary moved to another member (Patroni's POST /switchover to the leader,
    // with the REST credentials): to the member req.to names, or the one ha::plan_switchover
    // picks; waits until Patroni reports the candidate primary. Refused (409) for a plain tenant,
    // when no member is primary, or the member named cannot take over; 404 for a host that is
    // no member. Returns the tenant as GET shows it, with its members.
    TenantView switchover(const std::string& name, const SwitchoverRequest& req);
    // An HA tenant's member replaced (hostd/manager_ha.cc), asked of another member's host: the
    // member on req.member removed (its host unreachable: left, and fenced when it is back),
    // a new one prepared on req.with (or req.member again: rebuilt), every other member told
    // the new members (their pg_hba, certificate and routes), then the new one started: Patroni
    // clones it from the primary. Refused while the member to replace is the primary (409:
    // switch over first). A failed new member is undone and the others told the members left.
    TenantView replace_member(const std::string& name, const ReplaceRequest& req, const Progress& progress = {});
    ReconcileReport reconcile();
    // One round of the disk-full guard (a ticker calls it).
    void guard_tick() { guard_.tick(); }
    // One look for tenants listening on ports not their own (a ticker calls it).
    void port_watch_tick() { ports_.tick(); }
    // One round of the backups' watch (failed scheduled backups, a repository looked at); a
    // ticker calls it when backups are on.
    void backup_watch_tick() { backups_.tick(); }
    // One round of the warm pool's refill (its ticker calls it, at idle priority): how long
    // to wait before the next.
    std::chrono::milliseconds pool_tick() { return pool_.refill(); }
    // Every ready tenant's backups as last seen (for /metrics; no I/O).
    std::map<std::string, BackupHealth> backup_health() const { return backups_.all(); }

    // with_status: the live status (unit, cgroup, disk) of a ready tenant too, and `live`
    // from it and a PQping of PostgreSQL.
    TenantView get(const std::string& name, bool with_status = true);
    // with_status: each ready tenant's live status too, and every tenant's `live` from it (no
    // ping: that would cost a connection per tenant). Without, systemd is not asked at all.
    std::vector<TenantView> list(bool with_status = false);
    // Changes whenever what list(false) returns may have changed, never otherwise (unique in
    // the process): a reply rendered from a list stays right while it stays the same.
    uint64_t list_generation() const { return store_.generation(); }
    HostInfo host();
    std::string ca_certificate();

    // The peer API's side (hostd/peers.h PeerHandler): this host's member of an HA tenant
    // whose create another host coordinates, and its removal.
    std::optional<PeerMember> ha_member(const std::string& tenant) override;
    HaMember ha_prepare(const std::string& tenant, const HaPrepare& p) override;
    void ha_start(const std::string& tenant, const HaSpec& ha) override;
    void ha_abort(const std::string& tenant, const std::string& create_id) override;
    void ha_remove(const std::string& tenant, bool purge) override;
    void ha_update(const std::string& tenant, const HaSpec& ha) override;
    void ha_password(const std::string& tenant, const std::string& password) override;
    void ha_limits(const std::string& tenant, const std::string& create_id, const LimitsUpdate& full) override;
    // A member of this host that a replace took out while this host could not be reached: a
    // member host that answers lists the members without this one, for the same create. Its
    // member is stopped and deleted with its data (a copy the others no longer stream to). A
    // ticker calls it. Returns the tenants removed.
    std::vector<std::string> ha_fence_replaced();
    // A member prepared for another host's create whose start has not come within [ha]
    // prepare_timeout of its preparation (the coordinator died or gave up) is undone, as its
    // abort would have; one whose create is under way here (its lock held) is left. A ticker
    // calls it; now: the time to judge by. Returns the tenants undone.
    std::vector<std::string> ha_expire_prepared(std::time_t now);
    // What a restart of this hostd cut off in an HA operation it coordinated, finished on every
    // host: a create (this host's member still `creating`, as it is until every replica has
    // started) undone on every host of the fleet (abort with its create id), its scope
    // forgotten; a delete of the whole tenant (this host's member `removing`) finished on
    // every member's host, then here. A host busy with the tenant or unreachable is asked again
    // until patience runs out; then the tenant is left as it is for the next round. Runs first
    // in every reconcile (so at every start) and in the HA members' round; returns the tenants
    // left (the reconcile leaves them alone: its rollback would forget the other hosts' members).
    std::set<std::string> ha_recover(std::chrono::seconds patience);

    const Config& config() const { return cfg_; }
    // A copy of every tenant record (for collectors such as /metrics; no I/O, no waiting on
    // operations in progress).
    std::vector<TenantRecord> snapshot() const { return store_.snapshot(); }
    OpStats op_stats() const;

private:
    // An HA tenant (hostd/manager_ha.cc): this host's member prepared, each replica's prepared
    // on its host over the peer API, this member bootstraps the scope, then each replica is
    // started (cloned from it); any failure undoes every member made. The caller holds the OpLock.
    Created create_ha(const std::string& name, const CreateRequest& req, const TenantSpec& spec, const Progress& progress);
    // Every other member deleted on its host first (a host that cannot be reached stops the
    // delete: its member would run on alone), then this one, then the scope's keys in etcd.
    Deleted remove_ha(const TenantRecord& t, bool purge);
    // The delete of an HA tenant once the other members are gone: this host's member, then the
    // scope's keys and the etcd user.
    Deleted finish_ha_delete(const std::string& name);
    // A new admin password for an HA tenant: set on the primary Patroni reports, then recorded
    // here and on every other member host. The caller holds the OpLock.
    TenantView set_ha_password(const TenantRecord& t, const PasswordRequest& req);
    // New limits, settings or extensions for an HA tenant, from any member host: every other
    // member host must answer first; the scope's shared settings go to Patroni's configuration
    // (PATCH /config), then each member host applies its share (Provisioner::set_member_limits).
    LimitsChanged set_ha_limits(const TenantRecord& t, const LimitsUpdate& u);
    void need_ha(const char* what) const;
    // A hibernated tenant woken for a verb that needs its PostgreSQL (the caller holds the OpLock).
    void awake(const std::string& name);
    // Errc::conflict for a verb an HA tenant does not have yet (what: "resized", ...).
    void not_for_ha(const std::string& name, const char* what);
    // A backup on request of the tenant under way (in backing_up_ while it lives): hibernate
    // leaves the tenant awake meanwhile.
    class AwakeHold {
    public:
        AwakeHold(Manager& m, std::string name);
        ~AwakeHold();
        AwakeHold(const AwakeHold&) = delete;
        AwakeHold& operator=(const AwakeHold&) = delete;

    private:
        Manager& m_;
        std::string name_;
    };

    // A tenant whose backups can be asked for: backups on, the tenant ready.
    TenantRecord backed_up(const std::string& name);
    template <class F>
    auto timed(const char* kind, F&& fn);
    // Patroni's view of an HA tenant from the first member that answers GET /cluster (this
    // host's member first); nullopt, with each member's failure in why, when none does.
    struct Asked {
        ha::ClusterView view;
        std::string source;  // the member host that answered
    };
    std::optional<Asked> ask_cluster(const HaSpec& ha, std::string& why);

    Config cfg_;
    std::unique_ptr<Effects> fx_;
    std::unique_ptr<Peers> peers_;
    std::string self_;
    pgconf::SettingsCatalog catalog_;
    Store store_;
    Disks disks_;
    Guard guard_;
    WarmPool pool_;
    Provisioner prov_;
    Reconciler reconciler_;
    PortWatch ports_;
    BackupWatch backups_;
    mutable std::mutex stats_mu_;
    OpStats stats_;
    std::mutex backing_up_mu_;
    std::multiset<std::string> backing_up_;  // tenants with a backup on request under way
};

}  // namespace hostd

// The provisioner: the plans that make, change and unmake a tenant — create (new or reuse),
// delete (keep or purge), resize, live limits — step by step, each step recorded before it is
// taken and undone if a later one fails. The caller holds the tenant's OpLock.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "hostd/disks.h"
#include "hostd/effects.h"
#include "hostd/guard.h"
#include "hostd/store.h"
#include "hostd/warmpool.h"
#include "model/config.h"
#include "model/layout.h"
#include "model/restore.h"
#include "model/tenant.h"
#include "model/views.h"
#include "pgconf/settings.h"

namespace hostd {

class Provisioner {
public:
    // Told when each create step starts (ms -1) and when it ends, with its duration (streaming
    // replies); optional.
    using Progress = std::function<void(std::string_view step, long ms)>;

    // pool: the warm pool a fresh create takes a prepared disk from (none: always the full path).
    Provisioner(const Config& cfg, Effects& fx, Store& store, Disks& disks, Guard& guard,
                const pgconf::SettingsCatalog& catalog, WarmPool* pool = nullptr)
        : cfg_(cfg), fx_(fx), store_(store), disks_(disks), guard_(guard), catalog_(catalog), pool_(pool) {}

    // Disk, format, mount, user, initdb (or adopt on reuse), start, check, route, check
    // through the proxy. On failure every step taken is undone and the error names the step.
    // A fresh tenant (no reuse, no branch) of the warm pool's shape takes a prepared disk
    // instead: pool (its image moved to the tenant's, attached, labelled), mount, user, take
    // (the cluster handed to the tenant's user, its files written), start, check (the cluster's
    // roles handed over), route, check through the proxy.
    // spec: the request resolved against the config, its settings validated.
    Created create(const std::string& name, const CreateRequest& req, const TenantSpec& spec, const Progress& progress);
    // Disaster recovery (model/restore.h has the rule): a ready tenant whose disk is really gone
    // gets a new disk of its recorded size (loop: a new image; device: its own device, found
    // blank), formatted and mounted, its cluster restored from its own stanza to req.time
    // (latest: every archived WAL) by the same path as a branch (Effects::restore_cluster with
    // the tenant as its own source), then started, checked, routed, as before: same name, OS
    // user, port, password, certificate, limits, settings; one stopped on purpose stays
    // stopped. Refused before anything is made when its data is there, or there is no backup.
    // On failure every step taken is undone and the tenant is as it was (its disk missing).
    Restored restore(const std::string& name, const RestoreRequest& req, const Progress& progress);
    // Route, unit, mount, disk, user; purge also destroys the data. The record says detached
    // (data kept) or is gone (purged).
    // purge_backups (with purge): the tenant's backups go too; without, a purged tenant's
    // backups and its OS user (their owner) are kept (model/kept.h) for branches until
    // backup.deleted_retention passes. A name with kept backups only: purge_backups purges them.
    Deleted remove(const std::string& name, bool purge, bool purge_backups = false);
    // Grows the disk and its filesystem, online where the kernel allows; shrinking is refused.
    Resized resize(const std::string& name, const ResizeRequest& req);
    LimitsChanged set_limits(const std::string& name, const LimitsUpdate& u);
    // spec with update u applied (settings replaced or edited, then validated against the
    // catalog), as set_limits records it.
    TenantSpec updated_spec(const TenantSpec& spec, const LimitsUpdate& u) const;
    TenantView set_password(const std::string& name, const PasswordRequest& req);
    // Lifecycle of a ready tenant (Errc::conflict for any other state). stop: the intent
    // recorded first (a reconcile, a restart of hostd or a reboot leave it stopped), then
    // unrouted and its unit stopped. start: the intent cleared, the unit started, PostgreSQL
    // accepting connections, routed, and reached through the proxy. restart: one systemd
    // restart of a tenant that is not stopped on purpose (a down one comes back), then the
    // same checks as start. Stopping a stopped tenant, or starting a running one, is fine.
    TenantRecord stop(const std::string& name);
    TenantRecord start(const std::string& name);
    TenantRecord restart(const std::string& name);
    // [hibernate] (hostd/hibernate.h). hibernate: a ready, running, plain tenant recorded as
    // hibernated first, its route switched to the waker, then (still_idle() true: no client
    // came meanwhile, else undone) its unit stopped, its backup timers kept running (their
    // units wake it); false when it may not or did not hibernate, or a scheduled backup of it
    // runs. wake: the intent cleared first, the unit started, PostgreSQL accepting connections, its
    // route back on its own server; nothing for a tenant not hibernated. start and restart
    // wake one too; stop makes it plainly stopped.
    bool hibernate(const std::string& name, const std::function<bool()>& still_idle);
    TenantRecord wake(const std::string& name);
    // A hibernated tenant's backup timers started again (a failure is logged: it stays hibernated).
    void arm_timers(const TenantRecord& t, const TenantLayout& l);

    // An HA tenant's member on this host (#17), in two phases, so that every member host has
    // reserved its ports before any Patroni starts. prepare_member: the name and ports reserved
    // (PostgreSQL, Patroni's REST API, the public port), the disk, filesystem, mount and OS
    // user made; the record is `creating` with ha's settings and this member `prepared`.
    // Returns the member as the other hosts see it. On failure every step is undone.
    HaMember prepare_member(const std::string& name, const CreateRequest& req, const TenantSpec& spec, const HaSpec& ha,
                            const std::string& admin_password, const std::string& self, const Progress& progress = {});
    // The prepared member started, every member known (ha.members, create_id as prepared): its
    // files (patroni.yml, settings, certificate), Patroni's unit, PostgreSQL accepting
    // connections (bootstrap: this member initdb's the scope, then the tenant's admin role is
    // made; else Patroni clones it from the primary), routed, reached through the proxy; ready
    // (bootstrap: left `creating` at step "replicas" for the coordinator to mark ready once
    // every replica has started: Manager::create_ha). On failure the member is torn down and
    // forgotten (abort_member).
    void start_member(const std::string& name, const HaSpec& ha, const std::string& self, bool bootstrap,
                      const Progress& progress = {});
    // The member of a create that failed (create_id: that create's, even one started before
    // another member failed; "": any that is not ready) is torn down with its data and its
    // record forgotten. Nothing for a tenant that is not such a member.
    void abort_member(const std::string& name, const std::string& create_id);
    // A replace changed the members (ha: the same create_id, this host among them): the record
    // takes them, the member's files are written anew (pg_hba and certificate for the members'
    // addresses), Patroni rereads them (its unit's reload: SIGHUP) and the routes follow.
    void update_member(const std::string& name, const HaSpec& ha, const std::string& self);
    // A limits change of the whole HA tenant, this host's member's share (every member host):
    // the record takes spec's limits, settings and extensions (checked against this host's
    // capacity), the unit its limits, the member's files their tuning; Patroni rereads them
    // (SIGHUP) and reloads PostgreSQL. The scope's shared settings are the caller's (PATCH
    // /config). On failure the previous record, limits and files are put back. Errc::conflict
    // for a record of another create or one not ready.
    TenantRecord set_member_limits(const std::string& name, const std::string& create_id, const std::string& self,
                                   const TenantSpec& spec);

    // The steps of a delete, also used to finish an interrupted one or roll back a create.
    void teardown(TenantRecord& t, bool purge);
    // The record of a deleted tenant whose data is kept.
    void finish_detach(TenantRecord& t);
    // The end of a purge: the record goes; its backups, when kept, are recorded first.
    void finish_purge(TenantRecord& t);
    // A deleted tenant's kept backups removed: the repository, then the OS user that owned it
    // (its uid free again), then the record. why: for the log. Idempotent.
    void purge_kept(const std::string& name, const std::string& why);
    // The tenant a branch is made from: a ready or detached tenant's record, or what a deleted
    // one's kept backups recorded. Errc::not_found.
    TenantRecord branch_source(const std::string& name) const;
    // Removes the OS user only if hostd made it (its marker): a tenant whose OS user name is
    // taken by the system's own ("apt" -> "_apt") never takes that user with it.
    void remove_own_user(const std::string& os_user);
    // The proxy's table from every routed tenant (force_reload: reload even if unchanged).
    void publish_routes(bool force_reload = false);

private:
    void bring_up(TenantRecord& t, const TenantLayout& l);
    // Clients get through the proxy to the tenant's server, as a client would come: by the
    // route's port, or by its TLS server name. A ping (TLS, then the server asks for a password)
    // with no login: what is checked is the route, not a password.
    void wait_through_proxy(const TenantRecord& t);
    void set_step(TenantRecord& t, const std::string& step);
    // The tenant's settings fit its limits (pgconf/fit.h), and, when its memory grows (a create,
    // a reuse, a larger memory), that memory fits the host (limits.memory_overcommit). Called
    // under the store's lock with every record. Errc::invalid / Errc::refused with the numbers.
    void check_capacity(const TenantRecord& t, const std::map<std::string, TenantRecord>& records,
                        bool memory_grows) const;
    // idle: ports in use by the proxy for no tenant (Effects::idle_route_ports), taken first.
    uint16_t allocate_port(PortRange range, uint16_t preferred, const std::set<uint16_t>& taken,
                           const std::set<uint16_t>& idle = {});
    // The record a create starts from: a new one, or the detached tenant's on reuse. Reserves
    // the name and ports in the store before it returns.
    // ha: an HA member's (its REST port is reserved too, and the record takes ha with this
    // member, self, alone).
    TenantRecord reserve(const std::string& name, const CreateRequest& req, const TenantSpec& spec,
                         std::optional<TenantRecord>& kept, const HaSpec* ha = nullptr, const std::string& self = "");

    const Config& cfg_;
    Effects& fx_;
    Store& store_;
    Disks& disks_;
    Guard& guard_;
    const pgconf::SettingsCatalog& catalog_;
    WarmPool* pool_;
    std::mutex routes_mu_;  // one route table change at a time
};

// The step of a ready tenant's record while a restore runs ("restore " + the step): a reconcile
// leaves such a tenant down, and the next restore undoes what the cut-off one made.
inline constexpr std::string_view kRestoreStep = "restore ";

// Limits of a tenant's unit from its spec.
units::Limits limits_of(const TenantSpec& s);

}  // namespace hostd

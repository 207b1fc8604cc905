#include "hostd/manager.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "base/strings.h"
#include "base/error.h"
#include "base/fs.h"
#include "hostd/log.h"
#include "model/capacity.h"
#include "model/layout.h"
#include "model/restore.h"
#include "pgconf/pgconf.h"

namespace hostd {
namespace {

// The installed server's own list of settings, completed with units and enum values from the
// table compiled in; the table alone if the server cannot be run.
pgconf::SettingsCatalog load_catalog(const Config& cfg) {
    try {
        return pgconf::SettingsCatalog::load(cfg.pg_bindir);
    } catch (const Error& e) {
        log::warning(std::string("Using the built-in PostgreSQL settings list: ") + e.what());
        return pgconf::SettingsCatalog::builtin();
    }
}

// A library hostd preloads must be there: a server that cannot load it does not start. Debian
// ships them in the server package, beside the binaries (<bindir>/../lib).
void check_libraries_installed(const Config& cfg, const std::vector<std::string>& extensions) {
    for (const auto& lib : pgconf::preload_libraries(extensions)) {
        const std::string path = cfg.pg_bindir + "/../lib/" + lib + ".so";
        if (!path_exists(path))
            throw Error(Errc::invalid, "Extension '" + lib + "' needs its library preloaded, and '" + path +
                                           "' is not there: install the PostgreSQL server package's contrib "
                                           "modules on this host first", "extensions");
    }
}

// An HA tenant's members in the view as Patroni reported them (c, from source's Patroni); a
// member Patroni does not list is down.
void fill_members(TenantView& v, const ha::ClusterView& c, const std::string& source) {
    for (auto& mv : v.members) {
        const ha::MemberStatus* s = c.find(mv.host);
        if (!s) continue;  // parse_cluster lists every expected member: not reached
        mv.role = ha::member_role_name(s->role);
        mv.state = s->role == ha::MemberRole::down ? "down" : s->state.empty() ? "unknown" : s->state;
        mv.lag_bytes = s->lag_bytes;
        mv.timeline = s->timeline;
        mv.sync = s->sync;
    }
    HaView& h = v.ha ? *v.ha : v.ha.emplace();
    h.source = source;
    h.leader.clear();
    h.timeline.reset();
    if (const ha::MemberStatus* p = c.primary()) {
        h.leader = p->name;
        h.timeline = p->timeline;
    }
    if (!h.timeline)  // no leader now (or it reports none): the newest timeline a member reports
        for (const auto& m : c.members)
            if (m.timeline && (!h.timeline || *m.timeline > *h.timeline)) h.timeline = m.timeline;
}

constexpr auto kSwitchoverWait = std::chrono::seconds(30);
constexpr auto kSwitchoverPoll = std::chrono::milliseconds(500);

}  // namespace

Manager::Manager(Config cfg, std::unique_ptr<Effects> fx, std::unique_ptr<Peers> peers, std::string self)
    : cfg_(std::move(cfg)),
      fx_(std::move(fx)),
      peers_(std::move(peers)),
      self_(std::move(self)),
      catalog_(load_catalog(cfg_)),
      store_(cfg_),
      disks_(cfg_, *fx_, store_),
      guard_(cfg_, *fx_, store_),
      pool_(cfg_, *fx_),
      prov_(cfg_, *fx_, store_, disks_, guard_, catalog_, &pool_),
      reconciler_(cfg_, *fx_, store_, disks_, prov_),
      ports_(*fx_, store_, self_),
      backups_(cfg_, *fx_, store_) {}

void Manager::not_for_ha(const std::string& name, const char* what) {
    TenantRecord t;
    try {
        t = store_.get(name);
    } catch (const Error&) {
        return;  // the verb says what is wrong with a name it does not know
    }
    if (t.ha)
        throw Error(Errc::conflict, "Tenant '" + name + "' is an HA tenant; it cannot be " + what +
                                        " by this version of hostd (its members' settings, disks and roles are the "
                                        "scope's, changed on every member at once: not built yet)");
}

template <class F>
auto Manager::timed(const char* kind, F&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    auto record = [&](const char* result) {
        std::lock_guard g(stats_mu_);
        stats_.record(kind, result, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };
    try {
        auto r = fn();
        record("ok");
        return r;
    } catch (...) {
        record("error");
        throw;
    }
}

void Manager::load() { store_.load(); }

void Manager::start() {
    load();
    try {
        fx_->ensure_unit_template();  // before any tenant unit starts
    } catch (const Error& e) {
        log::error(std::string("Failed to install the tenant unit template for this configuration: ") + e.what());
    }
    try {
        fx_->ca_certificate();  // the host's CA exists from the first start, not the first create
    } catch (const Error& e) {
        log::error(std::string("Failed to set up the local CA: ") + e.what());
    }
    reconcile();
    pool_.recover();  // the pool's own directory only: nothing of a tenant's
}

Created Manager::create(const std::string& name, const CreateRequest& req_in, const Progress& progress) {
    validate_name(name);
    check_create_ha(req_in, cfg_);  // before the branch source or the kept tenant is looked up
    CreateRequest req = req_in;
    if (req.from) {
        if (!backups_on(cfg_))
            throw Error(Errc::invalid, "Branches are made from backups, and backups are off on this host (backup.repo in hostd.toml)", "from");
        if (req.reuse) throw Error(Errc::invalid, "A branch is a new tenant: give either 'from' or 'reuse'", "from");
        try {
            validate_name(req.from->tenant);
        } catch (const Error& e) {
            throw Error(Errc::invalid, std::string("from.tenant: ") + e.what(), "from.tenant");
        }
        backup::parse_target(req.from->target, "from.time");
        if (req.from->tenant == name) throw Error(Errc::invalid, "A tenant cannot be a branch of itself", "from.tenant");
        // What the request leaves out comes from the source: its data needs its disk.
        const TenantRecord src = prov_.branch_source(req.from->tenant);  // a deleted tenant's kept backups too
        if (!req.disk_size) req.disk_size = src.spec.disk_size;
        if (!req.filesystem) req.filesystem = src.spec.filesystem;
        if (!req.memory) req.memory = src.spec.memory;
        if (!req.settings) req.settings = src.spec.settings;
        if (!req.extensions) req.extensions = src.spec.extensions;
    }
    if (req.settings) check_backup_owned(*req.settings, cfg_);
    // A reuse starts from the detached tenant's recorded spec (the provisioner resolves it
    // against the record, under the store's lock); a new tenant from hostd.toml's defaults.
    TenantSpec spec;
    if (!req.reuse) {
        spec = resolve_spec(req, cfg_);
        spec.settings = pgconf::validate_overrides(catalog_, spec.settings);
        check_libraries_installed(cfg_, spec.extensions);
    } else if (req.extensions) {
        check_libraries_installed(cfg_, resolve_extensions(*req.extensions, cfg_));
    }
    Store::OpLock op(store_, name);
    if (req.ha) return timed("create", [&] { return create_ha(name, req, spec, progress); });
    // A deleted source's backups are held while a branch reads them: a purge of them (or their
    // expiry, which retries on its next round) waits for the branch (409 meanwhile). A live
    // source is not held: its own operations go on while it is branched.
    std::optional<Store::OpLock> source_held;
    if (req.from && prov_.branch_source(req.from->tenant).state != TenantState::ready)
        source_held.emplace(store_, req.from->tenant);
    return timed("create", [&] { return prov_.create(name, req, spec, progress); });
}

Deleted Manager::remove(const std::string& name, bool purge, bool purge_backups) {
    validate_name(name);
    if (purge_backups && !purge)
        throw Error(Errc::invalid, "purge_backups goes with purge: the backups of a tenant whose data is kept stay with it",
                    "purge_backups");
    Store::OpLock op(store_, name);
    if (!store_.kept(name)) {
        // an unknown tenant is not a failed delete
        if (const TenantRecord t = store_.get(name); t.ha) return timed("delete", [&] { return remove_ha(t, purge); });
    }
    return timed("delete", [&] { return prov_.remove(name, purge, purge_backups); });
}

std::vector<KeptView> Manager::deleted() const {
    std::vector<KeptView> out;
    for (const auto& [name, k] : store_.kept_all())
        out.push_back({.name = name, .deleted_at = k.deleted_at,
                       .kept_until = format_rfc3339(kept_until(k, cfg_.backup_deleted_retention)),
                       .repository = k.repository, .repository_host = k.repository_host, .uid = k.uid, .gid = k.gid, .os_user = k.tenant.os_user,
                       .admin_user = k.tenant.admin_user, .filesystem = k.tenant.spec.filesystem,
                       .disk_size = k.tenant.spec.disk_size, .memory = k.tenant.spec.memory});
    std::stable_sort(out.begin(), out.end(), [](const KeptView& a, const KeptView& b) { return a.deleted_at < b.deleted_at; });
    return out;
}

void Manager::expire_kept() {
    for (const auto& name : expired_stanzas(store_.kept_all(), std::time(nullptr), cfg_.backup_deleted_retention)) {
        try {
            Store::OpLock op(store_, name);
            prov_.purge_kept(name, "backup.deleted_retention of " + std::to_string(cfg_.backup_deleted_retention) +
                                       " day(s) passed");
        } catch (const Error& e) {
            log::error(std::string("Failed to remove the expired backups of a deleted tenant: ") + e.what() +
                           "; retried on the next round",
                       name);
        }
    }
}

Resized Manager::resize(const std::string& name, const ResizeRequest& req) {
    validate_name(name);
    check_resize(req, cfg_);
    Store::OpLock op(store_, name);
    not_for_ha(name, "resized");
    awake(name);
    return prov_.resize(name, req);
}

LimitsChanged Manager::set_limits(const std::string& name, const LimitsUpdate& u) {
    validate_name(name);
    check_limits(u, cfg_);
    LimitsUpdate checked = u;
    if (checked.settings) {
        check_backup_owned(*checked.settings, cfg_);
        checked.settings = pgconf::validate_overrides(catalog_, *checked.settings);
    }
    check_backup_owned(checked.settings_edit.set, cfg_);
    if (checked.extensions) {
        checked.extensions = resolve_extensions(*checked.extensions, cfg_);
        check_libraries_installed(cfg_, *checked.extensions);
    }
    // An edit is checked by the provisioner, as the overrides it leaves (combinations
    // PostgreSQL refuses at start involve the kept ones), before anything changes.
    Store::OpLock op(store_, name);
    if (const TenantRecord t = store_.get(name); t.ha) return timed("limits", [&] { return set_ha_limits(t, checked); });
    awake(name);
    return prov_.set_limits(name, checked);
}

TenantView Manager::set_password(const std::string& name, const PasswordRequest& req) {
    validate_name(name);
    if (req.password) validate_password(*req.password);
    Store::OpLock op(store_, name);
    if (const TenantRecord t = store_.get(name); t.ha) return timed("password", [&] { return set_ha_password(t, req); });
    awake(name);
    return timed("password", [&] { return prov_.set_password(name, req); });
}

namespace {
BackupView view_of(const backup::BackupSet& b) {
    return {.label = b.label, .type = std::string(backup::to_string(b.type)), .prior = b.prior,
            .started_at = format_rfc3339(b.start), .finished_at = format_rfc3339(b.stop), .size = b.size, .repo_size = b.repo_size,
            .repo_delta = b.repo_delta, .wal_start = b.wal_start, .wal_stop = b.wal_stop};
}
}  // namespace

TenantRecord Manager::backed_up(const std::string& name) {
    validate_name(name);
    if (!backups_on(cfg_))
        throw Error(Errc::invalid, "Backups are off on this host: set backup.repo in hostd.toml (a directory apart from the tenants' disks)");
    TenantRecord t = store_.get(name);
    if (t.state != TenantState::ready)
        throw Error(Errc::conflict, "Tenant '" + name + "' is " + std::string(to_string(t.state)) + ", not ready");
    return t;
}

BackupDone Manager::backup(const std::string& name, const std::string& type) {
    auto bt = backup::backup_type_from(type);
    if (!bt) throw Error(Errc::invalid, "'" + type + "' is not a backup type: give full, diff or incr", "type");
    not_for_ha(name, "backed up");
    TenantRecord t = backed_up(name);
    // Held awake for its length: a hibernated tenant is woken first, and none hibernates
    // meanwhile (pgBackRest talks to it over its socket, which the idle check does not count).
    const AwakeHold hold(*this, name);
    if (store_.get(name).hibernated) wake(name, std::chrono::steady_clock::now() + std::chrono::seconds(60));
    const TenantLayout l = layout_of(cfg_, t);
    const auto t0 = std::chrono::steady_clock::now();
    try {
        fx_->run_backup(t, l, *bt);
    } catch (const Error& e) {
        // Reported where an operator looks: the journal, the tenant's view, /metrics.
        backups_.failed(name, {.at = std::time(nullptr), .type = type, .by = "request", .message = e.what()});
        throw;
    }
    const long ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    const backup::Info info = fx_->backup_info(t, l);
    if (info.backups.empty()) throw Error(Errc::failed, "pgBackRest finished but lists no backup of '" + name + "'");
    backups_.seen(name, info);
    log::info("Backup " + info.backups.back().label + " (" + type + ") done in " + std::to_string(ms) + " ms", name);
    return {.tenant = name, .backup = view_of(info.backups.back()), .ms = ms};
}

BackupList Manager::backups(const std::string& name) {
    validate_name(name);
    // A deleted tenant's kept backups: read as their owner (kept with them), from where they are.
    std::optional<TenantRecord> gone;
    std::string deleted, deleted_at, until;
    TenantLayout l = layout_of(cfg_, name);
    if (auto k = store_.kept(name)) {
        gone = k->tenant;
        deleted = "purged";
        deleted_at = k->deleted_at;
        until = format_rfc3339(kept_until(*k, cfg_.backup_deleted_retention));
        if (k->repository_host.empty()) l.backup_repo = k->repository;
    } else if (backups_on(cfg_)) {
        const TenantRecord r = store_.get(name);
        if (r.state == TenantState::detached) {
            if (!fx_->has_repository(l.backup_dir))
                throw Error(Errc::not_found, "Tenant '" + name + "' is deleted (data kept) and has no backups");
            gone = r;
            deleted = "detached";
        }
    }
    TenantRecord t = gone ? *gone : backed_up(name);
    const backup::Info info = fx_->backup_info(t, l);
    BackupList out{.tenant = name, .wal_min = info.wal_min, .wal_max = info.wal_max, .running = info.backup_running,
                   .status = info.status_message, .deleted = deleted, .deleted_at = deleted_at, .kept_until = until};
    for (const auto& b : info.backups) out.backups.push_back(view_of(b));
    if (!info.backups.empty()) out.recoverable_from = format_rfc3339(info.backups.front().stop);
    backups_.seen(name, info);
    if (auto h = backups_.health(name)) {
        out.last_failure = h->last_failure;
        out.failing = h->failing();
    }
    return out;
}

Restored Manager::restore(const std::string& name, const RestoreRequest& req, const Progress& progress) {
    validate_name(name);
    backup::parse_target(req.time, "time");
    not_for_ha(name, "restored");
    if (!backups_on(cfg_))
        throw Error(Errc::invalid, "A restore brings a tenant back from its backups, and backups are off on this host "
                                   "(backup.repo in hostd.toml); nothing was changed.");
    Store::OpLock op(store_, name);
    return timed("restore", [&] { return prov_.restore(name, req, progress); });
}

TenantView Manager::stop(const std::string& name) {
    validate_name(name);
    {
        Store::OpLock op(store_, name);
        timed("stop", [&] { return prov_.stop(name); });
    }
    return get(name);
}

TenantView Manager::start(const std::string& name) {
    validate_name(name);
    {
        Store::OpLock op(store_, name);
        timed("start", [&] { return prov_.start(name); });
    }
    return get(name);
}

void Manager::awake(const std::string& name) {
    if (store_.get(name).hibernated) timed("wake", [&] { return prov_.wake(name); });
}

bool Manager::hibernate(const std::string& name, const std::function<bool()>& still_idle) {
    std::optional<Store::OpLock> op;
    try {
        op.emplace(store_, name);
    } catch (const Error& e) {
        if (e.code() == Errc::conflict) return false;  // a verb runs on it: the next look decides
        throw;
    }
    {
        std::lock_guard g(backing_up_mu_);
        if (backing_up_.count(name)) return false;  // under the lock: a backup's wake waits for it
    }
    return timed("hibernate", [&] { return prov_.hibernate(name, still_idle); });
}

void Manager::wake(const std::string& name, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        try {
            Store::OpLock op(store_, name);
            if (store_.get(name).hibernated) timed("wake", [&] { return prov_.wake(name); });
            return;
        } catch (const Error& e) {
            // Another verb holds it (its hibernation finishing, another connection's wake): wait.
            if (e.code() != Errc::conflict || std::chrono::steady_clock::now() >= deadline) throw;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

Manager::AwakeHold::AwakeHold(Manager& m, std::string name) : m_(m), name_(std::move(name)) {
    // Marked under the tenant's lock, so that a hibernation under way ends before (and the
    // caller then sees it hibernated) or starts after and sees the mark. A lock held longer is
    // another verb's, not a hibernation's (a stop takes seconds): marked without it then.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::optional<Store::OpLock> op;
    while (!op) {
        try {
            op.emplace(m_.store_, name_);
        } catch (const Error& e) {
            if (e.code() != Errc::conflict) throw;
            if (std::chrono::steady_clock::now() >= deadline) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    std::lock_guard g(m_.backing_up_mu_);
    m_.backing_up_.insert(name_);
}

Manager::AwakeHold::~AwakeHold() {
    std::lock_guard g(m_.backing_up_mu_);
    m_.backing_up_.erase(m_.backing_up_.find(name_));
}

TenantView Manager::wake_now(const std::string& name) {
    validate_name(name);
    const TenantRecord t = store_.get(name);
    if (t.stopped)
        throw Error(Errc::conflict, "Tenant '" + name + "' is stopped on purpose, not hibernated: hostctl wake leaves it "
                                        "stopped (hostctl start runs it)");
    if (t.hibernated) {
        const auto t0 = std::chrono::steady_clock::now();
        // A hibernation finishing holds the tenant's lock for a moment: wait for it.
        wake(name, t0 + std::chrono::seconds(60));
        const long ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
        log::info("Woken on request (hostctl wake) in " + std::to_string(ms) + " ms", name);
    }
    return get(name);
}

TenantView Manager::restart(const std::string& name) {
    validate_name(name);
    {
        Store::OpLock op(store_, name);
        timed("restart", [&] { return prov_.restart(name); });
    }
    return get(name);
}

TenantView Manager::switchover(const std::string& name, const SwitchoverRequest& req) {
    validate_name(name);
    if (req.to) validate_host_name(*req.to, "to");
    {
        Store::OpLock op(store_, name);
        timed("switchover", [&] {
            const TenantRecord t = store_.get(name);
            if (!t.ha)
                throw Error(Errc::conflict, "Tenant '" + name + "' is not an HA tenant: it has one PostgreSQL on this host and no "
                                            "replica to switch over to (an HA tenant is created with hostctl create --replicas)");
            if (t.state != TenantState::ready)
                throw Error(Errc::conflict, "Tenant '" + name + "' is " + std::string(to_string(t.state)) + ", not ready");
            std::string why;
            auto asked = ask_cluster(*t.ha, why);
            if (!asked)
                throw Error(Errc::unavailable, "Cannot switch over '" + name + "': no member's Patroni answered (" + why +
                                                   "); nothing was changed");
            const ha::Switchover plan = ha::plan_switchover(asked->view, req.to, t.ha->synchronous);
            const HaMember* leader = t.ha->member(plan.leader);
            if (!leader)
                throw Error(Errc::failed, "Patroni names '" + plan.leader + "' the primary of '" + name +
                                              "', which this host's record does not list as a member; nothing was changed");
            const std::string said =
                fx_->patroni_switchover(*leader, {.username = "hostd", .password = t.ha->secrets.rest_password}, plan);
            log::info("Switchover from '" + plan.leader + "' to '" + plan.candidate + "' asked of Patroni: " + said, name);
            // Patroni answers once the new leader holds the key (or gave up polling): wait until a
            // member reports the candidate primary, so the reply shows the roles as they now are.
            const auto deadline = std::chrono::steady_clock::now() + kSwitchoverWait;
            for (;;) {
                std::string now;
                if (auto a = ask_cluster(*t.ha, why)) {
                    const ha::MemberStatus* p = a->view.primary();
                    if (p && p->name == plan.candidate) break;
                    now = p ? "Patroni reports '" + p->name + "' primary" : "Patroni reports no primary";
                } else {
                    now = "no member's Patroni answers (" + why + ")";
                }
                if (std::chrono::steady_clock::now() >= deadline)
                    throw Error(Errc::failed, "Patroni took the switchover of '" + name + "' from '" + plan.leader + "' to '" +
                                                  plan.candidate + "' (" + said + "), but after " +
                                                  std::to_string(kSwitchoverWait.count()) + " s " + now +
                                                  "; look at its members with hostctl show " + name);
                std::this_thread::sleep_for(kSwitchoverPoll);
            }
            log::info("'" + plan.candidate + "' is primary after the switchover", name);
            return 0;
        });
    }
    return get(name);
}

ReconcileReport Manager::reconcile() {
    // An HA create or delete this host coordinated, cut off by a restart, first: across the
    // hosts. What it cannot finish yet is left alone by the reconcile (its rollback would
    // forget the other hosts' members) for the HA members' round.
    const std::set<std::string> left = ha_recover(std::chrono::seconds(30));
    auto r = reconciler_.run(left);
    expire_kept();
    std::lock_guard g(stats_mu_);
    stats_.reconcile_runs++;
    return r;
}

std::optional<Manager::Asked> Manager::ask_cluster(const HaSpec& ha, std::string& why) {
    // This host's member first: its Patroni is asked without crossing the hosts' network.
    std::vector<const HaMember*> order;
    for (const auto& m : ha.members)
        if (ha_on(cfg_) && m.address == cfg_.ha_address) order.push_back(&m);
    for (const auto& m : ha.members)
        if (std::find(order.begin(), order.end(), &m) == order.end()) order.push_back(&m);
    std::vector<std::string> expected;
    for (const auto& m : ha.members) expected.push_back(m.host);
    why.clear();
    for (const HaMember* m : order) {
        bool answered = false;
        try {
            const std::string body = fx_->patroni_cluster(*m);  // its errors name the member
            answered = true;
            return Asked{ha::parse_cluster(body, expected), m->host};
        } catch (const Error& e) {
            why += (why.empty() ? "" : "; ") + (answered ? "member '" + m->host + "': " : "") + std::string(e.what());
        }
    }
    if (why.empty()) why = "the tenant's record lists no member";
    return std::nullopt;
}

TenantView Manager::get(const std::string& name, bool with_status) {
    validate_name(name);
    TenantRecord t = store_.get(name);
    TenantView v = view_of(cfg_, t, true);
    v.problem = store_.problem(name);
    if (backups_on(cfg_) && t.state == TenantState::ready) v.backup = backups_.health(name).value_or(BackupHealth{});
    const std::string activity = store_.activity(name);
    if (with_status && t.state == TenantState::ready) {
        const TenantLayout l = layout_of(cfg_, t);
        v.status = fx_->live_status(t, l);
        // A real check where the unit says it runs: PostgreSQL may still refuse connections
        // (crash recovery after a backend was killed, a shutdown under way).
        std::optional<std::string> ping;
        const std::string& a = v.status->active_state;
        if (v.status->unit_error.empty() && (a == "active" || a == "reloading") && activity.empty()) ping = fx_->ping(t, l);
        v.live = derive_live(t, *v.status, v.problem, activity, ping);
        // Down (or stopped) with nothing mounted: if its disk is gone, say so and how it comes back.
        if ((v.live.state == "down" || v.live.state == "stopped") && !v.status->disk && v.status->unit_error.empty()) {
            try {
                const std::string missing = disk_missing_reason(t, fx_->disk_facts(t, l), backups_on(cfg_));
                if (!missing.empty()) v.live.reason = v.live.state == "stopped" ? "stopped on purpose; " + missing : missing;
            } catch (const Error& e) {
                log::warning(std::string("Cannot tell whether its disk is there: ") + e.what(), name);
            }
        }
        if (v.status->unit_error.empty() && a == "active" && activity.empty()) v.pending_restart = fx_->pending_restart(t, l);
        // An HA tenant: each member's role, state, lag and timeline as Patroni tells them.
        if (t.ha) {
            std::string why;
            if (auto asked = ask_cluster(*t.ha, why)) {
                fill_members(v, asked->view, asked->source);
            } else {
                const std::string p = "no member's Patroni answered, so the members' roles are unknown (" + why + ")";
                v.problem = v.problem.empty() ? p : v.problem + "; " + p;
            }
        }
    } else if (t.state != TenantState::ready) {
        v.live = derive_live(t, {}, v.problem, activity, std::nullopt);
    }
    return v;
}

std::vector<TenantView> Manager::list(bool with_status) {
    std::vector<TenantView> out;
    if (!with_status) {
        // The records as they are, without a copy of each (a list of thousands is asked often);
        // nothing but the record and its problem goes into the view.
        store_.each([&](const TenantRecord& t, const std::string& problem) {
            out.push_back(view_of(cfg_, t, false));
            out.back().problem = problem;
        });
        return out;
    }
    for (auto& t : store_.snapshot()) {
        TenantView v = view_of(cfg_, t, false);
        v.problem = store_.problem(t.name);
        // With status: the live status (unit, memory, CPU, disk) of each ready tenant, as GET of
        // one shows it, and what it does now from it (no ping: a connection per tenant). Without,
        // nothing is asked of systemd: the plain list answers in milliseconds while systemd is
        // busy starting units (tests/e2e/lifecycle times it under 8 creates).
        if (with_status) {
            if (t.state == TenantState::ready) v.status = fx_->live_status(t, layout_of(cfg_, t));
            v.live = derive_live(t, v.status.value_or(LiveStatus{}), v.problem, store_.activity(t.name), std::nullopt);
        }
        out.push_back(std::move(v));
    }
    return out;
}

HostInfo Manager::host() {
    HostInfo h;
    auto records = store_.snapshot();
    h.tenants = records.size();
    for (auto& t : records) {
        if (t.state == TenantState::detached) continue;
        h.tenants_active++;
        h.memory_committed += t.spec.memory;
        h.cpu_committed += t.spec.cpu;
        h.disk_committed += t.spec.disk_size;
    }
    h.memory_total = host_memory_bytes();
    h.memory_overcommit = cfg_.memory_overcommit;
    {
        const uint64_t allowed = memory_allowed(cfg_, h.memory_total);
        const uint64_t cap = cfg_.memory_overcommit > 0 ? allowed : h.memory_total;
        h.memory_free = cap > h.memory_committed ? cap - h.memory_committed : 0;
    }
    h.cpus = static_cast<uint64_t>(::sysconf(_SC_NPROCESSORS_ONLN));
    try {
        h.loop_dir_available = fx_->loop_space({}).available;  // under loop_dir, as its name says
    } catch (const Error& e) {
        log::warning(std::string("Host capacity: ") + e.what());
    }
    // Each tenant holds a PostgreSQL port and, with port routes, a public one (an HA member a
    // second, its read-only URL's); a detached tenant keeps both for a reuse until it is purged.
    auto in = [](PortRange r, uint16_t p) { return p >= r.first && p <= r.second; };
    auto size = [](PortRange r) { return uint64_t{r.second} - r.first + 1; };
    uint64_t pg_held = 0, public_held = 0;
    for (auto& t : records) {
        pg_held += in(cfg_.pg_ports, t.port);
        public_held += in(cfg_.public_ports, t.public_port);
        if (const HaMember* m = own_member(t); m && m->replica_port) public_held += in(cfg_.public_ports, m->replica_port);
        if (t.state == TenantState::detached && (t.port || t.public_port)) h.ports_detached++;
    }
    const uint64_t pg_free = size(cfg_.pg_ports) - std::min(pg_held, size(cfg_.pg_ports));
    const uint64_t public_free = size(cfg_.public_ports) - std::min(public_held, size(cfg_.public_ports));
    h.ports_free = cfg_.domain.empty() ? std::min(pg_free, public_free) : pg_free;
    h.ports_total = cfg_.domain.empty() ? std::min(size(cfg_.pg_ports), size(cfg_.public_ports)) : size(cfg_.pg_ports);
    if (ha_on(cfg_)) {
        char name[256] = {};
        if (::gethostname(name, sizeof name - 1) == 0) h.ha_host = name;
        h.ha_address = cfg_.ha_address;
        for (const auto& m : ha_fleet(cfg_)) h.ha_hosts.emplace_back(m.name, m.address);
    }
    return h;
}

std::string Manager::ca_certificate() { return fx_->ca_certificate(); }

OpStats Manager::op_stats() const {
    std::lock_guard g(stats_mu_);
    return stats_;
}

}  // namespace hostd

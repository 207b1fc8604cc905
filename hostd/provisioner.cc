#include "hostd/provisioner.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <future>
#include <random>

#include "base/strings.h"
#include "base/error.h"
#include "base/rollback.h"
#include "base/size.h"
#include "hostd/faults.h"
#include "hostd/guard.h"
#include "hostd/log.h"
#include "model/capacity.h"
#include "model/layout.h"
#include "pgconf/fit.h"
#include "pgconf/pgconf.h"

namespace hostd {
namespace {

std::string now_rfc3339() { return format_rfc3339(std::time(nullptr)); }

class StepTimer {
public:
    StepTimer() : t0_(std::chrono::steady_clock::now()) {}
    long ms() const {
        return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0_).count());
    }

private:
    std::chrono::steady_clock::time_point t0_;
};

constexpr int kCheckTimeoutMs = 10000;

}  // namespace

units::Limits limits_of(const TenantSpec& s) {
    return {.memory_max = s.memory, .cpus = s.cpu, .tasks_max = s.tasks, .io_weight = s.io_weight};
}

void Provisioner::set_step(TenantRecord& t, const std::string& step) {
    t.step = step;
    store_.save(t);  // recorded before it is taken
}

uint16_t Provisioner::allocate_port(PortRange range, uint16_t preferred, const std::set<uint16_t>& taken,
                                    const std::set<uint16_t>& idle) {
    auto in_range = [&](uint16_t p) { return p >= range.first && p <= range.second && !taken.count(p); };
    if (in_range(preferred) && (idle.count(preferred) || fx_.port_free(preferred))) return preferred;
    // A port the proxy already listens on for no tenant: routed without a reload.
    for (uint16_t p : idle)
        if (in_range(p)) return p;
    // Random start, then a linear walk: random ports do not collide with a neighbour host's
    // guesses, and the walk guarantees we find a free one if there is one.
    thread_local std::mt19937 rng{std::random_device{}()};
    uint32_t n = range.second - range.first + 1u;
    uint32_t start = std::uniform_int_distribution<uint32_t>(0, n - 1)(rng);
    for (uint32_t i = 0; i < n; i++) {
        auto p = static_cast<uint16_t>(range.first + (start + i) % n);
        if (!taken.count(p) && fx_.port_free(p)) return p;
    }
    throw Error(Errc::unavailable, "No free port left in " + std::to_string(range.first) + "-" + std::to_string(range.second) +
                                       "; widen the range in hostd.toml or delete tenants");
}

void Provisioner::check_capacity(const TenantRecord& t, const std::map<std::string, TenantRecord>& records,
                                 bool memory_grows) const {
    pgconf::check_fit(catalog_, {.tenant = t.name, .memory_bytes = t.spec.memory, .cpus = t.spec.cpu,
                                 .disk_bytes = t.spec.disk_size},
                      t.spec.tasks, t.spec.settings);
    if (memory_grows)
        check_memory_commit(cfg_, host_memory_bytes(), memory_committed(records, t.name), t.spec.memory, "memory");
}

void Provisioner::publish_routes(bool force_reload) {
    std::lock_guard rg(routes_mu_);
    std::vector<routes::Route> rs;
    for (auto& t : store_.routed()) {
        rs.push_back(route_of(cfg_, t));
        if (auto ro = replica_route_of(cfg_, t)) rs.push_back(std::move(*ro));
    }
    fx_.apply_routes(rs, force_reload);
}

TenantRecord Provisioner::reserve(const std::string& name, const CreateRequest& req, const TenantSpec& spec,
                                  std::optional<TenantRecord>& kept, const HaSpec* ha, const std::string& self) {
    return store_.locked_with_kept([&](auto& records, const auto& kept_backups) {
        TenantRecord t;
        // A deleted tenant's kept backups hold its name (stanza, repository, OS user).
        check_name_not_kept(name, kept_backups, cfg_.backup_deleted_retention);
        auto it = records.find(name);
        if (it != records.end()) {
            if (it->second.state != TenantState::detached) throw Error(Errc::conflict, "Tenant '" + name + "' already exists");
            if (!req.reuse)
                throw Error(Errc::conflict, "Tenant '" + name + "' was deleted without purge and its data is kept; "
                                            "create it with reuse to bring it back, or delete it with purge first");
            kept = it->second;
        } else if (req.reuse) {
            throw Error(Errc::not_found, "No kept data of tenant '" + name + "' to reuse");
        }
        // Before anything is made: a tenant whose OS user name is taken cannot be made (and its
        // undo must not remove a user that is not hostd's).
        const TenantLayout nl = layout_of(cfg_, name);
        const std::string os_user = nl.os_user;
        // A repository no record accounts for (left by a tenant deleted before hostd kept their
        // records, or by hand) is never handed to a new tenant of the same name.
        if (!kept && fx_.has_repository(nl.backup_dir))
            throw Error(Errc::conflict, "A backup repository of an earlier tenant '" + name + "' is at " + nl.backup_dir +
                                            " and no record of hostd accounts for it; hostd does not hand it to a new "
                                            "tenant: move it away or remove it, or pick another name",
                        "name");
        auto u = fx_.find_user(os_user);
        // A detached tenant's OS user is kept with its backups (they are that uid's): a reuse takes it back.
        if (u && kept && u->hostd && fx_.has_repository(nl.backup_dir)) u.reset();
        if (u)
            throw Error(Errc::conflict,
                        u->hostd ? "OS user '" + os_user + "' is left over from an earlier tenant '" + name +
                                       "'; run hostctl reconcile (it removes what no tenant owns), then create again"
                                 : "OS user '" + os_user + "' already exists and is not hostd's (tenant '" + name +
                                       "' would run as it); pick another tenant name",
                        "name");
        if (kept) {
            t = *kept;
            // The tenant as it was recorded; limits and settings the request gives apply, what
            // cannot (the disk) is refused with its reason.
            t.spec = resolve_reuse_spec(req, kept->spec, cfg_);
            t.spec.settings = pgconf::validate_overrides(catalog_, t.spec.settings);
            if (req.extensions) {
                t.spec.extensions = resolve_extensions(*req.extensions, cfg_);  // the Manager checked their libraries
            }
            t.stopped = false;  // brought back to run
        } else {
            t.name = name;
            t.spec = spec;
            t.admin_user = name;
            if (req.from) {
                // A branch keeps the source's roles: hostd's admin is the source's, with a password of its own.
                auto src = records.find(req.from->tenant);
                if (src != records.end() &&
                    (src->second.state == TenantState::ready || src->second.state == TenantState::detached))
                    t.admin_user = src->second.admin_user;
                else if (auto k = kept_backups.find(req.from->tenant); k != kept_backups.end())
                    t.admin_user = k->second.tenant.admin_user;  // a deleted tenant's kept backups
                else
                    throw Error(Errc::not_found, "No tenant '" + req.from->tenant + "' to branch from (nor kept backups of "
                                                 "a deleted one: hostctl backups lists those)", "from.tenant");
            }
            t.password = pgconf::random_password();
            t.created_at = now_rfc3339();
            t.os_user = layout_of(cfg_, name).os_user;
        }
        check_capacity(t, records, /*memory_grows=*/true);
        std::set<uint16_t> taken;
        for (auto& [_, r] : records) {
            if (r.port) taken.insert(r.port);
            if (r.public_port) taken.insert(r.public_port);
            if (r.backup_port) taken.insert(r.backup_port);
            if (const HaMember* m = own_member(r); m && m->replica_port) taken.insert(m->replica_port);
        }
        taken.erase(t.port);
        taken.erase(t.public_port);
        taken.erase(t.backup_port);
        t.port = allocate_port(cfg_.pg_ports, t.port, taken);
        taken.insert(t.port);
        // SNI routes share one port; a port route gets one of its own, kept across a reuse.
        if (cfg_.domain.empty())
            t.public_port = allocate_port(cfg_.public_ports, t.public_port, taken, fx_.idle_route_ports());
        // The repository host reaches the tenant's cluster through a pgBackRest server of its own.
        if (remote_repository(cfg_)) t.backup_port = allocate_port(cfg_.backup_server_ports, t.backup_port, taken);
        if (ha) {
            // This host's member: Patroni's REST API on a port of [ha] rest_ports of its own.
            std::set<uint16_t> rest_taken;
            for (auto& [_, r] : records)
                if (r.ha)
                    if (const HaMember* m = r.ha->member(self)) rest_taken.insert(m->rest_port);
            taken.insert(t.public_port);
            HaMember me{.host = self, .address = cfg_.ha_address, .public_host = cfg_.public_host, .pg_port = t.port,
                        .rest_port = allocate_port(cfg_.ha_rest_ports, 0, rest_taken), .public_port = t.public_port,
                        .replica_port = allocate_port(cfg_.public_ports, 0, taken, fx_.idle_route_ports()),
                        .phase = MemberPhase::prepared};
            t.ha = *ha;
            t.ha->members = {me};
        }
        t.state = TenantState::creating;
        t.reuse = kept.has_value();
        records[name] = t;  // reserves the name and ports before the lock is let go
        return t;
    });
}

Created Provisioner::create(const std::string& name, const CreateRequest& req, const TenantSpec& spec,
                            const Progress& progress) {
    StepTimer total;
    std::optional<TenantRecord> kept;  // a detached tenant being brought back
    TenantRecord t = reserve(name, req, spec, kept);
    const TenantLayout l = layout_of(cfg_, t);
    Disk& disk = disks_.of(t.spec);

    Rollback rb([&](const std::string& step, const std::string& err) {
        log::error("Rollback of step '" + step + "' failed: " + err + "; reconcile will retry", name);
    });
    rb.add("record", [&, kept] {
        if (kept) store_.save(*kept);
        else store_.forget(name);
    });
    std::string destroyed;  // what a forced create erased, for the reply
    auto step = [&](const std::string& s, auto&& fn) {
        set_step(t, s);
        if (progress) progress(s, -1);
        crash_point("create", "before", s);
        StepTimer st;
        fn();
        crash_point("create", "after", s);
        log::info("Step '" + s + "' done in " + std::to_string(st.ms()) + " ms", name);
        if (progress) progress(s, st.ms());
    };

    // The warm pool: a fresh tenant of the pool's shape on the loop backend takes a prepared
    // disk (its cluster initdb'd already); none there: the full path.
    std::optional<pool::Disk> pooled;
    if (pool_ && !kept && !req.from && t.spec.backend == "loop")
        pooled = pool_->take({.size = t.spec.disk_size, .filesystem = t.spec.filesystem});
    bool pool_moved = false;
    // The admin's SCRAM secret (4096 PBKDF2 rounds, 10-25 ms of CPU) made on another thread
    // while the disk, the user and the unit's start take their time; the hand-over sets it.
    std::future<std::string> admin_secret;
    if (pooled) admin_secret = std::async(std::launch::async, [pw = t.password] { return pgconf::scram_verifier(pw); });
    // Its OS user too (useradd, a program: about 10 ms) while the disk is moved, attached and
    // mounted; the "user" step takes it. user_ours: this create made it, a rollback removes it.
    std::future<units::OsUser> user_made;
    bool user_ours = false;

    try {
        log::info(std::string(kept ? "Bringing back" : "Creating") + " tenant (port " + std::to_string(t.port) +
                      ", public port " + std::to_string(t.public_port) + ")" +
                      (pooled ? ", on warm pool disk " + pooled->id : ""),
                  name);
        if (pooled) {
            rb.add("user", [&] {
                if (user_made.valid()) {
                    try {
                        user_made.get();
                        user_ours = true;
                    } catch (const Error&) {
                    }
                }
                if (user_ours) remove_own_user(t.os_user);
            });
            user_made = std::async(std::launch::async, [&] { return fx_.create_user(t.os_user, l.mountpoint); });
            step("pool", [&] {
                t.image = l.image;
                t.fs_uuid = pooled->fs_uuid;
                t.label = l.label(t.spec.filesystem);
                store_.save(t);  // the image and UUID are the tenant's on record before the image moves
                // A crash from here on: the reconcile removes the tenant's image (this one once
                // moved) and the pool's start-up forgets an entry whose image is gone.
                fx_.rename_image(pool_->image_of(pooled->id), t.image);  // never over a file that is there
                pool_moved = true;
                rb.add("disk image", [&] { fx_.remove_image(t.image); });
                pool_->moved(pooled->id);
                t.device = fx_.attach_image(t.image);
                rb.add("loop device", [&] { fx_.detach_image(t.image); });
                store_.save(t);
                fx_.relabel(t);
            });
        } else {
            step("disk", [&] { destroyed = disk.acquire(t, kept.has_value(), req.force, rb); });
        }
        if (!kept && !pooled) {
            step("format", [&] {
                t.fs_uuid = storage::new_uuid();
                t.label = l.label(t.spec.filesystem);
                store_.save(t);  // the UUID is known before the disk is written
                fx_.format(t.device, t.spec.filesystem, t.label, t.fs_uuid);
                rb.add("format", [&] { disk.undo_format(t); });
            });
        }
        step("mount", [&] {
            fx_.mount(t, l, !kept);
            rb.add("mount", [&] { fx_.unmount(l); });
            // Space the disk-full guard can hand back; a tenant whose disk is too full for it
            // (a kept one) gets it later from the guard.
            try {
                fx_.ensure_reserve(l, reserve_bytes(cfg_, t.spec.disk_size));
            } catch (const Error& e) {
                log::warning(std::string("No reserve file yet: ") + e.what(), name);
            }
        });
        units::OsUser user;
        step("user", [&] {
            auto had = kept ? fx_.find_user(t.os_user) : std::nullopt;
            if (had && had->hostd) {
                user = *had;  // kept with the detached tenant's backups; stays with them on a rollback
            } else if (user_made.valid()) {
                user = user_made.get();
                user_ours = true;
            } else {
                user = fx_.create_user(t.os_user, l.mountpoint);
                rb.add("user", [&] { remove_own_user(t.os_user); });
            }
            t.uid = user.uid;
        });
        BranchCopy copy = BranchCopy::restored;
        if (req.from) {
            step("restore", [&] {
                const TenantRecord src = branch_source(req.from->tenant);
                copy = fx_.restore_cluster(src, t, l, user, backup::parse_target(req.from->target, "from.target"));
            });
        } else {
            step(kept ? "adopt" : pooled ? "take" : "initdb", [&] {
                // A pool disk's cluster, made by the pool's user, is adopted as a kept one is:
                // every file handed to the tenant's user, its configuration and certificate written.
                if (kept || pooled) fx_.adopt_cluster(t, l, user);
                else fx_.init_cluster(t, l, user);
            });
        }
        step("start", [&] {
            // The repository the unit makes at its start is this create's (reserve refused one
            // that was there): a rollback takes it.
            if (!kept && !l.backup_repo.empty()) rb.add("repository", [&] { fx_.remove_repository(l.backup_repo); });
            rb.add("unit", [&] { fx_.stop_unit(l); });
            fx_.start_unit(l, t.port, limits_of(t.spec));
        });
        // Directly over its socket directory (TCP logins need TLS, and come through the proxy).
        step("check", [&] {
            if (pooled) {
                // The cluster's bootstrap superuser becomes the tenant's admin with its password,
                // and hostd's own role is made (a login with what only the pool's state file knew).
                // PostgreSQL accepts connections: the unit's start ended with its READY=1.
                fx_.hand_over_cluster(t, l, *pooled, admin_secret.get());
            }
            // Copied from its running source: the source's admin password until this.
            if (copy == BranchCopy::streamed) {
                fx_.wait_ready(t, l, kCheckTimeoutMs);
                fx_.hand_over_branch(t, l);
            }
            // A fresh cluster has hostd's pg_hba/pg_ident lines from its initdb but not the role:
            // made now, at the admin's first login, ensure_monitor_login finds the login working
            // and does not take its repair path (files rewritten, a reload, polling). That login
            // is the check that the admin's login works (each login costs a backend and SCRAM).
            // A pool disk's admin has a secret hostd made (pgconf_cluster_test: it is
            // PostgreSQL's) and the hand-over's commit: no SCRAM login to check it again.
            if (!kept && !req.from && !pooled)
                fx_.create_monitor_role(t, l, kCheckTimeoutMs);
            else if (!pooled)
                fx_.wait_sql(l.socket_dir, t.port, t.admin_user, t.password, kCheckTimeoutMs, "");
            fx_.ensure_monitor_login(t, l);  // hostd's checks and metrics never need the admin password
        });
        if (l.backups) step("backups", [&] {
            if (!kept && !l.backup_remote.empty()) rb.add("repository host", [&] { fx_.forget_remote_backups(l, /*best_effort=*/true); });
            fx_.prepare_backups(t, l, /*files_current=*/!kept);
        });
        step("route", [&] {
            store_.set_routed(name, true);
            rb.add("route", [&] {
                store_.set_routed(name, false);
                publish_routes();
            });
            publish_routes();
        });
        // The admin's login was checked over the socket (a pool disk: its secret set in the
        // hand-over's transaction); what is left is the route.
        step("check-proxy", [&] { wait_through_proxy(t); });
        t.state = TenantState::ready;
        t.step.clear();
        t.reuse = false;
        store_.save(t);
        rb.commit();
    } catch (const Error& e) {
        log::error("Create failed at step '" + t.step + "': " + e.what() + "; undoing the steps taken", name);
        if (pooled && !pool_moved) pool_->give_back(*pooled);  // its image never moved: still the pool's
        rb.run();
        throw Error(e.code(), "Failed to create tenant '" + name + "' at step '" + t.step + "': " + e.what(), e.field());
    }
    log::info("Tenant ready in " + std::to_string(total.ms()) + " ms", name);
    return {.tenant = view_of(cfg_, t, true), .ms = total.ms(), .destroyed = destroyed};
}

Restored Provisioner::restore(const std::string& name, const RestoreRequest& req, const Progress& progress) {
    StepTimer total;
    TenantRecord t = store_.get(name);
    if (t.state != TenantState::ready)
        throw Error(Errc::conflict, "Tenant '" + name + "' is " + std::string(to_string(t.state)) +
                                        "; only a ready tenant whose disk is gone can be restored");
    const backup::Target target = backup::parse_target(req.time, "time");
    const TenantLayout l = layout_of(cfg_, t);
    Disk& disk = disks_.of(t.spec);
    if (t.step.starts_with(kRestoreStep)) {
        // A restore cut off by a crash: what it made (its new disk, recorded before it was
        // made) holds a partial cluster. Undone first, as a failed restore would have been.
        log::warning("An earlier restore was cut off at step '" + t.step + "': undoing what it made", name);
        fx_.stop_unit(l);
        fx_.unmount(l);
        disk.release(t);
        disk.destroy(t);
    }
    // Refusals first; nothing is changed until they pass.
    const RestoreDisk how = plan_restore_disk(t, fx_.disk_facts(t, l));
    auto user = fx_.find_user(t.os_user);
    if (user && !user->hostd)
        throw Error(Errc::refused, "OS user '" + t.os_user + "' exists but was not made by hostd; remove or rename it, "
                                   "then restore again");
    // pgBackRest reads the repository as the tenant's OS user: one lost with the machine's
    // accounts is made again first (the tenant's own; a reconcile needs it too).
    if (!user) {
        user = fx_.create_user(t.os_user, l.mountpoint);
        t.uid = user->uid;
        store_.save(t);
    }
    const backup::Info info = fx_.backup_info(t, l);
    if (info.backups.empty())
        throw Error(Errc::refused, "Tenant '" + name + "' has no backup in its repository " +
                                       (l.backup_remote.empty() ? l.backup_repo : "on the repository host " + cfg_.backup_repo_host) +
                                       (info.status_message.empty() ? "" : " (pgBackRest: " + info.status_message + ")") +
                                       ": there is nothing to restore it from; nothing was changed.");

    Store::Activity busy(store_, name, "restoring");
    const TenantRecord before = t;
    Rollback rb([&](const std::string& step, const std::string& err) {
        log::error("Rollback of restore step '" + step + "' failed: " + err + "; hostctl restore retries", name);
    });
    rb.add("record", [&, before] { store_.save(before); });
    auto step = [&](const std::string& s, auto&& fn) {
        set_step(t, std::string(kRestoreStep) + s);  // a ready tenant with this step: a restore under way
        if (progress) progress(s, -1);
        StepTimer st;
        fn();
        log::info("Restore step '" + s + "' done in " + std::to_string(st.ms()) + " ms", name);
        if (progress) progress(s, st.ms());
    };
    try {
        log::info("Restoring the tenant from its backups onto a new disk (" +
                      std::string(how == RestoreDisk::new_image ? "a new image" : "its blank device " + t.device) +
                      ", target " + req.time + ", newest archived WAL " + (info.wal_max.empty() ? "none" : info.wal_max) + ")",
                  name);
        step("disk", [&] {
            if (how == RestoreDisk::new_image) t.image = l.image;
            disk.acquire(t, /*kept=*/false, /*force=*/false, rb);  // the same checks as a create
        });
        step("format", [&] {
            // A new filesystem UUID: the lost disk, should it come back, is never taken for this one.
            t.fs_uuid = storage::new_uuid();
            t.label = l.label(t.spec.filesystem);
            store_.save(t);  // the UUID is known before the disk is written
            fx_.format(t.device, t.spec.filesystem, t.label, t.fs_uuid);
            rb.add("format", [&] { disk.undo_format(t); });
        });
        step("mount", [&] {
            fx_.mount(t, l, /*fresh=*/true);
            rb.add("mount", [&] { fx_.unmount(l); });
            try {
                fx_.ensure_reserve(l, reserve_bytes(cfg_, t.spec.disk_size));
            } catch (const Error& e) {
                log::warning(std::string("No reserve file yet: ") + e.what(), name);
            }
        });
        step("restore", [&] {
            fx_.restore_cluster(t, t, l, *user, target);
            // A cluster backed up while the disk-full guard held it read-only: the new disk has room.
            t.read_only = false;
            fx_.set_read_only(t, l, false);
        });
        if (!t.stopped) {
            step("start", [&] {
                rb.add("unit", [&] { fx_.stop_unit(l); });
                fx_.start_unit(l, t.port, limits_of(t.spec));
            });
            step("check", [&] {
                fx_.wait_sql(l.socket_dir, t.port, t.admin_user, t.password, kCheckTimeoutMs, "");
                fx_.ensure_monitor_login(t, l);
            });
            step("backups", [&] { fx_.prepare_backups(t, l, /*files_current=*/true); });
            step("route", [&] {
                store_.set_routed(name, true);
                rb.add("route", [&] {
                    store_.set_routed(name, false);
                    publish_routes();
                });
                publish_routes();
            });
            step("check-proxy", [&] { wait_through_proxy(t); });
        }
        t.step.clear();
        store_.save(t);
        store_.set_problem(name, "");
        rb.commit();
    } catch (const Error& e) {
        const std::string at = t.step.substr(std::min(t.step.size(), kRestoreStep.size()));
        log::error("Restore failed at step '" + at + "': " + e.what() + "; undoing the steps taken", name);
        rb.run();
        store_.set_problem(name, "a restore failed at step '" + at + "': " + e.what());
        throw Error(e.code(), "Failed to restore tenant '" + name + "' at step '" + at + "': " + e.what() +
                                  "; what the restore made was undone", e.field());
    }
    log::info("Tenant restored in " + std::to_string(total.ms()) + " ms" + (t.stopped ? " (it stays stopped)" : ""), name);
    return {.tenant = view_of(cfg_, t, true), .ms = total.ms(), .target = req.time, .wal_max = info.wal_max};
}

void Provisioner::teardown(TenantRecord& t, bool purge) {
    const TenantLayout l = layout_of(cfg_, t);
    Disk& disk = disks_.of(t.spec);
    auto step = [&](const std::string& s, auto&& fn) {
        set_step(t, s);
        crash_point("delete", "before", s);
        fn();
        crash_point("delete", "after", s);
    };
    step("unroute", [&] {
        store_.set_routed(t.name, false);
        publish_routes();
    });
    step("stop", [&] { fx_.stop_unit(l); });
    step("unmount", [&] { fx_.unmount(l); });
    step("release", [&] { disk.release(t); });
    // The backups: kept (and their owner's uid with them) unless purged; a create rolled back
    // leaves none. The repository goes before its owner, so its uid is never free while it is there.
    // On a repository host the same: its repository there, and its files here (the client
    // certificate that reaches it, its group's to read), go together or stay together; kept,
    // it is retired there (no more scheduled backups of a tenant that no longer runs).
    const StanzaFate fate = stanza_fate(l.backups, fx_.has_repository(l.backup_dir), purge,
                                        t.purge_backups || t.state == TenantState::creating);
    const bool remote = !l.backup_remote.empty();
    if (fate.remove_repo)
        step("backups", [&] { remote ? fx_.forget_remote_backups(l, /*best_effort=*/false) : fx_.remove_repository(l.backup_repo); });
    else if (fate.keep_user && remote)
        step("backups", [&] { fx_.retire_remote_backups(l); });
    step("user", [&] {
        if (!fate.keep_user) return remove_own_user(t.os_user);
        auto u = fx_.find_user(t.os_user);
        if (u && u->hostd) return;
        if (u) throw Error(Errc::refused, "OS user '" + t.os_user + "' exists but was not made by hostd, and the backups at " +
                                              l.backup_dir + " must stay with a user of their own; remove or rename it, then retry");
        // Its user went earlier (a delete before hostd kept them): one of its own holds the backups again.
        const units::OsUser made = fx_.create_user(t.os_user, l.mountpoint);
        fx_.hand_repository(l, made);
        t.uid = made.uid;
        log::info("OS user " + t.os_user + " made again (uid " + std::to_string(made.uid) + ") to own the kept backups", t.name);
    });
    if (purge) step("purge", [&] { disk.destroy(t); });
}

void Provisioner::finish_purge(TenantRecord& t) {
    const TenantLayout l = layout_of(cfg_, t);
    const StanzaFate fate = stanza_fate(l.backups, fx_.has_repository(l.backup_dir), true, t.purge_backups);
    if (fate.record) {
        auto u = fx_.find_user(t.os_user);
        if (!u) throw Error(Errc::failed, "The OS user '" + t.os_user + "' that owns the kept backups is gone; run hostctl reconcile");
        t.uid = u->uid;
        const KeptStanza k = kept_of(t, now_rfc3339(), l.backup_dir, u->gid, l.backup_remote.empty() ? "" : cfg_.backup_repo_host);
        store_.save_kept(k);  // before the record goes: the name is never free of both
        const std::time_t until = kept_until(k, cfg_.backup_deleted_retention);
        log::info("Backups kept " + (k.repository_host.empty() ? "at " + l.backup_dir : "on the repository host " + k.repository_host) + " (owner " + t.os_user + ", uid " + std::to_string(k.uid) + ") " +
                      (until ? "until " + format_rfc3339(until) : std::string("until purged")) + ", for branches",
                  t.name);
    }
    store_.forget(t.name);
}

void Provisioner::purge_kept(const std::string& name, const std::string& why) {
    auto k = store_.kept(name);
    if (!k) return;
    if (!k->repository_host.empty()) {
        // Dropped on the repository host it was kept on, through this host's files for it.
        const TenantLayout l = layout_of(cfg_, name);
        if (k->repository_host != cfg_.backup_repo_host || l.backup_remote != k->repository)
            throw Error(Errc::failed, "The backups of '" + name + "' are kept on the repository host " + k->repository_host +
                                          ", which backup.repo_host no longer names; set it again to purge them");
        if (fx_.has_repository(k->repository)) fx_.forget_remote_backups(l, /*best_effort=*/false);
    } else if (fx_.has_repository(k->repository)) {
        fx_.remove_repository(k->repository);
    }
    // Its owner only: a user of that name with another uid is not the one recorded.
    if (auto u = fx_.find_user(k->tenant.os_user); u && u->uid == k->uid) remove_own_user(k->tenant.os_user);
    store_.forget_kept(name);
    log::info("Kept backups removed (" + why + "); uid " + std::to_string(k->uid) + " is free again", name);
}

TenantRecord Provisioner::branch_source(const std::string& name) const {
    auto rec = store_.locked([&](auto& records) -> std::optional<TenantRecord> {
        auto it = records.find(name);
        if (it == records.end()) return std::nullopt;
        return it->second;
    });
    if (rec && (rec->state == TenantState::ready || rec->state == TenantState::detached)) return *rec;
    if (auto k = store_.kept(name)) return k->tenant;
    throw Error(Errc::not_found, "No tenant '" + name + "' to branch from (nor kept backups of a deleted one: hostctl backups lists those)",
                "from.tenant");
}

void Provisioner::finish_detach(TenantRecord& t) {
    t.state = TenantState::detached;
    t.step.clear();
    t.reuse = t.purge = t.purge_backups = false;
    t.stopped = false;
    t.device = disks_.of(t.spec).kept_device(t);
    store_.save(t);
}

void Provisioner::remove_own_user(const std::string& os_user) {
    auto u = fx_.find_user(os_user);
    if (!u) return;
    if (!u->hostd) {
        log::warning("OS user '" + os_user + "' was not made by hostd (no '" + std::string(units::kUserMarker) +
                     "' comment): left alone");
        return;
    }
    fx_.delete_user(os_user);
}

Deleted Provisioner::remove(const std::string& name, bool purge, bool purge_backups) {
    if (purge_backups && !purge)
        throw Error(Errc::invalid, "purge_backups goes with purge: the backups of a tenant whose data is kept stay with it",
                    "purge_backups");
    if (auto k = store_.kept(name)) {
        // Deleted already; only its backups are left.
        if (!purge_backups) {
            const std::time_t until = kept_until(*k, cfg_.backup_deleted_retention);
            return {.name = name, .state = "deleted", .purged = true, .backups = "kept",
                    .kept_until = format_rfc3339(until)};
        }
        purge_kept(name, "purged on request");
        return {.name = name, .state = "deleted", .purged = true, .backups = "purged"};
    }
    TenantRecord t = store_.get(name);
    if (t.state == TenantState::detached && !purge)
        return {.name = name, .state = "detached", .purged = false,
                .backups = fx_.has_repository(layout_of(cfg_, name).backup_dir) ? "kept" : ""};
    log::info(std::string("Deleting tenant") + (purge ? (purge_backups ? " with its data and backups" : " and its data") : " (data kept)"), name);
    t.state = TenantState::deleting;
    t.purge = purge;
    t.purge_backups = purge && purge_backups;
    try {
        teardown(t, purge);
    } catch (const Error& e) {
        log::error("Delete failed at step '" + t.step + "': " + e.what(), name);
        throw Error(e.code(), "Failed to delete tenant '" + name + "' at step '" + t.step + "': " + e.what() +
                                  "; the delete can be retried");
    }
    const bool had_backups = fx_.has_repository(layout_of(cfg_, name).backup_dir);
    if (purge) {
        finish_purge(t);
        log::info("Tenant deleted and its data destroyed", name);
        Deleted d{.name = name, .state = "deleted", .purged = true};
        if (auto k = store_.kept(name)) {
            d.backups = "kept";
            d.kept_until = format_rfc3339(kept_until(*k, cfg_.backup_deleted_retention));
        } else if (purge_backups) {
            d.backups = "purged";
        }
        return d;
    }
    finish_detach(t);
    log::info("Tenant deleted; its data is kept for a create with reuse", name);
    return {.name = name, .state = "detached", .purged = false, .backups = had_backups ? "kept" : ""};
}

Resized Provisioner::resize(const std::string& name, const ResizeRequest& req) {
    const uint64_t size = req.size;
    TenantRecord t = store_.get(name);
    if (t.state != TenantState::ready)
        throw Error(Errc::conflict, "Tenant '" + name + "' is " + std::string(to_string(t.state)) + "; only a ready tenant can be resized");
    if (size < t.spec.disk_size)
        throw Error(Errc::refused, "Tenant '" + name + "' has " + format_size(t.spec.disk_size) + "; shrinking to " +
                                       format_size(size) + " is not supported (ext4 cannot shrink while mounted, xfs "
                                       "cannot shrink at all). Free space instead, or move the data to a new tenant (pg_dump).",
                    "size");
    const TenantLayout l = layout_of(cfg_, t);
    if (!fx_.disk_usage(l))
        throw Error(Errc::unavailable, "Tenant '" + name + "' has no filesystem mounted at '" + l.mountpoint +
                                           "'; run hostctl reconcile, then resize again.");
    // Every other refusal before the question whether PostgreSQL may be stopped.
    disks_.of(t.spec).check_grow(t, size);
    if (!req.allow_offline && !t.stopped && !fx_.grows_online(t))
        throw Error(Errc::refused, "Growing tenant '" + name + "' stops its PostgreSQL for a few seconds: its " + t.spec.filesystem +
                                       " filesystem can only grow unmounted here (the kernel grows a mounted ext4 only for a "
                                       "process with CAP_SYS_RESOURCE, which hostd lacks), so hostd stops the tenant, runs "
                                       "e2fsck and resize2fs, and starts it again; its sessions are cut. Allow it with "
                                       "allow_offline (hostctl resize --yes); nothing was changed.",
                    "allow_offline");
    StepTimer timer;
    const uint64_t before = t.spec.disk_size;
    bool online = true;
    disks_.of(t.spec).grow(t, size);
    try {
        fx_.grow_filesystem(t, l);
        t.spec.disk_size = size;
        store_.save(t);
    } catch (const Error& e) {
        if (e.code() != Errc::unavailable || t.spec.filesystem != "ext4") throw;
        // The device has grown; the filesystem can only follow unmounted: a short restart.
        log::warning(std::string("Growing offline with a short restart: ") + e.what(), name);
        online = false;
        try {
            fx_.stop_unit(l);
            fx_.unmount(l);
            fx_.grow_offline(t);
        } catch (const Error& e2) {
            // Back up on the size it had: a failed resize must not leave the tenant down.
            try {
                fx_.mount(t, l, /*fresh=*/false);
                if (!t.stopped) {  // one stopped on purpose stays stopped
                    fx_.start_unit(l, t.port, limits_of(t.spec));
                    fx_.wait_ready(t, l, kCheckTimeoutMs);
                }
            } catch (const Error& e3) {
                store_.set_problem(name, std::string("down after a failed resize: ") + e3.what());
                throw Error(Errc::failed, "Failed to grow the filesystem of tenant '" + name + "' offline (" + e2.what() +
                                              "), and it could not be started again (" + e3.what() +
                                              "); it is down on its old size " + format_size(before) + ": run hostctl reconcile");
            }
            throw Error(e2.code(), "Failed to grow the filesystem of tenant '" + name + "' offline: " + e2.what() +
                                       (t.stopped ? "; it keeps its old size " : "; it runs again on its old size ") +
                                       format_size(before));
        }
        t.spec.disk_size = size;
        store_.save(t);
        fx_.mount(t, l, /*fresh=*/false);
    }
    log::info("Disk grown from " + format_size(before) + " to " + format_size(size) + (online ? " online" : " offline"), name);
    // WAL sizing follows the disk. A tenant that went down on a full disk comes back now; one
    // stopped on purpose stays stopped (it reads the new sizing when it starts).
    if (t.stopped) {
        fx_.apply_limits(t, l);
        guard_.check(name);
        return {.tenant = view_of(cfg_, store_.get(name), false), .ms = timer.ms(), .online = online, .disk = fx_.disk_usage(l)};
    }
    if (fx_.unit_active(l)) {
        fx_.apply_limits(t, l);
        // A tenant whose disk filled may be in crash recovery right now: the resize is done
        // when it accepts connections again.
        fx_.wait_ready(t, l, kCheckTimeoutMs);
    } else {
        log::info("Starting the tenant again after the resize", name);
        fx_.start_unit(l, t.port, limits_of(t.spec));
        fx_.wait_ready(t, l, kCheckTimeoutMs);
        store_.set_problem(name, "");
    }
    // Done when clients get through again: a proxy that saw the backend stopped (an offline
    // grow, a full disk) takes a health check to route to it again.
    wait_through_proxy(t);
    guard_.check(name);  // the grown disk may have room again
    return {.tenant = view_of(cfg_, store_.get(name), false), .ms = timer.ms(), .online = online, .disk = fx_.disk_usage(l)};
}

namespace {
void require_ready(const TenantRecord& t, const char* verb) {
    if (t.state != TenantState::ready)
        throw Error(Errc::conflict, "Tenant '" + t.name + "' is " + std::string(to_string(t.state)) + "; only a ready tenant can be " +
                                        verb);
}
}  // namespace

TenantRecord Provisioner::stop(const std::string& name) {
    TenantRecord t = store_.get(name);
    require_ready(t, "stopped");
    const TenantLayout l = layout_of(cfg_, t);
    Store::Activity busy(store_, name, "stopping");
    if (!t.stopped || t.hibernated) {
        t.stopped = true;
        t.hibernated = false;  // plainly stopped: its port no longer wakes it
        store_.save(t);  // the intent first: a reconcile after a crash here finishes the stop
    }
    store_.set_routed(name, false);
    publish_routes();
    try {
        fx_.stop_unit(l);
    } catch (const Error& e) {
        throw Error(e.code(), "Failed to stop tenant '" + name + "': " + e.what() + "; it is unrouted and recorded as stopped "
                                                                                "(hostctl reconcile tries again)");
    }
    store_.set_problem(name, "");
    log::info("Stopped on purpose: it stays stopped across reconciles and reboots until hostctl start", name);
    return t;
}

// The unit runs (started or restarted): PostgreSQL accepts connections, hostd's own login
// works, the route is in the proxy and clients get through it.
void Provisioner::bring_up(TenantRecord& t, const TenantLayout& l) {
    if (t.ha) {
        // An HA member: the route follows the primary wherever it runs (HAProxy asks each
        // member's Patroni), so it does not wait for this member, which may be a replica
        // catching up or rejoining (pg_rewind). Patroni owns its pg_hba (hostd's login is in it).
        store_.set_problem(t.name, "");
        store_.set_routed(t.name, true);
        publish_routes();
        return;
    }
    fx_.wait_ready(t, l, kCheckTimeoutMs);
    try {
        fx_.ensure_monitor_login(t, l);
    } catch (const Error& e) {
        log::warning(std::string("hostd's own login to the tenant does not work (metrics unknown): ") + e.what(), t.name);
    }
    store_.set_problem(t.name, "");
    store_.set_routed(t.name, true);
    publish_routes();
    wait_through_proxy(t);
}

void Provisioner::wait_through_proxy(const TenantRecord& t) {
    const auto ep = public_endpoint(cfg_, t);
    if (ep.sni_host.empty()) fx_.wait_routed(proxy_check_address(cfg_), ep.port, "", kCheckTimeoutMs);
    else fx_.wait_routed(ep.sni_host, ep.port, proxy_check_address(cfg_), kCheckTimeoutMs);
}

TenantRecord Provisioner::start(const std::string& name) {
    TenantRecord t = store_.get(name);
    require_ready(t, "started");
    const TenantLayout l = layout_of(cfg_, t);
    Store::Activity busy(store_, name, "starting");
    if (t.stopped || t.hibernated) {
        t.stopped = false;
        t.hibernated = false;  // woken
        store_.save(t);  // the intent first: from now on a reconcile starts it too
    }
    try {
        fx_.mount(t, l, /*fresh=*/false);
        fx_.start_unit(l, t.port, limits_of(t.spec));
        bring_up(t, l);
    } catch (const Error& e) {
        store_.set_problem(name, std::string("failed to start: ") + e.what());
        throw Error(e.code(), "Failed to start tenant '" + name + "': " + e.what() + "; see hostctl logs " + name);
    }
    log::info("Started", name);
    return t;
}

bool Provisioner::hibernate(const std::string& name, const std::function<bool()>& still_idle) {
    TenantRecord t = store_.get(name);
    if (t.state != TenantState::ready || t.stopped || t.hibernated || t.ha || !hibernate_on(cfg_)) return false;
    const TenantLayout l = layout_of(cfg_, t);
    // A tenant that is down stays down, and said so: hibernating it would hide it from the alerts.
    if (!store_.problem(name).empty() || !fx_.unit_active(l)) return false;
    // A scheduled backup under way needs its PostgreSQL to the end (it connects over the socket,
    // which the idle check does not count).
    if (fx_.backup_running(l)) return false;
    Store::Activity busy(store_, name, "hibernating");
    t.hibernated = true;
    store_.save(t);  // the intent first: a reconcile after a crash here finishes the stop, and keeps the route
    publish_routes();  // its server in maintenance: new connections go to the waker
    if (!still_idle()) {  // a client came between the look and the switch: it stays awake
        t.hibernated = false;
        store_.save(t);
        publish_routes();
        return false;
    }
    try {
        fx_.stop_unit(l);
    } catch (const Error& e) {
        throw Error(e.code(), "Failed to stop tenant '" + name + "' for hibernation: " + e.what() +
                                  "; it is recorded as hibernated (its next connection or hostctl start runs it)");
    }
    store_.set_problem(name, "");
    log::info("Hibernated: no client for " + std::to_string(static_cast<long>(cfg_.hibernate_after)) +
                  " s; its next connection starts it",
              name);
    arm_timers(t, l);
    return true;
}

void Provisioner::arm_timers(const TenantRecord& t, const TenantLayout& l) {
    try {
        fx_.arm_backup_timers(t, l);
    } catch (const Error& e) {
        // It stays hibernated; its next start (a connection, hostctl start or wake) starts them.
        log::warning(std::string("Its scheduled backups do not run while it hibernates: ") + e.what(), t.name);
    }
}

TenantRecord Provisioner::wake(const std::string& name) {
    TenantRecord t = store_.get(name);
    if (!t.hibernated) return t;  // awake already (another connection woke it)
    if (t.state != TenantState::ready || t.stopped)
        throw Error(Errc::conflict, "Tenant '" + name + "' is " + (t.stopped ? std::string("stopped on purpose") : std::string(to_string(t.state))) +
                                        ", not hibernated; it is not woken by a connection");
    const TenantLayout l = layout_of(cfg_, t);
    Store::Activity busy(store_, name, "waking");
    t.hibernated = false;
    store_.save(t);  // the intent first: from now on a reconcile starts it too
    try {
        fx_.mount(t, l, /*fresh=*/false);
        fx_.start_unit(l, t.port, limits_of(t.spec));
        fx_.wait_ready(t, l, kCheckTimeoutMs);
    } catch (const Error& e) {
        store_.set_problem(name, std::string("failed to wake: ") + e.what());
        publish_routes();  // its own server again: a client sees it down, as it is
        throw Error(e.code(), "Failed to wake tenant '" + name + "': " + e.what() + "; see hostctl logs " + name);
    }
    store_.set_problem(name, "");
    publish_routes();  // its own server ready: new connections go straight to it
    return t;
}

TenantRecord Provisioner::restart(const std::string& name) {
    TenantRecord t = store_.get(name);
    require_ready(t, "restarted");
    if (t.stopped)
        throw Error(Errc::conflict, "Tenant '" + name + "' is stopped on purpose; start it with hostctl start " + name);
    const TenantLayout l = layout_of(cfg_, t);
    Store::Activity busy(store_, name, "restarting");
    if (t.hibernated) {  // a restart runs it: awake from now on
        t.hibernated = false;
        store_.save(t);
    }
    try {
        fx_.restart_unit(l, t.port, limits_of(t.spec));
        bring_up(t, l);
    } catch (const Error& e) {
        store_.set_problem(name, std::string("failed to restart: ") + e.what());
        throw Error(e.code(), "Failed to restart tenant '" + name + "': " + e.what() + "; see hostctl logs " + name);
    }
    log::info("Restarted", name);
    return t;
}

TenantSpec Provisioner::updated_spec(const TenantSpec& spec, const LimitsUpdate& u) const {
    TenantSpec s = spec;
    if (u.memory) s.memory = *u.memory;
    if (u.cpu) s.cpu = *u.cpu;
    if (u.tasks) s.tasks = *u.tasks;
    if (u.io_weight) s.io_weight = *u.io_weight;
    if (u.settings) s.settings = *u.settings;
    if (!u.settings_edit.empty()) s.settings = pgconf::validate_overrides(catalog_, edit_settings(s.settings, u.settings_edit));
    if (u.extensions) s.extensions = *u.extensions;
    return s;
}

LimitsChanged Provisioner::set_limits(const std::string& name, const LimitsUpdate& u) {
    TenantRecord t = store_.get(name);
    if (t.state != TenantState::ready)
        throw Error(Errc::conflict, "Tenant '" + name + "' is " + std::string(to_string(t.state)) + "; limits change only on a ready tenant");
    const TenantLayout l = layout_of(cfg_, t);
    TenantRecord before = t;
    t.spec = updated_spec(t.spec, u);
    if (u.memory || u.cpu || u.tasks || u.settings || !u.settings_edit.empty() || u.extensions)
        // Checked against the other tenants under the store's lock, as a create's reserve is.
        store_.locked([&](auto& records) {
            check_capacity(t, records, t.spec.memory > before.spec.memory);
            records[name] = t;
        });
    store_.save(t);  // the record is the truth a reconcile or a reboot re-applies
    std::vector<std::string> pending;
    try {
        pending = fx_.apply_limits(t, l);
    } catch (const Error& e) {
        store_.save(before);
        try {
            fx_.apply_limits(before, l);
        } catch (const Error& e2) {
            log::error(std::string("Failed to restore the previous limits: ") + e2.what(), name);
        }
        throw Error(e.code(), "Failed to change the limits of tenant '" + name + "': " + e.what());
    }
    for (auto& s : pgconf::settings_needing_restart(catalog_, before.spec.settings, t.spec.settings))
        if (std::find(pending.begin(), pending.end(), s) == pending.end()) pending.push_back(s);
    if (pgconf::preload_libraries(before.spec.extensions) != pgconf::preload_libraries(t.spec.extensions) &&
        std::find(pending.begin(), pending.end(), "shared_preload_libraries") == pending.end())
        pending.push_back("shared_preload_libraries");
    log::info("Limits and settings changed live", name);
    return {.tenant = view_of(cfg_, t, false), .pending_restart = pending};
}

TenantView Provisioner::set_password(const std::string& name, const PasswordRequest& req) {
    TenantRecord t = store_.get(name);
    if (t.state != TenantState::ready)
        throw Error(Errc::conflict, "Tenant '" + name + "' is " + std::string(to_string(t.state)) +
                                        "; only a ready tenant's password can be changed");
    const std::string password = req.password ? *req.password : pgconf::random_password();
    const TenantLayout l = layout_of(cfg_, t);
    // Recorded before PostgreSQL is told: after a crash (or a failure whose outcome is not
    // known) the role has the old or the new password, and the record holds both; the next
    // change logs in with either (`before` carries the one an earlier change left pending).
    const TenantRecord before = t;
    t.password_pending = password;
    store_.save(t);
    try {
        fx_.set_password(before, l, password);
    } catch (const Error& e) {
        const bool refused = std::string_view(e.what()).find("password authentication failed") != std::string_view::npos;
        throw Error(e.code(), "Failed to change the password of tenant '" + name + "': " + e.what() +
                                  (refused ? " (hostd logs in as the tenant's admin with the password it recorded; the "
                                             "tenant changed it with ALTER ROLE: set it back, or change it there)"
                                           : ""));
    }
    t.password = password;
    t.password_pending.clear();
    store_.save(t);
    log::info("Admin password changed", name);
    return view_of(cfg_, t, true);
}

}  // namespace hostd

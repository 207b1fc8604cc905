#include "hostd/reconciler.h"

#include <chrono>
#include <tuple>

#include "base/error.h"
#include "hostd/log.h"
#include "model/layout.h"
#include "model/restore.h"

namespace hostd {

void Reconciler::converge(TenantRecord t, const std::map<std::string, LiveStatus>& units, const std::string& unit_error,
                          ReconcileReport& report) {
    auto act = [&](const std::string& what) {
        log::info("Reconcile: " + what, t.name);
        report.actions.push_back({t.name, what, ""});
    };
    const TenantLayout l = layout_of(cfg_, t);
    switch (t.state) {
    case TenantState::creating:
        // A create cut off midway is rolled back: finishing it would need the request's
        // caller, who has already seen it fail.
        act("rolling back a create interrupted at step '" + t.step + "'");
        store_.set_routed(t.name, false);
        prov_.teardown(t, /*purge=*/!t.reuse);
        if (t.reuse) prov_.finish_detach(t);
        else store_.forget(t.name);
        return;
    case TenantState::deleting:
        act("finishing a delete interrupted at step '" + t.step + "'");
        prov_.teardown(t, t.purge);
        if (t.purge) prov_.finish_purge(t);  // its backups recorded when kept
        else prov_.finish_detach(t);
        return;
    case TenantState::detached:
        return;  // the orphan sweep removes anything still running for it
    case TenantState::ready:
        break;
    }
    // Should run: disk attached, mounted by UUID with its marker, user, unit, route. Stopped on
    // purpose: the same, but its unit stopped and no route (the disk stays mounted for the
    // guard and the disk stats, and for a start). Hibernated: its unit stopped, its route kept.
    LiveStatus before;
    if (!unit_error.empty()) before.unit_error = unit_error;
    else if (auto it = units.find(t.name); it != units.end()) before = it->second;
    if (t.step.starts_with(kRestoreStep)) {
        // A restore cut off by a crash: its new disk holds a partial cluster, never started.
        const std::string why = "a restore was cut off at step '" + t.step.substr(kRestoreStep.size()) +
                                "'; hostctl restore " + t.name + " undoes what it made and restores again";
        store_.set_routed(t.name, false);
        store_.set_problem(t.name, why);
        log::error("Tenant cannot run: " + why, t.name);
        report.actions.push_back({t.name, "left down", why});
        return;
    }
    try {
        const bool was_mounted = fx_.disk_usage(l).has_value();
        try {
            if (disks_.of(t.spec).reattach(t)) {
                store_.save(t);
                act("its disk is " + t.device + " now");
            }
        } catch (const Error& e) {
            // Mounted, so its data is there (a loop image deleted while attached lives on in its
            // loop device until that is detached): say so, and leave it serving.
            if (!was_mounted) throw;
            log::error(std::string("Its disk cannot be attached again, but its filesystem is mounted and serves: ") + e.what() +
                           "; back it up now (hostctl backup " + t.name + "): a detach or a reboot loses it",
                       t.name);
            report.actions.push_back({t.name, "disk in danger", e.what()});
        }
        fx_.mount(t, l, /*fresh=*/false);
        if (!was_mounted) act("mounted its filesystem (UUID " + t.fs_uuid + ") at " + l.mountpoint);
        if (auto u = fx_.find_user(t.os_user); !u) {
            act("re-creating OS user " + t.os_user);
            auto made = fx_.create_user(t.os_user, l.mountpoint);
            t.uid = made.uid;  // the port watch knows the tenant by it
            store_.save(t);
            fx_.adopt_cluster(t, l, made);
        } else if (!u->hostd) {
            // Someone else's account took the name: the tenant's files must not become its.
            throw Error(Errc::refused, "OS user '" + t.os_user + "' exists but was not made by hostd; remove or rename it, "
                                       "then run hostctl reconcile");
        }
        if (t.hibernated && !hibernate_on(cfg_)) {
            // hostd.toml turned hibernation off: no waker routes to it any more, so it runs again.
            t.hibernated = false;
            store_.save(t);
            act("woke it: hibernation is off in hostd.toml ([hibernate] after)");
        }
        if (t.hibernated) {
            // Hibernated: stays stopped (a crash in its hibernation left it running: stopped now)
            // and routed, so its next connection reaches the waker and starts it.
            const std::string& a = before.active_state;
            if (!before.unit_error.empty() || (!a.empty() && a != "inactive" && a != "failed")) {
                fx_.stop_unit(l);
                if (before.unit_error.empty()) act("stopped its unit (" + a + "): the tenant is hibernated; its next connection starts it");
            }
            prov_.arm_timers(t, l);  // after a reboot too: its scheduled backups wake it
            store_.set_routed(t.name, true);
            store_.set_problem(t.name, "");
            return;
        }
        if (t.stopped) {
            const std::string& a = before.active_state;
            if (!before.unit_error.empty() || (!a.empty() && a != "inactive" && a != "failed")) {
                fx_.stop_unit(l);
                if (before.unit_error.empty())
                    act("stopped its unit (" + a + "): the tenant is stopped on purpose; hostctl start runs it");
            }
            store_.set_routed(t.name, false);
            store_.set_problem(t.name, "");
            return;
        }
        // What it was before this start, in the words GET uses: a start of a unit that was not
        // running is an action, reported with what it was.
        const Live was = derive_live(t, before, store_.problem(t.name), "", std::nullopt);
        fx_.start_unit(l, t.port, limits_of(t.spec));
        if (was.state == "down" || was.state == "restarting")
            act("started its unit; it was " + was.state + (was.reason.empty() ? "" : ": " + was.reason));
        store_.set_routed(t.name, true);
        store_.set_problem(t.name, "");
        // An HA member's pg_hba is Patroni's (hostd's login is in its patroni.yml), and a reload
        // of its unit this early would be a SIGHUP before Patroni handles it.
        if (t.ha) return;
        try {
            fx_.ensure_monitor_login(t, l);
        } catch (const Error& e) {
            // It runs and is routed; only hostd's metrics of it are blind until this works.
            log::warning(std::string("hostd's own login to the tenant does not work (metrics unknown): ") + e.what(), t.name);
        }
    } catch (const Error& e) {
        // Stays down and is reported; never initdb'd afresh, never routed while down. A disk
        // that is gone is said in those words, with the way back.
        std::string why = e.what();
        try {
            if (auto missing = disk_missing_reason(t, fx_.disk_facts(t, l), backups_on(cfg_)); !missing.empty())
                why = missing + " (" + e.what() + ")";
        } catch (const Error&) {
        }
        store_.set_routed(t.name, false);
        store_.set_problem(t.name, why);
        log::error("Tenant cannot run: " + why, t.name);
        report.actions.push_back({t.name, "left down", why});
    }
}

void Reconciler::sweep_orphans(ReconcileReport& report) {
    auto inv = fx_.inventory();
    std::set<std::string> live, live_postgres, live_patroni;  // not detached; by the kind of unit each runs in
    for (auto& t : store_.snapshot())
        if (t.state != TenantState::detached) {
            live.insert(t.name);
            (t.ha ? live_patroni : live_postgres).insert(t.name);
        }
    // kind: the unit's, for units and their drop-ins (hostd-postgres@ or an HA member's hostd-patroni@).
    auto sweep_of = [&](const std::set<std::string>& found, UnitKind kind, const char* what, auto&& remove) {
        for (auto& name : found) {
            if (live.count(name)) continue;
            try {
                Store::OpLock op(store_, name);
                remove(layout_of(cfg_, name, kind));
                log::info(std::string("Reconcile: removed orphan ") + what, name);
                report.actions.push_back({name, std::string("removed orphan ") + what, ""});
            } catch (const Error& e) {
                log::error(std::string("Reconcile: failed to remove orphan ") + what + ": " + e.what(), name);
            }
        }
    };
    auto sweep = [&](const std::set<std::string>& found, const char* what, auto&& remove) {
        sweep_of(found, UnitKind::postgres, what, remove);
    };
    auto stop = [&](const TenantLayout& l) { fx_.stop_unit(l); };
    sweep_of(inv.units, UnitKind::postgres, "unit", stop);
    sweep_of(inv.dropins, UnitKind::postgres, "unit drop-ins", stop);
    sweep_of(inv.patroni_units, UnitKind::patroni, "Patroni unit", stop);
    sweep_of(inv.patroni_dropins, UnitKind::patroni, "Patroni unit drop-ins", stop);
    // A unit of the other kind beside a live tenant: said, not stopped (stopping a tenant's unit
    // stops its backup timers too, which are the live tenant's).
    for (auto [found, other, kind] : {std::tuple{&inv.units, &live_patroni, UnitKind::postgres},
                                      std::tuple{&inv.patroni_units, &live_postgres, UnitKind::patroni}})
        for (auto& name : *found) {
            if (!other->count(name)) continue;
            const std::string unit = layout_of(cfg_, name, kind).unit;
            const std::string why = unit + " runs, but the tenant runs in " +
                                    layout_of(cfg_, name, kind == UnitKind::patroni ? UnitKind::postgres : UnitKind::patroni).unit +
                                    "; stop it by hand (systemctl stop " + unit + ")";
            log::error("Reconcile: a stray unit: " + why, name);
            report.actions.push_back({name, "stray unit left running", why});
        }
    sweep(inv.mounts, "mount", [&](const TenantLayout& l) { fx_.unmount(l); });
    sweep(inv.images, "loop device", [&](const TenantLayout& l) { fx_.detach_image(l.image); });
    // OS users: a detached tenant's, and a deleted one's whose backups are kept, own those
    // backups (their uid must stay taken): not orphans.
    std::set<std::string> users = inv.users;
    for (auto& t : store_.snapshot())
        if (fx_.has_repository(layout_of(cfg_, t).backup_dir)) users.erase(t.name);
    for (auto& [name, _] : store_.kept_all()) users.erase(name);
    sweep(users, "OS user", [&](const TenantLayout& l) { prov_.remove_own_user(l.os_user); });
}

ReconcileReport Reconciler::run(const std::set<std::string>& leave) {
    std::lock_guard one(one_);
    const auto t0 = std::chrono::steady_clock::now();
    ReconcileReport report;
    // Every unit's state before anything is done, in one call (what the report compares with).
    std::map<std::string, LiveStatus> units;
    std::string unit_error;
    try {
        units = fx_.unit_states();
    } catch (const Error& e) {
        unit_error = e.what();
    }
    for (auto& t : store_.snapshot()) {
        if (leave.count(t.name)) {
            report.actions.push_back({t.name, "left for the HA recovery",
                                      "an HA " + std::string(to_string(t.state)) + " cut off at step '" + t.step +
                                          "' waits for another host to answer (logged); retried every 30 s"});
            continue;
        }
        try {
            Store::OpLock op(store_, t.name);
            converge(store_.get(t.name), units, unit_error, report);  // the record as it is now, not the snapshot's copy
        } catch (const Error& e) {
            if (e.code() == Errc::not_found) continue;  // deleted meanwhile
            log::error(std::string("Reconcile failed: ") + e.what(), t.name);
            report.actions.push_back({t.name, "failed", e.what()});
        }
    }
    // Orphans: what hostd makes, on the machine, that no live tenant owns.
    sweep_orphans(report);
    try {
        prov_.publish_routes(/*force_reload=*/true);
    } catch (const Error& e) {
        log::error(std::string("Reconcile: failed to update the proxy's routes: ") + e.what());
        report.actions.push_back({"", "routes failed", e.what()});
    }
    report.duration_ms = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
    log::info("Reconcile done in " + std::to_string(report.duration_ms) + " ms, " + std::to_string(report.actions.size()) +
              " action(s)");
    return report;
}

}  // namespace hostd

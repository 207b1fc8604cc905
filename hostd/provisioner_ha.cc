// The provisioner's part of an HA tenant (#17): this host's member, prepared, started, or
// aborted. The coordination across hosts is the Manager's (hostd/manager_ha.cc).
#include <chrono>

#include "base/error.h"
#include "base/rollback.h"
#include "hostd/faults.h"
#include "hostd/log.h"
#include "hostd/provisioner.h"
#include "model/layout.h"
#include "model/patroni.h"

namespace hostd {
namespace {

long ms_since(std::chrono::steady_clock::time_point t0) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
}

// Patroni's bootstrap is an initdb and a first start (seconds); a replica's is a copy of the
// primary (pg_basebackup: as long as the data takes).
constexpr int kBootstrapTimeoutMs = 90000;
constexpr int kCloneTimeoutMs = 300000;

// A member's step as a create's: recorded before it is taken, its crash points, its time logged
// and told to progress.
template <class SetStep>
auto member_steps(const TenantRecord& t, const Provisioner::Progress& progress, SetStep set_step) {
    return [&t, &progress, set_step](const std::string& s, auto&& fn) {
        set_step(s);
        if (progress) progress(s, -1);
        crash_point("create", "before", s);
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        crash_point("create", "after", s);
        log::info("Step '" + s + "' done in " + std::to_string(ms_since(t0)) + " ms", t.name);
        if (progress) progress(s, ms_since(t0));
    };
}

}  // namespace

HaMember Provisioner::prepare_member(const std::string& name, const CreateRequest& req, const TenantSpec& spec,
                                     const HaSpec& ha, const std::string& admin_password, const std::string& self,
                                     const Progress& progress) {
    std::optional<TenantRecord> kept;
    TenantRecord t = reserve(name, req, spec, kept, &ha, self);
    t.password = admin_password;  // the tenant's one admin password, the same on every member
    const TenantLayout l = layout_of(cfg_, t);
    Disk& disk = disks_.of(t.spec);
    Rollback rb([&](const std::string& step, const std::string& err) {
        log::error("Rollback of step '" + step + "' failed: " + err + "; reconcile will retry", name);
    });
    rb.add("record", [&] { store_.forget(name); });
    auto step = member_steps(t, progress, [&](const std::string& s) { set_step(t, s); });
    try {
        log::info("Preparing HA member on " + self + " (port " + std::to_string(t.port) + ", REST port " +
                      std::to_string(t.ha->members.front().rest_port) + ", public port " + std::to_string(t.public_port) +
                      ", create " + ha.create_id + ")",
                  name);
        step("disk", [&] { disk.acquire(t, false, false, rb); });
        step("format", [&] {
            t.fs_uuid = storage::new_uuid();
            t.label = l.label(t.spec.filesystem);
            store_.save(t);
            fx_.format(t.device, t.spec.filesystem, t.label, t.fs_uuid);
            rb.add("format", [&] { disk.undo_format(t); });
        });
        step("mount", [&] {
            fx_.mount(t, l, true);
            rb.add("mount", [&] { fx_.unmount(l); });
            try {
                fx_.ensure_reserve(l, reserve_bytes(cfg_, t.spec.disk_size));
            } catch (const Error& e) {
                log::warning(std::string("No reserve file yet: ") + e.what(), name);
            }
        });
        step("user", [&] {
            const units::OsUser user = fx_.create_user(t.os_user, l.mountpoint);
            rb.add("user", [&] { remove_own_user(t.os_user); });
            t.uid = user.uid;
        });
        t.step = "prepared";
        store_.save(t);
        rb.commit();
    } catch (const Error& e) {
        log::error("Preparing the HA member failed at step '" + t.step + "': " + e.what() + "; undoing the steps taken", name);
        rb.run();
        throw Error(e.code(), "Failed to prepare HA member of tenant '" + name + "' on host '" + self + "' at step '" + t.step +
                                  "': " + e.what(),
                    e.field());
    }
    return t.ha->members.front();
}

void Provisioner::start_member(const std::string& name, const HaSpec& ha, const std::string& self, bool bootstrap,
                               const Progress& progress) {
    TenantRecord t = store_.get(name);
    if (!t.ha || t.state != TenantState::creating || t.ha->create_id != ha.create_id)
        throw Error(Errc::conflict, "Host '" + self + "' has no prepared member of tenant '" + name + "' for create " + ha.create_id);
    const HaMember* mine = ha.member(self);
    const HaMember* prepared = t.ha->member(self);
    if (!mine || !prepared || mine->pg_port != prepared->pg_port || mine->rest_port != prepared->rest_port ||
        mine->public_port != prepared->public_port)
        throw Error(Errc::invalid, "The members sent for tenant '" + name + "' do not hold host '" + self + "' as it was prepared");
    // The host that coordinates this member's making stays the one it was prepared for (a
    // replace's new member: the replace's host, not the create's): a restart's recovery
    // undoes a whole create only from the record of the host that coordinated it.
    const std::string initiator = t.ha->initiator;
    t.ha = ha;
    t.ha->initiator = initiator;
    for (auto& m : t.ha->members)
        if (m.host == self) m.phase = MemberPhase::started;
    const TenantLayout l = layout_of(cfg_, t);
    auto step = member_steps(t, progress, [&](const std::string& s) { set_step(t, s); });
    try {
        step("patroni-files", [&] {
            const auto user = fx_.find_user(t.os_user);
            if (!user) throw Error(Errc::failed, "OS user '" + t.os_user + "' of the prepared member is gone");
            fx_.write_member_files(t, l, *user, ha::render_patroni(patroni_member(cfg_, t, self)));
        });
        step("start", [&] { fx_.start_unit(l, t.port, limits_of(t.spec)); });
        step(bootstrap ? "bootstrap" : "clone", [&] {
            fx_.wait_ready(t, l, bootstrap ? kBootstrapTimeoutMs : kCloneTimeoutMs);
            // The scope's first member: Patroni made its own roles; the tenant's admin is hostd's to make.
            if (bootstrap) fx_.create_ha_admin(t, l, kBootstrapTimeoutMs);
        });
        step("route", [&] {
            store_.set_routed(name, true);
            publish_routes();
        });
        step("check-proxy", [&] { wait_through_proxy(t); });
        if (bootstrap) {
            // The coordinator's own member stays `creating` until every replica has started
            // (Manager::create_ha marks it ready): a crash before that undoes the whole create.
            t.step = "replicas";
        } else {
            t.state = TenantState::ready;
            t.step.clear();
        }
        store_.save(t);
    } catch (const Error& e) {
        log::error("Starting the HA member failed at step '" + t.step + "': " + e.what() + "; tearing it down", name);
        const std::string at = t.step;
        abort_member(name, ha.create_id);
        throw Error(e.code(), "Failed to start HA member of tenant '" + name + "' on host '" + self + "' at step '" + at +
                                  "': " + e.what(),
                    e.field());
    }
}

void Provisioner::update_member(const std::string& name, const HaSpec& ha, const std::string& self) {
    TenantRecord t = store_.get(name);
    if (!t.ha || t.ha->create_id != ha.create_id)
        throw Error(Errc::conflict, "Host '" + self + "' has no member of tenant '" + name + "' of create " + ha.create_id);
    if (t.state != TenantState::ready)
        throw Error(Errc::conflict, "The member of tenant '" + name + "' on host '" + self + "' is " +
                                        std::string(to_string(t.state)) + ", not ready");
    const HaMember* mine = ha.member(self);
    const HaMember* had = t.ha->member(self);
    if (!mine || !had || mine->pg_port != had->pg_port || mine->rest_port != had->rest_port ||
        mine->public_port != had->public_port)
        throw Error(Errc::invalid, "The members sent for tenant '" + name + "' do not hold host '" + self + "' as it is");
    const MemberPhase phase = had->phase;
    t.ha = ha;
    for (auto& m : t.ha->members)
        if (m.host == self) m.phase = phase;
    store_.save(t);
    const TenantLayout l = layout_of(cfg_, t);
    const auto user = fx_.find_user(t.os_user);
    if (!user) throw Error(Errc::failed, "OS user '" + t.os_user + "' of the member is gone; run hostctl reconcile");
    fx_.write_member_files(t, l, *user, ha::render_patroni(patroni_member(cfg_, t, self)));
    if (fx_.unit_active(l)) fx_.reload_unit(l);
    publish_routes();
    std::string hosts;
    for (const auto& m : t.ha->members) hosts += (hosts.empty() ? "" : ", ") + m.host;
    log::info("HA members are now " + hosts, name);
}

TenantRecord Provisioner::set_member_limits(const std::string& name, const std::string& create_id, const std::string& self,
                                            const TenantSpec& spec) {
    TenantRecord t = store_.get(name);
    if (!t.ha || t.ha->create_id != create_id)
        throw Error(Errc::conflict, "Host '" + self + "' has no member of tenant '" + name + "' of create " + create_id);
    if (t.state != TenantState::ready)
        throw Error(Errc::conflict, "The member of tenant '" + name + "' on host '" + self + "' is " +
                                        std::string(to_string(t.state)) + "; limits change only on a ready member");
    const TenantRecord before = t;
    t.spec.memory = spec.memory;
    t.spec.cpu = spec.cpu;
    t.spec.tasks = spec.tasks;
    t.spec.io_weight = spec.io_weight;
    t.spec.settings = spec.settings;
    t.spec.extensions = spec.extensions;
    store_.locked([&](auto& records) {
        check_capacity(t, records, t.spec.memory > before.spec.memory);
        records[name] = t;
    });
    store_.save(t);  // the record is the truth a reconcile or a reboot re-applies
    const TenantLayout l = layout_of(cfg_, t);
    const auto user = fx_.find_user(t.os_user);
    auto apply = [&](const TenantRecord& r) {
        fx_.set_unit_limits(r, l);
        fx_.write_member_files(r, l, *user, ha::render_patroni(patroni_member(cfg_, r, self)));
        if (fx_.unit_active(l)) fx_.reload_unit(l);
    };
    try {
        if (!user) throw Error(Errc::failed, "OS user '" + t.os_user + "' of the member is gone; run hostctl reconcile");
        apply(t);
    } catch (const Error& e) {
        store_.save(before);
        try {
            if (user) apply(before);
        } catch (const Error& e2) {
            log::error(std::string("Failed to restore the member's previous limits: ") + e2.what(), name);
        }
        throw Error(e.code(), "Failed to change the limits of the member of '" + name + "' on host '" + self + "': " + e.what());
    }
    log::info("Limits and settings of the HA member changed", name);
    return t;
}

void Provisioner::abort_member(const std::string& name, const std::string& create_id) {
    TenantRecord t;
    try {
        t = store_.get(name);
    } catch (const Error& e) {
        if (e.code() == Errc::not_found) return;
        throw;
    }
    // A member of that create, ready or not: the create as a whole failed (a member started
    // before another failed is undone too). Without a create_id only one that is not ready.
    const bool ours = !create_id.empty() ? t.ha && t.ha->create_id == create_id
                                         : t.ha && t.state == TenantState::creating;
    if (!ours || t.state == TenantState::deleting || t.state == TenantState::detached) return;
    log::warning("Undoing the HA member of create " + t.ha->create_id, name);
    teardown(t, /*purge=*/true);
    store_.forget(name);
}

}  // namespace hostd

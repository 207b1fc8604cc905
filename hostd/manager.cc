#include "hostd/manager.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <random>

#include "base/error.h"
#include "base/fs.h"
#include "base/rollback.h"
#include "base/size.h"
#include "hostd/faults.h"
#include "hostd/log.h"
#include "pgconf/pgconf.h"
#include "pgconf/settings.h"
#include "storage/storage.h"
#include "units/users.h"

namespace hostd {

class Manager::OpLock {
public:
    OpLock(Manager& m, const std::string& name) : m_(m), name_(name) {
        std::unique_lock g(m_.mu_);
        // The disk-full guard holds a tenant for a few milliseconds: wait for it, never refuse.
        m_.guard_cv_.wait(g, [&] { return !m_.guarding_.count(name); });
        if (!m_.busy_.insert(name).second)
            throw Error(Errc::conflict, "Another operation on tenant '" + name + "' is in progress; try again when it ends");
    }
    ~OpLock() {
        std::lock_guard g(m_.mu_);
        m_.busy_.erase(name_);
    }

private:
    Manager& m_;
    std::string name_;
};

namespace {

std::string now_rfc3339() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string records_dir(const Config& c) { return c.state_dir + "/tenants"; }

units::Limits limits_of(const TenantSpec& s) {
    return {.memory_max = s.memory, .cpus = s.cpu, .tasks_max = s.tasks, .io_weight = s.io_weight};
}

class StepTimer {
public:
    StepTimer() : t0_(std::chrono::steady_clock::now()) {}
    long ms() const {
        return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0_).count());
    }

private:
    std::chrono::steady_clock::time_point t0_;
};

}  // namespace

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
}  // namespace

Manager::Manager(Config cfg, std::unique_ptr<Effects> fx)
    : cfg_(std::move(cfg)), fx_(std::move(fx)), catalog_(load_catalog(cfg_)) {}

std::string Manager::ca_certificate() { return fx_->ca_certificate(); }

void Manager::load() {
    make_dirs(records_dir(cfg_), 0700);
    std::lock_guard g(mu_);
    for (auto& e : std::filesystem::directory_iterator(records_dir(cfg_))) {
        auto p = e.path();
        if (p.extension() != ".toml" || p.filename().string().front() == '.') continue;
        try {
            auto t = from_toml(read_file(p.string()), p.string());
            if (t.state == TenantState::ready) routed_.insert(t.name);
            records_[t.name] = std::move(t);
        } catch (const Error& e) {
            log::error(std::string("Skipping a tenant record: ") + e.what());
        }
    }
    log::info("Loaded " + std::to_string(records_.size()) + " tenant record(s) from " + records_dir(cfg_));
}

void Manager::save(const TenantRecord& t) {
    write_file_atomic(records_dir(cfg_) + "/" + t.name + ".toml", to_toml(t), 0600);
    std::lock_guard g(mu_);
    records_[t.name] = t;
}

void Manager::forget(const std::string& name) {
    remove_file(records_dir(cfg_) + "/" + name + ".toml");
    std::lock_guard g(mu_);
    records_.erase(name);
    routed_.erase(name);
}

void Manager::set_step(TenantRecord& t, const std::string& step) {
    t.step = step;
    save(t);  // recorded before it is taken
}

std::set<uint16_t> Manager::ports_in_use() const {
    std::set<uint16_t> s;
    for (auto& [_, t] : records_) {
        if (t.port) s.insert(t.port);
        if (t.public_port) s.insert(t.public_port);
    }
    return s;
}

uint16_t Manager::allocate_port(PortRange range, uint16_t preferred, const std::set<uint16_t>& taken) {
    if (preferred >= range.first && preferred <= range.second && !taken.count(preferred) && fx_->port_free(preferred))
        return preferred;
    // Random start, then a linear walk: random ports do not collide with a neighbour host's
    // guesses, and the walk guarantees we find a free one if there is one.
    thread_local std::mt19937 rng{std::random_device{}()};
    uint32_t n = range.second - range.first + 1u;
    uint32_t start = std::uniform_int_distribution<uint32_t>(0, n - 1)(rng);
    for (uint32_t i = 0; i < n; i++) {
        auto p = static_cast<uint16_t>(range.first + (start + i) % n);
        if (!taken.count(p) && fx_->port_free(p)) return p;
    }
    throw Error(Errc::unavailable, "No free port left in " + std::to_string(range.first) + "-" + std::to_string(range.second) +
                                       "; widen the range in hostd.toml or delete tenants");
}

void Manager::start() {
    load();
    try {
        fx_->ca_certificate();  // the host's CA exists from the first start, not the first create
    } catch (const Error& e) {
        log::error(std::string("Failed to set up the local CA: ") + e.what());
    }
    reconcile();
}

void Manager::apply_routes(bool force_reload) {
    std::lock_guard rg(routes_mu_);
    std::vector<routes::Route> rs;
    {
        std::lock_guard g(mu_);
        for (auto& name : routed_) {
            rs.push_back(route_of(cfg_, records_.at(name)));
        }
    }
    fx_->apply_routes(rs, force_reload);
}

nlohmann::json Manager::create(const std::string& name, const nlohmann::json& body, const Progress& progress) {
    validate_name(name);
    CreateRequest req = parse_create_request(body, cfg_);
    bool new_settings = raw_settings(body).has_value();
    req.spec.settings = pgconf::validate_overrides(catalog_, req.spec.settings);
    OpLock op(*this, name);
    StepTimer total;

    TenantRecord t;
    std::optional<TenantRecord> kept;  // a detached tenant being brought back
    {
        std::lock_guard g(mu_);
        auto it = records_.find(name);
        if (it != records_.end()) {
            if (it->second.state != TenantState::detached)
                throw Error(Errc::conflict, "Tenant '" + name + "' already exists");
            if (!req.reuse)
                throw Error(Errc::conflict, "Tenant '" + name + "' was deleted without purge and its data is kept; "
                                            "create it with reuse to bring it back, or delete it with purge first");
            kept = it->second;
        } else if (req.reuse) {
            throw Error(Errc::not_found, "No kept data of tenant '" + name + "' to reuse");
        }
        if (kept) {
            t = *kept;
            // Limits may change on the way back; the disk stays what it is.
            t.spec.memory = req.spec.memory;
            t.spec.cpu = req.spec.cpu;
            t.spec.tasks = req.spec.tasks;
            t.spec.io_weight = req.spec.io_weight;
            if (new_settings) t.spec.settings = req.spec.settings;
        } else {
            t.name = name;
            t.spec = req.spec;
            t.admin_user = name;
            t.password = pgconf::random_password();
            t.created_at = now_rfc3339();
            t.os_user = units::os_user_for(name);
        }
        auto taken = ports_in_use();
        taken.erase(t.port);
        taken.erase(t.public_port);
        t.port = allocate_port(cfg_.pg_ports, t.port, taken);
        taken.insert(t.port);
        // SNI routes share one port; a port route gets one of its own, kept across a reuse.
        if (cfg_.domain.empty()) t.public_port = allocate_port(cfg_.public_ports, t.public_port, taken);
        t.state = TenantState::creating;
        t.reuse = kept.has_value();
        records_[name] = t;  // reserves the name and ports before the lock is let go
    }

    Rollback rb([&](const std::string& step, const std::string& err) {
        log::error("Rollback of step '" + step + "' failed: " + err + "; reconcile will retry", name);
    });
    rb.add("record", [&, kept] {
        if (kept) save(*kept);
        else forget(name);
    });
    std::string mp = mountpoint_of(cfg_, name);
    std::string destroyed;  // what a forced create erased, for the reply
    auto step = [&](const std::string& s, auto&& fn) {
        set_step(t, s);
        crash_point("create", "before", s);
        StepTimer st;
        fn();
        crash_point("create", "after", s);
        log::info("Step '" + s + "' done in " + std::to_string(st.ms()) + " ms", name);
        if (progress) progress(s, static_cast<long>(st.ms()));
    };

    try {
        log::info(std::string(kept ? "Bringing back" : "Creating") + " tenant (port " + std::to_string(t.port) +
                      ", public port " + std::to_string(t.public_port) + ")", name);
        step("disk", [&] {
            if (t.spec.backend == "loop") {
                t.image = cfg_.loop_dir + "/" + name + ".img";
                save(t);  // recorded before the file exists
                if (!kept) {
                    fx_->create_image(t.image, t.spec.disk_size);
                    rb.add("disk image", [&] { fx_->remove_image(t.image); });
                }
                t.device = fx_->attach_image(t.image);
                rb.add("loop device", [&] { fx_->detach_image(t.image); });
            } else if (kept) {
                t.device = t.spec.device;
            } else {
                const storage::DeviceCheck c = claim_device(name, t.spec.device, req.force);
                t.device = c.path;
                t.spec.device = c.path;
                save(t);  // the claim is on record before anything is written to the device
                if (!c.signature.empty()) {
                    log::warning("Forced: erasing " + c.signature + " on " + c.path + " (create with force)", name);
                    fx_->erase_signatures(c.path);
                    destroyed = c.signature + " on " + c.path;
                }
            }
        });
        if (!kept) {
            step("format", [&] {
                t.fs_uuid = storage::new_uuid();
                t.label = storage::label_for(name, t.spec.filesystem);
                save(t);  // the UUID is known before the disk is written
                fx_->format(t.device, t.spec.filesystem, t.label, t.fs_uuid);
                if (t.spec.backend == "device") rb.add("format", [&] { fx_->wipe_device(t.device, t.fs_uuid); });
            });
        }
        step("mount", [&] {
            fx_->mount(t, mp, !kept);
            rb.add("mount", [&] { fx_->unmount(mp); });
            // Space the disk-full guard can hand back; a tenant whose disk is too full for it
            // (a kept one) gets it later from the guard.
            try {
                fx_->ensure_reserve(mp, reserve_bytes(cfg_, t.spec.disk_size));
            } catch (const Error& e) {
                log::warning(std::string("No reserve file yet: ") + e.what(), name);
            }
        });
        units::OsUser user;
        step("user", [&] {
            user = fx_->create_user(t.os_user, mp);
            t.uid = user.uid;
            rb.add("user", [&] { fx_->delete_user(t.os_user); });
        });
        step(kept ? "adopt" : "initdb", [&] {
            if (kept) fx_->adopt_cluster(t, mp, user);
            else fx_->init_cluster(t, mp, user);
        });
        step("start", [&] {
            rb.add("unit", [&] { fx_->stop_unit(name); });
            fx_->start_unit(name, limits_of(t.spec));
        });
        // Directly over its socket directory (TCP logins need TLS, and come through the proxy).
        step("check", [&] { fx_->wait_sql("/run/hostd-tenant/" + name, t.port, t.admin_user, t.password, 10000, ""); });
        step("route", [&] {
            {
                std::lock_guard g(mu_);
                routed_.insert(name);
            }
            rb.add("route", [&] {
                {
                    std::lock_guard g(mu_);
                    routed_.erase(name);
                }
                apply_routes();
            });
            apply_routes();
        });
        step("check-proxy", [&] {
            // Through the proxy, as a client would: by the route's port or by its TLS server name.
            auto ep = public_endpoint(cfg_, t);
            if (ep.sni_host.empty())
                fx_->wait_sql(proxy_check_address(cfg_), ep.port, t.admin_user, t.password, 10000, "");
            else
                fx_->wait_sql(ep.sni_host, ep.port, t.admin_user, t.password, 10000, proxy_check_address(cfg_));
        });
        t.state = TenantState::ready;
        t.step.clear();
        t.reuse = false;
        save(t);
        rb.commit();
    } catch (const Error& e) {
        log::error("Create failed at step '" + t.step + "': " + e.what() + "; undoing the steps taken", name);
        rb.run();
        record_op("create", false, total.ms());
        throw Error(e.code(), "Failed to create tenant '" + name + "' at step '" + t.step + "': " + e.what(), e.field());
    }
    log::info("Tenant ready in " + std::to_string(total.ms()) + " ms", name);
    record_op("create", true, total.ms());
    auto j = to_json(cfg_, t, true);
    j["create_ms"] = total.ms();
    if (!destroyed.empty()) j["destroyed"] = destroyed;
    return j;
}

storage::DeviceCheck Manager::claim_device(const std::string& name, const std::string& requested, bool force) {
    const bool from_pool = requested.empty();
    std::vector<std::string> candidates = from_pool ? cfg_.devices : std::vector<std::string>{requested};
    std::string reasons;
    for (const auto& cand : candidates) {
        try {
            // Never force a device picked from the pool: force is an operator's word about one device.
            storage::DeviceCheck c = fx_->check_device(cand, force && !from_pool);
            std::lock_guard g(mu_);
            for (auto& [other, r] : records_) {
                if (other == name) continue;
                std::error_code ec;
                auto spec_dev = r.spec.device.empty() ? std::string()
                                                      : std::filesystem::weakly_canonical(r.spec.device, ec).string();
                if (r.device == c.path || spec_dev == c.path)
                    throw Error(Errc::conflict, c.path + " is already claimed by tenant '" + other + "' (" +
                                                    std::string(to_string(r.state)) + "); hostd gives a device to one tenant only.");
            }
            records_[name].device = c.path;  // reserved: a concurrent create sees the claim
            return c;
        } catch (const Error& e) {
            if (!from_pool) throw;
            reasons += std::string(reasons.empty() ? "" : "; ") + e.what();
        }
    }
    if (candidates.empty())
        throw Error(Errc::invalid, "The create names no device and hostd.toml has no pool (storage.devices)", "device");
    throw Error(Errc::unavailable, "No free device in the pool (storage.devices): " + reasons);
}

nlohmann::json Manager::resize(const std::string& name, const nlohmann::json& body) {
    validate_name(name);
    const uint64_t size = parse_resize_request(body, cfg_);
    OpLock op(*this, name);
    TenantRecord t = record_of(name);
    if (t.state != TenantState::ready)
        throw Error(Errc::conflict, "Tenant '" + name + "' is " + std::string(to_string(t.state)) + "; only a ready tenant can be resized");
    if (size < t.spec.disk_size)
        throw Error(Errc::refused, "Tenant '" + name + "' has " + format_size(t.spec.disk_size) + "; shrinking to " +
                                       format_size(size) + " is not supported (ext4 cannot shrink while mounted, xfs "
                                       "cannot shrink at all). Free space instead, or move the data to a new tenant (pg_dump).",
                    "size");
    const std::string mp = mountpoint_of(cfg_, name);
    StepTimer timer;
    const uint64_t before = t.spec.disk_size;
    bool online = true;
    try {
        fx_->grow_disk(t, mp, size);
        t.spec.disk_size = size;
        save(t);
    } catch (const Error& e) {
        if (e.code() != Errc::unavailable || t.spec.filesystem != "ext4") throw;
        // The device has grown; the filesystem can only follow unmounted: a short restart.
        log::warning(std::string("Growing offline with a short restart: ") + e.what(), name);
        online = false;
        t.spec.disk_size = size;
        save(t);
        fx_->stop_unit(name);
        fx_->unmount(mp);
        fx_->grow_offline(t);
        fx_->mount(t, mp, /*fresh=*/false);
    }
    log::info("Disk grown from " + format_size(before) + " to " + format_size(size) + (online ? " online" : " offline"), name);
    // WAL sizing follows the disk. A tenant that went down on a full disk comes back now.
    if (fx_->unit_active(name)) {
        fx_->apply_limits(t, mp);
    } else {
        log::info("Starting the tenant again after the resize", name);
        fx_->start_unit(name, limits_of(t.spec));
        fx_->wait_sql("/run/hostd-tenant/" + name, t.port, t.admin_user, t.password, 10000, "");
        std::lock_guard g(mu_);
        problems_.erase(name);
    }
    guard_check(name);
    auto j = to_json(cfg_, record_of(name), false);
    j["resize_ms"] = timer.ms();
    j["online"] = online;
    if (auto d = fx_->disk_usage(mp)) j["disk"] = disk_json(*d);
    return j;
}

void Manager::guard_tick() {
    if (cfg_.guard_interval <= 0) return;
    std::vector<std::string> names;
    {
        std::lock_guard g(mu_);
        for (auto& [name, t] : records_)
            if (t.state == TenantState::ready && !busy_.count(name)) names.push_back(name);
    }
    for (auto& name : names) {
        {
            std::lock_guard g(mu_);
            if (busy_.count(name)) continue;  // an operation runs: the next round looks again
            guarding_.insert(name);
        }
        try {
            guard_check(name);
        } catch (const Error& e) {
            if (e.code() != Errc::not_found) log::warning(std::string("Disk-full guard: ") + e.what(), name);
        }
        {
            std::lock_guard g(mu_);
            guarding_.erase(name);
        }
        guard_cv_.notify_all();
    }
}

void Manager::guard_check(const std::string& name) {
    TenantRecord t = record_of(name);
    if (t.state != TenantState::ready) return;
    const std::string mp = mountpoint_of(cfg_, name);
    auto d = fx_->disk_usage(mp);
    if (!d || d->bytes_total == 0) return;
    const uint64_t reserve = reserve_bytes(cfg_, d->bytes_total);
    switch (guard_decide(*d, t.read_only, reserve, cfg_)) {
    case GuardAction::engage: {
        const uint64_t freed = fx_->release_reserve(mp);
        fx_->set_read_only(t, mp, true);
        t.read_only = true;
        save(t);
        log::warning("Disk nearly full (" + format_size(d->bytes_available) + " of " + format_size(d->bytes_total) +
                         " available): the tenant is read-only until space is freed or the disk is grown (hostctl resize); "
                         "released its " + format_size(freed) + " reserve",
                     name);
        break;
    }
    case GuardAction::release:
        fx_->ensure_reserve(mp, reserve);
        fx_->set_read_only(t, mp, false);
        t.read_only = false;
        save(t);
        log::info("Disk has room again (" + format_size(d->bytes_available) + " available): the tenant is read-write", name);
        break;
    case GuardAction::none:
        break;
    }
}

void Manager::record_op(const char* kind, bool ok, long ms) {
    std::lock_guard g(mu_);
    stats_.record(kind, ok ? "ok" : "error", static_cast<double>(ms) / 1000.0);
}

void Manager::teardown(TenantRecord& t, bool purge) {
    std::string mp = mountpoint_of(cfg_, t.name);
    auto step = [&](const std::string& s, auto&& fn) {
        set_step(t, s);
        crash_point("delete", "before", s);
        fn();
        crash_point("delete", "after", s);
    };
    step("unroute", [&] {
        {
            std::lock_guard g(mu_);
            routed_.erase(t.name);
        }
        apply_routes();
    });
    step("stop", [&] { fx_->stop_unit(t.name); });
    step("unmount", [&] { fx_->unmount(mp); });
    step("release", [&] {
        if (t.spec.backend == "loop" && !t.image.empty()) fx_->detach_image(t.image);
    });
    step("user", [&] { fx_->delete_user(t.os_user); });
    if (purge) {
        step("purge", [&] {
            if (t.spec.backend == "loop") {
                if (!t.image.empty()) fx_->remove_image(t.image);
            } else if (!t.device.empty()) {
                fx_->wipe_device(t.device, t.fs_uuid);
            }
        });
    }
}

void Manager::finish_detach(TenantRecord& t) {
    t.state = TenantState::detached;
    t.step.clear();
    t.reuse = t.purge = false;
    t.device = t.spec.backend == "device" ? t.spec.device : "";
    save(t);
}

// Brings one recorded tenant to where its state says it should be. Needs the tenant's OpLock.
void Manager::converge(TenantRecord t, nlohmann::json& actions) {
    auto act = [&](const std::string& what) {
        log::info("Reconcile: " + what, t.name);
        actions.push_back({{"tenant", t.name}, {"action", what}});
    };
    std::string mp = mountpoint_of(cfg_, t.name);
    switch (t.state) {
    case TenantState::creating:
        // A create cut off midway is rolled back: finishing it would need the request's
        // caller, who has already seen it fail.
        act(std::string("rolling back a create interrupted at step '") + t.step + "'");
        {
            std::lock_guard g(mu_);
            routed_.erase(t.name);
        }
        teardown(t, /*purge=*/!t.reuse);
        if (t.reuse) finish_detach(t);
        else forget(t.name);
        return;
    case TenantState::deleting:
        act(std::string("finishing a delete interrupted at step '") + t.step + "'");
        teardown(t, t.purge);
        if (t.purge) forget(t.name);
        else finish_detach(t);
        return;
    case TenantState::detached:
        return;  // the orphan sweep removes anything still running for it
    case TenantState::ready:
        break;
    }
    // Should run: disk attached, mounted by UUID with its marker, user, unit, route.
    try {
        if (t.spec.backend == "loop" && !t.image.empty()) {
            auto dev = fx_->attach_image(t.image);
            if (dev != t.device) {
                t.device = dev;
                save(t);
            }
        }
        fx_->mount(t, mp, /*fresh=*/false);
        if (!fx_->find_user(t.os_user)) {
            act("re-creating OS user " + t.os_user);
            auto u = fx_->create_user(t.os_user, mp);
            fx_->adopt_cluster(t, mp, u);
        }
        fx_->start_unit(t.name, limits_of(t.spec));
        std::lock_guard g(mu_);
        routed_.insert(t.name);
        problems_.erase(t.name);
    } catch (const Error& e) {
        // Stays down and is reported; never initdb'd afresh, never routed while down.
        std::lock_guard g(mu_);
        routed_.erase(t.name);
        problems_[t.name] = e.what();
        log::error(std::string("Tenant cannot run: ") + e.what(), t.name);
        actions.push_back({{"tenant", t.name}, {"action", "left down"}, {"problem", e.what()}});
    }
}

nlohmann::json Manager::reconcile() {
    std::lock_guard one(reconcile_mu_);
    StepTimer total;
    nlohmann::json actions = nlohmann::json::array();
    for (auto& t : snapshot()) {
        try {
            OpLock op(*this, t.name);
            converge(t, actions);
        } catch (const Error& e) {
            log::error(std::string("Reconcile failed: ") + e.what(), t.name);
            actions.push_back({{"tenant", t.name}, {"action", "failed"}, {"problem", e.what()}});
        }
    }
    // Orphans: what hostd makes, on the machine, that no live tenant owns.
    auto inv = fx_->inventory();
    std::set<std::string> live, known;
    {
        std::lock_guard g(mu_);
        for (auto& [name, t] : records_) {
            known.insert(name);
            if (t.state != TenantState::detached) live.insert(name);
        }
    }
    auto sweep = [&](const std::set<std::string>& found, const char* what, auto&& remove) {
        for (auto& name : found) {
            if (live.count(name)) continue;
            try {
                OpLock op(*this, name);
                remove(name);
                log::info(std::string("Reconcile: removed orphan ") + what, name);
                actions.push_back({{"tenant", name}, {"action", std::string("removed orphan ") + what}});
            } catch (const Error& e) {
                log::error(std::string("Reconcile: failed to remove orphan ") + what + ": " + e.what(), name);
            }
        }
    };
    sweep(inv.units, "unit", [&](const std::string& n) { fx_->stop_unit(n); });
    sweep(inv.dropins, "unit drop-ins", [&](const std::string& n) { fx_->stop_unit(n); });
    sweep(inv.mounts, "mount", [&](const std::string& n) { fx_->unmount(mountpoint_of(cfg_, n)); });
    sweep(inv.images, "loop device", [&](const std::string& n) { fx_->detach_image(cfg_.loop_dir + "/" + n + ".img"); });
    sweep(inv.users, "OS user", [&](const std::string& n) { fx_->delete_user(units::os_user_for(n)); });
    try {
        apply_routes(/*force_reload=*/true);
    } catch (const Error& e) {
        log::error(std::string("Reconcile: failed to update the proxy's routes: ") + e.what());
        actions.push_back({{"action", "routes failed"}, {"problem", e.what()}});
    }
    {
        std::lock_guard g(mu_);
        stats_.reconcile_runs++;
    }
    log::info("Reconcile done in " + std::to_string(total.ms()) + " ms, " + std::to_string(actions.size()) + " action(s)");
    return {{"actions", actions}, {"duration_ms", total.ms()}};
}

nlohmann::json Manager::remove(const std::string& name, bool purge) {
    validate_name(name);
    OpLock op(*this, name);
    TenantRecord t = record_of(name);
    if (t.state == TenantState::detached && !purge)
        return {{"name", name}, {"state", "detached"}, {"purged", false}};
    log::info(std::string("Deleting tenant") + (purge ? " and its data" : " (data kept)"), name);
    t.state = TenantState::deleting;
    t.purge = purge;
    StepTimer total;
    try {
        teardown(t, purge);
        record_op("delete", true, total.ms());
    } catch (const Error& e) {
        record_op("delete", false, total.ms());
        log::error("Delete failed at step '" + t.step + "': " + e.what(), name);
        throw Error(e.code(), "Failed to delete tenant '" + name + "' at step '" + t.step + "': " + e.what() +
                                  "; the delete can be retried");
    }
    if (purge) {
        forget(name);
        log::info("Tenant deleted and its data destroyed", name);
        return {{"name", name}, {"state", "deleted"}, {"purged", true}};
    }
    finish_detach(t);
    log::info("Tenant deleted; its data is kept for a create with reuse", name);
    return {{"name", name}, {"state", "detached"}, {"purged", false}};
}

nlohmann::json Manager::set_limits(const std::string& name, const nlohmann::json& body) {
    validate_name(name);
    refuse_unknown_fields(body);
    auto u = parse_limits_update(body, cfg_);
    if (u.settings) u.settings = pgconf::validate_overrides(catalog_, *u.settings);
    OpLock op(*this, name);
    TenantRecord t = record_of(name);
    if (t.state != TenantState::ready)
        throw Error(Errc::conflict, "Tenant '" + name + "' is " + std::string(to_string(t.state)) + "; limits change only on a ready tenant");
    TenantRecord before = t;
    if (u.memory) t.spec.memory = *u.memory;
    if (u.cpu) t.spec.cpu = *u.cpu;
    if (u.tasks) t.spec.tasks = *u.tasks;
    if (u.io_weight) t.spec.io_weight = *u.io_weight;
    if (u.settings) t.spec.settings = *u.settings;
    save(t);  // the record is the truth a reconcile or a reboot re-applies
    std::vector<std::string> pending;
    try {
        pending = fx_->apply_limits(t, mountpoint_of(cfg_, name));
    } catch (const Error& e) {
        save(before);
        try {
            fx_->apply_limits(before, mountpoint_of(cfg_, name));
        } catch (const Error& e2) {
            log::error(std::string("Failed to restore the previous limits: ") + e2.what(), name);
        }
        throw Error(e.code(), "Failed to change the limits of tenant '" + name + "': " + e.what());
    }
    for (auto& s : pgconf::settings_needing_restart(catalog_, before.spec.settings, t.spec.settings))
        if (std::find(pending.begin(), pending.end(), s) == pending.end()) pending.push_back(s);
    log::info("Limits and settings changed live", name);
    auto j = to_json(cfg_, t, false);
    j["pending_restart"] = pending;
    return j;
}

nlohmann::json Manager::get(const std::string& name) {
    validate_name(name);
    TenantRecord t = record_of(name);
    auto j = to_json(cfg_, t, true);
    if (t.state == TenantState::ready) j["status"] = fx_->live_status(t, mountpoint_of(cfg_, name));
    {
        std::lock_guard g(mu_);
        if (auto it = problems_.find(name); it != problems_.end()) j["problem"] = it->second;
    }
    return j;
}

TenantRecord Manager::record_of(const std::string& name) const {
    std::lock_guard g(mu_);
    auto it = records_.find(name);
    if (it == records_.end()) throw Error(Errc::not_found, "No tenant named '" + name + "'");
    return it->second;
}

std::vector<TenantRecord> Manager::snapshot() const {
    std::lock_guard g(mu_);
    std::vector<TenantRecord> v;
    v.reserve(records_.size());
    for (auto& [_, t] : records_) v.push_back(t);
    return v;
}

OpStats Manager::op_stats() const {
    std::lock_guard g(mu_);
    return stats_;
}

nlohmann::json Manager::list() {
    nlohmann::json arr = nlohmann::json::array();
    std::lock_guard g(mu_);
    for (auto& [name, t] : records_) {
        arr.push_back(to_json(cfg_, t, false));
        if (auto it = problems_.find(name); it != problems_.end()) arr.back()["problem"] = it->second;
    }
    return arr;
}

nlohmann::json Manager::host() {
    std::lock_guard g(mu_);
    uint64_t mem = 0;
    double cpu = 0;
    uint64_t disk = 0;
    size_t running = 0;
    for (auto& [_, t] : records_) {
        if (t.state == TenantState::detached) continue;
        running++;
        mem += t.spec.memory;
        cpu += t.spec.cpu;
        disk += t.spec.disk_size;
    }
    std::error_code ec;
    auto space = std::filesystem::space(cfg_.state_dir, ec);
    return {{"tenants", records_.size()},
            {"tenants_active", running},
            {"memory_committed", mem},
            {"memory_total", static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE))},
            {"cpu_committed", cpu},
            {"cpus", ::sysconf(_SC_NPROCESSORS_ONLN)},
            {"disk_committed", disk},
            {"loop_dir_available", ec ? 0 : space.available},
            {"ports_free", (cfg_.public_ports.second - cfg_.public_ports.first + 1) - records_.size()}};
}

}  // namespace hostd

// The Manager owns the tenants: their records (in memory and on disk), the per-tenant
// operation locks, port allocation and the provisioning plans. Effects are injected.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "hostd/config.h"
#include "hostd/effects.h"
#include "hostd/opstats.h"
#include "hostd/guard.h"
#include "hostd/tenant.h"
#include "pgconf/settings.h"

namespace hostd {

class Manager {
public:
    Manager(Config cfg, std::unique_ptr<Effects> fx);

    // Reads every record under <state_dir>/tenants.
    void load();
    // At start-up: load, then reconcile (failures are logged and reported per tenant, not
    // fatal: the API must come up to let an operator see and fix things).
    void start();

    // Finishes or rolls back operations cut off by a crash, brings every ready tenant up
    // (mounted by UUID, user, unit, route), removes what no tenant owns. Idempotent.
    nlohmann::json reconcile();

    // PUT /v1/tenants/{name}: provisions a tenant end to end; on failure undoes every step
    // taken and throws. Returns the tenant with its password.
    // Told after each create step with its duration (streaming replies); optional.
    using Progress = std::function<void(std::string_view step, long ms)>;
    nlohmann::json create(const std::string& name, const nlohmann::json& body, const Progress& progress = {});
    // DELETE: tears down route, unit, mount, loop device, user; purge also destroys the data.
    nlohmann::json remove(const std::string& name, bool purge);
    nlohmann::json get(const std::string& name);
    // PATCH: memory, cpu, tasks, io_weight changed on the running unit without a restart;
    // the reply lists PostgreSQL settings that wait for a restart.
    nlohmann::json set_limits(const std::string& name, const nlohmann::json& body);
    // POST /v1/tenants/{name}/resize: grows the disk and its filesystem online; shrinking is refused.
    nlohmann::json resize(const std::string& name, const nlohmann::json& body);
    // One round of the disk-full guard over every ready tenant not busy with an operation:
    // read-only (and the reserve released) when the disk is nearly full, back when it is not.
    void guard_tick();
    nlohmann::json list();
    nlohmann::json host();
    std::string ca_certificate();

    const Config& config() const { return cfg_; }
    // A copy of every tenant record (for collectors such as /metrics; no I/O, no waiting on
    // operations in progress).
    std::vector<TenantRecord> snapshot() const;
    OpStats op_stats() const;

private:
    class OpLock;  // marks a tenant busy for the length of one operation
    TenantRecord record_of(const std::string& name) const;  // copy, or Errc::not_found
    void save(const TenantRecord& t);
    void forget(const std::string& name);
    void set_step(TenantRecord& t, const std::string& step);
    uint16_t allocate_port(PortRange range, uint16_t preferred, const std::set<uint16_t>& taken);
    std::set<uint16_t> ports_in_use() const;  // needs mu_
    void apply_routes(bool force_reload = false);  // from every routed tenant
    void teardown(TenantRecord& t, bool purge);
    void record_op(const char* kind, bool ok, long ms);
    void finish_detach(TenantRecord& t);
    void converge(TenantRecord t, nlohmann::json& actions);
    // The device for a create: the one named, checked and not another tenant's; or the first
    // usable one of the pool. Reserved in records_ under mu_ before it returns.
    storage::DeviceCheck claim_device(const std::string& name, const std::string& requested, bool force);
    void guard_check(const std::string& name);  // the caller holds the tenant's OpLock, or guarding_

    Config cfg_;
    std::unique_ptr<Effects> fx_;
    mutable std::mutex mu_;                    // guards records_, busy_, routed_
    std::map<std::string, TenantRecord> records_;
    std::set<std::string> busy_;
    std::set<std::string> guarding_;           // tenants the disk-full guard is looking at
    std::condition_variable guard_cv_;         // an operation waits for the guard, never fails on it
    std::set<std::string> routed_;
    OpStats stats_;
    std::map<std::string, std::string> problems_;  // why a ready tenant is not running
    std::mutex reconcile_mu_;
    pgconf::SettingsCatalog catalog_;
    std::mutex routes_mu_;                     // one route table change at a time
};

}  // namespace hostd

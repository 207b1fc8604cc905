// The reconciler: brings the machine to what the records say. At start-up and on request:
// finishes or rolls back operations a crash cut off, brings every ready tenant up (disk,
// mount by UUID, user, unit, route), and removes what hostd made that no tenant owns.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>

#include "hostd/disks.h"
#include "hostd/effects.h"
#include "hostd/provisioner.h"
#include "hostd/store.h"
#include "model/config.h"
#include "model/views.h"

namespace hostd {

class Reconciler {
public:
    Reconciler(const Config& cfg, Effects& fx, Store& store, Disks& disks, Provisioner& prov)
        : cfg_(cfg), fx_(fx), store_(store), disks_(disks), prov_(prov) {}
    // Idempotent; one at a time. Failures are reported per tenant, never thrown. leave: HA
    // tenants whose cut-off operation across the hosts is not finished yet (Manager::ha_recover):
    // left as they are, and reported.
    ReconcileReport run(const std::set<std::string>& leave = {});

private:
    // One tenant, from its current record; needs the tenant's OpLock. units: every tenant
    // unit's state before the run (absent: not loaded); unit_error: why it is unknown.
    void converge(TenantRecord t, const std::map<std::string, LiveStatus>& units, const std::string& unit_error,
                  ReconcileReport& report);
    void sweep_orphans(ReconcileReport& report);

    const Config& cfg_;
    Effects& fx_;
    Store& store_;
    Disks& disks_;
    Provisioner& prov_;
    std::mutex one_;
};

}  // namespace hostd

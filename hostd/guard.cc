#include "hostd/guard.h"

#include "base/error.h"
#include "base/size.h"
#include "hostd/log.h"
#include "model/layout.h"

namespace hostd {

void Guard::tick() {
    if (cfg_.guard_interval <= 0) return;
    for (auto& t : store_.snapshot()) {
        // A stopped or hibernated tenant has no PostgreSQL to fill its disk: no statvfs every
        // round for it (2,000 hibernated tenants would make 4,000 a second at the default 0.5 s).
        // It is checked again from the first round after its start or wake.
        if (t.state != TenantState::ready || t.stopped || t.hibernated || !store_.try_guard(t.name)) continue;
        try {
            check(t.name);
        } catch (const Error& e) {
            if (e.code() != Errc::not_found) log::warning(std::string("Disk-full guard: ") + e.what(), t.name);
        }
        store_.release_guard(t.name);
    }
}

void Guard::check(const std::string& name) {
    TenantRecord t = store_.get(name);  // the current record: an operation may have just changed it
    if (t.state != TenantState::ready) return;
    const TenantLayout l = layout_of(cfg_, t);
    auto d = fx_.disk_usage(l);
    if (!d || d->bytes_total == 0) return;
    const uint64_t reserve = reserve_bytes(cfg_, d->bytes_total);
    switch (guard_decide(*d, t.read_only, reserve, cfg_)) {
    case GuardAction::engage: {
        const uint64_t freed = fx_.release_reserve(l);
        fx_.set_read_only(t, l, true);
        t.read_only = true;
        store_.save(t);
        log::warning("Disk nearly full (" + format_size(d->bytes_available) + " of " + format_size(d->bytes_total) +
                         " available): the tenant is read-only until space is freed or the disk is grown (hostctl resize); "
                         "released its " + format_size(freed) + " reserve",
                     name);
        break;
    }
    case GuardAction::release:
        fx_.ensure_reserve(l, reserve);
        fx_.set_read_only(t, l, false);
        t.read_only = false;
        store_.save(t);
        log::info("Disk has room again (" + format_size(d->bytes_available) + " available): the tenant is read-write", name);
        break;
    case GuardAction::none:
        break;
    }
}

}  // namespace hostd

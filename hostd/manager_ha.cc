// The Manager's part of an HA tenant (#17): the create coordinated from the host asked, across
// the member hosts over the peer API (hostd/peers.h), the delete of every member, and the peer
// API's side on the replicas' hosts. Each host makes its own member (hostd/provisioner_ha.cc).
#include <algorithm>
#include <chrono>

#include "base/error.h"
#include "hostd/log.h"
#include "hostd/manager.h"
#include "model/kept.h"
#include "model/layout.h"
#include "pgconf/pgconf.h"

namespace hostd {
namespace {

// Patroni's unit and its PostgreSQL: about 66 MB before the tenant's own work (measured in
// tests/e2e/ha): less than this leaves too little for shared_buffers and backends.
constexpr uint64_t kMinHaMemory = 128ull << 20;

std::string random_id() {
    // 24 hex characters from the same source as passwords (pgconf::random_password is [A-Za-z0-9]).
    std::string p = pgconf::random_password();
    return p.substr(0, std::min<size_t>(24, p.size()));
}

long ms_since(std::chrono::steady_clock::time_point t0) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace

void Manager::need_ha(const char* what) const {
    if (!peers_ || self_.empty())
        throw Error(Errc::invalid, std::string(what) + " needs an HA host: the [ha] section in hostd.toml (address, hosts) "
                                                       "on every member host, and hostd restarted",
                    "ha");
}

Created Manager::create_ha(const std::string& name, const CreateRequest& req, const TenantSpec& spec, const Progress& progress) {
    need_ha("An HA tenant");
    const HaRequest& want = *req.ha;
    for (const auto& r : want.replicas)
        if (r == self_)
            throw Error(Errc::invalid, "'" + r + "' is this host: its member is the first one; name the replicas' other hosts",
                        "ha.replicas");
    if (spec.memory < kMinHaMemory)
        throw Error(Errc::invalid, "An HA member needs at least 128M of memory (Patroni and its PostgreSQL take about 66 MB "
                                   "before the tenant's work)",
                    "memory");
    if (fx_->ha_scope_in_use(name))
        throw Error(Errc::conflict, "etcd holds live members of a Patroni scope '" + name + "': another HA tenant of that name "
                                    "runs in this fleet (or one whose delete did not finish); pick another name",
                    "name");
    const auto t0 = std::chrono::steady_clock::now();
    HaSpec ha{.create_id = random_id(), .initiator = self_, .synchronous = want.synchronous, .strict = want.strict,
              .secrets = {.patroni = pgconf::random_password(), .replication = pgconf::random_password(),
                          .rewind = pgconf::random_password(), .rest_password = pgconf::random_password()}};
    const std::string password = pgconf::random_password();
    CreateRequest plain = req;
    plain.ha.reset();
    auto step = [&](const std::string& s, auto&& fn) {
        if (progress) progress(s, -1);
        const auto s0 = std::chrono::steady_clock::now();
        fn();
        log::info("Step '" + s + "' done in " + std::to_string(ms_since(s0)) + " ms", name);
        if (progress) progress(s, ms_since(s0));
    };
    // What a failed or cut-off create left in etcd (its scope's initialize key) would make this
    // create's first member wait for a leader that never comes.
    fx_->forget_ha_scope(name);
    fx_->grant_ha_scope(name);  // its members' Patroni reach their scope, and nothing else
    log::info("Creating HA tenant with replicas on " + [&] {
        std::string s;
        for (const auto& r : want.replicas) s += (s.empty() ? "" : ", ") + r;
        return s;
    }() + (want.synchronous ? " (synchronous)" : "") + ", create " + ha.create_id, name);
    ha.members = {prov_.prepare_member(name, plain, spec, ha, password, self_, progress)};
    std::vector<std::string> touched;  // replica hosts asked to prepare: each gets an abort on failure
    try {
        for (const auto& host : want.replicas) {
            step("prepare " + host, [&] {
                touched.push_back(host);  // before the call: one whose answer is lost still gets its abort
                HaSpec bare = ha;
                bare.members.clear();
                ha.members.push_back(peers_->prepare(host, name, {.ha = bare, .password = password, .request = plain}));
            });
        }
        prov_.start_member(name, ha, self_, /*bootstrap=*/true, progress);
        for (const auto& host : want.replicas) step("start " + host, [&] { peers_->start(host, name, ha); });
    } catch (const Error& e) {
        log::error(std::string("HA create failed: ") + e.what() + "; undoing every member", name);
        for (const auto& host : touched) {
            try {
                peers_->abort(host, name, ha.create_id);
            } catch (const Error& a) {
                log::error("Undoing the member on '" + host + "' failed: " + a.what() + "; its hostd undoes it at its next "
                                                                                        "start (a member left creating)",
                           name);
            }
        }
        prov_.abort_member(name, ha.create_id);
        try {
            fx_->forget_ha_scope(name);
        } catch (const Error& f) {
            log::warning(std::string("The scope's keys stay in etcd: ") + f.what(), name);
        }
        throw Error(e.code(), std::string(e.what()).starts_with("Failed to") ? e.what()
                                                                             : "Failed to create HA tenant '" + name + "': " + e.what(),
                    e.field());
    }
    const TenantRecord t = store_.get(name);
    log::info("HA tenant ready with " + std::to_string(t.ha->members.size()) + " members in " + std::to_string(ms_since(t0)) + " ms",
              name);
    return {.tenant = view_of(cfg_, t, true), .ms = ms_since(t0)};
}

Deleted Manager::remove_ha(const TenantRecord& t, bool purge) {
    need_ha("Deleting an HA tenant");
    if (!purge)
        throw Error(Errc::invalid, "An HA tenant is deleted with its data on every member (purge): its members' disks are "
                                   "copies of one cluster that no single host can bring back alone",
                    "purge");
    for (const auto& m : t.ha->members)
        if (m.host != self_) peers_->remove(m.host, t.name, purge);  // 404 there: already gone
    Deleted d = prov_.remove(t.name, purge);
    try {
        fx_->forget_ha_scope(t.name);
    } catch (const Error& e) {
        log::warning(std::string("The scope's keys stay in etcd (a create of the name removes them): ") + e.what(), t.name);
    }
    return d;
}

std::optional<PeerMember> Manager::ha_member(const std::string& tenant) {
    validate_name(tenant);
    TenantRecord t;
    try {
        t = store_.get(tenant);  // one record, not a copy of every one
    } catch (const Error& e) {
        if (e.code() == Errc::not_found) return std::nullopt;
        throw;
    }
    if (!t.ha) return std::nullopt;
    return PeerMember{.record_state = std::string(to_string(t.state)), .create_id = t.ha->create_id};
}

HaMember Manager::ha_prepare(const std::string& tenant, const HaPrepare& p) {
    need_ha("An HA member");
    validate_name(tenant);
    if (p.request.reuse || p.request.from || p.request.device)
        throw Error(Errc::invalid, "An HA member is made new, on a disk of this host's own", "request");
    TenantSpec spec = resolve_spec(p.request, cfg_);
    spec.settings = pgconf::validate_overrides(catalog_, spec.settings);
    if (spec.memory < kMinHaMemory)
        throw Error(Errc::invalid, "An HA member needs at least 128M of memory", "memory");
    Store::OpLock op(store_, tenant);
    return prov_.prepare_member(tenant, p.request, spec, p.ha, p.password, self_);
}

void Manager::ha_start(const std::string& tenant, const HaSpec& ha) {
    need_ha("An HA member");
    validate_name(tenant);
    Store::OpLock op(store_, tenant);
    prov_.start_member(tenant, ha, self_, /*bootstrap=*/false);
}

void Manager::ha_abort(const std::string& tenant, const std::string& create_id) {
    validate_name(tenant);
    Store::OpLock op(store_, tenant);
    prov_.abort_member(tenant, create_id);
}

void Manager::ha_remove(const std::string& tenant, bool purge) {
    validate_name(tenant);
    Store::OpLock op(store_, tenant);
    const TenantRecord t = store_.get(tenant);  // Errc::not_found: 404, nothing to do
    if (!t.ha) throw Error(Errc::conflict, "Tenant '" + tenant + "' on host '" + self_ + "' is not an HA member");
    prov_.remove(tenant, purge);
}

std::vector<std::string> Manager::ha_expire_prepared(std::time_t now) {
    std::vector<std::string> undone;
    for (const auto& t : store_.snapshot()) {
        if (!t.ha || t.state != TenantState::creating || t.step != "prepared") continue;
        const std::time_t at = parse_rfc3339(t.created_at);
        if (at == 0 || now - at <= static_cast<std::time_t>(cfg_.ha_prepare_timeout)) continue;
        try {
            Store::OpLock op(store_, t.name);  // a create or start under way holds it: left alone
            const TenantRecord again = store_.get(t.name);
            if (again.state != TenantState::creating || again.step != "prepared" || !again.ha) continue;
            log::warning("The HA member prepared for create " + again.ha->create_id + " of host '" + again.ha->initiator +
                             "' got no start within [ha] prepare_timeout (" + std::to_string(cfg_.ha_prepare_timeout) +
                             " s): undoing it",
                         t.name);
            prov_.abort_member(t.name, again.ha->create_id);
            undone.push_back(t.name);
        } catch (const Error& e) {
            if (e.code() != Errc::conflict)
                log::error(std::string("Undoing an expired HA member failed: ") + e.what() + "; retried on the next round", t.name);
        }
    }
    return undone;
}

}  // namespace hostd

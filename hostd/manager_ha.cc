// The Manager's part of an HA tenant (#17): the create coordinated from the host asked, across
// the member hosts over the peer API (hostd/peers.h), the delete of every member, and the peer
// API's side on the replicas' hosts. Each host makes its own member (hostd/provisioner_ha.cc).
#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "base/error.h"
#include "hostd/faults.h"
#include "hostd/log.h"
#include "hostd/manager.h"
#include "model/kept.h"
#include "model/layout.h"
#include "model/patroni.h"
#include "pgconf/pgconf.h"
#include "pgconf/settings.h"

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

// A coordinated step (a call to one host, "prepare db2"): told to progress as it starts and
// ends, its time logged; op ("create", "replace", "delete") names its crash points
// ("create:before:prepare db2", hostd/faults.h).
auto coordinated_steps(const char* op, const std::string& tenant, const Manager::Progress& progress) {
    return [op, &tenant, &progress](const std::string& s, auto&& fn) {
        if (progress) progress(s, -1);
        crash_point(op, "before", s);
        const auto s0 = std::chrono::steady_clock::now();
        fn();
        crash_point(op, "after", s);
        log::info("Step '" + s + "' done in " + std::to_string(ms_since(s0)) + " ms", tenant);
        if (progress) progress(s, ms_since(s0));
    };
}

// "db1, db2": host names for a message.
std::string joined(const std::vector<std::string>& hosts) {
    std::string s;
    for (const auto& h : hosts) s += (s.empty() ? "" : ", ") + h;
    return s;
}
std::string member_hosts(const HaSpec& ha) {
    std::vector<std::string> hosts;
    for (const auto& m : ha.members) hosts.push_back(m.host);
    return joined(hosts);
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
    check_ha_settings(spec.settings);
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
    auto step = coordinated_steps("create", name, progress);
    // What a failed or cut-off create left in etcd (its scope's initialize key) would make this
    // create's first member wait for a leader that never comes.
    fx_->forget_ha_scope(name);
    fx_->grant_ha_scope(name);  // its members' Patroni reach their scope, and nothing else
    log::info("Creating HA tenant with replicas on " + joined(want.replicas) + (want.synchronous ? " (synchronous)" : "") + ", create " + ha.create_id, name);
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
        // Only now is the create done: until this record says ready, a restart of this hostd
        // undoes the create on every host (ha_recover).
        TenantRecord done = store_.get(name);
        done.state = TenantState::ready;
        done.step.clear();
        store_.save(done);
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
    // Every other member's host must answer before any member goes: one that cannot be reached
    // would keep its member running alone, and a delete stopped half-way leaves a tenant that
    // no host can delete whole.
    for (const auto& m : t.ha->members)
        if (m.host != self_) peers_->status(m.host, t.name);
    // Recorded before any member goes: this host deletes the whole tenant. A restart of this
    // hostd midway finishes it on every host (ha_recover); a retried delete goes on from here.
    TenantRecord d = store_.get(t.name);
    d.state = TenantState::deleting;
    d.purge = true;
    d.step = "members";
    for (auto& m : d.ha->members)
        if (m.host == self_) m.phase = MemberPhase::removing;
    store_.save(d);
    const Progress none;
    auto step = coordinated_steps("delete", t.name, none);
    for (const auto& m : t.ha->members)
        if (m.host != self_) step("remove " + m.host, [&] { peers_->remove(m.host, t.name, purge); });  // 404 there: already gone
    return finish_ha_delete(t.name);
}

Deleted Manager::finish_ha_delete(const std::string& name) {
    Deleted d = prov_.remove(name, /*purge=*/true);
    try {
        fx_->forget_ha_scope(name);
    } catch (const Error& e) {
        log::warning(std::string("The scope's keys stay in etcd (a create of the name removes them): ") + e.what(), name);
    }
    return d;
}

TenantView Manager::replace_member(const std::string& name, const ReplaceRequest& req, const Progress& progress) {
    validate_name(name);
    need_ha("Replacing an HA member");
    validate_host_name(req.member, "member");
    const std::string target = req.with.value_or(req.member);
    validate_host_name(target, "with");
    {
        Store::OpLock op(store_, name);
        const auto t0 = std::chrono::steady_clock::now();
        const TenantRecord t = store_.get(name);
        if (!t.ha)
            throw Error(Errc::conflict, "Tenant '" + name + "' is not an HA tenant: it has no members to replace");
        if (t.state != TenantState::ready)
            throw Error(Errc::conflict, "Tenant '" + name + "' is " + std::string(to_string(t.state)) + ", not ready");
        const std::string hosts = member_hosts(*t.ha);
        if (!t.ha->member(req.member))
            throw Error(Errc::not_found, "'" + req.member + "' holds no member of tenant '" + name + "' (its members: " + hosts + ")",
                        "member");
        if (req.member == self_)
            throw Error(Errc::invalid, "'" + req.member + "' is this host: a member is replaced by another member's host (run "
                                       "hostctl replace there), which stays up while this one is rebuilt",
                        "member");
        // A target that is a member already, unknown to the member replaced: a replace of
        // req.member by it that was cut off (this host's hostd restarted) and is asked again.
        // Its member ready: the replace goes on from the old member's removal. Not ready (only
        // prepared, or its start cut off): undone there, and the replace made afresh. A target
        // the old member lists (or an old member that cannot be asked) is a member of its own.
        bool resume = false, undo_target = false;
        HaSpec current = *t.ha;
        if (target != req.member && t.ha->member(target)) {
            const std::string taken = "'" + target + "' holds a member of tenant '" + name + "' already (its members: " + hosts + ")";
            auto lists = [&](const std::optional<PeerMember>& p, const std::string& host) {
                return p && p->create_id == t.ha->create_id && std::find(p->hosts.begin(), p->hosts.end(), host) != p->hosts.end();
            };
            std::optional<PeerMember> old, there;
            try {
                old = peers_->status(req.member, name);
                if (!lists(old, target)) there = peers_->status(target, name);
            } catch (const Error& e) {
                throw Error(Errc::conflict, taken + ", and whether a replace by it was cut off cannot be told: " + e.what(),
                            "with");
            }
            const bool ours = there && there->create_id == t.ha->create_id;
            if (lists(old, target)) {
                throw Error(Errc::conflict, taken, "with");
            } else if (ours && there->record_state == "ready") {
                resume = true;
            } else if (!there || (ours && there->record_state == "creating")) {
                undo_target = there.has_value();  // once every check below has passed
                std::erase_if(current.members, [&](const HaMember& m) { return m.host == target; });
            } else {
                throw Error(Errc::conflict, taken, "with");
            }
        }
        const auto fleet = ha_fleet(cfg_);
        if (std::none_of(fleet.begin(), fleet.end(), [&](const HaHost& h) { return h.name == target; }))
            throw Error(Errc::invalid, "'" + target + "' is not one of this host's [ha] hosts; a member goes on one of them", "with");
        // The new member is cloned from the primary, which stays where it is.
        std::string why;
        const auto asked = ask_cluster(*t.ha, why);
        if (!asked)
            throw Error(Errc::unavailable, "Cannot replace a member of '" + name + "': no member's Patroni answered (" + why +
                                               "); nothing was changed");
        const ha::MemberStatus* primary = asked->view.primary();
        if (!primary)
            throw Error(Errc::conflict, "Patroni reports no primary for '" + name + "': a new member would have none to clone "
                                        "from; nothing was changed");
        if (primary->name == req.member)
            throw Error(Errc::conflict, "'" + req.member + "' is the primary of '" + name + "': switch over first (hostctl " +
                                            "switchover " + name + "), then replace it; nothing was changed",
                        "member");
        auto step = coordinated_steps("replace", name, progress);
        log::info("Replacing the member on '" + req.member + "' with one on '" + target + "' (primary: " + primary->name + ")",
                  name);
        // A move adds the new member before the old one goes (the tenant never has fewer members
        // than it had); a rebuild on the same host must remove it first (one member a host).
        const bool rebuild = target == req.member;
        HaSpec left = current;  // the members without the one replaced (nor a cut-off new one)
        std::erase_if(left.members, [&](const HaMember& m) { return m.host == req.member; });
        auto remove_old = [&] {
            step("remove " + req.member, [&] {
                try {
                    peers_->remove(req.member, name, /*purge=*/true);
                } catch (const Error& e) {
                    // A lost host is what a replace is for; one rebuilt in place must answer.
                    if (e.code() != Errc::unavailable || rebuild) throw;
                    log::warning("'" + req.member + "' cannot be reached (" + e.what() + "): its member stays there until "
                                 "its hostd, back, sees it replaced and deletes it",
                                 name);
                }
            });
        };
        // Each member left learns the members (its pg_hba, certificate and routes).
        auto tell = [&](const HaSpec& ha) {
            for (const auto& m : left.members) {
                if (m.host == target) continue;  // a cut-off replace's new member: told last
                step("update " + m.host, [&] {
                    if (m.host == self_) prov_.update_member(name, ha, self_);
                    else peers_->update(m.host, name, ha);
                });
            }
        };
        if (undo_target) step("abort " + target, [&] { peers_->abort(target, name, t.ha->create_id); });
        if (rebuild) remove_old();
        HaSpec during = rebuild ? left : (resume ? *t.ha : current);
        if (resume) log::info("'" + target + "' runs its new member already (a replace cut off): going on from the removal of the "
                              "old one", name);
        bool prepared = false;
        if (!resume) {
            try {
                step("prepare " + target, [&] {
                    HaSpec bare = left;
                    bare.members.clear();
                    bare.initiator = self_;  // this host coordinates the new member's making, not its create
                    prepared = true;  // before the call: one whose answer is lost still gets its abort
                    during.members.push_back(peers_->prepare(target, name, {.ha = bare, .password = t.password,
                                                                             .request = request_of(t.spec)}));
                });
                // The others first: their pg_hba must let the new member stream before it starts.
                tell(during);
                step("start " + target, [&] { peers_->start(target, name, during); });
            } catch (const Error& e) {
                log::error(std::string("Replacing the member failed: ") + e.what() + "; undoing the new member", name);
                if (prepared) {
                    try {
                        peers_->abort(target, name, left.create_id);
                    } catch (const Error& a) {
                        log::error("Undoing the member on '" + target + "' failed: " + a.what() + "; its hostd undoes it after [ha] "
                                                                                                 "prepare_timeout",
                                   name);
                    }
                }
                const HaSpec& before = rebuild ? left : current;
                try {
                    tell(before);
                } catch (const Error& u) {
                    log::error(std::string("Telling the members left failed: ") + u.what(), name);
                }
                const std::string now = member_hosts(before);
                throw Error(e.code(), "Failed to replace the member of '" + name + "' on '" + req.member + "' with one on '" + target +
                                          "': " + e.what() + "; the tenant runs on with the members on " + now +
                                          " (run the replace again once the cause is fixed)",
                            e.field());
            }
        }
        if (!rebuild) {
            remove_old();
            std::erase_if(during.members, [&](const HaMember& m) { return m.host == req.member; });
            tell(during);
            // The new member's own record still lists the old one; it learns the members too.
            step("update " + target, [&] { peers_->update(target, name, during); });
        }
        log::info("Member replaced in " + std::to_string(ms_since(t0)) + " ms", name);
    }
    return get(name);
}

TenantView Manager::set_ha_password(const TenantRecord& rec, const PasswordRequest& req) {
    need_ha("An HA tenant's password");
    const std::string& name = rec.name;
    if (rec.state != TenantState::ready)
        throw Error(Errc::conflict, "Tenant '" + name + "' is " + std::string(to_string(rec.state)) +
                                        "; only a ready tenant's password can be changed");
    std::string why;
    const auto asked = ask_cluster(*rec.ha, why);
    if (!asked)
        throw Error(Errc::unavailable, "Cannot change the password of '" + name + "': no member's Patroni answered (" + why +
                                           "); nothing was changed");
    const ha::MemberStatus* p = asked->view.primary();
    const HaMember* primary = p ? rec.ha->member(p->name) : nullptr;
    if (!primary)
        throw Error(Errc::unavailable, "Patroni reports no primary for '" + name + "' (a failover under way?): the password "
                                       "is changed on the primary; nothing was changed, try again in a few seconds");
    const std::string password = req.password ? *req.password : pgconf::random_password();
    // Recorded before PostgreSQL is told, as a single-host tenant's (Provisioner::set_password).
    TenantRecord t = rec;
    t.password_pending = password;
    store_.save(t);
    try {
        fx_->set_ha_password(t, *primary, password);
    } catch (const Error& e) {
        throw Error(e.code(), "Failed to change the password of tenant '" + name + "' on its primary '" + primary->host +
                                  "': " + e.what());
    }
    t.password = password;
    t.password_pending.clear();
    store_.save(t);
    std::vector<std::string> missed;
    for (const auto& m : t.ha->members) {
        if (m.host == self_) continue;
        try {
            peers_->password(m.host, name, password);
        } catch (const Error& e) {
            log::warning("'" + m.host + "' did not record the new password: " + e.what(), name);
            missed.push_back(m.host);
        }
    }
    log::info("Admin password changed on the primary '" + primary->host + "'", name);
    if (!missed.empty()) {
        throw Error(Errc::unavailable, "The password of '" + name + "' is changed (on the primary '" + primary->host +
                                           "', and recorded here), but " + joined(missed) + " could not record it: the URL "
                                           "shown there has the old one. Once it answers, run hostctl passwd " + name +
                                           " --stdin here again, given the password hostctl show prints here");
    }
    return view_of(cfg_, t, true);
}

LimitsChanged Manager::set_ha_limits(const TenantRecord& rec, const LimitsUpdate& u) {
    need_ha("An HA tenant's limits");
    const std::string& name = rec.name;
    if (rec.state != TenantState::ready)
        throw Error(Errc::conflict, "Tenant '" + name + "' is " + std::string(to_string(rec.state)) +
                                        "; limits change only on a ready tenant");
    TenantRecord want = rec;
    want.spec = prov_.updated_spec(rec.spec, u);
    check_ha_settings(want.spec.settings);
    if (want.spec.memory < kMinHaMemory)
        throw Error(Errc::invalid, "An HA member needs at least 128M of memory (Patroni and its PostgreSQL take about 66 MB "
                                   "before the tenant's work)",
                    "memory");
    // Every other member host answers first: a change that reached some of them only would
    // leave members whose limits and settings disagree.
    std::vector<std::string> down;
    for (const auto& m : rec.ha->members) {
        const std::string& host = m.host;
        if (host == self_) continue;
        try {
            peers_->status(host, name);
        } catch (const Error& e) {
            log::warning("'" + host + "' does not answer: " + e.what(), name);
            down.push_back(host);
        }
    }
    if (!down.empty())
        throw Error(Errc::unavailable, "Cannot change the limits of '" + name + "': " + joined(down) +
                                           " did not answer; nothing was changed. Try again once every member host answers");
    // The scope's shared settings (max_connections and the like: every member runs the same)
    // are Patroni's configuration in etcd, written through any member's Patroni.
    const auto before_p = scope_parameters(rec), after_p = scope_parameters(want);
    std::map<std::string, std::string> shared;
    for (const auto& [k, v] : after_p)
        if (before_p.count(k) == 0 || before_p.at(k) != v) shared[k] = v;
    if (!shared.empty()) {
        std::string why;
        bool done = false;
        for (const auto& m : rec.ha->members) {
            try {
                fx_->patroni_patch_parameters(m, {.username = "hostd", .password = rec.ha->secrets.rest_password}, shared);
                done = true;
                break;
            } catch (const Error& e) {
                why += (why.empty() ? "" : "; ") + std::string(e.what());
            }
        }
        if (!done)
            throw Error(Errc::unavailable, "Cannot change the settings every member of '" + name + "' shares: " + why +
                                               "; nothing was changed");
    }
    const TenantRecord t = prov_.set_member_limits(name, rec.ha->create_id, self_, want.spec);
    const LimitsUpdate full{.memory = want.spec.memory, .cpu = want.spec.cpu, .tasks = want.spec.tasks,
                            .io_weight = want.spec.io_weight, .settings = want.spec.settings,
                            .extensions = want.spec.extensions};
    std::vector<std::string> missed;
    for (const auto& m : rec.ha->members) {
        const std::string& host = m.host;
        if (host == self_) continue;
        try {
            peers_->limits(host, name, rec.ha->create_id, full);
        } catch (const Error& e) {
            log::warning("'" + host + "' did not take the new limits: " + e.what(), name);
            missed.push_back(host);
        }
    }
    if (!missed.empty())
        throw Error(Errc::unavailable, "The limits of '" + name + "' changed here, but " + joined(missed) +
                                           " did not take them; run the same command again once it answers");
    // What waits for a restart, by the catalog: a member reloads through Patroni, which applies
    // the scope's settings at its next loop, so PostgreSQL cannot be asked at once.
    std::vector<std::string> pending = pgconf::settings_needing_restart(catalog_, rec.spec.settings, want.spec.settings);
    for (auto& k : pgconf::settings_needing_restart(catalog_, before_p, after_p))
        if (std::find(pending.begin(), pending.end(), k) == pending.end()) pending.push_back(k);
    if (pgconf::preload_libraries(rec.spec.extensions) != pgconf::preload_libraries(want.spec.extensions) &&
        std::find(pending.begin(), pending.end(), "shared_preload_libraries") == pending.end())
        pending.push_back("shared_preload_libraries");
    std::sort(pending.begin(), pending.end());
    log::info("Limits and settings changed on every member", name);
    return {.tenant = view_of(cfg_, t, false), .pending_restart = pending};
}

void Manager::ha_limits(const std::string& tenant, const std::string& create_id, const LimitsUpdate& full) {
    need_ha("An HA member");
    validate_name(tenant);
    LimitsUpdate checked = full;
    if (checked.settings) {
        checked.settings = pgconf::validate_overrides(catalog_, *checked.settings);
        check_ha_settings(*checked.settings);
    }
    Store::OpLock op(store_, tenant);
    const TenantRecord t = store_.get(tenant);
    if (!t.ha) throw Error(Errc::conflict, "Tenant '" + tenant + "' on host '" + self_ + "' is not an HA member");
    prov_.set_member_limits(tenant, create_id, self_, prov_.updated_spec(t.spec, checked));
}

void Manager::ha_password(const std::string& tenant, const std::string& password) {
    need_ha("An HA member");
    validate_name(tenant);
    validate_password(password);
    Store::OpLock op(store_, tenant);
    TenantRecord t = store_.get(tenant);
    if (!t.ha) throw Error(Errc::conflict, "Tenant '" + tenant + "' on host '" + self_ + "' is not an HA member");
    t.password = password;
    t.password_pending.clear();
    store_.save(t);
    log::info("Admin password recorded (changed on the primary by another member's host)", tenant);
}

void Manager::ha_update(const std::string& tenant, const HaSpec& ha) {
    need_ha("An HA member");
    validate_name(tenant);
    Store::OpLock op(store_, tenant);
    prov_.update_member(tenant, ha, self_);
}

std::vector<std::string> Manager::ha_fence_replaced() {
    std::vector<std::string> removed;
    if (!peers_) return removed;
    for (const auto& t : store_.snapshot()) {
        if (!t.ha || t.state != TenantState::ready) continue;
        for (const auto& m : t.ha->members) {
            if (m.host == self_) continue;
            std::optional<PeerMember> there;
            try {
                there = peers_->status(m.host, t.name);
            } catch (const Error&) {
                continue;  // not reachable: no word either way
            }
            // Only a member of the same create speaks for the tenant; one that lists this host
            // (or has none of it: a delete under way) says nothing against it. Nor does one whose
            // list is older than this host's: a member that lists no host this one does not know
            // (the old member of a move cut off before its removal, never told of the new one,
            // which this host may be). A replacement is news: the member that replaced this one.
            const auto knows = [&](const std::string& h) { return t.ha->member(h) != nullptr; };
            if (!there || there->create_id != t.ha->create_id || there->record_state != "ready" ||
                std::find(there->hosts.begin(), there->hosts.end(), self_) != there->hosts.end() ||
                std::all_of(there->hosts.begin(), there->hosts.end(), knows))
                continue;
            try {
                Store::OpLock op(store_, t.name);
                log::warning("'" + m.host + "' lists the members of create " + t.ha->create_id + " without this host: this "
                             "member was replaced while this host could not be reached; deleting it with its data",
                             t.name);
                prov_.remove(t.name, /*purge=*/true);
                removed.push_back(t.name);
            } catch (const Error& e) {
                if (e.code() != Errc::conflict)
                    log::error(std::string("Deleting the replaced member failed: ") + e.what() + "; retried on the next round",
                               t.name);
            }
            break;
        }
    }
    return removed;
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
    PeerMember m{.record_state = std::string(to_string(t.state)), .create_id = t.ha->create_id};
    for (const auto& x : t.ha->members) m.hosts.push_back(x.host);
    return m;
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
    // A member of the same create still only prepared here: its coordinator was cut off (a
    // replace, whose new member is of the tenant's create) and asks again. Undone, made anew.
    try {
        const TenantRecord had = store_.get(tenant);
        if (had.ha && had.ha->create_id == p.ha.create_id && had.state == TenantState::creating && had.step == "prepared") {
            log::warning("A member of create " + had.ha->create_id + " prepared here earlier is asked for again by '" +
                             p.ha.initiator + "': undoing the earlier one",
                         tenant);
            prov_.abort_member(tenant, had.ha->create_id);
        }
    } catch (const Error& e) {
        if (e.code() != Errc::not_found) throw;
    }
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

namespace {

// What a restart found this host's record of an HA tenant in the middle of: a create it
// coordinated (its own member still `creating`: only the coordinator's record is, until every
// replica has started), or a delete of the whole tenant (its own member `removing`).
enum class CutOff { none, create, remove };
CutOff cut_off(const TenantRecord& t, const std::string& self) {
    if (!t.ha) return CutOff::none;
    if (t.state == TenantState::creating && t.ha->initiator == self) return CutOff::create;
    const HaMember* mine = t.ha->member(self);
    if (mine && mine->phase == MemberPhase::removing) return CutOff::remove;
    return CutOff::none;
}

}  // namespace

std::set<std::string> Manager::ha_recover(std::chrono::seconds patience) {
    std::set<std::string> left;
    if (!peers_ || self_.empty()) return left;
    const auto until = std::chrono::steady_clock::now() + patience;
    // One call to another host, again while that host is busy with the tenant (409: its own
    // step of the cut-off operation still runs) or cannot be reached (its hostd restarting).
    auto call = [&](const std::string& host, const std::string& name, auto&& fn) {
        for (;;) {
            try {
                fn();
                return true;
            } catch (const Error& e) {
                const bool again = e.code() == Errc::conflict || e.code() == Errc::unavailable;
                if (!again || std::chrono::steady_clock::now() >= until) {
                    log::error("HA recovery: '" + host + "' did not answer (" + e.what() + "); retried on the next round", name);
                    return false;
                }
            }
            std::this_thread::sleep_for(std::chrono::seconds(1));
        }
    };
    for (const auto& snap : store_.snapshot()) {
        if (cut_off(snap, self_) == CutOff::none) continue;
        try {
            Store::OpLock op(store_, snap.name);  // an operation under way holds it: not cut off
            const TenantRecord t = store_.get(snap.name);
            const CutOff what = cut_off(t, self_);
            bool all = true;
            if (what == CutOff::create) {
                // Which replicas were asked is not recorded: every other host of the fleet is
                // told to undo its member of this create (none there: nothing to do).
                log::warning("A create of this HA tenant (" + t.ha->create_id + ") was cut off at step '" + t.step +
                                 "': undoing its members on every host",
                             t.name);
                for (const auto& h : ha_fleet(cfg_))
                    if (h.name != self_)
                        all = call(h.name, t.name, [&] { peers_->abort(h.name, t.name, t.ha->create_id); }) && all;
                if (!all) {
                    left.insert(t.name);
                    continue;
                }
                prov_.abort_member(t.name, t.ha->create_id);
                try {
                    fx_->forget_ha_scope(t.name);
                } catch (const Error& e) {
                    log::warning(std::string("The scope's keys stay in etcd (a create of the name removes them): ") + e.what(),
                                 t.name);
                }
                log::info("The cut-off create is undone on every host", t.name);
            } else if (what == CutOff::remove) {
                log::warning("A delete of this HA tenant was cut off at step '" + t.step + "': finishing it on every host",
                             t.name);
                for (const auto& m : t.ha->members)
                    if (m.host != self_)
                        all = call(m.host, t.name, [&] { peers_->remove(m.host, t.name, /*purge=*/true); }) && all;
                if (!all) {
                    left.insert(t.name);
                    continue;
                }
                finish_ha_delete(t.name);
                log::info("The cut-off delete is finished on every host", t.name);
            }
        } catch (const Error& e) {
            if (e.code() == Errc::conflict) continue;  // under way: not cut off
            log::error(std::string("HA recovery failed: ") + e.what() + "; retried on the next round", snap.name);
            left.insert(snap.name);
        }
    }
    return left;
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

#include "hostd/portwatch.h"

#include <map>

#include "base/error.h"
#include "hostd/log.h"

namespace hostd {

namespace {

// Its PostgreSQL's port, its pgBackRest server's for a repository host (backup.repo_host), and
// for an HA member the ports its members have (Patroni's REST API, PostgreSQL on the hosts' net).
// self: this host's name among the HA hosts; an HA member's Patroni listens on its own REST
// port (the other members' ports are theirs, on their hosts).
bool own_port(const TenantRecord& t, uint16_t port, const std::string& self) {
    if (port == t.port || (t.backup_port && port == t.backup_port)) return true;
    if (t.ha)
        if (const HaMember* m = t.ha->member(self)) return port == m->rest_port;
    return false;
}

}  // namespace

std::vector<Squatter> find_squatters(const std::vector<TenantRecord>& tenants, const std::vector<units::Listener>& listeners,
                                     const std::string& self) {
    std::map<uid_t, const TenantRecord*> by_uid;
    for (auto& t : tenants)
        if (t.uid != 0 && t.state != TenantState::detached) by_uid[t.uid] = &t;
    std::vector<Squatter> out;
    for (auto& l : listeners) {
        auto it = by_uid.find(l.uid);
        if (it == by_uid.end() || own_port(*it->second, l.port, self)) continue;
        out.push_back({.tenant = it->second->name, .own_port = it->second->port, .listener = l});
    }
    return out;
}

std::vector<Squatter> PortWatch::tick() {
    auto squatters = find_squatters(store_.snapshot(), fx_.tcp_listeners(), self_);
    for (auto& s : squatters) {
        std::string killed;
        try {
            for (pid_t pid : fx_.kill_socket_holders(s.listener.uid, s.listener.inode))
                killed += (killed.empty() ? "" : ", ") + std::to_string(pid);
        } catch (const Error& e) {
            killed = std::string("none (") + e.what() + ")";
        }
        log::error("A process of the tenant listened on " + s.listener.address + ":" + std::to_string(s.listener.port) +
                       ", not on its own port " + std::to_string(s.own_port) + "; killed process " +
                       (killed.empty() ? "none found" : killed) + ". Tenants may listen on their own port only.",
                   s.tenant);
    }
    return squatters;
}

}  // namespace hostd

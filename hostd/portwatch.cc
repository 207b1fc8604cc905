#include "hostd/portwatch.h"

#include <map>

#include "base/error.h"
#include "hostd/log.h"

namespace hostd {

std::vector<Squatter> find_squatters(const std::vector<TenantRecord>& tenants, const std::vector<units::Listener>& listeners) {
    std::map<uid_t, const TenantRecord*> by_uid;
    for (auto& t : tenants)
        if (t.uid != 0 && t.state != TenantState::detached) by_uid[t.uid] = &t;
    std::vector<Squatter> out;
    for (auto& l : listeners) {
        auto it = by_uid.find(l.uid);
        // Its PostgreSQL's port, and its pgBackRest server's for a repository host (backup.repo_host).
        if (it == by_uid.end() || l.port == it->second->port || (it->second->backup_port && l.port == it->second->backup_port))
            continue;
        out.push_back({.tenant = it->second->name, .own_port = it->second->port, .listener = l});
    }
    return out;
}

std::vector<Squatter> PortWatch::tick() {
    auto squatters = find_squatters(store_.snapshot(), fx_.tcp_listeners());
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

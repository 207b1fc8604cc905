#include "model/hibernate.h"

#include <algorithm>
#include <set>

namespace hostd {

std::vector<std::string> due_for_hibernation(const std::vector<IdleFact>& facts, std::map<std::string, double>& last_busy,
                                             double now, double after) {
    std::vector<std::string> due;
    std::set<std::string> seen;
    for (const IdleFact& f : facts) {
        seen.insert(f.name);
        auto [it, fresh] = last_busy.try_emplace(f.name, now);
        if (fresh || !f.eligible || f.hibernated || f.connections > 0) {
            it->second = now;
            continue;
        }
        if (now - it->second >= after) due.push_back(f.name);
    }
    std::erase_if(last_busy, [&](const auto& e) { return !seen.count(e.first); });
    std::sort(due.begin(), due.end());
    return due;
}

std::map<uint16_t, uint32_t> count_by_port(const std::vector<uint16_t>& local_ports) {
    std::map<uint16_t, uint32_t> out;
    for (uint16_t p : local_ports) out[p]++;
    return out;
}

}  // namespace hostd

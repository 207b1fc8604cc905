#include "model/capacity.h"

#include <unistd.h>

#include <cmath>
#include <limits>

#include "base/error.h"
#include "base/size.h"
#include "base/strings.h"

namespace hostd {

uint64_t host_memory_bytes() {
    return static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

MemoryCommit memory_committed(const std::map<std::string, TenantRecord>& records, const std::string& except) {
    MemoryCommit c;
    for (const auto& [name, r] : records) {
        if (name == except || r.state == TenantState::detached) continue;
        c.committed += r.spec.memory;
        c.others++;
    }
    return c;
}

uint64_t memory_allowed(const Config& cfg, uint64_t host_total) {
    if (cfg.memory_overcommit <= 0) return std::numeric_limits<uint64_t>::max();
    const long double allowed = std::round(static_cast<long double>(host_total) * cfg.memory_overcommit);
    if (allowed >= static_cast<long double>(std::numeric_limits<uint64_t>::max())) return std::numeric_limits<uint64_t>::max();
    return static_cast<uint64_t>(allowed);
}

void check_memory_commit(const Config& cfg, uint64_t host_total, const MemoryCommit& c, uint64_t asked,
                         const std::string& field) {
    const uint64_t allowed = memory_allowed(cfg, host_total);
    if (allowed == std::numeric_limits<uint64_t>::max() || (c.committed <= allowed && asked <= allowed - c.committed)) return;
    const uint64_t free = allowed > c.committed ? allowed - c.committed : 0;
    throw Error(Errc::refused,
                "Not enough memory on this host for a tenant with " + format_size(asked) + ": " + format_size(free) +
                    " is free (the other " + std::to_string(c.others) + " tenants have " + format_size(c.committed) +
                    " of the " + format_size(allowed) + " limits.memory_overcommit = " + format_number(cfg.memory_overcommit) +
                    " lets them have of " + format_size(host_total) + "); ask for at most " + format_size(free) +
                    ", give other tenants less, or raise limits.memory_overcommit in hostd.toml",
                field);
}

}  // namespace hostd

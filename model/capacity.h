// What the host can still give: memory committed to tenants (their MemoryMax) against the
// host's physical memory times limits.memory_overcommit. Pure but for host_memory_bytes().
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "model/config.h"
#include "model/tenant.h"

namespace hostd {

// The host's physical memory (sysconf).
uint64_t host_memory_bytes();

struct MemoryCommit {
    uint64_t committed = 0;  // MemoryMax of every tenant but the one asking (detached ones hold none)
    uint64_t others = 0;     // how many tenants that is
};
MemoryCommit memory_committed(const std::map<std::string, TenantRecord>& records, const std::string& except);

// What limits.memory_overcommit lets tenants commit in all (0: no limit → UINT64_MAX).
uint64_t memory_allowed(const Config& cfg, uint64_t host_total);

// Errc::refused (field `field`) when `asked` more on top of `c` goes beyond memory_allowed, with
// what is free and what to do.
void check_memory_commit(const Config& cfg, uint64_t host_total, const MemoryCommit& c, uint64_t asked,
                         const std::string& field);

}  // namespace hostd

// The disk-full guard's decision, pure: from a tenant's disk usage and whether it is read-only
// now, what to do. The Manager carries it out (reserve file, read-only switch, journal).
#pragma once

#include <algorithm>
#include <cstdint>

#include "hostd/config.h"
#include "storage/storage.h"

namespace hostd {

enum class GuardAction { none, engage, release };

// The reserve: the configured size, at most a tenth of the disk.
inline uint64_t reserve_bytes(const Config& cfg, uint64_t disk_bytes) {
    return std::min<uint64_t>(cfg.guard_reserve, disk_bytes / 10);
}

// engage: read-write and less than readonly_below % available.
// release: read-only and, after the reserve is taken back, more than readwrite_above %
// available (the gap between the two keeps it from flapping).
inline GuardAction guard_decide(const storage::DiskStats& d, bool read_only, uint64_t reserve, const Config& cfg) {
    if (d.bytes_total == 0) return GuardAction::none;
    const double total = static_cast<double>(d.bytes_total);
    const double avail = static_cast<double>(d.bytes_available);
    if (!read_only) return avail * 100 < cfg.guard_readonly_below * total ? GuardAction::engage : GuardAction::none;
    const double after = avail - static_cast<double>(reserve);
    return after * 100 > cfg.guard_readwrite_above * total ? GuardAction::release : GuardAction::none;
}

}  // namespace hostd

// The disk-full guard: when a tenant's disk is nearly full, hostd makes it read-only and hands
// it the space of its reserve file, so PostgreSQL never PANICs on a WAL write that finds no
// room; back to read-write when there is room again. The decision is pure (guard_decide);
// the Guard carries it out (reserve file, read-only switch, journal).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "hostd/effects.h"
#include "hostd/store.h"
#include "model/config.h"
#include "storage/storage.h"

namespace hostd {

enum class GuardAction { none, engage, release };

// The reserve: the configured size, at most a tenth of the disk.
inline uint64_t reserve_bytes(const Config& cfg, uint64_t disk_bytes) {
    return std::min<uint64_t>(cfg.guard_reserve, disk_bytes / 10);
}

// PostgreSQL takes disk in WAL segments of 16 MiB at a time: a mark closer to full than a
// couple of segments would be crossed by one allocation, and the WAL write that finds no room
// crashes the server (PANIC) instead of failing one statement. So the marks have floors.
constexpr uint64_t kWalSegment = 16ull << 20;

// engage: read-write and less than max(readonly_below %, two WAL segments) available.
// release: read-only and, after the reserve is taken back, more than
// max(readwrite_above %, the low mark + one segment) available (the gap keeps it from flapping).
inline GuardAction guard_decide(const storage::DiskStats& d, bool read_only, uint64_t reserve, const Config& cfg) {
    if (d.bytes_total == 0) return GuardAction::none;
    const double total = static_cast<double>(d.bytes_total);
    const double avail = static_cast<double>(d.bytes_available);
    const double low = std::max(cfg.guard_readonly_below / 100 * total, 2.0 * kWalSegment);
    const double high = std::max(cfg.guard_readwrite_above / 100 * total, low + kWalSegment);
    if (!read_only) return avail < low ? GuardAction::engage : GuardAction::none;
    return avail - static_cast<double>(reserve) > high ? GuardAction::release : GuardAction::none;
}

class Guard {
public:
    Guard(const Config& cfg, Effects& fx, Store& store) : cfg_(cfg), fx_(fx), store_(store) {}
    // One round over every ready tenant that runs (not stopped, not hibernated) and is not busy
    // with an operation.
    void tick();
    // One tenant; the caller holds its OpLock, or the guard's hold (Store::try_guard).
    void check(const std::string& name);

private:
    const Config& cfg_;
    Effects& fx_;
    Store& store_;
};

}  // namespace hostd

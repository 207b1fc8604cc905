// The warm pool (pool.size in hostd.toml): loop images prepared ahead of creates — made,
// formatted and initdb'd by hostd's pool user, each with its own initdb (its own system
// identifier), then detached and listed "ready" in <state_dir>/pool.toml. A create of the
// default disk size and filesystem takes one (Provisioner::create's "pool" step) instead of
// making a disk and running initdb; the pool refills in the background, one disk at a time: its
// mkfs and initdb in units of their own at idle CPU and I/O weight (Effects::format_pool_disk,
// prepare_pool_cluster), the rest on the refill's thread at nice 19 in the idle I/O class, and
// only while the loop directory has room for a spare and a full-path create besides
// (pool::lacks_room). The pure rules (which disk, how many, what a start-up cleans) are
// in pool/pool.h; this class does the work through Effects and is safe to call from the API's
// threads and the refill thread at once.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "hostd/effects.h"
#include "model/config.h"
#include "pool/pool.h"

namespace hostd {

class WarmPool {
public:
    WarmPool(const Config& cfg, Effects& fx);

    // At start-up, before the refill runs: the state file read (a damaged one turns the pool
    // off, with the reason logged), what a crash cut off destroyed, disks beyond pool.size
    // given back. Never throws.
    void recover();
    // One round of the refill (the pool's ticker calls it on its own thread): when the pool is
    // short of pool.size, one disk is prepared. Returns how long to wait before the next round.
    std::chrono::milliseconds refill();

    // A ready disk of this shape, taken out of the pool (nullopt: none, or the pool is off or
    // damaged: the full path). The state file still lists it until the caller has moved its
    // image (moved), or gives it back (give_back) because it did not.
    std::optional<pool::Disk> take(const pool::Shape& shape);
    // The disk's image is the tenant's now: its entry leaves the state file.
    void moved(const std::string& id);
    void give_back(const pool::Disk& d);

    std::string image_of(const std::string& id) const;
    size_t ready() const;  // for the log and tests

private:
    void save_locked();
    void destroy(const std::string& id);  // its loop device, its image; idempotent
    void prepare(pool::Disk d);

    const Config& cfg_;
    Effects& fx_;
    mutable std::mutex mu_;
    pool::State state_;            // as the state file says, minus disks taken and not yet moved
    std::set<std::string> taken_;  // ids taken, not yet moved or given back (still in the file)
    bool broken_ = false;          // a damaged state file: the pool stays off until it is fixed
    bool recovered_ = false;
    bool short_logged_ = false;    // short of free space, said once until there is room again
};

// The calling thread at the lowest CPU priority (nice 19) and in the idle I/O class: nice and
// ioprio are per thread on Linux. The refill's thread calls it once: what it does itself (the
// image, the loop device, mounts, one syncfs) stays below hostd's own work. Its programs (mkfs,
// initdb) run in units of their own at CPUWeight=1/IOWeight=1 beside the tenants' units.
void lower_thread_priority();

// Where the pool keeps its state and images.
std::string pool_state_file(const Config& cfg);  // <state_dir>/pool.toml
std::string pool_dir(const Config& cfg);         // <loop_dir>/.pool (a tenant name never starts with '.')

}  // namespace hostd

// The warm pool (pool.size in hostd.toml): loop images prepared ahead of creates — made,
// formatted and initdb'd by hostd's pool user, each with its own initdb (its own system
// identifier), then detached and listed "ready" in <state_dir>/pool.toml. A create of the
// default disk size and filesystem takes one (Provisioner::create's "pool" step) instead of
// making a disk and running initdb; the pool refills in the background, one disk at a time, at
// idle CPU and I/O priority. The pure rules (which disk, how many, what a start-up cleans) are
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
};

// The calling thread, and every program it starts from now on (mkfs, initdb), at the lowest
// CPU priority (nice 19) and in the idle I/O class: nice and ioprio are per thread on Linux and
// a child inherits the forking thread's. The refill's thread calls it once. Tenants run in
// units of their own, so this orders the refill below hostd's own work; hostd.service's
// CPUWeight=/IOWeight= weigh hostd (and the refill) against the tenants.
void lower_thread_priority();

// Where the pool keeps its state and images.
std::string pool_state_file(const Config& cfg);  // <state_dir>/pool.toml
std::string pool_dir(const Config& cfg);         // <loop_dir>/.pool (a tenant name never starts with '.')

}  // namespace hostd

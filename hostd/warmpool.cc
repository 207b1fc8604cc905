#include "hostd/warmpool.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/error.h"
#include "base/fs.h"
#include "base/strings.h"
#include "hostd/faults.h"
#include "hostd/log.h"
#include "pgconf/pgconf.h"
#include "storage/storage.h"

namespace hostd {
namespace {

constexpr auto kSettled = std::chrono::seconds(2);   // the pool is full (or off): look again later
constexpr auto kBackOff = std::chrono::seconds(60);  // a refill failed: do not hammer the machine
constexpr auto kNoRoom = std::chrono::seconds(30);   // short of free space: look again later

}  // namespace

void lower_thread_priority() {
    const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    if (::setpriority(PRIO_PROCESS, tid, 19) < 0) log::warning("Warm pool: cannot lower the refill's CPU priority (nice)");
    constexpr int kIoprioClassIdle = 3, kIoprioClassShift = 13, kIoprioWhoProcess = 1;
    if (::syscall(SYS_ioprio_set, kIoprioWhoProcess, static_cast<int>(tid), kIoprioClassIdle << kIoprioClassShift) < 0)
        log::warning("Warm pool: cannot put the refill in the idle I/O class (ioprio_set)");
}

std::string pool_state_file(const Config& cfg) { return cfg.state_dir + "/pool.toml"; }
std::string pool_dir(const Config& cfg) { return cfg.loop_dir + "/.pool"; }

WarmPool::WarmPool(const Config& cfg, Effects& fx) : cfg_(cfg), fx_(fx) {}

std::string WarmPool::image_of(const std::string& id) const { return pool_dir(cfg_) + "/" + pool::image_name(id); }

size_t WarmPool::ready() const {
    std::lock_guard g(mu_);
    size_t n = 0;
    for (const auto& d : state_.disks)
        if (d.state == pool::DiskState::ready) n++;
    return n;
}

void WarmPool::save_locked() {
    // Disks taken but not yet moved are still in state_ (their image is still in the pool's
    // directory, where a start-up after a crash finds it and keeps it).
    make_dirs(cfg_.state_dir, 0700);
    write_file_atomic(pool_state_file(cfg_), pool::render(state_), 0600);
}

void WarmPool::destroy(const std::string& id) {
    const std::string image = image_of(id);
    fx_.detach_image(image);
    fx_.remove_image(image);
}

void WarmPool::recover() {
    std::lock_guard g(mu_);
    recovered_ = true;
    try {
        // A refill's mkfs or initdb a crash left running holds its disk: stopped first.
        fx_.stop_pool_jobs();
    } catch (const Error& e) {
        broken_ = true;
        log::error(std::string("Warm pool off: cannot stop what a cut-off refill left running: ") + e.what());
        return;
    }
    if (cfg_.backend != "loop" || cfg_.pool_size == 0) {
        // Off: a pool left by an earlier configuration is given back whole.
        try {
            if (!path_exists(pool_state_file(cfg_)) && fx_.pool_images(pool_dir(cfg_)).empty()) return;
        } catch (const Error& e) {
            broken_ = true;
            log::error(std::string("Warm pool: cannot look at what an earlier pool left: ") + e.what());
            return;
        }
    }
    pool::State st;
    try {
        if (path_exists(pool_state_file(cfg_))) st = pool::parse(read_file(pool_state_file(cfg_)), pool_state_file(cfg_));
    } catch (const Error& e) {
        broken_ = true;
        log::error(std::string("Warm pool off: ") + e.what());
        return;
    }
    try {
        const pool::Recovery r = pool::plan_recovery(st, fx_.pool_images(pool_dir(cfg_)));
        for (const auto& id : r.destroy) {
            log::info("Warm pool: removing disk " + id + " (cut off while it was prepared, or listed nowhere)");
            destroy(id);
        }
        if (!r.forget.empty()) log::info("Warm pool: " + std::to_string(r.forget.size()) + " entr(ies) forgotten (taken by a create, or cut off)");
        state_ = r.kept;
        const size_t want = cfg_.backend == "loop" ? static_cast<size_t>(cfg_.pool_size) : 0;
        for (const auto& id : pool::misfits(state_, {.size = cfg_.disk_size, .filesystem = cfg_.filesystem})) {
            log::info("Warm pool: giving back disk " + id + " (made for another limits.disk_size or storage.filesystem)");
            destroy(id);
            std::erase_if(state_.disks, [&](const pool::Disk& d) { return d.id == id; });
        }
        for (const auto& id : pool::surplus(state_, want)) {
            log::info("Warm pool: giving back disk " + id + " (pool.size is " + std::to_string(want) + ")");
            destroy(id);
            std::erase_if(state_.disks, [&](const pool::Disk& d) { return d.id == id; });
        }
        if (want == 0 && state_.disks.empty()) remove_file(pool_state_file(cfg_));  // off: nothing of it stays
        else save_locked();
    } catch (const Error& e) {
        broken_ = true;
        log::error(std::string("Warm pool off: its start-up clean-up failed: ") + e.what());
    }
}

std::chrono::milliseconds WarmPool::refill() {
    pool::Disk d;
    {
        std::lock_guard g(mu_);
        if (!recovered_ || broken_ || cfg_.backend != "loop") return kSettled;
        if (pool::to_prepare(state_, static_cast<size_t>(cfg_.pool_size)) == 0) return kSettled;
        // Never the space a create needs: short of room, the refill waits (logged once).
        std::optional<std::string> short_of;
        try {
            short_of = pool::lacks_room(fx_.loop_space({}).available, cfg_.disk_size);
        } catch (const Error& e) {
            short_of = e.what();
        }
        if (short_of) {
            if (!short_logged_) log::warning("Warm pool: not refilling for now: " + *short_of + "; looking again every " +
                                             std::to_string(kNoRoom.count()) + " s (creates take the full path meanwhile)");
            short_logged_ = true;
            return kNoRoom;
        }
        if (short_logged_) log::info("Warm pool: room again under the loop directory; refilling");
        short_logged_ = false;
        std::set<std::string> ids;
        for (const auto& x : state_.disks) ids.insert(x.id);
        d.id = pool::new_id(ids);
        d.state = pool::DiskState::preparing;
        d.filesystem = cfg_.filesystem;
        d.size = cfg_.disk_size;
        d.fs_uuid = storage::new_uuid();
        d.bootstrap_role = pool::bootstrap_role_of(d.id);
        d.bootstrap_password = pgconf::random_password();
        d.created_at = format_rfc3339(std::time(nullptr));
        state_.disks.push_back(d);
        try {
            save_locked();  // listed before anything of it exists
        } catch (const Error& e) {
            state_.disks.pop_back();
            log::error(std::string("Warm pool: cannot write its state file: ") + e.what());
            return kBackOff;
        }
    }
    try {
        prepare(d);
    } catch (const Error& e) {
        log::error("Warm pool: preparing disk " + d.id + " failed: " + e.what() + "; trying again in " +
                   std::to_string(kBackOff.count()) + " s");
        try {
            destroy(d.id);
        } catch (const Error& e2) {
            log::error("Warm pool: removing the failed disk " + d.id + " failed too: " + e2.what() + " (a restart of hostd retries)");
            return kBackOff;  // stays listed as preparing: the next start removes it
        }
        std::lock_guard g(mu_);
        std::erase_if(state_.disks, [&](const pool::Disk& x) { return x.id == d.id; });
        try {
            save_locked();
        } catch (const Error&) {
        }
        return kBackOff;
    }
    return std::chrono::milliseconds(0);  // the next one at once (or settled next round)
}

void WarmPool::prepare(pool::Disk d) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string image = image_of(d.id);
    auto step = [&](const char* s, auto&& fn) {
        crash_point("pool", "before", s);
        fn();
        crash_point("pool", "after", s);
    };
    std::string device;
    step("image", [&] {
        fx_.create_image(image, d.size);
        device = fx_.attach_image(image);
    });
    step("format", [&] { fx_.format_pool_disk(d, device); });
    step("initdb", [&] { fx_.prepare_pool_cluster(d, device); });
    step("ready", [&] {
        fx_.detach_image(image);  // at rest a pool disk is a file: nothing of it is attached or mounted
        std::lock_guard g(mu_);
        for (auto& x : state_.disks)
            if (x.id == d.id) x.state = pool::DiskState::ready;
        save_locked();
    });
    const long ms = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
    log::info("Warm pool: disk " + d.id + " ready in " + std::to_string(ms) + " ms (" + std::to_string(ready()) + " of " +
              std::to_string(cfg_.pool_size) + " ready)");
}

std::optional<pool::Disk> WarmPool::take(const pool::Shape& shape) {
    std::lock_guard g(mu_);
    if (!recovered_ || broken_ || cfg_.backend != "loop") return std::nullopt;
    pool::State free;
    for (const auto& d : state_.disks)
        if (!taken_.count(d.id)) free.disks.push_back(d);
    auto i = pool::pick(free, shape);
    if (!i) return std::nullopt;
    taken_.insert(free.disks[*i].id);
    return free.disks[*i];
}

void WarmPool::moved(const std::string& id) {
    std::lock_guard g(mu_);
    taken_.erase(id);
    std::erase_if(state_.disks, [&](const pool::Disk& d) { return d.id == id; });
    save_locked();  // if this fails, the next start forgets the entry (its image is gone)
}

void WarmPool::give_back(const pool::Disk& d) {
    std::lock_guard g(mu_);
    taken_.erase(d.id);
}

}  // namespace hostd

// The warm pool's pure logic: disks prepared ahead of creates (a loop image, formatted, with a
// cluster initdb'd on it by hostd's pool user), recorded in one state file that hostd alone
// writes. No effects here: what the state file says, which disk a create takes, how many to
// prepare, and what a start-up after a crash must clean. hostd/pool.* does the work.
//
// Safety rules this module encodes (tests/unit/pool_test.cc):
// - a pool disk is never a tenant: its image is <pool_dir>/<id>.img, a directory of its own
//   (not <loop_dir>/<name>.img, which the reconciler reads as a tenant's), and ids are 16
//   lowercase hex digits, nothing a path or a tenant name could be mistaken for;
// - a disk is listed before anything of it is made ("preparing"), and only a "ready" one is
//   ever taken; a start-up destroys every "preparing" disk and every image in pool_dir the
//   state file does not list, and forgets entries whose image is gone (a create took it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace hostd::pool {

enum class DiskState { preparing, ready };

struct Disk {
    std::string id;          // 16 lowercase hex digits: <pool_dir>/<id>.img
    DiskState state = DiskState::preparing;
    std::string filesystem;  // ext4 | xfs
    uint64_t size = 0;       // bytes of the image
    std::string fs_uuid;     // chosen before the disk is formatted
    // The cluster's bootstrap superuser (initdb -U) and its password, until a create takes the
    // disk: it logs in with them once and, in that session, makes a hand-over superuser
    // (handover_role_of, without login) that renames this role to the tenant's admin and gives
    // it the tenant's password, then drops the hand-over role (pgconf::hand_over_cluster).
    // initdb stores the password's SCRAM secret made with kBootstrapScramIterations.
    std::string bootstrap_role;
    std::string bootstrap_password;
    std::string created_at;  // RFC 3339, for humans

    bool operator==(const Disk&) const = default;
};

struct State {
    std::vector<Disk> disks;  // in the order they were listed (oldest first)
    bool operator==(const State&) const = default;
};

// The state file's text (TOML: one [[disk]] table each) and back. parse throws Error(invalid)
// naming what is wrong (and that hostd.toml's pool.size may be set to 0 and the file removed).
std::string render(const State& s);
State parse(std::string_view text, std::string_view path_for_errors);

bool valid_id(std::string_view id);
// A new id from 8 random bytes; one not in taken.
std::string new_id(const std::set<std::string>& taken);
// "<id>.img" → id; nullopt for anything else (a file a human put there, a half-written one).
std::optional<std::string> id_of_image(std::string_view filename);
std::string image_name(std::string_view id);  // "<id>.img"
// The role names a disk's cluster knows before a create takes it, the id in them:
// "hostd_pool_<id>" (the bootstrap superuser) and "hostd_handover_<id>". A tenant's admin is
// named after a tenant, and tenant names have no '_' (model/tenant.h): never one of these.
std::string bootstrap_role_of(std::string_view id);
std::string handover_role_of(std::string_view id);
// One PBKDF2 iteration for the bootstrap role's secret: its password is 24 random characters
// (143 bits) used for one login, so stretching guards nothing, and the 4096 iterations of a
// tenant's own secret cost 10-25 ms of hostd's CPU on that login, on every pool create's path.
inline constexpr int kBootstrapScramIterations = 1;

// What a create asks of a disk: a pool disk fits only the very size and filesystem.
struct Shape {
    uint64_t size = 0;
    std::string filesystem;
};
// The ready disk a create takes (the oldest that fits), by index; nullopt: the full path.
std::optional<size_t> pick(const State& s, const Shape& shape);

// How many disks to start preparing now: the pool is short of `size` ready-or-preparing disks,
// and at most `parallel` prepare at once (1 keeps the refill one idle initdb at a time).
size_t to_prepare(const State& s, size_t size, size_t parallel = 1);

// Room for one more spare under the loop directory (available: statvfs f_bavail there). A spare
// writes at most kSpareWritten (its filesystem's metadata and a fresh cluster: about 45 MB of the
// sparse image); after it there must still be room for a full-path create's disk of disk_size
// and kRoomMargin, so the pool never takes the space a create needs. nullopt: room enough;
// else what is short, for the log.
inline constexpr uint64_t kSpareWritten = 64ull << 20;
inline constexpr uint64_t kRoomMargin = 256ull << 20;
uint64_t room_needed(uint64_t disk_size);
std::optional<std::string> lacks_room(uint64_t available, uint64_t disk_size);

// After a start (a crash may have cut anything off): found = the ids of the images in pool_dir.
struct Recovery {
    std::vector<std::string> destroy;  // preparing disks, and images no entry lists: unmade
    std::vector<std::string> forget;   // entries whose image is gone (taken) or that are unmade
    State kept;                        // what stays: the ready disks whose image is there
};
Recovery plan_recovery(const State& s, const std::set<std::string>& found);

// Ready disks of another shape than the one the pool prepares now (limits.disk_size or
// storage.filesystem changed): no create would take them, and they would count as the pool's.
std::vector<std::string> misfits(const State& s, const Shape& now);

// Disks beyond `size` (pool.size lowered): the newest ready ones first, their ids.
std::vector<std::string> surplus(const State& s, size_t size);

}  // namespace hostd::pool

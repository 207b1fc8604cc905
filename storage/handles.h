// Owners for the C handles storage uses (libblkid, libmount, dirent), and the small helpers
// the storage files share. Internal to storage/: not part of its API.
#pragma once

#include <blkid/blkid.h>
#include <dirent.h>
#include <libmount/libmount.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace hostd::storage::detail {

// Stateless deleters: a unique_ptr with one of these is the size of a raw pointer, and a
// throw between acquiring and releasing a handle cannot leak it.
struct BlkidProbeFree {
    void operator()(blkid_probe p) const noexcept { blkid_free_probe(p); }
};
struct BlkidCachePut {
    // With the "/dev/null" cache file we use, putting the cache writes nothing.
    void operator()(blkid_cache c) const noexcept { blkid_put_cache(c); }
};
struct BlkidDevIterEnd {
    void operator()(blkid_dev_iterate i) const noexcept { blkid_dev_iterate_end(i); }
};
struct MntContextFree {
    void operator()(libmnt_context* c) const noexcept { mnt_free_context(c); }
};
struct MntTableUnref {
    void operator()(libmnt_table* t) const noexcept { mnt_unref_table(t); }
};
struct MntIterFree {
    void operator()(libmnt_iter* i) const noexcept { mnt_free_iter(i); }
};
struct DirClose {
    void operator()(DIR* d) const noexcept { ::closedir(d); }
};

using BlkidProbe = std::unique_ptr<std::remove_pointer_t<blkid_probe>, BlkidProbeFree>;
using BlkidCache = std::unique_ptr<std::remove_pointer_t<blkid_cache>, BlkidCachePut>;
using BlkidDevIter = std::unique_ptr<std::remove_pointer_t<blkid_dev_iterate>, BlkidDevIterEnd>;
using MntContext = std::unique_ptr<libmnt_context, MntContextFree>;
using MntTable = std::unique_ptr<libmnt_table, MntTableUnref>;
using MntIter = std::unique_ptr<libmnt_iter, MntIterFree>;
using Dir = std::unique_ptr<DIR, DirClose>;

// The kernel's view of this namespace's mounts. Throws Errc::failed if it cannot be read.
MntTable read_mountinfo();

// Every mount (in this mount namespace) whose source is one of these devices: (devno, target).
std::vector<std::pair<dev_t, std::string>> mounts_of(const std::vector<dev_t>& devices);

// The device number of a block device node; nullopt if path is missing or not a block device.
std::optional<dev_t> block_devno(const std::string& path);

// realpath(3) as a string; nullopt if path (or a component) does not exist; throws otherwise.
std::optional<std::string> canonical_path(const std::string& path);

// Asks the kernel to drop the clean cached blocks of a block device, so the next read sees
// what is on the medium. For a loop device this matters: its cache is not kept coherent
// with writes made to the backing file directly. Best effort: needs CAP_SYS_ADMIN.
void drop_cached_blocks(int block_device_fd) noexcept;

// Whether s is a UUID in the canonical 8-4-4-4-12 hex form (either case).
bool is_uuid(const std::string& s);

// The label-length limit of a filesystem hostd formats; throws Errc::invalid for others.
size_t label_limit(const std::string& fstype);

}  // namespace hostd::storage::detail

// The loop backend: a sparse image file per tenant, bound to a /dev/loopN node.
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/major.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include "base/error.h"
#include "base/fd.h"
#include "storage/handles.h"
#include "storage/storage.h"

namespace hostd::storage {
namespace {

using detail::canonical_path;

struct LoopNode {
    unsigned long index;
    std::string path;
};

// The /dev/loopN nodes that exist in this /dev, lowest N first. Inside a container /dev is a
// tmpfs holding only the nodes it was given, so the kernel's list of loop devices and ours
// differ: what we can open is what is here.
std::vector<LoopNode> loop_nodes() {
    detail::Dir dir(::opendir("/dev"));
    if (!dir) throw_errno(errno, "Failed to list /dev to find loop devices");
    std::vector<LoopNode> nodes;
    while (const dirent* e = ::readdir(dir.get())) {
        const std::string_view name = e->d_name;
        if (!name.starts_with("loop") || name.size() == 4) continue;
        const std::string_view digits = name.substr(4);
        unsigned long index = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
        if (ec != std::errc{} || end != digits.data() + digits.size()) continue;  // loop-control, loopXpY
        nodes.push_back({index, "/dev/" + std::string(name)});
    }
    std::sort(nodes.begin(), nodes.end(), [](const LoopNode& a, const LoopNode& b) { return a.index < b.index; });
    return nodes;
}

enum class NodeState { open, absent, busy };

// Opens a loop node. A node whose device the kernel does not have (ENXIO/ENODEV, common in a
// container), one that is gone, or a stray file that is not a loop device counts as absent;
// a device that refuses a writable open because it is mounted (kernels that protect mounted
// devices from writers) counts as busy.
NodeState open_loop_node(const std::string& path, int flags, Fd& out) {
    Fd fd(::open(path.c_str(), flags | O_CLOEXEC));
    if (!fd) {
        const int err = errno;
        if (err == ENOENT || err == ENXIO || err == ENODEV) return NodeState::absent;
        if (err == EBUSY) return NodeState::busy;
        throw_errno(err, "Failed to open loop device " + path);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) throw_errno(errno, "Failed to stat loop device " + path);
    if (!S_ISBLK(st.st_mode) || major(st.st_rdev) != LOOP_MAJOR) return NodeState::absent;
    out = std::move(fd);
    return NodeState::open;
}

// LOOP_CONFIGURE binds and configures in one step, so no other process can see the device
// half set up, and a device bound by someone else fails with EBUSY instead of being taken.
// Returns 0 or the errno.
int configure(const Fd& node, const loop_config& cfg) {
    return ::ioctl(node.get(), LOOP_CONFIGURE, &cfg) < 0 ? errno : 0;
}

// The kernel reports the backing file's device in its "huge" encoding (major << 8 | minor with
// the high minor bits moved up); decode it rather than assume it matches glibc's dev_t.
bool same_backing_device(uint64_t lo_device, dev_t st_dev) {
    const unsigned maj = static_cast<unsigned>((lo_device & 0xfff00u) >> 8);
    const unsigned min = static_cast<unsigned>((lo_device & 0xffu) | ((lo_device >> 12) & 0xfff00u));
    return maj == major(st_dev) && min == minor(st_dev);
}

}  // namespace

void create_sparse_file(const std::string& path, uint64_t size_bytes) {
    if (size_bytes == 0) throw Error(Errc::invalid, "Cannot create loop image " + path + " of size 0: give a size.");
    // O_EXCL|O_NOFOLLOW: never reuse or follow anything already at path; an image that
    // exists may hold a tenant's data.
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) {
        const int err = errno;
        if (err == EEXIST)
            throw Error(Errc::conflict, "Loop image " + path +
                                            " already exists; hostd never reuses an image file: remove it or pick another path.");
        throw_errno(err, "Failed to create loop image " + path);
    }
    // fchmod: 0600 even under a umask that took bits away from it. ftruncate makes a hole of
    // the full size: no block is allocated until written.
    int err = 0;
    if (::fchmod(fd.get(), 0600) < 0 || ::ftruncate(fd.get(), static_cast<off_t>(size_bytes)) < 0 ||
        ::fsync(fd.get()) < 0)
        err = errno;
    if (err != 0) {
        ::unlink(path.c_str());  // ours: created above with O_EXCL
        throw_errno(err, "Failed to size loop image " + path + " to " + std::to_string(size_bytes) + " bytes");
    }
}

std::string loop_attach(const std::string& path) {
    const auto canon = canonical_path(path);
    if (!canon) throw Error(Errc::not_found, "Loop image " + path + " does not exist.");
    Fd file(::open(canon->c_str(), O_RDWR | O_CLOEXEC));
    if (!file) throw_errno(errno, "Failed to open loop image " + *canon);
    struct stat st {};
    if (::fstat(file.get(), &st) < 0) throw_errno(errno, "Failed to stat loop image " + *canon);
    if (!S_ISREG(st.st_mode)) throw Error(Errc::invalid, "Loop image " + *canon + " is not a regular file.");
    // Two loop devices over one image would let the same filesystem be mounted twice,
    // which corrupts it.
    if (auto dev = loop_find(*canon))
        throw Error(Errc::conflict, "Loop image " + *canon + " is already attached as " + *dev +
                                        "; use that device or detach it first.");

    loop_config cfg{};
    cfg.fd = static_cast<__u32>(file.get());
    // Read-write, no partition scan, no autoclear. Direct I/O: the tenant's filesystem has its
    // own page cache, so the image's would hold every block a second time (cold pages the
    // kernel must then reclaim: with 200 tenants the host's memory was mostly those copies).
    // Where the image's filesystem cannot do direct I/O the kernel keeps buffered I/O.
    cfg.info.lo_flags = LO_FLAGS_DIRECT_IO;
    std::strncpy(reinterpret_cast<char*>(cfg.info.lo_file_name), canon->c_str(), LO_NAME_SIZE - 1);

    for (const LoopNode& n : loop_nodes()) {
        // Skip bound devices without touching them: LOOP_CONFIGURE briefly claims the device
        // even when it then fails with EBUSY, and that claim makes another process's
        // exclusive open (mkfs on the device it just bound) fail.
        if (::access(("/sys/block/loop" + std::to_string(n.index) + "/loop/backing_file").c_str(), F_OK) == 0) continue;
        Fd node;
        if (open_loop_node(n.path, O_RDWR, node) != NodeState::open) continue;
        const int err = configure(node, cfg);
        if (err == 0) return n.path;
        if (err != EBUSY) throw_errno(err, "Failed to attach " + *canon + " to " + n.path + " (LOOP_CONFIGURE)");
    }

    // Every node here is taken: ask the kernel for a free (possibly new) device. Another
    // process may take it before we bind it, hence the retries.
    Fd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
    if (!control) {
        const int err = errno;
        if (err == ENOENT || err == ENXIO || err == ENODEV)
            throw Error(Errc::unavailable, "No free loop device for " + *canon +
                                               ": every /dev/loopN is in use and /dev/loop-control is missing; "
                                               "load the loop module or add loop device nodes.");
        throw_errno(err, "Failed to open /dev/loop-control");
    }
    for (int attempt = 0; attempt < 16; ++attempt) {
        const int index = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
        if (index < 0) throw_errno(errno, "Failed to get a free loop device from /dev/loop-control");
        const std::string path_n = "/dev/loop" + std::to_string(index);
        Fd node;
        const NodeState state = open_loop_node(path_n, O_RDWR, node);
        if (state == NodeState::busy) continue;
        if (state == NodeState::absent)
            throw Error(Errc::unavailable,
                        "No free loop device for " + *canon + ": the kernel offers " + path_n +
                            " but this /dev has no such node (a container's /dev?); give it more loop device nodes.");
        const int err = configure(node, cfg);
        if (err == 0) return path_n;
        if (err != EBUSY) throw_errno(err, "Failed to attach " + *canon + " to " + path_n + " (LOOP_CONFIGURE)");
    }
    throw Error(Errc::unavailable, "No free loop device for " + *canon +
                                       ": others took every free one first, 16 times; try again.");
}

void loop_detach(const std::string& device) {
    const auto canon = canonical_path(device);
    if (!canon) throw Error(Errc::not_found, "Loop device " + device + " does not exist.");
    Fd node(::open(canon->c_str(), O_RDONLY | O_CLOEXEC));
    if (!node) {
        if (errno == ENXIO || errno == ENODEV) return;  // the kernel has no such device: nothing bound
        throw_errno(errno, "Failed to open loop device " + *canon);
    }
    struct stat st {};
    if (::fstat(node.get(), &st) < 0) throw_errno(errno, "Failed to stat " + *canon);
    if (!S_ISBLK(st.st_mode) || major(st.st_rdev) != LOOP_MAJOR)
        throw Error(Errc::invalid, *canon + " is not a loop device; refusing to detach it.");
    // The kernel would accept LOOP_CLR_FD here and detach only at the last close: refuse
    // instead, so the caller finds out that the mount is still there.
    if (auto mounts = detail::mounts_of({st.st_rdev}); !mounts.empty())
        throw Error(Errc::refused, "Loop device " + *canon + " is mounted at " + mounts.front().second +
                                       "; unmount it before detaching.");
    if (::ioctl(node.get(), LOOP_CLR_FD) < 0) {
        const int err = errno;
        if (err == ENXIO) return;  // not bound: already free
        if (err == EBUSY)
            throw Error(Errc::failed, "Loop device " + *canon + " is busy and cannot be detached; " +
                                          "stop whatever holds it open (see `fuser -v " + *canon + "`) and retry.");
        throw_errno(err, "Failed to detach loop device " + *canon + " (LOOP_CLR_FD)");
    }
    node.reset();
    // The kernel unbinds at the last close of the device. Anyone scanning devices (blkid,
    // udev, another hostd call) may hold it open for a moment, so wait for the unbind: after
    // we return, loop_find() must no longer see the image and the image can be attached again.
    const std::string bound_marker = "/sys/dev/block/" + std::to_string(major(st.st_rdev)) + ":" +
                                     std::to_string(minor(st.st_rdev)) + "/loop/backing_file";
    for (int i = 0; i < 500 && ::access(bound_marker.c_str(), F_OK) == 0; ++i) ::usleep(10 * 1000);
    if (::access(bound_marker.c_str(), F_OK) == 0)
        throw Error(Errc::failed, "Loop device " + *canon + " is still held open by another process; the kernel " +
                                      "will detach it when that process closes it (see `fuser -v " + *canon + "`).");
}

std::optional<std::string> loop_find(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
        throw_errno(errno, "Failed to stat loop image " + path);
    }
    for (const LoopNode& n : loop_nodes()) {
        Fd node;
        if (open_loop_node(n.path, O_RDONLY, node) != NodeState::open) continue;
        loop_info64 info{};
        if (::ioctl(node.get(), LOOP_GET_STATUS64, &info) < 0) {
            if (errno == ENXIO) continue;  // not bound
            throw_errno(errno, "Failed to read the status of loop device " + n.path);
        }
        if (info.lo_inode == st.st_ino && same_backing_device(info.lo_device, st.st_dev)) return n.path;
    }
    return std::nullopt;
}

}  // namespace hostd::storage

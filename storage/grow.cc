// Growing a tenant's disk online, and the reserve file the disk-full guard hands back.
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/error.h"
#include "base/exec.h"
#include "base/fd.h"
#include "base/size.h"
#include "storage/handles.h"
#include "storage/storage.h"

namespace hostd::storage {

void grow_image(const std::string& path, uint64_t size_bytes) {
    Fd file(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!file) throw_errno(errno, "Failed to open loop image " + path);
    struct stat st {};
    if (::fstat(file.get(), &st) < 0) throw_errno(errno, "Failed to stat loop image " + path);
    const auto current = static_cast<uint64_t>(st.st_size);
    if (size_bytes < current)
        throw Error(Errc::refused, "Loop image " + path + " is " + format_size(current) + "; shrinking it to " +
                                       format_size(size_bytes) + " is not supported (neither ext4 online nor xfs can shrink).");
    if (size_bytes > current && ::ftruncate(file.get(), static_cast<off_t>(size_bytes)) < 0)
        throw_errno(errno, "Failed to grow loop image " + path + " to " + format_size(size_bytes));
    auto dev = loop_find(path);
    if (!dev) throw Error(Errc::not_found, "Loop image " + path + " is not attached to a loop device.");
    Fd node(::open(dev->c_str(), O_RDONLY | O_CLOEXEC));
    if (!node) throw_errno(errno, "Failed to open " + *dev);
    // The loop driver keeps the size it read at attach time until told to look again.
    if (::ioctl(node.get(), LOOP_SET_CAPACITY, 0) < 0)
        throw_errno(errno, "Failed to refresh the capacity of " + *dev + " (LOOP_SET_CAPACITY)");
}

void grow_filesystem(const std::string& device, const std::string& mountpoint, const std::string& fstype) {
    if (fstype == "ext4") {
        const auto r = exec({.argv = {"resize2fs", device}});
        if (r.exit_code == 0) return;
        if (r.err.find("Permission denied to resize filesystem") != std::string::npos)
            throw Error(Errc::unavailable, "The kernel refused to grow the mounted ext4 on " + device +
                                               " online: that needs CAP_SYS_RESOURCE, which this process lacks "
                                               "(a container or a restricted service?).");
        throw Error(Errc::failed, "Failed to grow the ext4 filesystem on " + device + " (resize2fs exited with " +
                                      std::to_string(r.exit_code) + "): " + r.err);
    } else if (fstype == "xfs")
        exec_checked({.argv = {"xfs_growfs", "-d", mountpoint}}, "Failed to grow the xfs filesystem at " + mountpoint);
    else
        throw Error(Errc::invalid, "Cannot grow a " + fstype + " filesystem; hostd makes ext4 and xfs only.");
}

void grow_filesystem_offline(const std::string& device, const std::string& fstype) {
    if (fstype != "ext4")
        throw Error(Errc::invalid, "Only ext4 grows offline; " + fstype + " grows while mounted.");
    const auto devno = detail::block_devno(device);
    if (!devno) throw Error(Errc::invalid, device + " is not a block device.");
    if (!detail::mounts_of({*devno}).empty())
        throw Error(Errc::refused, device + " is mounted; an offline grow needs it unmounted.");
    // resize2fs insists on a freshly checked filesystem; -p repairs only what is safe.
    const auto fsck = exec({.argv = {"e2fsck", "-f", "-p", device}});
    if (fsck.exit_code > 1)  // 1: errors corrected
        throw Error(Errc::failed, "e2fsck found problems on " + device + " it could not fix (exit " +
                                      std::to_string(fsck.exit_code) + "): " + fsck.out + fsck.err + "; check it by hand.");
    exec_checked({.argv = {"resize2fs", device}}, "Failed to grow the ext4 filesystem on " + device);
}

void ensure_reserve(const std::string& path, uint64_t bytes) {
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) throw_errno(errno, "Failed to open the reserve file " + path);
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) throw_errno(errno, "Failed to stat " + path);
    if (static_cast<uint64_t>(st.st_size) == bytes && static_cast<uint64_t>(st.st_blocks) * 512 >= bytes) return;
    if (static_cast<uint64_t>(st.st_size) > bytes && ::ftruncate(fd.get(), static_cast<off_t>(bytes)) < 0)
        throw_errno(errno, "Failed to shrink the reserve file " + path);
    // Real blocks, not a sparse hole: the point is that they are taken now.
    if (const int err = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(bytes)); err != 0) {
        (void)::ftruncate(fd.get(), 0);
        if (err == ENOSPC)
            throw Error(Errc::unavailable, "No room for the " + format_size(bytes) + " reserve file " + path + ".");
        throw_errno(err, "Failed to allocate the reserve file " + path);
    }
}

uint64_t release_reserve(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) < 0) {
        if (errno == ENOENT) return 0;
        throw_errno(errno, "Failed to stat the reserve file " + path);
    }
    if (::unlink(path.c_str()) < 0 && errno != ENOENT) throw_errno(errno, "Failed to remove the reserve file " + path);
    return static_cast<uint64_t>(st.st_blocks) * 512;
}

}  // namespace hostd::storage

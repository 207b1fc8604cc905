// Mounts by filesystem UUID (libblkid finds the device, libmount mounts it), unmounts, and
// reads what is mounted where.
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/error.h"
#include "base/fs.h"
#include "base/strings.h"
#include "storage/handles.h"
#include "storage/storage.h"

namespace hostd::storage {

namespace detail {

std::optional<std::string> canonical_path(const std::string& path) {
    std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(path.c_str(), nullptr), &std::free);
    if (!resolved) {
        if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
        throw_errno(errno, "Failed to resolve " + path);
    }
    return std::string(resolved.get());
}

MntTable read_mountinfo() {
    MntTable table(mnt_new_table_from_file("/proc/self/mountinfo"));
    if (!table) throw Error(Errc::failed, "Failed to read /proc/self/mountinfo (libmount); is /proc mounted?");
    return table;
}

std::optional<dev_t> block_devno(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0 || !S_ISBLK(st.st_mode)) return std::nullopt;
    return st.st_rdev;
}

std::vector<std::pair<dev_t, std::string>> mounts_of(const std::vector<dev_t>& devices) {
    MntTable table = read_mountinfo();
    MntIter it(mnt_new_iter(MNT_ITER_FORWARD));
    if (!it) throw Error(Errc::failed, "Out of memory reading the mount table");
    std::vector<std::pair<dev_t, std::string>> out;
    libmnt_fs* fs = nullptr;
    while (mnt_table_next_fs(table.get(), it.get(), &fs) == 0) {
        const dev_t d = mnt_fs_get_devno(fs);
        if (d == 0 || std::find(devices.begin(), devices.end(), d) == devices.end()) continue;
        const char* target = mnt_fs_get_target(fs);
        out.emplace_back(d, target ? target : "?");
    }
    return out;
}

}  // namespace detail

namespace {

struct Found {
    std::string device;
    dev_t devno;
};

// Every block device whose filesystem has this UUID, one entry per device. We probe all
// devices the kernel lists (/proc/partitions) into a throw-away blkid cache ("/dev/null":
// nothing read from or written to /run/blkid) instead of trusting /dev/disk/by-uuid, which
// exists only where udev runs (not in a container) and, like any cache, can be stale.
// Scanning everything also shows when two devices carry the same UUID (a copied image).
std::vector<Found> devices_with_uuid(const std::string& uuid) {
    blkid_cache raw = nullptr;
    if (blkid_get_cache(&raw, "/dev/null") < 0 || !raw)
        throw Error(Errc::failed, "Failed to set up a libblkid cache to look for UUID " + uuid);
    detail::BlkidCache cache(raw);
    if (blkid_probe_all(cache.get()) < 0)
        throw Error(Errc::failed, "Failed to scan block devices (/proc/partitions) for UUID " + uuid);
    detail::BlkidDevIter it(blkid_dev_iterate_begin(cache.get()));
    if (!it || blkid_dev_set_search(it.get(), "UUID", uuid.c_str()) < 0)
        throw Error(Errc::failed, "Failed to search the libblkid cache for UUID " + uuid);
    std::vector<Found> found;
    blkid_dev dev = nullptr;
    while (blkid_dev_next(it.get(), &dev) == 0) {
        const char* name = blkid_dev_devname(dev);
        if (!name) continue;
        auto devno = detail::block_devno(name);
        if (!devno) continue;
        // One device can be listed under two names (/dev/dm-0 and /dev/mapper/x).
        if (std::none_of(found.begin(), found.end(), [&](const Found& f) { return f.devno == *devno; }))
            found.push_back({name, *devno});
    }
    return found;
}

std::string list(const std::vector<Found>& found) {
    std::string s;
    for (const auto& f : found) s += (s.empty() ? "" : ", ") + f.device;
    return s;
}

// "<device> carries filesystem UUID X, not Y" (or "no filesystem UUID").
std::string carries(const std::string& device, const ProbeResult& r, const std::string& wanted) {
    return device + " carries " + (r.uuid.empty() ? "no filesystem UUID" : "filesystem UUID " + r.uuid) + ", not " +
           wanted;
}

// The top-most mount at exactly this (canonical) path, if any.
libmnt_fs* mount_at(libmnt_table* table, const std::string& target) {
    return mnt_table_find_target(table, target.c_str(), MNT_ITER_BACKWARD);
}

// libmount's own sentence for what went wrong ("wrong fs type, bad option, ...").
std::string mount_error(libmnt_context* cxt, int rc) {
    char buf[BUFSIZ] = {};
    mnt_context_get_excode(cxt, rc, buf, sizeof buf);
    if (buf[0] != '\0') return buf;
    const int err = mnt_context_syscall_called(cxt) ? mnt_context_get_syscall_errno(cxt) : (rc < 0 ? -rc : 0);
    return err != 0 ? std::strerror(err) : "unknown error (libmount status " + std::to_string(rc) + ")";
}

detail::MntContext new_context() {
    detail::MntContext cxt(mnt_new_context());
    if (!cxt) throw Error(Errc::failed, "Out of memory creating a libmount context");
    // No /sbin/mount.<type> helpers and no /etc/fstab: what we ask for is exactly what the
    // kernel is asked, whatever the host's configuration.
    mnt_context_disable_helpers(cxt.get(), 1);
    mnt_context_set_optsmode(cxt.get(), MNT_OMODE_NOTAB);
    return cxt;
}

}  // namespace

void mount_by_uuid(const std::string& uuid, const std::string& target, const std::string& options,
                   const std::optional<std::string>& expected_device) {
    if (!detail::is_uuid(uuid))
        throw Error(Errc::invalid, "'" + uuid + "' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).");
    const std::string want = lower(uuid);

    // 1. The device: found by UUID, never by label, and checked against the expected one.
    std::optional<Found> chosen;
    std::optional<ProbeResult> r;
    if (expected_device) {
        const auto canon = detail::canonical_path(*expected_device);
        const auto devno = canon ? detail::block_devno(*canon) : std::nullopt;
        if (!devno)
            throw Error(Errc::not_found, "Expected device " + *expected_device + " for filesystem UUID " + uuid +
                                             " is not a block device that exists.");
        chosen = Found{*canon, *devno};
        // The usual case, and the only one on a create's path: the expected device carries the
        // UUID. One probe of it; scanning every device on the host grows with the host's disks.
        r = probe(chosen->device);
        if (lower(r->uuid) != want) {
            // Wrong medium: the scan names where the filesystem is, for the message.
            const std::vector<Found> found = devices_with_uuid(want);
            throw Error(Errc::refused, carries(chosen->device, *r, uuid) +
                                           (found.empty() ? std::string() : " (that filesystem is on " + list(found) + ")") +
                                           "; refusing to mount another disk in its place.");
        }
    } else {
        const std::vector<Found> found = devices_with_uuid(want);
        if (found.empty())
            throw Error(Errc::not_found, "No block device has filesystem UUID " + uuid +
                                             "; attach its disk or loop image first.");
        if (found.size() > 1)
            throw Error(Errc::conflict, "Filesystem UUID " + uuid + " is on several devices (" + list(found) +
                                            "), so which one is the tenant's is unknown; detach the copies.");
        chosen = found.front();
        // A fresh probe of the chosen device, so what we mount is what is on the medium now.
        r = probe(chosen->device);
        if (lower(r->uuid) != want)
            throw Error(Errc::failed, carries(chosen->device, *r, uuid) + "; refusing to mount it as this filesystem.");
    }

    // 2. The target: created if missing; idempotent when this device is already there.
    make_dirs(target, 0755);
    const auto canon_target = detail::canonical_path(target);
    if (!canon_target) throw Error(Errc::failed, "Mount point " + target + " vanished after it was created.");
    {
        detail::MntTable table = detail::read_mountinfo();
        if (libmnt_fs* fs = mount_at(table.get(), *canon_target)) {
            if (mnt_fs_get_devno(fs) == chosen->devno) return;
            const char* src = mnt_fs_get_source(fs);
            throw Error(Errc::conflict, *canon_target + " already has " + (src ? src : "something") +
                                            " mounted on it; unmount it first.");
        }
    }
    // The same filesystem mounted in two places is almost always a mistake in the caller.
    if (auto mounts = detail::mounts_of({chosen->devno}); !mounts.empty())
        throw Error(Errc::conflict, chosen->device + " (UUID " + uuid + ") is already mounted at " +
                                        mounts.front().second + "; unmount it there first.");

    // 3. Mount.
    detail::MntContext cxt = new_context();
    if (mnt_context_set_source(cxt.get(), chosen->device.c_str()) < 0 ||
        mnt_context_set_target(cxt.get(), canon_target->c_str()) < 0 ||
        mnt_context_set_fstype(cxt.get(), r->type.c_str()) < 0 || mnt_context_set_options(cxt.get(), options.c_str()) < 0)
        throw Error(Errc::failed, "Failed to set up the mount of " + chosen->device + " at " + *canon_target);
    const int rc = mnt_context_mount(cxt.get());
    if (rc == 0 && mnt_context_get_status(cxt.get()) == 1) return;
    // The kernel explains a refused mount only in its log; libmount's sentence is generic.
    throw Error(Errc::failed, "Failed to mount " + chosen->device + " (UUID " + uuid + ", " + r->type + ", options '" +
                                  options + "') at " + *canon_target + ": " + mount_error(cxt.get(), rc) +
                                  "; the kernel log (journalctl -k) has the reason.");
}

std::optional<std::string> find_filesystem(const std::string& uuid) {
    if (!detail::is_uuid(uuid))
        throw Error(Errc::invalid, "'" + uuid + "' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).");
    const std::vector<Found> found = devices_with_uuid(lower(uuid));
    if (found.empty()) return std::nullopt;
    if (found.size() > 1)
        throw Error(Errc::conflict, "Filesystem UUID " + uuid + " is on several devices (" + list(found) +
                                        "), so which one is the tenant's is unknown; detach the copies.");
    return found.front().device;
}

void unmount(const std::string& target) {
    const auto canon = detail::canonical_path(target);
    if (!canon) return;  // no such path: nothing mounted there
    {
        detail::MntTable table = detail::read_mountinfo();
        if (!mount_at(table.get(), *canon)) return;
    }
    detail::MntContext cxt = new_context();
    if (mnt_context_set_target(cxt.get(), canon->c_str()) < 0)
        throw Error(Errc::failed, "Failed to set up the unmount of " + *canon);
    const int rc = mnt_context_umount(cxt.get());
    if (rc == 0 && mnt_context_get_status(cxt.get()) == 1) return;
    const int err = mnt_context_syscall_called(cxt.get()) ? mnt_context_get_syscall_errno(cxt.get()) : 0;
    if (err == EINVAL) return;  // unmounted by someone else since we looked
    if (err == EBUSY)
        throw Error(Errc::failed, *canon + " is busy: processes still use files on it (see `fuser -vm " + *canon +
                                      "`); stop them and unmount again.");
    throw Error(Errc::failed, "Failed to unmount " + *canon + ": " + mount_error(cxt.get(), rc));
}

std::optional<std::string> mounted_source(const std::string& target) {
    const auto canon = detail::canonical_path(target);
    if (!canon) return std::nullopt;
    detail::MntTable table = detail::read_mountinfo();
    libmnt_fs* fs = mount_at(table.get(), *canon);
    if (!fs) return std::nullopt;
    const char* src = mnt_fs_get_source(fs);
    return std::string(src ? src : "");
}

std::vector<std::string> mounts_below(const std::string& dir) {
    std::vector<std::string> out;
    const auto canon = detail::canonical_path(dir);
    if (!canon) return out;
    const std::string prefix = *canon + "/";
    detail::MntTable table = detail::read_mountinfo();
    detail::MntIter it(mnt_new_iter(MNT_ITER_FORWARD));
    if (!it) throw Error(Errc::failed, "Failed to iterate the mount table (out of memory)");
    libmnt_fs* fs = nullptr;
    while (mnt_table_next_fs(table.get(), it.get(), &fs) == 0) {
        const char* t = mnt_fs_get_target(fs);
        if (!t) continue;
        std::string target(t);
        if (target.size() > prefix.size() && target.compare(0, prefix.size(), prefix) == 0 &&
            target.find('/', prefix.size()) == std::string::npos)
            out.push_back(target);
    }
    return out;
}

DiskStats disk_stats(const std::string& mountpoint) {
    struct statvfs v {};
    if (::statvfs(mountpoint.c_str(), &v) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            throw Error(Errc::not_found, "Mount point " + mountpoint + " does not exist.");
        throw_errno(errno, "Failed to read the disk usage of " + mountpoint + " (statvfs)");
    }
    const uint64_t unit = v.f_frsize ? v.f_frsize : v.f_bsize;
    DiskStats s;
    s.bytes_total = uint64_t(v.f_blocks) * unit;
    s.bytes_used = uint64_t(v.f_blocks - v.f_bfree) * unit;
    s.bytes_available = uint64_t(v.f_bavail) * unit;
    s.inodes_total = v.f_files;
    s.inodes_used = v.f_files - v.f_ffree;
    s.inodes_available = v.f_favail;
    return s;
}

}  // namespace hostd::storage

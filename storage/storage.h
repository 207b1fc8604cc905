// Block devices for tenants: loop images, safety probe, mkfs, mount by UUID, disk stats.
// Plain data + functions. Every function throws hostd::Error (base/error.h) with a
// sentence naming the device/path and what to do; nothing here logs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/exec.h"

namespace hostd::storage {

// ---- pure helpers (no root, no I/O) ----

// Filesystem label for a tenant, within the filesystem's limit (ext4: 16 bytes, xfs: 12).
// Rule: "hd-" + name when it fits; otherwise "hd-" + the first (limit-3-5) characters of the
// name + "-" + 4 hex chars of a hash of the full name, so long names stay distinguishable.
// Labels are for humans and `blkid -L`; identity is the filesystem UUID.
std::string label_for(const std::string& tenant, const std::string& fstype = "ext4");

// A random RFC 4122 version-4 UUID, lower case ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx").
std::string new_uuid();

// ---- loop backend ----

// Creates a sparse file of size_bytes (mode 0600, O_EXCL: fails with Errc::conflict if it exists).
void create_sparse_file(const std::string& path, uint64_t size_bytes);

// Attaches path to a free loop device and returns "/dev/loopN". Works where only some
// /dev/loopN nodes exist (a container's /dev): scans existing nodes and binds the first free
// one (LOOP_CONFIGURE, retrying on EBUSY races), asking /dev/loop-control for a new one
// only when no existing node is free. Read-write, no autoclear, and direct I/O where the
// image's filesystem allows it (buffered I/O otherwise), so a block the tenant's filesystem
// caches is not cached a second time as a page of the image.
std::string loop_attach(const std::string& path);

// Detaches a loop device (LOOP_CLR_FD). A device that is already free is fine.
void loop_detach(const std::string& device);

// The loop device currently backed by path (compares device+inode of the backing file,
// from /sys/block/loopN/loop/backing_file or LOOP_GET_STATUS64), if any.
std::optional<std::string> loop_find(const std::string& path);

// ---- probe and format ----

struct ProbeResult {
    bool has_signature = false;   // any filesystem/raid/crypto/swap/LVM superblock
    std::string type;             // e.g. "ext4", "swap", "LVM2_member", "crypto_LUKS"
    std::string uuid;
    std::string label;
    bool has_partition_table = false;
    std::string partition_table_type;  // "dos", "gpt"
};

// libblkid low-level probe (superblocks + partitions) of a block device.
ProbeResult probe(const std::string& device);

// What a device check found: the canonical path, what identifies the disk, and, when force let
// it pass, what formatting will destroy.
struct DeviceCheck {
    std::string path;
    std::string signature;  // "an ext4 signature (UUID …, label '…')"; empty: none libblkid knows
    std::string data;       // no signature but not zeros: "non-zero data at offset 12M"; empty: zeros
    std::string fs_uuid;    // the UUID of the filesystem (or other signature) on it, if any
    std::string device_id;  // stable_id(path)
    // What formatting destroys, for the reply of a forced create ("" for a blank device).
    std::string destroys() const { return !signature.empty() ? signature : data; }
};

// The regions of a device of this size the blank check reads: the first and the last MiB, and 64
// pieces of 64 KiB evenly spread between them; (offset, length) in order of offset, within the
// device, 6 MiB at most whatever its size.
std::vector<std::pair<uint64_t, uint64_t>> blank_check_regions(uint64_t size);

// The safety matrix for a device hostd is about to format. Symlinks (/dev/disk/by-id/…)
// resolve first. Refuses (Errc::not_found / Errc::refused, the reason in the message) a path
// that does not exist or is not a block device; the disk holding "/" (or anything on it, or
// what "/" is stacked on); a device that is mounted, or a partition of it is; one with
// partitions or a partition table; one held by device-mapper/md (sysfs holders) or claimed by
// the kernel in any namespace (exclusive open); one with any signature (filesystem, swap, LVM,
// RAID, LUKS); and one with no signature whose contents are not zeros where the check reads
// them (blank_check_regions, read past the page cache): data libblkid does not recognise, such
// as a plain dm-crypt volume, an archive written to the raw device, or a disk someone ran
// wipefs on. force lets only those last two pass (the result says what is there); it never
// overrides the other reasons.
DeviceCheck check_device(const std::string& device, bool force = false);
// check_device(device).path: the device must be blank.
std::string check_blank_device(const std::string& device);

// Destroys every signature on an unmounted, unheld device (wipefs --all) after the same
// checks as check_device(device, force=true). For an operator's explicit force.
void erase_signatures(const std::string& device);

// Gives back a device hostd used, blank as hostd's check sees it: every signature erased
// (wipefs --all), then every block zeroed where the device can do that without writing each
// block (write-zeroes/unmap: loop images, thin volumes, most SSDs and virtual disks), else the
// regions of blank_check_regions zeroed, so hostd's own leftovers never make it look like
// somebody's data. Same checks first as erase_signatures.
void wipe_device(const std::string& device);

// What names a disk across a reboot that renames it (/dev/sdb → /dev/sdc): the
// /dev/disk/by-id link to it where udev made one (wwn-… first), else its identity from sysfs:
// "dm-uuid:…" (device-mapper), "wwid:…" (WWN/EUI of SCSI and NVMe), "serial:…" (virtio, NVMe),
// with "-partN" for a partition. "" when it has none: loop devices, disks without a serial.
std::string stable_id(const std::string& device);

// Size of a block device in bytes (BLKGETSIZE64).
uint64_t device_size(const std::string& device);

// mkfs.<fstype> with the given label and UUID (we choose the UUID so it is recorded before
// the disk is written). ext4: `mkfs.ext4 -q -F -L label -U uuid -m 0 -E lazy_itable_init=1,lazy_journal_init=1 dev`.
// Then probes the device and throws unless the UUID reads back. run starts mkfs (base/exec.h).
void make_filesystem(const std::string& device, const std::string& fstype, const std::string& label,
                     const std::string& uuid, const Runner& run = run_checked);

// A new label on the unmounted filesystem on device (e2label / xfs_admin -L), only if it carries
// the filesystem with uuid: a warm-pool disk becomes a tenant's. Labels are for humans.
void set_label(const std::string& device, const std::string& fstype, const std::string& label, const std::string& uuid);

// ---- grow ----

// Grows a loop image file to size_bytes and tells its loop device (LOOP_SET_CAPACITY), so
// the block device grows with it. Shrinking: Errc::refused.
void grow_image(const std::string& path, uint64_t size_bytes);

// Grows the mounted filesystem to fill its device, online: resize2fs (ext4) or xfs_growfs (xfs).
// The kernel grows a mounted ext4 only for a caller with CAP_SYS_RESOURCE: without it,
// Errc::unavailable saying so (then grow_filesystem_offline is the way).
void grow_filesystem(const std::string& device, const std::string& mountpoint, const std::string& fstype);
// Grows an unmounted ext4 (e2fsck -f -p, then resize2fs). xfs grows only mounted.
void grow_filesystem_offline(const std::string& device, const std::string& fstype);

// ---- mounts (libmount) ----

// Mounts the filesystem with this UUID at target (created 0755 if missing) with options
// (e.g. "nodev,nosuid,noatime"). The device is found by UUID via libblkid, never by label.
// If expected_device is given, the device found for the UUID must be that device.
void mount_by_uuid(const std::string& uuid, const std::string& target, const std::string& options,
                   const std::optional<std::string>& expected_device = std::nullopt);

// The one block device that carries the filesystem with this UUID now (a libblkid scan of every
// device, as mount_by_uuid does), whatever the kernel named it; nullopt if none does;
// Errc::conflict naming them if several do (a copied image).
std::optional<std::string> find_filesystem(const std::string& uuid);

// Unmounts target (libmount). Not mounted is fine. EBUSY → Errc::failed naming the target.
void unmount(const std::string& target);

// Mount points directly below dir (e.g. /srv/hostd/<tenant>), from /proc/self/mountinfo.
std::vector<std::string> mounts_below(const std::string& dir);

// Whether target is a mount point right now (/proc/self/mountinfo via libmount), and the source device.
std::optional<std::string> mounted_source(const std::string& target);

// ---- stats ----

struct DiskStats {
    uint64_t bytes_total = 0, bytes_used = 0, bytes_available = 0;
    uint64_t inodes_total = 0, inodes_used = 0, inodes_available = 0;
};
DiskStats disk_stats(const std::string& mountpoint);  // statvfs

// A preallocated file (fallocate, root-owned 0600) of exactly bytes: space held back that
// can be handed to the tenant in an emergency. Idempotent; Errc::unavailable if the
// filesystem has no room for it.
void ensure_reserve(const std::string& path, uint64_t bytes);
// Removes it; returns the bytes it held (0 if there was none).
uint64_t release_reserve(const std::string& path);

}  // namespace hostd::storage

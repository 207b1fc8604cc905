// What is on a device (libblkid), whether it is safe to format, and formatting it.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>

#include "base/error.h"
#include "base/exec.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/size.h"
#include "base/strings.h"
#include "storage/handles.h"
#include "storage/storage.h"

namespace hostd::storage {

namespace detail {

void drop_cached_blocks(int block_device_fd) noexcept { (void)::ioctl(block_device_fd, BLKFLSBUF, 0); }

}  // namespace detail

namespace {

std::string devno_name(dev_t d) { return std::to_string(major(d)) + ":" + std::to_string(minor(d)); }

std::string first_line(const std::string& path) {
    try {
        std::string s = read_file(path);
        if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
        return s;
    } catch (const Error&) {
        return {};
    }
}

// Entries of a sysfs directory (names only); empty if it does not exist.
std::vector<std::string> sysfs_entries(const std::string& dir_path) {
    std::vector<std::string> names;
    detail::Dir dir(::opendir(dir_path.c_str()));
    if (!dir) return names;
    while (const dirent* e = ::readdir(dir.get())) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    return names;
}

// The partitions the kernel knows on a whole disk, from /sys/dev/block/MAJ:MIN/<part>/dev.
std::vector<dev_t> kernel_partitions(dev_t disk) {
    const std::string base = "/sys/dev/block/" + devno_name(disk) + "/";
    std::vector<dev_t> parts;
    for (const auto& name : sysfs_entries(base)) {
        if (!path_exists(base + name + "/partition")) continue;
        unsigned maj = 0, min = 0;
        if (std::sscanf(first_line(base + name + "/dev").c_str(), "%u:%u", &maj, &min) == 2)
            parts.push_back(makedev(maj, min));
    }
    return parts;
}

// What stacks on a device (device-mapper, md RAID, bcache), from sysfs "holders".
std::vector<std::string> holders(dev_t d) {
    return sysfs_entries("/sys/dev/block/" + devno_name(d) + "/holders");
}

// Looks a program up where exec()'s clean PATH will, so a missing tool is reported as
// missing (Errc::unavailable) rather than as a failed run.
bool program_installed(const std::string& name) {
    for (const char* dir : {"/usr/sbin", "/usr/bin", "/sbin", "/bin"})
        if (::access((std::string(dir) + "/" + name).c_str(), X_OK) == 0) return true;
    return false;
}

// The whole disk a partition belongs to (the device itself when it is not a partition):
// /sys/dev/block/MAJ:MIN resolves into the parent disk's directory for a partition.
dev_t whole_disk(dev_t d) {
    const std::string sys = "/sys/dev/block/" + devno_name(d);
    if (!path_exists(sys + "/partition")) return d;
    auto canon = detail::canonical_path(sys);
    if (!canon) return d;
    unsigned maj = 0, min = 0;
    const std::string parent = canon->substr(0, canon->rfind('/'));
    if (std::sscanf(first_line(parent + "/dev").c_str(), "%u:%u", &maj, &min) == 2) return makedev(maj, min);
    return d;
}

// What "/" lives on: its device, the whole disk of it, and (recursively) what that is stacked
// on (device-mapper/md "slaves"). "/" on an overlay or a network filesystem has no device of
// its own; then the mount table's source for "/" is used if it is a device node.
std::set<dev_t> root_devices() {
    std::set<dev_t> out;
    dev_t root = 0;
    struct stat st {};
    if (::stat("/", &st) == 0 && major(st.st_dev) != 0) root = st.st_dev;
    if (root == 0) {
        detail::MntTable table = detail::read_mountinfo();
        if (libmnt_fs* fs = mnt_table_find_target(table.get(), "/", MNT_ITER_BACKWARD)) {
            struct stat src {};
            const char* source = mnt_fs_get_source(fs);
            if (source && ::stat(source, &src) == 0 && S_ISBLK(src.st_mode)) root = src.st_rdev;
        }
    }
    std::vector<dev_t> todo;
    if (root != 0) todo.push_back(root);
    while (!todo.empty()) {
        const dev_t d = todo.back();
        todo.pop_back();
        if (!out.insert(d).second) continue;
        todo.push_back(whole_disk(d));
        const std::string slaves = "/sys/dev/block/" + devno_name(d) + "/slaves";
        for (const auto& name : sysfs_entries(slaves)) {
            unsigned maj = 0, min = 0;
            if (std::sscanf(first_line(slaves + "/" + name + "/dev").c_str(), "%u:%u", &maj, &min) == 2)
                todo.push_back(makedev(maj, min));
        }
    }
    return out;
}

std::string describe(const ProbeResult& r) {
    const bool vowel = !r.type.empty() && std::string("aeiouAEIOU").find(r.type[0]) != std::string::npos;
    std::string s = (vowel ? "an " : "a ") + r.type + " signature";
    if (!r.uuid.empty()) s += " (UUID " + r.uuid + (r.label.empty() ? "" : ", label '" + r.label + "'") + ")";
    return s;
}

const std::string kWipeAdvice =
    "; hostd never formats a device that holds anything. If its contents are not needed, "
    "erase them (wipefs --all) and try again.";

// ---- contents: what libblkid does not recognise ----

constexpr uint64_t kEdge = 1ull << 20;    // the first and the last MiB
constexpr uint64_t kPiece = 64ull << 10;  // each sample between them
constexpr uint64_t kPieces = 64;
constexpr uint64_t kAlign = 4096;         // O_DIRECT: offsets, lengths and memory, for any logical block size up to 4K

uint64_t align_down(uint64_t v) { return v / kAlign * kAlign; }

struct FreeDeleter {
    void operator()(void* p) const noexcept { std::free(p); }
};

// The offset of the first non-zero byte the blank check reads on this open device, or nullopt
// if it reads only zeros. Read with O_DIRECT (left set on fd), so no cached block can stand in
// for the medium (falls back to buffered reads where the device refuses O_DIRECT; the caller
// has dropped its cached blocks then).
std::optional<uint64_t> first_nonzero(int fd, uint64_t size, const std::string& dev) {
    const int flags = ::fcntl(fd, F_GETFL);
    bool direct = flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_DIRECT) == 0;
    std::unique_ptr<char, FreeDeleter> buf(static_cast<char*>(std::aligned_alloc(kAlign, kEdge)));
    if (!buf) throw Error(Errc::failed, "Out of memory reading " + dev);
    static const char zeros[kAlign] = {};
    for (const auto& [offset, length] : blank_check_regions(size)) {
        uint64_t done = 0;
        while (done < length) {
            const uint64_t want = std::min<uint64_t>((length - done + kAlign - 1) / kAlign * kAlign, kEdge);
            const ssize_t n = ::pread(fd, buf.get(), want, static_cast<off_t>(offset + done));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EINVAL && direct) {
                // A logical block larger than 4K: read through the (dropped) cache instead.
                direct = false;
                if (::fcntl(fd, F_SETFL, flags) < 0) throw_errno(errno, "Failed to read " + dev);
                continue;
            }
            if (n < 0) throw_errno(errno, "Failed to read " + dev + " at offset " + std::to_string(offset + done));
            if (n == 0) break;  // the end of the device
            const uint64_t got = std::min<uint64_t>(static_cast<uint64_t>(n), length - done);
            for (uint64_t at = 0; at < got; at += kAlign) {
                const uint64_t chunk = std::min(kAlign, got - at);
                if (std::memcmp(buf.get() + at, zeros, chunk) == 0) continue;
                const char* p = buf.get() + at;
                while (*p == 0) ++p;
                return offset + done + at + static_cast<uint64_t>(p - (buf.get() + at));
            }
            done += got;
        }
    }
    return std::nullopt;
}

// An offset as exactly as it is round: "12M", "1K", "262140K", "1234567".
std::string offset_text(uint64_t at) {
    if (at % (1ull << 20) == 0) return format_size(at);
    if (at % 1024 == 0) return std::to_string(at / 1024) + "K";
    return std::to_string(at);
}

// One sysfs attribute, trimmed; "" when missing or blank.
std::string attribute(const std::string& path) {
    std::string s = first_line(path);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
    size_t start = 0;
    while (start < s.size() && (s[start] == ' ' || s[start] == '\t')) ++start;
    return s.substr(start);
}

// The disk's own identity from sysfs (see stable_id), for a whole disk.
std::string sysfs_identity(dev_t disk) {
    const std::string sys = "/sys/dev/block/" + devno_name(disk) + "/";
    for (const auto& [file, prefix] : std::vector<std::pair<const char*, const char*>>{
             {"dm/uuid", "dm-uuid:"}, {"wwid", "wwid:"}, {"device/wwid", "wwid:"}, {"serial", "serial:"},
             {"device/serial", "serial:"}})
        if (std::string v = attribute(sys + file); !v.empty()) return prefix + v;
    return {};
}

}  // namespace

std::vector<std::pair<uint64_t, uint64_t>> blank_check_regions(uint64_t size) {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    auto add = [&](uint64_t offset, uint64_t length) {
        if (offset >= size) return;
        out.emplace_back(offset, std::min(length, size - offset));
    };
    add(0, kEdge);
    // The middle of each of 64 equal stretches: a run of data longer than a 64th of the device
    // always covers one of them.
    for (uint64_t i = 0; i < kPieces; ++i) add(align_down(size / (2 * kPieces) * (2 * i + 1)), kPiece);
    const uint64_t tail = size > kEdge ? align_down(size - kEdge) : 0;
    add(tail, size - tail);
    std::sort(out.begin(), out.end());
    return out;
}

ProbeResult probe(const std::string& device) {
    errno = 0;
    detail::BlkidProbe pr(blkid_new_probe_from_filename(device.c_str()));
    if (!pr) {
        const int err = errno;
        if (err == ENOENT || err == ENOTDIR) throw Error(Errc::not_found, "Device " + device + " does not exist.");
        throw_errno(err != 0 ? err : EIO, "Failed to open " + device + " for probing (libblkid)");
    }
    blkid_probe_enable_superblocks(pr.get(), 1);
    // BADCSUM: a filesystem with a damaged superblock checksum is still somebody's data.
    blkid_probe_set_superblocks_flags(pr.get(), BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID | BLKID_SUBLKS_LABEL |
                                                    BLKID_SUBLKS_BADCSUM);
    blkid_probe_enable_partitions(pr.get(), 1);

    ProbeResult r;
    const int rc = blkid_do_safeprobe(pr.get());
    if (rc == -1) throw Error(Errc::failed, "Failed to probe " + device + " with libblkid (read error?).");
    if (rc == -2) {
        // Several signatures that contradict each other: certainly not blank, type unknown.
        r.has_signature = true;
        return r;
    }
    if (rc == 1) return r;  // nothing found

    auto value = [&](const char* name) -> std::string {
        const char* data = nullptr;
        if (blkid_probe_lookup_value(pr.get(), name, &data, nullptr) == 0 && data) return data;
        return {};
    };
    r.type = value("TYPE");
    r.has_signature = !r.type.empty();
    r.uuid = value("UUID");
    r.label = value("LABEL");
    r.partition_table_type = value("PTTYPE");
    r.has_partition_table = !r.partition_table_type.empty();
    return r;
}

namespace {

// check_device, with the contents sampled or not: formatting (make_filesystem) and erasing
// signatures recheck everything but the contents, which the claim sampled moments before and
// which a forced create formats over.
DeviceCheck check(const std::string& device, bool force, bool sample_contents) {
    const auto canon = detail::canonical_path(device);
    if (!canon) throw Error(Errc::not_found, "Device " + device + " does not exist.");
    struct stat st {};
    if (::stat(canon->c_str(), &st) < 0) throw_errno(errno, "Failed to stat " + *canon);
    if (!S_ISBLK(st.st_mode))
        throw Error(Errc::refused, *canon + " is not a block device; hostd formats only block devices.");

    const std::vector<dev_t> parts = kernel_partitions(st.st_rdev);
    std::vector<dev_t> all = parts;
    all.push_back(st.st_rdev);
    // First, so the reason is the one that matters most (the root disk is also "mounted").
    const std::set<dev_t> root = root_devices();
    if (std::any_of(all.begin(), all.end(), [&](dev_t d) { return root.count(d) > 0; }) ||
        root.count(whole_disk(st.st_rdev)) > 0)
        throw Error(Errc::refused, *canon + " is (or is on) the disk holding the root filesystem /; "
                                            "hostd never formats the system disk.");
    if (auto mounts = detail::mounts_of(all); !mounts.empty()) {
        const bool whole = mounts.front().first == st.st_rdev;
        throw Error(Errc::refused, *canon + (whole ? "" : " has a partition that") + " is mounted at " +
                                       mounts.front().second + "; hostd never formats a device in use.");
    }
    if (!parts.empty())
        throw Error(Errc::refused, *canon + " has " + std::to_string(parts.size()) +
                                       " partition(s) known to the kernel" + kWipeAdvice);
    for (dev_t d : all)
        if (auto h = holders(d); !h.empty())
            throw Error(Errc::refused, *canon + " is held by " + h.front() +
                                           " (device-mapper, RAID or cache); hostd never formats a device in use.");

    // An exclusive open fails while the kernel has the device claimed by anyone: a mount in
    // another mount namespace, swap, device-mapper, md. Held until the probe is done so no
    // one can mount it in between.
    // No fork may copy the claim: a child would hold it past our close, and the mkfs that
    // follows would find the device busy.
    std::unique_lock no_forks(fd_inheritance_lock());
    Fd claim(::open(canon->c_str(), O_RDONLY | O_EXCL | O_CLOEXEC));
    if (!claim) {
        if (errno == EBUSY)
            throw Error(Errc::refused, *canon + " is in use by the kernel (mounted elsewhere, swap, or held by "
                                                "device-mapper/RAID); hostd never formats a device in use.");
        throw_errno(errno, "Failed to open " + *canon);
    }
    detail::drop_cached_blocks(claim.get());

    const ProbeResult r = probe(*canon);
    // A partition table is a map of somebody's data; force does not override it.
    if (r.has_partition_table)
        throw Error(Errc::refused, *canon + " has a partition table (" + r.partition_table_type + ")" + kWipeAdvice);
    DeviceCheck out{.path = *canon, .fs_uuid = r.uuid, .device_id = stable_id(*canon)};
    if (r.has_signature) {
        out.signature = r.type.empty() ? "several conflicting signatures" : describe(r);
        if (!force) throw Error(Errc::refused, *canon + " has " + out.signature + kWipeAdvice);
        return out;
    }
    if (!sample_contents) return out;
    uint64_t size = 0;
    if (::ioctl(claim.get(), BLKGETSIZE64, &size) < 0) throw_errno(errno, "Failed to read the size of " + *canon);
    if (auto at = first_nonzero(claim.get(), size, *canon)) {
        out.data = "non-zero data at offset " + offset_text(*at) + " (no signature libblkid knows)";
        if (!force)
            throw Error(Errc::refused, "Non-zero data at offset " + offset_text(*at) + " of " + *canon +
                                           ": it may hold data libblkid cannot recognise (an encrypted volume, an "
                                           "archive, a disk someone ran wipefs on); create with force to format it "
                                           "anyway, or zero it first (blkdiscard -z " + *canon + ") if its contents "
                                           "are not needed.");
    }
    return out;
}

}  // namespace

DeviceCheck check_device(const std::string& device, bool force) { return check(device, force, /*sample_contents=*/true); }

std::string check_blank_device(const std::string& device) { return check_device(device).path; }

void erase_signatures(const std::string& device) {
    const DeviceCheck c = check(device, /*force=*/true, /*sample_contents=*/false);
    if (c.signature.empty()) return;
    exec_checked({.argv = {"wipefs", "--all", "--quiet", c.path}}, "Failed to erase the signatures on " + c.path);
    Fd fd(::open(c.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd) detail::drop_cached_blocks(fd.get());
}

void wipe_device(const std::string& device) {
    erase_signatures(device);  // and every check: not mounted, not held, not the system disk
    const std::string dev = detail::canonical_path(device).value_or(device);
    std::unique_lock no_forks(fd_inheritance_lock());
    // Exclusive, so nothing mounts it while it is zeroed.
    Fd fd(::open(dev.c_str(), O_WRONLY | O_EXCL | O_CLOEXEC));
    if (!fd) throw_errno(errno, "Failed to open " + dev + " to zero it");
    uint64_t size = 0;
    if (::ioctl(fd.get(), BLKGETSIZE64, &size) < 0) throw_errno(errno, "Failed to read the size of " + dev);
    // PUNCH_HOLE on a block device never falls back to writing zeros block by block: it either
    // is quick (write-zeroes/unmap) or fails, and then only what the blank check reads is zeroed.
    if (size > 0 && ::fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(size)) < 0) {
        static const std::string zeros(kEdge, '\0');
        for (const auto& [offset, length] : blank_check_regions(size))
            for (uint64_t done = 0; done < length;) {
                const ssize_t n = ::pwrite(fd.get(), zeros.data(), std::min<uint64_t>(length - done, kEdge),
                                           static_cast<off_t>(offset + done));
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) throw_errno(n < 0 ? errno : EIO, "Failed to zero " + dev + " at offset " + std::to_string(offset + done));
                done += static_cast<uint64_t>(n);
            }
        if (::fsync(fd.get()) < 0) throw_errno(errno, "Failed to flush the zeros written to " + dev);
    }
    detail::drop_cached_blocks(fd.get());
}

std::string stable_id(const std::string& device) {
    const auto canon = detail::canonical_path(device);
    const auto devno = canon ? detail::block_devno(*canon) : std::nullopt;
    if (!devno) return {};
    // udev's links, where udev runs: the name an operator sees and can put in storage.devices.
    const std::string by_id = "/dev/disk/by-id";
    std::vector<std::string> links = sysfs_entries(by_id);
    std::sort(links.begin(), links.end(), [](const std::string& a, const std::string& b) {
        const bool wa = a.starts_with("wwn-"), wb = b.starts_with("wwn-");
        return wa != wb ? wa : a < b;
    });
    for (const auto& name : links) {
        std::optional<std::string> target;
        try {
            target = detail::canonical_path(by_id + "/" + name);
        } catch (const Error&) {
        }
        if (target && detail::block_devno(*target) == devno) return by_id + "/" + name;
    }
    // Without udev (a container): the kernel's own attributes of the whole disk.
    const dev_t disk = whole_disk(*devno);
    std::string id = sysfs_identity(disk);
    if (id.empty() || disk == *devno) return id;
    const std::string part = attribute("/sys/dev/block/" + devno_name(*devno) + "/partition");
    return part.empty() ? std::string() : id + "-part" + part;
}

uint64_t device_size(const std::string& device) {
    Fd fd(::open(device.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_errno(errno, "Failed to open " + device);
    uint64_t bytes = 0;
    if (::ioctl(fd.get(), BLKGETSIZE64, &bytes) < 0) throw_errno(errno, "Failed to read the size of " + device);
    return bytes;
}

void make_filesystem(const std::string& device, const std::string& fstype, const std::string& label,
                     const std::string& uuid, const Runner& run) {
    const size_t limit = detail::label_limit(fstype);
    if (!detail::is_uuid(uuid))
        throw Error(Errc::invalid, "'" + uuid + "' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).");
    if (label.empty() || label.size() > limit)
        throw Error(Errc::invalid, "Label '" + label + "' does not fit " + fstype + " (1 to " + std::to_string(limit) +
                                       " bytes).");
    const std::string program = "mkfs." + fstype;
    if (!program_installed(program))
        throw Error(Errc::unavailable, program + " is not installed; install " +
                                           (fstype == "xfs" ? "xfsprogs" : "e2fsprogs") + " to use " + fstype + ".");

    // Checked here too, not only by the caller: formatting is the one step that cannot be undone.
    // Not the contents: the caller's check sampled them (a forced create formats over them), and
    // a new loop image is zeros by construction.
    const std::string dev = check(device, /*force=*/false, /*sample_contents=*/false).path;

    std::vector<std::string> argv;
    if (fstype == "ext4")
        argv = {program, "-q", "-F", "-L", label, "-U", uuid, "-m", "0", "-E",
                "lazy_itable_init=1,lazy_journal_init=1", dev};
    else
        argv = {program, "-q", "-f", "-L", label, "-m", "uuid=" + uuid, dev};
    run({.argv = argv}, "Failed to create an " + fstype + " filesystem on " + dev);

    {
        Fd fd(::open(dev.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd) detail::drop_cached_blocks(fd.get());
    }
    const ProbeResult r = probe(dev);
    if (r.type != fstype || lower(r.uuid) != lower(uuid))
        throw Error(Errc::failed, program + " ran on " + dev + " but the device reads back as " +
                                      (r.type.empty() ? "blank" : r.type) + " with UUID '" + r.uuid + "', not " + fstype +
                                      " with UUID " + uuid + "; check the device and its kernel log.");
}

void set_label(const std::string& device, const std::string& fstype, const std::string& label, const std::string& uuid) {
    const size_t limit = detail::label_limit(fstype);
    if (label.empty() || label.size() > limit)
        throw Error(Errc::invalid, "Label '" + label + "' does not fit " + fstype + " (1 to " + std::to_string(limit) +
                                       " bytes).");
    const ProbeResult r = probe(device);
    if (r.type != fstype || lower(r.uuid) != lower(uuid))
        throw Error(Errc::refused, device + " does not carry the " + fstype + " filesystem with UUID " + uuid +
                                       " (it reads as " + (r.type.empty() ? "blank" : r.type) + " '" + r.uuid +
                                       "'); its label is left alone.");
    const std::vector<std::string> argv =
        fstype == "ext4" ? std::vector<std::string>{"e2label", device, label} : std::vector<std::string>{"xfs_admin", "-L", label, device};
    exec_checked({.argv = argv}, "Failed to label the filesystem on " + device);
}

}  // namespace hostd::storage

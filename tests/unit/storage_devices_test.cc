// Storage against real kernel objects: sparse images, loop devices, mkfs, mounts.
// Suites ending in "Root" need root. Each test works in its own fresh directory under
// /var/tmp and touches only loop devices backed by its own images and mounts under that
// directory; a Scratch tears all of it down even when the test fails, and fails the test if
// anything is left behind.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>

#include "base/error.h"
#include "base/exec.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/size.h"
#include "storage/storage.h"

using namespace hostd;
using namespace hostd::storage;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

constexpr uint64_t MiB = 1024 * 1024;
const std::string kOptions = "nodev,nosuid,noatime";

std::optional<Error> error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e;
    }
    return std::nullopt;
}

bool have_program(const std::string& name) {
    for (const char* dir : {"/usr/sbin", "/usr/bin", "/sbin", "/bin"})
        if (::access((std::string(dir) + "/" + name).c_str(), X_OK) == 0) return true;
    return false;
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// Mount targets in this namespace at or below dir (octal escapes in mountinfo are rare enough
// for our own mkdtemp paths to ignore).
std::vector<std::string> mounts_under(const std::string& dir) {
    std::ifstream in("/proc/self/mountinfo");
    std::vector<std::string> found;
    for (std::string line; std::getline(in, line);) {
        std::istringstream fields(line);
        std::string id, parent, devno, root, target;
        fields >> id >> parent >> devno >> root >> target;
        if (target == dir || target.starts_with(dir + "/")) found.push_back(target);
    }
    return found;
}

// One test's private corner of the machine. Everything it creates lives under dir(); the
// destructor unmounts, detaches and removes it, and reports anything that would not go.
class Scratch {
public:
    Scratch() {
        char tmpl[] = "/var/tmp/hostd-storage-test.XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
        dir_ = tmpl;
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    ~Scratch() { cleanup(); }

    const std::string& dir() const { return dir_; }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }

    std::string image(const std::string& name, uint64_t size) {
        const std::string p = path(name);
        create_sparse_file(p, size);
        images_.push_back(p);
        return p;
    }
    // An image under our directory: whatever loop device it is bound to is ours.
    void adopt_image(const std::string& p) { images_.push_back(p); }

    std::string attach(const std::string& image_path) { return loop_attach(image_path); }
    std::string fresh_device(const std::string& name, uint64_t size = 64 * MiB) { return attach(image(name, size)); }

    // A device with an ext4 filesystem of a new UUID; returns {device, uuid}.
    std::pair<std::string, std::string> ext4_device(const std::string& name, uint64_t size = 64 * MiB) {
        const std::string dev = fresh_device(name, size);
        const std::string uuid = new_uuid();
        make_filesystem(dev, "ext4", label_for(name), uuid);
        return {dev, uuid};
    }

private:
    void cleanup() noexcept {
        // Mounts first, deepest first, so the devices under them can be detached.
        for (int round = 0; round < 3; ++round) {
            auto mounts = mounts_under(dir_);
            if (mounts.empty()) break;
            std::sort(mounts.rbegin(), mounts.rend());
            for (const auto& m : mounts) {
                try {
                    unmount(m);
                } catch (const std::exception& e) {
                    ADD_FAILURE() << "cleanup: " << e.what() << "; detaching it lazily";
                    ::umount2(m.c_str(), MNT_DETACH);
                }
            }
        }
        // Only devices bound to our own images: never one another process attached.
        for (const auto& img : images_) {
            for (int i = 0; i < 4; ++i) {
                try {
                    auto dev = loop_find(img);
                    if (!dev) break;
                    loop_detach(*dev);
                } catch (const std::exception& e) {
                    ADD_FAILURE() << "cleanup: " << e.what();
                    break;
                }
            }
        }
        bool leaked = false;
        if (auto m = mounts_under(dir_); !m.empty()) {
            ADD_FAILURE() << "left mounted: " << m.front();
            leaked = true;
        }
        if (!images_.empty()) {
            try {
                const auto r = exec({.argv = {"losetup", "-a"}});
                std::istringstream lines(r.out);
                for (std::string line; std::getline(lines, line);)
                    if (line.find(dir_) != std::string::npos) {
                        ADD_FAILURE() << "left attached: " << line;
                        leaked = true;
                    }
            } catch (const std::exception& e) {
                ADD_FAILURE() << "cleanup: losetup -a: " << e.what();
            }
        }
        // Never remove a tree with something still mounted in it.
        if (!leaked) {
            std::error_code ec;
            std::filesystem::remove_all(dir_, ec);
            if (ec) ADD_FAILURE() << "cleanup: removing " << dir_ << ": " << ec.message();
        }
    }

    std::string dir_;
    std::vector<std::string> images_;
};

class StorageRoot : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root: loop devices, mkfs and mounts";
        scratch_.emplace();
    }
    void TearDown() override { scratch_.reset(); }
    Scratch& s() { return *scratch_; }

private:
    std::optional<Scratch> scratch_;
};

using LoopRoot = StorageRoot;
using FilesystemRoot = StorageRoot;
using MountRoot = StorageRoot;
using BlankRoot = StorageRoot;

std::string sysfs_loop_attr(const std::string& dev, const std::string& attr) {
    const std::string name = dev.substr(dev.rfind('/') + 1);
    return trimmed(read_file("/sys/block/" + name + "/loop/" + attr));
}

// A DOS partition table with one Linux partition, written the way fdisk would.
void write_mbr(const std::string& dev) {
    unsigned char sector[512] = {};
    unsigned char* entry = sector + 446;
    entry[0] = 0x00;  // not bootable
    entry[4] = 0x83;  // Linux
    const uint32_t start = 2048, count = 4096;
    for (int i = 0; i < 4; ++i) {
        entry[8 + i] = static_cast<unsigned char>(start >> (8 * i));
        entry[12 + i] = static_cast<unsigned char>(count >> (8 * i));
    }
    sector[440] = 0x12;  // disk identifier
    sector[510] = 0x55;
    sector[511] = 0xaa;
    Fd fd(::open(dev.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd) << dev << ": " << std::strerror(errno);
    ASSERT_EQ(::pwrite(fd.get(), sector, sizeof sector, 0), ssize_t(sizeof sector));
    ASSERT_EQ(::fsync(fd.get()), 0);
}

}  // namespace

// ---- sparse files (no root needed) ----

TEST(SparseFile, IsSparseAndPrivate) {
    Scratch s;
    const std::string p = s.path("disk.img");
    create_sparse_file(p, 1024 * MiB);
    struct stat st {};
    ASSERT_EQ(::stat(p.c_str(), &st), 0);
    EXPECT_EQ(uint64_t(st.st_size), 1024 * MiB);
    EXPECT_LT(uint64_t(st.st_blocks) * 512, MiB) << "blocks were allocated";
    EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST(SparseFile, RefusesAnExistingPathAndLeavesItAlone) {
    Scratch s;
    const std::string p = s.path("disk.img");
    create_sparse_file(p, 8 * MiB);
    auto e = error_of([&] { create_sparse_file(p, 16 * MiB); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::conflict) << e->what();
    EXPECT_THAT(e->what(), HasSubstr(p));
    EXPECT_EQ(std::filesystem::file_size(p), 8 * MiB);
}

TEST(SparseFile, RefusesASizeOfZero) {
    Scratch s;
    auto e = error_of([&] { create_sparse_file(s.path("disk.img"), 0); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::invalid);
    EXPECT_FALSE(path_exists(s.path("disk.img")));
}

TEST(Filesystem, RejectsABadUuidLabelOrTypeBeforeTouchingTheDevice) {
    const std::string uuid = new_uuid();
    auto code = [](const std::function<void()>& f) { auto e = error_of(f); return e ? e->code() : Errc::failed; };
    EXPECT_EQ(code([&] { make_filesystem("/nonexistent", "ext4", "hd-x", "not-a-uuid"); }), Errc::invalid);
    EXPECT_EQ(code([&] { make_filesystem("/nonexistent", "ext4", "hd-seventeen-byte", uuid); }), Errc::invalid);
    EXPECT_EQ(code([&] { make_filesystem("/nonexistent", "xfs", "hd-thirteen-b", uuid); }), Errc::invalid);
    EXPECT_EQ(code([&] { make_filesystem("/nonexistent", "btrfs", "hd-x", uuid); }), Errc::invalid);
}

TEST(Blank, ReportsAMissingPath) {
    auto e = error_of([] { check_blank_device("/dev/hostd-no-such-device"); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::not_found);
    EXPECT_THAT(e->what(), HasSubstr("/dev/hostd-no-such-device"));
}

TEST(Blank, RefusesARegularFile) {
    Scratch s;
    const std::string p = s.path("disk.img");
    create_sparse_file(p, 8 * MiB);
    auto e = error_of([&] { check_blank_device(p); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::refused);
    EXPECT_THAT(e->what(), HasSubstr("not a block device"));
}

// ---- loop devices ----

TEST_F(LoopRoot, AttachesFindsAndDetachesALoopDevice) {
    const std::string img = s().image("disk.img", 64 * MiB);
    EXPECT_EQ(loop_find(img), std::nullopt);

    const std::string dev = s().attach(img);
    EXPECT_THAT(dev, StartsWith("/dev/loop"));
    EXPECT_EQ(loop_find(img), dev);
    EXPECT_EQ(sysfs_loop_attr(dev, "backing_file"), img);
    EXPECT_EQ(sysfs_loop_attr(dev, "partscan"), "0");
    EXPECT_EQ(sysfs_loop_attr(dev, "autoclear"), "0");
    // Direct I/O (no second copy of every block in the image's page cache) wherever the
    // image's filesystem can do it, as /var/tmp's can here.
    const int direct = ::open(img.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    EXPECT_EQ(sysfs_loop_attr(dev, "dio"), direct >= 0 ? "1" : "0");
    if (direct >= 0) ::close(direct);

    loop_detach(dev);
    EXPECT_EQ(loop_find(img), std::nullopt);
}

TEST_F(LoopRoot, FindsTheDeviceThroughAnotherPathToTheSameFile) {
    const std::string img = s().image("disk.img", 64 * MiB);
    const std::string link = s().path("link.img");
    ASSERT_EQ(::symlink(img.c_str(), link.c_str()), 0);
    const std::string dev = s().attach(link);
    EXPECT_EQ(loop_find(img), dev);
    EXPECT_EQ(loop_find(link), dev);
    EXPECT_EQ(sysfs_loop_attr(dev, "backing_file"), img);
}

TEST_F(LoopRoot, RefusesToAttachAnImageTwice) {
    const std::string img = s().image("disk.img", 64 * MiB);
    const std::string dev = s().attach(img);
    auto e = error_of([&] { s().attach(img); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::conflict) << e->what();
    EXPECT_THAT(e->what(), HasSubstr(dev));
}

TEST_F(LoopRoot, ReportsAMissingImage) {
    auto e = error_of([&] { s().attach(s().path("missing.img")); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::not_found);
    EXPECT_EQ(loop_find(s().path("missing.img")), std::nullopt);
}

TEST_F(LoopRoot, RefusesToDetachSomethingThatIsNotALoopDevice) {
    auto e = error_of([] { loop_detach("/dev/null"); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::invalid);
}

// ---- filesystems ----

TEST_F(FilesystemRoot, MakesAnExt4FilesystemWithTheChosenUuidAndLabel) {
    const std::string dev = s().fresh_device("disk.img");
    const std::string uuid = new_uuid();
    const std::string label = label_for("acme-corporation-production-01");
    make_filesystem(dev, "ext4", label, uuid);

    const ProbeResult r = probe(dev);
    EXPECT_TRUE(r.has_signature);
    EXPECT_EQ(r.type, "ext4");
    EXPECT_EQ(r.uuid, uuid);
    EXPECT_EQ(r.label, label);
    EXPECT_FALSE(r.has_partition_table);
}

TEST_F(FilesystemRoot, MakesAnXfsFilesystemWithTheChosenUuidAndLabel) {
    if (!have_program("mkfs.xfs")) GTEST_SKIP() << "mkfs.xfs (xfsprogs) is not installed";
    const std::string dev = s().fresh_device("disk.img", 512 * MiB);  // xfs needs at least 300 MiB
    const std::string uuid = new_uuid();
    const std::string label = label_for("acme-corporation-production-01", "xfs");
    make_filesystem(dev, "xfs", label, uuid);

    const ProbeResult r = probe(dev);
    EXPECT_EQ(r.type, "xfs");
    EXPECT_EQ(r.uuid, uuid);
    EXPECT_EQ(r.label, label);
}

TEST_F(FilesystemRoot, RefusesToFormatADeviceThatHasAFilesystem) {
    const auto [dev, uuid] = s().ext4_device("disk.img");
    auto e = error_of([&] { make_filesystem(dev, "ext4", "hd-other", new_uuid()); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::refused) << e->what();
    EXPECT_EQ(probe(dev).uuid, uuid) << "the first filesystem was touched";
}

TEST_F(FilesystemRoot, ProbesABlankDeviceAsEmpty) {
    const ProbeResult r = probe(s().fresh_device("disk.img"));
    EXPECT_FALSE(r.has_signature);
    EXPECT_FALSE(r.has_partition_table);
    EXPECT_EQ(r.type, "");
    EXPECT_EQ(r.uuid, "");
}

// ---- mounts ----

TEST_F(MountRoot, MountsByUuidWritesReportsUsageAndUnmounts) {
    const auto [dev, uuid] = s().ext4_device("disk.img", 128 * MiB);
    const std::string mnt = s().path("srv/acme");  // parent missing too: created

    mount_by_uuid(uuid, mnt, kOptions, dev);
    EXPECT_EQ(mounted_source(mnt), dev);
    struct statvfs v {};
    ASSERT_EQ(::statvfs(mnt.c_str(), &v), 0);
    EXPECT_TRUE(v.f_flag & ST_NODEV);
    EXPECT_TRUE(v.f_flag & ST_NOSUID);
    EXPECT_TRUE(v.f_flag & ST_NOATIME);
    struct stat st {};
    ASSERT_EQ(::stat(mnt.c_str(), &st), 0);

    const DiskStats before = disk_stats(mnt);
    EXPECT_GT(before.bytes_total, 100 * MiB);
    EXPECT_LE(before.bytes_total, 128 * MiB);
    EXPECT_LE(before.bytes_used + before.bytes_available, before.bytes_total);
    EXPECT_GT(before.inodes_total, 0u);
    EXPECT_GT(before.inodes_used, 0u);  // root directory, lost+found
    EXPECT_LE(before.inodes_available, before.inodes_total - before.inodes_used);

    write_file_atomic(mnt + "/hello.txt", std::string(10 * MiB, 'x'));
    EXPECT_EQ(read_file(mnt + "/hello.txt").size(), 10 * MiB);
    const DiskStats after = disk_stats(mnt);
    EXPECT_GE(after.bytes_used, before.bytes_used + 10 * MiB);
    EXPECT_GT(after.inodes_used, before.inodes_used);

    unmount(mnt);
    EXPECT_EQ(mounted_source(mnt), std::nullopt);
    EXPECT_FALSE(path_exists(mnt + "/hello.txt"));
    EXPECT_EQ(loop_find(s().path("disk.img")), dev) << "unmount must not detach the loop device";
    unmount(mnt);  // not mounted: fine

    // The data is on the filesystem, not in the mount point.
    mount_by_uuid(uuid, mnt, kOptions);
    EXPECT_EQ(read_file(mnt + "/hello.txt").size(), 10 * MiB);
}

TEST_F(MountRoot, FindsTheDeviceByUuidAlone) {
    const auto [dev, uuid] = s().ext4_device("disk.img");
    const std::string mnt = s().path("mnt");
    mount_by_uuid(uuid, mnt, kOptions);
    EXPECT_EQ(mounted_source(mnt), dev);
}

TEST_F(MountRoot, IsIdempotentWhenTheFilesystemIsAlreadyThere) {
    const auto [dev, uuid] = s().ext4_device("disk.img");
    const std::string mnt = s().path("mnt");
    mount_by_uuid(uuid, mnt, kOptions, dev);
    mount_by_uuid(uuid, mnt, kOptions, dev);
    EXPECT_EQ(mounts_under(mnt).size(), 1u);
}

TEST_F(MountRoot, RefusesAnExpectedDeviceThatCarriesAnotherFilesystem) {
    const auto [dev_a, uuid_a] = s().ext4_device("a.img");
    const auto [dev_b, uuid_b] = s().ext4_device("b.img");
    const std::string mnt = s().path("mnt");
    auto e = error_of([&] { mount_by_uuid(uuid_a, mnt, kOptions, dev_b); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::refused) << e->what();
    EXPECT_THAT(e->what(), HasSubstr(dev_a));
    EXPECT_EQ(mounted_source(mnt), std::nullopt);
}

TEST_F(MountRoot, ReportsAUuidThatNoDeviceHas) {
    s().ext4_device("disk.img");
    auto e = error_of([&] { mount_by_uuid(new_uuid(), s().path("mnt"), kOptions); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::not_found) << e->what();
}

TEST_F(MountRoot, RefusesToGuessBetweenTwoDevicesWithTheSameUuid) {
    const auto [dev_a, uuid] = s().ext4_device("a.img");
    const std::string copy = s().path("copy.img");
    exec_checked({.argv = {"cp", "--sparse=always", s().path("a.img"), copy}}, "copy image");
    s().adopt_image(copy);
    const std::string dev_b = s().attach(copy);
    const std::string mnt = s().path("mnt");

    auto e = error_of([&] { mount_by_uuid(uuid, mnt, kOptions); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::conflict) << e->what();
    EXPECT_THAT(e->what(), HasSubstr(dev_a));
    EXPECT_THAT(e->what(), HasSubstr(dev_b));

    mount_by_uuid(uuid, mnt, kOptions, dev_b);  // told which one: fine
    EXPECT_EQ(mounted_source(mnt), dev_b);
}

TEST_F(MountRoot, RefusesATargetThatHasAnotherFilesystemMounted) {
    const auto [dev_a, uuid_a] = s().ext4_device("a.img");
    const auto [dev_b, uuid_b] = s().ext4_device("b.img");
    const std::string mnt = s().path("mnt");
    mount_by_uuid(uuid_a, mnt, kOptions);
    auto e = error_of([&] { mount_by_uuid(uuid_b, mnt, kOptions); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::conflict) << e->what();
    EXPECT_EQ(mounted_source(mnt), dev_a);
}

TEST_F(MountRoot, ReportsABusyMountAndUnmountsOnceItIsFree) {
    const auto [dev, uuid] = s().ext4_device("disk.img");
    const std::string mnt = s().path("mnt");
    mount_by_uuid(uuid, mnt, kOptions);
    {
        Fd open_file(::open((mnt + "/held").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
        ASSERT_TRUE(open_file);
        auto e = error_of([&] { unmount(mnt); });
        ASSERT_TRUE(e);
        EXPECT_EQ(e->code(), Errc::failed);
        EXPECT_THAT(e->what(), HasSubstr("busy"));
        EXPECT_THAT(e->what(), HasSubstr(mnt));
        EXPECT_EQ(mounted_source(mnt), dev);
    }
    unmount(mnt);
    EXPECT_EQ(mounted_source(mnt), std::nullopt);
}

TEST_F(MountRoot, SaysWhyTheKernelRefusedTheMount) {
    const auto [dev, uuid] = s().ext4_device("disk.img");
    const std::string mnt = s().path("mnt");
    auto e = error_of([&] { mount_by_uuid(uuid, mnt, "nodev,no_such_option=1", dev); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::failed);
    EXPECT_THAT(e->what(), HasSubstr(dev));
    EXPECT_THAT(e->what(), HasSubstr(mnt));
    EXPECT_THAT(e->what(), HasSubstr("no_such_option"));
    EXPECT_EQ(mounted_source(mnt), std::nullopt);
}

TEST_F(MountRoot, RefusesToDetachAMountedLoopDevice) {
    const auto [dev, uuid] = s().ext4_device("disk.img");
    const std::string mnt = s().path("mnt");
    mount_by_uuid(uuid, mnt, kOptions);
    auto e = error_of([&] { loop_detach(dev); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::refused) << e->what();
    EXPECT_EQ(loop_find(s().path("disk.img")), dev);
    EXPECT_EQ(mounted_source(mnt), dev);
}

TEST_F(MountRoot, ReportsNothingMountedAtAPlainDirectoryOrMissingPath) {
    EXPECT_EQ(mounted_source(s().dir()), std::nullopt);
    EXPECT_EQ(mounted_source(s().path("missing")), std::nullopt);
    EXPECT_TRUE(mounted_source("/proc").has_value());
}

// ---- the blank-device check ----

TEST_F(BlankRoot, AcceptsAFreshZeroedDevice) {
    const std::string dev = s().fresh_device("disk.img");
    EXPECT_EQ(check_blank_device(dev), dev);
}

TEST_F(BlankRoot, ResolvesASymlinkToTheCanonicalDevice) {
    const std::string dev = s().fresh_device("disk.img");
    const std::string link = s().path("link");
    ASSERT_EQ(::symlink(dev.c_str(), link.c_str()), 0);
    EXPECT_EQ(check_blank_device(link), dev);
}

TEST_F(BlankRoot, RefusesADeviceWithAFilesystem) {
    const auto [dev, uuid] = s().ext4_device("disk.img");
    auto e = error_of([&] { check_blank_device(dev); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::refused) << e->what();
    EXPECT_THAT(e->what(), HasSubstr("ext4"));
    EXPECT_THAT(e->what(), HasSubstr(uuid));
}

TEST_F(BlankRoot, RefusesAMountedDevice) {
    const auto [dev, uuid] = s().ext4_device("disk.img");
    mount_by_uuid(uuid, s().path("mnt"), kOptions);
    auto e = error_of([&] { check_blank_device(dev); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::refused) << e->what();
    EXPECT_THAT(e->what(), HasSubstr("mounted"));
}

TEST_F(BlankRoot, RefusesADeviceWithADosPartitionTable) {
    const std::string dev = s().fresh_device("disk.img");
    write_mbr(dev);
    EXPECT_EQ(probe(dev).partition_table_type, "dos");
    auto e = error_of([&] { check_blank_device(dev); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::refused) << e->what();
    EXPECT_THAT(e->what(), HasSubstr("partition table (dos)"));
}

TEST_F(BlankRoot, RefusesADeviceWithAGptPartitionTable) {
    if (!have_program("sfdisk")) GTEST_SKIP() << "sfdisk (Debian package fdisk) is not installed";
    const std::string dev = s().fresh_device("disk.img");
    // --no-reread/--no-tell-kernel: the loop device has partition scanning off, and the
    // kernel should not learn about partitions it would then have to forget.
    exec_checked({.argv = {"sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", dev}, .input = "label: gpt\n,,L\n"},
                 "sfdisk");
    auto e = error_of([&] { check_blank_device(dev); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::refused) << e->what();
    EXPECT_THAT(e->what(), HasSubstr("partition table (gpt)"));
}

TEST_F(BlankRoot, RefusesADeviceWithASwapSignature) {
    if (!have_program("mkswap")) GTEST_SKIP() << "mkswap is not installed";
    const std::string dev = s().fresh_device("disk.img");
    exec_checked({.argv = {"mkswap", dev}}, "mkswap");
    auto e = error_of([&] { check_blank_device(dev); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::refused) << e->what();
    EXPECT_THAT(e->what(), HasSubstr("swap"));
}

TEST_F(BlankRoot, SeesDataWrittenToTheImageBehindTheDevicesBack) {
    const std::string img = s().image("disk.img", 64 * MiB);
    const std::string dev = s().attach(img);
    // While anyone holds the device open the kernel keeps its cached blocks, and a loop
    // device's cache does not see writes made to the backing file.
    Fd holder(::open(dev.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(holder);
    EXPECT_EQ(check_blank_device(dev), dev);  // caches the device's first blocks
    exec_checked({.argv = {"mkswap", img}}, "mkswap on the image file");
    auto e = error_of([&] { check_blank_device(dev); });
    ASSERT_TRUE(e) << "stale cached blocks were probed";
    EXPECT_EQ(e->code(), Errc::refused);
}

// ---- the whole refusal matrix, each case leaving the device byte-for-byte unchanged ----

namespace {

// The first and the last MiB of a device, read past the page cache's stale blocks.
std::string ends_of(const std::string& dev) {
    Fd fd(::open(dev.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw std::runtime_error("open " + dev);
    uint64_t size = device_size(dev);
    std::string out(2 * MiB, '\0');
    if (::pread(fd.get(), out.data(), MiB, 0) != ssize_t(MiB) ||
        ::pread(fd.get(), out.data() + MiB, MiB, static_cast<off_t>(size - MiB)) != ssize_t(MiB))
        throw std::runtime_error("read " + dev);
    return out;
}

void write_at(const std::string& dev, uint64_t offset, const std::string& bytes) {
    Fd fd(::open(dev.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd) << dev;
    ASSERT_EQ(::pwrite(fd.get(), bytes.data(), bytes.size(), static_cast<off_t>(offset)), ssize_t(bytes.size()));
    ASSERT_EQ(::fsync(fd.get()), 0);
}

void put32(std::string& b, size_t off, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[off + i] = static_cast<char>(v >> (8 * i));
}
void put64(std::string& b, size_t off, uint64_t v) {
    for (int i = 0; i < 8; ++i) b[off + i] = static_cast<char>(v >> (8 * i));
}

// An LVM2 physical-volume label as pvcreate writes it (sector 1: "LABELONE", the CRC LVM
// uses, "LVM2 001", a PV header with a UUID), without needing lvm2 installed.
void write_lvm2_label(const std::string& dev) {
    std::string s(512, '\0');
    s.replace(0, 8, "LABELONE");
    put64(s, 8, 1);    // sector_xl: the sector this label is in
    put32(s, 20, 32);  // offset_xl: where the PV header starts
    s.replace(24, 8, "LVM2 001");
    s.replace(32, 32, "hostdTESTpvUUIDabcdefghijklmnopq");
    put64(s, 64, 64 * MiB);  // device size
    // LVM's CRC-32 (reflected 0xEDB88320, seed 0xf597a6cf, no final xor) over bytes 20..511.
    uint32_t crc = 0xf597a6cf;
    for (size_t i = 20; i < 512; ++i) {
        crc ^= static_cast<unsigned char>(s[i]);
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    put32(s, 16, crc);
    write_at(dev, 512, s);
}

// An md RAID v1.2 superblock (4 KiB in, checksummed the way the md driver does), so blkid
// sees a linux_raid_member without mdadm or the md driver.
void write_md_superblock(const std::string& dev) {
    std::string sb(1024, '\0');
    put32(sb, 0, 0xa92b4efc);  // magic
    put32(sb, 4, 1);           // major_version
    sb.replace(16, 16, "hostd-test-array");  // set_uuid
    sb.replace(32, 8, "hostd:0");            // set_name
    put32(sb, 72, 1);          // level: RAID 1
    put32(sb, 92, 2);          // raid_disks
    put64(sb, 144, 8);         // super_offset (sectors): 4 KiB
    put32(sb, 220, 2);         // max_dev: two roles follow at 256
    uint64_t sum = 0;
    for (size_t i = 0; i < 256 + 2 * 2; i += 4)
        sum += static_cast<uint32_t>(static_cast<unsigned char>(sb[i]) | static_cast<unsigned char>(sb[i + 1]) << 8 |
                                     static_cast<unsigned char>(sb[i + 2]) << 16 | static_cast<uint32_t>(static_cast<unsigned char>(sb[i + 3])) << 24);
    put32(sb, 216, static_cast<uint32_t>((sum & 0xffffffff) + (sum >> 32)));  // sb_csum
    write_at(dev, 4096, sb);
}

// The block device "/" is on, as /dev/NAME, if this machine has a node for it.
std::optional<std::string> root_device_node() {
    struct stat st {};
    if (::stat("/", &st) < 0 || major(st.st_dev) == 0) return std::nullopt;
    std::ifstream in("/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev)) + "/uevent");
    for (std::string line; std::getline(in, line);)
        if (line.starts_with("DEVNAME=") && path_exists("/dev/" + line.substr(8))) return "/dev/" + line.substr(8);
    return std::nullopt;
}

}  // namespace

using MatrixRoot = StorageRoot;

bool has_cap_sys_resource() {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
        if (line.starts_with("CapEff:")) return (std::stoull(line.substr(7), nullptr, 16) >> 24) & 1;  // CAP_SYS_RESOURCE
    return false;
}

TEST_F(MatrixRoot, RefusesEachKindOfSignatureLeavingTheDeviceUnchangedAndForceLetsOnlyThatPass) {
    struct Case {
        std::string what, expect;
        std::function<void(const std::string& dev, const std::string& img)> make;
    };
    std::vector<Case> cases = {
        {"ext4", "ext4", [](auto& dev, auto&) { make_filesystem(dev, "ext4", "someone", new_uuid()); }},
        {"xfs", "xfs", [](auto& dev, auto&) { make_filesystem(dev, "xfs", "someone", new_uuid()); }},
        {"swap", "swap", [](auto&, auto& img) { exec_checked({.argv = {"mkswap", img}}, "mkswap"); }},
        {"LVM", "LVM2_member", [](auto& dev, auto&) { write_lvm2_label(dev); }},
        {"RAID", "linux_raid_member", [](auto& dev, auto&) { write_md_superblock(dev); }},
    };
    if (have_program("cryptsetup"))
        cases.push_back({"LUKS", "crypto_LUKS", [](auto&, auto& img) {
                             exec_checked({.argv = {"cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2",
                                                    "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
                                                    "--key-file", "-", img},
                                           .input = "not-a-secret"},
                                          "cryptsetup luksFormat");
                         }});
    else
        ADD_FAILURE() << "cryptsetup (Debian package cryptsetup-bin) is needed for the LUKS case";
    int n = 0;
    for (auto& c : cases) {
        SCOPED_TRACE(c.what);
        const std::string img = s().image("m" + std::to_string(n++) + ".img", 320 * MiB);  // xfs needs 300 MiB
        const std::string dev = s().attach(img);
        c.make(dev, img);
        Fd flush(::open(dev.c_str(), O_RDONLY | O_CLOEXEC));
        ::ioctl(flush.get(), BLKFLSBUF, 0);
        const std::string before = ends_of(dev);
        auto e = error_of([&] { check_device(dev); });
        ASSERT_TRUE(e);
        EXPECT_EQ(e->code(), Errc::refused);
        EXPECT_THAT(e->what(), HasSubstr(c.expect));
        EXPECT_TRUE(ends_of(dev) == before) << "the refused device was written to";
        // force: the check passes and says what formatting will destroy; nothing written yet.
        const DeviceCheck forced = check_device(dev, /*allow_signature=*/true);
        EXPECT_EQ(forced.path, dev);
        EXPECT_THAT(forced.signature, HasSubstr(c.expect));
        EXPECT_TRUE(ends_of(dev) == before);
        erase_signatures(dev);
        // Signatures only: what was around them is still there, and the device is not blank.
        EXPECT_FALSE(probe(dev).has_signature) << "erase_signatures left something blkid sees";
    }
}

// ---- "blank" means blank: no signature, and zeros where the check reads ----

namespace {

std::string random_bytes(uint64_t n) {
    std::string out(n, '\0');
    std::ifstream in("/dev/urandom", std::ios::binary);
    in.read(out.data(), static_cast<std::streamsize>(n));
    return out;
}

}  // namespace

TEST(BlankCheck, ReadsBothEndsAndSixtyFourPiecesSpreadEvenlyWhateverTheSize) {
    for (uint64_t size : std::vector<uint64_t>{64 * MiB, 1024 * MiB, 100ull << 30, (1ull << 40) + 512}) {
        SCOPED_TRACE(size);
        const auto regions = blank_check_regions(size);
        ASSERT_EQ(regions.size(), 66u);
        EXPECT_EQ(regions.front(), (std::pair<uint64_t, uint64_t>{0, MiB}));
        EXPECT_TRUE(std::any_of(regions.begin(), regions.end(),
                                [&](auto& r) { return r.first + MiB <= size && r.first + r.second == size; }))
            << "the last MiB, up to the last byte";
        uint64_t total = 0, covered = 0;
        for (size_t i = 0; i < regions.size(); ++i) {
            total += regions[i].second;
            EXPECT_EQ(regions[i].first % 4096, 0u) << "O_DIRECT needs aligned offsets";
            if (i > 0) {
                EXPECT_GE(regions[i].first, regions[i - 1].first);
            }
            // No gap longer than a 64th of the device: a run of data that long is always seen.
            if (regions[i].first > covered) {
                EXPECT_LE(regions[i].first - covered, size / 64);
            }
            covered = std::max(covered, regions[i].first + regions[i].second);
        }
        EXPECT_LE(total, 6 * MiB + 4096);
    }
    EXPECT_EQ(blank_check_regions(MiB / 2).front(), (std::pair<uint64_t, uint64_t>{0, MiB / 2}));
    for (auto& [offset, length] : blank_check_regions(3 * MiB)) EXPECT_LE(offset + length, 3 * MiB);
}

TEST_F(MatrixRoot, RefusesDataWithoutASignatureWhereverTheCheckReadsItAndForceNamesIt) {
    const uint64_t size = 256 * MiB;
    struct Case {
        std::string what;
        std::string offset;  // of the first non-zero byte the check reads ("": somewhere)
        std::function<void(const std::string& dev, const std::string& img)> make;
    };
    const std::vector<Case> cases = {
        // The reproduction: 64 MiB of random data, as a plain dm-crypt volume or a raw
        // archive leaves it.
        {"64 MiB of random data at the start", "0",
         [](auto& dev, auto&) { write_at(dev, 0, std::string(1, '\x01') + random_bytes(64 * MiB - 1)); }},
        // Longer than a 64th of the device (4 MiB here): a sample always lands in it, this one
        // at 122 MiB (the middle of the 31st of 64 stretches of 4 MiB).
        {"5 MiB of random data in the middle only", "122M",
         [](auto& dev, auto&) { write_at(dev, 120 * MiB, std::string(5 * MiB, '\x01')); }},
        {"4 KiB at the very end only", "262140K", [=](auto& dev, auto&) { write_at(dev, size - 4096, std::string(4096, 'z')); }},
        // wipefs erases the magic, not the superblock around it (from 1K in): the disk's data is
        // all there.
        {"an ext4 someone ran wipefs on", "",
         [](auto& dev, auto&) {
             make_filesystem(dev, "ext4", "someone", new_uuid());
             exec_checked({.argv = {"wipefs", "--all", "--quiet", dev}}, "wipefs");
         }},
        // Written to the image behind the device's back: only a read past the device's page
        // cache sees it (the device is held open, so its cached zeros would stay).
        {"data written to the image file behind the device", "202M",
         [](auto&, auto& img) {
             Fd fd(::open(img.c_str(), O_WRONLY | O_CLOEXEC));
             ASSERT_TRUE(fd);
             const std::string bytes(5 * MiB, '\x7f');
             ASSERT_EQ(::pwrite(fd.get(), bytes.data(), bytes.size(), 200 * MiB), ssize_t(bytes.size()));
             ASSERT_EQ(::fsync(fd.get()), 0);
         }},
    };
    int n = 0;
    for (auto& c : cases) {
        SCOPED_TRACE(c.what);
        const std::string img = s().image("data" + std::to_string(n++) + ".img", size);
        const std::string dev = s().attach(img);
        Fd holder(::open(dev.c_str(), O_RDONLY | O_CLOEXEC));  // keeps the device's cached blocks alive
        ASSERT_TRUE(holder);
        EXPECT_EQ(check_blank_device(dev), dev) << "all zeros: blank";  // and caches what it read
        c.make(dev, img);
        EXPECT_FALSE(probe(dev).has_signature) << "the case must be invisible to libblkid";
        const std::string before = ends_of(dev);
        auto e = error_of([&] { check_device(dev); });
        ASSERT_TRUE(e) << "formatted over data libblkid does not know";
        EXPECT_EQ(e->code(), Errc::refused);
        EXPECT_THAT(e->what(), HasSubstr("Non-zero data at offset " + c.offset));
        EXPECT_THAT(e->what(), HasSubstr(" of " + dev + ": it may hold data libblkid cannot recognise"));
        EXPECT_THAT(e->what(), HasSubstr("create with force"));
        EXPECT_TRUE(ends_of(dev) == before) << "the refused device was written to";
        // force: passes, says what formatting destroys, and the format itself goes through.
        const DeviceCheck forced = check_device(dev, /*force=*/true);
        EXPECT_EQ(forced.signature, "");
        EXPECT_THAT(forced.data, StartsWith("non-zero data at offset " + c.offset));
        EXPECT_THAT(forced.data, HasSubstr(" (no signature libblkid knows)"));
        EXPECT_EQ(forced.destroys(), forced.data);
        EXPECT_TRUE(ends_of(dev) == before);
        const std::string uuid = new_uuid();
        make_filesystem(dev, "ext4", "forced", uuid);
        EXPECT_EQ(probe(dev).uuid, uuid);
    }
}

// What the check costs: it reads 6 MiB whatever the size. Loop devices over sparse images here
// (holes read as zeros without touching the disk); printed for the record.
TEST_F(MatrixRoot, ChecksA1GiBAndA100GiBDeviceInWellUnderASecond) {
    for (uint64_t size : {1ull << 30, 100ull << 30}) {
        const std::string dev = s().fresh_device(std::to_string(size >> 30) + "g.img", size);
        const auto t0 = std::chrono::steady_clock::now();
        EXPECT_EQ(check_device(dev).path, dev);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        std::cout << "check_device of a blank " << format_size(size) << " loop device: " << ms << " ms\n";
        EXPECT_LT(ms, 1000);
    }
}

TEST_F(MatrixRoot, ADeviceHostdWipedIsBlankAgain) {
    const auto [dev, uuid] = s().ext4_device("used.img", 256 * MiB);
    const std::string mnt = s().path("mnt");
    mount_by_uuid(uuid, mnt, kOptions, dev);
    write_file_atomic(mnt + "/rows", random_bytes(8 * MiB));
    unmount(mnt);
    ASSERT_TRUE(error_of([&] { check_device(dev); }));
    wipe_device(dev);
    EXPECT_EQ(check_blank_device(dev), dev) << "hostd's own leftovers must not make its disk look like someone's data";
    EXPECT_EQ(find_filesystem(uuid), std::nullopt);
}

TEST_F(MatrixRoot, ForceNeverPassesAPartitionTableOrAMountedDevice) {
    const std::string dev = s().fresh_device("pt.img");
    write_mbr(dev);
    const std::string before = ends_of(dev);
    auto e = error_of([&] { check_device(dev, true); });
    ASSERT_TRUE(e);
    EXPECT_THAT(e->what(), HasSubstr("partition table"));
    EXPECT_FALSE(error_of([&] { erase_signatures(dev); }) == std::nullopt);
    EXPECT_TRUE(ends_of(dev) == before);

    const auto [mdev, uuid] = s().ext4_device("mounted.img");
    mount_by_uuid(uuid, s().path("mnt"), kOptions);
    const std::string mbefore = ends_of(mdev);
    e = error_of([&] { check_device(mdev, true); });
    ASSERT_TRUE(e);
    EXPECT_THAT(e->what(), HasSubstr("mounted"));
    EXPECT_TRUE(ends_of(mdev) == mbefore);
}

TEST_F(MatrixRoot, RefusesTheDiskHoldingTheRootFilesystem) {
    auto root = root_device_node();
    if (!root) GTEST_SKIP() << "no device node for the disk holding / on this machine";
    auto e = error_of([&] { check_device(*root, /*allow_signature=*/true); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::refused);
    EXPECT_THAT(e->what(), HasSubstr("root filesystem"));
}

TEST_F(MatrixRoot, RefusesWhatIsNotABlockDeviceOrDoesNotExist) {
    EXPECT_EQ(error_of([] { check_device("/dev/hostd-no-such-disk", true); })->code(), Errc::not_found);
    const std::string file = s().image("plain.img", MiB);
    auto e = error_of([&] { check_device(file, true); });
    ASSERT_TRUE(e);
    EXPECT_THAT(e->what(), HasSubstr("not a block device"));
}

// ---- identity: what survives a reboot that renames a disk ----

TEST_F(MountRoot, FindsAFilesystemUnderTheNameTheKernelGaveItThisTime) {
    const std::string img = s().image("moved.img", 64 * MiB);
    const std::string first = s().attach(img);
    const std::string uuid = new_uuid();
    make_filesystem(first, "ext4", "moved", uuid);
    EXPECT_EQ(find_filesystem(uuid), first);
    loop_detach(first);
    const std::string filler = s().fresh_device("filler.img");  // takes the old name, if free
    const std::string second = s().attach(img);
    EXPECT_NE(second, first);
    EXPECT_EQ(find_filesystem(uuid), second);
    EXPECT_EQ(find_filesystem(new_uuid()), std::nullopt);
    // A copy: which one is the tenant's is unknown, and said so.
    const std::string copy = s().path("copy.img");
    exec_checked({.argv = {"cp", "--sparse=always", img, copy}}, "copy image");
    s().adopt_image(copy);
    const std::string third = s().attach(copy);
    auto e = error_of([&] { find_filesystem(uuid); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code(), Errc::conflict);
    EXPECT_THAT(e->what(), HasSubstr(second));
    EXPECT_THAT(e->what(), HasSubstr(third));
}

TEST_F(LoopRoot, ALoopDeviceHasNoStableIdAndADiskWithASerialHasOne) {
    const std::string dev = s().fresh_device("disk.img");
    EXPECT_EQ(stable_id(dev), "") << "a loop device has no serial or WWN; its image names it";
    EXPECT_EQ(check_device(dev).device_id, "");
    EXPECT_EQ(stable_id("/dev/hostd-no-such-disk"), "");
    // Every whole disk of this machine the kernel knows a serial of (virtio's /sys/block/X/serial).
    if (path_exists("/dev/disk/by-id")) GTEST_SKIP() << "udev's links name the disks here";
    int seen = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/sys/block")) {
        const std::string name = entry.path().filename();
        std::string serial;
        try {
            serial = trimmed(read_file(entry.path().string() + "/serial"));
        } catch (const Error&) {
            continue;
        }
        if (serial.empty() || path_exists(entry.path().string() + "/wwid") || path_exists(entry.path().string() + "/dm") ||
            !path_exists("/dev/" + name))
            continue;
        EXPECT_EQ(stable_id("/dev/" + name), "serial:" + serial) << name;
        ++seen;
    }
    if (seen == 0) std::cout << "(no disk with a serial on this machine)\n";
}

// ---- growing online, and the reserve ----

TEST_F(MatrixRoot, GrowsAMountedExt4AndXfsOnALoopImageOnline) {
    for (std::string fs : {"ext4", "xfs"}) {
        SCOPED_TRACE(fs);
        const std::string img = s().image(fs + ".img", 320 * MiB);
        const std::string dev = s().attach(img);
        const std::string uuid = new_uuid();
        make_filesystem(dev, fs, "grow", uuid);
        const std::string mnt = s().path("mnt-" + fs);
        mount_by_uuid(uuid, mnt, kOptions, dev);
        write_file_atomic(mnt + "/keep", "rows");
        const uint64_t before = disk_stats(mnt).bytes_total;
        EXPECT_EQ(error_of([&] { grow_image(img, 100 * MiB); })->code(), Errc::refused);  // shrink
        grow_image(img, 640 * MiB);
        EXPECT_EQ(device_size(dev), 640 * MiB);
        if (fs == "ext4" && !has_cap_sys_resource()) {
            // The kernel allows online ext4 growth only with CAP_SYS_RESOURCE: say so clearly.
            auto e = error_of([&] { grow_filesystem(dev, mnt, fs); });
            ASSERT_TRUE(e);
            EXPECT_EQ(e->code(), Errc::unavailable);
            EXPECT_THAT(e->what(), HasSubstr("CAP_SYS_RESOURCE"));
            unmount(mnt);
            grow_filesystem_offline(dev, fs);
            mount_by_uuid(uuid, mnt, kOptions, dev);
        } else {
            grow_filesystem(dev, mnt, fs);
        }
        const uint64_t after = disk_stats(mnt).bytes_total;
        EXPECT_GT(after, before + 250 * MiB) << before << " → " << after;
        EXPECT_EQ(mounted_source(mnt), dev);  // never unmounted
        EXPECT_EQ(read_file(mnt + "/keep"), "rows");
    }
}

TEST_F(MatrixRoot, ReservesSpaceAndGivesItBack) {
    const auto [dev, uuid] = s().ext4_device("r.img", 64 * MiB);
    const std::string mnt = s().path("mnt");
    mount_by_uuid(uuid, mnt, kOptions, dev);
    const uint64_t free0 = disk_stats(mnt).bytes_available;
    ensure_reserve(mnt + "/.reserve", 8 * MiB);
    ensure_reserve(mnt + "/.reserve", 8 * MiB);  // idempotent
    const uint64_t free1 = disk_stats(mnt).bytes_available;
    EXPECT_GE(free0 - free1, 8 * MiB);
    EXPECT_LT(free0 - free1, 9 * MiB);
    EXPECT_EQ(error_of([&] { ensure_reserve(mnt + "/.big", 1024 * MiB); })->code(), Errc::unavailable);
    EXPECT_GE(release_reserve(mnt + "/.reserve"), 8 * MiB);
    EXPECT_EQ(release_reserve(mnt + "/.reserve"), 0u);
    EXPECT_GE(disk_stats(mnt).bytes_available + 64 * 1024, free0);
}

// This kernel has neither device-mapper nor md, so no real holder can be made here. In a
// private mount namespace of a child process, the device's sysfs holders directory gets an
// entry, as the kernel would show dm-0 stacked on it; the check must refuse it.
TEST_F(MatrixRoot, RefusesADeviceHeldByDeviceMapperOrMd) {
    const std::string dev = s().fresh_device("held.img");
    struct stat st {};
    ASSERT_EQ(::stat(dev.c_str(), &st), 0);
    const std::string holders = "/sys/dev/block/" + std::to_string(major(st.st_rdev)) + ":" +
                                std::to_string(minor(st.st_rdev)) + "/holders";
    const std::string before = ends_of(dev);
    int pipefd[2];
    ASSERT_EQ(::pipe(pipefd), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(pipefd[0]);
        std::string msg = "setup failed";
        if (::unshare(CLONE_NEWNS) == 0 && ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
            ::mount("tmpfs", holders.c_str(), "tmpfs", 0, nullptr) == 0 && ::mkdir((holders + "/dm-0").c_str(), 0755) == 0) {
            try {
                check_device(dev, /*allow_signature=*/true);
                msg = "accepted";
            } catch (const std::exception& e) {
                msg = e.what();
            }
        }
        (void)!::write(pipefd[1], msg.data(), msg.size());
        ::_exit(0);
    }
    ::close(pipefd[1]);
    std::string msg;
    char buf[512];
    for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<size_t>(n));
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_THAT(msg, HasSubstr("held by dm-0"));
    EXPECT_TRUE(ends_of(dev) == before);
    EXPECT_EQ(check_blank_device(dev), dev) << "outside that namespace the device is free";
}

// The real effects' undo verbs on real kernel objects: they remove what hostd made and leave
// anything else alone, also when it sits where a tenant's things would. Root only; each test
// works in its own directory under /var/tmp, in a mount namespace of its own (nothing it
// mounts reaches the host's table), and detaches only the loop devices it attached.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "base/error.h"
#include "base/fs.h"
#include "hostd/effects.h"
#include "model/layout.h"
#include "storage/storage.h"

using namespace hostd;

namespace {

class RealEffectsRoot : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root: mounts and loop devices";
        ASSERT_EQ(::unshare(CLONE_NEWNS), 0);
        ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0);
        dir = "/var/tmp/hostd-effects-" + std::to_string(::getpid());
        std::filesystem::remove_all(dir);
        cfg.state_dir = dir + "/state";
        cfg.mount_root = dir + "/mnt";
        cfg.loop_dir = dir + "/loop";
        std::filesystem::create_directories(cfg.mount_root);
        std::filesystem::create_directories(cfg.loop_dir);
        fx = make_real_effects(cfg);
    }
    void TearDown() override {
        if (!loop.empty()) storage::loop_detach(loop);
        for (auto& m : storage::mounts_below(cfg.mount_root)) ::umount2(m.c_str(), MNT_DETACH);
        if (!dir.empty()) std::filesystem::remove_all(dir);
    }
    // A name no other test or tenant on this host has (the disk link lives in /run/hostd).
    std::string tenant() const { return "fx" + std::to_string(::getpid()); }

    std::string dir, loop;
    Config cfg;
    std::unique_ptr<Effects> fx;
};

Errc code_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.code();
    }
    return Errc::failed;
}

}  // namespace

TEST_F(RealEffectsRoot, UnmountsOnlyAFilesystemWhoseMarkerNamesTheTenant) {
    const TenantLayout l = layout_of(cfg, tenant());
    std::filesystem::create_directory(l.mountpoint);
    ASSERT_EQ(::mount("tmpfs", l.mountpoint.c_str(), "tmpfs", 0, "size=1m"), 0);

    // Someone else's filesystem at the tenant's mount point: no marker, then another tenant's.
    EXPECT_EQ(code_of([&] { fx->unmount(l); }), Errc::refused);
    EXPECT_TRUE(storage::mounted_source(l.mountpoint));
    write_file_atomic(l.marker, layout::marker_text(tenant() + "x", "u"), 0644);
    EXPECT_EQ(code_of([&] { fx->unmount(l); }), Errc::refused);
    EXPECT_TRUE(storage::mounted_source(l.mountpoint));

    write_file_atomic(l.marker, layout::marker_text(tenant(), "u"), 0644);
    fx->unmount(l);
    EXPECT_FALSE(storage::mounted_source(l.mountpoint));
    EXPECT_FALSE(path_exists(l.mountpoint));
    fx->unmount(l);  // nothing there: fine
}

TEST_F(RealEffectsRoot, DetachesOnlyTheLoopDeviceOfTheImageFileItself) {
    // A loop device backed by a file outside loop_dir, and a symlink to it where the tenant's
    // image would be.
    const std::string other = dir + "/other.img";
    storage::create_sparse_file(other, 16 << 20);
    loop = storage::loop_attach(other);
    const TenantLayout l = layout_of(cfg, tenant());
    std::filesystem::create_symlink(other, l.image);
    fx->detach_image(l.image);
    EXPECT_EQ(storage::loop_find(other), loop) << "detached a loop device whose backing file is not hostd's image";

    // The image itself: detached.
    std::filesystem::remove(l.image);
    std::filesystem::rename(other, l.image);
    fx->detach_image(l.image);
    EXPECT_EQ(storage::loop_find(l.image), std::nullopt);
    loop.clear();
}

// The rule of a restore in place: only when the tenant's data is really gone.
#include <gtest/gtest.h>

#include "base/error.h"
#include "model/restore.h"

using namespace hostd;

namespace {

TenantRecord tenant(const std::string& backend) {
    TenantRecord t;
    t.name = "acme";
    t.state = TenantState::ready;
    t.spec.backend = backend;
    t.fs_uuid = "11111111-1111-4111-8111-111111111111";
    t.image = "/var/lib/hostd/loop/acme.img";
    t.device = backend == "loop" ? "/dev/loop3" : "/dev/vdb";
    t.device_id = backend == "loop" ? "" : "wwn-0x1";
    return t;
}

// The refusal's code and sentence.
std::pair<Errc, std::string> refusal(const TenantRecord& t, const DiskFacts& f) {
    try {
        plan_restore_disk(t, f);
    } catch (const Error& e) {
        return {e.code(), e.what()};
    }
    ADD_FAILURE() << "not refused";
    return {Errc::failed, ""};
}

bool says(const std::pair<Errc, std::string>& r, const std::string& what) {
    return r.second.find(what) != std::string::npos && r.second.find("nothing was changed") != std::string::npos;
}

}  // namespace

TEST(RestorePlan, MakesANewImageOnlyWhenTheImageIsGoneAndItsFilesystemNowhere) {
    EXPECT_EQ(plan_restore_disk(tenant("loop"), {}), RestoreDisk::new_image);
}

TEST(RestorePlan, RefusesWhileTheDataIsThereSayingWhatToRunInstead) {
    const auto t = tenant("loop");
    auto mounted = refusal(t, {.mounted = true});
    EXPECT_EQ(mounted.first, Errc::conflict);
    EXPECT_TRUE(says(mounted, "--from acme")) << mounted.second;  // a branch brings back what was dropped
    auto running = refusal(t, {.unit_running = true});
    EXPECT_EQ(running.first, Errc::conflict);
    EXPECT_TRUE(says(running, "hostctl stop acme")) << running.second;
    auto unmounted = refusal(t, {.found_at = "/dev/loop7"});
    EXPECT_EQ(unmounted.first, Errc::conflict);
    EXPECT_TRUE(says(unmounted, "on /dev/loop7")) << unmounted.second;
    EXPECT_TRUE(says(unmounted, "hostctl reconcile")) << unmounted.second;
}

TEST(RestorePlan, NeverWritesOverAnImageFileItFindsWhateverItHolds) {
    const auto t = tenant("loop");
    for (auto media : {DiskFacts::Media::blank, DiskFacts::Media::data}) {
        auto r = refusal(t, {.media = media, .detail = media == DiskFacts::Media::data ? "an xfs signature" : ""});
        EXPECT_EQ(r.first, Errc::refused);
        EXPECT_TRUE(says(r, "move the file away")) << r.second;
    }
}

TEST(RestorePlan, UsesADeviceOnlyWhenItIsTheTenantsOwnAndBlank) {
    const auto t = tenant("device");
    EXPECT_EQ(plan_restore_disk(t, {.media = DiskFacts::Media::blank}), RestoreDisk::blank_device);
    auto data = refusal(t, {.media = DiskFacts::Media::data, .detail = "non-zero data at offset 12M"});
    EXPECT_EQ(data.first, Errc::refused);
    EXPECT_TRUE(says(data, "non-zero data at offset 12M")) << data.second;
    auto gone = refusal(t, {.media = DiskFacts::Media::absent, .detail = "no such device"});
    EXPECT_TRUE(says(gone, "not there")) << gone.second;
    auto other = refusal(t, {.media = DiskFacts::Media::blank, .detail = "wwn-0x2", .other_disk = true});
    EXPECT_EQ(other.first, Errc::refused);
    EXPECT_TRUE(says(other, "another disk")) << other.second;
}

TEST(RestorePlan, SaysADiskIsMissingOnlyWhenItIsAndHowItComesBack) {
    const auto loop = tenant("loop");
    EXPECT_EQ(disk_missing_reason(loop, {.mounted = true}, true), "");
    EXPECT_EQ(disk_missing_reason(loop, {.found_at = "/dev/loop3"}, true), "");
    EXPECT_EQ(disk_missing_reason(loop, {}, true),
              "disk missing: its image /var/lib/hostd/loop/acme.img is gone; hostctl restore acme brings it back from backups");
    EXPECT_NE(disk_missing_reason(loop, {}, false).find("backups are off"), std::string::npos);
    EXPECT_NE(disk_missing_reason(tenant("device"), {.media = DiskFacts::Media::blank}, true).find("/dev/vdb is blank"),
              std::string::npos);
}

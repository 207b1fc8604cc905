// The warm pool's pure logic: the state file, which disk a create takes, how many to prepare,
// and what a start-up after a crash cleans.
#include <gtest/gtest.h>

#include "base/error.h"
#include "pool/pool.h"

using namespace hostd;
using namespace hostd::pool;

namespace {

constexpr uint64_t kGiB = 1ull << 30;

Disk disk(const std::string& id, DiskState st, uint64_t size = kGiB, const std::string& fs = "ext4") {
    Disk d{.id = id, .state = st, .filesystem = fs, .size = size, .fs_uuid = "6f1c6c1e-0000-4000-8000-" + id.substr(0, 12)};
    if (st == DiskState::ready) {
        d.bootstrap_role = bootstrap_role_of(id);
        d.bootstrap_password = "pw-" + id;
    }
    return d;
}

const std::string A = "00000000000000aa", B = "00000000000000bb", C = "00000000000000cc";

}  // namespace

TEST(APoolStateFile, RoundTripsEveryField) {
    State s{.disks = {disk(A, DiskState::ready), disk(B, DiskState::preparing, 2 * kGiB, "xfs")}};
    s.disks[0].created_at = "2026-11-30T11:00:00Z";
    EXPECT_EQ(parse(render(s), "pool.toml"), s);
    EXPECT_EQ(parse(render(State{}), "pool.toml"), State{});
    EXPECT_EQ(parse("", "pool.toml"), State{});  // a new pool
}

TEST(APoolStateFile, RefusesWhatCannotBeTrustedAndSaysWhereAndWhatToDo) {
    auto refuses = [](const std::string& text, const std::string& what) {
        try {
            parse(text, "/var/lib/hostd/pool/pool.toml");
            ADD_FAILURE() << "parsed: " << text;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::invalid);
            const std::string m = e.what();
            EXPECT_NE(m.find("/var/lib/hostd/pool/pool.toml"), std::string::npos) << m;
            EXPECT_NE(m.find(what), std::string::npos) << m;
            EXPECT_NE(m.find("remove the file"), std::string::npos) << m;
        }
    };
    State ok{.disks = {disk(A, DiskState::ready)}};
    const std::string good = render(ok);
    auto with = [&](const std::string& from, const std::string& to) {
        std::string t = good;
        t.replace(t.find(from), from.size(), to);
        return t;
    };
    refuses("disk = [ [[", "");
    refuses("disk = 3", "not a list");
    refuses(with("id = '" + A, "id = '../../etc/passwd"), "not 16 lower-case hex");
    refuses(with("id = '" + A, "id = '00000000000000AA"), "not 16 lower-case hex");
    refuses(with("'ready'", "'taken'"), "state 'taken'");
    refuses(with("'ext4'", "'btrfs'"), "filesystem 'btrfs'");
    refuses(with("size = 1073741824", "size = 0"), "no size");
    refuses(with("pw-" + A, ""), "lacks its bootstrap role or its password");
    refuses(with("hostd_pool_" + A, "alice"), "lacks its bootstrap role");
    State twice{.disks = {disk(A, DiskState::ready), disk(A, DiskState::preparing)}};
    refuses(render(twice), "listed twice");
}

TEST(APoolDiskId, IsSixteenHexDigitsAndNamesOnlyItsImage) {
    const std::string id = new_id({});
    EXPECT_TRUE(valid_id(id)) << id;
    EXPECT_NE(new_id({}), id);
    EXPECT_EQ(id_of_image(image_name(id)), id);
    for (std::string f : {"acme.img", "0000000000000aa.img", "00000000000000aa.img.tmp", "00000000000000aa", ".img",
                          "00000000000000aA.img", "../00000000000000a.img"})
        EXPECT_EQ(id_of_image(f), std::nullopt) << f;
    // Role names a tenant's admin can never have (tenant names have no '_').
    EXPECT_EQ(bootstrap_role_of(A), "hostd_pool_" + A);
    EXPECT_EQ(handover_role_of(A), "hostd_handover_" + A);
}

TEST(APoolPick, TakesTheOldestReadyDiskOfTheVeryShapeAndNothingElse) {
    State s{.disks = {disk(A, DiskState::preparing), disk(B, DiskState::ready, 2 * kGiB), disk(C, DiskState::ready)}};
    EXPECT_EQ(pick(s, {.size = kGiB, .filesystem = "ext4"}), 2u);       // A is not ready yet
    EXPECT_EQ(pick(s, {.size = 2 * kGiB, .filesystem = "ext4"}), 1u);
    EXPECT_EQ(pick(s, {.size = kGiB, .filesystem = "xfs"}), std::nullopt);  // the full path
    EXPECT_EQ(pick(s, {.size = 3 * kGiB, .filesystem = "ext4"}), std::nullopt);
    EXPECT_EQ(pick(State{}, {.size = kGiB, .filesystem = "ext4"}), std::nullopt);
}

TEST(APoolRefill, PreparesWhatIsMissingOneAtATime) {
    EXPECT_EQ(to_prepare(State{}, 0), 0u);  // pool off
    EXPECT_EQ(to_prepare(State{}, 3), 1u);
    EXPECT_EQ(to_prepare(State{}, 3, 2), 2u);
    EXPECT_EQ(to_prepare(State{.disks = {disk(A, DiskState::preparing)}}, 3), 0u);  // one at a time
    EXPECT_EQ(to_prepare(State{.disks = {disk(A, DiskState::preparing)}}, 3, 4), 2u);
    EXPECT_EQ(to_prepare(State{.disks = {disk(A, DiskState::ready), disk(B, DiskState::ready)}}, 3), 1u);
    EXPECT_EQ(to_prepare(State{.disks = {disk(A, DiskState::ready), disk(B, DiskState::ready)}}, 2), 0u);
    EXPECT_EQ(to_prepare(State{.disks = {disk(A, DiskState::ready), disk(B, DiskState::ready)}}, 1), 0u);
}

TEST(APoolRefill, GivesBackTheNewestReadyDisksBeyondTheSize) {
    State s{.disks = {disk(A, DiskState::ready), disk(B, DiskState::ready), disk(C, DiskState::ready)}};
    EXPECT_EQ(surplus(s, 3), std::vector<std::string>{});
    EXPECT_EQ(surplus(s, 1), (std::vector<std::string>{C, B}));
    EXPECT_EQ(surplus(s, 0), (std::vector<std::string>{C, B, A}));
}

TEST(APoolRecovery, DestroysWhatWasCutOffAndWhatNoEntryListsAndForgetsWhatACreateTook) {
    const std::string D = "00000000000000dd", E = "00000000000000ee";
    State s{.disks = {disk(A, DiskState::ready), disk(B, DiskState::ready), disk(C, DiskState::preparing),
                      disk(D, DiskState::preparing)}};
    // A there and ready; B taken by a create (its image renamed to the tenant's); C cut off
    // after its image was made; D cut off before; E an image no entry lists.
    Recovery r = plan_recovery(s, {A, C, E});
    EXPECT_EQ(r.destroy, (std::vector<std::string>{C, E}));
    EXPECT_EQ(r.forget, (std::vector<std::string>{B, C, D}));
    EXPECT_EQ(r.kept, (State{.disks = {disk(A, DiskState::ready)}}));
    // A settled pool stays as it is.
    Recovery same = plan_recovery(r.kept, {A});
    EXPECT_TRUE(same.destroy.empty());
    EXPECT_TRUE(same.forget.empty());
    EXPECT_EQ(same.kept, r.kept);
}

TEST(APoolRefill, RefusesWhenTheLoopDirectoryLacksRoomForASpareAndAFullPathDiskBesides) {
    EXPECT_EQ(room_needed(kGiB), kSpareWritten + kGiB + kRoomMargin);
    EXPECT_EQ(lacks_room(room_needed(kGiB), kGiB), std::nullopt);
    EXPECT_EQ(lacks_room(100 * kGiB, kGiB), std::nullopt);
    auto why = lacks_room(room_needed(kGiB) - 1, kGiB);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("a spare needs 1344 MiB"), std::string::npos) << *why;
    EXPECT_TRUE(lacks_room(0, kGiB));
    EXPECT_TRUE(lacks_room(2 * kGiB, 2 * kGiB));  // the disk size counts: room for a full-path create
}

TEST(APoolRecovery, GivesBackReadyDisksOfAShapeNoCreateWouldTake) {
    State s{.disks = {disk(A, DiskState::ready), disk(B, DiskState::ready), disk(C, DiskState::preparing)}};
    s.disks[1].size = 2 * kGiB;
    s.disks[2].size = 2 * kGiB;  // preparing: plan_recovery's, not this
    EXPECT_EQ(misfits(s, {.size = kGiB, .filesystem = "ext4"}), std::vector<std::string>{B});
    EXPECT_EQ(misfits(s, {.size = kGiB, .filesystem = "xfs"}), (std::vector<std::string>{A, B}));
    EXPECT_EQ(misfits(s, {.size = 2 * kGiB, .filesystem = "ext4"}), std::vector<std::string>{A});
}

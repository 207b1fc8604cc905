// Pure storage helpers: labels and UUIDs. No root, no devices.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "base/error.h"
#include "storage/storage.h"

using namespace hostd;
using namespace hostd::storage;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

namespace {
const std::string kLong1 = "acme-corporation-production-01";  // 30 characters
const std::string kLong2 = "acme-corporation-production-02";
}  // namespace

TEST(Label, KeepsShortNamesReadable) {
    EXPECT_EQ(label_for("acme"), "hd-acme");
    EXPECT_EQ(label_for("acme", "ext4"), "hd-acme");
    EXPECT_EQ(label_for("acme", "xfs"), "hd-acme");
}

TEST(Label, UsesTheWholeLimitBeforeShortening) {
    EXPECT_EQ(label_for("abcdefghijklm", "ext4"), "hd-abcdefghijklm");  // 16 bytes: fits exactly
    EXPECT_EQ(label_for("abcdefghi", "xfs"), "hd-abcdefghi");           // 12 bytes
    EXPECT_THAT(label_for("abcdefghijklmn", "ext4"), MatchesRegex("hd-abcdefgh-[0-9a-f]{4}"));
    EXPECT_THAT(label_for("abcdefghij", "xfs"), MatchesRegex("hd-abcd-[0-9a-f]{4}"));
}

TEST(Label, FitsALongNameWithinTheExt4Limit) {
    ASSERT_EQ(kLong1.size(), 30u);
    const std::string l = label_for(kLong1, "ext4");
    EXPECT_LE(l.size(), 16u);
    EXPECT_THAT(l, StartsWith("hd-acme-cor-"));
}

TEST(Label, FitsALongNameWithinTheXfsLimit) {
    const std::string l = label_for(kLong1, "xfs");
    EXPECT_LE(l.size(), 12u);
    EXPECT_THAT(l, StartsWith("hd-acme-"));
}

TEST(Label, KeepsTwoLongNamesWithACommonPrefixApart) {
    EXPECT_NE(label_for(kLong1, "ext4"), label_for(kLong2, "ext4"));
    EXPECT_NE(label_for(kLong1, "xfs"), label_for(kLong2, "xfs"));
}

TEST(Label, IsTheSameOnEveryBuildForTheSameName) {
    // Pinned values: labels are written to disks, so the hash (FNV-1a) must never change.
    EXPECT_EQ(label_for(kLong1, "ext4"), "hd-acme-cor-37c8");
    EXPECT_EQ(label_for(kLong2, "ext4"), "hd-acme-cor-3c81");
    EXPECT_EQ(label_for(kLong1, "xfs"), "hd-acme-37c8");
    EXPECT_EQ(label_for("abcdefghijklmn"), "hd-abcdefgh-34f2");
}

TEST(Label, RejectsAnUnknownFilesystemAndAnEmptyName) {
    try {
        label_for("acme", "btrfs");
        FAIL() << "btrfs accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid);
    }
    EXPECT_THROW(label_for(""), Error);
}

TEST(Uuid, IsARandomVersion4UuidInLowerCase) {
    for (int i = 0; i < 100; ++i)
        EXPECT_THAT(new_uuid(), MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
}

TEST(Uuid, DiffersEveryTime) {
    std::set<std::string> seen;
    for (int i = 0; i < 10000; ++i) seen.insert(new_uuid());
    EXPECT_EQ(seen.size(), 10000u);
}

#include <gtest/gtest.h>

#include "base/strings.h"

using namespace hostd;

TEST(Lower, TurnsAsciiCapitalsToSmallAndLeavesEveryOtherByte) {
    EXPECT_EQ(lower("TimeZone"), "timezone");
    EXPECT_EQ(lower("2F0C-A1B3-DB.Example.COM"), "2f0c-a1b3-db.example.com");
    EXPECT_EQ(lower(""), "");
    EXPECT_EQ(lower("@[`{ \t\x7f"), "@[`{ \t\x7f");  // the neighbours of A-Z and a-z
    EXPECT_EQ(lower("\xC3\x89T\xC3\x89"), "\xC3\x89t\xC3\x89");  // UTF-8 bytes are not letters here
}

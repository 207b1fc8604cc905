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

TEST(IsUtf8, AcceptsAsciiNulAndEveryWellFormedSequence) {
    EXPECT_TRUE(is_utf8(""));
    EXPECT_TRUE(is_utf8(std::string_view("a\0b", 3)));
    EXPECT_TRUE(is_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x98"));          // é € 🐘
    EXPECT_TRUE(is_utf8("\xed\x9f\xbf \xee\x80\x80 \xf4\x8f\xbf\xbf \xc2\x80"));  // U+D7FF U+E000 U+10FFFF U+80
}

TEST(IsUtf8, RefusesStrayBytesOverlongFormsSurrogatesAndCutSequences) {
    for (std::string_view bad : {"\xff", "\x80", "\xc3\x28", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf",
                                 "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xe2\x82",
                                 "ok\xc3", "\xf0\x9f\x90"})
        EXPECT_FALSE(is_utf8(bad)) << testing::PrintToString(std::string(bad));
}

TEST(IsDnsLabel, TakesLowerCaseLettersDigitsAndInnerDashesUpTo63) {
    for (std::string ok : {"a", "0", "db-2", "host-1-"}) EXPECT_TRUE(is_dns_label(ok)) << ok;
    EXPECT_TRUE(is_dns_label(std::string(63, 'x')));
    EXPECT_FALSE(is_dns_label(""));
    EXPECT_FALSE(is_dns_label(std::string(64, 'x')));
    for (const char* bad : {"-a", "Host", "a.b", "a_b", "a b", "é"}) EXPECT_FALSE(is_dns_label(bad)) << bad;
}

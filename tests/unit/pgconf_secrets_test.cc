#include <gtest/gtest.h>

#include <set>

#include "base/error.h"
#include "pgconf/pgconf.h"

using namespace hostd::pgconf;

TEST(ConnectionUrl, IsPlainForPlainValues) {
    EXPECT_EQ(connection_url("db.example.com", 5432, "acme", "s3cret", "postgres"),
              "postgresql://acme:s3cret@db.example.com:5432/postgres");
}

TEST(ConnectionUrl, PercentEncodesUserPasswordAndDatabase) {
    EXPECT_EQ(connection_url("127.0.0.1", 25001, "a@b:c", "p/w%d x", "my db/1"),
              "postgresql://a%40b%3Ac:p%2Fw%25d%20x@127.0.0.1:25001/my%20db%2F1");
}

TEST(ConnectionUrl, KeepsUnreservedCharactersAndEncodesUtf8Bytes) {
    EXPECT_EQ(connection_url("h", 1, "a-b.c_d~e", "é", "d"), "postgresql://a-b.c_d~e:%C3%A9@h:1/d");
}

TEST(ConnectionUrl, PutsIpv6HostsInBrackets) {
    EXPECT_EQ(connection_url("::1", 5432, "u", "p", "postgres"), "postgresql://u:p@[::1]:5432/postgres");
    EXPECT_EQ(connection_url("2001:db8::7", 6000, "u", "p", "db"), "postgresql://u:p@[2001:db8::7]:6000/db");
}

TEST(ConnectionUrl, LeavesOutAnEmptyPassword) {
    EXPECT_EQ(connection_url("h", 5432, "u", "", "postgres"), "postgresql://u@h:5432/postgres");
}

TEST(RandomPassword, Has24CharactersFromTheAlphanumericAlphabet) {
    for (int i = 0; i < 200; i++) {
        auto p = random_password();
        ASSERT_EQ(p.size(), 24u);
        for (char c : p) ASSERT_TRUE((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) << p;
    }
}

TEST(RandomPassword, IsDifferentEveryTimeAndUsesTheWholeAlphabet) {
    std::set<std::string> seen;
    std::set<char> chars;
    for (int i = 0; i < 1000; i++) {
        auto p = random_password();
        seen.insert(p);
        chars.insert(p.begin(), p.end());
    }
    EXPECT_EQ(seen.size(), 1000u);
    EXPECT_EQ(chars.size(), 62u);  // 24000 draws: every one of the 62 characters shows up
}

TEST(ScramVerifier, IsPostgresqlsFormatForAKnownSaltAndIterationCount) {
    // RFC 7677's password and salt; the keys as RFC 5802 defines them (the root suite checks
    // this function against a secret PostgreSQL itself made: pgconf_cluster_test).
    const std::string salt = "\x5b\x6d\x99\x68\x9d\x12\x35\x8e\xec\xa0\x4b\x14\x12\x36\xfa\x81";
    EXPECT_EQ(scram_verifier("pencil", 4096, salt),
              "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
              "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
}

TEST(ScramVerifier, DrawsAFreshSaltEachTime) {
    const auto a = scram_verifier("pencil"), b = scram_verifier("pencil");
    EXPECT_NE(a, b);
    EXPECT_TRUE(a.starts_with("SCRAM-SHA-256$4096:")) << a;
    EXPECT_EQ(scram_verifier("pencil", 1, "salt").substr(0, 24), "SCRAM-SHA-256$1:c2FsdA==");
}

TEST(ScramVerifier, RefusesWhatSaslprepWouldChangeAndEmptyPasswords) {
    for (const std::string& bad : {std::string(""), std::string("caf\xc3\xa9"), std::string("a\tb"), std::string("a\nb")}) {
        try {
            scram_verifier(bad);
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const hostd::Error& e) {
            EXPECT_EQ(e.code(), hostd::Errc::invalid);
            EXPECT_EQ(e.field(), "password");
        }
    }
    EXPECT_THROW(scram_verifier("pencil", 0), hostd::Error);
}

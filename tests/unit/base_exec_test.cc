#include <gtest/gtest.h>

#include "base/error.h"
#include "base/exec.h"
#include "base/size.h"

using namespace hostd;

TEST(Exec, CapturesStdoutStderrAndExitCode) {
    auto r = exec({.argv = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "err\n");
}

TEST(Exec, FeedsStdinToTheChild) {
    auto r = exec({.argv = {"/bin/cat"}, .input = std::string(200000, 'x')});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out.size(), 200000u);
}

TEST(Exec, ReportsAProgramThatDoesNotExist) {
    EXPECT_THROW(exec({.argv = {"/nonexistent/prog"}}), Error);
}

TEST(Exec, CheckedRunPutsStderrInTheError) {
    try {
        exec_checked({.argv = {"/bin/sh", "-c", "echo boom >&2; exit 1"}}, "Failed to do the thing");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("Failed to do the thing"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("boom"), std::string::npos);
    }
}

TEST(Exec, KillsAProgramThatRunsPastItsTimeout) {
    EXPECT_THROW(exec({.argv = {"/bin/sleep", "5"}, .timeout = std::chrono::milliseconds(100)}), Error);
}

TEST(Size, ParsesBinaryUnits) {
    EXPECT_EQ(parse_size("1G"), 1ull << 30);
    EXPECT_EQ(parse_size("512M"), 512ull << 20);
    EXPECT_EQ(parse_size("1.5GiB"), 3ull << 29);
    EXPECT_EQ(parse_size("4096"), 4096u);
    EXPECT_EQ(parse_size("2gb"), 2ull << 30);
}

TEST(Size, RejectsGarbage) {
    for (auto s : {"", "G", "-1G", "1X", "1..2G", "1e9", "99999999999P", ".5G"}) EXPECT_FALSE(parse_size(s)) << s;
}

TEST(Size, FormatsCompactly) {
    EXPECT_EQ(format_size(1ull << 30), "1G");
    EXPECT_EQ(format_size(3ull << 29), "1.5G");
    EXPECT_EQ(format_size(100), "100");
}

TEST(PortRange, ParsesAndValidates) {
    auto r = parse_port_range("25000-25999");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->first, 25000);
    EXPECT_EQ(r->second, 25999);
    EXPECT_FALSE(parse_port_range("0-10"));
    EXPECT_FALSE(parse_port_range("20-10"));
    EXPECT_FALSE(parse_port_range("1-70000"));
    EXPECT_FALSE(parse_port_range("abc"));
}

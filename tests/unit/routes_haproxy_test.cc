// The HAProxy route file: rendering against expected files in tests/data/routes/
// (HOSTD_UPDATE_GOLDEN=1 rewrites them), and apply_haproxy against the real `haproxy -c`.
// No root needed: everything lives in a temp directory; nothing is bound or reloaded.

#include <gtest/gtest.h>

#include "golden.h"
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "base/error.h"
#include "base/fs.h"
#include "routes/routes.h"

using namespace hostd;
using namespace hostd::routes;
namespace fs = std::filesystem;

namespace {

void expect_golden(const std::string& name, const std::string& actual) {
    hostd::test::expect_golden("routes/" + name, actual);
}

Route route(const std::string& tenant, uint16_t public_port, uint16_t backend_port) {
    return {.tenant = tenant, .bind_address = "0.0.0.0", .public_port = public_port, .backend_host = "127.0.0.1",
            .backend_port = backend_port};
}

std::vector<Route> three_unordered() {
    return {route("zeta", 5434, 25003), route("acme", 5432, 25001), route("mid-co", 5433, 25002)};
}

const std::string kHaproxy = "/usr/sbin/haproxy";

// A main config and hostd's file in a directory of their own.
class HaproxyDir : public ::testing::Test {
protected:
    void SetUp() override {
        if (!path_exists(kHaproxy)) GTEST_SKIP() << "needs " << kHaproxy;
        char tmpl[] = "/tmp/hostd-routes-test.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        s_.haproxy_bin = kHaproxy;
        s_.main_config = dir_ + "/haproxy.cfg";
        s_.hostd_config = dir_ + "/hostd.cfg";
        // Like Debian's haproxy.cfg: no proxies, but a stats socket, so that HAProxy has a
        // listener (and agrees to start) while hostd has no routes.
        write_file_atomic(s_.main_config,
                          "global\n"
                          "    maxconn 256\n"
                          "    stats socket " + dir_ + "/admin.sock mode 660 level admin\n"
                          "\n"
                          "defaults\n"
                          "    mode http\n"
                          "    timeout connect 5s\n"
                          "    timeout client 50s\n"
                          "    timeout server 50s\n");
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }
    std::vector<std::string> files() const {
        std::vector<std::string> out;
        for (auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }

    std::string dir_;
    HaproxySettings s_;
    int reloads_ = 0;
    std::function<void()> reload_ = [this] { reloads_++; };
};

}  // namespace

TEST(RenderHaproxy, MatchesTheExpectedFileWithoutRoutes) {
    expect_golden("empty.cfg", render_haproxy({}));
}

TEST(RenderHaproxy, MatchesTheExpectedFileWithRoutesSortedByTenant) {
    expect_golden("three.cfg", render_haproxy(three_unordered()));
}

TEST(RenderHaproxy, IsTheSameWhateverTheOrderOfRoutes) {
    auto rs = three_unordered();
    std::reverse(rs.begin(), rs.end());
    EXPECT_EQ(render_haproxy(rs), render_haproxy(three_unordered()));
}

TEST(RenderHaproxy, PutsIpv6AddressesInBrackets) {
    auto out = render_haproxy({{.tenant = "v6", .bind_address = "::", .public_port = 5432, .backend_host = "::1",
                                .backend_port = 25001}});
    EXPECT_NE(out.find("    bind [::]:5432\n"), std::string::npos) << out;
    EXPECT_NE(out.find("    server pg [::1]:25001 check"), std::string::npos) << out;
}

TEST(RenderHaproxy, RefusesTwoTenantsOnOnePublicPort) {
    // haproxy -c binds nothing and HAProxy binds with SO_REUSEPORT: only hostd can catch this.
    try {
        render_haproxy({route("a", 5432, 25001), route("b", 5432, 25002)});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::conflict);
        EXPECT_EQ(e.field(), "public_port");
    }
}

TEST(RenderHaproxy, RefusesTwoRoutesForOneTenant) {
    EXPECT_THROW(render_haproxy({route("a", 5432, 25001), route("a", 5433, 25002)}), Error);
}

TEST(RenderHaproxy, RefusesValuesThatWouldChangeTheFilesStructure) {
    auto bad_tenant = route("a b", 5432, 25001);
    EXPECT_THROW(render_haproxy({bad_tenant}), Error);
    auto bad_addr = route("a", 5432, 25001);
    bad_addr.bind_address = "0.0.0.0:1\n    bind 0.0.0.0";
    EXPECT_THROW(render_haproxy({bad_addr}), Error);
    auto comment = route("a", 5432, 25001);
    comment.backend_host = "127.0.0.1#";
    EXPECT_THROW(render_haproxy({comment}), Error);
    EXPECT_THROW(render_haproxy({route("a", 0, 25001)}), Error);
    EXPECT_THROW(render_haproxy({route("a", 5432, 0)}), Error);
}

TEST_F(HaproxyDir, WritesAValidFileAndReloadsOnce) {
    EXPECT_TRUE(apply_haproxy(s_, three_unordered(), reload_));
    EXPECT_EQ(reloads_, 1);
    EXPECT_EQ(read_file(s_.hostd_config), render_haproxy(three_unordered()));
    EXPECT_EQ(files(), (std::vector<std::string>{"haproxy.cfg", "hostd.cfg"}));
}

TEST_F(HaproxyDir, AcceptsAnEmptyRouteTable) {
    EXPECT_TRUE(apply_haproxy(s_, {}, reload_));
    EXPECT_EQ(reloads_, 1);
    EXPECT_EQ(read_file(s_.hostd_config), render_haproxy({}));
}

TEST_F(HaproxyDir, RefusesAnEmptyRouteTableWhenHaproxyWouldHaveNoListenerLeft) {
    // `haproxy -c` exits 2 ("will not start (no listener)"): taken as a rejection, since
    // reloading into it would stop HAProxy.
    write_file_atomic(s_.main_config, "global\n    maxconn 256\n");
    try {
        apply_haproxy(s_, {}, reload_);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("no listener"), std::string::npos) << e.what();
    }
    EXPECT_EQ(reloads_, 0);
    EXPECT_EQ(files(), (std::vector<std::string>{"haproxy.cfg"}));
}

TEST_F(HaproxyDir, DoesNotReloadWhenNothingChanged) {
    ASSERT_TRUE(apply_haproxy(s_, three_unordered(), reload_));
    auto rs = three_unordered();
    std::reverse(rs.begin(), rs.end());
    EXPECT_FALSE(apply_haproxy(s_, rs, reload_));
    EXPECT_EQ(reloads_, 1);
    EXPECT_EQ(files(), (std::vector<std::string>{"haproxy.cfg", "hostd.cfg"}));
}

TEST_F(HaproxyDir, ReloadsAgainWhenARouteChanges) {
    ASSERT_TRUE(apply_haproxy(s_, three_unordered(), reload_));
    auto rs = three_unordered();
    rs.pop_back();
    EXPECT_TRUE(apply_haproxy(s_, rs, reload_));
    EXPECT_EQ(reloads_, 2);
    EXPECT_EQ(read_file(s_.hostd_config), render_haproxy(rs));
}

TEST_F(HaproxyDir, KeepsTheLastGoodFileWhenHaproxyRejectsTheNewOne) {
    ASSERT_TRUE(apply_haproxy(s_, three_unordered(), reload_));
    const std::string before = read_file(s_.hostd_config);
    auto rs = three_unordered();
    rs.push_back(route("broken", 5440, 25009));
    rs.back().bind_address = "999.1.1.1";
    try {
        apply_haproxy(s_, rs, reload_);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::failed);
        std::string msg = e.what();
        EXPECT_EQ(msg.rfind("HAProxy rejected the new configuration: ", 0), 0u) << msg;
        EXPECT_NE(msg.find("999.1.1.1"), std::string::npos) << msg;  // HAProxy's own words
        EXPECT_EQ(msg.find(".tmp"), std::string::npos) << msg;        // names the real file instead
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    EXPECT_EQ(read_file(s_.hostd_config), before);
    EXPECT_EQ(reloads_, 1);
    EXPECT_EQ(files(), (std::vector<std::string>{"haproxy.cfg", "hostd.cfg"}));
}

TEST_F(HaproxyDir, RefusesTwoTenantsOnOnePortBeforeWritingAnything) {
    ASSERT_TRUE(apply_haproxy(s_, three_unordered(), reload_));
    const std::string before = read_file(s_.hostd_config);
    auto rs = three_unordered();
    rs.push_back(route("dup", 5432, 25009));
    EXPECT_THROW(apply_haproxy(s_, rs, reload_), Error);
    EXPECT_EQ(read_file(s_.hostd_config), before);
    EXPECT_EQ(reloads_, 1);
    EXPECT_EQ(files(), (std::vector<std::string>{"haproxy.cfg", "hostd.cfg"}));
}

TEST_F(HaproxyDir, LeavesNoTempFileWhenTheFileIsMissingAndHaproxyRejects) {
    auto rs = three_unordered();
    rs[0].bind_address = "999.1.1.1";
    EXPECT_THROW(apply_haproxy(s_, rs, reload_), Error);
    EXPECT_FALSE(path_exists(s_.hostd_config));
    EXPECT_EQ(reloads_, 0);
    EXPECT_EQ(files(), (std::vector<std::string>{"haproxy.cfg"}));
}

TEST_F(HaproxyDir, PassesOnAFailedReload) {
    EXPECT_THROW(apply_haproxy(s_, three_unordered(), [] { throw Error(Errc::failed, "reload failed"); }), Error);
    // The validated file is in place; the caller decides what to do about the reload.
    EXPECT_EQ(read_file(s_.hostd_config), render_haproxy(three_unordered()));
    EXPECT_EQ(files(), (std::vector<std::string>{"haproxy.cfg", "hostd.cfg"}));
}

TEST_F(HaproxyDir, ReportsAMissingHaproxyBinary) {
    s_.haproxy_bin = dir_ + "/no-haproxy";
    EXPECT_THROW(apply_haproxy(s_, three_unordered(), reload_), Error);
    EXPECT_EQ(reloads_, 0);
    EXPECT_EQ(files(), (std::vector<std::string>{"haproxy.cfg"}));
}

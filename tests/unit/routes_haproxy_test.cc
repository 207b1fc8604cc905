// The HAProxy route file: rendering against expected files in tests/data/routes/
// (HOSTD_UPDATE_GOLDEN=1 rewrites them), and apply_haproxy against the real `haproxy -c`.
// No root needed: everything lives in a temp directory; nothing is bound or reloaded.

#include <gtest/gtest.h>

#include "golden.h"
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "base/error.h"
#include "base/exec.h"
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
    EXPECT_NE(out.find("    server pg [::1]:25001\n"), std::string::npos) << out;
}

TEST(RenderHaproxy, ChecksNoTenantServer) {
    // One server a listener: a health check has nothing to fail over to and costs the tenant a
    // forked backend each time (the idle host's CPU); routed and idle listeners alike.
    auto out = render_haproxy(haproxy_listeners(three_unordered(), "0.0.0.0", {5440}), "/run/h.sock");
    EXPECT_NE(out.find("    server pg 127.0.0.1:25001\n"), std::string::npos) << out;
    EXPECT_NE(out.find("    server pg 127.0.0.1:1 disabled\n"), std::string::npos) << out;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("    server ", 0) == 0) EXPECT_EQ(line.find(" check"), std::string::npos) << line;
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

TEST_F(HaproxyDir, AcceptsAnEmptyRouteTableWhenTheMainConfigHasNoListener) {
    // Without a listener `haproxy -c` exits 2 ("will not start (no listener)"); hostd's file
    // always declares one: its runtime socket.
    write_file_atomic(s_.main_config, "global\n    maxconn 256\n");
    EXPECT_TRUE(apply_haproxy(s_, {}, reload_));
    EXPECT_EQ(reloads_, 1);
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

// ---- Listeners switched at run time (no reload) ----

namespace {

Route local(const std::string& tenant, uint16_t public_port, uint16_t backend_port) {
    Route r = route(tenant, public_port, backend_port);
    r.bind_address = "127.0.0.1";
    return r;
}

HaproxyListeners two_idle_one_routed() {
    return haproxy_listeners({local("acme", 28001, 25001)}, "127.0.0.1", {28002, 28003});
}

}  // namespace

TEST(RenderHaproxy, MatchesTheExpectedFileWithIdleListeners) {
    expect_golden("idle.cfg", render_haproxy(two_idle_one_routed(), "/run/haproxy-hostd.sock"));
}

TEST(HaproxyListenersOf, PutsRoutesOnTheirPortsAndIdleOnesBeside) {
    HaproxyListeners ls = haproxy_listeners({local("acme", 28001, 25001)}, "127.0.0.1", {28001, 28002});
    ASSERT_EQ(ls.by_port.size(), 2u);
    ASSERT_TRUE(ls.by_port.at(28001).route);  // a route's port is not idle
    EXPECT_EQ(ls.by_port.at(28001).route->tenant, "acme");
    EXPECT_FALSE(ls.by_port.at(28002).route);
    EXPECT_EQ(ls.by_port.at(28002).bind_address, "127.0.0.1");
}

TEST(PlanHaproxy, RoutesATenantOnAnIdleListenerWithTwoCommands) {
    HaproxyPlan p = plan_haproxy(two_idle_one_routed(), {local("acme", 28001, 25001), local("new", 28002, 25002)});
    EXPECT_EQ(p.reload_because, "");
    EXPECT_EQ(p.commands, (std::vector<std::string>{"set server hostd_28002/pg addr 127.0.0.1 port 25002",
                                                    "set server hostd_28002/pg state ready"}));
    ASSERT_TRUE(p.next.by_port.at(28002).route);
    EXPECT_EQ(p.next.by_port.at(28002).route->tenant, "new");
    EXPECT_FALSE(p.next.by_port.at(28003).route);
}

TEST(PlanHaproxy, UnroutesATenantAndCutsItsSessions) {
    HaproxyPlan p = plan_haproxy(two_idle_one_routed(), {});
    EXPECT_EQ(p.reload_because, "");
    EXPECT_EQ(p.commands, (std::vector<std::string>{"set server hostd_28001/pg state maint",
                                                    "shutdown sessions server hostd_28001/pg"}));
    EXPECT_FALSE(p.next.by_port.at(28001).route);
    EXPECT_EQ(p.next.by_port.size(), 3u);  // the listener stays, idle
}

TEST(PlanHaproxy, CutsTheOldTenantsSessionsBeforeAnotherTakesItsPort) {
    HaproxyPlan p = plan_haproxy(two_idle_one_routed(), {local("other", 28001, 25009)});
    EXPECT_EQ(p.commands, (std::vector<std::string>{"set server hostd_28001/pg state maint",
                                                    "shutdown sessions server hostd_28001/pg",
                                                    "set server hostd_28001/pg addr 127.0.0.1 port 25009",
                                                    "set server hostd_28001/pg state ready"}));
}

TEST(PlanHaproxy, NothingToDoForTheSameTable) {
    HaproxyPlan p = plan_haproxy(two_idle_one_routed(), {local("acme", 28001, 25001)});
    EXPECT_EQ(p.reload_because, "");
    EXPECT_TRUE(p.commands.empty());
}

TEST(PlanHaproxy, ReloadsWhenAPortHasNoListenerTheBindDiffersOrTheBackendIsAName) {
    HaproxyPlan p = plan_haproxy(two_idle_one_routed(), {local("acme", 28001, 25001), local("far", 28009, 25002)});
    EXPECT_EQ(p.reload_because, "no listener on port 28009 for tenant 'far'");
    EXPECT_TRUE(p.commands.empty());
    EXPECT_FALSE(p.next.by_port.count(28009));

    p = plan_haproxy(two_idle_one_routed(), {route("acme", 28001, 25001)});  // binds 0.0.0.0
    EXPECT_NE(p.reload_because.find("binds 0.0.0.0"), std::string::npos) << p.reload_because;

    Route named = local("n", 28002, 25002);
    named.backend_host = "db.internal";
    p = plan_haproxy(two_idle_one_routed(), {named});
    EXPECT_NE(p.reload_because.find("not an IP address"), std::string::npos) << p.reload_because;
    EXPECT_TRUE(p.commands.empty());
}

TEST(PlanHaproxy, ValidatesTheTable) {
    EXPECT_THROW(plan_haproxy(two_idle_one_routed(), {local("a", 28002, 1), local("b", 28002, 2)}), Error);
}

TEST(CheckHaproxyReply, AcceptsWhatHaproxy26AnswersWhenDone) {
    EXPECT_NO_THROW(check_haproxy_reply("set server hostd_1/pg state ready", "\n"));
    EXPECT_NO_THROW(check_haproxy_reply("shutdown sessions server hostd_1/pg", ""));
    EXPECT_NO_THROW(check_haproxy_reply("set server hostd_1/pg addr 127.0.0.1 port 5",
                                        "no need to change the addr, port changed from '1' to '5' by 'stats socket command'\n\n"));
    EXPECT_NO_THROW(check_haproxy_reply("set server hostd_1/pg addr 10.0.0.1 port 5",
                                        "IP changed from '127.0.0.1' to '10.0.0.1', port changed from '1' to '5' by 'stats socket command'\n"));
}

TEST(CheckHaproxyReply, NamesTheCommandAndHaproxysWordsOtherwise) {
    try {
        check_haproxy_reply("set server nope/pg state ready", "No such backend.\n\n");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "HAProxy refused 'set server nope/pg state ready': No such backend.");
    }
    EXPECT_THROW(check_haproxy_reply("set server hostd_1/pg addr 999.0.0.1 port 5",
                                     "Invalid addr '999.0.0.1' by 'stats socket command'\n"),
                 Error);
    EXPECT_THROW(check_haproxy_reply("set server hostd_1/pg addr 127.0.0.1 port 5", ""), Error);
}

TEST(HaproxyRuntimeCommand, SaysWhichSocketItCannotReach) {
    try {
        haproxy_runtime_command("/nonexistent/hostd-test.sock", "show info");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::unavailable);
        EXPECT_NE(std::string(e.what()).find("/nonexistent/hostd-test.sock"), std::string::npos) << e.what();
    }
}

namespace {

// The writer with a recording runtime API (replies like HAProxy 2.6's) and a fake port check.
class HaproxyRuntimeWriter : public HaproxyDir {
protected:
    void SetUp() override {
        HaproxyDir::SetUp();
        if (IsSkipped()) return;
        s_.bind_address = "127.0.0.1";
        s_.first_port = 28001;
        s_.last_port = 28010;
        s_.idle_listeners = 3;
        rt_.send = [this](const std::string& c) -> std::string {
            sent_.push_back(c);
            if (fail_) throw Error(Errc::unavailable, "Cannot reach HAProxy's runtime socket");
            return c.find(" addr ") != std::string::npos ? "no need to change the addr, port changed\n" : "";
        };
        rt_.port_free = [this](uint16_t p) { return !busy_.count(p); };
        rt_.note = [this](const std::string& m) { notes_.push_back(m); };
    }
    std::unique_ptr<RouteWriter> writer() { return haproxy_writer(s_, reload_, rt_); }

    HaproxyRuntime rt_;
    std::vector<std::string> sent_, notes_;
    std::set<uint16_t> busy_;
    bool fail_ = false;
};

}  // namespace

TEST_F(HaproxyRuntimeWriter, LoadsOnceThenRoutesAndUnroutesWithoutAReload) {
    busy_ = {28001, 28002, 28003, 28004, 28005, 28006, 28007};  // leaves 28008-28010 (and a's port)
    auto w = writer();
    ASSERT_TRUE(w->apply({local("a", 28009, 25001)}, true));
    EXPECT_EQ(reloads_, 1);
    EXPECT_EQ(w->idle_ports(), (std::set<uint16_t>{28008, 28010}));  // only free ports, a's is not idle
    // a declares the runtime socket, so there is always a listener
    EXPECT_NE(read_file(s_.hostd_config).find("stats socket /run/haproxy-hostd.sock mode 600 level admin"), std::string::npos);

    ASSERT_TRUE(w->apply({local("a", 28009, 25001), local("b", 28010, 25002)}, false));
    EXPECT_EQ(reloads_, 1);
    EXPECT_EQ(sent_, (std::vector<std::string>{"set server hostd_28010/pg addr 127.0.0.1 port 25002",
                                               "set server hostd_28010/pg state ready"}));
    EXPECT_EQ(w->idle_ports(), (std::set<uint16_t>{28008}));
    const std::string cfg = read_file(s_.hostd_config);  // the file says what runs
    EXPECT_EQ(cfg, render_haproxy(haproxy_listeners({local("a", 28009, 25001), local("b", 28010, 25002)}, "127.0.0.1",
                                                    {28008}),
                                  s_.runtime_socket));
    EXPECT_EQ(exec({.argv = {kHaproxy, "-c", "-q", "-f", s_.main_config, "-f", s_.hostd_config}}).exit_code, 0);

    sent_.clear();
    ASSERT_TRUE(w->apply({local("b", 28010, 25002)}, false));
    EXPECT_EQ(reloads_, 1);
    EXPECT_EQ(sent_, (std::vector<std::string>{"set server hostd_28009/pg state maint",
                                               "shutdown sessions server hostd_28009/pg"}));
    EXPECT_EQ(w->idle_ports(), (std::set<uint16_t>{28008, 28009}));
    EXPECT_FALSE(w->apply({local("b", 28010, 25002)}, false));  // nothing changed: nothing sent
    EXPECT_EQ(reloads_, 1);
    EXPECT_TRUE(notes_.empty());
    EXPECT_EQ(files(), (std::vector<std::string>{"haproxy.cfg", "hostd.cfg"}));
}

TEST_F(HaproxyRuntimeWriter, ReloadsWhenNoIdleListenerIsOnTheNewPortAndSaysWhy) {
    auto w = writer();
    ASSERT_TRUE(w->apply({}, true));
    const std::set<uint16_t> idle = w->idle_ports();
    ASSERT_EQ(idle.size(), 3u);
    uint16_t other = 28001;
    while (idle.count(other)) other++;
    ASSERT_TRUE(w->apply({local("x", other, 25001)}, false));
    EXPECT_EQ(reloads_, 2);
    EXPECT_TRUE(sent_.empty());
    ASSERT_EQ(notes_.size(), 1u);
    EXPECT_NE(notes_[0].find("no listener on port " + std::to_string(other)), std::string::npos) << notes_[0];
    EXPECT_EQ(w->idle_ports(), idle);  // the idle listeners are kept over the reload
}

TEST_F(HaproxyRuntimeWriter, FallsBackToAReloadWhenTheRuntimeApiFails) {
    auto w = writer();
    ASSERT_TRUE(w->apply({}, true));
    const uint16_t p = *w->idle_ports().begin();
    fail_ = true;
    ASSERT_TRUE(w->apply({local("x", p, 25001)}, false));
    EXPECT_EQ(reloads_, 2);
    ASSERT_EQ(notes_.size(), 1u);
    EXPECT_NE(notes_[0].find("runtime API failed: Cannot reach"), std::string::npos) << notes_[0];
    EXPECT_NE(read_file(s_.hostd_config).find("# tenant x"), std::string::npos);
    EXPECT_EQ(files(), (std::vector<std::string>{"haproxy.cfg", "hostd.cfg"}));
}

TEST_F(HaproxyRuntimeWriter, ReadsOnlyTheIdleListenersFromTheFile) {
    ASSERT_TRUE(writer()->apply({local("a", 28004, 25001)}, true));
    auto w = writer();
    const std::set<uint16_t> idle = w->idle_ports();
    EXPECT_EQ(idle.size(), 3u);
    EXPECT_FALSE(idle.count(28004));  // a's listener routes a
}

TEST_F(HaproxyRuntimeWriter, KeepsTheFilesIdleListenersAcrossARestartOfHostd) {
    ASSERT_TRUE(writer()->apply({}, true));
    const std::string before = read_file(s_.hostd_config);
    busy_ = {28001, 28002, 28003, 28004, 28005, 28006, 28007, 28008, 28009, 28010};  // HAProxy holds them
    auto again = writer();  // a new hostd: reads which ports the file's listeners have
    auto idle = again->idle_ports();  // before its first change too: from the file
    EXPECT_EQ(idle.size(), 3u);
    EXPECT_NE(before.find("listen hostd_" + std::to_string(*idle.begin())), std::string::npos);
    EXPECT_FALSE(again->apply({}, false));
    EXPECT_EQ(read_file(s_.hostd_config), before);
    EXPECT_EQ(again->idle_ports().size(), 3u);
}

// ---- HA tenants (#17): a listener whose servers are the members, checked over HTTP ----

namespace {

Route ha_route(const std::string& tenant, uint16_t public_port) {
    Route r{.tenant = tenant, .bind_address = "127.0.0.1", .public_port = public_port, .check_path = "/primary"};
    r.members = {{.name = "db-1", .host = "10.231.0.2", .port = 5501, .check_port = 8101},
                 {.name = "db-2", .host = "10.231.0.3", .port = 5502, .check_port = 8102},
                 {.name = "db-3", .host = "fd00::4", .port = 5501, .check_port = 8101}};
    return r;
}

}  // namespace

TEST(RenderHaproxy, MatchesTheExpectedFileWithAnHaListenerBesidePlainOnes) {
    auto rs = three_unordered();
    rs.push_back(ha_route("shop", 6432));
    rs.back().bind_address = "0.0.0.0";
    const std::string out = render_haproxy(rs);
    expect_golden("ha.cfg", out);
    // The HA listener as tests/e2e/ha runs it; the plain ones exactly as without it.
    EXPECT_NE(out.find("listen hostd_6432\n"
                       "    # tenant shop (HA): the member answering GET /primary with 200\n"
                       "    # Checked, unlike single-host tenants: each member's Patroni answers from its own state,\n"
                       "    # no PostgreSQL process is forked for it.\n"
                       "    bind 0.0.0.0:6432\n"
                       "    mode tcp\n"
                       "    option httpchk GET /primary\n"
                       "    http-check expect status 200\n"
                       "    default-server inter 1s fastinter 500ms fall 2 rise 1 on-marked-down shutdown-sessions\n"
                       "    server db-1 10.231.0.2:5501 check port 8101\n"
                       "    server db-2 10.231.0.3:5502 check port 8102\n"
                       "    server db-3 [fd00::4]:5501 check port 8101\n"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find(render_haproxy(three_unordered()).substr(render_haproxy({}).size() - std::string("\n# No routes.\n").size())),
              std::string::npos)
        << out;
}

TEST(RenderHaproxy, RefusesHaRoutesThatCouldChangeTheFileOrAreHalfGiven) {
    auto refused = [](auto change, const std::string& field) {
        Route r = ha_route("shop", 6432);
        change(r);
        try {
            render_haproxy({r});
            ADD_FAILURE() << "accepted a bad " << field;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::invalid) << e.what();
            EXPECT_EQ(e.field(), field) << e.what();
        }
    };
    refused([](Route& r) { r.backend_host = "127.0.0.1"; r.backend_port = 25001; }, "backend_host");
    refused([](Route& r) { r.check_path = ""; }, "check_path");
    refused([](Route& r) { r.check_path = "primary"; }, "check_path");
    refused([](Route& r) { r.check_path = "/primary\n    server evil 1.2.3.4:5432"; }, "check_path");
    refused([](Route& r) { r.check_path = "/primary HTTP/1.1"; }, "check_path");
    refused([](Route& r) { r.members[1].name = "db-1"; }, "members");
    refused([](Route& r) { r.members[0].name = "db 1"; }, "members");
    refused([](Route& r) { r.members[0].name = ""; }, "members");
    refused([](Route& r) { r.members[0].host = "10.0.0.1 backup"; }, "members");
    refused([](Route& r) { r.members[0].host = "*"; }, "members");
    refused([](Route& r) { r.members[0].port = 0; }, "members");
    refused([](Route& r) { r.members[2].check_port = 0; }, "members");
    refused([](Route& r) { r.sni_host = "shop.db.example.com"; }, "sni_host");
    // A plain route with a check path is half an HA route.
    Route plain = route("a", 5432, 25001);
    plain.check_path = "/primary";
    EXPECT_THROW(render_haproxy({plain}), Error);
    // Two tenants on one port, one of them HA: still a conflict.
    try {
        render_haproxy({ha_route("shop", 5432), local("acme", 5432, 25001)});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::conflict);
    }
}

TEST(RenderTraefik, RefusesAnHaRoute) {
    try {
        render_traefik(TraefikSettings{}, ha_route("shop", 6432));
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid);
        EXPECT_NE(std::string(e.what()).find("haproxy"), std::string::npos) << e.what();
    }
}

TEST(PlanHaproxy, ReloadsForAnHaListenerAddedChangedOrRemovedAndNamesIt) {
    // Added: even on an idle listener's port (that one has a `pg` server, no checks).
    HaproxyPlan p = plan_haproxy(two_idle_one_routed(), {local("acme", 28001, 25001), ha_route("shop", 28002)});
    EXPECT_EQ(p.reload_because, "the HA listener of tenant 'shop' on port 28002 is new");
    EXPECT_TRUE(p.commands.empty());
    EXPECT_FALSE(p.next.by_port.at(28002).route);  // unchanged until the reload

    const HaproxyListeners running = haproxy_listeners({local("acme", 28001, 25001), ha_route("shop", 28005)}, "127.0.0.1",
                                                       {28002, 28003});
    Route moved = ha_route("shop", 28005);
    moved.members[1].host = "10.231.0.9";
    EXPECT_EQ(plan_haproxy(running, {local("acme", 28001, 25001), moved}).reload_because,
              "the HA listener of tenant 'shop' on port 28005 changed");
    Route fewer = ha_route("shop", 28005);
    fewer.members.pop_back();
    EXPECT_EQ(plan_haproxy(running, {local("acme", 28001, 25001), fewer}).reload_because,
              "the HA listener of tenant 'shop' on port 28005 changed");
    Route replica = ha_route("shop", 28005);
    replica.check_path = "/replica";
    EXPECT_EQ(plan_haproxy(running, {local("acme", 28001, 25001), replica}).reload_because,
              "the HA listener of tenant 'shop' on port 28005 changed");
    Route bind = ha_route("shop", 28005);
    bind.bind_address = "0.0.0.0";
    EXPECT_EQ(plan_haproxy(running, {local("acme", 28001, 25001), bind}).reload_because,
              "the HA listener of tenant 'shop' on port 28005 changed");
    // Removed, or its port given to a plain tenant: its listener has no `pg` server to switch.
    EXPECT_EQ(plan_haproxy(running, {local("acme", 28001, 25001)}).reload_because,
              "the HA listener of tenant 'shop' on port 28005 goes");
    EXPECT_EQ(plan_haproxy(running, {local("acme", 28001, 25001), local("other", 28005, 25005)}).reload_because,
              "the HA listener of tenant 'shop' on port 28005 goes");
    // Another tenant's HA listener on that port is new, the old one goes.
    EXPECT_NE(plan_haproxy(running, {local("acme", 28001, 25001), ha_route("mall", 28005)}).reload_because, "");
}

TEST(PlanHaproxy, AnUnchangedHaListenerLeavesPlainRoutesOnTheRuntimeApi) {
    const HaproxyListeners running = haproxy_listeners({local("acme", 28001, 25001), ha_route("shop", 28005)}, "127.0.0.1",
                                                       {28002, 28003});
    HaproxyPlan p = plan_haproxy(running, {local("acme", 28001, 25001), ha_route("shop", 28005), local("new", 28002, 25002)});
    EXPECT_EQ(p.reload_because, "");
    EXPECT_EQ(p.commands, (std::vector<std::string>{"set server hostd_28002/pg addr 127.0.0.1 port 25002",
                                                    "set server hostd_28002/pg state ready"}));
    ASSERT_TRUE(p.next.by_port.at(28005).route);
    EXPECT_EQ(p.next.by_port.at(28005).route->members.size(), 3u);
    p = plan_haproxy(running, {ha_route("shop", 28005)});  // acme goes: no reload either
    EXPECT_EQ(p.reload_because, "");
    EXPECT_EQ(p.commands, (std::vector<std::string>{"set server hostd_28001/pg state maint",
                                                    "shutdown sessions server hostd_28001/pg"}));
    EXPECT_TRUE(plan_haproxy(running, {local("acme", 28001, 25001), ha_route("shop", 28005)}).commands.empty());
}

TEST_F(HaproxyDir, HaproxyAcceptsTheHaListener) {
    auto rs = three_unordered();
    rs.push_back(ha_route("shop", 6432));
    EXPECT_TRUE(apply_haproxy(s_, rs, reload_));
    EXPECT_EQ(reloads_, 1);
    EXPECT_NE(read_file(s_.hostd_config).find("    server db-3 [fd00::4]:5501 check port 8101\n"), std::string::npos);
}

TEST_F(HaproxyRuntimeWriter, ReloadsForAnHaTenantAndKeepsTheRuntimeApiForPlainOnes) {
    auto w = writer();
    ASSERT_TRUE(w->apply({}, true));
    const uint16_t idle = *w->idle_ports().begin();
    ASSERT_TRUE(w->apply({ha_route("shop", 28011)}, false));
    EXPECT_EQ(reloads_, 2);
    EXPECT_TRUE(sent_.empty());
    ASSERT_EQ(notes_.size(), 1u);
    EXPECT_EQ(notes_[0], "Reloading HAProxy: the HA listener of tenant 'shop' on port 28011 is new");
    EXPECT_NE(read_file(s_.hostd_config).find("option httpchk GET /primary"), std::string::npos);
    EXPECT_EQ(exec({.argv = {kHaproxy, "-c", "-q", "-f", s_.main_config, "-f", s_.hostd_config}}).exit_code, 0);

    // A plain tenant beside it: the runtime API, no reload; the HA listener stays in the file.
    ASSERT_TRUE(w->apply({ha_route("shop", 28011), local("acme", idle, 25001)}, false));
    EXPECT_EQ(reloads_, 2);
    EXPECT_EQ(sent_.size(), 2u);
    EXPECT_NE(read_file(s_.hostd_config).find("option httpchk GET /primary"), std::string::npos);
    EXPECT_FALSE(w->apply({ha_route("shop", 28011), local("acme", idle, 25001)}, false));

    ASSERT_TRUE(w->apply({local("acme", idle, 25001)}, false));  // the HA tenant goes: a reload
    EXPECT_EQ(reloads_, 3);
    EXPECT_EQ(read_file(s_.hostd_config).find("httpchk"), std::string::npos);
}

// ---- Hibernation: the waker as every listener's backup server ----

namespace {

Route waking(const std::string& tenant, uint16_t public_port, uint16_t backend_port, bool hibernated) {
    Route r = local(tenant, public_port, backend_port);
    r.waker_port = 22432;
    r.hibernated = hibernated;
    return r;
}

HaproxyListeners with_waker() {
    return haproxy_listeners({waking("acme", 28001, 25001, false), waking("sleepy", 28004, 25004, true)}, "127.0.0.1",
                             {28002}, 22432);
}

}  // namespace

TEST(RenderHaproxy, MatchesTheExpectedFileWithAWakerAndAHibernatedTenant) {
    const std::string out = render_haproxy(with_waker(), "/run/haproxy-hostd.sock");
    expect_golden("hibernate.cfg", out);
    // The hibernated tenant's own server is in maintenance; every listener has the waker as backup.
    EXPECT_NE(out.find("    server pg 127.0.0.1:25004 disabled\n"), std::string::npos);
    EXPECT_NE(out.find("    server pg 127.0.0.1:25001\n"), std::string::npos);
    size_t wakes = 0;
    for (size_t p = 0; (p = out.find("server wake 127.0.0.1:22432 backup send-proxy-v2\n", p)) != std::string::npos; p++) wakes++;
    EXPECT_EQ(wakes, 3u);
}

TEST(PlanHaproxy, HibernatesAndWakesATenantWithOneCommandAndCutsNoSession) {
    HaproxyPlan sleep = plan_haproxy(with_waker(), {waking("acme", 28001, 25001, true), waking("sleepy", 28004, 25004, true)});
    EXPECT_EQ(sleep.reload_because, "");
    EXPECT_EQ(sleep.commands, (std::vector<std::string>{"set server hostd_28001/pg state maint"}));
    EXPECT_TRUE(sleep.next.by_port.at(28001).route->hibernated);
    HaproxyPlan wake = plan_haproxy(with_waker(), {waking("acme", 28001, 25001, false), waking("sleepy", 28004, 25004, false)});
    EXPECT_EQ(wake.reload_because, "");
    EXPECT_EQ(wake.commands, (std::vector<std::string>{"set server hostd_28004/pg state ready"}));
    // The plan's next state renders as the file a reload would load.
    EXPECT_EQ(render_haproxy(wake.next, "/s"),
              render_haproxy(haproxy_listeners({waking("acme", 28001, 25001, false), waking("sleepy", 28004, 25004, false)},
                                               "127.0.0.1", {28002}, 22432),
                             "/s"));
}

TEST(PlanHaproxy, RoutesAHibernatedTenantOnAnIdleListenerWithoutMakingItReady) {
    HaproxyPlan p = plan_haproxy(with_waker(), {waking("acme", 28001, 25001, false), waking("sleepy", 28004, 25004, true),
                                                waking("late", 28002, 25002, true)});
    EXPECT_EQ(p.reload_because, "");
    EXPECT_EQ(p.commands, (std::vector<std::string>{"set server hostd_28002/pg addr 127.0.0.1 port 25002"}));
}

TEST(PlanHaproxy, ReloadsWhenAListenerLacksTheWakerOrHasOneNoLongerWanted) {
    // Listeners from before [hibernate] was turned on: the runtime API cannot add a server.
    HaproxyPlan on = plan_haproxy(two_idle_one_routed(), {waking("acme", 28001, 25001, false)});
    EXPECT_NE(on.reload_because.find("no waker server"), std::string::npos) << on.reload_because;
    EXPECT_TRUE(on.commands.empty());
    HaproxyPlan off = plan_haproxy(with_waker(), {local("acme", 28001, 25001), local("sleepy", 28004, 25004)});
    EXPECT_NE(off.reload_because.find("no longer wanted"), std::string::npos) << off.reload_because;
}

TEST(PlanHaproxy, UnroutesAHibernatedTenantAsAnyOther) {
    HaproxyPlan p = plan_haproxy(with_waker(), {waking("acme", 28001, 25001, false)});
    EXPECT_EQ(p.commands, (std::vector<std::string>{"set server hostd_28004/pg state maint",
                                                    "shutdown sessions server hostd_28004/pg"}));
    EXPECT_FALSE(p.next.by_port.at(28004).route);
    EXPECT_EQ(p.next.by_port.at(28004).waker_port, 22432);  // an idle listener: the waker closes its connections
}

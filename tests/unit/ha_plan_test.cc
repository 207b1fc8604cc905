// ha/plan: Patroni's /cluster read back (fixtures in tests/data/ha/: cluster-captured.json is
// Patroni 3.0.2's answer captured in tests/e2e/ha, the others are written in its shape, from its
// cluster_as_json), the switchover's candidate with every refusal, the tenant's multi-host URL.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/fs.h"
#include "ha/plan.h"

namespace {

using namespace hostd;
using ha::MemberRole;

const std::vector<std::string> kMembers = {"hostd-ha-1", "hostd-ha-2", "hostd-ha-3"};

ha::ClusterView fixture(const std::string& name) {
    return ha::parse_cluster(read_file(std::string(HOSTD_TEST_DATA) + "/ha/" + name), kMembers);
}

TEST(HaCluster, ReadsRolesSyncLagTimelineAndAddresses) {
    const ha::ClusterView c = fixture("cluster-sync.json");
    ASSERT_EQ(c.members.size(), 3u);
    ASSERT_NE(c.primary(), nullptr);
    EXPECT_EQ(c.primary()->name, "hostd-ha-1");
    const auto& p = c.members[0];
    EXPECT_EQ(p.role, MemberRole::primary);
    EXPECT_EQ(p.state, "running");
    EXPECT_FALSE(p.lag_bytes);  // the primary has none
    EXPECT_EQ(p.timeline, 3u);
    EXPECT_EQ(p.host, "10.231.0.2");
    EXPECT_EQ(p.port, 5501);
    const auto& s = c.members[1];
    EXPECT_EQ(s.role, MemberRole::replica);
    EXPECT_TRUE(s.sync);
    EXPECT_EQ(s.lag_bytes, 0u);
    const auto& r = c.members[2];
    EXPECT_EQ(r.role, MemberRole::replica);
    EXPECT_FALSE(r.sync);
    EXPECT_EQ(r.lag_bytes, 2048u);
    EXPECT_TRUE(r.running());
    EXPECT_FALSE(c.paused);
    EXPECT_STREQ(ha::member_role_name(r.role), "replica");
}

TEST(HaCluster, ReadsAnAnswerCapturedFromPatroni) {
    const ha::ClusterView c = ha::parse_cluster(read_file(std::string(HOSTD_TEST_DATA) + "/ha/cluster-captured.json"),
                                                {"ha-pure-tb-1", "ha-pure-tb-2", "ha-pure-tb-3"});
    ASSERT_EQ(c.members.size(), 3u);
    EXPECT_EQ(c.primary()->name, "ha-pure-tb-1");
    EXPECT_EQ(c.primary()->host, "10.231.0.2");
    for (size_t i : {1, 2}) {
        EXPECT_EQ(c.members[i].role, MemberRole::replica);
        EXPECT_FALSE(c.members[i].sync);  // captured before Patroni chose its synchronous standby
        EXPECT_EQ(c.members[i].lag_bytes, 0u);
        EXPECT_EQ(c.members[i].timeline, 1u);
        EXPECT_TRUE(c.members[i].running());
    }
    // No synchronous standby yet: a synchronous tenant cannot switch over, an asynchronous one can.
    EXPECT_EQ(ha::plan_switchover(c, std::nullopt, false).candidate, "ha-pure-tb-2");
    EXPECT_THROW(ha::plan_switchover(c, std::nullopt, true), Error);
}

TEST(HaCluster, AMemberMissingFromTheAnswerIsDown) {
    const ha::ClusterView c = fixture("cluster-async-one-down.json");
    ASSERT_EQ(c.members.size(), 3u);
    EXPECT_EQ(c.members[0].name, "hostd-ha-1");  // by name, the down one among them
    EXPECT_EQ(c.members[0].role, MemberRole::down);
    EXPECT_EQ(c.members[0].state, "");
    EXPECT_FALSE(c.members[0].running());
    EXPECT_STREQ(ha::member_role_name(c.members[0].role), "down");
    EXPECT_EQ(c.primary()->name, "hostd-ha-2");
    EXPECT_EQ(c.members[2].lag_bytes, 16384u);
    // Without the expected members, the answer as it is.
    EXPECT_EQ(ha::parse_cluster(read_file(std::string(HOSTD_TEST_DATA) + "/ha/cluster-async-one-down.json")).members.size(), 2u);
}

TEST(HaCluster, UnknownLagAndNoLeader) {
    const ha::ClusterView c = fixture("cluster-no-leader.json");
    EXPECT_EQ(c.primary(), nullptr);
    EXPECT_FALSE(c.members[1].lag_bytes);  // "unknown"
    EXPECT_EQ(c.members[2].state, "starting");
    EXPECT_FALSE(c.members[2].timeline);
}

TEST(HaCluster, PauseAndTags) {
    const auto c = ha::parse_cluster(R"({"members": [{"name": "a", "role": "leader", "state": "running"},
        {"name": "b", "role": "replica", "state": "running", "lag": 0, "tags": {"nofailover": true}}], "pause": true})");
    EXPECT_TRUE(c.paused);
    EXPECT_TRUE(c.members[1].nofailover);
}

TEST(HaCluster, RefusesWhatIsNoClusterAnswer) {
    auto refused = [](const std::string& body, const std::string& words) {
        try {
            ha::parse_cluster(body, kMembers);
            ADD_FAILURE() << "accepted " << body;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::failed);
            EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
        }
    };
    refused("<html>502 Bad Gateway</html>", "not JSON");
    refused("", "not JSON");
    refused("{}", "no \"members\" array");
    refused(R"({"members": {}})", "no \"members\" array");
    refused(R"({"members": [{"role": "leader"}]})", "without a name");
    refused(R"({"members": [{"name": "a", "role": "witch"}]})", "unknown role 'witch'");
    refused(R"({"members": [{"name": "a", "role": "leader"}, {"name": "b", "role": "leader"}]})", "two leaders");
    refused(R"({"members": [{"name": "a", "role": "leader"}, {"name": "a", "role": "replica"}]})", "twice");
}

// ---- switchover ----

void expect_refused(const ha::ClusterView& c, const std::optional<std::string>& to, bool sync, Errc code,
                    const std::string& words) {
    try {
        auto s = ha::plan_switchover(c, to, sync);
        ADD_FAILURE() << "switchover to " << s.candidate << " accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        EXPECT_EQ(e.field(), "to") << e.what();
        EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
}

TEST(HaSwitchover, GoesToTheSyncStandbyByDefault) {
    const auto c = fixture("cluster-sync.json");
    for (bool sync : {true, false}) {
        auto s = ha::plan_switchover(c, std::nullopt, sync);
        EXPECT_EQ(s.leader, "hostd-ha-1");
        EXPECT_EQ(s.candidate, "hostd-ha-2");
    }
}

TEST(HaSwitchover, ElseToTheReplicaWithTheLeastLag) {
    auto c = ha::parse_cluster(R"({"members": [{"name": "a", "role": "leader", "state": "running"},
        {"name": "b", "role": "replica", "state": "running", "lag": 900},
        {"name": "c", "role": "replica", "state": "running", "lag": 100},
        {"name": "d", "role": "replica", "state": "running", "lag": "unknown"},
        {"name": "e", "role": "replica", "state": "running", "lag": 100}]})");
    EXPECT_EQ(ha::plan_switchover(c, std::nullopt, false).candidate, "c");  // ties: by name
    // A lag Patroni does not know comes last.
    c = ha::parse_cluster(R"({"members": [{"name": "a", "role": "leader", "state": "running"},
        {"name": "b", "role": "replica", "state": "running", "lag": "unknown"},
        {"name": "c", "role": "replica", "state": "running", "lag": 1000000}]})");
    EXPECT_EQ(ha::plan_switchover(c, std::nullopt, false).candidate, "c");
    // A sync standby that does not run: the least lagging running replica (asynchronous tenant).
    c = ha::parse_cluster(R"({"members": [{"name": "a", "role": "leader", "state": "running"},
        {"name": "b", "role": "sync_standby", "state": "stopped", "lag": 0},
        {"name": "c", "role": "replica", "state": "streaming", "lag": 5}]})");
    EXPECT_EQ(ha::plan_switchover(c, std::nullopt, false).candidate, "c");
    expect_refused(c, std::nullopt, true, Errc::conflict, "synchronous standby cannot take over");
}

TEST(HaSwitchover, ToANamedMember) {
    const auto c = fixture("cluster-sync.json");
    EXPECT_EQ(ha::plan_switchover(c, "hostd-ha-3", false).candidate, "hostd-ha-3");
    EXPECT_EQ(ha::plan_switchover(c, "hostd-ha-2", true).candidate, "hostd-ha-2");
}

TEST(HaSwitchover, RefusesEveryMemberThatCannotTakeOver) {
    const auto c = fixture("cluster-sync.json");
    expect_refused(c, "hostd-ha-9", false, Errc::not_found, "no member of this tenant (its members: hostd-ha-1, hostd-ha-2, hostd-ha-3)");
    expect_refused(c, "hostd-ha-1", false, Errc::conflict, "'hostd-ha-1' is the primary already");
    expect_refused(c, "hostd-ha-3", true, Errc::conflict, "only the synchronous standby can take over without losing commits, and "
                                                          "'hostd-ha-3' is not it (it is 'hostd-ha-2')");

    const auto down = fixture("cluster-async-one-down.json");
    expect_refused(down, "hostd-ha-1", false, Errc::conflict, "member 'hostd-ha-1' is down");
    // Synchronous mode with no synchronous standby now: nobody qualifies.
    expect_refused(down, std::nullopt, true, Errc::conflict, "there is none now");
    expect_refused(down, "hostd-ha-3", true, Errc::conflict, "there is none now");

    auto tagged = ha::parse_cluster(R"({"members": [{"name": "a", "role": "leader", "state": "running"},
        {"name": "b", "role": "replica", "state": "running", "lag": 0, "tags": {"nofailover": true}},
        {"name": "c", "role": "replica", "state": "start failed", "lag": "unknown"}]})");
    expect_refused(tagged, "b", false, Errc::conflict, "tagged nofailover");
    expect_refused(tagged, "c", false, Errc::conflict, "not running (Patroni says 'start failed')");
    expect_refused(tagged, std::nullopt, false, Errc::conflict, "no replica can take over");

    expect_refused(ha::parse_cluster(R"({"members": [{"name": "a", "role": "leader", "state": "running"}]})"), std::nullopt,
                   false, Errc::conflict, "the tenant has no replica");
}

TEST(HaSwitchover, RefusesWithoutALeader) {
    const auto c = fixture("cluster-no-leader.json");
    expect_refused(c, std::nullopt, false, Errc::conflict, "No member is primary now");
    expect_refused(c, "hostd-ha-2", false, Errc::conflict, "No member is primary now");
    expect_refused(ha::parse_cluster(R"({"members": []})", kMembers), std::nullopt, false, Errc::conflict,
                   "No member is primary now");
}

// ---- the tenant's URL ----

TEST(HaUrl, NamesEveryMemberHostReadWriteOverTls) {
    EXPECT_EQ(ha::ha_url({{"db1.example.com", 6432}, {"10.0.0.2", 6433}, {"fd00::3", 6432}}, "acme", "s3cret", "postgres"),
              "postgresql://acme:s3cret@db1.example.com:6432,10.0.0.2:6433,[fd00::3]:6432/postgres"
              "?sslmode=require&target_session_attrs=read-write");
    // Percent-encoded like a plain tenant's URL (pgconf::connection_url).
    EXPECT_EQ(ha::ha_url({{"h1", 1}, {"h2", 2}}, "a@b:c", "p/w%d x", "my db"),
              "postgresql://a%40b%3Ac:p%2Fw%25d%20x@h1:1,h2:2/my%20db?sslmode=require&target_session_attrs=read-write");
    EXPECT_EQ(ha::ha_url({{"h1", 1}}, "u", "", "postgres"),
              "postgresql://u@h1:1/postgres?sslmode=require&target_session_attrs=read-write");
}

TEST(HaUrl, RefusesHostsThatWouldBreakTheUrl) {
    auto refused = [](const std::vector<ha::HostPort>& m) {
        try {
            ha::ha_url(m, "u", "p", "postgres");
            ADD_FAILURE() << "accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::invalid);
            EXPECT_EQ(e.field(), "members");
        }
    };
    refused({});
    refused({{"h1,h2", 1}});
    refused({{"h1/x", 1}});
    refused({{"user@h1", 1}});
    refused({{"", 1}});
    refused({{"h1", 0}});
}

}  // namespace

// How hostctl show presents an HA tenant (#17): its members' table and the cluster in a line,
// from the JSON a hostd sends.
#include <gtest/gtest.h>

#include "cli/present.h"
#include "wire/wire.h"

namespace {
hostd::TenantView ha_tenant() {
    return hostd::wire::parse_tenant(nlohmann::json::parse(R"({
      "name": "hat", "state": "ready", "disk_size": 1073741824, "memory": 268435456, "cpu": 0.5,
      "unit": "hostd-patroni@hat.service",
      "members": [
        {"host": "hb-1", "role": "primary", "state": "running", "lag": 0, "timeline": 4, "sync": false,
         "address": "10.0.0.1", "public_host": "db1", "public_port": 28001},
        {"host": "hb-2", "role": "replica", "state": "streaming", "lag": 16777216, "timeline": 4, "sync": true,
         "address": "10.0.0.2", "public_host": "db2", "public_port": 28001},
        {"host": "hb-3", "role": "unknown", "state": "down", "lag": null, "timeline": null, "sync": false,
         "address": "10.0.0.3", "public_host": "db3", "public_port": 28001}],
      "ha": {"leader": "hb-1", "timeline": 4, "synchronous": true, "synchronous_strict": true, "source": "hb-2"}})"));
}
}  // namespace

TEST(PresentHa, TheMembersTableSaysRoleStateLagTimelineAndSyncWithDashesForUnknown) {
    const auto rows = hostd::member_rows(ha_tenant().members);
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(rows[0], (std::vector<std::string>{"HOST", "ROLE", "STATE", "LAG", "TL", "SYNC"}));
    EXPECT_EQ(rows[1], (std::vector<std::string>{"hb-1", "primary", "running", "0", "4", "-"}));
    EXPECT_EQ(rows[2], (std::vector<std::string>{"hb-2", "replica", "streaming", "16M", "4", "yes"}));
    EXPECT_EQ(rows[3], (std::vector<std::string>{"hb-3", "unknown", "down", "-", "-", "-"}));
}

TEST(PresentHa, ShowSaysTheModeTheLeaderAndWhoToldInALineAndNothingForAPlainTenant) {
    auto has_ha = [](const hostd::TenantView& t) -> std::string {
        for (auto& r : hostd::tenant_details(t))
            if (r[0] == "ha:") return r[1];
        return "";
    };
    EXPECT_EQ(has_ha(ha_tenant()), "3 members, synchronous (strict), leader hb-1, timeline 4 (as hb-2's Patroni tells)");
    hostd::TenantView unknown = ha_tenant();
    unknown.ha = hostd::HaView{};
    EXPECT_EQ(has_ha(unknown), "3 members, asynchronous, leader unknown");
    hostd::TenantView plain = ha_tenant();
    plain.members.clear();
    plain.ha.reset();
    EXPECT_EQ(has_ha(plain), "");
}

TEST(PresentHa, ShowPrintsWhatGetSaysWhenPatroniListsAMemberAsDownOrNoPatroniAnswers) {
    // As hostd's GET renders them (hostd_manager_test AnHaManager): a member missing from
    // Patroni's answer is down; with no answer at all, every role is unknown and `problem` says why.
    hostd::TenantView t = ha_tenant();
    t.members[2].role = "down";
    EXPECT_EQ(hostd::member_rows(t.members)[3], (std::vector<std::string>{"hb-3", "down", "down", "-", "-", "-"}));
    t.problem = "no member's Patroni answered, so the members' roles are unknown (GET /cluster failed: ...)";
    std::string problem;
    for (auto& r : hostd::tenant_details(t))
        if (r[0] == "problem:") problem = r[1];
    EXPECT_EQ(problem, t.problem);
}

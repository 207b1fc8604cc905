// The layout of an HA member (#17): its unit hostd-patroni@<name> and that unit's cgroup, as
// its record says, and a tenant read back from a unit of either kind.
#include <gtest/gtest.h>

#include "model/layout.h"
#include "model/record.h"
#include "model/tenant.h"
#include "model/views.h"

using namespace hostd;

namespace {

TenantRecord plain_record() {
    TenantRecord t;
    t.name = "acme";
    t.state = TenantState::ready;
    t.port = 25001;
    t.public_port = 28001;
    return t;
}

TenantRecord member_record() {
    TenantRecord t = plain_record();
    t.ha = HaSpec{.create_id = "c1", .initiator = "hb-1", .members = {{.host = "hb-1"}, {.host = "hb-2"}}};
    return t;
}

}  // namespace

TEST(HaLayout, AnHaRecordRunsInAPatroniUnitWithItsOwnCgroupAndAPlainOneAsBefore) {
    Config cfg;
    TenantRecord plain = plain_record();
    TenantRecord member = member_record();
    const TenantLayout p = layout_of(cfg, plain);
    const TenantLayout m = layout_of(cfg, member);
    EXPECT_EQ(p.unit, "hostd-postgres@acme.service");
    EXPECT_EQ(p.cgroup, "/system.slice/system-hostd\\x2dpostgres.slice/hostd-postgres@acme.service");
    EXPECT_EQ(p.kind, UnitKind::postgres);
    EXPECT_EQ(p.ha_dir, "");
    EXPECT_EQ(m.unit, "hostd-patroni@acme.service");
    EXPECT_EQ(m.cgroup, "/system.slice/system-hostd\\x2dpatroni.slice/hostd-patroni@acme.service");
    EXPECT_EQ(m.kind, UnitKind::patroni);
    EXPECT_EQ(m.dropins, "/etc/systemd/system.control/hostd-patroni@acme.service.d");
    EXPECT_EQ(m.ha_dir, m.mountpoint + "/ha");
    EXPECT_EQ(m.pgpass, m.socket_dir + "/.pgpass");
    // Everything else is where a plain tenant has it: the disk, user, socket and record.
    const TenantLayout by_name = layout_of(cfg, "acme");
    EXPECT_EQ(by_name.unit, p.unit);
    for (auto field : {&TenantLayout::mountpoint, &TenantLayout::pgdata, &TenantLayout::socket_dir, &TenantLayout::os_user,
                       &TenantLayout::image, &TenantLayout::record, &TenantLayout::env_file, &TenantLayout::disk_link})
        EXPECT_EQ(m.*field, p.*field);
    EXPECT_EQ(layout_of(cfg, "acme", UnitKind::patroni).unit, m.unit);
    // The view shows the unit that runs it.
    EXPECT_EQ(view_of(cfg, member, false).unit, "hostd-patroni@acme.service");
}

TEST(HaLayout, ATenantIsReadBackFromAUnitOfEitherKindAndNothingElse) {
    Config cfg;
    TenantRecord member = member_record();
    const std::string unit = layout_of(cfg, member).unit;
    EXPECT_EQ(layout::tenant_of_unit(unit), "acme");
    EXPECT_EQ(layout::kind_of_unit(unit), UnitKind::patroni);
    EXPECT_EQ(layout::tenant_of_unit("hostd-postgres@acme.service"), "acme");
    EXPECT_EQ(layout::kind_of_unit("hostd-postgres@acme.service"), UnitKind::postgres);
    EXPECT_EQ(layout::kind_of_unit("hostd-patroni@acme.service.d"), UnitKind::patroni);
    for (const char* not_a_tenant : {"hostd-patroni@.service", "hostd-patroni@Acme.service", "hostd-patroni@a.b.service",
                                     "hostd-patroni.service", "hostd-patroni@acme.timer", "patroni@acme.service"})
        EXPECT_EQ(layout::tenant_of_unit(not_a_tenant), "") << not_a_tenant;
    EXPECT_EQ(layout::unit_patterns(), (std::vector<std::string>{"hostd-postgres@*.service", "hostd-patroni@*.service"}));
}

TEST(HaLayout, AMembersReplicaPortGivesASecondRouteAndTheReadOnlyUrlAndIsKeptInItsRecord) {
    Config cfg;
    cfg.public_host = "db1";
    TenantRecord t = plain_record();
    t.admin_user = "acme";
    t.password = "pw";
    EXPECT_FALSE(replica_route_of(cfg, t)) << "a plain tenant";
    EXPECT_EQ(read_only_url(cfg, t), "");
    t.ha = HaSpec{.create_id = "c1", .initiator = "hb-1",
                  .members = {{.host = "hb-2", .address = "10.0.0.2", .public_host = "db2", .pg_port = 25009, .rest_port = 8009,
                               .public_port = 28009, .replica_port = 28010},
                              {.host = "hb-1", .address = "10.0.0.1", .public_host = "db1", .pg_port = 25001, .rest_port = 8001,
                               .public_port = 28001, .replica_port = 28002}}};
    ASSERT_TRUE(own_member(t));
    EXPECT_EQ(own_member(t)->host, "hb-1");
    const auto ro = replica_route_of(cfg, t);
    ASSERT_TRUE(ro);
    EXPECT_EQ(ro->tenant, "acme.ro");
    EXPECT_EQ(ro->public_port, 28002);
    EXPECT_EQ(ro->check_path, "/replica");
    EXPECT_EQ(ro->members.size(), 2u);
    EXPECT_EQ(route_of(cfg, t).public_port, 28001);
    EXPECT_EQ(read_only_url(cfg, t), "postgresql://acme:pw@db1:28002,db2:28010/postgres?sslmode=require&target_session_attrs=standby");
    EXPECT_EQ(read_only_url(cfg, t, false), "postgresql://acme@db1:28002,db2:28010/postgres?sslmode=require&target_session_attrs=standby");
    t.created_at = "2026-12-01T00:00:00Z";
    const TenantRecord back = from_toml(to_toml(t), "test");
    EXPECT_EQ(back.ha->members, t.ha->members);
    // A member made before read-only URLs: none.
    for (auto& m : t.ha->members) m.replica_port = 0;
    EXPECT_FALSE(replica_route_of(cfg, t));
    EXPECT_EQ(read_only_url(cfg, t), "");
}

// Every path and name of a tenant comes from layout_of; these pin what the unit template,
// the marker check and the inventory rely on.
#include <gtest/gtest.h>

#include "model/layout.h"

using namespace hostd;

TEST(TenantLayout, PlacesEverythingUnderTheConfiguredRoots) {
    Config cfg;
    cfg.mount_root = "/data/tenants";
    cfg.state_dir = "/var/lib/hd";
    cfg.loop_dir = "/var/lib/hd/loop";
    const TenantLayout l = layout_of(cfg, "acme");
    EXPECT_EQ(l.mountpoint, "/data/tenants/acme");
    EXPECT_EQ(l.pgdata, "/data/tenants/acme/pgdata");
    EXPECT_EQ(l.marker, "/data/tenants/acme/.hostd-tenant");
    EXPECT_EQ(l.reserve, "/data/tenants/acme/.hostd-reserve");
    EXPECT_EQ(l.guard_conf, "/data/tenants/acme/pgdata/hostd.guard.conf");
    EXPECT_EQ(l.image, "/var/lib/hd/loop/acme.img");
    EXPECT_EQ(l.record, "/var/lib/hd/tenants/acme.toml");
    EXPECT_EQ(layout::records_dir(cfg), "/var/lib/hd/tenants");
}

TEST(TenantLayout, NamesTheUnitUserSocketAndCgroupOfTheShippedTemplate) {
    const TenantLayout l = layout_of(Config{}, "acme");
    EXPECT_EQ(l.unit, "hostd-postgres@acme.service");
    EXPECT_EQ(l.os_user, "_acme");
    EXPECT_EQ(l.socket_dir, "/run/hostd-tenant/acme");
    EXPECT_EQ(l.disk_link, "/run/hostd/disk/acme");
    EXPECT_EQ(l.cgroup, "/system.slice/system-hostd\\x2dpostgres.slice/hostd-postgres@acme.service");
    EXPECT_EQ(l.dropins, "/etc/systemd/system.control/hostd-postgres@acme.service.d");
    EXPECT_EQ(l.mountpoint, "/srv/hostd/acme");
}

TEST(TenantLayout, FitsSystemdsUserNameLimitForTheLongestTenantName) {
    const std::string longest(30, 'a');
    EXPECT_LE(layout_of(Config{}, longest).os_user.size(), 31u);
}

TEST(TenantLayout, LabelsFitEachFilesystemsLimit) {
    const TenantLayout l = layout_of(Config{}, std::string(30, 'a'));
    EXPECT_LE(l.label("ext4").size(), 16u);
    EXPECT_LE(l.label("xfs").size(), 12u);
}

TEST(TenantLayout, ReadsTheTenantBackFromAUnitUserOrImageName) {
    const TenantLayout l = layout_of(Config{}, "acme-2");
    EXPECT_EQ(layout::tenant_of_unit(l.unit), "acme-2");
    EXPECT_EQ(layout::tenant_of_user(l.os_user), "acme-2");
    EXPECT_EQ(layout::tenant_of_image("acme-2.img"), "acme-2");
    EXPECT_EQ(layout::tenant_of_unit("hostd.service"), "");
    EXPECT_EQ(layout::tenant_of_unit("hostd-postgres@.service"), "");
    using P = std::pair<std::string, std::string>;
    EXPECT_EQ(layout::tenant_of_backup_unit("hostd-backup-full@acme-2.service"), (P{"acme-2", "full"}));
    EXPECT_EQ(layout::tenant_of_backup_unit("hostd-backup-incr@a.service"), (P{"a", "incr"}));
    EXPECT_EQ(layout::tenant_of_backup_unit("hostd-backup-incr@a.timer"), (P{"", ""}));
    EXPECT_EQ(layout::tenant_of_backup_unit("hostd-backup-full@.service"), (P{"", ""}));
    EXPECT_EQ(layout::tenant_of_backup_unit("hostd-postgres@a.service"), (P{"", ""}));
    EXPECT_EQ(layout::tenant_of_user("postgres"), "");
    EXPECT_EQ(layout::tenant_of_image("notes.txt"), "");
}

TEST(TenantLayout, ReadsATenantOnlyFromNamesATenantCouldHave) {
    // The orphan sweep removes what these name; anything else below the same prefixes is not hostd's.
    EXPECT_EQ(layout::tenant_of_unit("hostd-postgres@foo.bar.service"), "");
    EXPECT_EQ(layout::tenant_of_unit("hostd-postgres@Foo.service"), "");
    EXPECT_EQ(layout::tenant_of_user("_Apt"), "");
    EXPECT_EQ(layout::tenant_of_user("__x"), "");
    EXPECT_EQ(layout::tenant_of_image("backup.2024.img"), "");
    EXPECT_EQ(layout::tenant_of_mount("/srv/hostd/acme"), "acme");
    EXPECT_EQ(layout::tenant_of_mount("/srv/hostd/lost+found"), "");
    EXPECT_EQ(layout::tenant_of_mount("/srv/hostd/Backups"), "");
}

TEST(TenantLayout, AMarkerNamesItsOwnTenantOnly) {
    const std::string m = layout::marker_text("acme", "11111111-1111-4111-8111-111111111111");
    EXPECT_TRUE(layout::marker_names(m, "acme"));
    EXPECT_FALSE(layout::marker_names(m, "acm"));
    EXPECT_FALSE(layout::marker_names(m, "acme-2"));
    EXPECT_FALSE(layout::marker_names(layout::marker_text("acme-2", "u"), "acme"));
    EXPECT_FALSE(layout::marker_names("", "acme"));
}

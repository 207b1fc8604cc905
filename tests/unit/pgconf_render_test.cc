// postgresql.conf / pg_hba.conf against expected files in tests/data/pgconf/.
// HOSTD_UPDATE_GOLDEN=1 rewrites those files from the current output (review the diff).

#include <gtest/gtest.h>

#include <sstream>

#include "golden.h"

#include <cstdlib>
#include <string>

#include "base/error.h"
#include "base/fs.h"
#include "pgconf/pgconf.h"

using namespace hostd;
using namespace hostd::pgconf;

namespace {

void expect_golden(const std::string& name, const std::string& actual) {
    hostd::test::expect_golden("pgconf/" + name, actual);
}

ClusterSpec small_spec() {
    return {.tenant = "acme", .port = 25001, .socket_dir = "/run/hostd-tenant/acme",
            .memory_bytes = 256ull << 20, .cpus = 0.5};
}

std::string setting(const std::string& conf, const std::string& key) {
    auto pos = conf.find("\n" + key + " = ");
    if (pos == std::string::npos) return "<missing>";
    pos += key.size() + 4;
    return conf.substr(pos, conf.find('\n', pos) - pos);
}

}  // namespace

TEST(PostgresqlConf, MatchesTheExpectedFileForASmallTenant) {
    expect_golden("small.postgresql.conf", render_postgresql_conf(small_spec()));
}

TEST(PostgresqlConf, MatchesTheExpectedFileForALargeTenant) {
    expect_golden("large.postgresql.conf",
                  render_postgresql_conf({.tenant = "bigco", .port = 26500, .socket_dir = "/run/hostd-tenant/bigco",
                                          .memory_bytes = 64ull << 30, .cpus = 6, .disk_bytes = 500ull << 30}));
}

TEST(PostgresqlConf, MatchesTheExpectedFileWhenNoMemoryLimitIsKnown) {
    expect_golden("nomemory.postgresql.conf",
                  render_postgresql_conf({.tenant = "t1", .port = 25002, .socket_dir = "/run/hostd-tenant/t1"}));
}

TEST(PostgresqlConf, PreloadsTheLibrariesOfTheTenantsExtensionsOnly) {
    EXPECT_EQ(setting(render_postgresql_conf(small_spec()), "shared_preload_libraries"), "<missing>");
    auto spec = small_spec();
    spec.preload_libraries = preload_libraries({"pg_trgm", "pg_stat_statements", "hstore", "auto_explain"});
    EXPECT_EQ(spec.preload_libraries, (std::vector<std::string>{"pg_stat_statements", "auto_explain"}));
    EXPECT_EQ(setting(render_postgresql_conf(spec), "shared_preload_libraries"), "'pg_stat_statements,auto_explain'");
}

TEST(PostgresqlConf, IsTheSameForTheSameSpec) {
    EXPECT_EQ(render_postgresql_conf(small_spec()), render_postgresql_conf(small_spec()));
}

TEST(PostgresqlConf, QuotesStringValuesThePostgresqlWay) {
    auto spec = small_spec();
    spec.socket_dir = "/run/it's\\here";
    EXPECT_EQ(setting(render_postgresql_conf(spec), "unix_socket_directories"), "'/run/it''s\\\\here'");
}

TEST(PostgresqlConf, RefusesControlCharactersInValues) {
    auto spec = small_spec();
    spec.socket_dir = "/run/a\nport = 1";
    EXPECT_THROW(render_postgresql_conf(spec), Error);
}

TEST(PostgresqlConf, RefusesASpecWithoutPortOrSocketDir) {
    auto spec = small_spec();
    spec.port = 0;
    EXPECT_THROW(render_postgresql_conf(spec), Error);
    spec = small_spec();
    spec.socket_dir = "relative";
    EXPECT_THROW(render_postgresql_conf(spec), Error);
}

TEST(PostgresqlConf, DerivesSizesFromMemoryWithinTheirBounds) {
    auto spec = small_spec();
    spec.memory_bytes = 32ull << 20;  // floors apply
    auto tiny = render_postgresql_conf(spec);
    EXPECT_EQ(setting(tiny, "max_connections"), "20");
    EXPECT_EQ(setting(tiny, "shared_buffers"), "16MB");
    EXPECT_EQ(setting(tiny, "work_mem"), "1024kB");
    EXPECT_EQ(setting(tiny, "maintenance_work_mem"), "8MB");

    spec.memory_bytes = 1ull << 30;
    auto mid = render_postgresql_conf(spec);
    EXPECT_EQ(setting(mid, "max_connections"), "100");
    EXPECT_EQ(setting(mid, "shared_buffers"), "256MB");
    EXPECT_EQ(setting(mid, "effective_cache_size"), "512MB");

    spec.memory_bytes = 256ull << 30;  // caps apply
    auto huge = render_postgresql_conf(spec);
    EXPECT_EQ(setting(huge, "shared_buffers"), "8192MB");
    EXPECT_EQ(setting(huge, "work_mem"), "65536kB");
    EXPECT_EQ(setting(huge, "maintenance_work_mem"), "1024MB");
}

TEST(PostgresqlConf, ReadsTheOverridesThenTheDiskGuardLast) {
    auto conf = render_postgresql_conf(small_spec());
    const std::string last = "include_if_exists = 'hostd.guard.conf'\n";
    ASSERT_GE(conf.size(), last.size());
    EXPECT_EQ(conf.substr(conf.size() - last.size()), last);
    EXPECT_LT(conf.find("include_if_exists = 'hostd.override.conf'"), conf.find("include_if_exists = 'hostd.guard.conf'"));
}

TEST(PostgresqlConf, SizesWalToTheDisk) {
    auto spec = small_spec();
    spec.disk_bytes = 256ull << 20;  // small disk: the floors
    auto conf = render_postgresql_conf(spec);
    EXPECT_NE(conf.find("max_wal_size = 48MB\n"), std::string::npos);
    EXPECT_NE(conf.find("min_wal_size = 32MB\n"), std::string::npos);
    spec.disk_bytes = 4ull << 30;  // 4 GiB: an eighth, a thirty-second
    conf = render_postgresql_conf(spec);
    EXPECT_NE(conf.find("max_wal_size = 512MB\n"), std::string::npos);
    EXPECT_NE(conf.find("min_wal_size = 80MB\n"), std::string::npos);
    spec.disk_bytes = 0;  // unknown: PostgreSQL's defaults
    EXPECT_EQ(render_postgresql_conf(spec).find("max_wal_size"), std::string::npos);
}

TEST(GuardConf, MakesNewTransactionsReadOnly) {
    EXPECT_NE(render_guard_conf().find("\ndefault_transaction_read_only = on\n"), std::string::npos);
}

TEST(PgHba, MatchesTheExpectedFile) {
    expect_golden("pg_hba.conf", render_pg_hba(small_spec()));
}

TEST(PgHba, AllowsOnlyScramOverSocketAndLoopbackBesideHostdsOwnPeerLogin) {
    auto hba = render_pg_hba(small_spec());
    int rules = 0;
    size_t start = 0;
    while (start < hba.size()) {
        size_t end = hba.find('\n', start);
        std::string line = hba.substr(start, end - start);
        start = end + 1;
        if (line.empty() || line[0] == '#') continue;
        rules++;
        if (line.find("peer") != std::string::npos) {
            // hostd's own login: over the socket, for its role only, through the map of root alone.
            EXPECT_EQ(line, "local      all       hostd                 peer map=hostd");
            continue;
        }
        EXPECT_NE(line.find("scram-sha-256"), std::string::npos) << line;
        EXPECT_TRUE(line.rfind("local", 0) == 0 || line.find("127.0.0.1/32") != std::string::npos ||
                    line.find("::1/128") != std::string::npos)
            << line;
    }
    EXPECT_EQ(rules, 4);
    EXPECT_LT(hba.find("\nlocal      all       hostd"), hba.find("\nlocal      all       all")) << "hostd's line comes first";
}

TEST(PgIdent, MapsRootToHostdsRoleAndNothingElse) {
    int maps = 0;
    std::istringstream in(render_pg_ident({.tenant = "acme", .port = 25001, .socket_dir = "/run/hostd-tenant/acme"}));
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        maps++;
        EXPECT_EQ(line, "hostd      root             hostd");
    }
    EXPECT_EQ(maps, 1);
}

TEST(PgIdent, MapsTheTenantsOwnUserToTheBackupRoleWhenBackupsAreOn) {
    hostd::pgconf::ClusterSpec spec{.tenant = "acme", .port = 25001, .socket_dir = "/run/hostd-tenant/acme",
                                    .backup_peer = "_acme", .backup_role = "hostd_backup"};
    const std::string ident = render_pg_ident(spec);
    EXPECT_NE(ident.find("\nhostd      _acme  hostd_backup\n"), std::string::npos) << ident;
    const std::string hba = hostd::pgconf::render_pg_hba(spec);
    EXPECT_NE(hba.find("\nlocal      all       hostd_backup          peer map=hostd\n"), std::string::npos) << hba;
    EXPECT_LT(hba.find("hostd_backup"), hba.find("\nlocal      all       all")) << "before the password line";
    // pg_basebackup of a branch from the running tenant logs in as it for replication.
    EXPECT_NE(hba.find("\nlocal      replication hostd_backup        peer map=hostd\n"), std::string::npos) << hba;
    EXPECT_EQ(hba.find("replication", hba.find("\nlocal      all       all")), std::string::npos) << "no other replication login";
    spec.backup_peer = "_acme all";
    EXPECT_THROW(render_pg_ident(spec), hostd::Error);
    spec.backup_peer = "";
    EXPECT_THROW(hostd::pgconf::render_pg_hba(spec), hostd::Error);
}

TEST(PgIdent, LetsRootLogInAsABranchsAdminOnlyWhileItsPasswordIsSet) {
    hostd::pgconf::ClusterSpec spec{.tenant = "br", .port = 25001, .socket_dir = "/run/hostd-tenant/br"};
    EXPECT_EQ(hostd::pgconf::render_pg_hba(spec).find("src"), std::string::npos);
    spec.root_login = "src";
    EXPECT_NE(render_pg_ident(spec).find("\nhostd      root             src\n"), std::string::npos);
    const std::string hba = hostd::pgconf::render_pg_hba(spec);
    EXPECT_NE(hba.find("\nlocal      all       src   peer map=hostd\n"), std::string::npos) << hba;
    spec.root_login = "src all";
    EXPECT_THROW(render_pg_ident(spec), hostd::Error);
}

TEST(PgHba, RequiresTlsForEveryTcpLoginWhenTheTenantHasACertificate) {
    hostd::pgconf::ClusterSpec spec{.tenant = "acme", .port = 25001, .socket_dir = "/run/hostd-tenant/acme",
                                    .memory_bytes = 256ull << 20, .ssl = true};
    auto hba = hostd::pgconf::render_pg_hba(spec);
    EXPECT_NE(hba.find("hostnossl  all       all   all             reject"), std::string::npos);
    EXPECT_EQ(hba.find("\nhost "), std::string::npos);
    auto conf = hostd::pgconf::render_postgresql_conf(spec);
    EXPECT_NE(conf.find("ssl = on\n"), std::string::npos);
}

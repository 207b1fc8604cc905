// /metrics: the families for known facts, against a golden file and Prometheus's own checker.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "base/exec.h"
#include "base/fs.h"
#include "hostd/collector.h"
#include "tests/unit/golden.h"

using namespace hostd;

namespace {

std::pair<std::vector<TenantFacts>, HostFacts> sample() {
    TenantFacts a{.name = "acme", .state = "ready", .read_only = false, .disk_size = 1ull << 30};
    a.bytes_total = 1000000000, a.bytes_used = 250000000, a.bytes_available = 750000000;
    a.inodes_total = 65536, a.inodes_used = 1200;
    a.memory_current = 50 << 20, a.memory_limit = 256 << 20, a.tasks_current = 9, a.tasks_limit = 512;
    a.cpu_seconds = 12.5, a.io_read_bytes = 4096, a.io_write_bytes = 8192;
    a.unit_state = "active", a.restarts = 1, a.up = true, a.connections = 3, a.max_connections = 32,
    a.database_bytes = 7654321;
    // Not mounted, not running: only what is known is shown.
    TenantFacts b{.name = "beta-2", .state = "creating", .read_only = true, .disk_size = 512ull << 20};
    HostFacts h{.version = "0.1.0", .last_scrape_seconds = 0.0123, .refresh_round_seconds = 40};
    h.ops.record("create", "ok", 0.8);
    h.ops.record("create", "ok", 1.7);
    h.ops.record("delete", "error", 3);
    h.ops.reconcile_runs = 2;
    return {{a, b}, h};
}

}  // namespace

TEST(Metrics, MatchTheExpectedExposition) {
    auto [t, h] = sample();
    test::expect_golden("metrics/hostd.prom", metrics::render(metric_families(t, h)));
}

TEST(Metrics, PassPromtoolCheckMetrics) {
    if (::access("/usr/bin/promtool", X_OK) != 0) FAIL() << "promtool (Debian package prometheus) is not installed";
    auto [t, h] = sample();
    auto r = exec({.argv = {"promtool", "check", "metrics"}, .input = metrics::render(metric_families(t, h))});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(r.out + r.err, "") << "promtool has remarks";
}

TEST(Metrics, EscapeLabelValues) {
    metrics::Family f{"x_total", "counter", "Help with a \\ backslash\nand a newline.", {}};
    f.add({{"tenant", "a\"b\\c\nd"}}, 1);
    EXPECT_EQ(metrics::render({f}), "# HELP x_total Help with a \\\\ backslash\\nand a newline.\n# TYPE x_total counter\n"
                                    "x_total{tenant=\"a\\\"b\\\\c\\nd\"} 1\n");
}

// The slow facts' pace: never more than `budget` connections per second over all tenants,
// never a tenant more often than every `refresh` seconds.
TEST(Metrics, RefreshPaceKeepsTheHostsLoadFlat) {
    EXPECT_DOUBLE_EQ(refresh_gap_seconds(0, 5, 5), 5);      // nobody: look again later
    EXPECT_DOUBLE_EQ(refresh_gap_seconds(1, 5, 5), 5);      // one tenant: every `refresh` s
    EXPECT_DOUBLE_EQ(refresh_gap_seconds(10, 5, 5), 0.5);   // few: the round is `refresh` s
    EXPECT_DOUBLE_EQ(refresh_gap_seconds(25, 5, 5), 0.2);   // the budget is reached here
    EXPECT_DOUBLE_EQ(refresh_gap_seconds(200, 5, 5), 0.2);  // many: 5 per second, a round 40 s
    EXPECT_DOUBLE_EQ(refresh_gap_seconds(2000, 5, 5) * 2000, 400);
    for (size_t n : {1, 7, 50, 999}) EXPECT_LE(1.0 / refresh_gap_seconds(n, 1, 3), 3 + 1e-9) << n;
}

// With backups on, the archiver's facts; without, no empty families for them.
TEST(Metrics, ArchivingIsExportedWhereTenantsArchive) {
    auto [t, h] = sample();
    EXPECT_EQ(metrics::render(metric_families(t, h)).find("hostd_tenant_wal_"), std::string::npos);
    t[0].archive = ArchiveFacts{.archived = 3, .failed = 1, .last_archived = 1796000000, .last_failed = 1795000000};
    const std::string text = metrics::render(metric_families(t, h));
    EXPECT_NE(text.find("\nhostd_tenant_wal_archived_total{tenant=\"acme\"} 3\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\nhostd_tenant_wal_archive_failures_total{tenant=\"acme\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("\nhostd_tenant_wal_last_archived_timestamp_seconds{tenant=\"acme\"} 1796000000\n"), std::string::npos);
}

BackupHealth failing_backups() {
    BackupHealth b{.checked = 1796000100, .last_backup = 1796000000, .last_type = "incr",
                   .last_label = "20261230-000000F_20261231-000000I", .last_full = 1795900000, .last_wal = 1796000050,
                   .repo_bytes = 123456789, .failures = 2};
    b.last_failure = BackupFailure{.at = 1796000090, .type = "full", .by = "schedule", .message = "ERROR: [041]: x"};
    return b;
}

// With backups on, what hostd's backup watch saw: the newest backup of each type, the
// repository's size and newest WAL, failed backups.
TEST(Metrics, BackupsAreExportedWhereTenantsHaveThem) {
    auto [t, h] = sample();
    EXPECT_EQ(metrics::render(metric_families(t, h)).find("hostd_tenant_backup_"), std::string::npos);
    t[0].backup = failing_backups();
    t[1].backup = BackupHealth{};  // not looked at yet: no made-up zeros for what is unknown
    const std::string text = metrics::render(metric_families(t, h));
    for (const char* line :
         {"hostd_tenant_backup_last_success_timestamp_seconds{tenant=\"acme\",type=\"full\"} 1795900000",
          "hostd_tenant_backup_last_success_timestamp_seconds{tenant=\"acme\",type=\"incr\"} 1796000000",
          "hostd_tenant_backup_repository_bytes{tenant=\"acme\"} 123456789",
          "hostd_tenant_wal_repository_last_timestamp_seconds{tenant=\"acme\"} 1796000050",
          "hostd_tenant_backup_failures_total{tenant=\"acme\"} 2", "hostd_tenant_backup_failures_total{tenant=\"beta-2\"} 0",
          "hostd_tenant_backup_last_failure_timestamp_seconds{tenant=\"acme\"} 1796000090",
          "hostd_tenant_backup_failing{tenant=\"acme\"} 1", "hostd_tenant_backup_failing{tenant=\"beta-2\"} 0",
          "hostd_tenant_backup_repository_readable{tenant=\"acme\"} 1"})
        EXPECT_NE(text.find(std::string("\n") + line + "\n"), std::string::npos) << line << "\n" << text;
    EXPECT_EQ(text.find("hostd_tenant_backup_repository_bytes{tenant=\"beta-2\"}"), std::string::npos);
    EXPECT_EQ(text.find("hostd_tenant_backup_repository_readable{tenant=\"beta-2\"}"), std::string::npos);
    if (::access("/usr/bin/promtool", X_OK) == 0) {
        auto r = exec({.argv = {"promtool", "check", "metrics"}, .input = text});
        EXPECT_EQ(r.out + r.err, "") << "promtool has remarks";
    }
}

// HA tenants (#17): this host's member's role, lag and timeline; none of it without one.
TEST(Metrics, HaMembersAreExportedWhereTenantsHaveThem) {
    auto [t, h] = sample();
    EXPECT_EQ(metrics::render(metric_families(t, h)).find("hostd_tenant_ha_"), std::string::npos);
    t[0].ha = HaMemberFacts{.role = "replica", .patroni_up = true, .sync = true, .lag_bytes = 16384, .timeline = 3};
    t[1].ha = HaMemberFacts{};  // its Patroni silent
    const std::string text = metrics::render(metric_families(t, h));
    for (const char* line : {"hostd_tenant_ha_role{tenant=\"acme\",role=\"replica\"} 1",
                             "hostd_tenant_ha_role{tenant=\"beta-2\",role=\"unknown\"} 1",
                             "hostd_tenant_ha_patroni_up{tenant=\"acme\"} 1", "hostd_tenant_ha_patroni_up{tenant=\"beta-2\"} 0",
                             "hostd_tenant_ha_lag_bytes{tenant=\"acme\"} 16384", "hostd_tenant_ha_timeline{tenant=\"acme\"} 3",
                             "hostd_tenant_ha_sync{tenant=\"acme\"} 1"})
        EXPECT_NE(text.find(std::string("\n") + line + "\n"), std::string::npos) << line << "\n" << text;
    for (const char* absent : {"hostd_tenant_ha_lag_bytes{tenant=\"beta-2\"}", "hostd_tenant_ha_timeline{tenant=\"beta-2\"}",
                               "hostd_tenant_ha_sync{tenant=\"beta-2\"}"})
        EXPECT_EQ(text.find(absent), std::string::npos) << absent << " made up";
    if (::access("/usr/bin/promtool", X_OK) == 0) {
        auto r = exec({.argv = {"promtool", "check", "metrics"}, .input = text});
        EXPECT_EQ(r.out + r.err, "") << "promtool has remarks";
    }
}

// The shipped alert rules, checked and run against their tests (monitoring/hostd-alerts.test.yml).
TEST(Metrics, AlertRulesPassTheirPromtoolTests) {
    if (::access("/usr/bin/promtool", X_OK) != 0) FAIL() << "promtool (Debian package prometheus) is not installed";
    const std::string dir = std::string(HOSTD_SOURCE_DIR) + "/monitoring";
    auto check = exec({.argv = {"promtool", "check", "rules", dir + "/hostd-alerts.yml"}});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
    auto test = exec({.argv = {"promtool", "test", "rules", dir + "/hostd-alerts.test.yml"}});
    EXPECT_EQ(test.exit_code, 0) << test.out << test.err;
}

// The dashboard and the alert rules only use metric names hostd exports.
TEST(Metrics, DashboardAndAlertsUseOnlyExportedNames) {
    auto [t, h] = sample();
    t[0].archive = ArchiveFacts{.archived = 3, .failed = 1, .last_archived = 1796000000, .last_failed = 1795000000};
    t[0].backup = failing_backups();
    std::set<std::string> exported;
    for (auto& f : metric_families(t, h)) {
        exported.insert(f.name);
        if (f.type == "histogram")
            for (const char* s : {"_bucket", "_sum", "_count"}) exported.insert(f.name + s);
    }
    const std::regex name("hostd_[a-z_]+");
    for (const char* file : {"monitoring/grafana-hostd.json", "monitoring/hostd-alerts.yml"}) {
        const std::string text = read_file(std::string(HOSTD_SOURCE_DIR) + "/" + file);
        int seen = 0;
        for (std::sregex_iterator it(text.begin(), text.end(), name), end; it != end; ++it, ++seen)
            EXPECT_TRUE(exported.count(it->str())) << file << " uses " << it->str() << ", which hostd does not export";
        EXPECT_GT(seen, 5) << file;
    }
    auto dash = nlohmann::json::parse(read_file(std::string(HOSTD_SOURCE_DIR) + "/monitoring/grafana-hostd.json"));
    std::set<std::string> rows;
    for (auto& p : dash["panels"])
        if (p["type"] == "row") rows.insert(p["title"].get<std::string>());
    EXPECT_EQ(rows, (std::set<std::string>{"Disk", "Memory", "CPU", "Connections", "hostd operations", "Backups"}));
}

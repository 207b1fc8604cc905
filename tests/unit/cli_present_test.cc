// How hostctl shows replies: the list table, progress lines.
#include <gtest/gtest.h>

#include "cli/present.h"
#include "wire/wire.h"

TEST(Present, StepLinesAlignNamesAndMilliseconds) {
    EXPECT_EQ(hostd::step_line("disk", 12), "  disk              12 ms");
    EXPECT_EQ(hostd::step_line("check-proxy", 123456), "  check-proxy   123456 ms");
    EXPECT_EQ(hostd::step_line("a-very-long-step-name", 5), "  a-very-long-step-name      5 ms");
}

TEST(Present, SpinnerTurnsAndShowsTenthsOfSeconds) {
    EXPECT_EQ(hostd::spinner_line(0, "acme: after disk", 1234), "| acme: after disk 1.2 s");
    EXPECT_EQ(hostd::spinner_line(1, "x", 0), "/ x 0.0 s");
    EXPECT_EQ(hostd::spinner_line(3, "x", 59999), "\\ x 59.9 s");
    EXPECT_EQ(hostd::spinner_line(4, "x", 100), "| x 0.1 s");
}

TEST(Present, TenantRowsShowUsedOverLimitAndDashesForUnknown) {
    auto tenants = hostd::wire::parse_tenants({{"tenants", nlohmann::json::parse(R"([
      {"name": "acme", "state": "ready", "public_port": 20001, "disk_size": 1073741824, "memory": 268435456, "cpu": 0.5,
       "url": "postgresql://acme@127.0.0.1:20001/postgres?sslmode=require",
       "status": {"memory_current": 41943040, "cpu_usage_nsec": 3250000000, "io_read_bytes": 1048576,
                  "io_write_bytes": 41943040,
                  "disk": {"bytes_used": 52428800, "bytes_total": 1000000000}}},
      {"name": "old", "state": "detached", "public_port": 0, "disk_size": 2147483648, "memory": 536870912, "cpu": 1}
    ])")}});
    auto rows = hostd::tenant_rows(tenants);
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0], (std::vector<std::string>{"NAME", "STATE", "PORT", "DISK", "MEMORY", "CPU", "IO", "URL"}));
    EXPECT_EQ(rows[1], (std::vector<std::string>{"acme", "ready", "20001", "50M/1G", "40M/256M", "0.5 (3.2s)", "1M/40M",
                                                 "postgresql://acme@127.0.0.1:20001/postgres?sslmode=require"}));
    EXPECT_EQ(rows[2], (std::vector<std::string>{"old", "detached", "-", "-/2G", "-/512M", "1", "-", "-"}));
}

TEST(Present, TheStateColumnSaysWhatATenantDoesNowAndShowSaysWhy) {
    auto tenants = hostd::wire::parse_tenants({{"tenants", nlohmann::json::parse(R"js([
      {"name": "acme", "state": "ready", "live_state": "stopped", "stopped": true, "disk_size": 1, "memory": 1, "cpu": 1,
       "live_reason": "stopped on purpose (hostctl stop); hostctl start brings it back"},
      {"name": "beta", "state": "ready", "live_state": "down", "disk_size": 1, "memory": 1, "cpu": 1,
       "live_reason": "PostgreSQL was killed (signal)",
       "status": {"unit": {"active_state": "failed", "sub_state": "failed", "main_pid": 0, "restarts": 3,
                           "result": "signal", "last_exit": "was killed by signal KILL"}}}
    ])js")}});
    auto rows = hostd::tenant_rows(tenants);
    EXPECT_EQ(rows[1][1], "stopped");
    EXPECT_EQ(rows[2][1], "down");
    auto details = hostd::tenant_details(tenants[1]);
    auto has = [&](const std::string& k, const std::string& v) {
        for (auto& r : details)
            if (r[0] == k + ":" && r[1] == v) return true;
        return false;
    };
    EXPECT_TRUE(has("status", "down"));
    EXPECT_TRUE(has("reason", "PostgreSQL was killed (signal); hostctl start (or reconcile) starts it again"));
    EXPECT_TRUE(has("unit_state", "failed (failed), result signal"));
    EXPECT_TRUE(has("last_exit", "PostgreSQL was killed by signal KILL"));
}

TEST(Present, AUrlForACommandLineCarriesNoPassword) {
    EXPECT_EQ(hostd::url_without_password("postgresql://acme:s3cr%40t@127.0.0.1:28001/postgres?sslmode=require"),
              "postgresql://acme@127.0.0.1:28001/postgres?sslmode=require");
    EXPECT_EQ(hostd::url_without_password("postgresql://acme@db.example.com:5432/postgres?sslmode=require"),
              "postgresql://acme@db.example.com:5432/postgres?sslmode=require");
    EXPECT_EQ(hostd::url_without_password("postgresql://[::1]:5432/postgres?x=a@b:c"), "postgresql://[::1]:5432/postgres?x=a@b:c");
}

TEST(Present, ShowListsEachOverrideAndMarksWhatWaitsForARestart) {
    auto text_of = [](const hostd::TenantView& t) {
        std::string out;
        for (auto& row : hostd::tenant_details(t)) out += row.at(0) + "|" + row.at(1) + "\n";
        return out;
    };
    hostd::TenantView t;
    t.name = "acme";
    t.spec.settings = {{"max_prepared_transactions", "5"}, {"work_mem", "8MB"}};
    t.pending_restart = std::vector<std::string>{"max_prepared_transactions", "shared_buffers"};
    std::string text = text_of(t);
    EXPECT_NE(text.find("settings:|max_prepared_transactions = 5  (waits for a restart)\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\n|work_mem = 8MB\n"), std::string::npos) << text;
    EXPECT_NE(text.find("pending_restart:|shared_buffers (not an override"), std::string::npos) << text;
    t.spec.settings.clear();
    t.pending_restart.reset();
    text = text_of(t);
    EXPECT_NE(text.find("settings:|none (PostgreSQL's and hostd's values)"), std::string::npos) << text;
    EXPECT_EQ(hostd::settings_line({{"a", "1"}, {"b", "x y"}}), "a=1, b=x y");
    EXPECT_EQ(hostd::settings_line({}), "none");
}

TEST(Present, AgesReadAtAGlance) {
    EXPECT_EQ(hostd::format_age(42), "42 s");
    EXPECT_EQ(hostd::format_age(12 * 60 + 5), "12 min");
    EXPECT_EQ(hostd::format_age(3 * 3600 + 5 * 60), "3 h 05 min");
    EXPECT_EQ(hostd::format_age(2 * 86400 + 4 * 3600), "2 d 04 h");
    EXPECT_EQ(hostd::format_age(-3), "0 s");
}

// hostctl show, backups on: the newest backup and WAL with their ages, the repository's size,
// and a failure: failing while it is the newest attempt, superseded once a backup succeeds.
TEST(Present, ShowSaysHowOldTheBackupsAreAndWhetherTheLastOneFailed) {
    const std::time_t now = 1796000000;
    hostd::BackupHealth h{.checked = now - 10, .last_backup = now - 3600, .last_type = "incr", .last_label = "L",
                          .last_full = now - 2 * 86400, .last_wal = now - 30, .repo_bytes = 5ull << 20};
    h.last_failure = hostd::BackupFailure{.at = now - 60, .type = "full", .by = "request", .message = "ERROR: [041]: gone"};
    auto text = [](const std::vector<std::vector<std::string>>& rows) {
        std::string s;
        for (auto& r : rows) s += r[0] + " " + r[1] + "\n";
        return s;
    };
    EXPECT_EQ(text(hostd::backup_health_rows(h, now)),
              "last_backup: incr L, 1 h 00 min ago\n"
              "last_full: 2 d 00 h ago\n"
              "last_wal: archived 30 s ago\n"
              "repository: 5M on disk\n"
              "backup_failing: full backup (on request) 60 s ago: ERROR: [041]: gone\n");
    h.last_backup = now - 5;
    h.last_type = "full";
    h.error = "pgBackRest's info for 'a' failed";
    EXPECT_EQ(text(hostd::backup_health_rows(h, now)),
              "last_backup: full L, 5 s ago\n"
              "last_wal: archived 30 s ago\n"
              "repository: 5M on disk\n"
              "repo_error: pgBackRest's info for 'a' failed\n"
              "last_failure: full backup (on request) 60 s ago: ERROR: [041]: gone (a backup succeeded since)\n");
}

TEST(Present, TheBackupsViewSurvivesTheWire) {
    hostd::TenantView v;
    v.name = "a";
    hostd::BackupHealth h{.checked = 1796000000, .last_backup = 1795990000, .last_type = "incr", .last_label = "L",
                          .last_full = 1795000000, .last_wal = 1795999000, .repo_bytes = 42, .failures = 3};
    h.last_failure = hostd::BackupFailure{.at = 1795999999, .type = "full", .by = "schedule", .message = "m"};
    v.backup = h;
    const hostd::TenantView back = hostd::wire::parse_tenant(hostd::wire::render(v));
    ASSERT_TRUE(back.backup) << hostd::wire::render(v).dump();
    EXPECT_EQ(back.backup->checked, h.checked);
    EXPECT_EQ(back.backup->last_backup, h.last_backup);
    EXPECT_EQ(back.backup->last_label, "L");
    EXPECT_EQ(back.backup->last_full, h.last_full);
    EXPECT_EQ(back.backup->last_wal, h.last_wal);
    EXPECT_EQ(back.backup->repo_bytes, 42u);
    EXPECT_EQ(back.backup->failures, 3u);
    ASSERT_TRUE(back.backup->last_failure);
    EXPECT_EQ(back.backup->last_failure->at, 1795999999);
    EXPECT_EQ(back.backup->last_failure->by, "schedule");
    EXPECT_TRUE(back.backup->failing());
    EXPECT_EQ(hostd::wire::render(v)["backup"]["last_failure"]["at"], "2026-11-30T00:53:19Z");
}

// Per-tenant setting overrides: the catalog (built in, and the installed server's), validation,
// the protected list, restart detection, hostd.override.conf against tests/data/pgconf/, and
// (SettingsRoot: root + Debian's PostgreSQL 15 + the `postgres` user) the server's own parse
// of what hostd writes. HOSTD_UPDATE_GOLDEN=1 rewrites the expected files.

#include <gtest/gtest.h>

#include "golden.h"
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <set>

#include "base/error.h"
#include "base/exec.h"
#include "base/fs.h"
#include "pgconf/settings.h"

using namespace hostd;
using namespace hostd::pgconf;
using Map = std::map<std::string, std::string>;

namespace {

const std::string kBindir = "/usr/lib/postgresql/15/bin";

const SettingsCatalog& catalog() {
    static const SettingsCatalog c = SettingsCatalog::builtin();
    return c;
}

// The error validate_overrides throws for one setting, or "<accepted>".
struct Outcome {
    std::string message, field;
};
Outcome refusal(const Map& in) {
    try {
        validate_overrides(catalog(), in);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid) << e.what();
        return {e.what(), e.field()};
    }
    return {"<accepted>", ""};
}

std::string normalized(const std::string& name, const std::string& value) {
    Map out = validate_overrides(catalog(), {{name, value}});
    EXPECT_EQ(out.size(), 1u);
    return out.empty() ? "<none>" : out.begin()->second;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void expect_golden(const std::string& name, const std::string& actual) {
    hostd::test::expect_golden("pgconf/" + name, actual);
}

}  // namespace

// --- The catalog ----------------------------------------------------------------------------

TEST(SettingsCatalog, BuiltinKnowsTypesUnitsRangesAndEnumValues) {
    const SettingSpec* wm = catalog().find("work_mem");
    ASSERT_NE(wm, nullptr);
    EXPECT_EQ(wm->vartype, "integer");
    EXPECT_EQ(wm->context, "user");
    EXPECT_EQ(wm->unit, "kB");
    EXPECT_EQ(wm->min, 64);
    EXPECT_EQ(wm->max, 2147483647);

    const SettingSpec* wl = catalog().find("wal_level");
    ASSERT_NE(wl, nullptr);
    EXPECT_EQ(wl->context, "postmaster");
    EXPECT_EQ(wl->enumvals, (std::vector<std::string>{"minimal", "replica", "logical"}));

    const SettingSpec* ssl_max = catalog().find("ssl_max_protocol_version");
    ASSERT_NE(ssl_max, nullptr);
    ASSERT_FALSE(ssl_max->enumvals.empty());
    EXPECT_EQ(ssl_max->enumvals.front(), "");  // "no maximum" is an empty value

    EXPECT_EQ(catalog().find("random_page_cost")->vartype, "real");
    EXPECT_EQ(catalog().find("shared_buffers")->unit, "8kB");
    EXPECT_EQ(catalog().find("fsync")->vartype, "bool");
}

TEST(SettingsCatalog, LooksNamesUpIgnoringCase) {
    ASSERT_NE(catalog().find("timezone"), nullptr);
    EXPECT_EQ(catalog().find("timezone")->name, "TimeZone");
    EXPECT_EQ(catalog().find("WORK_MEM"), catalog().find("work_mem"));
    EXPECT_EQ(catalog().find("work_memory"), nullptr);
    EXPECT_EQ(catalog().find(""), nullptr);
}

TEST(SettingsCatalog, ListsOnlySettingsAConfigurationFileMaySet) {
    EXPECT_GT(catalog().all().size(), 250u);
    EXPECT_EQ(catalog().find("server_version"), nullptr);  // internal, reported not set
    EXPECT_EQ(catalog().find("transaction_isolation"), nullptr);  // not allowed in a file
    EXPECT_TRUE(std::is_sorted(catalog().all().begin(), catalog().all().end(), [](const auto& a, const auto& b) {
        auto la = a.name, lb = b.name;
        std::transform(la.begin(), la.end(), la.begin(), ::tolower);
        std::transform(lb.begin(), lb.end(), lb.begin(), ::tolower);
        return la < lb;
    }));
}

TEST(SettingsCatalog, ParsesItsTableFormat) {
    auto c = SettingsCatalog::parse_table(
        "# a comment\n"
        "b_setting\tinteger\tsighup\tms\t-1\t100\t\n"
        "A_setting\tenum\tuser\t\t\t\t|one|two\n");
    ASSERT_EQ(c.all().size(), 2u);
    EXPECT_EQ(c.all()[0].name, "A_setting");
    EXPECT_EQ(c.all()[0].enumvals, (std::vector<std::string>{"", "one", "two"}));
    EXPECT_FALSE(c.all()[0].min);
    EXPECT_EQ(c.all()[1].unit, "ms");
    EXPECT_EQ(c.all()[1].min, -1);
    EXPECT_EQ(c.all()[1].max, 100);

    EXPECT_THROW(SettingsCatalog::parse_table("x\tinteger\tuser\n"), Error);
    EXPECT_THROW(SettingsCatalog::parse_table("x\tbool\tuser\t\t\t\t\nX\tbool\tuser\t\t\t\t\n"), Error);
}

TEST(SettingsCatalog, ParsesDescribeConfigAndCompletesItFromTheTable) {
    // Lines in the format of `postgres --describe-config`.
    const std::string text =
        "work_mem\tuser\tResource Usage / Memory\tINTEGER\t4096\t64\t2147483647\tSets the maximum memory.\t\n"
        "wal_level\tpostmaster\tWrite-Ahead Log / Settings\tENUM\treplica\t\t\tSets the level.\t\n"
        "fsync\tsighup\tWrite-Ahead Log / Settings\tBOOLEAN\ttrue\t\t\tForces synchronization.\tLong text.\n"
        "brand_new\tuser\tCustomized Options\tINTEGER\t0\t0\t10\tNot in the table.\t\n";
    auto c = SettingsCatalog::parse_describe_config(text, &catalog());
    ASSERT_EQ(c.all().size(), 4u);
    EXPECT_EQ(c.find("work_mem")->unit, "kB");
    EXPECT_EQ(c.find("work_mem")->min, 64);
    EXPECT_EQ(c.find("wal_level")->enumvals, catalog().find("wal_level")->enumvals);
    EXPECT_EQ(c.find("fsync")->vartype, "bool");
    EXPECT_EQ(c.find("brand_new")->unit, "");
    EXPECT_EQ(c.find("brand_new")->max, 10);

    auto bare = SettingsCatalog::parse_describe_config(text);
    EXPECT_EQ(bare.find("work_mem")->unit, "");
    EXPECT_THROW(SettingsCatalog::parse_describe_config("garbage line\n"), Error);
}

TEST(SettingsCatalog, BuiltinMatchesTheInstalledServer) {
    if (!path_exists(kBindir + "/postgres")) GTEST_SKIP() << "needs " << kBindir << "/postgres";
    const SettingsCatalog server = SettingsCatalog::load(kBindir);
    std::set<std::string> server_names, table_names;
    for (const auto& s : server.all()) server_names.insert(s.name);
    for (const auto& s : catalog().all()) table_names.insert(s.name);
    // Names come from the installed server at run time (load above); the table completes them
    // with units and enum values. A server setting the table lacks would go without them, so
    // that fails. A table setting this server lacks (the table is from a later 15.x point
    // release) is never offered, so it is only reported.
    std::vector<std::string> missing, extra;
    std::set_difference(server_names.begin(), server_names.end(), table_names.begin(), table_names.end(),
                        std::back_inserter(missing));
    std::set_difference(table_names.begin(), table_names.end(), server_names.begin(), server_names.end(),
                        std::back_inserter(extra));
    EXPECT_TRUE(missing.empty()) << "pgconf/pg15-settings.tsv is out of date (lacks " << missing.size()
                                 << " settings, first " << missing.front() << "): run pgconf/gen-settings";
    for (const auto& n : extra) std::cout << "note: the table has '" << n << "', this server does not\n";
    for (const auto& s : server.all()) {
        const SettingSpec* t = catalog().find(s.name);
        if (!t) continue;
        EXPECT_EQ(s.vartype, t->vartype) << s.name;
        EXPECT_EQ(s.context, t->context) << s.name;
        EXPECT_EQ(s.min, t->min) << s.name;
        EXPECT_EQ(s.max, t->max) << s.name;
        EXPECT_EQ(s.unit, t->unit) << s.name;  // completed from the table
        if (s.vartype == "enum") {
            EXPECT_FALSE(s.enumvals.empty()) << s.name;
        }
    }
}

TEST(SettingsCatalog, LoadReportsAMissingServerAsUnavailable) {
    try {
        SettingsCatalog::load("/nonexistent/bin");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::unavailable);
    }
}

// --- Validation: accepted values, normalized ------------------------------------------------

TEST(ValidateOverrides, AcceptsAnEmptyMap) { EXPECT_TRUE(validate_overrides(catalog(), {}).empty()); }

TEST(ValidateOverrides, WritesIntegersWithUnitsTheWayShowPrintsThem) {
    EXPECT_EQ(normalized("work_mem", "64MB"), "64MB");
    EXPECT_EQ(normalized("work_mem", "64 MB"), "64MB");
    EXPECT_EQ(normalized("work_mem", "65536"), "64MB");  // a bare number is in the base unit (kB)
    EXPECT_EQ(normalized("work_mem", "1.5MB"), "1536kB");
    EXPECT_EQ(normalized("work_mem", "1GB"), "1GB");
    EXPECT_EQ(normalized("work_mem", "1048576B"), "1MB");
    EXPECT_EQ(normalized("shared_buffers", "128MB"), "128MB");
    EXPECT_EQ(normalized("shared_buffers", "16384"), "128MB");  // 8kB blocks
    EXPECT_EQ(normalized("shared_buffers", "100"), "800kB");
    EXPECT_EQ(normalized("log_min_duration_statement", "250"), "250ms");
    EXPECT_EQ(normalized("log_min_duration_statement", "250ms"), "250ms");
    EXPECT_EQ(normalized("log_min_duration_statement", "5s"), "5s");
    EXPECT_EQ(normalized("log_min_duration_statement", "60000"), "1min");
    EXPECT_EQ(normalized("log_min_duration_statement", "1.5s"), "1500ms");
    EXPECT_EQ(normalized("log_min_duration_statement", "-1"), "-1");
    EXPECT_EQ(normalized("log_min_duration_statement", "0"), "0");
    EXPECT_EQ(normalized("statement_timeout", "2h"), "2h");
    EXPECT_EQ(normalized("checkpoint_timeout", "1d"), "1d");
    EXPECT_EQ(normalized("checkpoint_timeout", "300"), "5min");  // base unit s
}

TEST(ValidateOverrides, ReadsNumbersAsPostgresqlDoes) {
    EXPECT_EQ(normalized("max_parallel_workers", "0x10"), "16");
    EXPECT_EQ(normalized("max_parallel_workers", "010"), "8");  // leading 0: octal, as strtol reads it
    EXPECT_EQ(normalized("max_parallel_workers", "2.5e1"), "25");
    EXPECT_EQ(normalized("max_parallel_workers", "2.5"), "2");  // rounded half to even
    EXPECT_EQ(normalized("max_parallel_workers", " 4 "), "4");
    EXPECT_EQ(normalized("random_page_cost", "1.1"), "1.1");
    EXPECT_EQ(normalized("random_page_cost", "4"), "4");
    EXPECT_EQ(normalized("random_page_cost", "1e-3"), "0.001");
    EXPECT_EQ(normalized("vacuum_cost_delay", "2ms"), "2ms");
    EXPECT_EQ(normalized("vacuum_cost_delay", "0.5"), "500us");
    EXPECT_EQ(normalized("autovacuum_vacuum_cost_delay", "-1"), "-1");
}

TEST(ValidateOverrides, AcceptsBooleansInEveryUsualSpelling) {
    for (std::string on : {"on", "ON", "true", "True", "yes", "1"}) EXPECT_EQ(normalized("autovacuum", on), "on") << on;
    for (std::string off : {"off", "false", "FALSE", "no", "0"}) EXPECT_EQ(normalized("jit", off), "off") << off;
}

TEST(ValidateOverrides, AcceptsEnumValuesInAnyCase) {
    EXPECT_EQ(normalized("wal_level", "Logical"), "logical");
    EXPECT_EQ(normalized("default_transaction_isolation", "REPEATABLE READ"), "repeatable read");
    EXPECT_EQ(normalized("synchronous_commit", "off"), "off");
}

TEST(ValidateOverrides, KeepsStringsAndKeysNamesInLowerCase) {
    Map out = validate_overrides(catalog(), {{"TimeZone", "Europe/Paris"},
                                             {"search_path", "\"$user\", public, it's"},
                                             {"log_line_prefix", "%m [%p] \\ "}});
    EXPECT_EQ(out, (Map{{"timezone", "Europe/Paris"},
                        {"search_path", "\"$user\", public, it's"},
                        {"log_line_prefix", "%m [%p] \\ "}}));
}

TEST(ValidateOverrides, AcceptsTheStartTimeSettingsHostdAllows) {
    Map in = {{"max_connections", "200"}, {"shared_buffers", "1GB"}, {"max_wal_senders", "4"},
              {"wal_level", "logical"}, {"max_worker_processes", "16"}, {"archive_mode", "on"},
              {"archive_command", "/bin/true %p"}, {"track_commit_timestamp", "on"}};
    EXPECT_EQ(validate_overrides(catalog(), in).size(), in.size());
}

// --- Validation: refusals -------------------------------------------------------------------

TEST(ValidateOverrides, RefusesAnUnknownNameSuggestingTheClosest) {
    auto r = refusal({{"work_memory", "64MB"}});
    EXPECT_EQ(r.field, "settings.work_memory");
    EXPECT_TRUE(contains(r.message, "Unknown PostgreSQL setting 'work_memory'")) << r.message;
    EXPECT_TRUE(contains(r.message, "did you mean 'work_mem'?")) << r.message;
    EXPECT_TRUE(contains(refusal({{"shared_buffer", "1GB"}}).message, "'shared_buffers'"));
    EXPECT_TRUE(contains(refusal({{"maxconnections", "10"}}).message, "'max_connections'"));
    EXPECT_TRUE(contains(refusal({{"timezon", "UTC"}}).message, "'TimeZone'"));
    EXPECT_TRUE(contains(refusal({{"log_min_duration", "1s"}}).message, "did you mean 'log_duration'?"));
    EXPECT_TRUE(contains(refusal({{"idle_in_transaction", "1s"}}).message,
                         "did you mean 'idle_in_transaction_session_timeout'?"));
    EXPECT_FALSE(contains(refusal({{"completely_unrelated_thing", "1"}}).message, "did you mean"));
}

TEST(ValidateOverrides, RefusesExtensionSettings) {
    auto r = refusal({{"pg_stat_statements.track", "all"}});
    EXPECT_EQ(r.field, "settings.pg_stat_statements.track");
    EXPECT_TRUE(contains(r.message, "extension")) << r.message;
}

TEST(ValidateOverrides, RefusesEverySettingHostdKeeps) {
    // Whatever the value: where the cluster lives and listens, TLS, libraries, logging, memory model.
    const Map refused = {
        {"port", "5433"}, {"listen_addresses", "*"}, {"data_directory", "/tmp/x"}, {"hba_file", "/tmp/hba"},
        {"ident_file", "/tmp/ident"}, {"config_file", "/tmp/c"}, {"unix_socket_directories", "/tmp"},
        {"unix_socket_group", "users"}, {"unix_socket_permissions", "0777"}, {"ssl", "off"},
        {"ssl_cert_file", "/tmp/c.pem"}, {"ssl_key_file", "/tmp/k.pem"}, {"ssl_ca_file", "/tmp/ca.pem"},
        {"ssl_crl_file", "/tmp/crl"}, {"ssl_crl_dir", "/tmp"}, {"ssl_passphrase_command", "echo x"},
        {"ssl_passphrase_command_supports_reload", "on"}, {"ssl_ciphers", "NULL"},
        {"ssl_min_protocol_version", "TLSv1"}, {"shared_preload_libraries", "pg_stat_statements"},
        {"local_preload_libraries", "x"}, {"session_preload_libraries", "x"}, {"jit_provider", "x"},
        {"archive_library", "x"}, {"dynamic_library_path", "/tmp"}, {"external_pid_file", "/tmp/pid"},
        {"logging_collector", "on"}, {"log_destination", "csvlog"}, {"log_directory", "/tmp"},
        {"log_filename", "x.log"}, {"syslog_ident", "x"}, {"cluster_name", "other"}, {"huge_pages", "on"},
        {"huge_page_size", "2MB"}, {"dynamic_shared_memory_type", "sysv"}, {"shared_memory_type", "sysv"},
        {"krb_server_keyfile", "/tmp/k"}, {"db_user_namespace", "on"}, {"restore_command", "cp x %p"},
        {"recovery_target_time", "2026-01-01"}, {"primary_conninfo", "host=x"}, {"hot_standby", "off"},
        {"bonjour", "on"},
    };
    for (const auto& [name, value] : refused) {
        auto r = refusal({{name, value}});
        EXPECT_EQ(r.field, "settings." + name);
        EXPECT_TRUE(contains(r.message, "'" + name + "' cannot be overridden: ")) << name << ": " << r.message;
    }
    // Mixed case is the same setting.
    EXPECT_EQ(refusal({{"Listen_Addresses", "*"}}).field, "settings.Listen_Addresses");
}

TEST(ValidateOverrides, AllowsProtectedSettingsOnlyAtTheirSafeValue) {
    const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
        {"password_encryption", "scram-sha-256", "md5"},
        {"fsync", "on", "off"},
        {"full_page_writes", "true", "false"},
        {"data_sync_retry", "off", "on"},
        {"restart_after_crash", "on", "off"},
    };
    for (const auto& [name, ok, bad] : cases) {
        EXPECT_EQ(validate_overrides(catalog(), {{name, ok}}).size(), 1u) << name;
        auto r = refusal({{name, bad}});
        EXPECT_EQ(r.field, "settings." + name);
        EXPECT_TRUE(contains(r.message, "can only be")) << r.message;
    }
}

TEST(ValidateOverrides, RefusesEachEntryOfTheProtectedList) {
    for (const auto& p : protected_settings()) {
        const std::string name(p.name);
        const SettingSpec* spec = catalog().find(name);
        // A value of the right type, so the refusal is the protection and not the value.
        std::string value = "x";
        if (spec && spec->vartype == "bool") value = p.only_value == "on" ? "off" : "on";
        if (spec && spec->vartype == "integer") value = spec->min ? std::to_string(static_cast<long>(*spec->min)) : "1";
        if (spec && spec->vartype == "enum") {
            for (const auto& e : spec->enumvals)
                if (e != p.only_value) value = e;
        }
        EXPECT_NE(refusal({{name, value}}).message, "<accepted>") << name;
        EXPECT_FALSE(p.reason.empty()) << name;
    }
}

TEST(ValidateOverrides, LetsOnlyListedStartTimeSettingsThrough) {
    // Every start-time setting of the server is either on hostd's list or protected.
    std::set<std::string> allowed(restart_settings_allowed().begin(), restart_settings_allowed().end());
    std::set<std::string> prot;
    for (const auto& p : protected_settings()) prot.insert(std::string(p.name));
    for (const auto& s : catalog().all()) {
        if (s.context != "postmaster") continue;
        EXPECT_TRUE(allowed.count(s.name) || prot.count(s.name)) << s.name << " is neither allowed nor protected";
        EXPECT_FALSE(allowed.count(s.name) && prot.count(s.name)) << s.name << " is both";
    }
    for (const auto& name : allowed) {
        ASSERT_NE(catalog().find(name), nullptr) << name;
        EXPECT_EQ(catalog().find(name)->context, "postmaster") << name;
    }
    for (const auto& name : prot) {
        if (name != "config_file") {
            EXPECT_NE(catalog().find(name), nullptr) << name << " is not a setting";
        }
    }

    // A start-time setting hostd has not decided on (a newer server's, say) is refused.
    auto c = SettingsCatalog::parse_table("new_start_setting\tinteger\tpostmaster\t\t0\t10\t\n"
                                          "read_only_thing\tinteger\tinternal\t\t0\t10\t\n");
    try {
        validate_overrides(c, {{"new_start_setting", "1"}});
        FAIL();
    } catch (const Error& e) {
        EXPECT_TRUE(contains(e.what(), "read only at server start")) << e.what();
        EXPECT_EQ(e.field(), "settings.new_start_setting");
    }
    try {
        validate_overrides(c, {{"read_only_thing", "1"}});
        FAIL();
    } catch (const Error& e) {
        EXPECT_TRUE(contains(e.what(), "read-only")) << e.what();
    }
}

TEST(ValidateOverrides, RefusesValuesOfTheWrongType) {
    auto r = refusal({{"work_mem", "lots"}});
    EXPECT_EQ(r.field, "settings.work_mem");
    EXPECT_TRUE(contains(r.message, "Invalid value 'lots' for 'work_mem': expected an integer, optionally with a "
                                    "unit (TB, GB, MB, kB, B)"))
        << r.message;
    EXPECT_TRUE(contains(refusal({{"work_mem", "64mb"}}).message, "case-sensitive"));
    EXPECT_TRUE(contains(refusal({{"work_mem", "64MB extra"}}).message, "expected an integer"));
    EXPECT_TRUE(contains(refusal({{"work_mem", "64s"}}).message, "expected an integer"));  // a time unit
    EXPECT_TRUE(contains(refusal({{"statement_timeout", "5 parsecs"}}).message, "(d, h, min, s, ms, us)"));
    EXPECT_TRUE(contains(refusal({{"max_connections", "10MB"}}).message, "without a unit"));
    EXPECT_TRUE(contains(refusal({{"max_connections", ""}}).message, "expected an integer"));
    EXPECT_TRUE(contains(refusal({{"max_connections", "inf"}}).message, "expected an integer"));
    EXPECT_TRUE(contains(refusal({{"random_page_cost", "nan"}}).message, "expected a number"));
    EXPECT_TRUE(contains(refusal({{"random_page_cost", "fast"}}).message, "expected a number"));
    r = refusal({{"autovacuum", "maybe"}});
    EXPECT_TRUE(contains(r.message, "expected on or off")) << r.message;
    EXPECT_TRUE(contains(refusal({{"autovacuum", "o"}}).message, "expected on or off"));
    EXPECT_TRUE(contains(refusal({{"search_path", "a\nport = 1"}}).message, "control character"));
}

TEST(ValidateOverrides, RefusesValuesOutOfRangeStatingTheRangeAndUnit) {
    auto r = refusal({{"work_mem", "32kB"}});
    EXPECT_EQ(r.field, "settings.work_mem");
    EXPECT_EQ(r.message, "Value '32kB' for 'work_mem' is out of range: it is 32kB, and must be between 64kB and "
                         "2147483647kB");
    r = refusal({{"shared_buffers", "64kB"}});
    EXPECT_TRUE(contains(r.message, "it is 8 × 8kB, and must be between 16 × 8kB and 1073741823 × 8kB")) << r.message;
    r = refusal({{"checkpoint_completion_target", "1.5"}});
    EXPECT_TRUE(contains(r.message, "between 0 and 1")) << r.message;
    r = refusal({{"statement_timeout", "30d"}});  // 2592000000 ms does not fit an int
    EXPECT_EQ(r.message, "Value '30d' for 'statement_timeout' is out of range: it is 2592000000ms, and must be "
                         "between 0ms and 2147483647ms");
    r = refusal({{"max_connections", "5000"}});
    EXPECT_TRUE(contains(r.message, "above hostd's limit of 1000")) << r.message;
    EXPECT_EQ(refusal({{"max_connections", "0"}}).field, "settings.max_connections");
}

TEST(ValidateOverrides, RefusesEnumValuesNotListedNamingTheList) {
    auto r = refusal({{"wal_level", "archive"}});
    EXPECT_EQ(r.field, "settings.wal_level");
    EXPECT_EQ(r.message, "Invalid value 'archive' for 'wal_level': expected one of 'minimal', 'replica', 'logical'");
}

TEST(ValidateOverrides, RefusesCombinationsTheServerWouldNotStartWith) {
    EXPECT_TRUE(contains(refusal({{"wal_level", "minimal"}}).message, "max_wal_senders = 0"));
    EXPECT_EQ(validate_overrides(catalog(), {{"wal_level", "minimal"}, {"max_wal_senders", "0"}}).size(), 2u);
    EXPECT_TRUE(contains(refusal({{"wal_level", "minimal"}, {"max_wal_senders", "0"}, {"archive_mode", "on"}}).message,
                         "archive_mode = off"));

    auto r = refusal({{"superuser_reserved_connections", "25"}});
    EXPECT_EQ(r.field, "settings.superuser_reserved_connections");
    EXPECT_TRUE(contains(r.message, "must be less than max_connections (20, the least hostd sets)")) << r.message;
    EXPECT_EQ(validate_overrides(catalog(), {{"superuser_reserved_connections", "25"}, {"max_connections", "50"}}).size(),
              2u);
    EXPECT_EQ(refusal({{"max_connections", "3"}}).field, "settings.max_connections");
}

TEST(ValidateOverrides, RefusesTheSameSettingTwiceInDifferentSpellings) {
    auto r = refusal({{"TimeZone", "UTC"}, {"timezone", "UTC"}});
    EXPECT_TRUE(contains(r.message, "are the same setting")) << r.message;
}

// --- Restarts -------------------------------------------------------------------------------

TEST(SettingsNeedingRestart, ListsStartTimeSettingsThatChange) {
    const Map before = {{"work_mem", "64MB"}, {"shared_buffers", "128MB"}, {"max_connections", "50"}};
    EXPECT_TRUE(settings_needing_restart(catalog(), before, before).empty());
    Map after = before;
    after["work_mem"] = "128MB";  // a reload applies it
    EXPECT_TRUE(settings_needing_restart(catalog(), before, after).empty());
    after["shared_buffers"] = "256MB";
    after.erase("max_connections");
    after["wal_level"] = "logical";
    EXPECT_EQ(settings_needing_restart(catalog(), before, after),
              (std::vector<std::string>{"max_connections", "shared_buffers", "wal_level"}));
    EXPECT_EQ(settings_needing_restart(catalog(), {}, {{"max_wal_senders", "4"}}),
              (std::vector<std::string>{"max_wal_senders"}));
}

// --- Rendering ------------------------------------------------------------------------------

TEST(RenderOverrides, MatchesTheExpectedFile) {
    Map v = validate_overrides(catalog(), {{"work_mem", "64MB"},
                                           {"log_min_duration_statement", "250"},
                                           {"TimeZone", "Europe/Paris"},
                                           {"autovacuum", "true"},
                                           {"random_page_cost", "1.1"},
                                           {"search_path", "\"$user\", it's, back\\slash"},
                                           {"shared_buffers", "1GB"},
                                           {"wal_level", "Logical"}});
    expect_golden("overrides.conf", render_overrides(v));
}

TEST(RenderOverrides, WritesOnlyAHeaderForNoSettings) {
    auto text = render_overrides({});
    EXPECT_FALSE(text.empty());
    size_t pos = 0;
    while (pos < text.size()) {
        EXPECT_EQ(text[pos], '#');
        pos = text.find('\n', pos) + 1;
    }
}

TEST(RenderOverrides, RefusesWhatCouldBreakTheFile) {
    EXPECT_THROW(render_overrides({{"work_mem = 1\nport", "1"}}), Error);
    EXPECT_THROW(render_overrides({{"", "1"}}), Error);
    EXPECT_THROW(render_overrides({{"work_mem", "1\nport = 5"}}), Error);
    EXPECT_EQ(render_overrides({{"search_path", "it's"}}).substr(render_overrides({}).size()),
              "search_path = 'it''s'\n");
}

TEST(RenderOverrides, RefusesAControlCharacterInAValueNamingTheSetting) {
    const std::vector<std::string> values = {"1\nport = 5", "a\rb", "a\tb", std::string("a\0b", 3), "a\x1b[0m", "a\x7f"};
    for (const std::string& bad : values) {
        try {
            render_overrides({{"search_path", bad}});
            ADD_FAILURE() << "accepted " << testing::PrintToString(bad);
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::invalid);
            EXPECT_EQ(e.field(), "settings.search_path");
            EXPECT_NE(std::string(e.what()).find("control character"), std::string::npos) << e.what();
        }
    }
}

// --- The server's own reading ---------------------------------------------------------------

namespace {

bool can_run_server(std::string& why) {
    if (::geteuid() != 0) why = "needs root (to run postgres as the 'postgres' user)";
    else if (!::getpwnam("postgres")) why = "needs the 'postgres' user (Debian's postgresql package)";
    else if (!path_exists(kBindir + "/postgres")) why = "needs " + kBindir + "/postgres";
    return why.empty();
}

ServerCheck as_postgres() {
    passwd* pw = ::getpwnam("postgres");
    return {.bindir = kBindir, .uid = pw->pw_uid, .gid = pw->pw_gid};
}

// What the server makes of `name = <value>` in a configuration file: `postgres -C` prints the
// value in the base unit, without unit.
std::string server_reads(const std::string& name, const std::string& value) {
    ServerCheck c = as_postgres();
    char tmpl[] = "/var/tmp/hostd-pgconf-settings.XXXXXX";
    if (!::mkdtemp(tmpl)) throw_errno(errno, "mkdtemp");
    const std::string dir = tmpl;
    struct Remove {
        std::string dir;
        ~Remove() {
            std::error_code ec;
            std::filesystem::remove_all(dir, ec);
        }
    } remove{dir};
    if (::chown(dir.c_str(), c.uid, c.gid) < 0) throw_errno(errno, "chown");
    std::string quoted;
    for (char ch : value) quoted += ch == '\'' ? std::string("''") : std::string(1, ch);
    write_file_atomic(dir + "/postgresql.conf",
                      "data_directory = '/nonexistent'\nhba_file = '/dev/null'\nident_file = '/dev/null'\n" + name +
                          " = '" + quoted + "'\n",
                      0600, c.uid, c.gid);
    auto r = exec_checked({.argv = {kBindir + "/postgres", "--config-file=" + dir + "/postgresql.conf", "-C", name},
                           .uid = c.uid,
                           .gid = c.gid},
                          "postgres -C " + name);
    while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
    return r.out;
}

}  // namespace

TEST(SettingsRoot, NormalizedValuesMeanTheSameToTheServer) {
    std::string why;
    if (!can_run_server(why)) GTEST_SKIP() << why;
    const std::vector<std::pair<std::string, std::string>> inputs = {
        {"work_mem", "64MB"}, {"work_mem", "1.5MB"}, {"work_mem", "1.0001GB"}, {"work_mem", "100000B"},
        {"shared_buffers", "100"}, {"shared_buffers", "1.3GB"}, {"log_min_duration_statement", "1.5s"},
        {"log_min_duration_statement", "90000"}, {"log_min_duration_statement", "-1"},
        {"checkpoint_timeout", "0.5h"}, {"max_parallel_workers", "0x10"}, {"max_parallel_workers", "010"},
        {"max_parallel_workers", "2.5"}, {"max_parallel_workers", "3.5"}, {"vacuum_cost_delay", "0.5"},
        {"vacuum_cost_delay", "2.0004ms"}, {"random_page_cost", "1.1"}, {"autovacuum", "YES"},
        {"wal_level", "Logical"}, {"temp_file_limit", "-1"}, {"wal_buffers", "-1"}, {"wal_buffers", "16MB"},
    };
    for (const auto& [name, raw] : inputs) {
        const std::string norm = normalized(name, raw);
        EXPECT_EQ(server_reads(name, norm), server_reads(name, raw)) << name << " = '" << raw << "' → '" << norm << "'";
    }
}

TEST(SettingsRoot, TheServerAcceptsWhatHostdWrites) {
    std::string why;
    if (!can_run_server(why)) GTEST_SKIP() << why;
    Map v = validate_overrides(catalog(), {{"work_mem", "64MB"}, {"TimeZone", "Europe/Paris"},
                                           {"lc_messages", "C.UTF-8"}, {"search_path", "\"$user\", it's"},
                                           {"shared_buffers", "1GB"}, {"wal_level", "logical"},
                                           {"log_line_prefix", "%m [%p] \\ "}, {"random_page_cost", "1.1"}});
    EXPECT_NO_THROW(check_overrides_with_server(as_postgres(), v));
    EXPECT_NO_THROW(check_overrides_with_server(as_postgres(), {}));
}

TEST(SettingsRoot, TheServerRefusesWhatOnlyItCanCheck) {
    std::string why;
    if (!can_run_server(why)) GTEST_SKIP() << why;
    Map v = validate_overrides(catalog(), {{"work_mem", "64MB"}, {"TimeZone", "Mars/Olympus_Mons"}});
    try {
        check_overrides_with_server(as_postgres(), v);
        FAIL() << "a time zone that does not exist was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid);
        EXPECT_EQ(e.field(), "settings.timezone");
        EXPECT_TRUE(contains(e.what(), "invalid value for parameter \"TimeZone\": \"Mars/Olympus_Mons\"")) << e.what();
        EXPECT_FALSE(contains(e.what(), "GMT [")) << e.what();  // no log prefix
    }
    v = validate_overrides(catalog(), {{"lc_messages", "xx_YY.nothing"}, {"timezone_abbreviations", "Nowhere"}});
    try {
        check_overrides_with_server(as_postgres(), v);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid);
        EXPECT_EQ(e.field(), "settings");  // two settings named
        EXPECT_TRUE(contains(e.what(), "lc_messages")) << e.what();
        EXPECT_TRUE(contains(e.what(), "timezone_abbreviations")) << e.what();
    }
}

TEST(SettingsRoot, TheServerCheckDoesNotRunAsRoot) {
    try {
        check_overrides_with_server({.bindir = kBindir, .uid = 0, .gid = 0}, {});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid);
    }
}

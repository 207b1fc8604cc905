// Settings against limits (pgconf/fit.h): hostd's own rendered values always fit; overrides that
// cannot fit MemoryMax or TasksMax are refused with the numbers and the setting to blame.

#include <gtest/gtest.h>

#include "base/error.h"
#include "pgconf/fit.h"
#include "pgconf/settings.h"

using namespace hostd;
using namespace hostd::pgconf;
using Map = std::map<std::string, std::string>;

namespace {

constexpr uint64_t kMiB = 1024 * 1024;

const SettingsCatalog& catalog() {
    static const SettingsCatalog c = SettingsCatalog::builtin();
    return c;
}

ClusterSpec spec(uint64_t memory_mib, double cpus = 1) {
    return {.tenant = "acme", .port = 25000, .socket_dir = "/run/x", .memory_bytes = memory_mib * kMiB, .cpus = cpus};
}

struct Outcome {
    std::string message, field;
};
Outcome refusal(const ClusterSpec& s, uint64_t tasks, const Map& overrides) {
    try {
        check_fit(catalog(), s, tasks, validate_overrides(catalog(), overrides));
    } catch (const Error& e) {
        return {e.what(), e.field()};
    }
    return {"<accepted>", ""};
}

}  // namespace

TEST(Fit, HostdsOwnValuesFitFromTheSmallestMemoryUp) {
    // The tasks the rendered values need at most (100 connections, up to 8 CPUs) stay under the
    // default TasksMax.
    for (uint64_t m : {48, 64, 100, 160, 256, 512, 800, 1024, 4096, 65536}) {
        SCOPED_TRACE(m);
        EXPECT_EQ(refusal(spec(m), 512, {}).message, "<accepted>");
        const FitNumbers n = fit_numbers(catalog(), spec(m), {});
        EXPECT_LE(n.memory_needed(), 0.75 * static_cast<double>(m * kMiB));
    }
    EXPECT_EQ(fit_numbers(catalog(), spec(64), {}).tasks_needed(), 20 + 10 + 3 + 8 + 8);
    EXPECT_EQ(fit_numbers(catalog(), spec(4096), {}).tasks_needed(), 100 + 10 + 3 + 8 + 8);
}

TEST(Fit, SharedBuffersBeyondTheMemoryIsRefusedWithBothNumbers) {
    auto o = refusal(spec(1024), 512, {{"shared_buffers", "2GB"}});
    EXPECT_EQ(o.field, "settings.shared_buffers");
    EXPECT_NE(o.message.find("shared_buffers 2G exceeds the tenant's memory 1G"), std::string::npos) << o.message;
    // In 8kB pages, as PostgreSQL reads a bare number: 262144 pages = 2GB.
    o = refusal(spec(1024), 512, {{"shared_buffers", "262144"}});
    EXPECT_NE(o.message.find("shared_buffers 2G exceeds"), std::string::npos) << o.message;
    EXPECT_EQ(refusal(spec(1024), 512, {{"shared_buffers", "512MB"}}).message, "<accepted>");
}

TEST(Fit, WorkMemTimesConnectionsBeyondTheMemoryIsRefusedWithTheSumAndWhatWouldFit) {
    // 1G: shared_buffers 256M, max_connections 100 (hostd's), work_mem 64MB → 6.5G.
    auto o = refusal(spec(1024), 512, {{"work_mem", "64MB"}});
    EXPECT_EQ(o.field, "settings.work_mem");
    EXPECT_NE(o.message.find("shared_buffers 256M + max_connections 100 × work_mem 64M = 6.5G exceeds the tenant's "
                             "memory 1G"),
              std::string::npos)
        << o.message;
    EXPECT_NE(o.message.find("work_mem to at most 7864kB"), std::string::npos) << o.message;
    EXPECT_NE(o.message.find("max_connections to at most 12"), std::string::npos) << o.message;
    // What the message proposes fits.
    EXPECT_EQ(refusal(spec(1024), 512, {{"work_mem", "64MB"}, {"max_connections", "12"}}).message, "<accepted>");
    EXPECT_EQ(refusal(spec(1024), 512, {{"work_mem", "7864kB"}}).message, "<accepted>");
    // max_connections raised alone, with hostd's work_mem.
    o = refusal(spec(256), 512, {{"max_connections", "500"}});
    EXPECT_EQ(o.field, "settings.max_connections");
}

TEST(Fit, ALowerMemoryIsRefusedWhenTheTenantsOverridesNoLongerFit) {
    const Map overrides = validate_overrides(catalog(), {{"shared_buffers", "512MB"}});
    EXPECT_NO_THROW(check_fit(catalog(), spec(1024), 512, overrides));
    try {
        check_fit(catalog(), spec(512), 512, overrides);
        FAIL() << "accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.field(), "settings.shared_buffers");
        EXPECT_NE(std::string(e.what()).find("shared_buffers 512M exceeds the tenant's memory 512M"), std::string::npos)
            << e.what();
    }
}

TEST(Fit, ConnectionsBeyondTheTasksLimitAreRefusedWithTheCount) {
    auto o = refusal(spec(1024), 512, {{"max_connections", "500"}, {"work_mem", "1MB"}, {"shared_buffers", "128MB"}});
    EXPECT_EQ(o.field, "settings.max_connections");
    EXPECT_NE(o.message.find("may run 529 processes (max_connections 500 + max_wal_senders 10 + "
                             "autovacuum_max_workers 3 + max_worker_processes 8 + 8 server processes), more than its "
                             "tasks limit 512"),
              std::string::npos)
        << o.message;
    // A tasks limit too small for hostd's own values blames the limit, and says what it needs.
    o = refusal(spec(64), 30, {});
    EXPECT_EQ(o.field, "tasks");
    EXPECT_NE(o.message.find("give it at least 49 tasks"), std::string::npos) << o.message;
    EXPECT_EQ(refusal(spec(64), 49, {}).message, "<accepted>");
    EXPECT_EQ(refusal(spec(64), 40, {{"max_wal_senders", "0"}, {"max_connections", "20"}}).message, "<accepted>");
}

TEST(Fit, SettingNumberReadsUnitsAndPagesAsThePostgresServerDoes) {
    EXPECT_EQ(setting_number(catalog(), "shared_buffers", "128MB"), 128.0 * kMiB);
    EXPECT_EQ(setting_number(catalog(), "shared_buffers", "16384"), 128.0 * kMiB);
    EXPECT_EQ(setting_number(catalog(), "work_mem", "4096"), 4.0 * kMiB);  // kB
    EXPECT_EQ(setting_number(catalog(), "max_connections", "0x10"), 16.0);
    EXPECT_EQ(setting_number(catalog(), "work_mem", "lots"), std::nullopt);
    EXPECT_EQ(setting_number(catalog(), "datestyle", "iso"), std::nullopt);
}

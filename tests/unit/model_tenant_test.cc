// A create request resolved against hostd.toml: defaults filled in, values within the limits.
#include <gtest/gtest.h>

#include "base/error.h"
#include "model/tenant.h"

using namespace hostd;

TEST(ResolveSpec, RefusesXfsBelowItsMinimumBeforeADiskExistsSayingWhatWasAsked) {
    try {
        resolve_spec({.filesystem = "xfs", .disk_size = 256ull << 20}, Config{});
        ADD_FAILURE() << "a 256M xfs was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid);
        EXPECT_EQ(e.field(), "disk_size");
        EXPECT_NE(std::string(e.what()).find("at least 300 MB"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("256M"), std::string::npos) << e.what();
    }
    EXPECT_EQ(resolve_spec({.filesystem = "xfs", .disk_size = 320ull << 20}, Config{}).filesystem, "xfs");
    EXPECT_EQ(resolve_spec({.disk_size = 256ull << 20}, Config{}).filesystem, "ext4") << "ext4 has no such floor";
}

TEST(ResolveSpec, FillsWhatTheRequestLeavesOutFromTheConfig) {
    Config cfg;
    const TenantSpec s = resolve_spec({}, cfg);
    EXPECT_EQ(s.backend, cfg.backend);
    EXPECT_EQ(s.filesystem, cfg.filesystem);
    EXPECT_EQ(s.disk_size, cfg.disk_size);
    EXPECT_EQ(s.memory, cfg.memory);
    EXPECT_EQ(s.tasks, cfg.tasks);
}

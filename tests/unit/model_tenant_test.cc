// A create request resolved against hostd.toml: defaults filled in, values within the limits.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "tests/unit/error_of.h"
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

namespace {

using test::error_of;

TenantSpec kept_spec() {
    return {.backend = "loop", .filesystem = "xfs", .disk_size = 1ull << 30, .memory = 300ull << 20, .cpu = 0.25,
            .tasks = 300, .io_weight = 50, .settings = {{"work_mem", "8MB"}, {"jit", "off"}}};
}

}  // namespace

TEST(ResolveReuseSpec, StartsFromTheRecordedSpecNotTheConfiguredDefaults) {
    const TenantSpec s = resolve_reuse_spec({.reuse = true}, kept_spec(), Config{});
    const TenantSpec k = kept_spec();
    EXPECT_EQ(s.memory, k.memory);
    EXPECT_EQ(s.cpu, k.cpu);
    EXPECT_EQ(s.tasks, k.tasks);
    EXPECT_EQ(s.io_weight, k.io_weight);
    EXPECT_EQ(s.disk_size, k.disk_size);
    EXPECT_EQ(s.filesystem, "xfs");
    EXPECT_EQ(s.settings, k.settings);
}

TEST(ResolveReuseSpec, AppliesTheLimitsGivenAndSetsSettingsOverTheKeptOnes) {
    const TenantSpec s = resolve_reuse_spec(
        {.memory = 400ull << 20, .cpu = 0.5, .settings = Settings{{"Work_Mem", "16MB"}, {"statement_timeout", "5s"}},
         .reuse = true},
        kept_spec(), Config{});
    EXPECT_EQ(s.memory, 400ull << 20);
    EXPECT_DOUBLE_EQ(s.cpu, 0.5);
    EXPECT_EQ(s.tasks, 300u);
    EXPECT_EQ(s.settings, (Settings{{"work_mem", "16MB"}, {"jit", "off"}, {"statement_timeout", "5s"}}));
    EXPECT_EQ(error_of([] { resolve_reuse_spec({.memory = 1, .reuse = true}, kept_spec(), Config{}); }).field(), "memory");
}

TEST(ResolveReuseSpec, RefusesWhatCannotApplyToAKeptDiskNamingTheFieldAndWhy) {
    struct Case {
        CreateRequest req;
        std::string field, why;
    };
    for (const Case& c : std::vector<Case>{
             {{.disk_size = 2ull << 30, .reuse = true}, "disk_size", "hostctl resize"},
             {{.filesystem = "ext4", .reuse = true}, "filesystem", "formatted xfs"},
             {{.backend = "device", .reuse = true}, "backend", "kept loop disk"},
             {{.device = "/dev/vdb", .reuse = true}, "device", "filesystem UUID"},
             {{.reuse = true, .force = true}, "force", "formats nothing"},
         }) {
        Error e = error_of([&] { resolve_reuse_spec(c.req, kept_spec(), Config{}); });
        EXPECT_EQ(e.code(), Errc::invalid) << c.field;
        EXPECT_EQ(e.field(), c.field);
        EXPECT_NE(std::string(e.what()).find(c.why), std::string::npos) << e.what();
    }
}

TEST(EditSettings, SetsAndUnsetsWhatItNamesAndKeepsTheRest) {
    const Settings now{{"work_mem", "8MB"}, {"jit", "off"}};
    EXPECT_EQ(edit_settings(now, {.set = {{"statement_timeout", "5s"}}}),
              (Settings{{"work_mem", "8MB"}, {"jit", "off"}, {"statement_timeout", "5s"}}));
    EXPECT_EQ(edit_settings(now, {.set = {{"WORK_MEM", "16MB"}}}), (Settings{{"work_mem", "16MB"}, {"jit", "off"}}));
    EXPECT_EQ(edit_settings(now, {.unset = {"Work_Mem"}}), (Settings{{"jit", "off"}}));
    EXPECT_EQ(edit_settings(now, {.unset = {"not_overridden"}}), now);
    EXPECT_EQ(edit_settings(now, {.reset = true}), Settings{});
    EXPECT_EQ(edit_settings(now, {.reset = true, .set = {{"jit", "on"}}}), (Settings{{"jit", "on"}}));
    EXPECT_EQ(edit_settings(now, {.unset = {"jit"}, .set = {{"jit", "on"}}}), (Settings{{"work_mem", "8MB"}, {"jit", "on"}}));
}

TEST(ValidatePassword, TakesPrintableTextOfEightTo256BytesOnly) {
    validate_password("correct horse battery");
    validate_password("pässwört-ünïcode");
    validate_password(std::string(256, 'x'));
    for (std::string bad : {std::string("short"), std::string(257, 'x'), std::string("new\nline-pass"),
                            std::string("tab\tinside-it"), std::string("nul\0inside", 10), std::string("del\x7finside")}) {
        Error e = error_of([&] { validate_password(bad); });
        EXPECT_EQ(e.code(), Errc::invalid);
        EXPECT_EQ(e.field(), "password");
    }
}

// Memory committed to tenants against limits.memory_overcommit × the host's memory.

#include <gtest/gtest.h>

#include <algorithm>

#include "base/error.h"
#include "model/capacity.h"

using namespace hostd;

namespace {

constexpr uint64_t kGiB = 1ull << 30;

TenantRecord tenant(const std::string& name, uint64_t memory, TenantState state = TenantState::ready) {
    TenantRecord t;
    t.name = name;
    t.state = state;
    t.spec.memory = memory;
    return t;
}

std::string refusal(const Config& cfg, uint64_t host, const MemoryCommit& c, uint64_t asked) {
    try {
        check_memory_commit(cfg, host, c, asked, "memory");
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::refused);
        EXPECT_EQ(e.field(), "memory");
        return e.what();
    }
    return "<accepted>";
}

}  // namespace

TEST(Capacity, CountsEveryTenantButTheOneAskingAndThoseDetached) {
    std::map<std::string, TenantRecord> records = {{"a", tenant("a", 1 * kGiB)},
                                                   {"b", tenant("b", 2 * kGiB, TenantState::creating)},
                                                   {"c", tenant("c", 4 * kGiB, TenantState::detached)},
                                                   {"d", tenant("d", 8 * kGiB)}};
    MemoryCommit c = memory_committed(records, "d");
    EXPECT_EQ(c.committed, 3 * kGiB);
    EXPECT_EQ(c.others, 2u);
    EXPECT_EQ(memory_committed(records, "c").committed, 11 * kGiB);  // a reuse of c: the others hold 11G
}

TEST(Capacity, RefusesMemoryBeyondTheOvercommitWithWhatIsFree) {
    Config cfg;  // memory_overcommit 1
    const MemoryCommit c{.committed = 6 * kGiB, .others = 3};
    EXPECT_EQ(refusal(cfg, 8 * kGiB, c, 2 * kGiB), "<accepted>");
    const std::string m = refusal(cfg, 8 * kGiB, c, 3 * kGiB);
    EXPECT_NE(m.find("Not enough memory on this host for a tenant with 3G: 2G is free (the other 3 tenants have 6G of "
                     "the 8G limits.memory_overcommit = 1 lets them have of 8G)"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("ask for at most 2G"), std::string::npos) << m;
    cfg.memory_overcommit = 1.5;
    EXPECT_EQ(refusal(cfg, 8 * kGiB, c, 6 * kGiB), "<accepted>");
    EXPECT_NE(refusal(cfg, 8 * kGiB, c, 6 * kGiB + 1).find("6G is free"), std::string::npos);
    cfg.memory_overcommit = 0;  // no limit
    EXPECT_EQ(refusal(cfg, 8 * kGiB, c, 100 * kGiB), "<accepted>");
    // Already over (the ratio was lowered): nothing more, and 0 free.
    cfg.memory_overcommit = 0.5;
    EXPECT_NE(refusal(cfg, 8 * kGiB, c, 1).find(": 0 is free"), std::string::npos);
}

TEST(Capacity, TheOvercommitAndTheExtensionsAreSettingsOfHostdToml) {
    Config c = parse_config("[limits]\nmemory_overcommit = 2.5\n[extensions]\nallowed = [\"pg_stat_statements\"]\n", "t");
    EXPECT_EQ(c.memory_overcommit, 2.5);
    EXPECT_EQ(c.extensions_allowed, std::vector<std::string>{"pg_stat_statements"});
    EXPECT_EQ(Config{}.memory_overcommit, 1.0);
    EXPECT_THROW(parse_config("[limits]\nmemory_overcommit = -1\n", "t"), Error);
    EXPECT_THROW(parse_config("[extensions]\nallowed = [\"../evil\"]\n", "t"), Error);
    EXPECT_THROW(parse_config("[limits]\nmin_memory = \"32M\"\n", "t"), Error);
    // The default allows what Debian's contrib ships, pg_stat_statements among them.
    const auto& d = Config{}.extensions_allowed;
    EXPECT_NE(std::find(d.begin(), d.end(), "pg_stat_statements"), d.end());
    EXPECT_NE(std::find(d.begin(), d.end(), "pg_trgm"), d.end());
}

TEST(Capacity, ExtensionsOutsideTheAllowListAreRefusedWithTheList) {
    Config cfg;
    cfg.extensions_allowed = {"pg_stat_statements", "pg_trgm"};
    EXPECT_EQ(resolve_extensions({"pg_trgm", "pg_stat_statements", "pg_trgm"}, cfg),
              (std::vector<std::string>{"pg_stat_statements", "pg_trgm"}));
    try {
        resolve_extensions({"pg_trgm", "plpython3u"}, cfg);
        FAIL() << "accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid);
        EXPECT_EQ(e.field(), "extensions");
        EXPECT_NE(std::string(e.what()).find("Extension 'plpython3u' is not among those hostd may enable on this host "
                                             "(pg_stat_statements, pg_trgm)"),
                  std::string::npos)
            << e.what();
    }
    CreateRequest req;
    req.extensions = std::vector<std::string>{"pg_stat_statements"};
    EXPECT_EQ(resolve_spec(req, cfg).extensions, std::vector<std::string>{"pg_stat_statements"});
}

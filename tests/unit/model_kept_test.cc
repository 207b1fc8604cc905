// A deleted tenant's kept backups: what a delete does with its OS user and repository, when
// they expire, and that their name stays theirs (model/kept.h).
#include <gtest/gtest.h>

#include "base/error.h"
#include "model/kept.h"

using namespace hostd;

namespace {
KeptStanza kept(const std::string& name, const std::string& deleted_at) {
    TenantRecord t;
    t.name = name;
    t.os_user = "_" + name;
    t.uid = 61000;
    t.admin_user = name;
    t.password = "secret";
    t.spec.disk_size = 1ull << 30;
    t.spec.filesystem = "xfs";
    t.spec.memory = 256ull << 20;
    t.spec.settings["work_mem"] = "8MB";
    t.spec.extensions = {"pg_stat_statements"};
    return kept_of(t, deleted_at, "/var/lib/hostd-backup/" + name, 61001);
}
}  // namespace

TEST(KeptStanza, ADeleteKeepsTheUserWheneverTheRepositoryStays) {
    // Backups off, or no repository: nothing to keep, the user goes as before.
    for (bool purge : {false, true}) {
        EXPECT_FALSE(stanza_fate(false, true, purge, false).keep_user);
        EXPECT_FALSE(stanza_fate(true, false, purge, false).keep_user);
        EXPECT_FALSE(stanza_fate(true, false, purge, false).remove_repo);
    }
    // Detached: the user stays with the backups; the tenant's record accounts for both.
    auto d = stanza_fate(true, true, false, false);
    EXPECT_TRUE(d.keep_user);
    EXPECT_FALSE(d.remove_repo);
    EXPECT_FALSE(d.record);
    // Purged: the user stays, the backups are recorded.
    auto p = stanza_fate(true, true, true, false);
    EXPECT_TRUE(p.keep_user);
    EXPECT_FALSE(p.remove_repo);
    EXPECT_TRUE(p.record);
    // Purged with its backups: the repository goes, then the user (the uid is free only then).
    auto pb = stanza_fate(true, true, true, true);
    EXPECT_FALSE(pb.keep_user);
    EXPECT_TRUE(pb.remove_repo);
    EXPECT_FALSE(pb.record);
}

TEST(KeptStanza, ExpiresAfterTheRetentionAndNeverWithZero) {
    std::map<std::string, KeptStanza> m{{"old", kept("old", "2026-11-01T10:00:00Z")},
                                        {"new", kept("new", "2026-11-29T10:00:00Z")},
                                        {"odd", kept("odd", "yesterday")}};
    const std::time_t now = parse_rfc3339("2026-11-30T10:00:00Z");
    EXPECT_EQ(expired_stanzas(m, now, 7), std::vector<std::string>{"old"});
    EXPECT_EQ(expired_stanzas(m, now, 1), (std::vector<std::string>{"new", "old"}));  // exactly a day: due
    EXPECT_TRUE(expired_stanzas(m, now, 0).empty());                                  // 0: until purged by hand
    EXPECT_EQ(format_rfc3339(kept_until(m.at("old"), 7)), "2026-11-08T10:00:00Z");
    EXPECT_EQ(kept_until(m.at("odd"), 7), 0);  // an unreadable time never expires a tenant's backups
    EXPECT_EQ(kept_until(m.at("old"), 0), 0);
}

TEST(KeptStanza, ItsNameIsRefusedToANewTenantWithWhatToDo) {
    std::map<std::string, KeptStanza> m{{"acme", kept("acme", "2026-11-29T10:00:00Z")}};
    EXPECT_NO_THROW(check_name_not_kept("acme2", m, 7));
    try {
        check_name_not_kept("acme", m, 7);
        FAIL() << "a new tenant took the name of kept backups";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::conflict);
        const std::string w = e.what();
        EXPECT_NE(w.find("until 2026-12-06T10:00:00Z"), std::string::npos) << w;
        EXPECT_NE(w.find("--purge --purge-backups"), std::string::npos) << w;
        EXPECT_NE(w.find("--from acme"), std::string::npos) << w;
    }
}

TEST(KeptStanza, RoundTripsWithoutThePassword) {
    const KeptStanza k = kept("acme", "2026-11-29T10:00:00Z");
    const std::string text = to_toml(k);
    EXPECT_EQ(text.find("secret"), std::string::npos) << text;
    const KeptStanza back = kept_from_toml(text, "acme.toml");
    EXPECT_EQ(back.name, "acme");
    EXPECT_EQ(back.deleted_at, "2026-11-29T10:00:00Z");
    EXPECT_EQ(back.repository, "/var/lib/hostd-backup/acme");
    EXPECT_EQ(back.uid, 61000u);
    EXPECT_EQ(back.gid, 61001u);
    EXPECT_EQ(back.tenant.os_user, "_acme");
    EXPECT_EQ(back.tenant.admin_user, "acme");
    EXPECT_EQ(back.tenant.spec.disk_size, 1ull << 30);
    EXPECT_EQ(back.tenant.spec.filesystem, "xfs");
    EXPECT_EQ(back.tenant.spec.memory, 256ull << 20);
    EXPECT_EQ(back.tenant.spec.settings.at("work_mem"), "8MB");
    EXPECT_EQ(back.tenant.spec.extensions, std::vector<std::string>{"pg_stat_statements"});
    EXPECT_THROW(kept_from_toml("name = \"x\"\nstate = \"detached\"\n", "bad.toml"), Error);  // no [kept]: refused
}

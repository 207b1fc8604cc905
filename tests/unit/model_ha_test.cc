// An HA tenant as data (#17): the create's `ha` checked and (for now) refused, the record's
// [ha] block through TOML and back, and the view of a member.
#include <gtest/gtest.h>

#include <functional>

#include "tests/unit/error_of.h"
#include "base/error.h"
#include "model/ha.h"
#include "model/record.h"
#include "model/tenant.h"
#include "model/views.h"

using namespace hostd;

namespace {

using test::error_of;

bool says(const Error& e, const std::string& words) { return std::string(e.what()).find(words) != std::string::npos; }

HaSpec three_members() {
    HaSpec ha{.create_id = "c0ffee42", .initiator = "hb-1", .synchronous = true, .strict = true,
              .secrets = {.patroni = "pa'\"ss", .replication = "re\\pl", .rewind = "rew", .rest_password = "rest"}};
    ha.members = {
        {.host = "hb-1", .address = "10.0.0.1", .public_host = "db1.example.com", .pg_port = 25001, .rest_port = 23000,
         .public_port = 28001, .phase = MemberPhase::started},
        {.host = "hb-2", .address = "10.0.0.2", .public_host = "db2.example.com", .pg_port = 25004, .rest_port = 23001,
         .public_port = 28001, .phase = MemberPhase::prepared},
        {.host = "hb-3", .address = "fd00::3", .public_host = "db3.example.com", .pg_port = 25001, .rest_port = 23000,
         .public_port = 28002, .phase = MemberPhase::removing},
    };
    return ha;
}

TenantRecord plain_record() {
    TenantRecord t;
    t.name = "acme";
    t.state = TenantState::ready;
    t.spec = {.backend = "loop", .filesystem = "ext4", .disk_size = 1ull << 30, .memory = 256ull << 20, .cpu = 0.5, .tasks = 100};
    t.port = 25001;
    t.public_port = 28001;
    t.password = "tenant-pw";
    return t;
}

}  // namespace

// ---- the member phases ----

TEST(MemberPhase, EachWordReadsBackAndNothingElseDoes) {
    for (auto p : {MemberPhase::planned, MemberPhase::prepared, MemberPhase::started, MemberPhase::removing})
        EXPECT_EQ(member_phase_from(to_string(p)), p);
    EXPECT_FALSE(member_phase_from("running"));
    EXPECT_FALSE(member_phase_from(""));
}

TEST(HaSpec, FindsAMemberByItsHost) {
    const HaSpec ha = three_members();
    ASSERT_NE(ha.member("hb-2"), nullptr);
    EXPECT_EQ(ha.member("hb-2")->pg_port, 25004);
    EXPECT_EQ(ha.member("hb-4"), nullptr);
}

// ---- a create's `ha` ----

TEST(CheckHaRequest, TakesOneOrTwoReplicasOnDistinctValidHosts) {
    EXPECT_NO_THROW(check_ha_request({.replicas = {"hb-2"}}));
    EXPECT_NO_THROW(check_ha_request({.replicas = {"hb-2", "hb-3"}, .synchronous = true, .strict = true}));

    for (const HaRequest& r : {HaRequest{}, HaRequest{.replicas = {"a", "b", "c"}}}) {
        const Error e = error_of([&] { check_ha_request(r); });
        EXPECT_EQ(e.code(), Errc::invalid);
        EXPECT_EQ(e.field(), "ha.replicas");
        EXPECT_TRUE(says(e, "1 or 2 replicas")) << e.what();
    }
    for (const char* bad : {"", "HB-2", "hb_2", "-hb", "hb.example.com"}) {
        const Error e = error_of([&] { check_ha_request({.replicas = {"hb-2", bad}}); });
        EXPECT_EQ(e.field(), "ha.replicas") << bad;
        EXPECT_TRUE(says(e, "is not a host name")) << e.what();
    }
    const Error e = error_of([&] { check_ha_request({.replicas = {"hb-2", "hb-2"}}); });
    EXPECT_EQ(e.field(), "ha.replicas");
    EXPECT_TRUE(says(e, "'hb-2' twice")) << e.what();
}

TEST(CheckHaRequest, StrictOnlyWithSynchronous) {
    const Error e = error_of([&] { check_ha_request({.replicas = {"hb-2"}, .strict = true}); });
    EXPECT_EQ(e.code(), Errc::invalid);
    EXPECT_EQ(e.field(), "ha.synchronous_strict");
    EXPECT_TRUE(says(e, "goes with 'synchronous'")) << e.what();
}

TEST(CheckCreateHa, APlainRequestPassesUntouched) {
    EXPECT_NO_THROW(check_create_ha({}, Config{}));
    EXPECT_NO_THROW(resolve_spec({.memory = 256ull << 20}, Config{}));
}

TEST(CheckCreateHa, AValidHaRequestNeedsTheHaSectionHaproxyPortRoutesAndReplicasAmongTheHosts) {
    CreateRequest req{.ha = HaRequest{.replicas = {"hb-2"}, .synchronous = true}};
    for (const auto& fn : std::vector<std::function<void()>>{
             [&] { check_create_ha(req, Config{}); },
             [&] { resolve_spec(req, Config{}); },
             [&] { resolve_reuse_spec(req, TenantSpec{.backend = "loop", .filesystem = "ext4"}, Config{}); }}) {
        const Error e = error_of(fn);
        EXPECT_EQ(e.code(), Errc::invalid);
        EXPECT_EQ(e.field(), "ha");
        EXPECT_TRUE(says(e, "not an HA host")) << e.what();
        EXPECT_TRUE(says(e, "[ha]")) << e.what();
    }
    Config ha;
    ha.ha_address = "10.0.0.1";
    ha.ha_hosts = {"hb-1=10.0.0.1", "hb-2=10.0.0.2"};
    EXPECT_NO_THROW(check_create_ha(req, ha));
    Config traefik = ha;
    traefik.proxy = "traefik";
    EXPECT_TRUE(says(error_of([&] { check_create_ha(req, traefik); }), "HAProxy's health checks"));
    Config sni = ha;
    sni.domain = "db.example";
    EXPECT_TRUE(says(error_of([&] { check_create_ha(req, sni); }), "no proxy.domain"));
    req.ha->replicas = {"hb-9"};
    const Error e = error_of([&] { check_create_ha(req, ha); });
    EXPECT_EQ(e.field(), "ha.replicas");
    EXPECT_TRUE(says(e, "'hb-9' is not one of this host's [ha] hosts")) << e.what();
}

TEST(CheckCreateHa, ItsOwnShapeIsCheckedFirst) {
    const Error e = error_of([] { resolve_spec({.reuse = true, .ha = HaRequest{}}, Config{}); });
    EXPECT_EQ(e.field(), "ha.replicas") << e.what();
}

TEST(CheckCreateHa, RefusesReuseFromAndADeviceEachNamingWhy) {
    const HaRequest ok{.replicas = {"hb-2"}};
    struct Case {
        CreateRequest req;
        const char* with;
    };
    for (const Case& c : {Case{{.reuse = true, .ha = ok}, "'reuse'"},
                          Case{{.from = CreateRequest::From{.tenant = "src"}, .ha = ok}, "'from'"},
                          Case{{.device = "/dev/vdb", .ha = ok}, "'device'"},
                          Case{{.backend = "device", .ha = ok}, "'device'"}}) {
        const Error e = error_of([&] { check_create_ha(c.req, Config{}); });
        EXPECT_EQ(e.code(), Errc::invalid);
        EXPECT_EQ(e.field(), "ha");
        EXPECT_TRUE(says(e, std::string("'ha' cannot be given with ") + c.with)) << e.what();
    }
}

// ---- the record ----

TEST(HaRecord, SurvivesARoundTripThroughTomlWithItsMembersAndSecrets) {
    TenantRecord t = plain_record();
    t.ha = three_members();
    const std::string text = to_toml(t);
    EXPECT_NE(text.find("[ha]"), std::string::npos) << text;
    EXPECT_NE(text.find("[[ha.members]]"), std::string::npos) << text;
    const TenantRecord back = from_toml(text, "acme.toml");
    ASSERT_TRUE(back.ha);
    EXPECT_EQ(*back.ha, *t.ha);
    EXPECT_EQ(back.password, "tenant-pw");
    EXPECT_EQ(back.port, 25001);
}

TEST(HaRecord, APlainRecordHasNoHaBlockAndAnOldRecordLoadsWithoutOne) {
    const std::string text = to_toml(plain_record());
    EXPECT_EQ(text.find("[ha"), std::string::npos) << "no [ha] in a plain tenant's record:\n" << text;
    EXPECT_EQ(text.find("create_id"), std::string::npos) << text;
    EXPECT_FALSE(from_toml(text, "acme.toml").ha);
    EXPECT_FALSE(from_toml("name = \"acme\"\nstate = \"ready\"\n[facts]\nport = 25001\n", "old.toml").ha);
}

TEST(HaRecord, ABadHaBlockIsRefusedNamingTheFile) {
    TenantRecord t = plain_record();
    t.ha = three_members();
    std::string text = to_toml(t);
    const std::string phase = "phase = 'prepared'";
    ASSERT_NE(text.find(phase), std::string::npos) << text;
    std::string bad_phase = text;
    bad_phase.replace(bad_phase.find(phase), phase.size(), "phase = 'halfway'");
    Error e = error_of([&] { from_toml(bad_phase, "acme.toml"); });
    EXPECT_EQ(e.code(), Errc::invalid);
    EXPECT_TRUE(says(e, "acme.toml")) << e.what();
    EXPECT_TRUE(says(e, "'halfway'")) << e.what();

    std::string bad_host = text;
    bad_host.replace(bad_host.find("'hb-3'"), 6, "'HB 3'");
    e = error_of([&] { from_toml(bad_host, "acme.toml"); });
    EXPECT_TRUE(says(e, "bad host")) << e.what();

    e = error_of([] { from_toml("name = \"acme\"\nstate = \"ready\"\n[ha]\ncreate_id = \"x\"\n", "acme.toml"); });
    EXPECT_TRUE(says(e, "[[ha.members]]")) << e.what();
}

TEST(HaView, AnHaRecordsViewListsItsMembersFromTheRecordWithWhatOnlyPatroniKnowsUnknown) {
    TenantRecord member = plain_record();
    member.ha = three_members();
    const TenantView v = view_of(Config{}, member, false);
    ASSERT_EQ(v.members.size(), 3u);
    EXPECT_EQ(v.members[2].host, "hb-3");
    EXPECT_EQ(v.members[2].address, "fd00::3");
    EXPECT_EQ(v.members[2].public_host, "db3.example.com");
    EXPECT_EQ(v.members[2].public_port, 28002);
    EXPECT_EQ(v.members[0].role, "unknown");
    EXPECT_EQ(v.members[0].state, "unknown");
    EXPECT_FALSE(v.members[0].lag_bytes);
    EXPECT_FALSE(v.members[0].timeline);
    ASSERT_TRUE(v.ha);
    EXPECT_TRUE(v.ha->synchronous);
    EXPECT_TRUE(v.ha->strict);
    EXPECT_EQ(v.ha->leader, "");
    EXPECT_EQ(v.ha->source, "");
    EXPECT_FALSE(v.password) << "the view's secrets are the tenant's own only where asked";
    const TenantView p = view_of(Config{}, plain_record(), true);
    EXPECT_TRUE(p.members.empty());
    EXPECT_FALSE(p.ha);
}

// An HA tenant on the wire (#17): a create's `ha` parsed as strictly as the other fields, and
// a tenant's members and cluster in its JSON (and in the list written straight), back alike.
#include <gtest/gtest.h>

#include "tests/unit/error_of.h"
#include "wire/wire.h"

using namespace hostd;
using wire::json;

namespace {

using test::error_of;

TenantView plain_view() {
    TenantView t;
    t.name = "acme";
    t.state = TenantState::ready;
    t.spec = {.backend = "loop", .filesystem = "ext4", .disk_size = 1ull << 30, .memory = 256ull << 20, .cpu = 0.5, .tasks = 100};
    t.unit = "hostd-postgres@acme.service";
    t.port = 25001;
    t.public_port = 28001;
    t.live = {.state = "running", .reason = ""};
    return t;
}

TenantView ha_view() {
    TenantView t = plain_view();
    t.name = "hat";
    t.unit = "hostd-patroni@hat.service";
    t.members = {
        {.host = "hb-1", .role = "primary", .state = "running", .lag_bytes = 0, .timeline = 3, .sync = false,
         .address = "10.0.0.1", .public_host = "db1.example.com", .public_port = 28001},
        {.host = "hb-2", .role = "replica", .state = "streaming", .lag_bytes = 16384, .timeline = 3, .sync = true,
         .address = "10.0.0.2", .public_host = "db2.example.com", .public_port = 28001},
        {.host = "hb-3", .address = "fd00::3", .public_host = "db3 \"quoted\"", .public_port = 28002},  // unknown: Patroni down
    };
    t.ha = HaView{.leader = "hb-1", .timeline = 3, .synchronous = true, .strict = false, .source = "hb-1"};
    return t;
}

}  // namespace

TEST(WireHaRequest, ACreatesHaIsParsedAndRenderedBackAlike) {
    const CreateRequest r = wire::parse_create(
        json::parse(R"({"memory": "256M", "ha": {"replicas": ["hb-2", "hb-3"], "synchronous": true, "synchronous_strict": true}})"));
    ASSERT_TRUE(r.ha);
    EXPECT_EQ(r.ha->replicas, (std::vector<std::string>{"hb-2", "hb-3"}));
    EXPECT_TRUE(r.ha->synchronous);
    EXPECT_TRUE(r.ha->strict);
    EXPECT_EQ(wire::parse_create(wire::render(r)).ha, r.ha);

    const CreateRequest lean = wire::parse_create(json::parse(R"({"ha": {"replicas": ["hb-2"]}})"));
    ASSERT_TRUE(lean.ha);
    EXPECT_FALSE(lean.ha->synchronous || lean.ha->strict);
    EXPECT_FALSE(wire::parse_create(json::object()).ha);
    EXPECT_FALSE(wire::parse_create({{"ha", nullptr}}).ha) << "null is left out, as for the other fields";
    EXPECT_FALSE(wire::render(CreateRequest{}).contains("ha"));
}

TEST(WireHaRequest, BadShapesAreRefusedNamingTheField) {
    for (auto [body, field] : std::vector<std::pair<const char*, std::string>>{
             {R"({"ha": true})", "ha"},
             {R"({"ha": ["hb-2"]})", "ha"},
             {R"({"ha": {"replica": ["hb-2"]}})", "ha.replica"},
             {R"({"ha": {"replicas": "hb-2"}})", "ha.replicas"},
             {R"({"ha": {"replicas": ["hb-2", 3]}})", "ha.replicas"},
             {R"({"ha": {"replicas": ["hb-2"], "synchronous": "yes"}})", "ha.synchronous"},
             {R"({"ha": {"replicas": ["hb-2"], "synchronous_strict": 1}})", "ha.synchronous_strict"},
             {R"({"ha": {"replicas": ["hb-2"], "strict": true}})", "ha.strict"}}) {
        const Error e = error_of([&] { wire::parse_create(json::parse(body)); });
        EXPECT_EQ(e.code(), Errc::invalid) << body;
        EXPECT_EQ(e.field(), field) << body << ": " << e.what();
        EXPECT_EQ(wire::http_status(e.code()), 400);
    }
}

TEST(WireHaRequest, ASwitchoversTargetIsOptionalAndAHostName) {
    EXPECT_FALSE(wire::parse_switchover(json()).to) << "no body: hostd picks the member";
    EXPECT_FALSE(wire::parse_switchover(json::object()).to);
    EXPECT_FALSE(wire::parse_switchover({{"to", nullptr}}).to);
    const SwitchoverRequest r = wire::parse_switchover({{"to", "hb-2"}});
    EXPECT_EQ(r.to, "hb-2");
    EXPECT_EQ(wire::parse_switchover(wire::render(r)).to, "hb-2");
    EXPECT_EQ(wire::render(SwitchoverRequest{}), json::object());
    for (const char* body : {R"({"to": 2})", R"({"to": ["hb-2"]})", R"({"candidate": "hb-2"})", R"(["hb-2"])"}) {
        const Error e = error_of([&] { wire::parse_switchover(json::parse(body)); });
        EXPECT_EQ(e.code(), Errc::invalid) << body;
        EXPECT_TRUE(e.field() == "to" || e.field() == "candidate" || e.field() == "body") << body << ": " << e.field();
    }
}

TEST(WireHaRequest, AReplaceNamesTheMemberAndOptionallyTheNewHost) {
    const ReplaceRequest r = wire::parse_replace({{"member", "hb-3"}, {"with", "hb-4"}});
    EXPECT_EQ(r.member, "hb-3");
    EXPECT_EQ(r.with, "hb-4");
    const ReplaceRequest back = wire::parse_replace(wire::render(r));
    EXPECT_EQ(back.member, "hb-3");
    EXPECT_EQ(back.with, "hb-4");
    EXPECT_FALSE(wire::parse_replace({{"member", "hb-3"}}).with) << "no 'with': rebuilt on its own host";
    EXPECT_FALSE(wire::parse_replace({{"member", "hb-3"}, {"with", nullptr}}).with);
    for (const char* body : {R"({})", R"({"member": 3})", R"({"member": "../x"})", R"({"member": "a\nb"})",
                             R"({"member": "hb-3", "with": "x@y"})", R"({"member": "hb-3", "with": ["hb-4"]})",
                             R"({"member": "hb-3", "to": "hb-4"})", R"(["hb-3"])", R"("hb-3")"}) {
        const Error e = error_of([&] { wire::parse_replace(json::parse(body)); });
        EXPECT_EQ(e.code(), Errc::invalid) << body;
        EXPECT_TRUE(e.field() == "member" || e.field() == "with" || e.field() == "to" || e.field().empty()) << body << ": " << e.field();
    }
}

TEST(WireHaReplies, AnHaTenantShowsItsMembersWithUnknownLagAsNullAndParsesBackAlike) {
    const TenantView v = ha_view();
    const json j = wire::render(v);
    ASSERT_TRUE(j["members"].is_array());
    ASSERT_EQ(j["members"].size(), 3u);
    EXPECT_EQ(j["members"][1], json::parse(R"({"host": "hb-2", "role": "replica", "state": "streaming", "lag": 16384,
        "timeline": 3, "sync": true, "address": "10.0.0.2", "public_host": "db2.example.com", "public_port": 28001})"));
    EXPECT_TRUE(j["members"][2]["lag"].is_null());
    EXPECT_TRUE(j["members"][2]["timeline"].is_null());
    EXPECT_EQ(j["members"][2]["role"], "unknown");
    EXPECT_EQ(j["ha"], json::parse(R"({"leader": "hb-1", "timeline": 3, "synchronous": true, "synchronous_strict": false,
        "source": "hb-1"})"));
    const TenantView back = wire::parse_tenant(j);
    EXPECT_EQ(back.members, v.members);
    EXPECT_EQ(back.ha, v.ha);
    EXPECT_EQ(wire::render_one(wire::parse_tenant_reply(wire::render_one(v))), wire::render_one(v));
}

TEST(WireHaReplies, APlainTenantsJsonHasNeitherMembersNorHa) {
    const json j = wire::render(plain_view());
    EXPECT_FALSE(j.contains("members")) << j.dump();
    EXPECT_FALSE(j.contains("ha")) << j.dump();
    const TenantView back = wire::parse_tenant(j);
    EXPECT_TRUE(back.members.empty());
    EXPECT_FALSE(back.ha);
}

TEST(WireHaReplies, TheListWrittenStraightIsByteForByteTheTreesRenderingWithHaTenants) {
    auto tree = [](const std::vector<TenantView>& v) {
        return json(wire::render(v)).dump(2, ' ', false, json::error_handler_t::replace) + "\n";
    };
    TenantView no_cluster = ha_view();  // members known from the record, nothing asked yet
    no_cluster.name = "hau";
    no_cluster.ha = HaView{};
    TenantView bare = ha_view();
    bare.name = "hav";
    bare.members.clear();
    const std::vector<TenantView> all{plain_view(), ha_view(), no_cluster, bare};
    EXPECT_EQ(wire::render_text(all), tree(all));
    EXPECT_EQ(wire::render_text({ha_view()}), tree({ha_view()}));
    const auto back = wire::parse_tenants(json::parse(wire::render_text(all)));
    ASSERT_EQ(back.size(), 4u);
    EXPECT_EQ(back[1].members, ha_view().members);
    EXPECT_TRUE(back[0].members.empty());
}

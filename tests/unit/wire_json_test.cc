// The API's JSON: requests parsed with the field at fault named, and every reply rendered by
// the server parses back in the client to what it was (hostctl --json prints the rendering).
#include <gtest/gtest.h>

#include "tests/unit/error_of.h"
#include "wire/wire.h"

using namespace hostd;
using wire::json;

namespace {

using test::error_of;

TenantView sample_view() {
    TenantView t;
    t.name = "acme";
    t.state = TenantState::ready;
    t.spec = {.backend = "loop", .filesystem = "xfs", .disk_size = 2ull << 30, .memory = 512ull << 20, .cpu = 0.5,
              .tasks = 100, .io_weight = 200, .settings = {{"work_mem", "64MB"}}};
    t.fs_uuid = "0b3f0c8e-0000-4000-8000-000000000000";
    t.label = "hd-acme";
    t.device = "/dev/loop3";
    t.device_id = "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4";
    t.image = "/var/lib/hostd/loop/acme.img";
    t.mountpoint = "/srv/hostd/acme";
    t.unit = "hostd-postgres@acme.service";
    t.os_user = "_acme";
    t.admin_user = "acme";
    t.created_at = "2026-11-30T01:00:00Z";
    t.port = 25001;
    t.public_port = 28001;
    t.read_only = true;
    t.url = "postgresql://acme:pw@127.0.0.1:28001/postgres?sslmode=require";
    t.password = "pw";
    t.status = LiveStatus{.active_state = "active", .sub_state = "running", .main_pid = 42, .restarts = 1,
                          .memory_current = 1000, .memory_max = 2000, .tasks_current = 7, .cpu_usage_nsec = 3000,
                          .result = "signal", .last_exit = "was killed by signal KILL",
                          .disk = storage::DiskStats{.bytes_total = 10, .bytes_used = 4, .bytes_available = 6,
                                                     .inodes_total = 100, .inodes_used = 40, .inodes_available = 60}};
    t.pending_restart = std::vector<std::string>{"max_prepared_transactions"};
    t.problem = "";
    t.stopped = true;
    t.live = {.state = "down", .reason = "PostgreSQL was killed (signal)"};
    return t;
}

}  // namespace

TEST(WireRequests, ACreateKeepsWhatItLeavesOutUnsetForTheConfigToFill) {
    auto r = wire::parse_create(json::object());
    EXPECT_FALSE(r.backend || r.device || r.filesystem || r.disk_size || r.memory || r.cpu || r.tasks || r.settings);
    EXPECT_FALSE(r.reuse || r.force);
}

TEST(WireRequests, ACreateReadsSizesAsTextOrBytesAndSettingsAsText) {
    auto r = wire::parse_create({{"disk_size", "2G"}, {"memory", 536870912}, {"cpu", 0.5}, {"tasks", 64},
                                 {"settings", {{"work_mem", "64MB"}, {"jit", false}, {"max_connections", 50}}}});
    EXPECT_EQ(r.disk_size, 2ull << 30);
    EXPECT_EQ(r.memory, 512ull << 20);
    EXPECT_EQ(r.cpu, 0.5);
    EXPECT_EQ(r.tasks, 64u);
    EXPECT_EQ(r.settings, (Settings{{"work_mem", "64MB"}, {"jit", "off"}, {"max_connections", "50"}}));
}

TEST(WireRequests, ExtensionsAreAListOfNamesInACreateAndAPatch) {
    auto r = wire::parse_create({{"extensions", {"pg_stat_statements", "pg_trgm"}}});
    EXPECT_EQ(r.extensions, (std::vector<std::string>{"pg_stat_statements", "pg_trgm"}));
    EXPECT_EQ(wire::parse_create(wire::render(r)).extensions, r.extensions);
    auto u = wire::parse_limits({{"extensions", json::array()}});
    ASSERT_TRUE(u.extensions);
    EXPECT_TRUE(u.extensions->empty()) << "an empty list turns every extension off";
    EXPECT_FALSE(u.empty());
    for (const json& bad : {json("pg_trgm"), json({1}), json({""})}) {
        try {
            wire::parse_create({{"extensions", bad}});
            ADD_FAILURE() << bad.dump();
        } catch (const Error& e) {
            EXPECT_EQ(e.field(), "extensions");
        }
    }
}

TEST(WireRequests, BadShapesAreRefusedNamingTheField) {
    for (auto [body, field] : std::vector<std::pair<json, std::string>>{
             {{{"colour", "blue"}}, "colour"},
             {{{"disk_size", "lots"}}, "disk_size"},
             {{{"disk_size", -1}}, "disk_size"},
             {{{"cpu", "fast"}}, "cpu"},
             {{{"tasks", 1.5}}, "tasks"},
             {{{"backend", "zfs"}}, "backend"},
             {{{"filesystem", "btrfs"}}, "filesystem"},
             {{{"force", "yes"}}, "force"},
             {{{"device", ""}}, "device"},
             {{{"settings", "work_mem=1"}}, "settings"},
             {{{"settings", {{"work_mem", {1, 2}}}}}, "settings.work_mem"}}) {
        Error e = error_of([&] { wire::parse_create(body); });
        EXPECT_EQ(e.code(), Errc::invalid) << body.dump();
        EXPECT_EQ(e.field(), field) << body.dump();
    }
    EXPECT_EQ(error_of([&] { wire::parse_limits({{"disk_size", "1G"}}); }).field(), "disk_size");
    EXPECT_EQ(error_of([&] { wire::parse_resize(json::object()); }).field(), "size");
    EXPECT_EQ(error_of([&] { wire::parse_body("[1,2]"); }).field(), "body");
    EXPECT_EQ(error_of([&] { wire::parse_body("{"); }).field(), "body");
}

TEST(WireRequests, ABodyNestedDeeperThanSixteenLevelsIsRefusedWhileParsing) {
    auto nested = [](size_t depth) { return "{\"settings\": " + std::string(depth, '[') + std::string(depth, ']') + "}"; };
    EXPECT_TRUE(wire::parse_body(nested(15)).is_object());
    for (size_t depth : {16ul, 1000000ul}) {
        Error e = error_of([&] { wire::parse_body(nested(depth)); });
        EXPECT_EQ(e.field(), "body");
        EXPECT_NE(std::string(e.what()).find("deeper than 16 levels"), std::string::npos) << e.what();
    }
}

TEST(WireRequests, ASizeMessageQuotesWhatWasTyped) {
    Error e = error_of([&] { wire::parse_size_value(json("12 parsecs"), "disk_size"); });
    EXPECT_NE(std::string(e.what()).find("'12 parsecs'"), std::string::npos) << e.what();
}

TEST(WireRequests, WhatTheClientRendersTheServerParsesBackAlike) {
    CreateRequest c{.backend = "device", .device = "/dev/vdb", .filesystem = "xfs", .disk_size = 1ull << 30,
                    .memory = 256ull << 20, .tasks = 64, .io_weight = 300, .cpu = 1.5,
                    .settings = Settings{{"work_mem", "4MB"}}, .reuse = true, .force = true};
    auto back = wire::parse_create(wire::render(c));
    EXPECT_EQ(back.backend, c.backend);
    EXPECT_EQ(back.device, c.device);
    EXPECT_EQ(back.filesystem, c.filesystem);
    EXPECT_EQ(back.disk_size, c.disk_size);
    EXPECT_EQ(back.memory, c.memory);
    EXPECT_EQ(back.tasks, c.tasks);
    EXPECT_EQ(back.io_weight, c.io_weight);
    EXPECT_EQ(back.cpu, c.cpu);
    EXPECT_EQ(back.settings, c.settings);
    EXPECT_TRUE(back.reuse && back.force);
    LimitsUpdate u{.memory = 1ull << 30, .settings = Settings{}};
    auto ub = wire::parse_limits(wire::render(u));
    EXPECT_EQ(ub.memory, u.memory);
    EXPECT_FALSE(ub.cpu || ub.tasks || ub.io_weight);
    EXPECT_EQ(ub.settings, u.settings);
    EXPECT_EQ(wire::parse_resize(wire::render(ResizeRequest{.size = 5ull << 30})).size, 5ull << 30);
    // An edit of the overrides, each part alone and all together.
    for (const SettingsEdit& e : {SettingsEdit{.reset = true}, SettingsEdit{.unset = {"work_mem"}},
                                  SettingsEdit{.set = {{"jit", "off"}}},
                                  SettingsEdit{.reset = true, .unset = {"a", "b"}, .set = {{"work_mem", "8MB"}}}}) {
        LimitsUpdate edit{.settings_edit = e};
        EXPECT_EQ(wire::parse_limits(wire::render(edit)).settings_edit, e) << wire::render(edit).dump();
        EXPECT_FALSE(wire::parse_limits(wire::render(edit)).settings) << wire::render(edit).dump();
    }
    EXPECT_EQ(wire::parse_password(wire::render(PasswordRequest{.password = "s3cret-pass"})).password, "s3cret-pass");
    EXPECT_FALSE(wire::parse_password(wire::render(PasswordRequest{})).password);
    EXPECT_TRUE(wire::parse_resize(wire::render(ResizeRequest{.size = 5ull << 30})).allow_offline);
    EXPECT_FALSE(wire::parse_resize(wire::render(ResizeRequest{.size = 1, .allow_offline = false})).allow_offline);
    EXPECT_EQ(error_of([] { wire::parse_resize({{"size", "2G"}, {"allow_offline", "yes"}}); }).field(), "allow_offline");
    wire::parse_empty(json::object());
    EXPECT_EQ(error_of([] { wire::parse_empty({{"force", true}}); }).field(), "force");
}

TEST(WireRequests, ASettingsEditIsCheckedForShapeAndNeverMixedWithAReplacement) {
    const json edit = json::parse(R"({"set_settings": {"work_mem": "8MB", "jit": false, "max_connections": 40},
                                      "unset_settings": ["statement_timeout"], "reset_settings": true})");
    auto u = wire::parse_limits(edit);
    EXPECT_EQ(u.settings_edit.set, (Settings{{"work_mem", "8MB"}, {"jit", "off"}, {"max_connections", "40"}}));
    EXPECT_EQ(u.settings_edit.unset, std::vector<std::string>{"statement_timeout"});
    EXPECT_TRUE(u.settings_edit.reset);
    for (auto [body, field] : std::vector<std::pair<json, std::string>>{
             {{{"unset_settings", "work_mem"}}, "unset_settings"},
             {{{"unset_settings", {1}}}, "unset_settings"},
             {{{"unset_settings", {""}}}, "unset_settings"},
             {{{"set_settings", {1, 2}}}, "set_settings"},
             {{{"set_settings", {{"work_mem", {1}}}}}, "settings.work_mem"},
             {{{"reset_settings", "yes"}}, "reset_settings"},
             {{{"settings", {{"jit", "off"}}}, {"set_settings", {{"work_mem", "8MB"}}}}, "settings"},
             {{{"settings", json::object()}, {"reset_settings", true}}, "settings"},
         })
        EXPECT_EQ(error_of([&] { wire::parse_limits(body); }).field(), field) << body.dump();
    EXPECT_EQ(error_of([&] { wire::parse_password({{"password", 12345678}}); }).field(), "password");
    EXPECT_EQ(error_of([&] { wire::parse_password({{"pasword", "x"}}); }).field(), "pasword");
}

TEST(WireReplies, EveryReplyParsesBackToTheSameRendering) {
    const TenantView v = sample_view();
    const json one = wire::render_one(v);
    EXPECT_EQ(wire::render_one(wire::parse_tenant_reply(one)), one);
    const json list = wire::render(std::vector<TenantView>{v, v});
    EXPECT_EQ(wire::render(wire::parse_tenants(list)), list);
    const json created = wire::render(Created{.tenant = v, .ms = 812, .destroyed = "ext4 on /dev/vdb"});
    EXPECT_EQ(wire::render(wire::parse_created(created)), created);
    const json resized = wire::render(Resized{.tenant = v, .ms = 40, .online = false, .disk = v.status->disk});
    EXPECT_EQ(wire::render(wire::parse_resized(resized)), resized);
    const json limits = wire::render(LimitsChanged{.tenant = v, .pending_restart = {"shared_buffers"}});
    EXPECT_EQ(wire::render(wire::parse_limits_changed(limits)), limits);
    const json deleted = wire::render(Deleted{.name = "acme", .state = "detached", .purged = false});
    EXPECT_EQ(wire::render(wire::parse_deleted(deleted)), deleted);
    const json rec = wire::render(ReconcileReport{
        .actions = {{"acme", "left down", "no disk"}, {"", "routes failed", "haproxy"}}, .duration_ms = 12});
    EXPECT_EQ(wire::render(wire::parse_reconcile(rec)), rec);
    const json host = wire::render(HostInfo{.tenants = 3, .tenants_active = 2, .memory_committed = 5, .memory_total = 9,
                                            .memory_overcommit = 1.5, .memory_free = 8, .cpu_committed = 1.5, .cpus = 2,
                                            .disk_committed = 7, .loop_dir_available = 8, .ports_free = 100,
                                            .ports_detached = 4, .ports_total = 3000});
    EXPECT_EQ(wire::render(wire::parse_host(host)), host);
    EXPECT_EQ(wire::parse_ca(wire::render_ca("PEM")), "PEM");
}

TEST(WireReplies, ATenantSaysWhatItDoesNowAndWhetherItIsStoppedOnPurpose) {
    const json j = wire::render(sample_view());
    EXPECT_EQ(j["live_state"], "down");
    EXPECT_EQ(j["live_reason"], "PostgreSQL was killed (signal)");
    EXPECT_EQ(j["stopped"], true);
    EXPECT_EQ(j["status"]["unit"]["result"], "signal");
    EXPECT_EQ(j["status"]["unit"]["last_exit"], "was killed by signal KILL");
    TenantView running;
    running.live = {.state = "running"};
    EXPECT_FALSE(wire::render(running).contains("live_reason"));
}

TEST(WireReplies, ATenantShowsTheStableIdOfItsDiskEvenWhenItHasNone) {
    TenantView v = sample_view();
    EXPECT_EQ(wire::render(v)["device_id"], "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4");
    EXPECT_EQ(wire::parse_tenant(wire::render(v)).device_id, v.device_id);
    v.device_id.clear();  // a loop device has none: shown empty, not left out
    EXPECT_EQ(wire::render(v)["device_id"], "");
}

TEST(WireReplies, ATenantViewShowsItsSecretOnlyWhenGiven) {
    TenantView v = sample_view();
    v.password.reset();
    v.status.reset();
    const json j = wire::render(v);
    EXPECT_FALSE(j.contains("password"));
    EXPECT_FALSE(j.contains("status"));
    EXPECT_FALSE(j.contains("problem"));
}

TEST(WireErrors, AnErrorKeepsItsCodeSentenceAndFieldAcrossTheWire) {
    const json body = wire::render_error(Error(Errc::conflict, "Tenant 'acme' already exists", "name"));
    EXPECT_EQ(wire::http_status(Errc::conflict), 409);
    Error back = wire::parse_error(body, 409);
    EXPECT_EQ(back.code(), Errc::conflict);
    EXPECT_STREQ(back.what(), "Tenant 'acme' already exists");
    EXPECT_EQ(back.field(), "name");
    EXPECT_STREQ(wire::parse_error(nullptr, 502).what(), "HTTP 502");
}

TEST(WireReplies, AProgressStreamSaysWhenEachStepStartsAndWhenItEnds) {
    EXPECT_EQ(wire::render_step("initdb", -1), json({{"start", "initdb"}}));
    EXPECT_EQ(wire::render_step("initdb", 612), json({{"step", "initdb"}, {"ms", 612}}));
}

// GET /v1/tenants is written straight from the views (render_text): every byte must be what
// the tree renders, whatever the views hold.
TEST(WireReplies, TheListWrittenStraightIsByteForByteTheTreesRendering) {
    auto tree = [](const std::vector<TenantView>& v) {
        return json(wire::render(v)).dump(2, ' ', false, json::error_handler_t::replace) + "\n";
    };
    EXPECT_EQ(wire::render_text({}), tree({}));
    TenantView full = sample_view();
    full.spec.extensions = {"pg_stat_statements", "postgis"};
    full.step = "route";
    full.problem = "the unit failed";
    full.backup = BackupHealth{.checked = 1764464400, .error = "repo \"x\" unreadable", .last_backup = 1764460000,
                               .last_type = "incr", .last_label = "20261130-010000F", .last_full = 1764450000,
                               .last_wal = 1764464000, .repo_bytes = 12345, .failures = 2,
                               .last_failure = BackupFailure{.at = 1764463000, .type = "full", .by = "schedule", .message = "no\nspace"}};
    TenantView plain = sample_view();
    plain.password.reset();
    plain.status.reset();
    plain.pending_restart = std::vector<std::string>{};
    plain.spec.settings.clear();
    plain.spec.cpu = 2;
    plain.image.clear();
    plain.url.clear();
    plain.live = {};
    TenantView odd = sample_view();
    odd.name = "quote\"back\\slash\ttab\x01";
    odd.label = "caf\xc3\xa9 \xe2\x82\xac";         // UTF-8 kept as is
    odd.problem = "bad \xff\xfe byte";                // invalid UTF-8: U+FFFD
    odd.spec.settings = {{"search_path", "\"$user\", public"}, {"application_name", "\xc3\xa9t\xc3\xa9"}};
    odd.spec.cpu = 0.1;
    odd.status = LiveStatus{.unit_error = "systemd is not reachable"};
    odd.state = TenantState::creating;
    const std::vector<TenantView> all{full, plain, odd, TenantView{}};
    EXPECT_EQ(wire::render_text(all), tree(all));
    EXPECT_EQ(wire::render_text({plain}), tree({plain}));
    EXPECT_EQ(wire::parse_tenants(json::parse(wire::render_text(all))).size(), 4u);
}

TEST(WireReplies, TheHostSaysWhetherItIsAnHaHostAndWhichTheOthersAre) {
    const json off = wire::render(HostInfo{});
    EXPECT_TRUE(off["host"]["ha_host"].is_null());
    EXPECT_EQ(off["host"]["ha_hosts"], json::array());
    HostInfo h{.tenants = 1};
    h.ha_host = "m1";
    h.ha_address = "10.0.0.1";
    h.ha_hosts = {{"m1", "10.0.0.1"}, {"m2", "10.0.0.2"}};
    const json on = wire::render(h);
    EXPECT_EQ(on["host"]["ha_host"], "m1");
    EXPECT_EQ(on["host"]["ha_address"], "10.0.0.1");
    EXPECT_EQ(on["host"]["ha_hosts"][1]["name"], "m2");
    EXPECT_EQ(on["host"]["ha_hosts"][1]["address"], "10.0.0.2");
    const HostInfo back = wire::parse_host(on);
    EXPECT_EQ(back.ha_host, "m1");
    EXPECT_EQ(back.ha_hosts, h.ha_hosts);
    EXPECT_EQ(wire::render(back), on);
}

// The collector's logic against a fake machine (an Observer): which facts a scrape shows for
// which tenant, how the slow facts are refreshed, and what a failed read leaves out. And the
// cgroup files, parsed from fixture text of both hierarchies.
#include <gtest/gtest.h>

#include <thread>

#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "base/error.h"
#include "hostd/collector.h"
#include "hostd/observe.h"
#include "model/layout.h"

using namespace hostd;

namespace {

std::string unit_of(const std::string& tenant) { return layout_of(Config{}, tenant).unit; }

struct FakeHost {
    std::map<std::string, std::string> units;  // unit → ActiveState
    bool systemd_down = false;
    std::set<std::string> mounts;
    std::map<std::string, storage::DiskStats> disks;  // mount point → statvfs; absent: statvfs fails
    std::map<std::string, CgroupUsage> cgroups;       // cgroup path → its files
    std::map<std::string, uint32_t> restarts;         // unit → NRestarts
    std::map<std::string, PgFacts> pg;                // tenant → its answer; absent: it is down
    std::set<std::string> up_only;                    // up, but hostd's own login refused
    std::vector<std::string> asked;                   // per-tenant reads, "verb argument"
    std::map<std::string, std::string> patroni;       // HA member host → its Patroni's /cluster; absent: silent
};

class FakeObserver final : public Observer {
public:
    explicit FakeObserver(FakeHost& h) : h_(h) {}
    std::map<std::string, std::string> unit_states() override {
        if (h_.systemd_down) throw Error(Errc::unavailable, "injected: systemd is not reachable");
        return h_.units;
    }
    std::set<std::string> mounted() override { return h_.mounts; }
    storage::DiskStats disk(const std::string& mp) override {
        h_.asked.push_back("disk " + mp);
        auto it = h_.disks.find(mp);
        if (it == h_.disks.end()) throw Error(Errc::not_found, "injected: nothing mounted at " + mp);
        return it->second;
    }
    CgroupUsage cgroup(const std::string& unit) override {
        h_.asked.push_back("cgroup " + unit);
        auto it = h_.cgroups.find(unit);
        return it == h_.cgroups.end() ? CgroupUsage{} : it->second;
    }
    uint32_t restarts(const std::string& unit) override {
        h_.asked.push_back("restarts " + unit);
        if (h_.systemd_down) throw Error(Errc::unavailable, "injected: systemd is not reachable");
        auto it = h_.restarts.find(unit);
        return it == h_.restarts.end() ? 0 : it->second;
    }
    bool pg_up(const TenantRecord& t, const std::string&) override {
        h_.asked.push_back("ping " + t.name);
        return h_.pg.count(t.name) || h_.up_only.count(t.name);
    }
    PgFacts pg_facts(const TenantRecord& t, const std::string& socket_dir) override {
        h_.asked.push_back("pg " + t.name + " " + socket_dir);
        auto it = h_.pg.find(t.name);
        if (it == h_.pg.end()) throw Error(Errc::unavailable, "injected: connection to " + socket_dir + " refused");
        return it->second;
    }
    std::string patroni_cluster(const HaMember& m) override {
        h_.asked.push_back("patroni " + m.host + " " + m.address + ":" + std::to_string(m.rest_port));
        auto it = h_.patroni.find(m.host);
        if (it == h_.patroni.end()) throw Error(Errc::unavailable, "injected: " + m.host + "'s Patroni does not answer");
        return it->second;
    }

private:
    FakeHost& h_;
};

// A collector over records the test edits and a fake machine.
struct Rig {
    FakeHost host;
    std::vector<TenantRecord> records;
    OpStats ops;
    Config cfg;
    std::unique_ptr<Collector> collector;

    Rig() {
        cfg.metrics_refresh = 5;
        cfg.metrics_refresh_budget = 5;
    }
    Collector& c() {
        if (!collector)
            collector = std::make_unique<Collector>(
                TenantSource{.records = [this] { return records; }, .op_stats = [this] { return ops; }},
                std::make_unique<FakeObserver>(host), cfg, "1.2.3");
        return *collector;
    }
    std::string mp(const std::string& name) const { return layout_of(cfg, name).mountpoint; }
    // A tenant in state st, and a machine where all is well with it: mounted, unit active,
    // PostgreSQL answering.
    TenantRecord& add(const std::string& name, TenantState st = TenantState::ready) {
        records.push_back({.name = name, .state = st, .spec = {}, .port = 5433, .admin_user = "admin", .password = "pw"});
        records.back().spec.disk_size = 1ull << 30;
        host.mounts.insert(mp(name));
        host.disks[mp(name)] = {.bytes_total = 1000, .bytes_used = 250, .bytes_available = 750, .inodes_total = 64, .inodes_used = 12};
        const std::string unit = layout_of(cfg, name).unit;
        host.units[unit] = "active";
        host.cgroups[layout_of(cfg, name).cgroup] = {.memory_current = 50, .memory_limit = 256, .tasks_current = 9, .tasks_limit = 512,
                              .cpu_seconds = 1.5, .io_read_bytes = 4096, .io_write_bytes = 8192};
        host.restarts[unit] = 2;
        host.pg[name] = {.connections = 3, .max_connections = 32, .database_bytes = 7654321};
        return records.back();
    }
    TenantRecord& record(const std::string& name) {
        for (auto& r : records)
            if (r.name == name) return r;
        throw std::logic_error("no record " + name);
    }
    std::vector<std::string> asked(const std::string& verb) const {
        std::vector<std::string> out;
        for (auto& a : host.asked)
            if (a.starts_with(verb + " ")) out.push_back(a.substr(verb.size() + 1));
        return out;
    }
};

// One sample's value in exposition text; nullopt if the series is absent.
std::optional<double> sample(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
    return std::nullopt;
}
std::optional<double> sample(const std::string& text, const std::string& metric, const std::string& tenant) {
    return sample(text, metric + "{tenant=\"" + tenant + "\"}");
}

}  // namespace

TEST(Collector, ScrapeShowsEveryFactTheMachineReportsAsTheFamiliesRenderThem) {
    Rig r;
    r.add("acme");
    r.add("beta-2", TenantState::creating).read_only = true;
    r.host.mounts.erase(r.mp("beta-2"));
    r.host.units.erase(unit_of("beta-2"));
    r.ops.record("create", "ok", 0.8);
    r.ops.reconcile_runs = 1;
    const double gap = r.c().refresh_next();

    TenantFacts acme{.name = "acme", .state = "ready", .disk_size = 1ull << 30};
    acme.bytes_total = 1000, acme.bytes_used = 250, acme.bytes_available = 750, acme.inodes_total = 64, acme.inodes_used = 12;
    acme.memory_current = 50, acme.memory_limit = 256, acme.tasks_current = 9, acme.tasks_limit = 512;
    acme.cpu_seconds = 1.5, acme.io_read_bytes = 4096, acme.io_write_bytes = 8192;
    acme.unit_state = "active", acme.restarts = 2, acme.up = true;
    acme.connections = 3, acme.max_connections = 32, acme.database_bytes = 7654321;
    TenantFacts beta{.name = "beta-2", .state = "creating", .read_only = true, .disk_size = 1ull << 30};
    const HostFacts host{.version = "1.2.3", .ops = r.ops, .last_scrape_seconds = 0, .refresh_round_seconds = gap * 1};
    EXPECT_EQ(r.c().scrape(), metrics::render(metric_families({acme, beta}, host)));
}

TEST(Collector, ScrapeShowsDiskFactsOnlyForMountedTenants) {
    Rig r;
    r.add("a");
    r.add("b");
    r.host.mounts.erase(r.mp("b"));  // its statvfs would still answer: the mount table decides
    const std::string text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_disk_used_bytes", "a"), 250);
    EXPECT_EQ(sample(text, "hostd_tenant_disk_used_bytes", "b"), std::nullopt);
    EXPECT_EQ(sample(text, "hostd_tenant_disk_inodes", "b"), std::nullopt);
    EXPECT_EQ(sample(text, "hostd_tenant_disk_size_bytes", "b"), 1ull << 30) << "the size it was given is a record fact";
    EXPECT_EQ(r.asked("disk"), std::vector<std::string>{r.mp("a")});
}

TEST(Collector, ScrapeLeavesDiskFactsUnknownWhenAFilesystemGoesAwayMidScrape) {
    Rig r;
    r.add("a");
    r.add("b");
    r.host.disks.erase(r.mp("a"));  // listed as mounted, but statvfs fails
    const std::string text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_disk_total_bytes", "a"), std::nullopt);
    EXPECT_EQ(sample(text, "hostd_tenant_disk_total_bytes", "b"), 1000);
    EXPECT_EQ(sample(text, "hostd_tenant_memory_bytes", "a"), 50);
}

TEST(Collector, ScrapeShowsCgroupFactsOnlyForActiveUnits) {
    Rig r;
    r.add("up");
    r.add("failed");
    r.add("gone");
    r.host.units[unit_of("failed")] = "failed";
    r.host.units.erase(unit_of("gone"));
    const std::string text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_memory_bytes", "up"), 50);
    EXPECT_EQ(sample(text, "hostd_tenant_cpu_seconds_total", "up"), 1.5);
    for (const char* t : {"failed", "gone"}) {
        EXPECT_EQ(sample(text, "hostd_tenant_memory_bytes", t), std::nullopt) << t;
        EXPECT_EQ(sample(text, "hostd_tenant_tasks", t), std::nullopt) << t;
    }
    EXPECT_EQ(sample(text, "hostd_tenant_unit_state{tenant=\"failed\",state=\"failed\"}"), 1);
    EXPECT_EQ(text.find("hostd_tenant_unit_state{tenant=\"gone\""), std::string::npos);
    EXPECT_EQ(r.asked("cgroup"), std::vector<std::string>{layout_of(Config{}, "up").cgroup});
}

TEST(Collector, ScrapeSucceedsWithoutUnitStatesWhenSystemdIsUnreachable) {
    Rig r;
    r.add("a");
    r.host.systemd_down = true;
    const std::string text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_info{tenant=\"a\",state=\"ready\"}"), 1);
    EXPECT_EQ(sample(text, "hostd_tenant_disk_used_bytes", "a"), 250);
    EXPECT_EQ(text.find("hostd_tenant_unit_state{"), std::string::npos);
    EXPECT_EQ(sample(text, "hostd_tenant_memory_bytes", "a"), std::nullopt) << "no state known, so no cgroup read";
    EXPECT_TRUE(r.asked("cgroup").empty());
}

TEST(Collector, SlowFactsAppearOnlyAfterARefresh) {
    Rig r;
    r.add("a");
    std::string text = r.c().scrape();
    for (const char* m : {"hostd_tenant_up", "hostd_tenant_connections", "hostd_tenant_restarts_total", "hostd_tenant_database_bytes"})
        EXPECT_EQ(sample(text, m, "a"), std::nullopt) << m;
    EXPECT_TRUE(r.asked("pg").empty()) << "a scrape never waits on a tenant";
    r.c().refresh_next();
    text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_up", "a"), 1);
    EXPECT_EQ(sample(text, "hostd_tenant_connections", "a"), 3);
    EXPECT_EQ(sample(text, "hostd_tenant_max_connections", "a"), 32);
    EXPECT_EQ(sample(text, "hostd_tenant_database_bytes", "a"), 7654321);
    EXPECT_EQ(sample(text, "hostd_tenant_restarts_total", "a"), 2);
}

TEST(Collector, RefreshAsksAtTheTenantsOwnUnitAndSocketDirectory) {
    Rig r;
    r.add("acme");
    r.c().scrape();
    r.c().refresh_next();
    EXPECT_EQ(r.asked("disk"), std::vector<std::string>{r.mp("acme")});
    EXPECT_EQ(r.asked("cgroup"), std::vector<std::string>{layout_of(Config{}, "acme").cgroup});
    EXPECT_EQ(r.asked("restarts"), std::vector<std::string>{"hostd-postgres@acme.service"});
    EXPECT_EQ(r.asked("pg"), std::vector<std::string>{"acme /run/hostd-tenant/acme"});
}

TEST(Collector, SlowFactsAreDroppedForTenantsNoLongerReady) {
    Rig r;
    r.add("a");
    r.add("b");
    r.c().refresh_next();
    r.c().refresh_next();
    ASSERT_EQ(sample(r.c().scrape(), "hostd_tenant_up", "a"), 1);
    r.record("a").state = TenantState::deleting;
    r.c().refresh_next();
    std::string text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_up", "a"), std::nullopt);
    EXPECT_EQ(sample(text, "hostd_tenant_restarts_total", "a"), std::nullopt);
    EXPECT_EQ(sample(text, "hostd_tenant_connections", "a"), std::nullopt);
    EXPECT_EQ(sample(text, "hostd_tenant_up", "b"), 1);
    // Ready again: it counts as never refreshed, so it is next.
    r.record("a").state = TenantState::ready;
    r.host.asked.clear();
    r.c().refresh_next();
    EXPECT_EQ(r.asked("pg"), std::vector<std::string>{"a /run/hostd-tenant/a"});
}

TEST(Collector, RefreshPicksNeverRefreshedTenantsFirstThenTheStalest) {
    Rig r;
    r.add("a");
    r.add("b");
    r.add("c");
    r.add("new-one", TenantState::creating);
    for (int i = 0; i < 3; i++) r.c().refresh_next();
    r.record("new-one").state = TenantState::ready;
    for (int i = 0; i < 4; i++) r.c().refresh_next();
    std::vector<std::string> order;
    for (auto& a : r.asked("pg")) order.push_back(a.substr(0, a.find(' ')));
    EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c", "new-one", "a", "b", "c"}));
}

TEST(Collector, ARefreshOfATenantThatAnswersCostsOneConnection) {
    Rig r;
    r.add("a");
    r.c().refresh_next();
    EXPECT_EQ(r.asked("pg").size(), 1u);
    EXPECT_TRUE(r.asked("ping").empty()) << "the budget counts connections: a ping only when the facts fail";
}

TEST(Collector, ATenantThatRefusesHostdsLoginIsStillUpWithItsFactsUnknown) {
    Rig r;
    r.add("a");
    r.host.pg.erase("a");
    r.host.up_only.insert("a");  // e.g. it dropped hostd's role or rewrote pg_hba.conf
    r.c().refresh_next();
    std::string text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_up", "a"), 1);
    EXPECT_EQ(sample(text, "hostd_tenant_connections", "a"), std::nullopt);
}

TEST(Collector, TenantWhosePostgresqlDoesNotAnswerIsReportedDown) {
    Rig r;
    r.add("a");
    r.c().refresh_next();
    ASSERT_EQ(sample(r.c().scrape(), "hostd_tenant_connections", "a"), 3);
    r.host.pg.erase("a");
    r.c().refresh_next();
    std::string text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_up", "a"), 0);
    EXPECT_EQ(sample(text, "hostd_tenant_connections", "a"), std::nullopt) << "no stale answer of the last time";
    EXPECT_EQ(sample(text, "hostd_tenant_database_bytes", "a"), std::nullopt);
    EXPECT_EQ(sample(text, "hostd_tenant_restarts_total", "a"), 2) << "systemd still answered";
    r.host.pg["a"] = {};  // answers, but not as asked: up, the facts unknown
    r.c().refresh_next();
    text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_up", "a"), 1);
    EXPECT_EQ(sample(text, "hostd_tenant_connections", "a"), std::nullopt);
}

TEST(Collector, ATenantStoppedOnPurposeIsNotDownItIsStopped) {
    Rig r;
    r.add("a");
    r.add("b");
    r.c().refresh_next();
    r.c().refresh_next();
    ASSERT_EQ(sample(r.c().scrape(), "hostd_tenant_up", "a"), 1);
    r.record("a").stopped = true;  // hostctl stop: PostgreSQL no longer answers
    r.host.pg.erase("a");
    r.host.units.erase(unit_of("a"));
    r.host.asked.clear();
    r.c().refresh_next();
    r.c().refresh_next();
    const std::string text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_up", "a"), std::nullopt) << "no 0 that would fire HostdTenantDown";
    EXPECT_EQ(sample(text, "hostd_tenant_stopped", "a"), 1);
    EXPECT_EQ(sample(text, "hostd_tenant_stopped", "b"), 0);
    EXPECT_EQ(sample(text, "hostd_tenant_up", "b"), 1);
    EXPECT_TRUE(r.asked("ping").empty()) << "a stopped tenant costs no connection";
    for (auto& a : r.asked("pg")) EXPECT_EQ(a, "b /run/hostd-tenant/b");
}

TEST(Collector, RefreshLeavesRestartsUnknownWhenSystemdIsUnreachable) {
    Rig r;
    r.add("a");
    r.host.systemd_down = true;
    r.c().refresh_next();
    const std::string text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_restarts_total", "a"), std::nullopt);
    EXPECT_EQ(sample(text, "hostd_tenant_up", "a"), 1);
}

// An HA member here: its own Patroni asked once per refresh of the tenant (never by a scrape),
// its role, lag and timeline exported; silent, its role is unknown.
TEST(Collector, AnHaMembersRoleComesFromItsOwnPatroniAtTheRefreshNeverAtAScrape) {
    Rig r;
    r.cfg.ha_address = "10.0.0.2";
    r.add("acme");
    TenantRecord& hat = r.add("hat");
    hat.ha = HaSpec{.members = {{.host = "hb-1", .address = "10.0.0.1", .rest_port = 23001},
                                {.host = "hb-2", .address = "10.0.0.2", .rest_port = 23007},
                                {.host = "hb-3", .address = "10.0.0.3", .rest_port = 23001}}};
    r.host.patroni["hb-2"] = R"({"members": [
        {"name": "hb-1", "role": "leader", "state": "running", "timeline": 7},
        {"name": "hb-2", "role": "sync_standby", "state": "streaming", "timeline": 7, "lag": 2048}]})";
    std::string text = r.c().scrape();
    EXPECT_EQ(text.find("hostd_tenant_ha_"), std::string::npos) << "no facts before a refresh";
    r.c().refresh_next();
    r.c().refresh_next();
    EXPECT_EQ(r.asked("patroni"), std::vector<std::string>{"hb-2 10.0.0.2:23007"}) << "this host's member only, once";
    for (int i = 0; i < 5; i++) text = r.c().scrape();
    EXPECT_EQ(r.asked("patroni").size(), 1u) << "a scrape makes no HTTP call";
    EXPECT_EQ(sample(text, "hostd_tenant_ha_role{tenant=\"hat\",role=\"replica\"}"), 1) << text;
    EXPECT_EQ(sample(text, "hostd_tenant_ha_patroni_up", "hat"), 1);
    EXPECT_EQ(sample(text, "hostd_tenant_ha_lag_bytes", "hat"), 2048);
    EXPECT_EQ(sample(text, "hostd_tenant_ha_timeline", "hat"), 7);
    EXPECT_EQ(sample(text, "hostd_tenant_ha_sync", "hat"), 1);
    EXPECT_FALSE(sample(text, "hostd_tenant_ha_patroni_up", "acme")) << "a plain tenant has no HA series";

    // Its Patroni silent: role unknown, no lag or timeline made up.
    r.host.patroni.clear();
    r.c().refresh_next();
    r.c().refresh_next();
    text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_ha_role{tenant=\"hat\",role=\"unknown\"}"), 1) << text;
    EXPECT_FALSE(sample(text, "hostd_tenant_ha_role{tenant=\"hat\",role=\"replica\"}"));
    EXPECT_EQ(sample(text, "hostd_tenant_ha_patroni_up", "hat"), 0);
    EXPECT_FALSE(sample(text, "hostd_tenant_ha_lag_bytes", "hat"));
    EXPECT_FALSE(sample(text, "hostd_tenant_ha_timeline", "hat"));

    // The primary has no lag; a record with no member here asks no one.
    r.host.patroni["hb-2"] = R"({"members": [{"name": "hb-2", "role": "leader", "state": "running", "timeline": 8}]})";
    r.c().refresh_next();
    r.c().refresh_next();
    text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_ha_role{tenant=\"hat\",role=\"primary\"}"), 1) << text;
    EXPECT_FALSE(sample(text, "hostd_tenant_ha_lag_bytes", "hat"));
    EXPECT_EQ(sample(text, "hostd_tenant_ha_timeline", "hat"), 8);
    r.cfg.ha_address = "10.0.0.9";
    r.collector.reset();
    const size_t before = r.asked("patroni").size();
    r.c().refresh_next();
    r.c().refresh_next();
    EXPECT_EQ(r.asked("patroni").size(), before);
    EXPECT_EQ(r.c().scrape().find("hostd_tenant_ha_"), std::string::npos);
}

TEST(Collector, RefreshIsPacedByRefreshGapSecondsOverTheReadyTenants) {
    Rig r;
    EXPECT_DOUBLE_EQ(r.c().refresh_next(), 5) << "nobody: look again after metrics.refresh";
    EXPECT_EQ(sample(r.c().scrape(), "hostd_metrics_refresh_round_seconds"), 0);
    for (int i = 0; i < 10; i++) r.add("t" + std::to_string(i));
    r.add("making", TenantState::creating);
    r.add("parked", TenantState::detached);
    EXPECT_DOUBLE_EQ(r.c().refresh_next(), refresh_gap_seconds(10, 5, 5));
    EXPECT_EQ(sample(r.c().scrape(), "hostd_metrics_refresh_round_seconds"), 5);
    for (int i = 10; i < 200; i++) r.add("t" + std::to_string(i));
    EXPECT_DOUBLE_EQ(r.c().refresh_next(), refresh_gap_seconds(200, 5, 5));
    EXPECT_EQ(sample(r.c().scrape(), "hostd_metrics_refresh_round_seconds"), 40) << "200 tenants at 5 per second";
}

// ---- usage facts kept between scrapes ----

TEST(CollectorUsage, AScrapeServesTheLastPassWithItsAgeWithoutReadingTheMachine) {
    Rig r;
    r.add("acme");
    r.c().scrape();  // watched: the passes begin
    r.c().refresh_usage_if_scraped();
    r.host.asked.clear();
    r.host.disks[r.mp("acme")].bytes_used = 999;  // changed since the pass
    const std::string text = r.c().scrape();
    EXPECT_TRUE(r.asked("disk").empty()) << "no statvfs in the scrape";
    EXPECT_TRUE(r.asked("cgroup").empty()) << "no cgroup file read in the scrape";
    EXPECT_EQ(sample(text, "hostd_tenant_disk_used_bytes", "acme"), 250) << "the pass's value, until the next pass";
    const auto age = sample(text, "hostd_metrics_usage_age_seconds");
    ASSERT_TRUE(age);
    EXPECT_GE(*age, 0);
    EXPECT_LT(*age, 5);
    r.c().refresh_usage_if_scraped();
    EXPECT_EQ(sample(r.c().scrape(), "hostd_tenant_disk_used_bytes", "acme"), 999) << "the next pass";
}

TEST(CollectorUsage, AnUnwatchedHostReadsNothingAndAScrapeReadsItselfWhenNoPassIsRecent) {
    Rig r;
    r.cfg.metrics_refresh = 0.01;  // a pass is used for 30 ms
    r.add("acme");
    r.c().refresh_usage_if_scraped();
    EXPECT_TRUE(r.host.asked.empty()) << "never scraped: no pass";
    r.c().scrape();
    r.c().refresh_usage_if_scraped();
    r.host.disks[r.mp("acme")].bytes_used = 999;
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    r.host.asked.clear();
    const std::string text = r.c().scrape();
    EXPECT_EQ(r.asked("disk"), std::vector<std::string>{r.mp("acme")}) << "the pass is too old: read now";
    EXPECT_EQ(sample(text, "hostd_tenant_disk_used_bytes", "acme"), 999);
    EXPECT_EQ(sample(text, "hostd_metrics_usage_age_seconds"), 0);
}

TEST(CollectorUsage, ATenantCreatedSinceThePassHasItsRecordFactsAndItsUsageWithTheNextPass) {
    Rig r;
    r.add("acme");
    r.c().scrape();
    r.c().refresh_usage_if_scraped();
    r.add("beta");
    std::string text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_info{tenant=\"beta\",state=\"ready\"}"), 1);
    EXPECT_EQ(sample(text, "hostd_tenant_disk_used_bytes", "beta"), std::nullopt);
    r.c().refresh_usage_if_scraped();
    text = r.c().scrape();
    EXPECT_EQ(sample(text, "hostd_tenant_disk_used_bytes", "beta"), 250);
    EXPECT_EQ(sample(text, "hostd_tenant_memory_bytes", "beta"), 50);
}

// ---- cgroup files ----

namespace {

// A cgroup hierarchy as fixture text, by path below /sys/fs/cgroup.
cgroupfs::ReadFile files(std::map<std::string, std::string> f) {
    return [f = std::move(f)](const std::string& path) -> std::optional<std::string> {
        auto it = f.find(path);
        return it == f.end() ? std::nullopt : std::optional(it->second);
    };
}

const std::string cg = layout_of(Config{}, "acme").cgroup;

}  // namespace

TEST(CollectorCgroupFiles, TenantUnitLivesInItsTemplatesSliceAsTheLayoutSays) {
    EXPECT_EQ(cg, "/system.slice/system-hostd\\x2dpostgres.slice/hostd-postgres@acme.service");
}

TEST(CollectorCgroupFiles, V2UsageAndLimitsAreRead) {
    const auto u = cgroupfs::usage(true, cg, files({
        {cg + "/memory.current", "52428800\n"},
        {cg + "/memory.max", "268435456\n"},
        {cg + "/cpu.stat", "usage_usec 12500000\nuser_usec 9000000\nsystem_usec 3500000\nnr_periods 120\n"
                           "nr_throttled 4\nthrottled_usec 81234\nnr_bursts 0\nburst_usec 0\n"},
        {cg + "/pids.current", "9\n"},
        {cg + "/pids.max", "max\n"},
        {cg + "/io.stat", "7:3 rbytes=3072 wbytes=8192 rios=3 wios=2 dbytes=0 dios=0\n"
                          "259:0 rbytes=1024 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n"},
    }));
    EXPECT_EQ(u, (CgroupUsage{.memory_current = 52428800, .memory_limit = 268435456, .tasks_current = 9,
                              .tasks_limit = std::nullopt, .cpu_seconds = 12.5, .io_read_bytes = 4096, .io_write_bytes = 8192}));
}

TEST(CollectorCgroupFiles, V1UsageAndLimitsAreReadFromEachController) {
    const auto u = cgroupfs::usage(false, cg, files({
        {"/memory" + cg + "/memory.usage_in_bytes", "52428800\n"},
        {"/memory" + cg + "/memory.limit_in_bytes", "9223372036854771712\n"},  // no limit
        {"/cpu,cpuacct" + cg + "/cpuacct.usage", "12500000000\n"},              // cpuacct joined with cpu
        {"/pids" + cg + "/pids.current", "9\n"},
        {"/pids" + cg + "/pids.max", "512\n"},
        {"/blkio" + cg + "/blkio.throttle.io_service_bytes_recursive",
         "7:3 Read 3072\n7:3 Write 8192\n7:3 Sync 8192\n7:3 Async 3072\n7:3 Discard 0\n7:3 Total 11264\n"
         "259:0 Read 1024\n259:0 Write 0\n259:0 Sync 0\n259:0 Async 1024\n259:0 Discard 0\n259:0 Total 1024\n"
         "Total 12288\n"},
    }));
    EXPECT_EQ(u, (CgroupUsage{.memory_current = 52428800, .memory_limit = std::nullopt, .tasks_current = 9,
                              .tasks_limit = 512, .cpu_seconds = 12.5, .io_read_bytes = 4096, .io_write_bytes = 8192}));
    // cpuacct mounted on its own.
    EXPECT_EQ(cgroupfs::usage(false, cg, files({{"/cpuacct" + cg + "/cpuacct.usage", "2000000000\n"}})).cpu_seconds, 2.0);
}

TEST(CollectorCgroupFiles, MissingFilesLeaveTheirFactsUnknown) {
    EXPECT_EQ(cgroupfs::usage(true, cg, files({})), CgroupUsage{});
    EXPECT_EQ(cgroupfs::usage(false, cg, files({})), CgroupUsage{});
    const auto u = cgroupfs::usage(true, cg, files({{cg + "/memory.current", "4096\n"}}));
    EXPECT_EQ(u, CgroupUsage{.memory_current = 4096});
}

TEST(CollectorCgroupFiles, ANumberFileReadsNoLimitAndGarbageAsUnknown) {
    EXPECT_EQ(cgroupfs::parse_u64("536870912\n"), 536870912u);
    EXPECT_EQ(cgroupfs::parse_u64("0"), 0u);
    EXPECT_EQ(cgroupfs::parse_u64("max\n"), std::nullopt);
    EXPECT_EQ(cgroupfs::parse_u64("9223372036854771712\n"), std::nullopt);
    EXPECT_EQ(cgroupfs::parse_u64(""), std::nullopt);
    EXPECT_EQ(cgroupfs::parse_u64("-1\n"), std::nullopt);
    EXPECT_EQ(cgroupfs::parse_u64("12k\n"), std::nullopt);
}

TEST(CollectorCgroupFiles, KeyedValuesAreSummedOverLinesAndSkipWhatIsNotANumber) {
    EXPECT_EQ(cgroupfs::parse_keyed("usage_usec 7\nuser_usec 5\n", "usage_usec"), 7u);
    EXPECT_EQ(cgroupfs::parse_keyed("usage_usec 7\nuser_usec 5\n", "system_usec"), std::nullopt);
    EXPECT_EQ(cgroupfs::parse_keyed("8:0 rbytes=10 wbytes=1\n8:16 rbytes=5 wbytes=2", "rbytes"), 15u);
    EXPECT_EQ(cgroupfs::parse_keyed("8:0 rbytes=x wbytes=1\n8:16 rbytes=5\n", "rbytes"), 5u);
    EXPECT_EQ(cgroupfs::parse_keyed("8:0 rbytesx=10\n", "rbytes"), std::nullopt);
    EXPECT_EQ(cgroupfs::parse_keyed("", "rbytes"), std::nullopt);
}

TEST(CollectorCgroupFiles, BlkioBytesAreSummedOverDevicesWithoutTheTotalLine) {
    const char* text = "8:0 Read 100\n8:0 Write 7\n8:0 Total 107\n8:16 Read 1\n8:16 Write 0\n8:16 Total 1\nTotal 108\n";
    EXPECT_EQ(cgroupfs::parse_blkio(text, "Read"), 101u);
    EXPECT_EQ(cgroupfs::parse_blkio(text, "Write"), 7u);
    EXPECT_EQ(cgroupfs::parse_blkio("Total 0\n", "Read"), std::nullopt);
}

#include <gtest/gtest.h>

#include "base/error.h"
#include "model/config.h"
#include "model/layout.h"
#include "model/tenant.h"
#include "model/record.h"
#include "model/views.h"

using namespace hostd;

TEST(Config, TheShippedDefaultFileParsesToTheDefaults) {
    Config c = parse_config(default_config_text(), "default");
    Config d;
    EXPECT_EQ(c.disk_size, d.disk_size);
    EXPECT_EQ(c.pg_ports, d.pg_ports);
    EXPECT_EQ(c.public_host, d.public_host);
    EXPECT_EQ(c.user_ids, d.user_ids);
}

TEST(Config, GivesTenantUsersARangeThatHoldsThousandsOfTenantsClearOfEveryoneElses) {
    const auto [lo, hi] = Config{}.user_ids;
    EXPECT_GE(hi - lo + 1, 20000u) << "the system range 100-999 held fewer than 900";
    EXPECT_GT(lo, 65535u) << "16-bit ids: Debian's and systemd's (dynamic users 61184-65519, nobody)";
    EXPECT_LT(hi, 100000u) << "useradd's subordinate ids (/etc/subuid) start at 100000";
    EXPECT_EQ(parse_config("[users]\nids = \"200000-209999\"\n", "t").user_ids, (std::pair<uint32_t, uint32_t>{200000, 209999}));
}

TEST(Config, RefusesTenantIdsThatAreNotHostdsToGive) {
    for (const char* bad : {"\"0-99\"", "\"500-2000\"", "\"61184-65519\"", "\"60000-70000\"", "\"65534-65534\"",
                            "\"3000000000-3000000100\"", "\"99999-65536\"", "\"65536\"", "\"a-b\"", "65536"}) {
        SCOPED_TRACE(bad);
        EXPECT_THROW(parse_config(std::string("[users]\nids = ") + bad + "\n", "t"), Error);
    }
}

TEST(Config, ReadsSizesPortsAndNumbers) {
    Config c = parse_config("[defaults]\ndisk_size = \"2G\"\ncpu = 0.5\n[postgres]\nports = \"21000-21099\"\n", "t");
    EXPECT_EQ(c.disk_size, 2ull << 30);
    EXPECT_DOUBLE_EQ(c.cpu, 0.5);
    EXPECT_EQ(c.pg_ports, (PortRange{21000, 21099}));
}

TEST(Config, LoopImagesMayTotalTheirRoomByDefaultAndZeroTurnsTheLimitOff) {
    EXPECT_DOUBLE_EQ(Config{}.loop_overcommit, 1.0);
    EXPECT_DOUBLE_EQ(parse_config(default_config_text(), "default").loop_overcommit, 1.0);
    EXPECT_DOUBLE_EQ(parse_config("[storage]\nloop_overcommit = 2.5\n", "t").loop_overcommit, 2.5);
    EXPECT_DOUBLE_EQ(parse_config("[storage]\nloop_overcommit = 0\n", "t").loop_overcommit, 0.0);
    EXPECT_THROW(parse_config("[storage]\nloop_overcommit = -1\n", "t"), Error);
    EXPECT_THROW(parse_config("[storage]\nloop_overcommit = \"lots\"\n", "t"), Error);
}

TEST(Config, NamesTheKeyThatIsWrong) {
    try {
        parse_config("[defaults]\ndisk_size = \"huge\"\n", "hostd.toml");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("defaults.disk_size"), std::string::npos);
    }
    EXPECT_THROW(parse_config("[defaults]\nunknown = 1\n", "t"), Error);
    EXPECT_THROW(parse_config("[postgres]\nports = \"28000-28100\"\n", "t"), Error);  // overlaps proxy ports
    EXPECT_THROW(parse_config("not toml [", "t"), Error);
}

TEST(Config, TakesAWalSegmentSizeThatKeepsTwoSegmentsUnderMinWalSize) {
    EXPECT_EQ(parse_config("", "t").pg_wal_segsize, 16u);
    EXPECT_EQ(parse_config("[postgres]\nwal_segsize = 4\n", "t").pg_wal_segsize, 4u);
    for (const char* bad : {"0", "3", "32", "1024"}) {
        try {
            parse_config(std::string("[postgres]\nwal_segsize = ") + bad + "\n", "t");
            ADD_FAILURE() << bad;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("'postgres.wal_segsize'"), std::string::npos) << e.what();
        }
    }
}

TEST(Config, BoundsTheListenersConnectionsAndTimeouts) {
    Config d;
    EXPECT_EQ(d.api_max_connections, 1024u);
    EXPECT_EQ(d.api_idle_timeout, 30u);
    EXPECT_EQ(d.metrics_max_connections, 64u);
    EXPECT_EQ(d.metrics_max_connections_per_ip, 8u);
    EXPECT_EQ(d.metrics_timeout, 10u);
    Config c = parse_config("[api]\nmax_connections = 200\nidle_timeout = 5\n[metrics]\nmax_connections = 16\n"
                            "max_connections_per_ip = 2\ntimeout = 3\n", "t");
    EXPECT_EQ(c.api_max_connections, 200u);
    EXPECT_EQ(c.api_idle_timeout, 5u);
    EXPECT_EQ(c.metrics_max_connections, 16u);
    EXPECT_EQ(c.metrics_max_connections_per_ip, 2u);
    EXPECT_EQ(c.metrics_timeout, 3u);
    EXPECT_THROW(parse_config("[api]\nmax_connections = 0\n", "t"), Error);
    EXPECT_THROW(parse_config("[metrics]\nmax_connections = 4\nmax_connections_per_ip = 8\n", "t"), Error);
    EXPECT_THROW(parse_config("[api]\nidle_timeout = -1\n", "t"), Error);
}

TEST(Config, ChoosesTheProxyAndHostNameRoutes) {
    Config c = parse_config("[proxy]\nkind = \"traefik\"\ndomain = \"db.example.com\"\nsni_port = 15432\n"
                            "traefik_dir = \"/etc/traefik/dyn\"\ntraefik_entry_point = \"pg\"\n", "t");
    EXPECT_EQ(c.proxy, "traefik");
    EXPECT_EQ(c.domain, "db.example.com");
    EXPECT_EQ(c.sni_port, 15432);
    EXPECT_EQ(c.traefik_dir, "/etc/traefik/dyn");
    EXPECT_EQ(c.traefik_entry_point, "pg");
}

TEST(Config, RefusesProxySettingsThatCannotWork) {
    for (const char* bad : {
             "[proxy]\nkind = \"nginx\"\n",
             "[proxy]\ndomain = \"db.example.com\"\n",  // HAProxy cannot route PostgreSQL by SNI
             "[proxy]\nkind = \"traefik\"\ndomain = \"DB.example.com\"\n",
             "[proxy]\nkind = \"traefik\"\ndomain = \"db..com\"\n",
             "[proxy]\nkind = \"traefik\"\ndomain = \"a.com\"\nsni_port = 25001\n",  // a tenant's port
             "[proxy]\nsni_port = 0\n",
             "[proxy]\nsni_port = 70000\n",
             "[proxy]\ntraefik_dir = \"relative\"\n",
             "[proxy]\ntraefik_entry_point = \"a b\"\n",
         }) {
        SCOPED_TRACE(bad);
        EXPECT_THROW(parse_config(bad, "t"), Error);
    }
}

TEST(Config, TheTenantsEndpointFollowsTheRouteKind) {
    TenantRecord t;
    t.name = "acme";
    t.admin_user = "acme";
    t.password = "pw";
    t.port = 25001;
    t.public_port = 28001;
    Config ports;
    EXPECT_EQ(connection_url(ports, t), "postgresql://acme:pw@127.0.0.1:28001/postgres?sslmode=require");
    EXPECT_EQ(connection_url(ports, t, false), "postgresql://acme@127.0.0.1:28001/postgres?sslmode=require");
    EXPECT_EQ(route_of(ports, t).sni_host, "");
    Config sni = parse_config("[proxy]\nkind = \"traefik\"\ndomain = \"db.example.com\"\n", "t");
    EXPECT_EQ(connection_url(sni, t), "postgresql://acme:pw@acme.db.example.com:5432/postgres?sslmode=require");
    auto r = route_of(sni, t);
    EXPECT_EQ(r.sni_host, "acme.db.example.com");
    EXPECT_EQ(r.public_port, 5432);
    EXPECT_EQ(r.backend_port, 25001);
    EXPECT_EQ(proxy_check_address(ports), "127.0.0.1");
}

TEST(TenantRecord, SurvivesARoundTripThroughToml) {
    TenantRecord t;
    t.name = "acme";
    t.state = TenantState::detached;
    t.spec = {.backend = "loop", .filesystem = "ext4", .disk_size = 1ull << 30, .memory = 256ull << 20, .cpu = 0.5, .tasks = 100};
    t.fs_uuid = "0b3f0c8e-0000-4000-8000-000000000000";
    t.device = "/dev/sdb";
    t.device_id = "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4";
    t.port = 25001;
    t.public_port = 28001;
    t.password = "p'\"w";
    t.spec.extensions = {"pg_stat_statements", "pg_trgm"};
    auto back = from_toml(to_toml(t), "t");
    EXPECT_EQ(back.spec.extensions, t.spec.extensions);
    EXPECT_EQ(back.device, "/dev/sdb");
    EXPECT_EQ(back.device_id, t.device_id);
    EXPECT_EQ(back.name, t.name);
    EXPECT_EQ(back.state, t.state);
    EXPECT_EQ(back.spec.disk_size, t.spec.disk_size);
    EXPECT_DOUBLE_EQ(back.spec.cpu, 0.5);
    EXPECT_EQ(back.password, t.password);
    EXPECT_EQ(back.public_port, 28001);
    EXPECT_FALSE(back.stopped);
    t.stopped = true;
    EXPECT_TRUE(from_toml(to_toml(t), "t").stopped);
}

TEST(TenantRecord, ARecordWrittenBeforeTheStopIntentWasRecordedIsNotStopped) {
    EXPECT_FALSE(from_toml("name = \"acme\"\nstate = \"ready\"\n", "old.toml").stopped);
}

// ---- what a ready tenant does now, in one word ----

namespace {
TenantRecord ready_record(bool stopped = false, bool read_only = false) {
    TenantRecord t;
    t.name = "acme";
    t.state = TenantState::ready;
    t.stopped = stopped;
    t.read_only = read_only;
    return t;
}
LiveStatus unit(const std::string& active, const std::string& sub, const std::string& result = "") {
    return {.active_state = active, .sub_state = sub, .result = result};
}
}  // namespace

TEST(DeriveLive, ARunningUnitIsRunningUnlessPostgresRefusesOrTheGuardHoldsIt) {
    EXPECT_EQ(derive_live(ready_record(), unit("active", "running"), "", "", std::nullopt).state, "running");
    EXPECT_EQ(derive_live(ready_record(), unit("active", "running"), "", "", "").state, "running");
    auto down = derive_live(ready_record(), unit("active", "running"), "", "", "refuses connections");
    EXPECT_EQ(down.state, "down");
    EXPECT_EQ(down.reason, "refuses connections");
    auto ro = derive_live(ready_record(false, true), unit("reloading", "reload"), "", "", "");
    EXPECT_EQ(ro.state, "read-only");
    EXPECT_NE(ro.reason.find("hostctl resize"), std::string::npos);
}

TEST(DeriveLive, StoppedOnPurposeIsStoppedAndNeverDownButAUnitStartedBehindItsBackRuns) {
    for (auto& u : {unit("inactive", "dead"), unit("failed", "failed", "signal"), unit("", "")})
        EXPECT_EQ(derive_live(ready_record(true), u, "", "", std::nullopt).state, "stopped") << u.active_state;
    EXPECT_EQ(derive_live(ready_record(true), unit("deactivating", "stop-sigterm"), "", "", std::nullopt).state, "stopping");
    auto r = derive_live(ready_record(true), unit("active", "running"), "", "", std::nullopt);
    EXPECT_EQ(r.state, "running");
    EXPECT_NE(r.reason.find("started outside hostd"), std::string::npos);
}

TEST(DeriveLive, ADownTenantSaysWhy) {
    auto failed = derive_live(ready_record(), LiveStatus{.active_state = "failed", .sub_state = "failed",
                                                         .result = "signal", .last_exit = "was killed by signal KILL"},
                              "", "", std::nullopt);
    EXPECT_EQ(failed.state, "down");
    EXPECT_EQ(failed.reason, "PostgreSQL was killed by signal KILL (signal)");
    EXPECT_NE(derive_live(ready_record(), unit("failed", "failed", "start-limit-hit"), "", "", std::nullopt).reason.find("start-limit-hit"),
              std::string::npos);
    auto gone = derive_live(ready_record(), unit("", ""), "", "", std::nullopt);
    EXPECT_EQ(gone.state, "down");
    EXPECT_NE(gone.reason.find("not loaded"), std::string::npos);
    // hostd's own reason wins over the unit's (it left it down on purpose: the disk is missing).
    EXPECT_EQ(derive_live(ready_record(), unit("inactive", "dead"), "disk missing", "", std::nullopt).reason, "disk missing");
    EXPECT_EQ(derive_live(ready_record(), LiveStatus{.unit_error = "no bus"}, "", "", std::nullopt).state, "unknown");
}

TEST(DeriveLive, TransitionsAndOtherStatesHaveTheirOwnWord) {
    EXPECT_EQ(derive_live(ready_record(), unit("activating", "auto-restart", "signal"), "", "", std::nullopt).state, "restarting");
    EXPECT_EQ(derive_live(ready_record(), unit("activating", "start"), "", "", std::nullopt).state, "starting");
    EXPECT_EQ(derive_live(ready_record(), unit("deactivating", "stop-sigterm"), "", "", std::nullopt).state, "stopping");
    EXPECT_EQ(derive_live(ready_record(), unit("active", "running"), "", "restarting", "").state, "restarting");
    TenantRecord detached = ready_record();
    detached.state = TenantState::detached;
    EXPECT_EQ(derive_live(detached, {}, "", "", std::nullopt).state, "detached");
}

TEST(TenantRecord, ARecordWrittenBeforeTheStableIdWasRecordedReadsWithoutOne) {
    const auto t = from_toml("name = \"acme\"\nstate = \"ready\"\n[spec]\nbackend = \"device\"\n"
                             "[facts]\ndevice = \"/dev/vdb\"\nfs_uuid = \"0b3f0c8e-0000-4000-8000-000000000000\"\n",
                             "old.toml");
    EXPECT_EQ(t.device, "/dev/vdb");
    EXPECT_EQ(t.device_id, "");
}

TEST(Config, ARepositoryHostIsAddrPortAndExcludesALocalRepository) {
    Config c = parse_config("[backup]\nrepo_host = \"10.231.1.3:8443\"\n", "t");
    EXPECT_TRUE(backups_on(c));
    EXPECT_TRUE(remote_repository(c));
    EXPECT_EQ(repo_host_address(c), "10.231.1.3");
    EXPECT_THROW(parse_config("[backup]\nrepo_host = \"10.231.1.3\"\n", "t"), Error);
    EXPECT_THROW(parse_config("[backup]\nrepo_host = \"10.231.1.3:0\"\n", "t"), Error);
    EXPECT_THROW(parse_config("[backup]\nrepo_host = \"a b:1\"\n", "t"), Error);
    EXPECT_THROW(parse_config("[backup]\nrepo_host = \"h:1\"\nrepo = \"/var/lib/b\"\n", "t"), Error);
    EXPECT_THROW(parse_config("[backup]\nrepo_host = \"h:1\"\nserver_ports = \"25000-25100\"\n", "t"), Error);
    EXPECT_FALSE(backups_on(parse_config("", "t")));
}

TEST(Config, RepositoryRole) {
    EXPECT_TRUE(parse_config("", "t").repository_listen.empty());  // off by default
    Config c = parse_config("[repository]\nlisten = \"10.0.0.2:8443\"\nroot = \"/srv/repos\"\nports = \"18000-18100\"\n", "t");
    EXPECT_EQ(c.repository_listen, "10.0.0.2:8443");
    EXPECT_EQ(c.repository_root, "/srv/repos");
    EXPECT_EQ(c.repository_ports, (PortRange{18000, 18100}));
    for (const char* bad : {"[repository]\nlisten = \"10.0.0.2\"\n",
                            "[repository]\nlisten = \"10.0.0.2:8443\"\nroot = \"repos\"\n",
                            "[repository]\nlisten = \"10.0.0.2:8443\"\nroot = \"/var/lib/hostd/repos\"\n",
                            "[repository]\nlisten = \"10.0.0.2:8443\"\nroot = \"/a/../b\"\n",
                            "[repository]\nlisten = \"10.0.0.2:8443\"\nports = \"25000-25010\"\n"})
        EXPECT_THROW(parse_config(bad, "t"), Error) << bad;
}

// [ha]: off until address is set; the fleet's names and addresses, etcd's members and every HA
// port checked against each other and the other ranges, each refusal naming its key.
namespace {
const std::string kHa = "[ha]\naddress = \"10.0.0.1\"\nhosts = [\"m1=10.0.0.1\", \"m2=10.0.0.2\", \"m3=10.0.0.3\"]\n";
std::string refusal(const std::string& toml) {
    try {
        parse_config(toml, "hostd.toml");
    } catch (const Error& e) {
        return e.what();
    }
    return "(accepted)";
}
}  // namespace

TEST(Config, HaIsOffByDefaultWithTheDocumentedDefaults) {
    Config d;
    EXPECT_FALSE(ha_on(d));
    EXPECT_FALSE(ha_on(parse_config(default_config_text(), "default")));
    EXPECT_EQ(d.ha_api_port, 8444);
    EXPECT_EQ(d.ha_rest_ports, (PortRange{23000, 23999}));
    EXPECT_EQ(d.ha_etcd_client_port, 2379);
    EXPECT_EQ(d.ha_etcd_peer_port, 2380);
    EXPECT_EQ(d.ha_prepare_timeout, 600u);
    // Hosts may be listed ahead of the address; nothing else is checked while HA is off.
    EXPECT_NO_THROW(parse_config("[ha]\nhosts = [\"m1=10.0.0.1\"]\nrest_ports = \"25000-25100\"\n", "t"));
}

TEST(Config, HaReadsTheFleetAndItsEtcdMembers) {
    Config c = parse_config(kHa + "etcd_hosts = [\"m1\"]\napi_port = 9444\nrest_ports = \"22000-22099\"\nttl = 30\n", "t");
    EXPECT_TRUE(ha_on(c));
    EXPECT_EQ(ha_fleet(c), (std::vector<HaHost>{{"m1", "10.0.0.1"}, {"m2", "10.0.0.2"}, {"m3", "10.0.0.3"}}));
    EXPECT_TRUE(ha_etcd_host(c, "m1"));
    EXPECT_FALSE(ha_etcd_host(c, "m2"));
    EXPECT_EQ(c.ha_api_port, 9444);
    EXPECT_EQ(c.ha_rest_ports, (PortRange{22000, 22099}));
    EXPECT_EQ(c.ha_ttl, 30u);
    Config all = parse_config(kHa, "t");
    for (const char* m : {"m1", "m2", "m3"}) EXPECT_TRUE(ha_etcd_host(all, m)) << m;
    EXPECT_FALSE(ha_etcd_host(all, "m4"));
    EXPECT_NO_THROW(parse_config("[ha]\naddress = \"fd00::1\"\nhosts = [\"a=fd00::1\"]\n", "t"));
}

TEST(Config, HaRefusesBadNamesAddressesAndEtcdMembersSayingWhichKey) {
    const std::pair<std::string, std::string> cases[] = {
        {"[ha]\naddress = \"db1.example\"\nhosts = [\"m1=10.0.0.1\"]\n", "'ha.address'"},
        {"[ha]\naddress = \"10.0.0.1\"\n", "'ha.hosts'"},
        {"[ha]\nhosts = [\"M1=10.0.0.1\"]\n", "'ha.hosts'"},
        {"[ha]\nhosts = [\"m_1=10.0.0.1\"]\n", "'ha.hosts'"},
        {"[ha]\nhosts = [\"-m=10.0.0.1\"]\n", "'ha.hosts'"},
        {"[ha]\nhosts = [\"m1\"]\n", "'ha.hosts'"},
        {"[ha]\nhosts = [\"m1=db1.example\"]\n", "'ha.hosts'"},
        {"[ha]\nhosts = [\"m1=10.0.0.1\", \"m1=10.0.0.2\"]\n", "twice"},
        {"[ha]\nhosts = [\"m1=10.0.0.1\", \"m2=10.0.0.1\"]\n", "both 'm1' and 'm2'"},
        {"[ha]\nhosts = [\"m1=10.0.0.1\"]\netcd_hosts = [\"m9\"]\n", "'ha.etcd_hosts' in hostd.toml names 'm9'"},
        {kHa + "etcd_hosts = [\"m1\", \"m2\"]\n", "odd number"},
        {"[ha]\naddress = \"10.0.0.1\"\nhosts = [\"m1=10.0.0.1\", \"m2=10.0.0.2\"]\n", "name them in 'ha.etcd_hosts'"},
        {kHa + "ttl = 9\n", "'ha.ttl'"},
        {kHa + "loop_wait = 0\n", "'ha.ttl'"},
        {kHa + "prepare_timeout = 1\n", "'ha.prepare_timeout'"},
    };
    for (const auto& [toml, want] : cases) EXPECT_NE(refusal(toml).find(want), std::string::npos) << toml << "\n→ " << refusal(toml);
}

TEST(Config, HaPortsClashWithNothingElseConfigured) {
    const std::pair<std::string, std::string> cases[] = {
        {kHa + "rest_ports = \"25500-25600\"\n", "'ha.rest_ports' in hostd.toml must not overlap 'postgres.ports'"},
        {kHa + "rest_ports = \"28000-28001\"\n", "must not overlap 'proxy.ports'"},
        {kHa + "api_port = 2379\n", "'ha.etcd_client_port' and 'ha.api_port'"},
        {kHa + "etcd_peer_port = 23005\n", "'ha.rest_ports' and 'ha.etcd_peer_port'"},
        {kHa + "api_port = 26000\n", "'ha.api_port' in hostd.toml must not overlap 'postgres.ports'"},
        {kHa + "[repository]\nlisten = \"10.0.0.1:8444\"\n", "must not overlap 'repository.listen'"},
        {kHa + "[repository]\nlisten = \"10.0.0.1:8443\"\nports = \"23500-23600\"\n", "must not overlap 'repository.ports'"},
        {kHa + "[backup]\nrepo_host = \"h:8443\"\nserver_ports = \"2000-3000\"\n", "must not overlap 'backup.server_ports'"},
        {kHa + "[proxy]\nkind = \"traefik\"\ndomain = \"db.example.com\"\nsni_port = 8444\n", "must not overlap 'proxy.sni_port'"},
    };
    for (const auto& [toml, want] : cases) EXPECT_NE(refusal(toml).find(want), std::string::npos) << toml << "\n→ " << refusal(toml);
    // The same ranges elsewhere are fine while HA is off.
    EXPECT_NO_THROW(parse_config("[ha]\napi_port = 26000\n", "t"));
}

TEST(Config, HaWantsThisHostInTheFleetWithItsAddress) {
    Config c = parse_config(kHa, "hostd.toml");
    EXPECT_EQ(ha_self(c, "m1", "hostd.toml"), "m1");
    try {
        ha_self(c, "db7", "hostd.toml");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("add \"db7=10.0.0.1\""), std::string::npos) << e.what();
    }
    try {
        ha_self(c, "m2", "hostd.toml");  // listed, but with another address than ha.address
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("10.0.0.2, but 'ha.address' is 10.0.0.1"), std::string::npos) << e.what();
    }
    EXPECT_THROW(ha_self(c, "DB.local", "hostd.toml"), Error);
    EXPECT_EQ(ha_self(Config{}, "anything", "t"), "anything");  // HA off: no check
}

TEST(Config, HibernationIsOffByDefaultAndReadsDurations) {
    Config d;
    EXPECT_FALSE(hibernate_on(d));
    EXPECT_FALSE(hibernate_on(parse_config(default_config_text(), "default")));
    EXPECT_FALSE(hibernate_on(parse_config("[hibernate]\nafter = 0\n", "t")));
    for (auto [text, secs] : std::vector<std::pair<std::string, double>>{
             {"900", 900}, {"\"90s\"", 90}, {"\"15m\"", 900}, {"\"2h\"", 7200}, {"\"1d\"", 86400}, {"2.5", 2.5}, {"\"0.5m\"", 30}}) {
        SCOPED_TRACE(text);
        Config c = parse_config("[hibernate]\nafter = " + text + "\ncheck_interval = \"1s\"\n", "t");
        EXPECT_TRUE(hibernate_on(c));
        EXPECT_DOUBLE_EQ(c.hibernate_after, secs);
        EXPECT_DOUBLE_EQ(c.hibernate_check_interval, 1);
    }
    Config c = parse_config("[hibernate]\nafter = \"30m\"\nwaker_port = 5431\nmax_relays = 10\n", "t");
    EXPECT_EQ(c.hibernate_waker_port, 5431);
    EXPECT_EQ(c.hibernate_max_relays, 10u);
}

TEST(Config, RefusesBadHibernationSettingsSayingWhat) {
    struct Case {
        std::string toml, says;
    };
    for (const Case& k : {Case{"[hibernate]\nafter = \"10x\"\n", "duration"}, Case{"[hibernate]\nafter = \"-5\"\n", "duration"},
                          Case{"[hibernate]\nafter = \"m\"\n", "duration"}, Case{"[hibernate]\nafter = \"\"\n", "duration"},
                          Case{"[hibernate]\nafter = 0.5\n", "at least 1 second"},
                          Case{"[hibernate]\nafter = 60\ncheck_interval = 0\n", "check_interval"},
                          Case{"[hibernate]\nafter = 60\nwaker_port = 25010\n", "postgres.ports"},
                          Case{"[hibernate]\nafter = 60\nwaker_port = 28010\n", "proxy.ports"},
                          Case{"[hibernate]\nafter = 60\nmax_relays = 0\n", "max_relays"},
                          Case{"[proxy]\nkind = \"traefik\"\n[hibernate]\nafter = 60\n", "needs proxy.kind = \"haproxy\""}}) {
        SCOPED_TRACE(k.toml);
        try {
            parse_config(k.toml, "t");
            ADD_FAILURE() << "accepted";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(k.says), std::string::npos) << e.what();
        }
    }
    // Off, the other settings are not checked against the proxy.
    EXPECT_NO_THROW(parse_config("[proxy]\nkind = \"traefik\"\n[hibernate]\nafter = 0\n", "t"));
}

TEST(Record, KeepsHibernatedAndLeavesAwakeRecordsAsTheyWere) {
    TenantRecord t;
    t.name = "acme";
    t.state = TenantState::ready;
    EXPECT_EQ(to_toml(t).find("hibernated"), std::string::npos);
    t.hibernated = true;
    EXPECT_TRUE(from_toml(to_toml(t), "t").hibernated);
}

TEST(DeriveLive, SaysHibernatedForAHibernatedTenantWhoseUnitIsInactive) {
    TenantRecord t;
    t.name = "acme";
    t.state = TenantState::ready;
    t.hibernated = true;
    LiveStatus inactive;
    inactive.active_state = "inactive";
    EXPECT_EQ(derive_live(t, inactive, "", "", std::nullopt).state, "hibernated");
    LiveStatus unloaded;  // a stopped unit systemd unloaded
    EXPECT_EQ(derive_live(t, unloaded, "", "", std::nullopt).state, "hibernated");
    LiveStatus active;
    active.active_state = "active";
    EXPECT_EQ(derive_live(t, active, "", "", std::nullopt).state, "running");
    EXPECT_EQ(derive_live(t, inactive, "", "waking", std::nullopt).state, "waking");
}

TEST(RouteOf, CarriesTheWakerAndHibernationOnlyWithHibernationOn) {
    TenantRecord t;
    t.name = "acme";
    t.state = TenantState::ready;
    t.port = 25001;
    t.public_port = 28001;
    t.hibernated = true;
    Config off;
    EXPECT_EQ(route_of(off, t).waker_port, 0);
    EXPECT_FALSE(route_of(off, t).hibernated);
    Config on = parse_config("[hibernate]\nafter = 60\n", "t");
    EXPECT_EQ(route_of(on, t).waker_port, on.hibernate_waker_port);
    EXPECT_TRUE(route_of(on, t).hibernated);
}

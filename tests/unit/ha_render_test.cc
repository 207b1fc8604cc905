// ha/: Patroni's and etcd's files read back by the YAML parser Patroni itself uses (PyYAML,
// Debian's python3-yaml) with hostile values, and the HAProxy section through the real
// `haproxy -c`. (Patroni's --validate-config needs the member's own addresses and a reachable
// etcd: tests/e2e/ha runs it inside the machines.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"
#include "base/exec.h"
#include "ha/ha.h"

namespace {

using namespace hostd;
using nlohmann::json;

// What PyYAML (the parser Patroni and etcd's docs assume; Patroni's own) makes of text, as JSON.
json yaml_load(const std::string& text) {
    auto r = exec({.argv = {"/usr/bin/python3", "-c",
                            "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))"},
                   .input = text});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out);
}

const std::string kHostile = "p\"a'ss\\: #{}[],&*!|>%@`$(x) -- é\u00a0";

ha::PatroniMember member() {
    ha::PatroniMember m;
    m.scope = "shop";
    m.name = "db-1";
    m.restapi_listen = {"10.231.0.2", 8101};
    m.connect_address = "10.231.0.2";
    m.etcd = {{"10.231.0.2", 2379}, {"10.231.0.3", 2379}, {"fd00::4", 2379}};
    m.data_dir = "/srv/hostd/shop/pgdata";
    m.socket_dir = "/run/hostd-tenant/shop";
    m.pgpass = "/srv/hostd/shop/.pgpass";
    m.listen_addresses = {"10.231.0.2", "127.0.0.1"};
    m.pg_port = 5501;
    m.parameters = {{"shared_buffers", "32MB"}, {"application_name", kHostile}};
    m.global_parameters = {{"max_connections", "50"}, {"max_worker_processes", "4"}, {"wal_level", "logical"}};
    m.etcd_tls = {.cert_file = "/srv/hostd/shop/ha/etcd.crt", .key_file = "/srv/hostd/shop/ha/etcd.key",
                  .ca_file = "/srv/hostd/shop/ha/ca.crt"};
    m.tls = {.cert_file = "/srv/hostd/shop/ha/server.crt", .key_file = "/srv/hostd/shop/ha/server.key",
             .ca_file = "/srv/hostd/shop/ha/ca.crt"};
    m.pg_hba = ha::member_hba({"10.231.0.2", "10.231.0.3", "fd00::4"}, "replicator");
    m.pg_hba.push_back("host \"my db\" all 10.0.0.0/8 scram-sha-256 # " + kHostile);
    m.superuser = {"postgres", kHostile};
    m.replication = {"replicator", "r" + kHostile + "\u2603"};
    m.rewind = {"rewinder", "w" + kHostile};
    m.rest = {"hostd", "api" + kHostile};
    m.synchronous_mode = true;
    return m;
}

TEST(HaPatroni, YamlReadsBackEveryValueAsGiven) {
    const auto m = member();
    const std::string text = ha::render_patroni(m);
    json y = yaml_load(text);
    EXPECT_EQ(y["scope"], "shop");
    EXPECT_EQ(y["name"], "db-1");
    EXPECT_EQ(y["namespace"], "/hostd/");
    EXPECT_EQ(y["restapi"]["listen"], "10.231.0.2:8101");
    EXPECT_EQ(y["restapi"]["connect_address"], "10.231.0.2:8101");
    // Basic auth on Patroni's unsafe verbs (switchover, restart, PATCH /config).
    EXPECT_EQ(y["restapi"]["authentication"], json({{"username", "hostd"}, {"password", m.rest.password}}));
    // The v2 API by default (Patroni 3.0.2's etcd3 overwrites the leader key: ha.h EtcdApi).
    EXPECT_EQ(y["etcd"]["hosts"], json({"10.231.0.2:2379", "10.231.0.3:2379", "[fd00::4]:2379"}));
    // Over TLS with the member's own client certificate (its CN is its etcd user).
    EXPECT_EQ(y["etcd"]["protocol"], "https");
    EXPECT_EQ(y["etcd"]["cacert"], "/srv/hostd/shop/ha/ca.crt");
    EXPECT_EQ(y["etcd"]["cert"], "/srv/hostd/shop/ha/etcd.crt");
    EXPECT_EQ(y["etcd"]["key"], "/srv/hostd/shop/ha/etcd.key");
    EXPECT_FALSE(y.contains("etcd3"));
    EXPECT_EQ(y["postgresql"]["listen"], "10.231.0.2,127.0.0.1:5501");
    EXPECT_EQ(y["postgresql"]["connect_address"], "10.231.0.2:5501");
    EXPECT_EQ(y["postgresql"]["data_dir"], m.data_dir);
    EXPECT_EQ(y["postgresql"]["bin_dir"], "/usr/lib/postgresql/15/bin");
    EXPECT_EQ(y["postgresql"]["parameters"]["unix_socket_directories"], m.socket_dir);
    EXPECT_EQ(y["postgresql"]["parameters"]["application_name"], kHostile);
    EXPECT_EQ(y["postgresql"]["parameters"]["wal_sender_timeout"], "5s");  // Patroni 3.0.2's window
    EXPECT_EQ(y["postgresql"]["authentication"]["superuser"]["password"], kHostile);
    EXPECT_EQ(y["postgresql"]["authentication"]["replication"]["password"], m.replication.password);
    EXPECT_EQ(y["postgresql"]["authentication"]["rewind"]["username"], "rewinder");
    EXPECT_EQ(y["postgresql"]["authentication"]["rewind"]["password"], m.rewind.password);
    EXPECT_EQ(y["postgresql"]["pg_hba"], json(m.pg_hba));
    // TLS: the server's files, and the members' connections to each other check certificates.
    EXPECT_EQ(y["postgresql"]["parameters"]["ssl"], "on");
    EXPECT_EQ(y["postgresql"]["parameters"]["ssl_cert_file"], m.tls.cert_file);
    EXPECT_EQ(y["postgresql"]["parameters"]["ssl_key_file"], m.tls.key_file);
    for (const char* role : {"replication", "rewind"}) {
        EXPECT_EQ(y["postgresql"]["authentication"][role]["sslmode"], "verify-full") << role;
        EXPECT_EQ(y["postgresql"]["authentication"][role]["sslrootcert"], m.tls.ca_file) << role;
    }
    EXPECT_FALSE(y["postgresql"]["authentication"]["superuser"].contains("sslmode"));  // the socket directory
    // Settings of the whole scope go to the DCS only, the member's own to its file only.
    EXPECT_EQ(y["bootstrap"]["dcs"]["postgresql"]["parameters"],
              json({{"max_connections", "50"}, {"max_worker_processes", "4"}, {"wal_level", "logical"}}));
    EXPECT_FALSE(y["postgresql"]["parameters"].contains("max_connections"));
    EXPECT_FALSE(y["bootstrap"]["dcs"]["postgresql"]["parameters"].contains("shared_buffers"));
    EXPECT_EQ(y["bootstrap"]["dcs"]["postgresql"]["use_pg_rewind"], true);
    EXPECT_EQ(y["postgresql"]["use_unix_socket_repl"], true);
    EXPECT_EQ(y["bootstrap"]["dcs"]["synchronous_mode"], true);
    EXPECT_EQ(y["bootstrap"]["dcs"]["synchronous_mode_strict"], false);
    EXPECT_EQ(y["bootstrap"]["dcs"]["failsafe_mode"], true);
    EXPECT_EQ(y["bootstrap"]["dcs"]["ttl"], 10);
    EXPECT_EQ(y["bootstrap"]["dcs"]["loop_wait"], 2);
    EXPECT_EQ(y["bootstrap"]["dcs"]["retry_timeout"], 4);
    // The trade-off is stated where an operator reads the file.
    EXPECT_NE(text.find("# A primary that vanishes is replaced once its leader key expires"), std::string::npos);
}

TEST(HaPatroni, MemberHbaReplicationOnlyFromMembersAndEveryTcpLoginOverTls) {
    auto hba = ha::member_hba({"10.0.0.1", "fd00::2"}, "replicator");
    EXPECT_EQ(hba, (std::vector<std::string>{
                       "local all all scram-sha-256",
                       "local replication replicator scram-sha-256",
                       "hostssl all all 127.0.0.1/32 scram-sha-256",
                       "hostssl all all ::1/128 scram-sha-256",
                       "hostssl replication replicator 10.0.0.1/32 scram-sha-256",
                       "hostssl replication replicator fd00::2/128 scram-sha-256",
                       "hostssl all all 0.0.0.0/0 scram-sha-256",
                       "hostssl all all ::/0 scram-sha-256",
                       "hostnossl all all 0.0.0.0/0 reject",
                       "hostnossl all all ::/0 reject",
                   }));
    for (const auto& l : hba) {
        EXPECT_EQ(l.find("trust"), std::string::npos) << l;
        EXPECT_NE(l.rfind("host ", 0), 0u) << l;  // never TCP without TLS
    }
    EXPECT_THROW(ha::member_hba({"db-2"}, "replicator"), Error);  // by name: pg_hba would resolve it
    EXPECT_THROW(ha::member_hba({"10.0.0.1"}, "repl icator"), Error);
}

TEST(HaPatroni, RefusesWhatCouldBreakTheFileOrTheCluster) {
    auto bad = [](auto change, const std::string& field) {
        auto m = member();
        change(m);
        try {
            ha::render_patroni(m);
            ADD_FAILURE() << "accepted a bad " << field;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::invalid);
            EXPECT_EQ(e.field(), field) << e.what();
        }
    };
    bad([](auto& m) { m.scope = "Shop"; }, "scope");
    bad([](auto& m) { m.scope = "../x"; }, "scope");
    bad([](auto& m) { m.name = "db 1"; }, "name");
    bad([](auto& m) { m.etcd_namespace = "/a/b/"; }, "etcd_namespace");
    bad([](auto& m) { m.superuser.password = "a\nb"; }, "superuser");
    bad([](auto& m) { m.replication.password = ""; }, "replication");
    bad([](auto& m) { m.replication.username = "postgres"; }, "replication");
    bad([](auto& m) { m.rewind.username = "replicator"; }, "rewind");
    bad([](auto& m) { m.rest.password = ""; }, "rest");
    bad([](auto& m) { m.rest.password = "a\r\nb"; }, "rest");
    bad([](auto& m) { m.rest.username = "ho:std"; }, "rest");  // basic auth could not carry it
    bad([](auto& m) { m.rest.username = ""; }, "rest");         // a password without a username
    bad([](auto& m) { m.pg_hba.push_back("host all all 0.0.0.0/0 trust\nlocal all all trust"); }, "pg_hba");
    bad([](auto& m) { m.parameters["shared_buffers'"] = "1"; }, "parameters");
    bad([](auto& m) { m.parameters["work_mem"] = "1MB\n"; }, "parameters");
    bad([](auto& m) { m.data_dir = "srv/x"; }, "data_dir");
    bad([](auto& m) { m.connect_address = "10.0.0.1:80"; }, "connect_address");
    bad([](auto& m) { m.etcd.clear(); }, "etcd");
    bad([](auto& m) { m.etcd[0].port = 0; }, "etcd");
    bad([](auto& m) { m.etcd_tls.cert_file = ""; }, "etcd_tls.cert_file");
    bad([](auto& m) { m.etcd_tls.key_file = "etcd.key"; }, "etcd_tls.key_file");
    bad([](auto& m) { m.etcd_tls.ca_file = "/x/ca\n.crt"; }, "etcd_tls.ca_file");
    bad([](auto& m) { m.pg_port = 0; }, "pg_port");
    bad([](auto& m) { m.timing = {.ttl = 10, .loop_wait = 5, .retry_timeout = 5}; }, "timing");
    bad([](auto& m) { m.timing = {.ttl = 10, .loop_wait = 0, .retry_timeout = 4}; }, "timing");
    bad([](auto& m) { m.synchronous_mode = false; m.synchronous_mode_strict = true; }, "synchronous_mode_strict");
    bad([](auto& m) { m.tls.cert_file = ""; }, "tls.cert_file");
    bad([](auto& m) { m.tls.key_file = "server.key"; }, "tls.key_file");
    bad([](auto& m) { m.tls.ca_file = "/x/ca.crt\n"; }, "tls.ca_file");
}

TEST(HaPatroni, SettingsGoWherePatroniTakesThemOrAreRefused) {
    auto refused = [](auto change, const std::string& field, const std::string& words) {
        auto m = member();
        change(m);
        try {
            ha::render_patroni(m);
            ADD_FAILURE() << "accepted a bad " << field << " (" << words << ")";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::invalid);
            EXPECT_EQ(e.field(), field) << e.what();
            EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
        }
    };
    // A shared setting given to one member: Patroni would drop it without a word.
    refused([](auto& m) { m.parameters["max_connections"] = "50"; }, "parameters", "give it in global_parameters");
    refused([](auto& m) { m.parameters["wal_level"] = "logical"; }, "parameters", "global_parameters");
    refused([](auto& m) { m.parameters["max_wal_senders"] = "10"; }, "parameters", "global_parameters");
    // Values Patroni's checks drop.
    refused([](auto& m) { m.global_parameters["max_connections"] = "10"; }, "global_parameters", "at least 25");
    refused([](auto& m) { m.global_parameters["max_connections"] = "1e3"; }, "global_parameters", "integer");
    refused([](auto& m) { m.global_parameters["max_wal_senders"] = "2"; }, "global_parameters", "at least 3");
    refused([](auto& m) { m.global_parameters["max_replication_slots"] = "3"; }, "global_parameters", "at least 4");
    refused([](auto& m) { m.global_parameters["max_worker_processes"] = "1"; }, "global_parameters", "at least 2");
    refused([](auto& m) { m.global_parameters["max_locks_per_transaction"] = "16"; }, "global_parameters", "at least 32");
    refused([](auto& m) { m.global_parameters["wal_level"] = "minimal"; }, "global_parameters", "replica or logical");
    refused([](auto& m) { m.global_parameters["wal_keep_size"] = "8MB"; }, "global_parameters", "16MB");
    refused([](auto& m) { m.global_parameters["track_commit_timestamp"] = "maybe"; }, "global_parameters", "on or off");
    // What Patroni or hostd set themselves.
    for (const char* name : {"port", "listen_addresses", "cluster_name", "hot_standby", "wal_log_hints"}) {
        refused([&](auto& m) { m.parameters[name] = "1"; }, "parameters", "Patroni sets it itself");
        refused([&](auto& m) { m.global_parameters[name] = "1"; }, "global_parameters", "Patroni sets it itself");
    }
    for (const char* name : {"ssl", "ssl_cert_file", "ssl_key_file", "unix_socket_directories"})
        refused([&](auto& m) { m.parameters[name] = "x"; }, "parameters", "hostd sets it");
    refused([](auto& m) { m.global_parameters["shared_buffers"] = "64MB"; }, "global_parameters", "in one of them");
    refused([](auto& m) { m.global_parameters["work_mem"] = "4MB\n"; }, "global_parameters", "control characters");

    // What Patroni keeps is taken.
    auto m = member();
    m.global_parameters = {{"wal_keep_size", "1GB"}, {"max_wal_senders", "5"}, {"track_commit_timestamp", "on"},
                           {"work_mem", "4MB"}};
    json y = yaml_load(ha::render_patroni(m));
    EXPECT_EQ(y["bootstrap"]["dcs"]["postgresql"]["parameters"]["wal_keep_size"], "1GB");
    EXPECT_EQ(y["bootstrap"]["dcs"]["postgresql"]["parameters"]["work_mem"], "4MB");
    m.global_parameters.clear();  // none: no parameters in the DCS (Patroni's defaults)
    y = yaml_load(ha::render_patroni(m));
    EXPECT_FALSE(y["bootstrap"]["dcs"]["postgresql"].contains("parameters"));
}

TEST(HaPatroni, RestApiOpenOnlyWithoutCredentials) {
    auto m = member();
    m.rest = {};
    json y = yaml_load(ha::render_patroni(m));
    EXPECT_FALSE(y["restapi"].contains("authentication")) << y["restapi"].dump();
    EXPECT_EQ(y["restapi"]["listen"], "10.231.0.2:8101");
}

TEST(HaPatroni, StrictSynchronousModeRendered) {
    auto m = member();
    m.synchronous_mode_strict = true;
    json y = yaml_load(ha::render_patroni(m));
    EXPECT_EQ(y["bootstrap"]["dcs"]["synchronous_mode"], true);
    EXPECT_EQ(y["bootstrap"]["dcs"]["synchronous_mode_strict"], true);
}

TEST(HaPatroni, EtcdV3OnlyWhenAsked) {
    auto m = member();
    m.etcd_api = ha::EtcdApi::v3;
    json y = yaml_load(ha::render_patroni(m));
    EXPECT_EQ(y["etcd3"]["hosts"], json({"10.231.0.2:2379", "10.231.0.3:2379", "[fd00::4]:2379"}));
    EXPECT_EQ(y["etcd3"]["protocol"], "https");
    EXPECT_EQ(y["etcd3"]["cert"], "/srv/hostd/shop/ha/etcd.crt");
    EXPECT_FALSE(y.contains("etcd"));
}

// KEY=VALUE lines as systemd's EnvironmentFile= reads them (comments and blank lines skipped; no
// value may need quoting, so none starts with a quote or holds a space, '\\' or '$').
std::map<std::string, std::string> env_load(const std::string& text) {
    std::map<std::string, std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        const auto eq = line.find('=');
        EXPECT_NE(eq, std::string::npos) << line;
        const std::string v = line.substr(eq + 1);
        EXPECT_EQ(v.find_first_of(" \t\"'\\$`"), std::string::npos) << line;
        EXPECT_TRUE(out.emplace(line.substr(0, eq), v).second) << "twice: " << line;
    }
    return out;
}

ha::EtcdMember etcd_member() {
    ha::EtcdMember e;
    e.name = "db-2";
    e.address = "10.231.0.3";
    e.initial_cluster = {{"db-1", "10.231.0.2"}, {"db-2", "10.231.0.3"}, {"db-3", "10.231.0.4"}};
    e.client_tls = {.cert_file = "/etc/hostd/etcd/client.crt", .key_file = "/etc/hostd/etcd/client.key", .ca_file = "/etc/hostd/etcd/ca.crt"};
    e.peer_tls = {.cert_file = "/etc/hostd/etcd/peer.crt", .key_file = "/etc/hostd/etcd/peer.key", .ca_file = "/etc/hostd/etcd/ca.crt"};
    return e;
}

TEST(HaEtcd, EnvironmentReadsBack) {
    const auto y = env_load(ha::render_etcd(etcd_member()));
    EXPECT_EQ(y.at("ETCD_NAME"), "db-2");
    EXPECT_EQ(y.at("ETCD_DATA_DIR"), "/var/lib/etcd/hostd");
    EXPECT_EQ(y.at("ETCD_LISTEN_PEER_URLS"), "https://10.231.0.3:2380");
    EXPECT_EQ(y.at("ETCD_INITIAL_ADVERTISE_PEER_URLS"), "https://10.231.0.3:2380");
    EXPECT_EQ(y.at("ETCD_LISTEN_CLIENT_URLS"), "https://10.231.0.3:2379,https://127.0.0.1:2379");
    EXPECT_EQ(y.at("ETCD_ADVERTISE_CLIENT_URLS"), "https://10.231.0.3:2379");
    EXPECT_EQ(y.at("ETCD_INITIAL_CLUSTER"), "db-1=https://10.231.0.2:2380,db-2=https://10.231.0.3:2380,db-3=https://10.231.0.4:2380");
    EXPECT_EQ(y.at("ETCD_INITIAL_CLUSTER_STATE"), "new");
    EXPECT_EQ(y.at("ETCD_INITIAL_CLUSTER_TOKEN"), "hostd");
    EXPECT_EQ(y.at("ETCD_HEARTBEAT_INTERVAL"), "100");
    EXPECT_EQ(y.at("ETCD_ELECTION_TIMEOUT"), "1000");
    EXPECT_EQ(y.at("ETCD_ENABLE_V2"), "true");  // Patroni 3.0.2's `etcd` DCS
    EXPECT_EQ(y.at("ETCD_ENABLE_GRPC_GATEWAY"), "true");
    // Clients and peers: TLS, a certificate of the CA required; peers with the peers' CN only.
    EXPECT_EQ(y.at("ETCD_CERT_FILE"), "/etc/hostd/etcd/client.crt");
    EXPECT_EQ(y.at("ETCD_KEY_FILE"), "/etc/hostd/etcd/client.key");
    EXPECT_EQ(y.at("ETCD_TRUSTED_CA_FILE"), "/etc/hostd/etcd/ca.crt");
    EXPECT_EQ(y.at("ETCD_CLIENT_CERT_AUTH"), "true");
    EXPECT_EQ(y.at("ETCD_PEER_CERT_FILE"), "/etc/hostd/etcd/peer.crt");
    EXPECT_EQ(y.at("ETCD_PEER_KEY_FILE"), "/etc/hostd/etcd/peer.key");
    EXPECT_EQ(y.at("ETCD_PEER_TRUSTED_CA_FILE"), "/etc/hostd/etcd/ca.crt");
    EXPECT_EQ(y.at("ETCD_PEER_CLIENT_CERT_AUTH"), "true");
    EXPECT_EQ(y.at("ETCD_PEER_CERT_ALLOWED_CN"), "hostd:etcd-peer");
    EXPECT_EQ(y.size(), 22u) << "a new variable: check it above";
    EXPECT_EQ(ha::etcd_endpoints({{"10.0.0.1", 2379}, {"fd00::1", 2379}}), "https://10.0.0.1:2379,https://[fd00::1]:2379");
}

TEST(HaEtcd, EnvironmentIPv6) {
    auto e = etcd_member();
    e.address = "fd00::3";
    e.initial_cluster["db-2"] = "fd00::3";
    const auto y = env_load(ha::render_etcd(e));
    EXPECT_EQ(y.at("ETCD_LISTEN_CLIENT_URLS"), "https://[fd00::3]:2379,https://127.0.0.1:2379");
    EXPECT_EQ(y.at("ETCD_LISTEN_PEER_URLS"), "https://[fd00::3]:2380");
}

TEST(HaEtcd, Refused) {
    const auto e = etcd_member();
    auto refused = [&](auto change, const std::string& field) {
        auto m = e;
        change(m);
        try {
            ha::render_etcd(m);
            ADD_FAILURE() << "accepted, wanted " << field << " refused";
        } catch (const Error& err) {
            EXPECT_EQ(err.field(), field) << err.what();
        }
    };
    refused([](auto& m) { m.initial_cluster.erase("db-2"); }, "initial_cluster");
    refused([](auto& m) { m.initial_cluster["db-2"] = "10.231.0.9"; }, "initial_cluster");
    refused([](auto& m) { m.initial_cluster["db-4"] = "10.231.0.2"; }, "initial_cluster");
    refused([](auto& m) { m.initial_cluster["db=4,x"] = "10.231.0.5"; }, "initial_cluster");
    refused([](auto& m) { m.initial_cluster["db-4"] = "db4.example.com"; }, "initial_cluster");
    refused([](auto& m) { m.peer_port = m.client_port; }, "peer_port");
    refused([](auto& m) { m.election_ms = 200; }, "election_ms");
    refused([](auto& m) { m.client_tls.cert_file = ""; }, "client_tls.cert_file");
    refused([](auto& m) { m.client_tls.key_file = "/etc/hostd/etcd/my key"; }, "client_tls.key_file");
    refused([](auto& m) { m.peer_tls.ca_file = "/etc/hostd/$HOME/ca.crt"; }, "peer_tls.ca_file");
    refused([](auto& m) { m.peer_tls.cert_file = "/etc/\"x\"/peer.crt"; }, "peer_tls.cert_file");
    refused([](auto& m) { m.data_dir = "/var/lib/etcd/a b"; }, "data_dir");
}

ha::HaRoute route() {
    return {.tenant = "shop",
            .bind_address = "127.0.0.1",
            .public_port = 5432,
            .members = {{"db-1", "10.231.0.2", 5501, 8101}, {"db-2", "10.231.0.3", 5501, 8101}, {"db-3", "fd00::4", 5501, 8101}}};
}

TEST(HaHaproxy, ChecksPatroniAndCutsSessionsOfADemotedMember) {
    const std::string s = ha::render_haproxy(route());
    EXPECT_NE(s.find("listen hostd_5432\n"), std::string::npos) << s;
    EXPECT_NE(s.find("    option httpchk GET /primary\n"), std::string::npos) << s;
    EXPECT_NE(s.find("    http-check expect status 200\n"), std::string::npos) << s;
    EXPECT_NE(s.find("on-marked-down shutdown-sessions"), std::string::npos) << s;
    EXPECT_NE(s.find("    server db-2 10.231.0.3:5501 check port 8101\n"), std::string::npos) << s;
    EXPECT_NE(s.find("    server db-3 [fd00::4]:5501 check port 8101\n"), std::string::npos) << s;
    auto ro = route();
    ro.role = ha::Role::replica;
    EXPECT_NE(ha::render_haproxy(ro).find("option httpchk GET /replica\n"), std::string::npos);

    // The real HAProxy accepts it, after a main configuration with http defaults.
    const std::string path = std::filesystem::temp_directory_path() / ("ha-haproxy-" + std::to_string(::getpid()) + ".cfg");
    std::ofstream(path) << "global\n    log stdout local0\ndefaults\n    mode http\n    timeout connect 5s\n"
                           "    timeout client 1m\n    timeout server 1m\n"
                        << s;
    auto r = exec({.argv = {"/usr/sbin/haproxy", "-c", "-f", path}});
    std::filesystem::remove(path);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(HaHaproxy, RefusesWordsThatCouldChangeTheFile) {
    auto r = route();
    r.tenant = "shop\n    server evil 1.2.3.4:5432";
    EXPECT_THROW(ha::render_haproxy(r), Error);
    r = route();
    r.members[1].name = "db-1";  // two servers with one name
    EXPECT_THROW(ha::render_haproxy(r), Error);
    r = route();
    r.members[0].host = "10.0.0.1 backup";
    EXPECT_THROW(ha::render_haproxy(r), Error);
    r = route();
    r.bind_address = "localhost";
    EXPECT_THROW(ha::render_haproxy(r), Error);
    r = route();
    r.members.clear();
    EXPECT_THROW(ha::render_haproxy(r), Error);
}

}  // namespace

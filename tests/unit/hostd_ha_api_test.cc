// The HA peer API (#17) and the host-to-host TLS it shares with the repository host's API: the
// routes it answers, etcd's member from [ha], and a real listener on loopback with certificates
// of a real CA: who is served, who gets 403 and why, and what a client says of a host whose
// certificate is from another CA.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "base/error.h"
#include "base/fs.h"
#include "ha/ha.h"
#include "hostd/ha_api.h"
#include "hostd/peer_client.h"
#include "hostd/peer_server.h"
#include "hostd/peers.h"
#include "pgconf/tls.h"

using namespace hostd;
namespace fs = std::filesystem;

TEST(HaApi, AnswersAJson404ForAMemberItDoesNotHave) {
    auto [status, body] = ha_dispatch("m1", "m2", "GET", "/v1/ha/acme/member", "");
    EXPECT_EQ(status, 404);
    EXPECT_EQ(body["error"]["code"], "not_found");
    EXPECT_NE(body["error"]["message"].get<std::string>().find("HA host 'm1' has no member of tenant 'acme'"), std::string::npos);
    EXPECT_EQ(ha_dispatch("m1", "m2", "PUT", "/v1/ha/acme/member", "").first, 405);
    EXPECT_EQ(ha_dispatch("m1", "m2", "GET", "/v1/ha/acme", "").first, 404);
    EXPECT_EQ(ha_dispatch("m1", "m2", "GET", "/v1/repos/acme", "").first, 404);
    EXPECT_EQ(ha_dispatch("m1", "m2", "GET", "/v1/ha/a/b/member", "").first, 404);
    auto [bad, why] = ha_dispatch("m1", "m2", "GET", "/v1/ha/Bad..Name/member", "");
    EXPECT_EQ(bad, 400);
    EXPECT_EQ(why["error"]["field"], "tenant");
    // Without a handler (no tenants served), each verb of a tenant is a 404; a GET verb 405.
    EXPECT_EQ(ha_dispatch("m1", "m2", "POST", "/v1/ha/acme/prepare", "{}").first, 404);
    EXPECT_EQ(ha_dispatch("m1", "m2", "GET", "/v1/ha/acme/start", "").first, 405);
    EXPECT_EQ(ha_dispatch("m1", "m2", "POST", "/v1/ha/acme/nothing", "{}").first, 404);
}

namespace {

// A host with one member of acme, whose create lists m1 and m3; keeps the update it is given.
struct OneMember final : PeerHandler {
    std::optional<HaSpec> updated;
    std::optional<PeerMember> ha_member(const std::string& t) override {
        if (t != "acme") return std::nullopt;
        return PeerMember{.record_state = "ready", .create_id = "c1", .hosts = {"m1", "m3"}};
    }
    HaMember ha_prepare(const std::string&, const HaPrepare&) override { throw Error(Errc::invalid, "not here"); }
    void ha_start(const std::string&, const HaSpec&) override {}
    void ha_abort(const std::string&, const std::string&) override {}
    void ha_remove(const std::string&, bool) override {}
    void ha_update(const std::string&, const HaSpec& ha) override { updated = ha; }
    std::string password;
    void ha_password(const std::string&, const std::string& pw) override { password = pw; }
    std::optional<LimitsUpdate> limits;
    void ha_limits(const std::string&, const std::string& create_id, const LimitsUpdate& u) override {
        if (create_id != "c1") throw Error(Errc::conflict, "another create");
        limits = u;
    }
};

}  // namespace

TEST(HaApi, AMemberSaysItsCreateAndHostsAndTakesAnUpdateOfItsMembers) {
    OneMember h;
    auto [status, body] = ha_dispatch("m1", "m2", "GET", "/v1/ha/acme/member", "", &h);
    EXPECT_EQ(status, 200);
    EXPECT_EQ(body["create_id"], "c1");
    EXPECT_EQ(body["hosts"], wire::json::array({"m1", "m3"}));
    const HaSpec ha{.create_id = "c1", .initiator = "m1",
                    .members = {{.host = "m1", .address = "10.0.0.1", .public_host = "db1", .pg_port = 1, .rest_port = 2, .public_port = 3},
                                {.host = "m3", .address = "10.0.0.3", .public_host = "db3", .pg_port = 4, .rest_port = 5, .public_port = 6}},
                    .secrets = {.patroni = "p", .replication = "r", .rewind = "w", .rest_password = "x"}};
    const std::string update = wire::json{{"ha", wire::render(ha)}}.dump();
    EXPECT_EQ(ha_dispatch("m1", "m2", "POST", "/v1/ha/acme/update", update, &h).first, 200);
    ASSERT_TRUE(h.updated);
    EXPECT_EQ(*h.updated, ha);
    EXPECT_EQ(ha_dispatch("m1", "m2", "GET", "/v1/ha/acme/update", "", &h).first, 405);
    EXPECT_EQ(ha_dispatch("m1", "m2", "POST", "/v1/ha/acme/update", "{}", &h).first, 400);
    EXPECT_EQ(ha_dispatch("m1", "m2", "POST", "/v1/ha/acme/update", R"({"ha": {"create_id": "c1"}})", &h).first, 400);
    EXPECT_EQ(ha_dispatch("m1", "m2", "POST", "/v1/ha/acme/password", R"({"password": "new pass phrase"})", &h).first, 200);
    EXPECT_EQ(h.password, "new pass phrase");
    EXPECT_EQ(ha_dispatch("m1", "m2", "POST", "/v1/ha/acme/password", R"({"password": 7})", &h).first, 400);
    // A limits change: every field, settings whole.
    const std::string limits = R"({"create_id": "c1", "limits": {"memory": 314572800, "cpu": 1.5, "settings": {"work_mem": "8MB"}}})";
    EXPECT_EQ(ha_dispatch("m1", "m2", "POST", "/v1/ha/acme/limits", limits, &h).first, 200);
    ASSERT_TRUE(h.limits);
    EXPECT_EQ(h.limits->memory, 314572800u);
    EXPECT_EQ(h.limits->settings, (Settings{{"work_mem", "8MB"}}));
    EXPECT_EQ(ha_dispatch("m1", "m2", "POST", "/v1/ha/acme/limits", R"({"create_id": "c2", "limits": {}})", &h).first, 409);
    EXPECT_EQ(ha_dispatch("m1", "m2", "POST", "/v1/ha/acme/limits", R"({"create_id": "c1"})", &h).first, 400);
    EXPECT_EQ(ha_dispatch("m1", "m2", "POST", "/v1/ha/acme/limits", R"({"create_id": "c1", "limits": {"memory": "x"}})", &h).first, 400);
}

TEST(HaApi, PatronisTimingDefaultsAreTheHaLibrarys) {
    const Config c;
    const ha::Timing t;
    EXPECT_EQ(c.ha_ttl, static_cast<uint64_t>(t.ttl));
    EXPECT_EQ(c.ha_loop_wait, static_cast<uint64_t>(t.loop_wait));
    EXPECT_EQ(c.ha_retry_timeout, static_cast<uint64_t>(t.retry_timeout));
}

TEST(HaApi, EtcdsMemberIsThisHostInAClusterOfTheEtcdHosts) {
    Config c = parse_config("[ha]\naddress = \"10.0.0.2\"\nhosts = [\"m1=10.0.0.1\", \"m2=10.0.0.2\", \"m3=10.0.0.3\", "
                            "\"m4=10.0.0.4\", \"m5=10.0.0.5\"]\netcd_hosts = [\"m1\", \"m2\", \"m3\"]\n"
                            "etcd_client_port = 3379\netcd_peer_port = 3380\n",
                            "t");
    const ha::EtcdMember m = etcd_member(c, "m2");
    EXPECT_EQ(m.name, "m2");
    EXPECT_EQ(m.address, "10.0.0.2");
    EXPECT_EQ(m.client_port, 3379);
    EXPECT_EQ(m.peer_port, 3380);
    EXPECT_EQ(m.initial_cluster, (std::map<std::string, std::string>{{"m1", "10.0.0.1"}, {"m2", "10.0.0.2"}, {"m3", "10.0.0.3"}}));
    EXPECT_TRUE(m.enable_v2) << "Patroni 3.0.2 speaks etcd's v2 API (README: High availability)";
    EXPECT_EQ(m.data_dir, "/var/lib/etcd/hostd") << "hostd-etcd.service's StateDirectory=etcd/hostd";
    EXPECT_EQ(m.client_tls.cert_file, "/etc/hostd/etcd/client.crt");
    EXPECT_EQ(m.client_tls.key_file, "/etc/hostd/etcd/client.key");
    EXPECT_EQ(m.peer_tls.cert_file, "/etc/hostd/etcd/peer.crt");
    EXPECT_EQ(m.peer_tls.key_file, "/etc/hostd/etcd/peer.key");
    EXPECT_EQ(m.client_tls.ca_file, "/etc/hostd/etcd/ca.crt");
    EXPECT_EQ(m.peer_tls.ca_file, "/etc/hostd/etcd/ca.crt");
    const std::string env = ha::render_etcd(m);
    EXPECT_NE(env.find("\nETCD_INITIAL_CLUSTER=m1=https://10.0.0.1:3380,m2=https://10.0.0.2:3380,m3=https://10.0.0.3:3380\n"),
              std::string::npos)
        << env;
    EXPECT_NE(env.find("\nETCD_ENABLE_V2=true\n"), std::string::npos) << env;
}

TEST(HaApi, TheShippedEtcdUnitRunsEtcdAsItsUserOnHostdsFile) {
    const std::string unit = read_file(std::string(HOSTD_SOURCE_DIR) + "/hostd/hostd-etcd.service");
    for (const char* line : {"User=etcd\n", "StateDirectory=etcd/hostd\n", "EnvironmentFile=/etc/hostd/etcd.env\n", "ExecStart=/usr/bin/etcd\n",
                             "Type=notify\n", "WantedBy=multi-user.target\n"})
        EXPECT_NE(unit.find(line), std::string::npos) << line;
    EXPECT_EQ(std::string(kEtcdConfig), "/etc/hostd/etcd.env");
    EXPECT_EQ(unit.find("ExecStart=/usr/bin/etcd --config-file"), std::string::npos) << "etcd 3.4 would ignore every ETCD_* variable";
}

namespace {

uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

struct Files {
    std::string cert, key;
};

// A host's or tenant's certificate from the CA under dir, written to dir/<file>.{crt,key}.
Files issue(const fs::path& dir, const std::string& cn, const std::string& file, bool client = true) {
    const pgconf::CaPaths ca{.cert = dir / "ca/ca.crt", .key = dir / "ca/ca.key"};
    pgconf::ensure_ca(ca);
    const auto pair = pgconf::issue_cert(ca, {.cn = cn, .names = {"127.0.0.1"}, .server = true, .client = client});
    Files f{(dir / (file + ".crt")).string(), (dir / (file + ".key")).string()};
    fs::create_directories(fs::path(f.cert).parent_path());
    write_file_atomic(f.cert, pair.cert_pem, 0644);
    write_file_atomic(f.key, pair.key_pem, 0600);
    return f;
}

class APeerListener : public ::testing::Test {
protected:
    fs::path dir, other;
    uint16_t port = 0;
    std::unique_ptr<PeerServer> server;
    std::string last_client;

    void SetUp() override {
        char tmpl[] = "/tmp/hostd-peer-test.XXXXXX";
        dir = ::mkdtemp(tmpl);
        char tmpl2[] = "/tmp/hostd-peer-other.XXXXXX";
        other = ::mkdtemp(tmpl2);
        port = free_port();
        const Files self = issue(dir, "hostd@m1", "ha/host");
        const pgconf::CaPaths ca{.cert = dir / "ca/ca.crt", .key = dir / "ca/ca.key"};
        server = std::make_unique<PeerServer>(
            PeerServerOptions{.what = "HA peer API", .listen = "127.0.0.1:" + std::to_string(port), .field = "ha.address",
                              .cert_pem = read_file(self.cert), .key_pem = read_file(self.key),
                              .ca_pem = pgconf::ca_certificate_pem(ca), .ca_path = ca.cert,
                              .allowed_hosts = std::set<std::string>{"m1", "m2"},
                              .allowed_hint = "is not one of this host's [ha] hosts"},
            [this](const std::string& client, const std::string& method, const std::string& url, const std::string& body) {
                last_client = client;
                return ha_dispatch("m1", client, method, url, body);
            });
    }
    void TearDown() override {
        server.reset();
        fs::remove_all(dir);
        fs::remove_all(other);
    }

    peer::Reply get(const Files& client, const std::string& ca) {
        return peer::perform({.what = "HA host 'm1'", .unreachable = "is it up?", .other_ca = "copy the CA"},
                             "https://127.0.0.1:" + std::to_string(port) + "/v1/ha/acme/member",
                             {.cert = client.cert, .key = client.key, .ca = ca}, "GET", nullptr, 10);
    }
    std::string message(const peer::Reply& r) { return wire::json::parse(r.body)["error"]["message"]; }
};

}  // namespace

TEST_F(APeerListener, ServesAHostOfTheFleetWithACertificateOfTheCA) {
    const peer::Reply r = get(issue(dir, "hostd@m2", "m2"), dir / "ca/ca.crt");
    EXPECT_EQ(r.status, 404) << r.body;
    EXPECT_EQ(last_client, "m2") << "the client's host comes from its certificate";
    EXPECT_NE(message(r).find("no member of tenant 'acme'"), std::string::npos) << r.body;
}

TEST_F(APeerListener, RefusesEveryOtherClientWith403SayingWhy) {
    const std::string ca = dir / "ca/ca.crt";
    const peer::Reply none = get({}, ca);
    EXPECT_EQ(none.status, 403);
    EXPECT_NE(message(none).find("only clients with a certificate"), std::string::npos) << none.body;
    const peer::Reply tenant = get(issue(dir, "acme@m2", "tenant"), ca);
    EXPECT_EQ(tenant.status, 403);
    EXPECT_NE(message(tenant).find("CN 'acme@m2' is not a host's"), std::string::npos) << tenant.body;
    const peer::Reply stranger = get(issue(dir, "hostd@x", "x"), ca);
    EXPECT_EQ(stranger.status, 403);
    EXPECT_NE(message(stranger).find("host 'x' is not one of this host's [ha] hosts"), std::string::npos) << stranger.body;
    const peer::Reply server_only = get(issue(dir, "hostd@m2", "m2-server", /*client=*/false), ca);
    EXPECT_EQ(server_only.status, 403);
    EXPECT_NE(message(server_only).find("not for client use"), std::string::npos) << server_only.body;
    // m2 with a certificate of another CA (its own, made when it first started alone).
    const peer::Reply foreign = get(issue(other, "hostd@m2", "m2"), ca);
    EXPECT_EQ(foreign.status, 403);
    EXPECT_NE(message(foreign).find("not from this host's CA"), std::string::npos) << foreign.body;
    EXPECT_NE(message(foreign).find("copy " + ca), std::string::npos) << foreign.body;
    EXPECT_EQ(last_client, "") << "no refused request reached the dispatch";
}

TEST_F(APeerListener, TheClientSaysWhichFileToCopyWhenTheServersCertificateIsFromAnotherCA) {
    const Files m2 = issue(other, "hostd@m2", "m2");
    try {
        get(m2, other / "ca/ca.crt");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::unavailable);
        EXPECT_NE(std::string(e.what()).find("HA host 'm1' has a certificate that is not from this host's CA (" +
                                             (other / "ca/ca.crt").string() + "): hosts that talk to each other share one CA; copy the CA"),
                  std::string::npos)
            << e.what();
    }
}

TEST_F(APeerListener, PeersAskAHostForItsMemberAndGreetIt) {
    // m2's view: its state_dir holds the shared CA and its own certificate under ha/.
    fs::create_directories(other / "state/ca");
    fs::copy_file(dir / "ca/ca.crt", other / "state/ca/ca.crt");
    fs::copy_file(dir / "ca/ca.key", other / "state/ca/ca.key");
    issue(other / "state", "hostd@m2", "ha/host");
    Config cfg = parse_config("[ha]\naddress = \"127.0.0.2\"\nhosts = [\"m1=127.0.0.1\", \"m2=127.0.0.2\", \"m3=127.0.0.3\"]\n"
                              "api_port = " + std::to_string(port) + "\n", "t");
    cfg.state_dir = other / "state";
    auto peers = make_real_peers(cfg, cfg.state_dir + "/ha");
    EXPECT_EQ(peers->status("m1", "acme"), std::nullopt);
    EXPECT_NO_THROW(peers->hello("m1"));
    EXPECT_THROW(peers->status("m9", "acme"), Error);
    EXPECT_THROW(peers->status("m1", "../x"), Error);
    // m1 answers at m3's address: its certificate is not m3's.
    cfg.ha_hosts = {"m1=127.0.0.9", "m2=127.0.0.2", "m3=127.0.0.1"};
    try {
        make_real_peers(cfg, cfg.state_dir + "/ha")->hello("m3");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("presents the certificate of 'hostd@m1', not hostd@m3"), std::string::npos) << e.what();
    }
}

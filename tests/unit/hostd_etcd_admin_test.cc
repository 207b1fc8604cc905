// hostd's etcd admin client against a real etcd (Debian's etcd-server 3.4, a make deps package)
// run here as a child process on 127.0.0.1 with TLS and client-cert-auth as ha::render_etcd
// configures it, certificates from a CA made for the test: auth turned on (twice: idempotent),
// a tenant's certificate reaching its own scope only, a certificate that is no user reaching
// nothing (etcd's guest), what a client set while auth was off undone, revoke and remove_scope.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "base/curl.h"
#include "base/error.h"
#include "base/fs.h"
#include "ha/ha.h"
#include "hostd/etcd_admin.h"
#include "hostd/peer_client.h"
#include "pgconf/tls.h"

extern char** environ;

namespace {

using namespace hostd;

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

// etcd as a child, configured by ha::render_etcd's environment; killed (its pid) at the end.
class Etcd : public ::testing::Test {
protected:
    std::string dir;
    pgconf::CaPaths ca;
    std::string endpoint;
    pid_t pid = -1;

    void write_pair(const std::string& prefix, const pgconf::PemPair& p) {
        write_file_atomic(dir + "/" + prefix + ".key", p.key_pem, 0600);
        write_file_atomic(dir + "/" + prefix + ".crt", p.cert_pem, 0644);
    }

    void SetUp() override {
        if (::access("/usr/bin/etcd", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/etcd (etcd-server: make deps)";
        char tmpl[] = "/tmp/hostd-etcd-admin-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir = tmpl;
        ca = {.cert = dir + "/ca/ca.crt", .key = dir + "/ca/ca.key"};
        pgconf::ensure_ca(ca);
        write_pair("server", pgconf::issue_cert(ca, {.cn = "hostd@h1", .names = {"h1", "127.0.0.1"}, .server = true, .client = true}));
        write_pair("peer", pgconf::issue_cert(ca, {.cn = ha::kEtcdPeerCn, .names = {"h1", "127.0.0.1"}, .server = true, .client = true}));
        write_pair("root", issue_etcd_root_cert(ca));
        write_pair("a", issue_etcd_tenant_cert(ca, "a"));
        write_pair("b", issue_etcd_tenant_cert(ca, "b"));
        write_pair("repo", pgconf::issue_cert(ca, {.cn = "a@h1", .names = {}, .server = false, .client = true}));

        ha::EtcdMember m;
        m.name = "h1";
        m.address = "127.0.0.1";
        m.client_port = free_port();
        m.peer_port = free_port();
        m.initial_cluster = {{"h1", "127.0.0.1"}};
        m.data_dir = dir + "/data";
        m.client_tls = {.cert_file = dir + "/server.crt", .key_file = dir + "/server.key", .ca_file = ca.cert};
        m.peer_tls = {.cert_file = dir + "/peer.crt", .key_file = dir + "/peer.key", .ca_file = ca.cert};
        endpoint = ha::etcd_endpoints({{"127.0.0.1", m.client_port}});
        std::vector<std::string> env;
        for (char** e = environ; *e; e++)
            if (!std::string_view(*e).starts_with("ETCD")) env.push_back(*e);
        std::istringstream in(ha::render_etcd(m));
        for (std::string line; std::getline(in, line);)
            if (!line.empty() && line[0] != '#') env.push_back(line);
        std::vector<char*> envp;
        for (auto& e : env) envp.push_back(e.data());
        envp.push_back(nullptr);
        std::string log = dir + "/etcd.log";
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        char* argv[] = {const_cast<char*>("/usr/bin/etcd"), nullptr};
        ASSERT_EQ(::posix_spawn(&pid, argv[0], &fa, nullptr, argv, envp.data()), 0);
        posix_spawn_file_actions_destroy(&fa);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (status("root", "GET", "/version") != 200) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << read_file(log);
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }

    void TearDown() override {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        if (!dir.empty()) std::filesystem::remove_all(dir);
    }

    std::unique_ptr<EtcdAdmin> admin() {
        return make_real_etcd_admin({.endpoints = {endpoint}, .cert = dir + "/root.crt", .key = dir + "/root.key", .ca = ca.cert});
    }

    // A v2 request with the certificate of who ("" none): its status, 0 when TLS refused it.
    long status(const std::string& who, const std::string& method, const std::string& path, const std::string& form = "") {
        curl::Easy c(curl_easy_init());
        std::string body;
        const std::string url = endpoint + path, cert = dir + "/" + who + ".crt", key = dir + "/" + who + ".key";
        curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
        curl_easy_setopt(c.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
        if (!who.empty()) {
            curl_easy_setopt(c.get(), CURLOPT_SSLCERT, cert.c_str());
            curl_easy_setopt(c.get(), CURLOPT_SSLKEY, key.c_str());
        }
        curl_easy_setopt(c.get(), CURLOPT_CAINFO, ca.cert.c_str());
        curl_easy_setopt(c.get(), CURLOPT_TIMEOUT, 5L);
        curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, curl::collect);
        curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &body);
        if (!form.empty()) curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, form.c_str());
        if (curl_easy_perform(c.get()) != CURLE_OK) return 0;
        long code = 0;
        curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &code);
        return code;
    }
};

TEST(EtcdAdminNames, TenantUserAndCertificate) {
    EXPECT_EQ(etcd_tenant_user("shop"), "tenant:shop");
    EXPECT_EQ(etcd_scope_key("shop"), "/hostd/shop");
    EXPECT_THROW(etcd_tenant_user("a/b"), Error);
    EXPECT_THROW(etcd_tenant_user(""), Error);
    EXPECT_THROW(etcd_scope_key("*"), Error);
}

TEST_F(Etcd, ATenantReachesItsOwnScopeOnly) {
    EXPECT_EQ(status("", "GET", "/version"), 0) << "no client certificate: TLS refused";
    admin()->ensure_auth();
    admin()->ensure_auth();  // idempotent
    admin()->grant_tenant("a");
    admin()->grant_tenant("a");
    EXPECT_EQ(status("a", "PUT", "/v2/keys/hostd/a/x", "value=1"), 201);
    EXPECT_EQ(status("a", "PUT", "/v2/keys/hostd/a/x", "value=2"), 200);
    EXPECT_EQ(status("a", "GET", "/v2/keys/hostd/a/?recursive=true"), 200);
    EXPECT_EQ(status("a", "GET", "/v2/keys/hostd/a/x?wait=true&waitIndex=1"), 200) << "a watch (Patroni's)";
    EXPECT_EQ(status("a", "PUT", "/v2/keys/hostd/b/x", "value=1"), 401);
    EXPECT_EQ(status("a", "GET", "/v2/keys/hostd/b/x"), 401);
    EXPECT_EQ(status("a", "GET", "/v2/keys/hostd"), 401) << "no listing of the other scopes";
    EXPECT_EQ(status("a", "GET", "/v2/keys/?recursive=true"), 401);
    EXPECT_EQ(status("a", "PUT", "/v2/keys/hostd/ab/x", "value=1"), 401) << "a prefix of another name";
    EXPECT_EQ(status("a", "PUT", "/v2/auth/users/tenant:b", R"({"user":"tenant:b","password":"x","roles":["root"]})"), 401);
    // b has no user yet: etcd's guest, which may do nothing; nor a tenant's repository certificate.
    EXPECT_EQ(status("b", "PUT", "/v2/keys/hostd/b/x", "value=1"), 401);
    EXPECT_EQ(status("repo", "GET", "/v2/keys/hostd/a/x"), 401);
    EXPECT_EQ(status("root", "GET", "/v2/keys/hostd/a/x"), 200);

    admin()->grant_tenant("b");
    EXPECT_EQ(status("b", "PUT", "/v2/keys/hostd/b/x", "value=1"), 201);
    admin()->remove_scope("a");
    admin()->remove_scope("a");  // none left: fine
    EXPECT_EQ(status("root", "GET", "/v2/keys/hostd/a/x"), 404);
    EXPECT_EQ(status("root", "GET", "/v2/keys/hostd/b/x"), 200);
    admin()->revoke_tenant("a");
    admin()->revoke_tenant("a");
    EXPECT_EQ(status("a", "PUT", "/v2/keys/hostd/a/x", "value=1"), 401);
    EXPECT_EQ(status("b", "PUT", "/v2/keys/hostd/b/y", "value=1"), 201);
}

TEST_F(Etcd, WhatAClientSetBeforeAuthIsUndone) {
    // Auth off: anyone with a certificate of the CA may change users and roles.
    // (A user created with roles answers 200, a role 201.)
    ASSERT_EQ(status("repo", "PUT", "/v2/auth/users/root", R"({"user":"root","password":"known","roles":["root"]})"), 200);
    ASSERT_EQ(status("repo", "PUT", "/v2/auth/users/a@h1", R"({"user":"a@h1","password":"x","roles":["root"]})"), 200);
    ASSERT_EQ(status("repo", "PUT", "/v2/auth/roles/everything",
                     R"({"role":"everything","permissions":{"kv":{"read":["/*"],"write":["/*"]}}})"),
              201);
    ASSERT_EQ(status("repo", "PUT", "/v2/auth/users/tenant:a", R"({"user":"tenant:a","password":"x","roles":["everything"]})"), 200);
    ASSERT_EQ(status("repo", "PUT", "/v2/auth/roles/tenant:b",
                     R"({"role":"tenant:b","permissions":{"kv":{"read":["/*"],"write":["/hostd/b/*","/hostd/a/*"]}}})"),
              201);
    admin()->ensure_auth();
    EXPECT_EQ(status("repo", "PUT", "/v2/keys/hostd/a/x", "value=1"), 401) << "a@h1 was removed: a guest";
    EXPECT_EQ(status("a", "PUT", "/v2/keys/hostd/b/x", "value=1"), 401) << "tenant:a has its own role only";
    EXPECT_EQ(status("a", "PUT", "/v2/keys/hostd/a/x", "value=1"), 201);
    admin()->grant_tenant("b");
    EXPECT_EQ(status("b", "PUT", "/v2/keys/hostd/b/x", "value=1"), 201);
    EXPECT_EQ(status("b", "PUT", "/v2/keys/hostd/a/x", "value=1"), 401) << "tenant:b's role set to its scope";
    EXPECT_EQ(status("b", "GET", "/v2/keys/hostd/a/x"), 401);
    // root's password is no longer the one set before: basic auth with it is refused.
    curl::Easy c(curl_easy_init());
    std::string url = endpoint + "/v2/auth/users", cert = dir + "/repo.crt", key = dir + "/repo.key", body;
    curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(c.get(), CURLOPT_SSLCERT, cert.c_str());
    curl_easy_setopt(c.get(), CURLOPT_SSLKEY, key.c_str());
    curl_easy_setopt(c.get(), CURLOPT_CAINFO, ca.cert.c_str());
    curl_easy_setopt(c.get(), CURLOPT_USERPWD, "root:known");
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, curl::collect);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &body);
    ASSERT_EQ(curl_easy_perform(c.get()), CURLE_OK);
    long code = 0;
    curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &code);
    EXPECT_EQ(code, 401) << body;
}

TEST_F(Etcd, NoEndpointAnswering) {
    auto a = make_real_etcd_admin({.endpoints = {"https://127.0.0.1:1"}, .cert = dir + "/root.crt", .key = dir + "/root.key", .ca = ca.cert,
                                   .timeout_s = 2});
    try {
        a->grant_tenant("a");
        ADD_FAILURE() << "no etcd there";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::unavailable) << e.what();
    }
}

}  // namespace

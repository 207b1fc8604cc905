// The Traefik writer: rendering against expected files in tests/data/routes/
// (HOSTD_UPDATE_GOLDEN=1 rewrites them), the check every file passes before it lands, and
// apply_traefik on a temp directory. The official JSON schema is checked by
// tests/traefik_schema_test.sh on what the writer puts in a directory.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "base/error.h"
#include "base/fs.h"
#include "golden.h"
#include "routes/routes.h"

using namespace hostd;
using namespace hostd::routes;
namespace fs = std::filesystem;

namespace {

Route port_route(const std::string& tenant, uint16_t public_port, uint16_t backend_port) {
    return {.tenant = tenant, .bind_address = "0.0.0.0", .public_port = public_port, .backend_host = "127.0.0.1",
            .backend_port = backend_port};
}

Route sni_route(const std::string& tenant, uint16_t backend_port) {
    auto r = port_route(tenant, 5432, backend_port);
    r.sni_host = tenant + ".db.example.com";
    return r;
}

// The error code f throws; nullopt if it does not throw.
std::optional<Errc> code_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.code();
    }
    return std::nullopt;
}

class TraefikDir : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/hostd-traefik-test.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        s_.directory = dir_ + "/dynamic";
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }
    std::vector<std::string> files() const {
        std::vector<std::string> out;
        for (auto& e : fs::directory_iterator(s_.directory)) out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }
    std::string dir_;
    TraefikSettings s_;
};

}  // namespace

TEST(RenderTraefik, SniRouteMatchesTheExpectedFile) {
    hostd::test::expect_golden("routes/traefik-sni.toml", render_traefik({}, sni_route("acme", 25001)));
}

TEST(RenderTraefik, PortRouteMatchesTheExpectedFile) {
    hostd::test::expect_golden("routes/traefik-port.toml", render_traefik({}, port_route("acme", 28001, 25001)));
}

TEST(RenderTraefik, PutsIpv6BackendsInBrackets) {
    auto r = port_route("v6", 28001, 25001);
    r.backend_host = "::1";
    auto text = render_traefik({}, r);
    EXPECT_NE(text.find("[::1]:25001"), std::string::npos) << text;
    check_traefik_file(text);
}

TEST(RenderTraefik, RefusesValuesThatAreNotNamesOrAddresses) {
    auto bad_sni = sni_route("acme", 25001);
    bad_sni.sni_host = "acme`) || HostSNI(`*";
    EXPECT_EQ(code_of([&] { render_traefik({}, bad_sni); }), Errc::invalid);
    bad_sni.sni_host = "Acme.example.com";  // clients send SNI in lower case
    EXPECT_EQ(code_of([&] { render_traefik({}, bad_sni); }), Errc::invalid);
    auto bad_tenant = port_route("a\"b", 28001, 25001);
    EXPECT_EQ(code_of([&] { render_traefik({}, bad_tenant); }), Errc::invalid);
    auto no_port = port_route("acme", 0, 25001);
    EXPECT_EQ(code_of([&] { render_traefik({}, no_port); }), Errc::invalid);
}

TEST(CheckTraefikFile, AcceptsWhatTheWriterRenders) {
    check_traefik_file(render_traefik({}, sni_route("acme", 25001)));
    check_traefik_file(render_traefik({}, port_route("acme", 28001, 25001)));
}

TEST(CheckTraefikFile, RefusesAnythingElse) {
    const std::string good = render_traefik({}, sni_route("acme", 25001));
    auto replaced = [&](const std::string& from, const std::string& to) {
        std::string s = good;
        auto p = s.find(from);
        EXPECT_NE(p, std::string::npos) << from;
        return s.replace(p, from.size(), to);
    };
    for (const std::string& text : {
             std::string("[tcp.routers.x\nrule = 1\n"),                         // not TOML
             std::string(""),                                                  // nothing
             replaced("passthrough = true", "passthrough = false"),            // would terminate TLS in Traefik
             replaced("passthrough = true", "passthrough = 'yes'"),            // wrong type
             replaced("service = 'hostd-acme'", "service = 'hostd-other'"),    // dangling reference
             replaced("HostSNI(`acme.db.example.com`)", "Host(`acme`)"),        // not a TCP rule of ours
             replaced("HostSNI(`acme.db.example.com`)", "HostSNI(`*`)"),        // TLS route for every name
             replaced("address = '127.0.0.1:25001'", "address = '127.0.0.1'"),  // no port
             good + "\n[http.routers.x]\nrule = 'Host(`a`)'\n",                // more than ours
             replaced("passthrough = true", "passthrough = true\noptions = 'x'"),
         }) {
        SCOPED_TRACE(text);
        EXPECT_EQ(code_of([&] { check_traefik_file(text); }), Errc::failed);
    }
    // A host-name rule without TLS cannot work: SNI is part of TLS.
    const std::string port = render_traefik({}, port_route("acme", 28001, 25001));
    std::string s = port;
    s.replace(s.find("HostSNI(`*`)"), 12, "HostSNI(`acme.db.example.com`)");
    EXPECT_EQ(code_of([&] { check_traefik_file(s); }), Errc::failed);
}

TEST_F(TraefikDir, WritesOneFilePerRouteAndNothingWhenNothingChanged) {
    EXPECT_TRUE(apply_traefik(s_, {sni_route("acme", 25001), sni_route("beta", 25002)}));
    EXPECT_EQ(files(), (std::vector<std::string>{"hostd-acme.toml", "hostd-beta.toml"}));
    EXPECT_EQ(read_file(s_.directory + "/hostd-acme.toml"), render_traefik(s_, sni_route("acme", 25001)));
    struct stat st{};
    ASSERT_EQ(::stat((s_.directory + "/hostd-acme.toml").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
    ino_t before = st.st_ino;
    EXPECT_FALSE(apply_traefik(s_, {sni_route("beta", 25002), sni_route("acme", 25001)}));
    ASSERT_EQ(::stat((s_.directory + "/hostd-acme.toml").c_str(), &st), 0);
    EXPECT_EQ(st.st_ino, before) << "an unchanged file is not rewritten (Traefik would rebuild for nothing)";
}

TEST_F(TraefikDir, RemovesRoutesOfTenantsNoLongerRoutedAndLeavesOtherFilesAlone) {
    apply_traefik(s_, {sni_route("acme", 25001), sni_route("beta", 25002)});
    write_file_atomic(s_.directory + "/dashboard.toml", "[http.routers.dash]\nrule = 'Host(`x`)'\n");
    write_file_atomic(s_.directory + "/hostd-notes.txt", "operator's\n");
    write_file_atomic(s_.directory + "/.hostd-gone.toml.123.tmp", "half a file from a crash");
    EXPECT_TRUE(apply_traefik(s_, {sni_route("beta", 25002)}));
    EXPECT_EQ(files(), (std::vector<std::string>{"dashboard.toml", "hostd-beta.toml", "hostd-notes.txt"}));
    EXPECT_TRUE(apply_traefik(s_, {}));
    EXPECT_EQ(files(), (std::vector<std::string>{"dashboard.toml", "hostd-notes.txt"}));
}

TEST_F(TraefikDir, ChangesNothingWhenAnyRouteIsRefused) {
    apply_traefik(s_, {port_route("acme", 28001, 25001)});
    const auto before = read_file(s_.directory + "/hostd-acme.toml");
    auto bad = port_route("b/ad", 28002, 25002);
    EXPECT_EQ(code_of([&] { apply_traefik(s_, {port_route("acme", 28005, 25001), bad}); }), Errc::invalid);
    EXPECT_EQ(code_of([&] {
                  apply_traefik(s_, {port_route("acme", 28005, 25001), port_route("beta", 28005, 25002)});
              }),
              Errc::conflict);
    EXPECT_EQ(code_of([&] { apply_traefik(s_, {port_route("acme", 28005, 25001), port_route("acme", 28006, 25001)}); }),
              Errc::invalid);
    EXPECT_EQ(files(), (std::vector<std::string>{"hostd-acme.toml"}));
    EXPECT_EQ(read_file(s_.directory + "/hostd-acme.toml"), before);
}

TEST_F(TraefikDir, TheWriterInterfaceAppliesTheSameWay) {
    auto w = traefik_writer(s_);
    EXPECT_TRUE(w->apply({sni_route("acme", 25001)}, false));
    EXPECT_FALSE(w->apply({sni_route("acme", 25001)}, true)) << "nothing to reload: Traefik watches the directory";
    EXPECT_EQ(files(), (std::vector<std::string>{"hostd-acme.toml"}));
}

TEST(RenderHaproxy, RefusesHostNameRoutes) {
    EXPECT_EQ(code_of([] { render_haproxy({sni_route("acme", 25001)}); }), Errc::invalid);
}

TEST(RenderTraefikStatic, SharedEntryPointForSniOrOnePerPort) {
    TraefikSettings s;
    auto sni = render_traefik_static(s, "0.0.0.0", 5432, 28000, 28999);
    EXPECT_NE(sni.find("[entryPoints.postgres]\naddress = ':5432'"), std::string::npos) << sni;
    EXPECT_EQ(sni.find("hostd-28000"), std::string::npos);
    EXPECT_NE(sni.find("directory = '/etc/traefik/hostd'"), std::string::npos);
    auto ports = render_traefik_static(s, "127.0.0.1", 0, 28000, 28002);
    for (int p : {28000, 28001, 28002})
        EXPECT_NE(ports.find("[entryPoints.hostd-" + std::to_string(p) + "]\naddress = '127.0.0.1:" + std::to_string(p) + "'"),
                  std::string::npos)
            << ports;
    EXPECT_EQ(ports.find("hostd-28003"), std::string::npos);
}

TEST(IsDnsName, LowerCaseLabels) {
    for (const char* ok : {"a", "db.example.com", "x-1.y2"}) EXPECT_TRUE(is_dns_name(ok)) << ok;
    for (const char* bad : {"", ".a", "a.", "a..b", "-a.b", "a-.b", "A.b", "a_b", "a b", "a/b", "a`b"})
        EXPECT_FALSE(is_dns_name(bad)) << bad;
    EXPECT_FALSE(is_dns_name(std::string(64, 'a')));
}

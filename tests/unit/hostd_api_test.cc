// The HTTP API as a hostile client sees it: raw bytes over the real Unix socket to the real
// ApiServer, with a Manager over a fake machine. Every request that reaches hostd is answered
// with a complete HTTP response whose body is JSON (or the /metrics text), whatever the bytes,
// and the server keeps answering.
#include <gtest/gtest.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "base/error.h"
#include "base/fd.h"
#include "hostd/collector.h"
#include "hostd/http.h"
#include "hostd/manager.h"
#include "wire/wire.h"

using namespace hostd;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// A machine where every verb succeeds at once (init_cluster after init_delay): the requests'
// parsing and the server are under test here, not the plans (hostd_manager_test has those).
class QuietEffects final : public Effects {
public:
    std::chrono::milliseconds init_delay{0};
    bool port_free(uint16_t) override { return true; }
    void create_image(const std::string&, uint64_t) override {}
    void remove_image(const std::string&) override {}
    std::string attach_image(const std::string&) override { return "/dev/loop9"; }
    void detach_image(const std::string&) override {}
    void grow_image(const std::string&, uint64_t) override {}
    storage::DeviceCheck check_device(const std::string& d, bool) override { return {.path = d}; }
    uint64_t device_size(const std::string&) override { return 1ull << 30; }
    void erase_signatures(const std::string&) override {}
    void wipe_device(const std::string&, const std::string&) override {}
    void format(const std::string&, const std::string&, const std::string&, const std::string&) override {}
    void mount(const TenantRecord&, const TenantLayout&, bool) override {}
    void unmount(const TenantLayout&) override {}
    void grow_filesystem(const TenantRecord&, const TenantLayout&) override {}
    void grow_offline(const TenantRecord&) override {}
    std::optional<storage::DiskStats> disk_usage(const TenantLayout&) override { return std::nullopt; }
    void ensure_reserve(const TenantLayout&, uint64_t) override {}
    uint64_t release_reserve(const TenantLayout&) override { return 0; }
    void set_read_only(const TenantRecord&, const TenantLayout&, bool) override {}
    units::OsUser create_user(const std::string& name, const std::string&) override { return {name, 1000, 1000}; }
    void delete_user(const std::string&) override {}
    std::optional<units::OsUser> find_user(const std::string&) override { return std::nullopt; }
    Inventory inventory() override { return {}; }
    void init_cluster(const TenantRecord&, const TenantLayout&, const units::OsUser&) override { std::this_thread::sleep_for(init_delay); }
    void adopt_cluster(const TenantRecord&, const TenantLayout&, const units::OsUser&) override {}
    void prepare_backups(const TenantRecord&, const TenantLayout&, bool) override {}
    void run_backup(const TenantRecord&, const TenantLayout&, backup::BackupType) override {}
    backup::Info backup_info(const TenantRecord&, const TenantLayout&) override { return {}; }
    backup::RepoUsage repository_usage(const TenantLayout&) override { return {}; }
    std::vector<FailedBackupUnit> failed_backup_units() override { return {}; }
    void arm_backup_timers(const TenantRecord&, const TenantLayout&) override {}
    bool backup_running(const TenantLayout&) override { return false; }
    BranchCopy restore_cluster(const TenantRecord&, const TenantRecord&, const TenantLayout&, const units::OsUser&,
                               const backup::Target&) override {
        return BranchCopy::restored;
    }
    void hand_over_branch(const TenantRecord&, const TenantLayout&) override {}
    bool has_repository(const std::string&) override { return false; }
    void hand_repository(const TenantLayout&, const units::OsUser&) override {}
    void remove_repository(const std::string&) override {}
    void forget_remote_backups(const TenantLayout&, bool) override {}
    void retire_remote_backups(const TenantLayout&) override {}
    void start_unit(const TenantLayout&, uint16_t, const units::Limits&) override {}
    void wait_ready(const TenantRecord&, const TenantLayout&, int) override {}
    void wait_routed(const std::string&, uint16_t, const std::string&, int) override {}
    void ensure_monitor_login(const TenantRecord&, const TenantLayout&) override {}
    void create_monitor_role(const TenantRecord&, const TenantLayout&, int) override {}
    void write_member_files(const TenantRecord&, const TenantLayout&, const units::OsUser&, const std::string&) override {}
    void create_ha_admin(const TenantRecord&, const TenantLayout&, int) override {}
    bool ha_scope_in_use(const std::string&) override { return false; }
    void grant_ha_scope(const std::string&) override {}
    void forget_ha_scope(const std::string&) override {}
    std::set<std::string> pool_images(const std::string&) override { return {}; }
    void prepare_pool_cluster(const pool::Disk&, const std::string&) override {}
    void format_pool_disk(const pool::Disk&, const std::string&) override {}
    void stop_pool_jobs() override {}
    void rename_image(const std::string&, const std::string&) override {}
    void relabel(const TenantRecord&) override {}
    void hand_over_cluster(const TenantRecord&, const TenantLayout&, const pool::Disk&, const std::string&) override {}
    std::vector<units::Listener> tcp_listeners() override { return {}; }
    std::vector<pid_t> kill_socket_holders(uid_t, uint64_t) override { return {}; }
    Located locate_device(const TenantRecord& t) override { return {.device = t.device, .device_id = t.device_id}; }
    DiskFacts disk_facts(const TenantRecord&, const TenantLayout&) override { return {}; }
    LoopSpace loop_space(const std::vector<std::string>&) override { return {.available = 1ull << 40}; }
    void stop_unit(const TenantLayout&) override {}
    bool unit_active(const TenantLayout&) override { return true; }
    void reload_unit(const TenantLayout&) override {}
    void restart_unit(const TenantLayout&, uint16_t, const units::Limits&) override {}
    std::map<std::string, LiveStatus> unit_states() override { return {}; }
    std::string ping(const TenantRecord&, const TenantLayout&) override { return ""; }
    bool grows_online(const TenantRecord&) override { return true; }
    std::vector<std::string> apply_limits(const TenantRecord&, const TenantLayout&) override { return {}; }
    void set_unit_limits(const TenantRecord&, const TenantLayout&) override {}
    std::optional<std::vector<std::string>> pending_restart(const TenantRecord&, const TenantLayout&) override { return std::nullopt; }
    void set_password(const TenantRecord&, const TenantLayout&, const std::string&) override {}
    void set_ha_password(const TenantRecord&, const HaMember&, const std::string&) override {}
    void wait_sql(const std::string&, uint16_t, const std::string&, const std::string&, int, const std::string&) override {}
    void apply_routes(const std::vector<routes::Route>&, bool) override {}
    void ensure_unit_template() override {}
    std::string ca_certificate() override { return "-----BEGIN CERTIFICATE-----\n"; }
    LiveStatus live_status(const TenantRecord&, const TenantLayout&) override { return {}; }
    std::string patroni_cluster(const HaMember& m) override { throw Error(Errc::unavailable, "no Patroni on " + m.host); }
    std::string patroni_switchover(const HaMember& m, const ha::Credentials&, const ha::Switchover&) override {
        throw Error(Errc::unavailable, "no Patroni on " + m.host);
    }
    void patroni_patch_parameters(const HaMember& m, const ha::Credentials&, const std::map<std::string, std::string>&) override {
        throw Error(Errc::unavailable, "no Patroni on " + m.host);
    }
};

class QuietObserver final : public Observer {
public:
    std::map<std::string, std::string> unit_states() override { return {}; }
    std::set<std::string> mounted() override { return {}; }
    storage::DiskStats disk(const std::string& mp) override { throw Error(Errc::not_found, "nothing mounted at " + mp); }
    CgroupUsage cgroup(const std::string&) override { return {}; }
    uint32_t restarts(const std::string&) override { return 0; }
    bool pg_up(const TenantRecord&, const std::string&) override { return false; }
    PgFacts pg_facts(const TenantRecord&, const std::string&) override { throw Error(Errc::unavailable, "down"); }
    std::string patroni_cluster(const HaMember& m) override { throw Error(Errc::unavailable, "no Patroni on " + m.host); }
};

// One HTTP response as read off the socket until the server closed it.
struct Reply {
    bool any = false;       // the server wrote something
    bool complete = false;  // status line, headers and the whole body (by Content-Length or chunks)
    int status = 0;
    std::map<std::string, std::string> headers;  // names in lower case
    std::string body;
    std::string raw;
    std::string type() const {
        auto it = headers.find("content-type");
        return it == headers.end() ? "" : it->second;
    }
};

Reply parse_reply(const std::string& raw, bool head) {
    Reply r;
    r.raw = raw;
    r.any = !raw.empty();
    auto end = raw.find("\r\n\r\n");
    if (end == std::string::npos || raw.compare(0, 5, "HTTP/") != 0) return r;
    auto sp = raw.find(' ');
    r.status = std::atoi(raw.c_str() + sp + 1);
    size_t pos = raw.find("\r\n") + 2;
    while (pos < end) {
        auto eol = raw.find("\r\n", pos);
        std::string line = raw.substr(pos, eol - pos);
        auto colon = line.find(':');
        if (colon != std::string::npos) {
            std::string name = line.substr(0, colon);
            for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            auto v = line.find_first_not_of(' ', colon + 1);
            r.headers[name] = v == std::string::npos ? "" : line.substr(v);
        }
        pos = eol + 2;
    }
    std::string rest = raw.substr(end + 4);
    if (head) {
        r.complete = rest.empty();
        return r;
    }
    if (r.headers.count("transfer-encoding") && r.headers["transfer-encoding"] == "chunked") {
        size_t p = 0;
        while (true) {
            auto eol = rest.find("\r\n", p);
            if (eol == std::string::npos) return r;
            size_t n = std::strtoul(rest.c_str() + p, nullptr, 16);
            p = eol + 2;
            if (n == 0) break;
            if (rest.size() < p + n + 2) return r;
            r.body += rest.substr(p, n);
            p += n + 2;
        }
        r.complete = true;
    } else if (r.headers.count("content-length")) {
        size_t n = std::strtoul(r.headers["content-length"].c_str(), nullptr, 10);
        r.complete = rest.size() >= n;
        r.body = rest.substr(0, n);
    } else {
        r.body = rest;
        r.complete = true;  // delimited by the close
    }
    return r;
}

Fd connect_unix(const std::string& path) {
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) return Fd();
    return fd;
}

// Reads until the server closes the connection or timeout passes without a byte.
std::string read_all(int fd, std::chrono::milliseconds timeout) {
    std::string out;
    char buf[65536];
    while (true) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) break;
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

// Sends bytes (as much as the server takes: it may answer and close early) and reads the reply.
Reply roundtrip(const std::string& sock, std::string_view bytes, bool head = false, bool half_close = false,
               std::chrono::milliseconds timeout = 3000ms) {
    Fd fd = connect_unix(sock);
    if (!fd) return {};
    size_t off = 0;
    while (off < bytes.size()) {
        ssize_t n = ::send(fd.get(), bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
    }
    if (half_close) ::shutdown(fd.get(), SHUT_WR);
    return parse_reply(read_all(fd.get(), timeout), head);
}

std::string request(const std::string& method, const std::string& target, const std::string& body = "",
                    const std::string& extra_headers = "") {
    std::string r = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" + extra_headers;
    if (!body.empty()) r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    return r + "\r\n" + body;
}

// A temp dir with a Manager over a quiet machine and the ApiServer on a Unix socket in it.
class AnApiServer : public ::testing::Test {
protected:
    void SetUp() override {
        dir = std::filesystem::temp_directory_path() / ("hostd-api-" + std::to_string(::getpid()) + "-" +
                                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        cfg.state_dir = (dir / "state").string();
        cfg.loop_dir = (dir / "loop").string();
        cfg.mount_root = (dir / "srv").string();
        sock = (dir / "api.sock").string();
    }
    void start(ApiServer::Limits limits = {}) {
        auto fx = std::make_unique<QuietEffects>();
        effects = fx.get();
        manager = std::make_unique<Manager>(cfg, std::move(fx));
        manager->load();
        collector = std::make_unique<Collector>(
            TenantSource{.records = [this] { return manager->snapshot(); }, .op_stats = [this] { return manager->op_stats(); }},
            std::make_unique<QuietObserver>(), cfg, "1.2.3");
        listen_fd = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strcpy(a.sun_path, sock.c_str());
        ASSERT_EQ(::bind(listen_fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        ASSERT_EQ(::listen(listen_fd.get(), 128), 0);
        api = std::make_unique<ApiServer>(*manager, listen_fd.get(), ::getgid(), collector.get(), limits);
    }
    void TearDown() override {
        api.reset();
        std::filesystem::remove_all(dir);
    }
    // The server is alive: a plain list answers 200 with JSON.
    void expect_alive() {
        Reply r = roundtrip(sock, request("GET", "/v1/tenants"));
        ASSERT_TRUE(r.complete) << "hostd no longer answers: " << r.raw;
        EXPECT_EQ(r.status, 200);
        EXPECT_FALSE(json::parse(r.body, nullptr, false).is_discarded()) << r.body;
    }
    // The reply is complete and its body JSON (an object with "error" for a 4xx/5xx).
    static void expect_json_reply(const Reply& r, const std::string& what) {
        ASSERT_TRUE(r.complete) << what << "\nreply: " << r.raw;
        ASSERT_EQ(r.type().rfind("application/json", 0), 0u) << what << "\nreply: " << r.raw;
        json j = json::parse(r.body, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << what << "\nbody is not JSON (or not UTF-8): " << r.body;
        if (r.status >= 400) {
            EXPECT_TRUE(j.contains("error")) << what << "\n" << r.body;
        }
    }

    std::filesystem::path dir;
    Config cfg;
    std::string sock;
    QuietEffects* effects = nullptr;
    std::unique_ptr<Manager> manager;
    std::unique_ptr<Collector> collector;
    Fd listen_fd;
    std::unique_ptr<ApiServer> api;
};

}  // namespace

TEST_F(AnApiServer, AnswersAPathThatIsNotUtf8With400JsonAndKeepsRunning) {
    start();
    for (std::string target : {"/v1/tenants/%FF", "/%C3%28", "/v1/tenants/a%ED%A0%80", "/v1/\xff\xfe", "/v1/tenants/\xc0\xaf"}) {
        Reply r = roundtrip(sock, request("GET", target));
        expect_json_reply(r, target);
        EXPECT_EQ(r.status, 400) << target;
        EXPECT_NE(r.body.find("UTF-8"), std::string::npos) << r.body;
    }
    expect_alive();
}

TEST_F(AnApiServer, AnswersAQueryStringHeaderMethodOrBodyThatIsNotUtf8With400Json) {
    start();
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"query value", request("GET", "/v1/tenants?live=%FF")},
        {"query key", request("DELETE", "/v1/tenants/acme?\xff=1")},
        {"header value", request("GET", "/v1/tenants", "", "X-Name: \xff\xfe\r\n")},
        {"header name", request("GET", "/v1/tenants", "", "X-\xc3\x28: 1\r\n")},
        {"method", request("G\xffT", "/v1/tenants")},
        {"body outside a string", request("PUT", "/v1/tenants/acme", "{\"memory\": \xff}")},
        {"body inside a string", request("PUT", "/v1/tenants/acme", "{\"memory\": \"5\xc0\xafM\"}")},
        {"body of a GET", request("GET", "/v1/tenants", "\xff\xff")},
    };
    for (auto& [what, bytes] : cases) {
        Reply r = roundtrip(sock, bytes);
        expect_json_reply(r, what);
        EXPECT_EQ(r.status, 400) << what << ": " << r.body;
    }
    expect_alive();
}

TEST_F(AnApiServer, RoutesTheLifecycleVerbsAndAnswersTheTenantOrWhyNot) {
    start();
    ASSERT_EQ(roundtrip(sock, request("PUT", "/v1/tenants/acme", "{}")).status, 201);
    for (const char* verb : {"stop", "start", "restart"}) {
        Reply r = roundtrip(sock, request("POST", std::string("/v1/tenants/acme/") + verb, ""));
        expect_json_reply(r, verb);
        EXPECT_EQ(r.status, 200) << verb << ": " << r.body;
        EXPECT_NE(r.body.find("\"live_state\""), std::string::npos) << r.body;
        EXPECT_EQ(roundtrip(sock, request("POST", std::string("/v1/tenants/nobody/") + verb, "{}")).status, 404) << verb;
        EXPECT_EQ(roundtrip(sock, request("POST", std::string("/v1/tenants/acme/") + verb, "{\"now\":true}")).status, 400)
            << verb << ": a verb without a body refuses fields";
    }
    EXPECT_EQ(roundtrip(sock, request("POST", "/v1/tenants/acme/pause", "{}")).status, 404);
    // A switchover is an HA tenant's: a plain one is refused (409), a bad body is 400, no tenant 404.
    Reply r = roundtrip(sock, request("POST", "/v1/tenants/acme/switchover", ""));
    expect_json_reply(r, "switchover");
    EXPECT_EQ(r.status, 409) << r.body;
    EXPECT_NE(r.body.find("not an HA tenant"), std::string::npos) << r.body;
    EXPECT_EQ(roundtrip(sock, request("POST", "/v1/tenants/acme/switchover", "{\"to\":\"db2\"}")).status, 409);
    EXPECT_EQ(roundtrip(sock, request("POST", "/v1/tenants/acme/switchover", "{\"to\":2}")).status, 400);
    EXPECT_EQ(roundtrip(sock, request("POST", "/v1/tenants/nobody/switchover", "{}")).status, 404);
    expect_alive();
}

TEST_F(AnApiServer, RefusesANulInThePathOrQueryInsteadOfCuttingTheNameThere) {
    start();
    ASSERT_EQ(roundtrip(sock, request("PUT", "/v1/tenants/acme", "{}")).status, 201);
    // Cut at the NUL, this would delete "acme".
    for (std::string target : {"/v1/tenants/acme%00junk", "/v1/tenants/acme?purge=1%00", "/v1/tenants/acme?%00=1"}) {
        Reply r = roundtrip(sock, request("DELETE", target));
        expect_json_reply(r, target);
        EXPECT_EQ(r.status, 400) << target << ": " << r.body;
    }
    EXPECT_EQ(roundtrip(sock, request("GET", "/v1/tenants/acme")).status, 200);
}

TEST_F(AnApiServer, AnswersABodyOverOneMebibyteWith413Json) {
    start();
    std::string big = "{\"settings\": {\"x\": \"" + std::string(2 << 20, 'a') + "\"}}";
    Reply r = roundtrip(sock, request("PUT", "/v1/tenants/acme", big));
    expect_json_reply(r, "Content-Length over the limit");
    EXPECT_EQ(r.status, 413);
    // Chunked: no length to refuse up front; the whole body is read and thrown away.
    std::string chunked = "PUT /v1/tenants/acme HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 40; i++) chunked += "10000\r\n" + std::string(0x10000, 'a') + "\r\n";
    chunked += "0\r\n\r\n";
    r = roundtrip(sock, chunked);
    expect_json_reply(r, "chunked body over the limit");
    EXPECT_EQ(r.status, 413);
    expect_alive();
}

TEST_F(AnApiServer, RefusesABodyNestedDeeperThanARequestNeeds) {
    start();
    for (size_t depth : {40ul, 500000ul}) {
        std::string deep = "{\"settings\": " + std::string(depth, '[') + std::string(depth, ']') + "}";
        Reply r = roundtrip(sock, request("PUT", "/v1/tenants/acme", deep));
        expect_json_reply(r, "depth " + std::to_string(depth));
        EXPECT_EQ(r.status, 400);
        EXPECT_NE(r.body.find("nest"), std::string::npos) << r.body;
    }
    expect_alive();
}

// A GoogleTest loop over generated requests: random and mutated methods, paths, query strings,
// headers and bodies (invalid UTF-8, NULs, huge numbers, deep nesting, long fields), each over
// a new connection. Seed: HOSTD_FUZZ_SEED (default fixed, so a failure reproduces).
TEST_F(AnApiServer, AnswersEveryGeneratedRequestWithACompleteJsonReplyAndStaysUp) {
    start();
    const char* seed_env = std::getenv("HOSTD_FUZZ_SEED");
    const unsigned seed = seed_env ? static_cast<unsigned>(std::strtoul(seed_env, nullptr, 10)) : 18u;
    std::mt19937 rng(seed);
    auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
    auto chance = [&](int pct) { return static_cast<int>(pick(100)) < pct; };
    auto random_bytes = [&](size_t n, bool framing_safe) {
        std::string s;
        while (s.size() < n) {
            char c = static_cast<char>(pick(256));
            if (framing_safe && (c == ' ' || c == '\r' || c == '\n' || c == '\0' || c == '#' || c == '?')) continue;
            s += c;
        }
        return s;
    };
    const std::vector<std::string> nasty = {"%FF", "%00", "%C3%28", "%C0%AF", "%ED%A0%80", "%F4%90%80%80", "%E2%82",
                                            "\xff", "\xc3\x28", "\xe2\x82", "%25", "%", "%G1", "..", "//", "\xc3\xa9",
                                            "%0A", "%0D%0A", "%20", "+", "\t", "\x7f", "\x01"};
    auto mutate = [&](std::string s, bool framing_safe) {
        for (int k = 1 + static_cast<int>(pick(3)); k > 0; k--) {
            size_t at = s.empty() ? 0 : pick(s.size() + 1);
            switch (pick(5)) {
            case 0: s.insert(at, nasty[pick(nasty.size())]); break;
            case 1: s.insert(at, random_bytes(1 + pick(8), framing_safe)); break;
            case 2: if (at < s.size()) s.erase(at, 1 + pick(4)); break;
            case 3: if (at < s.size()) s[at] = random_bytes(1, framing_safe)[0]; break;
            case 4: s.insert(at, std::string(1 + pick(3000), 'a')); break;
            }
        }
        return s;
    };
    const std::vector<std::string> methods = {"GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "BREW"};
    const std::vector<std::string> paths = {"/v1/tenants", "/v1/tenants/acme", "/v1/tenants/acme/resize",
                                            "/v1/tenants/acme/password", "/v1/host",
                                            "/v1/tenants/acme/stop", "/v1/tenants/acme/start", "/v1/tenants/acme/restart",
                                            "/v1/tenants/acme/switchover", "/v1/ca", "/v1/reconcile", "/metrics", "/", "/v1/tenants/", "/v2"};
    const std::vector<std::string> queries = {"", "?live=1", "?progress=1", "?purge=true", "?live=1&live=0", "?a=b&c"};
    std::vector<std::string> bodies = {
        "", "{}", "{\"memory\":\"512M\"}", "{\"disk_size\":\"2G\",\"cpu\":0.5,\"tasks\":64}",
        "{\"settings\":{\"work_mem\":\"64MB\",\"jit\":false,\"max_connections\":50}}", "{\"size\":\"4G\"}",
        "{\"memory\":99999999999999999999999999}", "{\"cpu\":1e400}", "{\"tasks\":-1}", "{\"disk_size\":1.5e308}",
        "{\"memory\":\"\\u0000\"}", "{\"settings\":{\"a\\u0000b\":\"1\"}}", "{\"reuse\":true,\"reuse\":\"x\"}",
        "{\"password\":\"a\\u0000b-long-enough\"}", "{\"set_settings\":{\"work_mem\":\"8MB\"},\"unset_settings\":[\"jit\"]}",
        "{\"reset_settings\":true,\"settings\":{}}",
        "[1,2]", "null", "\"x\"", "{\"backend\":\"device\",\"device\":\"/dev/\\ud800\"}",
        "{\"settings\":" + std::string(100, '[') + std::string(100, ']') + "}", std::string(5000, '{'),
        "{\"memory\":\"" + std::string(100000, '9') + "\"}", std::string("{\"a\":\"\0\"}", 9)};
    const bool verbose = std::getenv("HOSTD_FUZZ_VERBOSE") != nullptr;
    const auto t0 = std::chrono::steady_clock::now();
    int n = 0;
    std::map<int, int> statuses;
    for (; n < 6000 && std::chrono::steady_clock::now() - t0 < 8s; n++) {
        std::string method = chance(85) ? methods[pick(methods.size())] : random_bytes(1 + pick(10), true);
        std::string path = paths[pick(paths.size())];
        if (chance(30)) path += "x" + std::to_string(pick(5));
        if (chance(60)) path = mutate(path, true);
        if (path.empty() || path[0] != '/') path = "/" + path;
        std::string query = queries[pick(queries.size())];
        if (chance(30)) query = "?" + mutate(query.empty() ? "k=v" : query.substr(1), true);
        std::string body = bodies[pick(bodies.size())];
        if (chance(50)) body = mutate(body, false);
        std::string headers;
        if (chance(15)) headers += "X-Fuzz: " + mutate("value", true) + "\r\n";
        const std::string bytes = request(method, path + query, body, headers);
        const std::string what = "request #" + std::to_string(n) + " (seed " + std::to_string(seed) + "): " +
                                 json(bytes.substr(0, 300)).dump(-1, ' ', true, json::error_handler_t::replace);
        if (verbose) std::cerr << what << "\n";
        Reply r = roundtrip(sock, bytes, method == "HEAD");
        ASSERT_TRUE(r.complete) << what << "\nreply: " << r.raw;
        statuses[r.status]++;
        const std::string type = r.type();
        if (type.rfind("text/plain", 0) == 0) {
            EXPECT_EQ(path, "/metrics") << what;  // the exposition, or its 500 text
        } else if (type.rfind("application/x-ndjson", 0) == 0) {
            EXPECT_EQ(method, "PUT") << what;
            size_t lines = 0;
            for (size_t p = 0; p < r.body.size();) {
                auto eol = r.body.find('\n', p);
                ASSERT_NE(eol, std::string::npos) << what << "\n" << r.body;
                ASSERT_FALSE(json::parse(r.body.substr(p, eol - p), nullptr, false).is_discarded()) << what << "\n" << r.body;
                p = eol + 1;
                lines++;
            }
            EXPECT_GE(lines, 1u) << what;
        } else if (method != "HEAD") {
            expect_json_reply(r, what);
            if (HasFatalFailure()) return;
        }
        if (n % 100 == 99) {
            expect_alive();
            if (HasFatalFailure()) return;
        }
    }
    std::cerr << n << " generated requests in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count() << " ms; by status:";
    for (auto& [status, count] : statuses) std::cerr << " " << status << "×" << count;
    std::cerr << "\n";
    expect_alive();
}

// Bytes that are not HTTP at all, or HTTP cut short: libmicrohttpd answers what it cannot
// parse itself (400/413/414/431/505, its own text) or closes; hostd never dies of it.
TEST_F(AnApiServer, SurvivesBytesThatAreNotHttp) {
    start();
    std::mt19937 rng(7);
    auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
    const std::vector<std::string> seeds = {request("PUT", "/v1/tenants/acme", "{\"memory\":\"512M\"}"),
                                            request("GET", "/v1/tenants?live=1"), "GET / HTTP/9.9\r\n\r\n",
                                            "GET /v1/tenants HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: h\r\n\r\nzz\r\n"};
    const auto t0 = std::chrono::steady_clock::now();
    for (int n = 0; n < 1000 && std::chrono::steady_clock::now() - t0 < 10s; n++) {
        std::string s = seeds[pick(seeds.size())];
        for (int k = 0; k < 1 + static_cast<int>(pick(6)); k++) {
            size_t at = pick(s.size() + 1);
            if (pick(2)) s.insert(at, 1, static_cast<char>(pick(256)));
            else if (at < s.size()) s[at] = static_cast<char>(pick(256));
        }
        if (pick(10) == 0) s = std::string(1 + pick(40000), static_cast<char>(pick(256)));
        Reply r = roundtrip(sock, s, false, true, 1500ms);
        if (r.any && r.complete && r.type().rfind("application/json", 0) == 0) {
            EXPECT_FALSE(json::parse(r.body, nullptr, false).is_discarded()) << r.raw;
        }
    }
    expect_alive();
}

TEST_F(AnApiServer, ClosesAConnectionThatSendsNothingForTheIdleTimeout) {
    start({.idle_timeout = 1});
    Fd idle = connect_unix(sock);
    ASSERT_TRUE(idle);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(read_all(idle.get(), 6000ms), "");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s) << "the idle connection was not closed";
    expect_alive();
}

TEST_F(AnApiServer, NeverCutsACreateWhoseStepOutlastsTheIdleTimeout) {
    start({.idle_timeout = 1});
    effects->init_delay = 1600ms;  // initdb on a loaded host: no line for longer than the timeout
    Reply r = roundtrip(sock, request("PUT", "/v1/tenants/slow?progress=1", "{}"), false, false, 10000ms);
    ASSERT_TRUE(r.complete) << r.raw;
    EXPECT_NE(r.body.find("\"done\":true"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("\"status\":201"), std::string::npos) << r.body;
    r = roundtrip(sock, request("PUT", "/v1/tenants/slower", "{}"), false, false, 10000ms);
    EXPECT_EQ(r.status, 201) << r.raw;
    // The streamed request's connection gets its timeout back for what follows on it.
    Fd conn = connect_unix(sock);
    std::string req = "PUT /v1/tenants/third?progress=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}";
    ASSERT_EQ(::send(conn.get(), req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    const auto t0 = std::chrono::steady_clock::now();
    std::string got = read_all(conn.get(), 8000ms);  // the streamed reply, then idle until closed
    EXPECT_NE(got.find("\"status\":201"), std::string::npos) << got;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 6s) << "the kept-alive connection was never closed";
}

TEST_F(AnApiServer, ClosesConnectionsPastTheLimitAndServesAgainOnceIdleOnesTimeOut) {
    start({.max_connections = 3, .idle_timeout = 1});
    std::vector<Fd> idle;
    for (int i = 0; i < 3; i++) idle.push_back(connect_unix(sock));
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(roundtrip(sock, request("GET", "/v1/tenants"), false, false, 3000ms).status, 0) << "served past the limit";
    std::this_thread::sleep_for(1500ms);  // the idle ones are gone
    expect_alive();
}

TEST(AMetricsListener, ClosesConnectionsPastThePerAddressLimitAndIdleOnes) {
    Config cfg;
    auto dir = std::filesystem::temp_directory_path() / ("hostd-metrics-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    cfg.state_dir = (dir / "state").string();
    Manager manager(cfg, std::make_unique<QuietEffects>());
    manager.load();
    Collector collector({.records = [&] { return manager.snapshot(); }, .op_stats = [&] { return manager.op_stats(); }},
                        std::make_unique<QuietObserver>(), cfg, "1.2.3");
    Fd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(lfd.get(), reinterpret_cast<sockaddr*>(&a), len), 0);
    ASSERT_EQ(::listen(lfd.get(), 64), 0);
    ASSERT_EQ(::getsockname(lfd.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    auto server = ApiServer::metrics_only(manager, lfd.get(), collector, {.max_connections = 16, .max_per_ip = 2, .idle_timeout = 1});
    auto connect_tcp = [&] {
        Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        return fd;
    };
    auto scrape = [&](int fd) {
        std::string req = request("GET", "/metrics");
        (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
        return parse_reply(read_all(fd, 3000ms), false);
    };
    Fd one = connect_tcp(), two = connect_tcp();
    std::this_thread::sleep_for(200ms);
    Fd three = connect_tcp();
    EXPECT_EQ(scrape(three.get()).status, 0) << "a third connection from one address was served";
    // The two idle ones are closed after the timeout; then a scrape is served again.
    EXPECT_EQ(read_all(one.get(), 4000ms), "");
    std::this_thread::sleep_for(200ms);
    Fd four = connect_tcp();
    Reply r = scrape(four.get());
    EXPECT_EQ(r.status, 200) << r.raw;
    EXPECT_NE(r.body.find("hostd_build_info"), std::string::npos);
    server.reset();
    std::filesystem::remove_all(dir);
}

// The list's text is kept while nothing changes (Manager::list_generation): every change a
// verb makes shows in the next list, and the kept text is what a fresh rendering would be.
TEST_F(AnApiServer, TheListShowsEveryChangeAtOnceThoughItsTextIsKeptBetweenChanges) {
    start();
    auto list = [&] {
        Reply r = roundtrip(sock, request("GET", "/v1/tenants"));
        EXPECT_EQ(r.status, 200) << r.raw;
        EXPECT_EQ(r.body, wire::render_text(manager->list())) << "the kept text is what the tenants render to now";
        return json::parse(r.body)["tenants"];
    };
    EXPECT_TRUE(list().empty());
    ASSERT_EQ(roundtrip(sock, request("PUT", "/v1/tenants/acme", "{}")).status, 201);
    const uint64_t after_create = manager->list_generation();
    ASSERT_EQ(list().size(), 1u);
    EXPECT_EQ(list()[0]["stopped"], false);
    EXPECT_EQ(manager->list_generation(), after_create) << "a list changes nothing";
    ASSERT_EQ(roundtrip(sock, request("POST", "/v1/tenants/acme/stop", "")).status, 200);
    EXPECT_EQ(list()[0]["stopped"], true) << "the stop shows in the next list";
    ASSERT_EQ(roundtrip(sock, request("PUT", "/v1/tenants/beta", "{}")).status, 201);
    ASSERT_EQ(list().size(), 2u);
    ASSERT_EQ(roundtrip(sock, request("DELETE", "/v1/tenants/acme?purge=1")).status, 200);
    const json after = list();
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0]["name"], "beta");
}

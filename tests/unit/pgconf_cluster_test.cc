// initdb and libpq for real. The *Root suites need root and Debian's PostgreSQL 15; they run
// initdb as the existing `postgres` system user into their own directory under /var/tmp, start
// that cluster with pg_ctl on a free loopback port, and always stop and remove it. They never
// touch another cluster (Debian's 15/main included).

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>

#include <openssl/evp.h>

#include "base/error.h"
#include "base/exec.h"
#include "base/fd.h"
#include "base/fs.h"
#include "pgconf/pgconf.h"

using namespace hostd;
using namespace hostd::pgconf;
namespace fs = std::filesystem;

namespace {

const std::string kBindir = "/usr/lib/postgresql/15/bin";

bool port_is_free(uint16_t port) {
    Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

uint16_t free_port() {
    std::mt19937 rng{std::random_device{}()};
    for (int i = 0; i < 200; i++) {
        auto p = static_cast<uint16_t>(25000 + rng() % 3000);
        if (port_is_free(p)) return p;
    }
    throw Error(Errc::unavailable, "No free port in 25000-27999");
}

// A throwaway cluster owned by `postgres`: a directory of its own, stopped and removed when
// the test ends, whatever happened.
class Scratch {
public:
    Scratch() {
        passwd* pw = ::getpwnam("postgres");
        if (!pw) throw Error(Errc::not_found, "No 'postgres' user");
        uid = pw->pw_uid;
        gid = pw->pw_gid;
        char tmpl[] = "/var/tmp/hostd-pgconf-test.XXXXXX";
        if (!::mkdtemp(tmpl)) throw_errno(errno, "mkdtemp");
        dir = tmpl;
        if (::chown(dir.c_str(), uid, gid) < 0) throw_errno(errno, "chown");
        pgdata = dir + "/pgdata";
        sockdir = dir + "/sock";
        if (::mkdir(sockdir.c_str(), 0700) < 0 || ::chown(sockdir.c_str(), uid, gid) < 0) throw_errno(errno, "sockdir");
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    ~Scratch() {
        if (path_exists(pgdata + "/postmaster.pid")) {
            try {
                exec({.argv = {kBindir + "/pg_ctl", "-D", pgdata, "-m", "fast", "-w", "-t", "60", "stop"},
                      .uid = uid, .gid = gid});
            } catch (...) {
            }
        }
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    void start() {
        exec_checked({.argv = {kBindir + "/pg_ctl", "-D", pgdata, "-l", dir + "/postgres.log", "-w", "-t", "60", "start"},
                      .uid = uid, .gid = gid},
                     "pg_ctl start (log: " + dir + "/postgres.log)");
    }

    uid_t uid;
    gid_t gid;
    std::string dir, pgdata, sockdir;
};

bool can_run_root_tests(std::string& why) {
    if (::geteuid() != 0) why = "needs root";
    else if (!::getpwnam("postgres")) why = "needs the 'postgres' user (Debian's postgresql package)";
    else if (!path_exists(kBindir + "/initdb")) why = "needs " + kBindir + "/initdb";
    return why.empty();
}

}  // namespace

TEST(Initdb, RefusesAPasswordWithALineBreakBeforeRunningAnything) {
    try {
        initdb({.bindir = kBindir, .pgdata = "/nonexistent/pgdata", .superuser = "u", .password = "a\nb"},
               {.tenant = "t", .port = 25000, .socket_dir = "/run/x"});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid);
        EXPECT_EQ(e.field(), "password");
    }
}

TEST(SyncFilesystem, SyncsAnExistingPathAndReportsAMissingOne) {
    EXPECT_NO_THROW(sync_filesystem("/var/tmp"));
    EXPECT_THROW(sync_filesystem("/nonexistent/hostd"), Error);
}

TEST(CheckSelect1, ReportsNobodyListeningAsUnavailable) {
    try {
        check_select1({.host = "127.0.0.1", .port = free_port(), .user = "u", .password = "p"});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::unavailable);
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
}

TEST(WaitSelect1, GivesUpAfterItsTimeout) {
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW(wait_select1({.host = "127.0.0.1", .port = free_port(), .user = "u", .password = "p"},
                              std::chrono::milliseconds(300)),
                 Error);
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, std::chrono::milliseconds(300));
    EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(InitdbRoot, CreatesAClusterThatAcceptsScramLogins) {
    std::string why;
    if (!can_run_root_tests(why)) GTEST_SKIP() << why;
    Scratch s;
    const uint16_t port = free_port();
    const std::string user = "hostd_admin";
    const std::string password = random_password();
    ClusterSpec spec{.tenant = "itest", .port = port, .socket_dir = s.sockdir, .memory_bytes = 256ull << 20, .cpus = 1};

    auto t0 = std::chrono::steady_clock::now();
    initdb({.bindir = kBindir, .pgdata = s.pgdata, .uid = s.uid, .gid = s.gid, .superuser = user, .password = password},
           spec);
    auto initdb_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    sync_filesystem(s.pgdata);
    auto synced_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    std::cout << "[ info     ] initdb --no-sync took " << initdb_ms.count() << " ms, " << synced_ms.count()
              << " ms with syncfs\n";

    // Our files replaced initdb's, owned by the cluster's user and private to it.
    EXPECT_EQ(read_file(s.pgdata + "/postgresql.conf"), render_postgresql_conf(spec));
    EXPECT_EQ(read_file(s.pgdata + "/pg_hba.conf"), render_pg_hba(spec));
    struct stat st{};
    ASSERT_EQ(::stat((s.pgdata + "/postgresql.conf").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, s.uid);
    EXPECT_EQ(st.st_mode & 07777, 0600u);

    s.start();
    ConnParams tcp{.host = "127.0.0.1", .port = port, .user = user, .password = password};
    EXPECT_NO_THROW(wait_select1(tcp, std::chrono::seconds(10)));

    ConnParams wrong = tcp;
    wrong.password = "not-" + password;
    try {
        check_select1(wrong);
        ADD_FAILURE() << "a wrong password was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::unavailable);
        EXPECT_NE(std::string(e.what()).find("password authentication failed"), std::string::npos) << e.what();
    }

    ConnParams sock{.host = s.sockdir, .port = port, .user = user, .password = password};
    EXPECT_NO_THROW(check_select1(sock));

    // hostd's own SCRAM secret is PostgreSQL's: the one initdb made, recomputed from its salt.
    const std::string made = query_column(sock, "SELECT rolpassword FROM pg_authid WHERE rolname = current_user").at(0);
    ASSERT_TRUE(made.starts_with("SCRAM-SHA-256$4096:")) << made;
    const std::string salt64 = made.substr(19, made.find('$', 19) - 19);
    std::string salt(salt64.size(), '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(salt.data()),
                                  reinterpret_cast<const unsigned char*>(salt64.data()), static_cast<int>(salt64.size()));
    ASSERT_GT(n, 0);
    salt.resize(static_cast<size_t>(n) - std::count(salt64.begin(), salt64.end(), '='));
    EXPECT_EQ(scram_verifier(password, 4096, salt), made);

    // The rendered settings are the ones in force.
    EXPECT_EQ(query_column(tcp, "SELECT current_setting(name) FROM unnest(ARRAY['shared_buffers', 'data_checksums', "
                                "'password_encryption', 'server_encoding']) WITH ORDINALITY AS s(name, n) ORDER BY n"),
              (std::vector<std::string>{"64MB", "on", "scram-sha-256", "UTF8"}));
    try {
        query_column(tcp, "SELEC 1");
        ADD_FAILURE() << "bad SQL was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::failed);
        EXPECT_NE(std::string(e.what()).find("syntax error"), std::string::npos) << e.what();
    }

    // hostd's own limit on an answer holds whatever the server does with statement_timeout.
    ConnParams bounded = tcp;
    bounded.query_timeout_ms = 500;
    const auto asked = std::chrono::steady_clock::now();
    try {
        query_column(bounded, "SELECT pg_sleep(10)::text");
        ADD_FAILURE() << "a 10 s statement answered within 0.5 s";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::unavailable) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(3));
    EXPECT_EQ(query_column(bounded, "SELECT 'quick'"), std::vector<std::string>{"quick"});

    // A new password: only its SCRAM verifier reaches the server; the old one stops working.
    const std::string next = "it's a \"new\" one";
    set_role_password(sock, user, next);
    EXPECT_THROW(check_select1(tcp), Error);
    ConnParams renewed = tcp;
    renewed.password = next;
    EXPECT_NO_THROW(check_select1(renewed));
    const auto stored = query_column(renewed, "SELECT rolpassword FROM pg_authid WHERE rolname = '" + user + "'");
    ASSERT_EQ(stored.size(), 1u);
    EXPECT_EQ(stored[0].rfind("SCRAM-SHA-256$4096:", 0), 0u) << stored[0];
    EXPECT_EQ(stored[0].find(next), std::string::npos);
    try {
        set_role_password(sock, user, "with the old login");  // sock still has the first password
        ADD_FAILURE() << "the old password logged in";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::unavailable) << e.what();
    }
}

TEST(InitdbRoot, ReportsInitdbsOwnMessageWhenTheDirectoryIsNotEmpty) {
    std::string why;
    if (!can_run_root_tests(why)) GTEST_SKIP() << why;
    Scratch s;
    make_dirs(s.pgdata, 0700);
    write_file_atomic(s.pgdata + "/something", "x");
    ASSERT_EQ(::chown(s.pgdata.c_str(), s.uid, s.gid), 0);
    try {
        initdb({.bindir = kBindir, .pgdata = s.pgdata, .uid = s.uid, .gid = s.gid, .superuser = "u", .password = "pw"},
               {.tenant = "itest", .port = 25000, .socket_dir = s.sockdir});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::failed);
        EXPECT_NE(std::string(e.what()).find("not empty"), std::string::npos) << e.what();
    }
    EXPECT_EQ(read_file(s.pgdata + "/something"), "x");  // initdb left what was there alone
}

TEST(InitdbRoot, GivesTheClusterTheWalSegmentSizeAskedFor) {
    std::string why;
    if (!can_run_root_tests(why)) GTEST_SKIP() << why;
    Scratch s;
    initdb({.bindir = kBindir, .pgdata = s.pgdata, .uid = s.uid, .gid = s.gid, .superuser = "u", .wal_segsize_mb = 4,
            .password = "pw"},
           {.tenant = "itest", .port = 25000, .socket_dir = s.sockdir, .memory_bytes = 256ull << 20, .cpus = 1});
    // Segments are written whole: each is the cluster's segment size (initdb fills more than one of 4 MB).
    uint64_t segments = 0;
    for (const auto& e : std::filesystem::directory_iterator(s.pgdata + "/pg_wal")) {
        if (!e.is_regular_file()) continue;
        ++segments;
        EXPECT_EQ(e.file_size(), 4ull << 20) << e.path();
    }
    EXPECT_GE(segments, 1u);
}

TEST(HandOverRoot, MakesAPoolClusterTheAdminsWithSecretsMadeAhead) {
    std::string why;
    if (!can_run_root_tests(why)) GTEST_SKIP() << why;
    Scratch s;
    const uint16_t port = free_port();
    const std::string bootstrap = "hostd_pool_1234", bootstrap_password = random_password();
    const std::string admin = "acme", admin_password = random_password();
    ClusterSpec spec{.tenant = "handover", .port = port, .socket_dir = s.sockdir, .memory_bytes = 256ull << 20, .cpus = 1};
    // As the warm pool does: initdb stores the bootstrap role's secret as given (one iteration:
    // a one-time random password gains nothing from stretching, and the hand-over's login is
    // then cheap).
    initdb({.bindir = kBindir, .pgdata = s.pgdata, .uid = s.uid, .gid = s.gid, .superuser = bootstrap,
            .password = scram_verifier(bootstrap_password, 1)},
           spec);
    s.start();
    ConnParams sock{.host = s.sockdir, .port = port, .connect_timeout_s = 5, .sslmode = "disable"};
    wait_ping(sock, std::chrono::seconds(10));
    hand_over_cluster(sock, bootstrap, bootstrap_password, "hostd_handover_1234", admin, scram_verifier(admin_password));

    ConnParams tcp{.host = "127.0.0.1", .port = port, .user = admin, .password = admin_password};
    EXPECT_EQ(query_column(tcp, "SELECT rolsuper::text || ' ' || oid::text FROM pg_roles WHERE rolname = current_user"),
              std::vector<std::string>{"true 10"});  // the bootstrap superuser, renamed
    EXPECT_EQ(query_column(tcp, "SELECT count(*)::text FROM pg_roles WHERE rolname LIKE 'hostd_pool%' OR rolname LIKE 'hostd_handover%'"),
              std::vector<std::string>{"0"});
    EXPECT_EQ(query_column(tcp, "SELECT substr(rolpassword, 1, 19) FROM pg_authid WHERE rolname = current_user"),
              std::vector<std::string>{"SCRAM-SHA-256$4096:"});
    ConnParams old = tcp;
    old.user = bootstrap;
    old.password = bootstrap_password;
    EXPECT_THROW(check_select1(old), Error);
    ConnParams wrong = tcp;
    wrong.password = bootstrap_password;
    EXPECT_THROW(check_select1(wrong), Error);
}

// pgBackRest's commands as hostd builds them, and its info as hostd reads it. The Root suite
// runs them for real (Debian's pgbackrest and PostgreSQL 15) as the `postgres` system user in a
// directory of its own under /var/tmp, on a socket only (no TCP port), and removes it after.

#include <gtest/gtest.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "backup/ops.h"
#include "backup/pgbackrest.h"
#include "base/error.h"
#include "base/exec.h"
#include "base/fs.h"

using namespace hostd;
using namespace hostd::backup;
namespace fs = std::filesystem;

namespace {

Stanza stanza() {
    return {.name = "shop", .repo = "/var/lib/hostd-backup/shop", .pgdata = "/srv/hostd/shop/pgdata",
            .socket_dir = "/run/hostd-tenant/shop", .port = 25001, .user = "hostd_backup", .work_dir = "/run/hostd-tenant/shop/pgbackrest"};
}

bool has(const std::vector<std::string>& argv, const std::string& word) {
    return std::find(argv.begin(), argv.end(), word) != argv.end();
}

std::string read(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

}  // namespace

TEST(Pgbackrest, EveryCommandNamesTheStanzaItsOwnRepositoryAndNoConfigFile) {
    const Stanza s = stanza();
    const Options o;
    for (const auto& argv : {stanza_create_argv(s, o), backup_argv(s, o, BackupType::incr), info_argv(s, o),
                             restore_argv(s, o, "/srv/hostd/branch/pgdata", Target{})}) {
        EXPECT_EQ(argv.front(), "/usr/bin/pgbackrest");
        EXPECT_TRUE(has(argv, "--stanza=shop"));
        EXPECT_TRUE(has(argv, "--no-config"));
        EXPECT_TRUE(has(argv, "--repo1-path=/var/lib/hostd-backup/shop"));
        EXPECT_TRUE(has(argv, "--log-level-file=off"));
    }
    EXPECT_EQ(archive_command(s, o),
              "/usr/bin/pgbackrest --no-config --stanza=shop --repo1-path=/var/lib/hostd-backup/shop "
              "--lock-path=/run/hostd-tenant/shop/pgbackrest --log-level-file=off --log-level-console=off "
              "--log-level-stderr=warn --pg1-path=/srv/hostd/shop/pgdata --spool-path=/run/hostd-tenant/shop/pgbackrest "
              "--archive-async=y --process-max=1 --compress-type=lz4 archive-push %p");
}

TEST(Pgbackrest, BackupStartsAtOnceAndKeepsTheConfiguredFullBackups) {
    Options o;
    o.retention_full = 3;
    const auto argv = backup_argv(stanza(), o, BackupType::full);
    EXPECT_TRUE(has(argv, "--type=full"));
    EXPECT_TRUE(has(argv, "--start-fast"));
    EXPECT_TRUE(has(argv, "--repo1-retention-full=3"));
    EXPECT_TRUE(has(argv, "--pg1-port=25001"));
    EXPECT_EQ(argv.back(), "backup");
}

TEST(Pgbackrest, RestoreIntoAnotherDataDirectoryToEachKindOfTarget) {
    const auto at = restore_argv(stanza(), Options{}, "/srv/hostd/b/pgdata", parse_target("2026-11-30T05:56:04.7919+01:00", "from.time"));
    EXPECT_TRUE(has(at, "--pg1-path=/srv/hostd/b/pgdata"));
    EXPECT_FALSE(has(at, "--pg1-path=/srv/hostd/shop/pgdata"));
    EXPECT_TRUE(has(at, "--type=time"));
    EXPECT_TRUE(has(at, "--target=2026-11-30 04:56:04.791+00"));
    EXPECT_TRUE(has(at, "--target-action=promote"));
    EXPECT_TRUE(has(at, "--spool-path=/run/hostd-tenant/shop/pgbackrest"));
    EXPECT_TRUE(has(at, "--recovery-option=restore_command=/usr/bin/pgbackrest --no-config --stanza=shop "
                        "--repo1-path=/var/lib/hostd-backup/shop --lock-path=/run/hostd-tenant/shop/pgbackrest "
                        "--log-level-file=off --log-level-console=off --log-level-stderr=warn --pg1-path=/srv/hostd/b/pgdata "
                        "archive-get %f \"%p\""));
    const auto label = restore_argv(stanza(), Options{}, "/x", parse_target("20261130-045552F_20261130-050102I", "from.time"));
    EXPECT_TRUE(has(label, "--set=20261130-045552F_20261130-050102I"));
    EXPECT_TRUE(has(label, "--type=immediate"));
    EXPECT_TRUE(has(restore_argv(stanza(), Options{}, "/x", parse_target("latest", "t")), "--type=default"));
    // A restore copies with its own number of processes; backups keep theirs.
    const auto parallel = restore_argv(stanza(), Options{.process_max = 1, .restore_process_max = 3}, "/x",
                                       parse_target("latest", "t"));
    EXPECT_TRUE(has(parallel, "--process-max=3"));
    EXPECT_FALSE(has(parallel, "--process-max=1"));
}

TEST(Pgbackrest, TheRecoveringServerTakesSocketLoginsOnlyAndRunsNothingOfTheSources) {
    const auto a = recovery_server_argv("/usr/lib/postgresql/15/bin", "/srv/hostd/br/pgdata", "/srv/hostd/br/.w",
                                        "/srv/hostd/br/.w/hba");
    EXPECT_EQ(a.at(0), "/usr/lib/postgresql/15/bin/postgres");
    for (const char* w : {"listen_addresses=", "unix_socket_directories=/srv/hostd/br/.w", "hba_file=/srv/hostd/br/.w/hba",
                          "archive_mode=off", "shared_preload_libraries=", "session_preload_libraries=",
                          "local_preload_libraries=", "archive_library=", "recovery_end_command=", "jit=off"})
        EXPECT_TRUE(has(a, w)) << w;
    // Each setting its own "-c" word: nothing for a shell to split.
    for (size_t i = 3; i < a.size(); i += 2) EXPECT_EQ(a[i], "-c");
}

TEST(Pgbackrest, TargetsAreLatestALabelOrAnRfc3339Time) {
    EXPECT_EQ(parse_target("2026-11-30T04:56:04Z", "t").value, "2026-11-30 04:56:04.000+00");
    EXPECT_EQ(parse_target("2026-11-30 23:30:00-01:00", "t").value, "2026-12-01 00:30:00.000+00");
    EXPECT_EQ(parse_target("2026-11-30T04:56:04.5z", "t").value, "2026-11-30 04:56:04.500+00");
    for (const char* bad : {"", "yesterday", "2026-11-30", "2026-11-30T04:56:04", "2026-02-31T00:00:00Z",
                            "2026-11-30T24:00:00Z", "2026-11-30T04:56:04+25:00", "20261130-045552X", "latest\n",
                            "2026-11-30T04:56:04Z; rm -rf /"}) {
        try {
            parse_target(bad, "from.time");
            ADD_FAILURE() << "took '" << bad << "'";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::invalid);
            EXPECT_EQ(e.field(), "from.time");
        }
    }
}

TEST(Pgbackrest, InfoGivesTheBackupsAndTheArchivedWal) {
    const Info info = parse_info(read(std::string(HOSTD_TEST_DATA) + "/pgbackrest-info.json"), "t1");
    EXPECT_EQ(info.status_code, 0);
    ASSERT_EQ(info.backups.size(), 1u);
    const BackupSet& b = info.backups[0];
    EXPECT_EQ(b.label, "20261130-045552F");
    EXPECT_EQ(b.type, BackupType::full);
    EXPECT_EQ(b.start, 1796014552);
    EXPECT_EQ(b.stop, 1796014560);
    EXPECT_EQ(b.size, 180286980u);
    EXPECT_EQ(b.repo_size, 21744795u);
    EXPECT_EQ(b.wal_start, "000000010000000000000011");
    EXPECT_EQ(info.wal_min, "000000010000000000000001");
    EXPECT_EQ(info.wal_max, "000000010000000000000014");
    EXPECT_FALSE(info.backup_running);
    EXPECT_THROW(parse_info(read(std::string(HOSTD_TEST_DATA) + "/pgbackrest-info.json"), "other"), Error);
    EXPECT_THROW(parse_info("<html>", "t1"), Error);
    EXPECT_EQ(wal_segment_number("000000010000000000000014"), 0x14u);
    EXPECT_EQ(wal_segment_number("0000000100000002000000FF"), 2u * 256 + 255);
    EXPECT_FALSE(wal_segment_number("00000001000000000000001"));
}

namespace {

const std::string kBindir = "/usr/lib/postgresql/15/bin";

// A throwaway cluster and repository owned by `postgres`, archiving with hostd's command.
class Scratch {
public:
    Scratch() {
        passwd* pw = ::getpwnam("postgres");
        if (!pw) throw Error(Errc::not_found, "No 'postgres' user");
        uid = pw->pw_uid;
        gid = pw->pw_gid;
        char tmpl[] = "/var/tmp/hostd-backup-test.XXXXXX";
        if (!::mkdtemp(tmpl)) throw_errno(errno, "mkdtemp");
        dir = tmpl;
        for (const char* sub : {"", "/repo", "/sock", "/work", "/sock2"}) {
            const std::string p = dir + sub;
            if ((*sub && ::mkdir(p.c_str(), 0700) < 0) || ::chown(p.c_str(), uid, gid) < 0) throw_errno(errno, p);
        }
        s = {.name = "scratch", .repo = dir + "/repo", .pgdata = dir + "/pgdata", .socket_dir = dir + "/sock",
             .port = 5432, .user = "admin", .work_dir = dir + "/work"};
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    ~Scratch() {
        for (const auto& d : {s.pgdata, dir + "/branch"})
            if (path_exists(d + "/postmaster.pid")) {
                try {
                    exec({.argv = {kBindir + "/pg_ctl", "-D", d, "-m", "immediate", "-w", "stop"}, .uid = uid, .gid = gid});
                } catch (...) {
                }
            }
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    ExecResult run(const std::vector<std::string>& argv, const std::string& what) {
        return exec_checked({.argv = argv, .uid = uid, .gid = gid}, what);
    }
    void start(const std::string& pgdata, const std::string& sock, const std::vector<std::string>& settings) {
        std::string opts = "-c listen_addresses='' -c unix_socket_directories=" + sock;
        for (const auto& kv : settings) opts += " -c " + kv;
        const ExecResult r = exec({.argv = {kBindir + "/pg_ctl", "-D", pgdata, "-l", pgdata + ".log", "-w", "-t", "60", "-o", opts, "start"},
                                   .uid = uid, .gid = gid});
        if (r.exit_code != 0) throw Error(Errc::failed, "pg_ctl start failed: " + read(pgdata + ".log"));
    }
    std::string sql(const std::string& sock, const std::string& q) {
        return run({kBindir + "/psql", "-h", sock, "-U", "admin", "-d", "postgres", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", q},
                   "psql " + q).out;
    }

    uid_t uid;
    gid_t gid;
    std::string dir;
    Stanza s;
};

// restore_branch's programs as plain processes of the test's user (hostd runs them in a unit):
// the restore to its end, the server in the background until stop().
struct ProcessRecovery final : Recovery {
    ProcessRecovery(uid_t u, gid_t g, std::string log) : uid(u), gid(g), log(std::move(log)) {}
    ~ProcessRecovery() override {
        if (pid > 0) stop();
    }
    void start(const std::vector<std::string>& restore, const std::vector<std::string>& server) override {
        const ExecResult r = exec({.argv = restore, .uid = uid, .gid = gid});
        if (r.exit_code != 0) throw Error(Errc::failed, "restore: " + r.err);
        pid = ::fork();
        if (pid == 0) {
            const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            std::vector<char*> argv;
            for (const auto& a : server) argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            if (::setgid(gid) == 0 && ::setuid(uid) == 0) ::execv(argv[0], argv.data());
            ::_exit(127);
        }
    }
    bool running() override { return pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0; }
    std::string output() override { return read(log); }
    void stop() override {
        if (pid <= 0) return;
        ::kill(pid, SIGINT);  // fast shutdown
        ::waitpid(pid, nullptr, 0);
        pid = -1;
    }
    uid_t uid;
    gid_t gid;
    std::string log;
    pid_t pid = -1;
};

std::string utc_now_rfc3339() {
    using namespace std::chrono;
    const auto now = system_clock::now();
    const std::time_t t = system_clock::to_time_t(now);
    const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(ms));
    return buf;
}

}  // namespace

// Archive, back up, read the info, and restore to a time between two commits into a new data
// directory: the restored cluster has the first row, not the second.
TEST(PgbackrestRoot, BacksUpAndRestoresToAPointInTime) {
    if (::geteuid() != 0 || !::getpwnam("postgres") || !path_exists("/usr/bin/pgbackrest") ||
        !path_exists(kBindir + "/initdb"))
        GTEST_SKIP() << "needs root, the postgres user, PostgreSQL 15 and pgbackrest";
    Scratch x;
    const Options o;
    x.run({kBindir + "/initdb", "-D", x.s.pgdata, "-A", "trust", "-U", "admin", "--no-sync"}, "initdb");
    x.start(x.s.pgdata, x.s.socket_dir,
            {"archive_mode=on", "'archive_command=" + archive_command(x.s, o) + "'", "archive_timeout=60"});
    x.run(stanza_create_argv(x.s, o), "stanza-create");
    x.run(backup_argv(x.s, o, BackupType::full), "backup");
    // pgBackRest picks the backup by its stop time, in whole seconds: the target comes after it.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    x.sql(x.s.socket_dir, "CREATE TABLE t(x int); INSERT INTO t VALUES (1)");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const std::string between = utc_now_rfc3339();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    x.sql(x.s.socket_dir, "INSERT INTO t VALUES (2)");
    // The segment holding both commits, archived (async push: wait for it to reach the repository).
    const std::string seg = x.sql(x.s.socket_dir, "SELECT pg_walfile_name(pg_current_wal_lsn())");
    x.sql(x.s.socket_dir, "SELECT pg_switch_wal()");
    Info info;
    for (int i = 0; i < 100; i++) {
        info = parse_info(x.run(info_argv(x.s, o), "info").out, "scratch");
        if (info.wal_max >= seg.substr(0, 24)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(info.backups.size(), 1u);
    EXPECT_EQ(info.backups[0].type, BackupType::full);
    EXPECT_GT(info.backups[0].repo_size, 0u);
    ASSERT_GE(info.wal_max, seg.substr(0, 24));

    // hostd's branch: restore, recover to the time as the source's user, promote, new password.
    const std::string branch = x.dir + "/branch";
    ProcessRecovery run(x.uid, x.gid, x.dir + "/recovery.log");
    restore_branch({.source = x.s, .source_user = {x.uid, x.gid}, .pgdata = branch, .work_dir = x.dir + "/work2",
                    .bindir = kBindir, .target = parse_target(between, "time"), .admin_role = "admin",
                    .admin_password = "branch-password-1"},
                   o, run);
    const std::string auto_conf = read(branch + "/postgresql.auto.conf");
    EXPECT_EQ(auto_conf.find("restore_command"), std::string::npos) << auto_conf;
    EXPECT_FALSE(path_exists(branch + "/postmaster.pid")) << "left stopped";
    x.start(branch, x.dir + "/sock2", {"archive_mode=off"});
    EXPECT_EQ(x.sql(x.dir + "/sock2", "SELECT pg_is_in_recovery()"), "f\n");
    EXPECT_EQ(x.sql(x.dir + "/sock2", "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'admin'"), "t\n");
    EXPECT_EQ(x.sql(x.dir + "/sock2", "SELECT string_agg(x::text, ',') FROM t"), "1\n");
    EXPECT_EQ(x.sql(x.s.socket_dir, "SELECT string_agg(x::text, ',') FROM t"), "1,2\n");
}

// What hostd reports of a failed pgBackRest run: its last ERROR line (a unit's journal holds
// earlier runs and systemd's own lines too), else the last line.
TEST(Pgbackrest, AFailureIsReportedInPgbackrestsOwnWords) {
    EXPECT_EQ(backup::error_of("WARN: something\nERROR: [041]: unable to open '/r/backup/src/backup.info'\n  more\n"),
              "ERROR: [041]: unable to open '/r/backup/src/backup.info'");
    EXPECT_EQ(backup::error_of("ERROR: [055]: old run\nhostd-backup-full@a.service: Failed with result 'exit-code'.\n"
                               "ERROR: [041]: new run\nhostd-backup-full@a.service: Main process exited, code=exited, status=41/n/a\n"),
              "ERROR: [041]: new run");
    EXPECT_EQ(backup::error_of("Failed to start hostd full backup of tenant a.\n\n"), "Failed to start hostd full backup of tenant a.");
    EXPECT_EQ(backup::error_of(""), "");
    EXPECT_EQ(backup::error_of("ERROR: [041]: " + std::string(2000, 'x')).size(), 1000u);
}

// A repository's size and newest WAL from its directory's metadata: links are not followed
// (a tenant owns what is inside), only segment files under archive/ count as WAL.
TEST(Pgbackrest, RepositoryUsageCountsItsOwnFilesOnly) {
    namespace fs = std::filesystem;
    const fs::path repo = fs::temp_directory_path() / ("hostd-repo-usage-" + std::to_string(::getpid()));
    fs::remove_all(repo);
    fs::create_directories(repo / "archive/src/15-1/0000000100000000");
    fs::create_directories(repo / "backup/src/20261130-000000F");
    auto write = [](const fs::path& p, size_t n) { std::ofstream(p) << std::string(n, 'x'); };
    write(repo / "archive/src/archive.info", 100);
    const fs::path seg = repo / "archive/src/15-1/0000000100000000/000000010000000000000003-0123abcd.lz4";
    write(seg, 20000);
    write(repo / "backup/src/20261130-000000F/backup.manifest", 50000);
    fs::create_symlink("/usr", repo / "backup/src/link");
    const auto when = fs::file_time_type::clock::now() - std::chrono::hours(2);
    fs::last_write_time(seg, when);
    fs::last_write_time(repo / "archive/src/archive.info", fs::file_time_type::clock::now());

    const backup::RepoUsage u = backup::repository_usage(repo.string());
    EXPECT_GE(u.bytes, 70000u);
    EXPECT_LT(u.bytes, 200000u);  // /usr behind the link is not counted
    const std::time_t want = std::time(nullptr) - 7200;
    EXPECT_NEAR(static_cast<double>(u.last_wal), static_cast<double>(want), 5);
    fs::remove_all(repo);
    EXPECT_THROW(backup::repository_usage(repo.string()), Error);
}

TEST(Pgbackrest, ARepositoryHostIsNamedInAConfigurationFileNotOnTheCommandLine) {
    Stanza s = stanza();
    s.config = "/var/lib/hostd-remote/acme/pgbackrest.conf";
    const auto argv = info_argv(s, Options{});
    EXPECT_TRUE(has(argv, "--config=/var/lib/hostd-remote/acme/pgbackrest.conf"));
    EXPECT_FALSE(has(argv, "--no-config"));
    for (const auto& a : argv) EXPECT_FALSE(a.starts_with("--repo1-path")) << a;
    EXPECT_NE(archive_command(s, Options{}).find("--config=/var/lib/hostd-remote/acme/pgbackrest.conf --stanza="),
              std::string::npos);

    const std::string conf = remote_config({.host = "10.231.1.3", .port = 18001, .path = "/var/lib/hostd-repos/h/acme",
                                            .cert = "/d/client.crt", .key = "/d/client.key", .ca = "/d/ca.crt"});
    EXPECT_NE(conf.find("[global]\nrepo1-host=10.231.1.3\nrepo1-host-type=tls\nrepo1-host-port=18001\n"), std::string::npos);
    EXPECT_NE(conf.find("repo1-host-cert-file=/d/client.crt\n"), std::string::npos);
    EXPECT_THROW(remote_config({.host = "10.231.1.3\nrepo1-path=/", .port = 1, .path = "/p", .cert = "c", .key = "k", .ca = "a"}),
                 Error);
    EXPECT_THROW(remote_config({.host = "h", .port = 0, .path = "/p", .cert = "c", .key = "k", .ca = "a"}), Error);
}

TEST(Pgbackrest, ATenantsServerLetsInOneCertificateForItsStanzaOnly) {
    const auto argv = server_argv({.address = "10.231.1.2", .port = "24001", .cert = "/d/server.crt", .key = "/d/server.key",
                                   .ca = "/d/ca.crt", .client_cn = "hostd@backup-1", .stanza = "acme"},
                                  Options{});
    EXPECT_EQ(argv.back(), "server");
    EXPECT_TRUE(has(argv, "--no-config"));
    EXPECT_TRUE(has(argv, "--tls-server-auth=hostd@backup-1=acme"));
    EXPECT_TRUE(has(argv, "--tls-server-address=10.231.1.2"));
}

// The repository host's operations against a fake machine: what a PUT makes, that a failed one
// leaves nothing, that an update that fails keeps the old repository, that a start serves every
// kept repository again, and that DELETE removes all of it.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "hostd/repohost_service.h"

using namespace hostd;

namespace {

struct Machine {
    std::set<std::string> users, repos, running;
    std::map<std::string, std::string> files, logs;
    std::set<std::string> failing;  // units whose start fails
    std::set<uint16_t> busy;        // ports someone else listens on
};

class FakeFx : public RepoEffects {
public:
    explicit FakeFx(Machine& m) : m_(m) {}
    backup::RunAs ensure_user(const std::string& name) override {
        m_.users.insert(name);
        return {70000, 70000};
    }
    void delete_user(const std::string& name) override { m_.users.erase(name); }
    void make_repo(const std::string&, const std::string&, const std::string& repo, backup::RunAs) override { m_.repos.insert(repo); }
    void remove_repo(const std::string& repo, const std::string&) override { m_.repos.erase(repo); }
    void write_file(const std::string& path, const std::string& content, mode_t) override { m_.files[path] = content; }
    void remove_file(const std::string& path) override { m_.files.erase(path); }
    std::map<std::string, std::string> read_states(const std::string& dir) override {
        std::map<std::string, std::string> out;
        for (const auto& [p, c] : m_.files)
            if (p.starts_with(dir + "/")) out[p] = c;
        return out;
    }
    std::string read_log(const std::string& path) override { return m_.logs.count(path) ? m_.logs[path] : ""; }
    bool port_free(uint16_t port) override { return !m_.busy.count(port); }
    void daemon_reload() override {}
    void start(const std::string& unit, int) override {
        if (m_.failing.count(unit)) throw Error(Errc::failed, "job for " + unit + " failed");
        m_.running.insert(unit);
    }
    void restart(const std::string& unit) override { start(unit, 0); }
    void stop(const std::string& unit) override { m_.running.erase(unit); }
    bool failed(const std::string& unit) override { return m_.failing.count(unit) > 0; }
    backup::RepoUsage usage(const std::string&) override { return {4096, 1700000000}; }
    void ensure_cert(const std::string& cert, const std::string& key, const pgconf::CertRequest& req) override {
        if (!m_.files.count(cert)) m_.files[cert] = req.cn;
        if (!m_.files.count(key)) m_.files[key] = "key of " + req.cn;
    }

private:
    Machine& m_;
};

repohost::Settings settings() {
    repohost::Settings s;
    s.listen_address = "10.0.0.2";
    s.listen_port = 8443;
    s.ports = {18000, 18002};
    s.state_dir = "/var/lib/hostd/repos";
    s.ca_cert = "/var/lib/hostd/ca/ca.crt";
    s.ca_key = "/var/lib/hostd/ca/ca.key";
    s.full_schedule = "Sun *-*-* 01:00:00";
    return s;
}

repohost::PgHost pg(uint16_t server_port = 8432) {
    return {.host = "10.0.0.3", .server_port = server_port, .path = "/srv/hostd/acme/pgdata",
            .socket_path = "/run/hostd-tenant/acme", .port = 25000, .user = "hostd_backup"};
}

const repohost::Names names(const std::string& host, const std::string& tenant) { return repohost::names_of(settings(), host, tenant); }

}  // namespace

TEST(RepoHostOps, PutMakesTheRepositoryItsServerAndTimers) {
    Machine m;
    m.busy = {18000};
    RepoHost h(settings(), "backup1", std::make_unique<FakeFx>(m));
    const auto v = h.put("db1", "acme", pg());
    const auto n = names("db1", "acme");
    EXPECT_EQ(v.port, 18001);  // 18000 is someone else's
    EXPECT_EQ(v.path, "/var/lib/hostd-repos/db1/acme");
    EXPECT_EQ(v.host, "backup1");
    EXPECT_EQ(v.backup_client, "backup.acme.db1@backup1");
    EXPECT_EQ(m.files[n.client_cert], "backup.acme.db1@backup1");
    EXPECT_EQ(m.files[n.server_cert], "repository.acme.db1");
    EXPECT_TRUE(m.users.count(n.user));
    EXPECT_TRUE(m.repos.count(n.repo));
    EXPECT_TRUE(m.running.count(n.server_unit));
    EXPECT_TRUE(m.running.count(n.stanza_unit));
    EXPECT_TRUE(m.running.count(n.timer(backup::BackupType::full)));
    EXPECT_TRUE(m.files.count(n.state_file));
    EXPECT_TRUE(m.files.count("/run/systemd/system/" + n.server_unit));
    // Again: the same repository, nothing new; another host's acme: its own.
    EXPECT_EQ(h.put("db1", "acme", pg()).port, 18001);
    EXPECT_EQ(h.put("db2", "acme", pg()).port, 18002);
    EXPECT_EQ(m.users.size(), 2u);
    // The range is full now.
    try {
        h.put("db3", "acme", pg());
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::unavailable);
    }
}

TEST(RepoHostOps, AFailedStanzaCreateLeavesNothing) {
    Machine m;
    RepoHost h(settings(), "backup1", std::make_unique<FakeFx>(m));
    const auto n = names("db1", "acme");
    m.failing = {n.stanza_unit};
    m.logs[n.log(n.stanza_unit)] = "WARN: unable to check pg1: refused\nERROR: [056]: unable to find primary cluster - cannot proceed\n";
    try {
        h.put("db1", "acme", pg());
        FAIL();
    } catch (const UpstreamError& e) {
        EXPECT_NE(std::string(e.what()).find("unable to find primary cluster"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("WARN: unable to check pg1: refused"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(m.users.empty());
    EXPECT_TRUE(m.repos.empty());
    EXPECT_TRUE(m.running.empty());
    EXPECT_TRUE(m.files.empty());
    EXPECT_THROW(h.get("db1", "acme"), Error);
}

TEST(RepoHostOps, AFailedUpdateKeepsTheOldRepository) {
    Machine m;
    RepoHost h(settings(), "backup1", std::make_unique<FakeFx>(m));
    const auto n = names("db1", "acme");
    h.put("db1", "acme", pg());
    const std::string state = m.files[n.state_file];
    m.failing = {n.stanza_unit};
    EXPECT_THROW(h.put("db1", "acme", pg(9999)), UpstreamError);
    EXPECT_EQ(m.files[n.state_file], state);
    EXPECT_NE(m.files["/run/systemd/system/" + n.stanza_unit].find("--pg1-host-port=8432"), std::string::npos);
    EXPECT_TRUE(m.users.count(n.user));
    EXPECT_TRUE(m.repos.count(n.repo));
    m.failing.clear();
    h.put("db1", "acme", pg(9999));
    EXPECT_NE(m.files[n.state_file].find("pg_server_port = 9999"), std::string::npos);
}

TEST(RepoHostOps, AStartServesEveryKeptRepositoryAgain) {
    Machine m;
    {
        RepoHost h(settings(), "backup1", std::make_unique<FakeFx>(m));
        h.put("db1", "acme", pg());
        h.put("db1", "zeta", pg());
    }
    m.running.clear();
    m.files.erase("/run/systemd/system/" + names("db1", "acme").server_unit);  // /run is gone after a reboot
    RepoHost again(settings(), "backup1", std::make_unique<FakeFx>(m));
    again.reconcile();
    for (const char* t : {"acme", "zeta"}) {
        EXPECT_TRUE(m.running.count(names("db1", t).server_unit)) << t;
        EXPECT_TRUE(m.files.count("/run/systemd/system/" + names("db1", t).server_unit)) << t;
    }
    EXPECT_EQ(again.get("db1", "zeta").port, 18001);
}

TEST(RepoHostOps, BackupsReportPgBackRestsErrorAndDeleteRemovesAll) {
    Machine m;
    RepoHost h(settings(), "backup1", std::make_unique<FakeFx>(m));
    h.put("db1", "acme", pg());
    const auto n = names("db1", "acme");
    EXPECT_NO_THROW(h.backup("db1", "acme", backup::BackupType::full));
    EXPECT_THROW(h.backup("db2", "acme", backup::BackupType::full), Error);  // another host's: not here
    m.failing = {n.backup_unit(backup::BackupType::incr)};
    m.logs[n.log(n.backup_unit(backup::BackupType::incr))] = "ERROR: [082]: WAL segment was not archived before the 60000ms timeout\n";
    try {
        h.backup("db1", "acme", backup::BackupType::incr);
        FAIL();
    } catch (const UpstreamError& e) {
        EXPECT_NE(std::string(e.what()).find("[082]"), std::string::npos);
    }
    const auto v = h.get("db1", "acme");
    EXPECT_EQ(v.bytes, 4096u);
    EXPECT_EQ(v.last_backup_error, "ERROR: [082]: WAL segment was not archived before the 60000ms timeout");
    h.remove("db1", "acme");
    EXPECT_TRUE(m.users.empty());
    EXPECT_TRUE(m.repos.empty());
    EXPECT_TRUE(m.files.empty());
    EXPECT_TRUE(m.running.empty());
    EXPECT_THROW(h.remove("db1", "acme"), Error);
}

// A deleted tenant's kept backups: its repository stays served (restores, branches) but takes no
// scheduled or requested backup, through a restart of hostd too; a PUT brings it back.
TEST(RepoHostOps, RetireStopsTheBackupsButKeepsTheRepositoryServed) {
    Machine m;
    const auto n = names("db1", "acme");
    const std::string timer = n.timer(backup::BackupType::full);
    {
        RepoHost h(settings(), "backup1", std::make_unique<FakeFx>(m));
        h.put("db1", "acme", pg());
        h.retire("db1", "acme");
        h.retire("db1", "acme");  // again: nothing more
        EXPECT_FALSE(m.running.count(timer));
        EXPECT_FALSE(m.files.count("/run/systemd/system/" + timer));
        EXPECT_TRUE(m.running.count(n.server_unit));
        EXPECT_TRUE(m.repos.count(n.repo));
        EXPECT_TRUE(h.get("db1", "acme").retired);
        try {
            h.backup("db1", "acme", backup::BackupType::full);
            FAIL();
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::conflict);
        }
        EXPECT_THROW(h.retire("db1", "zeta"), Error);
    }
    m.running.clear();
    RepoHost again(settings(), "backup1", std::make_unique<FakeFx>(m));
    again.reconcile();
    EXPECT_TRUE(m.running.count(n.server_unit));
    EXPECT_FALSE(m.running.count(timer)) << "a restart scheduled backups of a retired repository again";
    EXPECT_FALSE(m.files.count("/run/systemd/system/" + timer));
    EXPECT_TRUE(again.get("db1", "acme").retired);
    // Its tenant back (a reuse of its kept data): live again, the same repository.
    EXPECT_EQ(again.put("db1", "acme", pg()).port, 18000);
    EXPECT_FALSE(again.get("db1", "acme").retired);
    EXPECT_TRUE(m.running.count(timer));
    EXPECT_NO_THROW(again.backup("db1", "acme", backup::BackupType::full));
}

// hostd stopped during a PUT that makes a repository: the next start undoes what it made (its
// client never heard it succeed, and a PUT again makes it anew).
TEST(RepoHostOps, AStartUndoesARepositoryWhosePutWasCutShort) {
    Machine m;
    const auto n = names("db1", "acme");
    m.failing = {n.stanza_unit};
    {
        // The crash: the stanza-create never returns (the undo never runs). Simulated by a state
        // file and what the steps before it made, as a killed PUT leaves them.
        RepoHost h(settings(), "backup1", std::make_unique<FakeFx>(m));
        try {
            h.put("db1", "acme", pg());
        } catch (const UpstreamError&) {
        }
    }
    ASSERT_TRUE(m.files.empty());  // an ordinary failure undoes itself
    repohost::Repo r{.host = "db1", .tenant = "acme", .port = 18000, .pg = pg(), .pending = true};
    m.files[n.state_file] = repohost::render_state(r);
    m.users.insert(n.user);
    m.repos.insert(n.repo);
    m.files["/run/systemd/system/" + n.server_unit] = "unit";
    m.failing.clear();
    RepoHost again(settings(), "backup1", std::make_unique<FakeFx>(m));
    again.reconcile();
    EXPECT_TRUE(m.users.empty());
    EXPECT_TRUE(m.repos.empty());
    EXPECT_TRUE(m.files.empty());
    EXPECT_THROW(again.get("db1", "acme"), Error);
    EXPECT_EQ(again.put("db1", "acme", pg()).port, 18000);
    EXPECT_EQ(repohost::parse_state(m.files[n.state_file], "s").pending, false);
}

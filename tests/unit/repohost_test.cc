// The repository-host role's pure parts: what a request may hold, the names and paths of a
// repository, pgBackRest's argv, the units' sandbox, the state file and the wire format.
#include <gtest/gtest.h>

#include <algorithm>

#include "base/error.h"
#include "model/layout.h"
#include "repohost/repohost.h"
#include "wire/repos.h"

using namespace hostd;
using namespace hostd::repohost;

namespace {

Settings settings() {
    Settings s;
    s.listen_address = "10.0.0.2";
    s.listen_port = 8443;
    s.state_dir = "/var/lib/hostd/repos";
    s.hidden = {"/var/lib/hostd", "/etc/hostd", "/run/hostd"};
    s.ca_cert = "/var/lib/hostd/ca/ca.crt";
    s.ca_key = "/var/lib/hostd/ca/ca.key";
    s.self = "backup1";
    s.full_schedule = "Sun *-*-* 01:00:00";
    s.incr_schedule = "Mon..Sat *-*-* 01:00:00";
    return s;
}

Repo repo() {
    return {.host = "db1", .tenant = "acme", .port = 18000,
            .pg = {.host = "10.0.0.3", .server_port = 8432, .path = "/srv/hostd/acme/pgdata",
                   .socket_path = "/run/hostd-tenant/acme", .port = 25000, .user = "hostd_backup"}};
}

std::string field_of(auto&& f) {
    try {
        f();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid);
        return e.field();
    }
    return "<none>";
}

bool has(const std::vector<std::string>& v, const std::string& w) { return std::find(v.begin(), v.end(), w) != v.end(); }

}  // namespace

TEST(RepoHost, ClientHostComesOnlyFromAHostCertificate) {
    EXPECT_EQ(host_of_cn("hostd@db1").value_or(""), "db1");
    EXPECT_EQ(host_of_cn("hostd@db1.example.org").value_or(""), "db1.example.org");
    EXPECT_FALSE(host_of_cn("acme@db1"));         // a tenant's repository client
    EXPECT_FALSE(host_of_cn("hostd@"));
    EXPECT_FALSE(host_of_cn("hostd@db1/../x"));
    EXPECT_FALSE(host_of_cn("hostd@DB1"));
    EXPECT_FALSE(host_of_cn("hostd@db1_acme"));   // '_' separates host and tenant in names
    EXPECT_FALSE(host_of_cn("xhostd@db1"));
}

TEST(RepoHost, TenantNamesAreTenantsOnly) {
    EXPECT_NO_THROW(validate_tenant("acme-2"));
    for (const char* bad : {"", "Acme", "a/b", "..", "a_b", "hostd", "acme@db1", "-a"})
        EXPECT_EQ(field_of([&] { validate_tenant(bad); }), "tenant") << bad;
}

TEST(RepoHost, RequestFieldsAreChecked) {
    PgHost ok = repo().pg;
    EXPECT_NO_THROW(validate(ok));
    auto with = [&](auto change) {
        PgHost p = ok;
        change(p);
        return field_of([&] { validate(p); });
    };
    EXPECT_EQ(with([](PgHost& p) { p.host = "db 2"; }), "pg_host");
    EXPECT_EQ(with([](PgHost& p) { p.host = "-x"; }), "pg_host");
    EXPECT_EQ(with([](PgHost& p) { p.server_port = 0; }), "pg_server_port");
    EXPECT_EQ(with([](PgHost& p) { p.port = 0; }), "pg_port");
    EXPECT_EQ(with([](PgHost& p) { p.path = "srv/x"; }), "pg_path");
    EXPECT_EQ(with([](PgHost& p) { p.path = "/srv/../etc"; }), "pg_path");
    EXPECT_EQ(with([](PgHost& p) { p.path = "/srv/x/"; }), "pg_path");
    EXPECT_EQ(with([](PgHost& p) { p.socket_path = "/run/x y"; }), "pg_socket_path");
    EXPECT_EQ(with([](PgHost& p) { p.socket_path = "/run/%i"; }), "pg_socket_path");
    EXPECT_EQ(with([](PgHost& p) { p.user = "Robert'); DROP"; }), "pg_user");
    EXPECT_NO_THROW(with([](PgHost& p) { p.host = "fd00::3"; }));
}

TEST(RepoHost, NamesKeepHostsAndTenantsApart) {
    const Settings s = settings();
    const Names n = names_of(s, "db1", "acme");
    EXPECT_EQ(n.repo, "/var/lib/hostd-repos/db1/acme");
    EXPECT_EQ(n.host_dir, "/var/lib/hostd-repos/db1");
    EXPECT_EQ(n.server_unit, "hostd-repo-server-db1_acme.service");
    EXPECT_EQ(n.state_file, "/var/lib/hostd/repos/db1_acme.toml");
    // A user name useradd takes, never read as a tenant's ("_<tenant>"): the reconciler of the
    // tenant side must not sweep it.
    EXPECT_LE(n.user.size(), 32u);
    EXPECT_EQ(layout::tenant_of_user(n.user), "");
    // Another host's tenant of the same name: another user, directory and unit.
    const Names other = names_of(s, "db2", "acme");
    EXPECT_NE(other.user, n.user);
    EXPECT_NE(other.repo, n.repo);
    EXPECT_NE(names_of(s, "a-b", "c").id, names_of(s, "a", "b-c").id);
}

TEST(RepoHost, ServerAuthorizesTheTenantsClientForItsStanzaOnly) {
    const auto a = server_argv(settings(), repo());
    EXPECT_TRUE(has(a, "--tls-server-auth=acme@db1=acme"));
    EXPECT_TRUE(has(a, "--tls-server-address=10.0.0.2"));
    EXPECT_TRUE(has(a, "--tls-server-port=18000"));
    EXPECT_TRUE(has(a, "--tls-server-key-file=%d/server.key"));
    EXPECT_TRUE(has(a, "--no-config"));
    EXPECT_EQ(a.back(), "server");
}

TEST(RepoHost, StanzaCreateAndBackupsReachTheTenantHostByTls) {
    const Settings s = settings();
    for (const auto& a : {stanza_create_argv(s, repo()), backup_argv(s, repo(), backup::BackupType::incr)}) {
        EXPECT_TRUE(has(a, "--no-config"));
        EXPECT_TRUE(has(a, "--stanza=acme"));
        EXPECT_TRUE(has(a, "--repo1-path=/var/lib/hostd-repos/db1/acme"));
        EXPECT_TRUE(has(a, "--pg1-host=10.0.0.3"));
        EXPECT_TRUE(has(a, "--pg1-host-type=tls"));
        EXPECT_TRUE(has(a, "--pg1-host-port=8432"));
        EXPECT_TRUE(has(a, "--pg1-host-cert-file=%d/client.crt"));
        EXPECT_TRUE(has(a, "--pg1-host-ca-file=%d/ca.crt"));
        EXPECT_TRUE(has(a, "--pg1-path=/srv/hostd/acme/pgdata"));
        EXPECT_TRUE(has(a, "--pg1-port=25000"));
        EXPECT_TRUE(has(a, "--pg1-user=hostd_backup"));
    }
    const auto b = backup_argv(s, repo(), backup::BackupType::incr);
    EXPECT_TRUE(has(b, "--type=incr"));
    EXPECT_TRUE(has(b, "--repo1-retention-full=2"));
    EXPECT_EQ(b.back(), "backup");
}

TEST(RepoHost, UnitsSeeTheirRepositoryAndNothingOfHostds) {
    const auto files = render_units(settings(), repo());
    std::vector<std::string> names;
    for (const auto& [name, text] : files) names.push_back(name);
    EXPECT_TRUE(has(names, "hostd-repo-server-db1_acme.service"));
    EXPECT_TRUE(has(names, "hostd-repo-stanza-db1_acme.service"));
    EXPECT_TRUE(has(names, "hostd-repo-backup-diff-db1_acme.service"));
    EXPECT_TRUE(has(names, "hostd-repo-backup-full-db1_acme.timer"));
    EXPECT_TRUE(has(names, "hostd-repo-backup-incr-db1_acme.timer"));
    for (const auto& [name, text] : files) {
        if (!name.ends_with(".service")) continue;
        SCOPED_TRACE(name);
        const std::string user = names_of(settings(), "db1", "acme").user;
        EXPECT_NE(text.find("User=" + user + "\n"), std::string::npos);
        EXPECT_NE(text.find("TemporaryFileSystem=/var/lib/hostd-repos:ro\n"), std::string::npos);
        EXPECT_NE(text.find("BindPaths=/var/lib/hostd-repos/db1/acme\n"), std::string::npos);
        EXPECT_NE(text.find("InaccessiblePaths=-/var/lib/hostd -/etc/hostd -/run/hostd\n"), std::string::npos);
        // The repository's own key, never this host's: its server's for the server, its backups'
        // client one for the others (whatever a unit can read, a tenant's client may read).
        const bool server = name.starts_with("hostd-repo-server-");
        EXPECT_NE(text.find(server ? "LoadCredential=server.key:/var/lib/hostd/repos/db1_acme.server.key\n"
                                   : "LoadCredential=client.key:/var/lib/hostd/repos/db1_acme.client.key\n"),
                  std::string::npos);
        EXPECT_EQ(text.find(server ? "client.key" : "server.key"), std::string::npos);
        EXPECT_EQ(text.find("repohost/host"), std::string::npos);
        EXPECT_EQ(text.find("ca.key"), std::string::npos);
        EXPECT_NE(text.find("BindReadOnlyPaths=-/dev/null:/etc/pgbackrest.conf\n"), std::string::npos);
        EXPECT_NE(text.find("ProtectSystem=strict\n"), std::string::npos);
        EXPECT_NE(text.find("CapabilityBoundingSet=\n"), std::string::npos);
    }
}

TEST(RepoHost, ARepositorysCertificatesPassForNothingElse) {
    const Repo r = repo();
    EXPECT_EQ(server_cn(r), "repository.acme.db1");
    EXPECT_EQ(backup_client_cn(settings(), r), "backup.acme.db1@backup1");
    for (const std::string cn : {server_cn(r), backup_client_cn(settings(), r)}) {
        EXPECT_FALSE(host_of_cn(cn)) << cn;  // no host's
        const auto at = cn.find('@');
        if (at != std::string::npos) EXPECT_THROW(validate_tenant(cn.substr(0, at)), Error) << cn;  // no tenant's
    }
}

TEST(RepoHost, StateRoundTripsAndIsChecked) {
    const Repo r = repo();
    const Repo back = parse_state(render_state(r), "x.toml");
    EXPECT_EQ(back.host, r.host);
    EXPECT_EQ(back.tenant, r.tenant);
    EXPECT_EQ(back.port, r.port);
    EXPECT_TRUE(back.pg == r.pg);
    try {
        parse_state("host = \"db1\"\ntenant = \"../x\"\n", "x.toml");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::failed);
    }
}

TEST(RepoHost, ListenAndPorts) {
    EXPECT_EQ(parse_listen("10.0.0.2:8443", "l"), (std::pair<std::string, uint16_t>{"10.0.0.2", 8443}));
    EXPECT_EQ(parse_listen("[fd00::2]:8443", "l").first, "fd00::2");
    for (const char* bad : {"10.0.0.2", "host:80", "10.0.0.2:0", "10.0.0.2:65536", ":80", "10.0.0.2:8x"})
        EXPECT_EQ(field_of([&] { parse_listen(bad, "l"); }), "l") << bad;
    auto p = pick_port({18000, 18003}, {18000, 18001}, [](uint16_t port) { return port != 18002; });
    EXPECT_EQ(p.value_or(0), 18003);
    EXPECT_FALSE(pick_port({18000, 18001}, {18000}, [](uint16_t) { return false; }));
}

TEST(RepoHost, WireRequestsNameTheBadField) {
    using nlohmann::json;
    json ok = {{"pg_host", "10.0.0.3"}, {"pg_server_port", 8432}, {"pg_path", "/p"}, {"pg_socket_path", "/s"}, {"pg_port", 25000}};
    EXPECT_EQ(wire::parse_repo_request(ok).user, "hostd_backup");
    auto bad = [&](const char* key, json v) {
        json b = ok;
        b[key] = v;
        return field_of([&] { wire::parse_repo_request(b); });
    };
    EXPECT_EQ(bad("pg_port", "25000"), "pg_port");
    EXPECT_EQ(bad("pg_port", 70000), "pg_port");
    EXPECT_EQ(bad("pg_server_port", 1.5), "pg_server_port");
    EXPECT_EQ(bad("pg_path", 7), "pg_path");
    EXPECT_EQ(bad("extra", 1), "extra");
    json missing = ok;
    missing.erase("pg_host");
    EXPECT_EQ(field_of([&] { wire::parse_repo_request(missing); }), "pg_host");
    EXPECT_EQ(field_of([&] { wire::parse_repo_backup({{"type", "weekly"}}); }), "type");
    EXPECT_EQ(wire::parse_repo_backup({{"type", "diff"}}), backup::BackupType::diff);
    const json view = wire::render(RepoView{.tenant = "acme", .port = 18000, .path = "/r", .host = "b", .backup_client = "hostd@b",
                                            .bytes = 5, .last_wal = 7, .last_backup_error = ""},
                                   true);
    EXPECT_EQ(view, (json{{"tenant", "acme"}, {"repo_host", "b"}, {"repo_host_port", 18000}, {"repo_path", "/r"}, {"backup_client", "hostd@b"},
                          {"bytes", 5}, {"last_wal", 7}, {"last_backup_error", ""}, {"retired", false}}));
}

TEST(RepoHost, FailureNamesTheErrorAndTheWarningsThatExplainIt) {
    const std::string log =
        "WARN: an old one\n"
        "ERROR: [056]: earlier run\n"
        "2026-11-30 WARN: unable to check pg1: [HostConnectError] unable to connect to '127.0.0.1:8432': refused\n"
        "ERROR: [056]: unable to find primary cluster - cannot proceed\n";
    EXPECT_EQ(failure_of(log), "ERROR: [056]: unable to find primary cluster - cannot proceed | WARN: unable to check pg1: "
                               "[HostConnectError] unable to connect to '127.0.0.1:8432': refused");
    EXPECT_EQ(failure_of("ERROR: [041]: unable to open\n"), "ERROR: [041]: unable to open");
    EXPECT_EQ(failure_of(""), "");
}

// The tenant unit template: the defaults give the shipped file (tests/data/units/, the text the
// static template had), other paths reach every directive that names them, and values systemd
// would misread are refused. HOSTD_UPDATE_GOLDEN=1 rewrites the expected file.

#include <gtest/gtest.h>

#include <algorithm>

#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "golden.h"
#include "units/template.h"

using namespace hostd;
using namespace hostd::units;

namespace {

// The value of the one line starting with "<key>=", or "<missing>" / "<repeated>".
std::string directive(const std::string& unit, const std::string& key) {
    std::istringstream in(unit);
    std::string line, found = "<missing>";
    while (std::getline(in, line)) {
        if (line.rfind(key + "=", 0) != 0) continue;
        if (found != "<missing>") return "<repeated>";
        found = line.substr(key.size() + 1);
    }
    return found;
}

size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) n++;
    return n;
}

TemplatePaths elsewhere() {
    TemplatePaths p;
    p.mount_root = "/data/pg-tenants";
    p.disk_links = "/run/pgd/devices";
    p.env_dir = "/run/pgd/env";
    p.runtime_dir = "pgd-sockets";
    p.marker = ".pgd-owned";
    p.pgdata = "cluster";
    p.hidden = {"/opt/pgd/state", "/etc/pgd"};
    p.mount_options = "nodev,nosuid,noexec,relatime";
    p.pg_bindir = "/opt/pg15/bin";
    return p;
}

// The field of the Errc::invalid the renderer throws for p, or "<accepted>".
std::string refused_field(const TemplatePaths& p) {
    try {
        render_tenant_template(p);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid) << e.what();
        EXPECT_NE(std::string(e.what()).find("tenant unit template"), std::string::npos) << e.what();
        return e.field();
    }
    return "<accepted>";
}

}  // namespace

TEST(TenantTemplate, DefaultsGiveTheShippedFile) {
    test::expect_golden("units/hostd-postgres@.service", render_tenant_template({}));
    EXPECT_EQ(tenant_template_name(), "hostd-postgres@.service");
}

TEST(TenantTemplate, PutsOtherPathsInEveryDirectiveThatNamesThem) {
    const std::string unit = render_tenant_template(elsewhere());
    // The marker and the cluster checked by the shell that becomes the postmaster (no ExecStartPre=:
    // it would set the whole sandbox up twice).
    EXPECT_EQ(directive(unit, "ExecStartPre"), "<missing>");
    EXPECT_EQ(directive(unit, "ExecStart"),
              "/bin/sh -c 'test -f /data/pg-tenants/%i/.pgd-owned -a -f /data/pg-tenants/%i/cluster/PG_VERSION || "
              "{ echo \"hostd: no tenant filesystem with a cluster at /data/pg-tenants/%i: not starting\" >&2; exit 1; }; "
              "exec \"$$@\"' postgres "
              "/opt/pg15/bin/postgres -D /data/pg-tenants/%i/cluster -c port=${HOSTD_PORT} -c listen_addresses=127.0.0.1 "
              "-c unix_socket_directories=/run/pgd-sockets/%i -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
    EXPECT_EQ(directive(unit, "EnvironmentFile"), "/run/pgd/env/%i");
    EXPECT_EQ(directive(unit, "RuntimeDirectory"), "pgd-sockets/%i");
    EXPECT_EQ(directive(unit, "ReadWritePaths"), "/data/pg-tenants/%i/cluster");
    EXPECT_EQ(directive(unit, "TemporaryFileSystem"), "/data/pg-tenants:ro");
    EXPECT_EQ(directive(unit, "MountImages"), "/run/pgd/devices/%i:/data/pg-tenants/%i:root:nodev,nosuid,noexec,relatime");
    EXPECT_EQ(directive(unit, "InaccessiblePaths"), "-/opt/pgd/state -/etc/pgd");
    // The comments follow: they tell an operator reading the unit where things are.
    EXPECT_NE(unit.find("# Its own socket directory, /run/pgd-sockets/<tenant>, owned by the tenant."), std::string::npos);
    EXPECT_NE(unit.find("# /run/pgd/devices/<tenant> is hostd's link"), std::string::npos);
    EXPECT_NE(unit.find("visible under /data/pg-tenants;"), std::string::npos);

    for (const char* old : {"/srv/hostd", "/run/hostd/disk", "/run/hostd/env", "hostd-tenant", "/var/lib/hostd", "/etc/hostd",
                            "pgdata", "noatime", "/usr/lib/postgresql"})
        EXPECT_EQ(count(unit, old), 0u) << old << " is still in:\n" << unit;
}

TEST(TenantTemplate, ChangesNothingButThePaths) {
    // Line for line the same directives, comments and blank lines, in the shipped file's order.
    auto keys = [](const std::string& unit) {
        std::vector<std::string> out;
        std::istringstream in(unit);
        for (std::string line; std::getline(in, line);) out.push_back(line.starts_with("#") ? "#" : line.substr(0, line.find('=')));
        return out;
    };
    EXPECT_EQ(keys(render_tenant_template(elsewhere())), keys(render_tenant_template({})));
}

TEST(TenantTemplate, LeavesOutWhatIsNotGiven) {
    TemplatePaths p;
    p.hidden.clear();
    p.mount_options.clear();
    const std::string unit = render_tenant_template(p);
    EXPECT_EQ(directive(unit, "InaccessiblePaths"), "<missing>");  // an empty one would reset the list
    EXPECT_EQ(directive(unit, "MountImages"), "/run/hostd/disk/%i:/srv/hostd/%i");
}

TEST(TenantTemplate, RefusesPathsSystemdWouldMisread) {
    auto with = [](auto set) {
        TemplatePaths p;
        set(p);
        return refused_field(p);
    };
    EXPECT_EQ(with([](TemplatePaths&) {}), "<accepted>");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = "srv/hostd"; }), "mount_root");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = "/"; }), "mount_root");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = ""; }), "mount_root");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = "/srv/hostd/"; }), "mount_root");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = "/srv//hostd"; }), "mount_root");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = "/srv/../hostd"; }), "mount_root");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = "/srv/my tenants"; }), "mount_root");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = "/srv/100%"; }), "mount_root");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = "/srv/\"hostd\""; }), "mount_root");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = "/srv/'hostd'"; }), "mount_root");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = "/srv/a:b"; }), "mount_root");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = "/srv/$HOME"; }), "mount_root");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = "/srv/a\\x20b"; }), "mount_root");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = "/srv/hostd\nExecStartPre=/bin/sh"; }), "mount_root");
    EXPECT_EQ(with([](TemplatePaths& p) { p.disk_links = "/run/hostd/disk\t"; }), "disk_links");
    EXPECT_EQ(with([](TemplatePaths& p) { p.runtime_dir = "/run/hostd-tenant"; }), "runtime_dir");
    EXPECT_EQ(with([](TemplatePaths& p) { p.runtime_dir = "../etc"; }), "runtime_dir");
    EXPECT_EQ(with([](TemplatePaths& p) { p.marker = "a/b"; }), "marker");
    EXPECT_EQ(with([](TemplatePaths& p) { p.marker = ".."; }), "marker");
    EXPECT_EQ(with([](TemplatePaths& p) { p.pgdata = ""; }), "pgdata");
    EXPECT_EQ(with([](TemplatePaths& p) { p.hidden.push_back("relative/dir"); }), "hidden");
    EXPECT_EQ(with([](TemplatePaths& p) { p.hidden.push_back("/etc/%i"); }), "hidden");
    EXPECT_EQ(with([](TemplatePaths& p) { p.pg_bindir = "/usr/lib/postgresql/15/bin "; }), "pg_bindir");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_options = "nodev,,noexec"; }), "mount_options");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_options = "nodev:root:rw"; }), "mount_options");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_options = "nodev noexec"; }), "mount_options");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_options = "context=\"system_u:object_r:x\""; }), "mount_options");
    // Allowed: nested directories, and the characters in ordinary paths.
    EXPECT_EQ(with([](TemplatePaths& p) { p.runtime_dir = "hostd/tenants"; }), "<accepted>");
    EXPECT_EQ(with([](TemplatePaths& p) { p.mount_root = "/srv/pg_15-tenants.d/v+1@x"; }), "<accepted>");
}

TEST(TenantTemplate, RefusesToHideWhatTheUnitNeeds) {
    TemplatePaths p;
    p.mount_root = "/var/lib/hostd/mnt";
    EXPECT_EQ(refused_field(p), "mount_root");
    p = {};
    p.hidden.push_back("/usr/lib/postgresql");
    EXPECT_EQ(refused_field(p), "pg_bindir");
    p = {};
    p.hidden.push_back("/run/hostd");
    EXPECT_EQ(refused_field(p), "disk_links");
    p = {};
    p.hidden.push_back("/srv/hostd-old");  // a neighbour, not a parent
    EXPECT_EQ(refused_field(p), "<accepted>");
}

TEST(BackupUnits, RunPgBackRestAsTheTenantInItsSandboxWithItsDataReadOnly) {
    hostd::units::TemplatePaths p;
    p.backup_repo = "/var/lib/hostd-remote";
    p.archive_command = "/usr/bin/pgbackrest --stanza=%i archive-push %p";
    const std::string unit = hostd::units::render_backup_service(
        p, "incr", {"/usr/bin/pgbackrest", "--no-config", "--stanza=%i", "--type=incr", "backup"});
    EXPECT_NE(unit.find("\nExecStart=/usr/bin/pgbackrest --no-config --stanza=%i --type=incr --pg1-port=${HOSTD_PORT} backup\n"),
              std::string::npos) << unit;
    EXPECT_NE(unit.find("\nEnvironmentFile=/run/hostd/env/%i\n"), std::string::npos);
    EXPECT_NE(unit.find("\nUser=_%i\n"), std::string::npos);
    EXPECT_NE(unit.find("\nRequisite=hostd-postgres@%i.service\n"), std::string::npos);
    EXPECT_NE(unit.find("\nBindPaths=/var/lib/hostd-remote/%i\n"), std::string::npos);
    EXPECT_NE(unit.find("\nTemporaryFileSystem=/var/lib/hostd-remote:ro\n"), std::string::npos);
    EXPECT_EQ(unit.find("ReadWritePaths=/srv/hostd/%i/pgdata"), std::string::npos) << "its data is read-only";
    EXPECT_EQ(unit.find("RemoveIPC"), std::string::npos) << "would take PostgreSQL's shared memory with it";
    EXPECT_THROW(hostd::units::render_backup_service(p, "incr", {"/usr/bin/pgbackrest", "--x=$(id)", "backup"}), hostd::Error);
    const std::string timer = hostd::units::render_backup_timer("incr", "Mon..Sat *-*-* 01:00:00");
    EXPECT_NE(timer.find("\nOnCalendar=Mon..Sat *-*-* 01:00:00\n"), std::string::npos);
    EXPECT_THROW(hostd::units::render_backup_timer("incr", "daily\nExecStart=/bin/sh"), hostd::Error);
}

TEST(BackupUnits, WithHibernationWakeTheTenantFirstInsteadOfRequiringItsUnit) {
    hostd::units::TemplatePaths p;
    p.backup_repo = "/var/lib/hostd-remote";
    p.archive_command = "/usr/bin/pgbackrest --stanza=%i archive-push %p";
    const std::string unit = hostd::units::render_backup_service(
        p, "full", {"/usr/bin/pgbackrest", "--stanza=%i", "backup"}, {"/usr/bin/hostctl", "--socket", "/run/hostd/hostd.sock", "wake"});
    EXPECT_NE(unit.find("\nExecStartPre=-+/usr/bin/hostctl \"--socket\" \"/run/hostd/hostd.sock\" \"wake\" %i\n"), std::string::npos)
        << unit;
    EXPECT_EQ(unit.find("Requisite="), std::string::npos) << "a hibernated tenant's unit is not running when its timer fires";
    EXPECT_NE(unit.find("\nAfter=hostd-postgres@%i.service\n"), std::string::npos);
    EXPECT_LT(unit.find("ExecStartPre="), unit.find("ExecStart=/usr/bin/pgbackrest"));
    EXPECT_NE(unit.find("\nReadWritePaths=-/run/hostd-tenant/%i\n"), std::string::npos)
        << "no runtime directory before the wake: systemd sets the namespace up for ExecStartPre= too";
    EXPECT_THROW(hostd::units::render_backup_service(p, "full", {"/usr/bin/pgbackrest", "backup"}, {"hostctl", "wake"}), hostd::Error)
        << "a relative program";
}

TEST(RecoveryUnit, RunsAsTheSourceWithItsRepositoryReadOnlyAndTheBranchDiskWritable) {
    hostd::units::TemplatePaths p;
    p.backup_repo = "/var/lib/hostd-remote";
    p.archive_command = "/usr/bin/pgbackrest --stanza=%i archive-push %p";
    hostd::units::RecoveryUnit r{
        .user = "_src", .source_repo = "/var/lib/hostd-remote/src",
        .restore = {"/usr/bin/pgbackrest", "--recovery-option=restore_command=/usr/bin/pgbackrest --stanza=src archive-get %f \"%p\"",
                    "restore"},
        .server = {"/usr/lib/postgresql/15/bin/postgres", "-c", "listen_addresses=", "-c", "x=$HOME"},
        .log = "/run/hostd/recovery/u.log", .timeout_s = 300};
    EXPECT_EQ(hostd::units::recovery_unit_name("br", "0a1b2c3d"), "hostd-recover-0a1b2c3d@br.service");
    const std::string unit = hostd::units::render_recovery_unit(p, r);
    EXPECT_NE(unit.find("\nUser=_src\n"), std::string::npos) << unit;
    // Quoted: spaces stay inside one argument, systemd gives back '%', '"' and '$' as written.
    EXPECT_NE(unit.find("\nExecStartPre=/usr/bin/pgbackrest \"--recovery-option=restore_command=/usr/bin/pgbackrest "
                        "--stanza=src archive-get %%f \\\"%%p\\\"\" \"restore\"\n"),
              std::string::npos) << unit;
    EXPECT_NE(unit.find("\nExecStart=/usr/lib/postgresql/15/bin/postgres \"-c\" \"listen_addresses=\" \"-c\" \"x=$$HOME\"\n"),
              std::string::npos) << unit;
    EXPECT_NE(unit.find("\nBindReadOnlyPaths=/var/lib/hostd-remote/src\n"), std::string::npos);
    EXPECT_EQ(unit.find("\nBindPaths="), std::string::npos) << "no repository writable";
    EXPECT_NE(unit.find("\nTemporaryFileSystem=/var/lib/hostd-remote:ro\n"), std::string::npos);
    EXPECT_NE(unit.find("\nReadWritePaths=/srv/hostd/%i\n"), std::string::npos);
    EXPECT_NE(unit.find("\nMountImages=/run/hostd/disk/%i:/srv/hostd/%i:root:nodev,nosuid,noexec,noatime\n"), std::string::npos);
    EXPECT_NE(unit.find("\nPrivateNetwork=yes\n"), std::string::npos);
    // After the sandbox's filter: systemd adds it back to the allowed calls.
    EXPECT_GT(unit.find("\nSystemCallFilter=@chown\n"), unit.find("\nSystemCallFilter=~@privileged"));
    EXPECT_NE(unit.find("\nStandardOutput=append:/run/hostd/recovery/u.log\n"), std::string::npos);

    auto refused = [&](auto change) {
        auto q = r;
        change(q);
        try {
            hostd::units::render_recovery_unit(p, q);
        } catch (const hostd::Error& e) {
            return e.field();
        }
        return std::string("<accepted>");
    };
    EXPECT_EQ(refused([](auto& q) { q.source_repo = "/var/lib/hostd-remote"; }), "source_repo");
    EXPECT_EQ(refused([](auto& q) { q.source_repo = "/var/lib/other/src"; }), "source_repo");
    EXPECT_EQ(refused([](auto& q) { q.user = "a/b"; }), "user");
    EXPECT_EQ(refused([](auto& q) { q.server.push_back("x\nExecStartPost=/bin/sh"); }), "server");
    EXPECT_EQ(refused([](auto& q) { q.restore[0] = "pgbackrest"; }), "restore");
}

TEST(StreamUnit, CopiesAsTheSourcesUserIntoTheBranchsDiskWithNoNetworkNorRepository) {
    TemplatePaths p;
    p.mount_root = "/srv/hostd";
    p.backup_repo = "/var/lib/hostd-backup";
    p.archive_command = "/usr/bin/pgbackrest --stanza=%i archive-push %p";
    const std::string unit = hostd::units::render_stream_unit(
        p, {.user = "_src", .copy = {"/usr/lib/postgresql/15/bin/pg_basebackup", "--pgdata=/srv/hostd/br/pgdata", "--label=a b"},
            .log = "/run/hostd/recovery/s.log", .timeout_s = 60});
    EXPECT_NE(unit.find("\nType=oneshot\n"), std::string::npos) << unit;
    EXPECT_NE(unit.find("\nUser=_src\nGroup=_src\n"), std::string::npos);
    EXPECT_NE(unit.find("\nExecStart=/usr/lib/postgresql/15/bin/pg_basebackup \"--pgdata=/srv/hostd/br/pgdata\" \"--label=a b\"\n"),
              std::string::npos) << unit;
    EXPECT_NE(unit.find("\nPrivateNetwork=yes\n"), std::string::npos);
    EXPECT_NE(unit.find("\nReadWritePaths=/srv/hostd/%i\n"), std::string::npos);
    EXPECT_EQ(unit.find("/var/lib/hostd-backup"), std::string::npos) << "no repository, not even read-only";
    EXPECT_EQ(unit.find("@chown"), std::string::npos);
    EXPECT_NE(unit.find("\nCapabilityBoundingSet=\n"), std::string::npos);
    EXPECT_THROW(hostd::units::render_stream_unit(p, {.user = "a/b", .copy = {"/bin/true"}, .log = "/run/x.log"}), hostd::Error);
    EXPECT_THROW(hostd::units::render_stream_unit(p, {.user = "_src", .copy = {"pg_basebackup"}, .log = "/run/x.log"}),
                 hostd::Error);
}

TEST(TenantTemplate, WithARepositoryHostSeesItsOwnFilesForItAndWantsItsServer) {
    TemplatePaths p;
    p.backup_remote = "/var/lib/hostd-remote";
    p.archive_command = "/usr/bin/pgbackrest --config=/var/lib/hostd-remote/%i/pgbackrest.conf --stanza=%i archive-push %p";
    p.backup_server_argv = {"/usr/bin/pgbackrest", "--tls-server-port=${HOSTD_BACKUP_PORT}",
                            "--tls-server-auth=${HOSTD_BACKUP_CLIENT}=%i", "server"};
    p.repo_host_address = "10.231.1.3";
    const std::string t = render_tenant_template(p);
    EXPECT_NE(t.find("Wants=hostd-backup-server@%i.service\n"), std::string::npos);
    EXPECT_NE(t.find("TemporaryFileSystem=/var/lib/hostd-remote:ro\nBindReadOnlyPaths=/var/lib/hostd-remote/%i\n"), std::string::npos);
    EXPECT_NE(t.find("archive-push %%p"), std::string::npos);
    const std::string s = render_backup_server_unit(p);
    EXPECT_NE(s.find("User=_%i\n"), std::string::npos);
    EXPECT_NE(s.find("EnvironmentFile=/var/lib/hostd-remote/%i/server.env\n"), std::string::npos);
    EXPECT_NE(s.find("ExecStart=/usr/bin/pgbackrest --tls-server-port=${HOSTD_BACKUP_PORT} "
                     "--tls-server-auth=${HOSTD_BACKUP_CLIENT}=%i server\n"), std::string::npos);
    EXPECT_NE(s.find("BindReadOnlyPaths=/dev/null:/etc/pgbackrest.conf\n"), std::string::npos);
    const std::string r = render_recovery_unit(
        p, {.user = "_src", .source_repo = "/var/lib/hostd-remote/src", .restore = {"/usr/bin/pgbackrest", "restore"},
            .server = {"/usr/bin/postgres"}, .log = "/run/hostd/recovery/x.log"});
    EXPECT_EQ(r.find("PrivateNetwork=yes"), std::string::npos);
    EXPECT_NE(r.find("IPAddressDeny=any\nIPAddressAllow=10.231.1.3\n"), std::string::npos);
    EXPECT_NE(r.find("BindReadOnlyPaths=/var/lib/hostd-remote/src\n"), std::string::npos);
    p.backup_repo = "/var/lib/b";
    EXPECT_THROW(render_tenant_template(p), Error);
}

TEST(AnIdleJobUnit, RunsItsProgramBelowEveryTenantAndRefusesWhatSystemdWouldMisread) {
    hostd::units::IdleJob j{.description = "warm pool disk 0123456789abcdef: initdb",
                            .argv = {"/usr/lib/postgresql/15/bin/initdb", "-D", "/run/hostd/pool/0123456789abcdef/pgdata",
                                     "--pwfile=/dev/stdin", "x=$HOME 100%"},
                            .env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8"},
                            .user = "998", .group = "998",
                            .input = "/run/hostd/pool-jobs/u.in", .log = "/run/hostd/pool-jobs/u.log",
                            .mount_device = "/dev/loop7", .mount_target = "/run/hostd/pool/0123456789abcdef",
                            .mount_options = "nodev,nosuid,noexec,noatime", .timeout_s = 600};
    EXPECT_EQ(hostd::units::idle_job_unit_name("0123456789abcdef", "initdb"), "hostd-pool-0123456789abcdef-initdb.service");
    const std::string u = hostd::units::render_idle_job_unit(j);
    for (const char* line : {"\nType=oneshot\n", "\nCPUWeight=1\n", "\nIOWeight=1\n", "\nNice=19\n", "\nCPUSchedulingPolicy=idle\n",
                             "\nIOSchedulingClass=idle\n", "\nUser=998\n", "\nGroup=998\n", "\nPrivateNetwork=yes\n",
                             "\nStandardInput=file:/run/hostd/pool-jobs/u.in\n", "\nStandardOutput=append:/run/hostd/pool-jobs/u.log\n",
                             "\nTimeoutStartSec=600\n", "\nEnvironment=\"LC_ALL=C.UTF-8\"\n",
                             "\nMountImages=/dev/loop7:/run/hostd/pool/0123456789abcdef:root:nodev,nosuid,noexec,noatime\n",
                             "\nExecStart=/usr/lib/postgresql/15/bin/initdb \"-D\" \"/run/hostd/pool/0123456789abcdef/pgdata\" "
                             "\"--pwfile=/dev/stdin\" \"x=$$HOME 100%%\"\n"})
        EXPECT_NE(u.find(line), std::string::npos) << line << " not in\n" << u;
    // mkfs: as root, no stdin, no mount.
    hostd::units::IdleJob m{.argv = {"/usr/sbin/mkfs.ext4", "-q", "/dev/loop7"}, .log = "/run/hostd/pool-jobs/m.log"};
    const std::string mu = hostd::units::render_idle_job_unit(m);
    EXPECT_EQ(mu.find("\nUser="), std::string::npos) << mu;
    EXPECT_EQ(mu.find("\nStandardInput="), std::string::npos) << mu;
    EXPECT_EQ(mu.find("\nMountImages="), std::string::npos) << mu;

    auto refused = [&](auto change) {
        auto q = j;
        change(q);
        try {
            hostd::units::render_idle_job_unit(q);
        } catch (const hostd::Error& e) {
            return e.field();
        }
        return std::string("<accepted>");
    };
    EXPECT_EQ(refused([](auto& q) { q.argv[0] = "initdb"; }), "argv");
    EXPECT_EQ(refused([](auto& q) { q.argv.clear(); }), "argv");
    EXPECT_EQ(refused([](auto& q) { q.log = "u.log"; }), "log");
    EXPECT_EQ(refused([](auto& q) { q.env.push_back("X=\"y\""); }), "env");
    EXPECT_EQ(refused([](auto& q) { q.env.push_back("novalue"); }), "env");
    EXPECT_EQ(refused([](auto& q) { q.mount_target = "/run/hostd/pool/a b"; }), "mount_target");
    EXPECT_EQ(refused([](auto& q) { q.user = "a/b"; }), "user");
}

// ---- HA members (#17): hostd-patroni@.service ----

namespace {

// The sandbox's lines (from ProtectSystem= to PrivateUsers=) of a unit.
std::string sandbox_of(const std::string& unit) {
    const size_t from = unit.find("ProtectSystem=strict\n");
    const size_t to = unit.find("PrivateUsers=yes\n");
    if (from == std::string::npos || to == std::string::npos) return "<no sandbox>";
    return unit.substr(from, to - from);
}

}  // namespace

TEST(PatroniTemplate, DefaultsGiveTheShippedFile) {
    test::expect_golden("units/hostd-patroni@.service", render_patroni_template({}));
    EXPECT_EQ(patroni_template_name(), "hostd-patroni@.service");
}

TEST(PatroniTemplate, RunsPatroniAsTheTenantInTheSameSandboxAsItsPostgres) {
    for (const TemplatePaths& p : {TemplatePaths{}, elsewhere()}) {
        const std::string unit = render_patroni_template(p);
        const std::string plain = render_tenant_template(p);
        // The wall between tenants is the one a plain tenant has, line for line.
        EXPECT_EQ(sandbox_of(unit), sandbox_of(plain));
        EXPECT_NE(sandbox_of(unit), "<no sandbox>");
        for (const char* key : {"User", "Group", "EnvironmentFile", "RuntimeDirectory", "RuntimeDirectoryMode", "UMask",
                                "RemoveIPC", "PrivateUsers", "CPUAccounting", "IOAccounting", "Restart", "RestartSec",
                                "TimeoutStopSec", "KillMode", "WantedBy"})
            EXPECT_EQ(directive(unit, key), directive(plain, key)) << key;
        // Patroni sends no READY=1, and stops its PostgreSQL itself on TERM.
        EXPECT_EQ(directive(unit, "Type"), "exec");
        EXPECT_EQ(directive(unit, "NotifyAccess"), "<missing>");
        EXPECT_EQ(directive(unit, "KillSignal"), "SIGTERM");
        EXPECT_EQ(directive(unit, "ExecReload"), "/bin/kill -HUP $MAINPID");
        EXPECT_EQ(directive(unit, "After"), "network-online.target hostd-etcd.service");
        // One difference, after the shared lines (the last assignment wins): Patroni's psutil
        // needs /proc/stat at import, which ProcSubset=pid hides (found in the testbed).
        EXPECT_NE(unit.find("PrivateUsers=yes\n"), std::string::npos);
        EXPECT_NE(unit.find("\nProcSubset=all\n", unit.find("PrivateUsers=yes\n")), std::string::npos);
        EXPECT_EQ(plain.find("ProcSubset=all"), std::string::npos);
        // And pyOpenSSL hidden (its cffi callbacks need W+X memory, found in the testbed): a path
        // more out of reach, the sandbox no weaker.
        EXPECT_NE(unit.find("\nInaccessiblePaths=-/usr/lib/python3/dist-packages/OpenSSL\n", unit.find("PrivateUsers=yes\n")),
                  std::string::npos);
        EXPECT_EQ(directive(unit, "MemoryDenyWriteExecute"), "yes");
    }
    EXPECT_EQ(directive(render_patroni_template(elsewhere()), "ExecStart"),
              "/bin/sh -c 'test -f /data/pg-tenants/%i/.pgd-owned -a -f /data/pg-tenants/%i/ha/patroni.yml || "
              "{ echo \"hostd: no HA member filesystem with a patroni.yml at /data/pg-tenants/%i: not starting\" >&2; exit 1; }; "
              "exec \"$$@\"' patroni /usr/bin/patroni /data/pg-tenants/%i/ha/patroni.yml");
    // systemd's quoting: the script is one single-quoted word, so no ' inside it (systemd
    // refused the whole unit for an apostrophe in the message: "Unbalanced quoting").
    for (const auto& t : {render_patroni_template(elsewhere()), render_patroni_template(TemplatePaths{})}) {
        const std::string exec = directive(t, "ExecStart");
        EXPECT_EQ(std::count(exec.begin(), exec.end(), '\''), 2) << exec;
    }
    // Only pgdata is writable on its disk: patroni.yml and the certificate are not the tenant's to change.
    EXPECT_EQ(directive(render_patroni_template(elsewhere()), "ReadWritePaths"), "/data/pg-tenants/%i/cluster");
}

TEST(PatroniTemplate, RefusesWhatSystemdWouldMisreadOrTheSandboxWouldHide) {
    auto field = [](auto set) {
        TemplatePaths p;
        set(p);
        try {
            render_patroni_template(p);
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::invalid) << e.what();
            return e.field();
        }
        return std::string("<accepted>");
    };
    EXPECT_EQ(field([](auto& p) { p.patroni = "patroni"; }), "patroni");
    EXPECT_EQ(field([](auto& p) { p.patroni = "/usr/bin/patroni --x"; }), "patroni");
    EXPECT_EQ(field([](auto& p) { p.patroni = "/etc/hostd/patroni"; }), "patroni");  // hidden from the unit
    EXPECT_EQ(field([](auto& p) { p.ha_dir = "ha/conf"; }), "ha_dir");
    EXPECT_EQ(field([](auto& p) { p.ha_dir = "%i"; }), "ha_dir");
    EXPECT_EQ(field([](auto& p) { p.ha_dir = "pgdata"; }), "ha_dir");
    EXPECT_EQ(field([](auto& p) { p.mount_root = "/srv/host d"; }), "mount_root");
    EXPECT_EQ(field([](auto& p) { p.ha_dir = "patroni"; p.patroni = "/opt/patroni/bin/patroni"; }), "<accepted>");
}

#include "units/template.h"

#include <arpa/inet.h>

#include <sstream>
#include <utility>

#include "base/error.h"
#include "units/hardening.h"

namespace hostd::units {
namespace {

// Characters a path may hold here. Everything else is refused rather than escaped: systemd reads
// whitespace as a separator, quotes and '\' as quoting, '%' as a specifier, '$' as a variable in
// ExecStart=, and ':' as the separator of MountImages= and TemporaryFileSystem=.
bool path_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '.' ||
           c == '_' || c == '-' || c == '+' || c == '@';
}

[[noreturn]] void refuse(const std::string& field, const std::string& value, const std::string& why) {
    throw Error(Errc::invalid, "The tenant unit template cannot use '" + value + "' as " + field + ": " + why, field);
}

// Components between '/', none empty, "." or ".." (systemd wants normalized paths, and the
// checks below compare paths as text).
void check_components(const std::string& field, const std::string& value, size_t from) {
    for (size_t start = from; start <= value.size();) {
        size_t end = value.find('/', start);
        if (end == std::string::npos) end = value.size();
        const std::string part = value.substr(start, end - start);
        if (part.empty() || part == "." || part == "..")
            refuse(field, value, "write it without empty, '.' or '..' components and without a trailing '/'");
        start = end + 1;
    }
}

void check_chars(const std::string& field, const std::string& value) {
    for (char c : value)
        if (!path_char(c))
            refuse(field, value, "systemd would misread some of its characters; use only letters, digits and / . _ - + @");
}

void check_absolute(const std::string& field, const std::string& value) {
    if (value.empty() || value.front() != '/') refuse(field, value, "give an absolute path");
    if (value == "/") refuse(field, value, "give a directory below /");
    check_chars(field, value);
    check_components(field, value, 1);
}

void check_relative(const std::string& field, const std::string& value) {
    if (value.empty() || value.front() == '/') refuse(field, value, "give a path relative to /run, like hostd-tenant");
    check_chars(field, value);
    check_components(field, value, 0);
}

void check_name(const std::string& field, const std::string& value) {
    if (value.empty() || value.find('/') != std::string::npos) refuse(field, value, "give a file name, without '/'");
    check_relative(field, value);
}

void check_mount_options(const std::string& value) {
    if (value.empty()) return;  // the filesystem's defaults
    size_t start = 0;
    for (;;) {
        const size_t end = value.find(',', start);
        const std::string opt = value.substr(start, end == std::string::npos ? std::string::npos : end - start);
        bool ok = !opt.empty();
        for (char c : opt)
            ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == '=' || c == '.' || c == '+' || c == '-');
        if (!ok)
            refuse("mount_options", value,
                   "give comma-separated options of letters, digits and _ = . + - (like nodev,nosuid,noexec,noatime)");
        if (end == std::string::npos) return;
        start = end + 1;
    }
}

bool inside(const std::string& path, const std::string& dir) {
    return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

void validate(const TemplatePaths& p) {
    check_absolute("mount_root", p.mount_root);
    check_absolute("disk_links", p.disk_links);
    check_absolute("env_dir", p.env_dir);
    check_relative("runtime_dir", p.runtime_dir);
    check_name("marker", p.marker);
    check_name("pgdata", p.pgdata);
    for (const auto& h : p.hidden) check_absolute("hidden", h);
    check_mount_options(p.mount_options);
    check_absolute("pg_bindir", p.pg_bindir);
    check_absolute("patroni", p.patroni);
    check_name("ha_dir", p.ha_dir);
    if (p.ha_dir == p.pgdata) refuse("ha_dir", p.ha_dir, "Patroni's files live apart from pgdata (a replica's is emptied and cloned)");
    if (!p.backup_repo.empty() && !p.backup_remote.empty())
        refuse("backup_remote", p.backup_remote, "a local repository and a repository host exclude each other");
    if (!p.backup_repo.empty() || !p.backup_remote.empty()) {
        if (p.archive_command.empty()) refuse("archive_command", "", "archiving needs a command");
        for (char c : p.archive_command)
            if (c == '"' || c == '\\' || c == '$' || c == ';' || static_cast<unsigned char>(c) < 0x20)
                refuse("archive_command", p.archive_command, "it is given on the command line in double quotes; no quotes, '\\', '$', ';' or control characters");
    }
    if (!p.backup_remote.empty()) {
        check_absolute("backup_remote", p.backup_remote);
        if (p.backup_server_argv.empty()) refuse("backup_server_argv", "", "a repository host needs the tenants' servers");
        for (const auto& h : p.hidden)
            if (inside(p.backup_remote, h)) refuse("backup_remote", p.backup_remote, "it lies in '" + h + "', which tenants may not see");
    }
    if (!p.backup_repo.empty()) {
        check_absolute("backup_repo", p.backup_repo);
        if (inside(p.backup_repo, p.mount_root) || inside(p.mount_root, p.backup_repo))
            refuse("backup_repo", p.backup_repo, "it must lie apart from the tenants' filesystems");
        for (const auto& h : p.hidden)
            if (inside(p.backup_repo, h)) refuse("backup_repo", p.backup_repo, "it lies in '" + h + "', which tenants may not see");
    }
    // InaccessiblePaths= over what the unit mounts or runs would hide it from the unit itself.
    const std::pair<const char*, const std::string*> needed[] = {
        {"mount_root", &p.mount_root}, {"disk_links", &p.disk_links}, {"pg_bindir", &p.pg_bindir}, {"patroni", &p.patroni}};
    for (const auto& h : p.hidden)
        for (const auto& [field, path] : needed)
            if (inside(*path, h)) refuse(field, *path, "it lies in '" + h + "', which tenants may not see; move one of them");
}

}  // namespace

// What a unit of a tenant may touch beyond reading its own disk.
struct Access {
    std::string writable;       // "" none, else a path on its disk it may write
    std::string repo;           // "" none, else the pgBackRest repository bound in (the only one it sees)
    bool repo_read_only = false;
    std::string remote;         // "" none, else its repository host's configuration and certificates (read-only)
    bool host_proc_figures = false;  // /proc/stat, /proc/meminfo, ... (ProcSubset=all); processes stay hidden
};

// The sandbox every unit of a tenant runs in (PostgreSQL, its backups, a branch's recovery): its
// own disk, one repository, nothing of hostd's or of another tenant's.
static void sandbox(std::ostringstream& o, const TemplatePaths& p, const Access& a) {
    const std::string& root = p.mount_root;
    std::string hidden;
    for (const auto& h : p.hidden) hidden += (hidden.empty() ? "-" : " -") + h;
    std::string image = p.disk_links + "/%i:" + root + "/%i";
    if (!p.mount_options.empty()) image += ":root:" + p.mount_options;
    o << "ProtectSystem=strict\n";
    if (!a.writable.empty()) o << "ReadWritePaths=" << a.writable << "\n";
    o << "# Only its own disk is visible under " << root << "; hostd's state and config not at all.\n"
      << "# " << p.disk_links << "/<tenant> is hostd's link to the block device it mounted and checked (its\n"
      << "# marker) before starting the unit; the same device mounted twice shares one superblock.\n"
      << "TemporaryFileSystem=" << root << ":ro\n"
      << "MountImages=" << image << "\n";
    if (!hidden.empty()) o << "InaccessiblePaths=" << hidden << "\n";
    if (!a.repo.empty() && !a.repo_read_only)
        o << "# Its own pgBackRest repository, writable (archive-push, backups); no other tenant's.\n"
          << "TemporaryFileSystem=" << p.backup_repo << ":ro\n"
          << "BindPaths=" << a.repo << "\n";
    if (!a.repo.empty() && a.repo_read_only)
        o << "# The one repository it restores from, read-only; no other.\n"
          << "TemporaryFileSystem=" << p.backup_repo << ":ro\n"
          << "BindReadOnlyPaths=" << a.repo << "\n";
    if (!a.remote.empty())
        o << "# Its repository host's configuration and its own certificates for it, read-only; no other tenant's.\n"
          << "TemporaryFileSystem=" << p.backup_remote << ":ro\n"
          << "BindReadOnlyPaths=" << a.remote << "\n";
    o << "# PostgreSQL's JIT (LLVM) needs writable+executable memory; hostd turns jit off instead of\n"
         "# allowing it, so W^X (MemoryDenyWriteExecute) can be enforced.\n"
      << kHardening << "PrivateUsers=yes\n";
    if (a.host_proc_figures)
        o << "# Patroni's psutil reads /proc/stat when it is imported (Patroni exits without it): the\n"
             "# host-wide figures of /proc, not its processes (ProtectProc=invisible still hides every\n"
             "# other user's).\n"
             "ProcSubset=all\n"
             "# python-etcd puts pyOpenSSL under urllib3 whenever it can import it, and pyOpenSSL's\n"
             "# callbacks need writable+executable memory (cffi), which W^X above refuses: Patroni's\n"
             "# TLS to etcd then fails. Hidden, Python's own ssl module serves it. These two lines are\n"
             "# where this sandbox differs from hostd-postgres@'s.\n"
             "InaccessiblePaths=-/usr/lib/python3/dist-packages/OpenSSL\n";
}

// The tenant's own repository as its units see it ("" when backups are off).
static std::string own_repo(const TemplatePaths& p) { return p.backup_repo.empty() ? "" : p.backup_repo + "/%i"; }
static std::string own_remote(const TemplatePaths& p) { return p.backup_remote.empty() ? "" : p.backup_remote + "/%i"; }

// The command-line settings that hand every WAL segment to pgBackRest; like the port, they
// outrank ALTER SYSTEM, so a tenant cannot point its archive elsewhere or turn it off.
static std::string archiving(const TemplatePaths& p) {
    if (p.backup_repo.empty() && p.backup_remote.empty()) return "";
    std::string cmd;
    for (size_t i = 0; i < p.archive_command.size(); i++) {
        // %p is PostgreSQL's; systemd would expand it (and %i is meant for systemd).
        if (p.archive_command.compare(i, 2, "%p") == 0) {
            cmd += "%%p";
            i++;
        } else {
            cmd += p.archive_command[i];
        }
    }
    return " -c archive_mode=on -c \"archive_command=" + cmd + "\" -c archive_library= -c archive_timeout=" +
           std::to_string(p.archive_timeout);
}

std::string tenant_template_name() { return "hostd-postgres@.service"; }

std::string render_tenant_template(const TemplatePaths& p) {
    validate(p);
    const std::string& root = p.mount_root;
    const std::string data = root + "/%i/" + p.pgdata;

    std::ostringstream o;
    o << "# One PostgreSQL cluster of a hostd tenant. Shipped once; each tenant is an instance\n"
         "# (hostd-postgres@<tenant>.service), so creating a tenant needs no daemon-reload.\n"
         "# Limits (MemoryMax, CPUQuota, TasksMax) are set per instance by hostd over D-Bus\n"
         "# (SetUnitProperties), which systemd persists under /etc/systemd/system.control/.\n"
         "\n"
         "[Unit]\n"
         "Description=hostd PostgreSQL tenant %i\n"
         "Documentation=man:hostd(8)\n"
         "After=network.target\n";
    if (!p.backup_remote.empty())
        o << "# Its pgBackRest server for the repository host, which reads the cluster for backups.\n"
             "Wants=hostd-backup-server@%i.service\n";
    o << "\n"
         "[Service]\n"
         "Type=notify\n"
         "User=_%i\n"
         "Group=_%i\n"
         "# The cluster lives on the tenant's own filesystem, which is mounted only in this unit's\n"
         "# namespace (MountImages below) and in hostd's own: the host's mount table does not grow with\n"
         "# tenants, so starting the 200th unit costs what the first did. The marker file exists only on\n"
         "# that filesystem: never start on an empty directory. Checked by the shell that then becomes\n"
         "# the postmaster (exec, same PID): an ExecStartPre= would pay for this unit's whole sandbox\n"
         "# (namespaces, mounts, MountImages, seccomp) a second time: 212 ms from the start job to\n"
         "# READY with it, 116 ms without (medians of 7 alternated starts).\n"
      << "# What hostd routes to and what its certificate names is given on the command line, which\n"
         "# outranks every configuration file: a tenant superuser can ALTER SYSTEM (or rewrite its\n"
         "# postgresql.conf) but cannot move its port, listen address, socket directory or TLS files.\n"
         "# The port comes from the instance's environment file, which hostd writes before each start.\n"
      << "EnvironmentFile=" << p.env_dir << "/%i\n"
      << "ExecStart=/bin/sh -c 'test -f " << root << "/%i/" << p.marker << " -a -f " << data
      << "/PG_VERSION || { echo \"hostd: no tenant filesystem with a cluster at " << root
      << "/%i: not starting\" >&2; exit 1; }; exec \"$$@\"' postgres " << p.pg_bindir << "/postgres -D " << data << " -c port=${HOSTD_PORT} -c listen_addresses=127.0.0.1"
      << " -c unix_socket_directories=/run/" << p.runtime_dir << "/%i -c ssl=on -c ssl_cert_file=server.crt"
      << " -c ssl_key_file=server.key" << archiving(p) << "\n"
      << "ExecReload=/bin/kill -HUP $MAINPID\n"
         "# SIGINT = PostgreSQL's \"fast\" shutdown; the postmaster stops its own children.\n"
         "KillMode=mixed\n"
         "KillSignal=SIGINT\n"
         "TimeoutStartSec=infinity\n"
         "TimeoutStopSec=60\n"
         "Restart=on-failure\n"
         "RestartSec=1s\n"
         "# Accounting, so hostd can show each tenant's CPU time and disk I/O (hostctl list, /metrics):\n"
         "# systemd puts the unit in the cpuacct and blkio controllers (cgroup v1) or turns on cpu and io\n"
         "# for it (v2). Memory and tasks are accounted already: MemoryMax and TasksMax need them.\n"
         "CPUAccounting=yes\n"
         "IOAccounting=yes\n"
      << "# Its own socket directory, /run/" << p.runtime_dir << "/<tenant>, owned by the tenant.\n"
      << "RuntimeDirectory=" << p.runtime_dir << "/%i\n"
      << "RuntimeDirectoryMode=0750\n"
         "UMask=0077\n"
         "\n"
         "# Sandbox: a tenant's superuser can run programs as this user (COPY ... TO PROGRAM,\n"
         "# untrusted languages), so the OS is the wall between tenants. What PostgreSQL tolerates:\n";
    sandbox(o, p, {.writable = data, .repo = own_repo(p), .remote = own_remote(p)});
    o << "RemoveIPC=yes\n"
         "\n"
         "[Install]\n"
         "WantedBy=multi-user.target\n";
    return o.str();
}

std::string patroni_template_name() { return "hostd-patroni@.service"; }

std::string render_patroni_template(const TemplatePaths& p) {
    validate(p);
    const std::string& root = p.mount_root;
    const std::string data = root + "/%i/" + p.pgdata;
    const std::string yml = root + "/%i/" + p.ha_dir + "/patroni.yml";

    std::ostringstream o;
    o << "# One member of a hostd HA tenant (Patroni, which runs the tenant's PostgreSQL). Shipped once;\n"
         "# each member is an instance (hostd-patroni@<tenant>.service), so creating one needs no\n"
         "# daemon-reload. The same user, sandbox and limits as hostd-postgres@ (hostd sets the limits\n"
         "# per instance over D-Bus): PostgreSQL is Patroni's child, in this unit's cgroup.\n"
         "\n"
         "[Unit]\n"
         "Description=hostd PostgreSQL tenant %i (HA member, Patroni)\n"
         "Documentation=man:hostd(8)\n"
         "# Patroni listens on the host's address and talks to the other members and to etcd.\n"
         "Wants=network-online.target\n"
         "After=network-online.target hostd-etcd.service\n"
         "\n"
         "[Service]\n"
         "# Patroni tells systemd nothing (no READY=1): started once it runs. Not notify with\n"
         "# NotifyAccess=all either: systemd would take the STOPPING=1 of every PostgreSQL restart\n"
         "# Patroni makes (a demotion, a rewind) for the unit's.\n"
         "Type=exec\n"
         "User=_%i\n"
         "Group=_%i\n"
         "# The member's patroni.yml is on the tenant's own filesystem (MountImages below), apart from\n"
         "# pgdata (a replica's is emptied and cloned from the primary), root's and read-only here: the\n"
         "# tenant cannot move its REST port, listen addresses or etcd. Checked with the marker by the\n"
         "# shell that then becomes Patroni (exec, same PID). Patroni puts the port and listen\n"
         "# addresses on PostgreSQL's command line, which outranks ALTER SYSTEM; the TLS files are in\n"
         "# its postgresql.conf, which postgresql.auto.conf outranks (weaker than hostd-postgres@).\n"
      << "EnvironmentFile=" << p.env_dir << "/%i\n"
      << "ExecStart=/bin/sh -c 'test -f " << root << "/%i/" << p.marker << " -a -f " << yml
      << " || { echo \"hostd: no HA member filesystem with a patroni.yml at " << root
      << "/%i: not starting\" >&2; exit 1; }; exec \"$$@\"' patroni " << p.patroni << " " << yml << "\n"
      << "# Patroni rereads patroni.yml (and applies what changed to PostgreSQL).\n"
         "ExecReload=/bin/kill -HUP $MAINPID\n"
         "# SIGTERM to Patroni alone: it stops its PostgreSQL itself (fast shutdown) and gives up the\n"
         "# leader key; what is left after TimeoutStopSec is killed.\n"
         "KillMode=mixed\n"
         "KillSignal=SIGTERM\n"
         "TimeoutStopSec=60\n"
         "Restart=on-failure\n"
         "RestartSec=1s\n"
         "# Accounting, as for hostd-postgres@ (hostctl list, /metrics).\n"
         "CPUAccounting=yes\n"
         "IOAccounting=yes\n"
      << "# Its own socket directory, /run/" << p.runtime_dir << "/<tenant>, owned by the tenant (Patroni's\n"
      << "# pgpass there too).\n"
      << "RuntimeDirectory=" << p.runtime_dir << "/%i\n"
      << "RuntimeDirectoryMode=0750\n"
         "UMask=0077\n"
         "\n"
         "# Sandbox: hostd-postgres@'s (a tenant's superuser can run programs as this user, Patroni's\n"
         "# user). What PostgreSQL and Patroni tolerate:\n";
    sandbox(o, p, {.writable = data, .repo = own_repo(p), .remote = own_remote(p), .host_proc_figures = true});
    o << "RemoveIPC=yes\n"
         "\n"
         "[Install]\n"
         "WantedBy=multi-user.target\n";
    return o.str();
}

std::string backup_unit_name(std::string_view type, std::string_view suffix) {
    return "hostd-backup-" + std::string(type) + "@." + std::string(suffix);
}

static std::string exec_line(const std::string& field, const std::vector<std::string>& argv);

std::string render_backup_service(const TemplatePaths& p, std::string_view type, const std::vector<std::string>& argv,
                                  const std::vector<std::string>& wake) {
    validate(p);
    if (p.backup_repo.empty()) throw Error(Errc::invalid, "Backup units need backup_repo", "backup_repo");
    if (argv.empty()) throw Error(Errc::invalid, "A backup unit needs a command", "command");
    std::string command;
    for (size_t i = 0; i < argv.size(); i++) {
        for (char c : argv[i])
            if (c == '"' || c == '\\' || c == '$' || c == ';' || c == ' ' || static_cast<unsigned char>(c) < 0x20)
                refuse("command", argv[i], "no quotes, spaces, '\\', '$', ';' or control characters");
        // The tenant's port names its socket; it is in the instance's environment file.
        if (i + 1 == argv.size()) command += "--pg1-port=${HOSTD_PORT} ";
        command += argv[i] + (i + 1 == argv.size() ? "" : " ");
    }
    std::ostringstream o;
    o << "# A " << type << " backup of a hostd tenant with pgBackRest, started by its timer\n"
         "# (hostd-backup-" << type << "@<tenant>.timer) or by hand. Written by hostd at start from hostd.toml.\n"
         "\n"
         "[Unit]\n"
         "Description=hostd " << type << " backup of tenant %i\n"
         "Documentation=man:hostd(8)\n";
    if (wake.empty())
        o << "# Only of a running tenant: never starts its PostgreSQL.\n"
             "Requisite=hostd-postgres@%i.service\n";
    o << "After=hostd-postgres@%i.service\n"
         "\n"
         "[Service]\n"
         "Type=oneshot\n"
         "User=_%i\n"
         "Group=_%i\n"
      << "EnvironmentFile=" << p.env_dir << "/%i\n";
    if (!wake.empty())
        o << "# A hibernated tenant is woken first, by hostd (as root: '+'); one stopped on purpose is\n"
             "# not started, and its backup fails. systemd never starts its PostgreSQL for this unit.\n"
             "# Without hostd ('-': its failure ignored) a running tenant is still backed up.\n"
          << "ExecStartPre=-+" << exec_line("wake", wake) << " %i\n";
    o << "ExecStart=" << command << "\n"
      << "# Behind the tenants' own work: a backup reads the whole cluster.\n"
         "Nice=10\n"
         "IOSchedulingClass=idle\n"
         "CPUWeight=20\n"
         "IOWeight=20\n"
         "UMask=0077\n"
      << "# pgBackRest's locks beside the tenant's socket, in its PostgreSQL's runtime directory";
    // systemd sets the namespace up for ExecStartPre= too: a hibernated tenant has no runtime
    // directory until the wake has started it ('-': a missing one is no error).
    if (wake.empty())
        o << ".\nReadWritePaths=/run/" << p.runtime_dir << "/%i\n";
    else
        o << " (none\n# before the wake: '-').\nReadWritePaths=-/run/" << p.runtime_dir << "/%i\n";
    o << "# The tenant's sandbox, its data read-only:\n";
    sandbox(o, p, {.repo = own_repo(p)});
    return o.str();
}

std::string render_backup_timer(std::string_view type, const std::string& on_calendar) {
    for (char c : on_calendar)
        if (c == '\n' || c == '\r' || c == '%')
            throw Error(Errc::invalid, "'" + on_calendar + "' cannot be a systemd calendar event", "schedule");
    std::ostringstream o;
    o << "# When hostd-backup-" << type << "@<tenant>.service runs. Written by hostd from hostd.toml;\n"
         "# hostd starts an instance for each tenant it runs.\n"
         "\n"
         "[Unit]\n"
         "Description=hostd " << type << " backups of tenant %i\n"
         "\n"
         "[Timer]\n"
         "OnCalendar=" << on_calendar << "\n"
         "# Spread over an hour, so tenants do not all start at once; one missed while the host was\n"
         "# down runs at the next start.\n"
         "RandomizedDelaySec=1h\n"
         "Persistent=yes\n";
    return o.str();
}

// One argument of ExecStart=, in double quotes: systemd then takes spaces as part of it, and
// reads \\ and \" as C escapes, %% as '%' (specifiers) and $$ as '$' (variables).
static std::string exec_word(const std::string& field, const std::string& arg) {
    std::string w = "\"";
    for (char c : arg) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) refuse(field, arg, "no control characters");
        if (c == '\\' || c == '"') w += '\\';
        if (c == '%' || c == '$') w += c;
        w += c;
    }
    return w + "\"";
}

static std::string exec_line(const std::string& field, const std::vector<std::string>& argv) {
    if (argv.empty()) refuse(field, "", "give a command");
    check_absolute(field, argv[0]);
    std::string line = argv[0];
    for (size_t i = 1; i < argv.size(); i++) line += " " + exec_word(field, argv[i]);
    return line;
}

std::string recovery_unit_name(std::string_view branch, std::string_view nonce) {
    return "hostd-recover-" + std::string(nonce) + "@" + std::string(branch) + ".service";
}

// The server's command: words systemd takes as they are, with %i and ${HOSTD_BACKUP_*} expanded.
static std::string server_line(const std::vector<std::string>& argv) {
    if (argv.empty()) refuse("backup_server_argv", "", "give a command");
    check_absolute("backup_server_argv", argv[0]);
    std::string line;
    for (const auto& w : argv) {
        for (char c : w)
            if (c == '"' || c == '\'' || c == '\\' || c == ';' || c == ' ' || static_cast<unsigned char>(c) < 0x20)
                refuse("backup_server_argv", w, "no quotes, spaces, '\\', ';' or control characters");
        line += (line.empty() ? "" : " ") + w;
    }
    return line;
}

std::string idle_job_unit_name(std::string_view id, std::string_view program) {
    return "hostd-pool-" + std::string(id) + "-" + std::string(program) + ".service";
}

std::string render_idle_job_unit(const IdleJob& j) {
    check_absolute("log", j.log);
    if (!j.input.empty()) check_absolute("input", j.input);
    for (const auto& v : {j.user, j.group})
        if (!v.empty()) check_name("user", v);
    for (const auto& e : j.env) {
        if (e.find('=') == std::string::npos || e.front() == '=') refuse("env", e, "write NAME=value");
        for (char c : e)
            if (static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\' || c == '%' || c == '$')
                refuse("env", e, "no quotes, '\\', '%', '$' or control characters");
    }
    std::ostringstream o;
    o << "# " << (j.description.empty() ? "hostd background work" : j.description) << ": one run, at idle CPU and I/O weight so\n"
         "# it never slows a tenant. Written by hostd for this run and removed after it.\n"
         "\n"
         "[Unit]\n"
         "Description=hostd: " << (j.description.empty() ? "background work" : j.description) << "\n"
         "Documentation=man:hostd(8)\n"
         "\n"
         "[Service]\n"
         "Type=oneshot\n";
    if (!j.user.empty()) o << "User=" << j.user << "\n";
    if (!j.group.empty()) o << "Group=" << j.group << "\n";
    for (const auto& e : j.env) o << "Environment=\"" << e << "\"\n";
    o << "WorkingDirectory=/\n"
      << "ExecStart=" << exec_line("argv", j.argv) << "\n";
    if (!j.input.empty()) o << "StandardInput=file:" << j.input << "\n";
    o << "StandardOutput=append:" << j.log << "\n"
         "StandardError=inherit\n"
      << "TimeoutStartSec=" << j.timeout_s << "\n"
         "# Below every tenant (CPUWeight=100 and IOWeight=100 unless set) and below hostd.\n"
         "CPUWeight=1\n"
         "IOWeight=1\n"
         "Nice=19\n"
         "CPUSchedulingPolicy=idle\n"
         "IOSchedulingClass=idle\n"
         "NoNewPrivileges=yes\n"
         "PrivateNetwork=yes\n"
         "PrivateTmp=yes\n"
         "ProtectHome=yes\n"
         "UMask=0077\n";
    if (!j.mount_device.empty()) {
        check_absolute("mount_device", j.mount_device);
        check_absolute("mount_target", j.mount_target);
        if (!j.mount_options.empty()) check_mount_options(j.mount_options);
        o << "# The disk, mounted in this unit's namespace only (hostd's own mounts are private).\n"
          << "MountImages=" << j.mount_device << ":" << j.mount_target
          << (j.mount_options.empty() ? "" : ":root:" + j.mount_options) << "\n";
    }
    return o.str();
}

std::string backup_server_unit_name() { return "hostd-backup-server@.service"; }

std::string render_backup_server_unit(const TemplatePaths& p) {
    validate(p);
    if (p.backup_remote.empty()) throw Error(Errc::invalid, "A tenant's pgBackRest server needs backup_remote", "backup_remote");
    std::ostringstream o;
    o << "# A hostd tenant's pgBackRest server: the repository host (hostd's [repository] on another\n"
         "# machine) reads the tenant's cluster through it for backups. It lets in only the repository\n"
         "# host's certificate, for this tenant's stanza only. Written by hostd at start.\n"
         "\n"
         "[Unit]\n"
         "Description=hostd pgBackRest server of tenant %i\n"
         "Documentation=man:hostd(8)\n"
         "PartOf=hostd-postgres@%i.service\n"
         "After=hostd-postgres@%i.service\n"
      << "# Not before hostd has made the tenant's repository there (it starts the server then).\n"
      << "ConditionPathExists=" << p.backup_remote << "/%i/server.env\n"
         "\n"
         "[Service]\n"
         "Type=simple\n"
         "User=_%i\n"
         "Group=_%i\n"
      << "# Its port and the repository host's certificate name (HOSTD_BACKUP_PORT, HOSTD_BACKUP_CLIENT).\n"
      << "EnvironmentFile=" << p.backup_remote << "/%i/server.env\n"
      << "ExecStart=" << server_line(p.backup_server_argv) << "\n"
      << "Restart=on-failure\n"
         "RestartSec=2s\n"
         "Nice=10\n"
         "IOSchedulingClass=idle\n"
         "CPUWeight=20\n"
         "IOWeight=20\n"
         "UMask=0077\n"
      << "# pgBackRest's locks beside the tenant's socket.\n"
      << "ReadWritePaths=-/run/" << p.runtime_dir << "/%i\n"
      << "# The tenant's sandbox, its data read-only; a server's children read pgBackRest's default\n"
         "# configuration file, not the server's options: it is empty here.\n"
         "BindReadOnlyPaths=/dev/null:/etc/pgbackrest.conf\n"
         "BindReadOnlyPaths=-/dev/null:/etc/pgbackrest/pgbackrest.conf\n";
    sandbox(o, p, {.remote = own_remote(p)});
    return o.str();
}

std::string render_recovery_unit(const TemplatePaths& p, const RecoveryUnit& r) {
    validate(p);
    if (p.backup_repo.empty() && p.backup_remote.empty())
        throw Error(Errc::invalid, "A branch's recovery needs backup_repo or backup_remote", "backup_repo");
    check_name("user", r.user);
    check_absolute("source_repo", r.source_repo);
    const std::string& root = p.backup_repo.empty() ? p.backup_remote : p.backup_repo;
    if (!inside(r.source_repo, root) || r.source_repo == root)
        refuse("source_repo", r.source_repo, "it must be a repository inside '" + root + "'");
    check_absolute("log", r.log);
    std::ostringstream o;
    o << "# The recovery of a hostd branch: the source's backup restored onto the branch's disk by\n"
         "# pgBackRest, then replayed by a PostgreSQL that takes logins on its socket only, until hostd\n"
         "# has promoted it and stops it. Written by hostd for this one recovery and removed after it.\n"
         "\n"
         "[Unit]\n"
         "Description=hostd recovery of branch %i\n"
         "Documentation=man:hostd(8)\n"
         "\n"
         "[Service]\n"
         "Type=exec\n"
         "# The source's user: the repository is its, and so is everything in it that is read here\n"
         "# (the backup, postgresql.auto.conf): written by a tenant, read with a tenant's rights.\n"
      << "User=" << r.user << "\n"
      << "Group=" << r.user << "\n"
      << "ExecStartPre=" << exec_line("restore", r.restore) << "\n"
      << "ExecStart=" << exec_line("server", r.server) << "\n"
      << "# hostd reads what went wrong from here; opened by systemd before the sandbox is set up.\n"
      << "StandardOutput=append:" << r.log << "\n"
      << "StandardError=inherit\n"
         "KillMode=mixed\n"
         "KillSignal=SIGINT\n"
      << "TimeoutStartSec=" << r.timeout_s << "\n"
      << "TimeoutStopSec=120\n"
         "UMask=0077\n";
    if (p.backup_remote.empty()) {
        o << "# The repository is a local directory: nothing to reach over the network.\n"
             "PrivateNetwork=yes\n"
             "# The tenant's sandbox, with its whole (new) disk writable and the source's repository read-only:\n";
        sandbox(o, p, {.writable = p.mount_root + "/%i", .repo = r.source_repo, .repo_read_only = true});
    } else {
        in6_addr a6{};
        const bool ip = ::inet_pton(AF_INET, p.repo_host_address.c_str(), &a6) == 1 ||
                        ::inet_pton(AF_INET6, p.repo_host_address.c_str(), &a6) == 1;
        if (ip)
            o << "# The repository is on the repository host: that address only.\n"
                 "IPAddressDeny=any\n"
              << "IPAddressAllow=" << p.repo_host_address << "\n";
        o << "# The tenant's sandbox, with its whole (new) disk writable and the source's certificates for\n"
             "# its repository read-only:\n";
        sandbox(o, p, {.writable = p.mount_root + "/%i", .remote = r.source_repo});
    }
    o << "# pgBackRest sets the owner of the recovery settings it writes (its own: without capabilities a\n"
         "# chown to anyone else fails anyway), and chown is in @privileged.\n"
         "SystemCallFilter=@chown\n"
         "RemoveIPC=yes\n";
    return o.str();
}

std::string render_stream_unit(const TemplatePaths& p, const StreamUnit& s) {
    validate(p);
    check_name("user", s.user);
    check_absolute("log", s.log);
    std::ostringstream o;
    o << "# The copy of a running hostd tenant into a branch's new disk (pg_basebackup over the\n"
         "# tenant's socket). Written by hostd for this one copy and removed after it.\n"
         "\n"
         "[Unit]\n"
         "Description=hostd copy of a running tenant into branch %i\n"
         "Documentation=man:hostd(8)\n"
         "\n"
         "[Service]\n"
         "Type=oneshot\n"
         "# The source's user: its server lets it in (peer), and what it sends is the source's.\n"
      << "User=" << s.user << "\n"
      << "Group=" << s.user << "\n"
      << "ExecStart=" << exec_line("copy", s.copy) << "\n"
      << "StandardOutput=append:" << s.log << "\n"
      << "StandardError=inherit\n"
      << "TimeoutStartSec=" << s.timeout_s << "\n"
      << "UMask=0077\n"
         "# The source's socket is a file: no network at all.\n"
         "PrivateNetwork=yes\n"
         "# The tenant's sandbox, with its whole (new) disk writable; the source's socket directory is\n"
         "# its user's (0750), the only one it can enter under /run.\n";
    sandbox(o, p, {.writable = p.mount_root + "/%i"});
    o << "RemoveIPC=yes\n";
    return o.str();
}

}  // namespace hostd::units

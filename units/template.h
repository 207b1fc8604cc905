// The tenant unit template, hostd-postgres@.service, rendered from the paths the daemon is
// configured with: the sandbox names those paths (the tenant's mount, the socket directory, what
// no tenant may see), so a template written for other paths would start units that see the
// wrong places or do not start at all. Pure: values in, text out.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hostd::units {

// Defaults: the shipped template (hostd's default configuration, Debian's PostgreSQL 15).
struct TemplatePaths {
    std::string mount_root = "/srv/hostd";     // tenants' filesystems: <mount_root>/<tenant>
    std::string disk_links = "/run/hostd/disk";  // hostd's link to each tenant's checked device: <disk_links>/<tenant>
    std::string env_dir = "/run/hostd/env";     // the instance's environment file <env_dir>/<tenant> (HOSTD_PORT)
    std::string runtime_dir = "hostd-tenant";  // socket dirs /run/<runtime_dir>/<tenant>, relative to /run
    std::string marker = ".hostd-tenant";      // marker file name on each tenant filesystem
    std::string pgdata = "pgdata";             // data dir name below the mount point
    std::vector<std::string> hidden = {"/var/lib/hostd", "/etc/hostd"};  // paths no tenant may see (state_dir, config)
    std::string mount_options = "nodev,nosuid,noexec,noatime";  // of the tenant's filesystem in its unit
    std::string pg_bindir = "/usr/lib/postgresql/15/bin";
    // HA members (#17): Patroni's program, and the directory below the mount point with its
    // patroni.yml (and the member's certificate), apart from pgdata.
    std::string patroni = "/usr/bin/patroni";
    std::string ha_dir = "ha";
    // Continuous archiving (pgBackRest): "" = off. Each tenant's repository is
    // <backup_repo>/<tenant>, the only part of backup_repo its unit sees (and may write).
    std::string backup_repo;
    // Or a repository host: each tenant's pgBackRest configuration and certificates for it in
    // <backup_remote>/<tenant> (the only part its units see), its pgBackRest server for the
    // repository host (argv, %i and ${HOSTD_BACKUP_*} from <backup_remote>/<tenant>/server.env),
    // and the repository host's address (a branch's recovery may reach it, nothing else).
    std::string backup_remote;
    std::vector<std::string> backup_server_argv;
    std::string repo_host_address;
    std::string archive_command;   // PostgreSQL's, with %i for the tenant and %p for the segment
    uint64_t archive_timeout = 60;  // seconds
};

// The hostd-postgres@.service template for these paths. Throws Errc::invalid, with the member's
// name as the field, for a path that is not absolute (runtime_dir: not relative), not
// normalized ("//", ".", "..", a trailing "/"), or that holds a character systemd would read
// as something else (whitespace, quotes, '%', '$', ':', '\', control characters: only letters,
// digits and "/._-+@" are taken); for a marker or pgdata that is not a plain file name; for
// mount options other than comma-separated words of [A-Za-z0-9_=.+-] (empty: the filesystem's
// defaults); and for a mount_root, disk_links or pg_bindir inside a hidden path (hidden from the
// very unit that needs it).
std::string render_tenant_template(const TemplatePaths& p);

// Backups (backup_repo set): "hostd-backup-<type>@.service" running argv (pgBackRest's, %i for
// the tenant; the tenant's port is added from its environment file before the last word) as the
// tenant in its sandbox with its data read-only, after its PostgreSQL only; and the timer that
// starts it on_calendar (systemd's OnCalendar=). wake (with [hibernate] on): a command that wakes
// a hibernated tenant and does nothing to a running one (hostctl wake, run as root with the
// tenant's name as its last word) before the backup; empty: the backup runs only while the
// tenant's unit does (Requisite=).
std::string backup_unit_name(std::string_view type, std::string_view suffix);
std::string render_backup_service(const TemplatePaths& p, std::string_view type, const std::vector<std::string>& argv,
                                  const std::vector<std::string>& wake = {});
std::string render_backup_timer(std::string_view type, const std::string& on_calendar);

// With a repository host: "hostd-backup-server@.service", the tenant's pgBackRest server through
// which the repository host reads its cluster for backups, as the tenant in its sandbox with its
// data read-only; wanted by the tenant's unit, stopped with it.
std::string backup_server_unit_name();
std::string render_backup_server_unit(const TemplatePaths& p);

// A branch's recovery (backups on): pgBackRest's restore (ExecStartPre=), then the recovering
// PostgreSQL (ExecStart=), as the source's OS user in the branch's sandbox: the branch's disk
// (the instance, %i) writable, the source's repository read-only, no network. Both write to log.
// The unit is written for one recovery under recovery_unit_name (a nonce: systemd loads a unit
// it has never seen from disk without a daemon-reload, and never reuses a stale definition).
struct RecoveryUnit {
    std::string user;         // the source's OS user
    std::string source_repo;  // <backup_repo>/<source>, or with a repository host <backup_remote>/<source>
    std::vector<std::string> restore, server;  // argv; arguments may hold spaces, quotes, '%'
    std::string log;          // absolute path
    uint64_t timeout_s = 600; // for the restore and the start of the server
};
std::string recovery_unit_name(std::string_view branch, std::string_view nonce);
std::string render_recovery_unit(const TemplatePaths& p, const RecoveryUnit& r);

// A branch of "latest" copied from a running source (backup/stream.h): pg_basebackup as the
// source's user, reaching the source's socket and the branch's new disk, nothing else (no
// network, no repository). Named as a recovery unit (recovery_unit_name): the same leftovers.
struct StreamUnit {
    std::string user;               // the source's OS user
    std::vector<std::string> copy;  // argv
    std::string log;                // absolute path
    uint64_t timeout_s = 600;
};
std::string render_stream_unit(const TemplatePaths& p, const StreamUnit& s);

// A program of hostd's background work (the warm pool's mkfs and initdb) in a unit of its own,
// so it never slows a tenant: Type=oneshot in system.slice beside the tenants' units, at the
// lowest CPU and I/O weight (CPUWeight=1, IOWeight=1), SCHED_IDLE at nice 19 and the idle I/O
// class. Written for one run under idle_job_unit_name (the pool disk's id and the program: a
// name systemd has never seen) and removed after it; hostd's start stops and removes any that a
// crash left (idle_job_pattern).
struct IdleJob {
    std::string description;         // for systemctl status
    std::vector<std::string> argv;   // argv[0] absolute; arguments may hold spaces, quotes, '%'
    std::vector<std::string> env;    // NAME=value, no control characters
    std::string user, group;         // names or numeric ids; "" : root
    std::string input;               // absolute path of a file systemd opens as stdin ("" : none)
    std::string log;                 // absolute path: stdout and stderr appended
    // A block device mounted at target in the unit's own mount namespace (MountImages=): the
    // same filesystem hostd has mounted in its namespace (one superblock). "" : none.
    std::string mount_device, mount_target, mount_options;
    uint64_t timeout_s = 300;
};
std::string idle_job_unit_name(std::string_view id, std::string_view program);  // hostd-pool-<id>-<program>.service
inline constexpr std::string_view idle_job_pattern = "hostd-pool-*.service";
std::string render_idle_job_unit(const IdleJob& j);

// "hostd-postgres@.service": the name the template is installed under.
std::string tenant_template_name();

// The unit of an HA tenant's member (#17), hostd-patroni@.service: Patroni runs as the tenant's
// OS user in the same sandbox, limits and runtime directory as hostd-postgres@ and starts the
// tenant's PostgreSQL as its child (so both share the cgroup). Type=exec (Patroni tells systemd
// nothing), its patroni.yml at <mount_root>/%i/<ha_dir>/patroni.yml checked with the marker by
// the shell that becomes Patroni; KillMode=mixed: on stop Patroni shuts its PostgreSQL down
// itself. Validates the paths as render_tenant_template does (patroni: an absolute path outside
// the hidden ones; ha_dir: a file name).
std::string render_patroni_template(const TemplatePaths& p);

// "hostd-patroni@.service".
std::string patroni_template_name();

}  // namespace hostd::units

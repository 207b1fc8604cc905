// Where a tenant lives on the host: every path, name and id it has, from one pure function of
// (config, name). The Manager, the real effects, the collector and the unit template all take
// them from here, so they cannot disagree.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backup/pgbackrest.h"
#include "model/config.h"
#include "units/template.h"

namespace hostd {

struct TenantRecord;

// What runs a tenant's PostgreSQL: its own unit (hostd-postgres@<name>.service), or Patroni in
// an HA member's (hostd-patroni@<name>.service, #17). The rest of the layout is the same.
enum class UnitKind { postgres, patroni };

struct TenantLayout {
    std::string name;
    std::string mountpoint;  // <mount_root>/<name>: its own filesystem (hostd's namespace and its unit's)
    std::string pgdata;      // <mountpoint>/pgdata
    std::string marker;      // <mountpoint>/.hostd-tenant: names the tenant and its filesystem's UUID
    std::string reserve;     // <mountpoint>/.hostd-reserve: the disk-full guard's reserve (root's)
    std::string guard_conf;  // <pgdata>/hostd.guard.conf: read last; read-only while the guard holds
    std::string socket_dir;  // /run/hostd-tenant/<name>: PostgreSQL's socket (the unit's RuntimeDirectory)
    std::string disk_link;   // /run/hostd/disk/<name>: the device hostd checked, which the unit mounts
    std::string env_file;    // /run/hostd/env/<name>: the unit's environment (HOSTD_PORT), hostd's, root's
    UnitKind kind = UnitKind::postgres;
    std::string unit;        // hostd-postgres@<name>.service (hostd-patroni@<name>.service: UnitKind::patroni)
    std::string cgroup;      // the unit's cgroup path below a controller's root
    std::string os_user;     // _<name>
    std::string image;       // <loop_dir>/<name>.img (loop backend)
    std::string record;      // <state_dir>/tenants/<name>.toml
    std::string dropins;     // /etc/systemd/system.control/<unit>.d: limits systemd persisted
    // Backups ("" when backup.repo is off): its own pgBackRest repository, and pgBackRest's
    // locks and spool in its socket directory (the unit's, gone when it stops).
    std::string backup_repo;  // <backup.repo>/<name> ("" with a repository host)
    std::string backup_work;  // <socket_dir>/pgbackrest
    bool backups = false;     // archiving and backups on (backup.repo or backup.repo_host)
    // With a repository host: /var/lib/hostd-remote/<name>, hostd's (root's, readable by the
    // tenant's group): pgBackRest's configuration naming the repository, the tenant's client
    // certificate for it, its server's certificate, and the server's environment file.
    std::string backup_remote;
    std::string backup_server_unit;  // hostd-backup-server@<name>.service
    // What of its backups lies on this host, owned by its OS user: its repository (backup.repo)
    // or its files for the repository host (backup_remote); "" with backups off. While it is
    // there its user stays, so the uid (and a gid that reads its keys) is nobody else's.
    std::string backup_dir;
    // An HA member (UnitKind::patroni; "" otherwise): <mountpoint>/ha, root's and read-only in the
    // unit: patroni.yml, its certificates and the PostgreSQL settings Patroni hands on, outside
    // pgdata (a replica's pgdata starts empty and is the primary's copy); and Patroni's
    // password file in the unit's runtime directory.
    std::string ha_dir;   // <mountpoint>/ha
    std::string pgpass;   // <socket_dir>/.pgpass

    // The filesystem label (fits ext4's 16 and xfs's 12 bytes; for humans, never identity).
    std::string label(std::string_view filesystem) const;
};

// By name: what the name alone says; the kind of unit found (orphans), else postgres.
TenantLayout layout_of(const Config& cfg, std::string_view name, UnitKind kind = UnitKind::postgres);
// As the record says: UnitKind::patroni for an HA member (t.ha). Callers that hold the record use this.
TenantLayout layout_of(const Config& cfg, const TenantRecord& t);

// The tenant's pgBackRest stanza (its name), as its unit and hostd see it; port: its PostgreSQL's.
backup::Stanza stanza_of(const TenantLayout& l, uint16_t port);
backup::Options backup_options(const Config& cfg);
// The repository host's address (backup.repo_host without its port and brackets).
std::string repo_host_address(const Config& cfg);
// Scheduled backups (backup.repo set and a schedule): the timers of a tenant, and the unit files
// behind them (file name → content), which hostd writes at start.
std::vector<std::string> backup_timers(const Config& cfg, std::string_view tenant);
std::vector<std::pair<std::string, std::string>> backup_unit_files(const Config& cfg);
// The role pgBackRest logs in as (peer, from the tenant's OS user): a superuser, as its
// backups need; the tenant's OS user owns every file of the cluster already.
inline constexpr std::string_view kBackupRole = "hostd_backup";

// Host-wide places the per-tenant ones live in (for the inventory of what hostd made, and for
// the unit template, whose %i stands for the tenant's name).
namespace layout {
inline constexpr std::string_view kUnitPrefix = "hostd-postgres@";
inline constexpr std::string_view kPatroniUnitPrefix = "hostd-patroni@";  // an HA member's (UnitKind::patroni)
inline constexpr std::string_view kUnitSuffix = ".service";
// Every tenant unit, of either kind, as systemd's unit name patterns (ListUnitsByPatterns).
std::vector<std::string> unit_patterns();
inline constexpr std::string_view kUserPrefix = "_";
inline constexpr std::string_view kImageSuffix = ".img";
inline constexpr std::string_view kRuntimeDir = "hostd-tenant";  // below /run
inline constexpr std::string_view kDiskLinks = "/run/hostd/disk";
inline constexpr std::string_view kEnvDir = "/run/hostd/env";
// Each tenant's configuration and certificates for the repository host (persistent: the tenant's
// units read them at every start).
inline constexpr std::string_view kBackupRemoteDir = "/var/lib/hostd-remote";
// A branch's recovery unit writes its output here (root's, 0700): kept when the recovery fails.
inline constexpr std::string_view kRecoveryLogs = "/run/hostd/recovery";
inline constexpr std::string_view kRuntimeUnitDir = "/run/systemd/system";
inline constexpr std::string_view kMarkerName = ".hostd-tenant";
inline constexpr std::string_view kPgdataName = "pgdata";
inline constexpr std::string_view kControlDir = "/etc/systemd/system.control";
std::string records_dir(const Config& cfg);
// <state_dir>/deleted: the records of deleted tenants whose backups are kept (model/kept.h).
std::string kept_dir(const Config& cfg);
std::string kept_record(const Config& cfg, std::string_view name);  // <kept_dir>/<name>.toml
// The tenant unit template's paths, from the same places as every TenantLayout.
units::TemplatePaths template_paths(const Config& cfg);
// The tenant a unit (of either kind), OS user, image file or mount point name belongs to; ""
// when the name is not of that form or what it holds is not a valid tenant name (nothing
// hostd made).
std::string tenant_of_unit(std::string_view unit);
// The kind of a tenant unit's name (patroni for hostd-patroni@...; postgres for any other).
UnitKind kind_of_unit(std::string_view unit);
// "hostd-backup-full@src.service" → {"src", "full"}; {"", ""} for any other name.
std::pair<std::string, std::string> tenant_of_backup_unit(std::string_view unit);
std::string tenant_of_user(std::string_view user);
std::string tenant_of_image(std::string_view filename);
std::string tenant_of_mount(std::string_view mountpoint);  // a mount directly below mount_root
// The marker file (kMarkerName) on a tenant's filesystem: its tenant and filesystem UUID.
std::string marker_text(std::string_view tenant, std::string_view fs_uuid);
// The marker names this tenant: the filesystem is hostd's, and that tenant's.
bool marker_names(std::string_view marker, std::string_view tenant);
}  // namespace layout

}  // namespace hostd

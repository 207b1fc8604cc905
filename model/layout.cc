#include "model/layout.h"

#include <unistd.h>

#include <algorithm>
#include <tuple>

#include "base/error.h"
#include "model/tenant.h"
#include "storage/storage.h"

// hostctl as installed beside hostd (CMake sets it from the install prefix).
#ifndef HOSTD_HOSTCTL
#define HOSTD_HOSTCTL "/usr/bin/hostctl"
#endif

namespace hostd {

std::string TenantLayout::label(std::string_view filesystem) const {
    return storage::label_for(name, std::string(filesystem));
}

TenantLayout layout_of(const Config& cfg, const TenantRecord& t) {
    return layout_of(cfg, t.name, t.ha ? UnitKind::patroni : UnitKind::postgres);
}

TenantLayout layout_of(const Config& cfg, std::string_view name, UnitKind kind) {
    using namespace layout;
    const std::string n(name);
    TenantLayout l;
    l.name = n;
    l.kind = kind;
    l.mountpoint = cfg.mount_root + "/" + n;
    l.pgdata = l.mountpoint + "/" + std::string(kPgdataName);
    l.marker = l.mountpoint + "/" + std::string(kMarkerName);
    l.reserve = l.mountpoint + "/.hostd-reserve";
    l.guard_conf = l.pgdata + "/hostd.guard.conf";
    l.socket_dir = "/run/" + std::string(kRuntimeDir) + "/" + n;
    l.disk_link = std::string(kDiskLinks) + "/" + n;
    l.env_file = std::string(kEnvDir) + "/" + n;
    const bool patroni = kind == UnitKind::patroni;
    l.unit = std::string(patroni ? kPatroniUnitPrefix : kUnitPrefix) + n + std::string(kUnitSuffix);
    // systemd puts instances of a template in the template's own slice ("-" escaped as \x2d).
    l.cgroup = std::string(patroni ? "/system.slice/system-hostd\\x2dpatroni.slice/" : "/system.slice/system-hostd\\x2dpostgres.slice/") + l.unit;
    // Tenant names are at most 30 characters and systemd accepts user names of up to 31; the
    // leading underscore keeps tenant accounts apart from ordinary system users.
    l.os_user = std::string(kUserPrefix) + n;
    l.image = cfg.loop_dir + "/" + n + std::string(kImageSuffix);
    l.record = records_dir(cfg) + "/" + n + ".toml";
    l.dropins = std::string(kControlDir) + "/" + l.unit + ".d";
    if (!cfg.backup_repo.empty()) {
        l.backup_repo = cfg.backup_repo + "/" + n;
        l.backup_work = l.socket_dir + "/pgbackrest";
    }
    if (remote_repository(cfg)) {
        l.backup_work = l.socket_dir + "/pgbackrest";
        l.backup_remote = std::string(layout::kBackupRemoteDir) + "/" + n;
        l.backup_server_unit = "hostd-backup-server@" + n + ".service";
    }
    l.backups = backups_on(cfg);
    l.backup_dir = l.backup_remote.empty() ? l.backup_repo : l.backup_remote;
    if (patroni) {
        l.ha_dir = l.mountpoint + "/ha";
        l.pgpass = l.socket_dir + "/.pgpass";
    }
    return l;
}

backup::Stanza stanza_of(const TenantLayout& l, uint16_t port) {
    return {.name = l.name, .repo = l.backup_repo, .pgdata = l.pgdata, .socket_dir = l.socket_dir, .port = port,
            .user = std::string(kBackupRole), .work_dir = l.backup_work,
            .config = l.backup_remote.empty() ? "" : l.backup_remote + "/pgbackrest.conf"};
}

std::vector<std::string> backup_timers(const Config& cfg, std::string_view tenant) {
    std::vector<std::string> out;
    if (cfg.backup_repo.empty()) return out;
    for (auto [type, sched] : {std::pair{"full", &cfg.full_schedule}, std::pair{"incr", &cfg.incr_schedule}})
        if (!sched->empty()) out.push_back("hostd-backup-" + std::string(type) + "@" + std::string(tenant) + ".timer");
    return out;
}

std::string repo_host_address(const Config& cfg) {
    std::string a = cfg.backup_repo_host.substr(0, cfg.backup_repo_host.rfind(':'));
    if (a.size() > 2 && a.front() == '[' && a.back() == ']') a = a.substr(1, a.size() - 2);
    return a;
}

std::vector<std::pair<std::string, std::string>> backup_unit_files(const Config& cfg) {
    std::vector<std::pair<std::string, std::string>> out;
    if (remote_repository(cfg)) {
        out.emplace_back(units::backup_server_unit_name(), units::render_backup_server_unit(layout::template_paths(cfg)));
        return out;
    }
    if (cfg.backup_repo.empty()) return out;
    const units::TemplatePaths paths = layout::template_paths(cfg);
    const TenantLayout l = layout_of(cfg, "%i");
    // A hibernated tenant's timers keep running; its backup wakes it first.
    std::vector<std::string> wake;
    if (hibernate_on(cfg)) wake = {HOSTD_HOSTCTL, "--socket", cfg.socket_path, "wake"};
    for (auto [type, kind, sched] : {std::tuple{"full", backup::BackupType::full, &cfg.full_schedule},
                                     std::tuple{"incr", backup::BackupType::incr, &cfg.incr_schedule}}) {
        if (sched->empty()) continue;
        out.emplace_back(units::backup_unit_name(type, "service"),
                         units::render_backup_service(paths, type, backup::backup_argv(stanza_of(l, 0), backup_options(cfg), kind), wake));
        out.emplace_back(units::backup_unit_name(type, "timer"), units::render_backup_timer(type, *sched));
    }
    return out;
}

backup::Options backup_options(const Config& cfg) {
    uint64_t restore = cfg.restore_processes;
    if (restore == 0) restore = std::clamp<uint64_t>(static_cast<uint64_t>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN))), 1, 4);
    return {.exe = cfg.pgbackrest, .compress = cfg.backup_compress, .retention_full = cfg.backup_retention_full,
            .restore_process_max = restore};
}

namespace layout {

std::string records_dir(const Config& cfg) { return cfg.state_dir + "/tenants"; }
std::string kept_dir(const Config& cfg) { return cfg.state_dir + "/deleted"; }
std::string kept_record(const Config& cfg, std::string_view name) { return kept_dir(cfg) + "/" + std::string(name) + ".toml"; }

units::TemplatePaths template_paths(const Config& cfg) {
    units::TemplatePaths p;
    p.mount_root = cfg.mount_root;
    p.disk_links = std::string(kDiskLinks);
    p.env_dir = std::string(kEnvDir);
    p.runtime_dir = std::string(kRuntimeDir);
    p.marker = std::string(kMarkerName);
    p.pgdata = std::string(kPgdataName);
    // What no tenant may see: hostd's records and CA, and its configuration.
    p.hidden = {cfg.state_dir, "/etc/hostd"};
    if (!(cfg.loop_dir + "/").starts_with(cfg.state_dir + "/")) p.hidden.push_back(cfg.loop_dir);
    p.mount_options = cfg.mount_options;
    p.pg_bindir = cfg.pg_bindir;
    if (remote_repository(cfg)) {
        p.backup_remote = std::string(kBackupRemoteDir);
        p.repo_host_address = repo_host_address(cfg);
        TenantLayout l = layout_of(cfg, "%i");
        p.archive_command = backup::archive_command(stanza_of(l, 0), backup_options(cfg));
        p.archive_timeout = cfg.archive_timeout;
        p.backup_server_argv = backup::server_argv(
            {.address = cfg.backup_server_address.empty() ? cfg.public_host : cfg.backup_server_address,
             .port = "${HOSTD_BACKUP_PORT}", .cert = l.backup_remote + "/server.crt", .key = l.backup_remote + "/server.key",
             .ca = l.backup_remote + "/ca.crt", .client_cn = "${HOSTD_BACKUP_CLIENT}", .stanza = "%i"},
            backup_options(cfg));
    }
    if (!cfg.backup_repo.empty()) {
        p.backup_repo = cfg.backup_repo;
        TenantLayout l = layout_of(cfg, "%i");  // systemd's specifier for the instance: the tenant
        p.archive_command = backup::archive_command(stanza_of(l, 0), backup_options(cfg));
        p.archive_timeout = cfg.archive_timeout;
    }
    return p;
}

namespace {
std::string between(std::string_view s, std::string_view prefix, std::string_view suffix) {
    if (s.size() <= prefix.size() + suffix.size() || !s.starts_with(prefix) || !s.ends_with(suffix)) return "";
    std::string name(s.substr(prefix.size(), s.size() - prefix.size() - suffix.size()));
    try {
        validate_name(name);
    } catch (const Error&) {
        return "";
    }
    return name;
}
}  // namespace

std::vector<std::string> unit_patterns() {
    return {std::string(kUnitPrefix) + "*" + std::string(kUnitSuffix), std::string(kPatroniUnitPrefix) + "*" + std::string(kUnitSuffix)};
}
std::string tenant_of_unit(std::string_view unit) {
    return between(unit, kind_of_unit(unit) == UnitKind::patroni ? kPatroniUnitPrefix : kUnitPrefix, kUnitSuffix);
}
UnitKind kind_of_unit(std::string_view unit) { return unit.starts_with(kPatroniUnitPrefix) ? UnitKind::patroni : UnitKind::postgres; }
std::pair<std::string, std::string> tenant_of_backup_unit(std::string_view unit) {
    for (const char* type : {"full", "diff", "incr"}) {
        std::string name = between(unit, "hostd-backup-" + std::string(type) + "@", ".service");
        if (!name.empty()) return {name, type};
    }
    return {"", ""};
}
std::string tenant_of_user(std::string_view user) { return between(user, kUserPrefix, ""); }
std::string tenant_of_image(std::string_view filename) { return between(filename, "", kImageSuffix); }
std::string tenant_of_mount(std::string_view mountpoint) {
    return between(mountpoint.substr(mountpoint.rfind('/') + 1), "", "");
}

std::string marker_text(std::string_view tenant, std::string_view fs_uuid) {
    return "tenant=" + std::string(tenant) + "\nfs_uuid=" + std::string(fs_uuid) + "\n";
}
bool marker_names(std::string_view marker, std::string_view tenant) {
    return marker.starts_with("tenant=" + std::string(tenant) + "\n");
}

}  // namespace layout
}  // namespace hostd

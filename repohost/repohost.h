// The repository-host role: this hostd keeps pgBackRest repositories for the tenants of other
// hosts (hostd.toml [repository]). Each repository, <root>/<client host>/<tenant>, is served by a
// `pgbackrest server` of its own, run as an OS user of its own in a sandbox that sees that one
// directory, on a port of its own: pgBackRest's client options (--repo1-path) outrank the
// server's, so a server shared by tenants would be no wall between them. Backups run here
// (pgBackRest backs up only where the repository is), reaching the tenant host's own pgbackrest
// server by TLS with this host's certificate.
// Pure: validation, names, argv, unit files and the state file's format; the effects are hostd's.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backup/pgbackrest.h"

namespace hostd::repohost {

// What hostd.toml says of the role (and of the backups it runs for every repository).
struct Settings {
    std::string listen_address;   // "10.0.0.2" or "::1" (no brackets): the API's and the servers'
    uint16_t listen_port = 0;
    std::string root = "/var/lib/hostd-repos";
    std::pair<uint16_t, uint16_t> ports{18000, 18999};
    std::string state_dir;        // <hostd state_dir>/repos: one file per repository
    std::string log_dir = "/run/hostd/repos";          // what each unit printed last (root's)
    std::string unit_dir = "/run/systemd/system";      // written again at every start
    std::vector<std::string> hidden;  // hostd's state and config: never visible to a repository's units
    std::string self;  // this host's name (gethostname): in its repositories' certificates
    // The CA (root's): its certificate is handed to each unit with LoadCredential=; its key signs
    // each repository's own certificates.
    std::string ca_cert, ca_key;
    backup::Options options;
    std::string full_schedule, incr_schedule;  // systemd OnCalendar=; "" none
};

// "ADDR:PORT" (IPv4, or [IPv6]:PORT) → address and port. Throws Errc::invalid (field).
std::pair<std::string, uint16_t> parse_listen(std::string_view spec, const std::string& field);

// A host name as the client's certificate names it (CN "hostd@<host>"): lower-case letters,
// digits, '-' and inner '.', at most 63; never "." or "..". Throws Errc::invalid (field "host").
void validate_host(std::string_view host);
// The client host from a certificate's CN: "hostd@<host>" with a valid host; nullopt otherwise.
std::optional<std::string> host_of_cn(std::string_view cn);
// A tenant name as hostd's tenants have (model/tenant.h); Errc::invalid with field "tenant".
void validate_tenant(std::string_view tenant);

// Where a repository's tenant runs: its host's pgbackrest server and its PostgreSQL there.
struct PgHost {
    std::string host;          // address or DNS name of the tenant host
    uint16_t server_port = 0;  // its pgbackrest server for this tenant
    std::string path;          // pg1-path: the data directory
    std::string socket_path;   // pg1-socket-path
    uint16_t port = 0;         // pg1-port: names the socket
    std::string user = "hostd_backup";
    bool operator==(const PgHost&) const = default;
};
// Throws Errc::invalid with the field (pg_host, pg_path, ...) of what is wrong.
void validate(const PgHost& pg);

// One repository kept here: the state hostd persists for it.
struct Repo {
    std::string host;    // the client host (from its certificate)
    std::string tenant;  // = the stanza
    uint16_t port = 0;   // its pgbackrest server's port here
    PgHost pg;
    // Its tenant was deleted with its backups kept (for branches and restores): no scheduled
    // backups (the tenant's server is gone), no backup on demand; a PUT makes it live again.
    bool retired = false;
    // Recorded before a new repository's first step and cleared after its last: a start of
    // hostd that finds it set undoes what that PUT made (its client never heard it succeed).
    bool pending = false;
};

// What the API answers of a repository (PUT, GET).
struct RepoView {
    std::string tenant;
    uint16_t port = 0;          // its pgbackrest server's, here
    std::string path;           // where the server serves it (the client's --repo1-path)
    std::string host;           // this host's name: the clients' --repo1-host (pgBackRest matches its
                                // certificate by DNS name only)
    std::string backup_client;  // "hostd@<this host>": the CN backups reach the tenant host with
    // GET only:
    uint64_t bytes = 0;
    int64_t last_wal = 0;           // epoch seconds of the newest WAL segment; 0 none
    std::string last_backup_error;  // "" when the last scheduled backup succeeded
    bool retired = false;
};

struct Names {
    std::string id;            // "<host>_<tenant>": hosts and tenants hold no '_'
    std::string user;          // its OS user: "_rh_" + 8 hex digits of a hash of id (fits useradd)
    std::string host_dir;      // <root>/<host> (root's, 0711)
    std::string repo;          // <root>/<host>/<tenant> (the user's, 0700)
    std::string server_unit;   // hostd-repo-server-<id>.service
    std::string stanza_unit;   // hostd-repo-stanza-<id>.service (oneshot)
    std::string state_file;    // <state_dir>/<id>.toml
    // The repository's own certificates (root's, 0600; its units get copies): its server's
    // (server use only) and its backups' client one, which the tenant host authorizes. Never
    // this host's own: whatever its server can read, the tenant's client can read through it.
    std::string server_cert, server_key;  // <state_dir>/<id>.server.{crt,key}
    std::string client_cert, client_key;  // <state_dir>/<id>.client.{crt,key}
    std::string runtime_dir;   // hostd-repos/<id> below /run: pgBackRest's locks, shared by its units
    std::string backup_unit(backup::BackupType t) const;  // hostd-repo-backup-<type>-<id>.service
    std::string timer(backup::BackupType t) const;        // ...timer
    std::string log(std::string_view unit) const;         // <log_dir>/<unit>.log
    std::string log_dir;
};
Names names_of(const Settings& s, std::string_view host, std::string_view tenant);

// The subjects of a repository's certificates. Its server's: "repository.<tenant>.<host>", for
// server use only, SAN this host's name and listen address. Its backups' client:
// "backup.<tenant>.<host>@<self>", for client use only: no host's ("hostd@<host>") and no
// tenant's ("<tenant>@<host>": tenant names hold no '.'), so it passes for nothing else.
std::string server_cn(const Repo& r);
std::string backup_client_cn(const Settings& s, const Repo& r);

// The argv run here, as the repository's user in its sandbox. The credential files are named
// with systemd's %d (the unit's credentials directory): host.crt, host.key, ca.crt.
std::vector<std::string> server_argv(const Settings& s, const Repo& r);
std::vector<std::string> stanza_create_argv(const Settings& s, const Repo& r);
std::vector<std::string> backup_argv(const Settings& s, const Repo& r, backup::BackupType type);
std::vector<std::string> info_argv(const Settings& s, const Repo& r);

// The units of a repository, file name → content: its server, the stanza-create and a backup
// service per type (oneshot, each printing to its log), and the timers of the scheduled types.
std::vector<std::pair<std::string, std::string>> render_units(const Settings& s, const Repo& r);
// The timers render_units wrote (the schedules that are set; none for a retired repository).
std::vector<std::string> timers(const Settings& s, const Repo& r);

// What a repository unit's log says went wrong: pgBackRest's last error (backup::error_of), and
// before it the warnings that explain it (the reason "unable to find primary cluster" is in a
// WARN line: which host it could not reach, and why), at most 3; at most 2000 characters.
std::string failure_of(std::string_view log);

// The state file (TOML).
std::string render_state(const Repo& r);
Repo parse_state(std::string_view text, const std::string& source);  // Errc::failed naming what is wrong

// The first port of the range that is in no used set and that free() says is free; nullopt if none.
template <class Free>
std::optional<uint16_t> pick_port(std::pair<uint16_t, uint16_t> range, const std::set<uint16_t>& used, Free free) {
    for (uint32_t p = range.first; p <= range.second; p++)
        if (!used.count(static_cast<uint16_t>(p)) && free(static_cast<uint16_t>(p))) return static_cast<uint16_t>(p);
    return std::nullopt;
}

}  // namespace hostd::repohost

// pgBackRest for hostd's tenants: one stanza per tenant, each in a repository of its own
// (<repo_root>/<tenant>), so the tenant's OS user, which archives its WAL and runs its backups,
// can be given that directory and nothing of any other tenant's. Every option is on the command
// line: nothing is read from a configuration file a tenant could reach. pgBackRest refuses an
// option a command does not take, so each command's argv is built here, from one description.
// Pure: values in, argv and text out; pgBackRest's info JSON in, domain types out.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hostd::backup {

// One tenant's stanza, as its PostgreSQL and its backups see the paths (inside its unit).
struct Stanza {
    std::string name;        // the tenant's name
    std::string repo;        // its own repository directory
    std::string pgdata;
    std::string socket_dir;  // PostgreSQL's socket directory
    uint16_t port = 0;       // names the socket (.s.PGSQL.<port>); 0: pgBackRest's default
    std::string user;        // the role backups log in as (a superuser; peer over the socket)
    std::string work_dir;    // pgBackRest's lock files and async archiving's spool
    // A repository on a repository host: pgBackRest's configuration file that names it (its
    // host, port, path and this stanza's client certificate), hostd's, readable by the tenant;
    // repo is then unused. "": repo is a directory here and no configuration file is read.
    std::string config;
};

struct Options {
    std::string exe = "/usr/bin/pgbackrest";
    std::string compress = "lz4";      // none | gz | lz4 | zst | bz2
    uint64_t retention_full = 2;       // full backups kept (and the WAL they need)
    uint64_t process_max = 1;          // parallel compress/transfer processes of backups and WAL
    uint64_t restore_process_max = 1;  // and of a restore (nothing else competes with a new cluster)
};

enum class BackupType { full, diff, incr };
std::string_view to_string(BackupType t);
std::optional<BackupType> backup_type_from(std::string_view s);

// The archive_command PostgreSQL runs for each WAL segment (%p: its path): async push, so a
// slow repository delays archiving, not commits.
std::string archive_command(const Stanza& s, const Options& o);
std::vector<std::string> stanza_create_argv(const Stanza& s, const Options& o);
// A backup, then pgBackRest's expire (retention).
std::vector<std::string> backup_argv(const Stanza& s, const Options& o, BackupType type);
std::vector<std::string> info_argv(const Stanza& s, const Options& o);

// A stanza's repository on a repository host (another hostd, [repository]): its pgBackRest
// server for this stanza, which lets in only this stanza's client certificate.
struct RemoteRepo {
    std::string host;  // address
    uint16_t port = 0;
    std::string path;  // the repository as that server sees it
    std::string cert, key, ca;  // the stanza's client certificate and key, hostd's CA
};
// The configuration file (Stanza::config) for it. Throws Errc::invalid on an empty value or a
// line break.
std::string remote_config(const RemoteRepo& r);

// The pgBackRest server through which a repository host reads a tenant's cluster for its
// backups: runs as the tenant, lets in only client_cn, for stanza only.
struct Server {
    std::string address;
    std::string port;  // a number, or a unit's "${HOSTD_BACKUP_PORT}"
    std::string cert, key, ca;
    std::string client_cn, stanza;
};
std::vector<std::string> server_argv(const Server& s, const Options& o);

// Where a restore stops.
struct Target {
    enum class Kind { latest, time, label } kind = Kind::latest;
    std::string value;  // time: pgBackRest's form "YYYY-MM-DD HH:MM:SS[.mmm]+00"; label: the backup's
};
// "latest", a backup label (20261130-045601F, 20261130-045601F_20261130-050102I) or an RFC 3339
// time ("2026-11-30T04:56:04.791Z", "…+01:00"). Throws Errc::invalid (field) saying what is taken.
Target parse_target(std::string_view text, const std::string& field);

// Restores the stanza's backup into pgdata (an empty directory) and leaves the settings of a
// recovery to the target in it, ending in promotion: the first start replays the WAL and opens
// for writes. The WAL comes from the stanza's repository, so that first start must be able to
// read it (hostd runs it as the stanza's user).
std::vector<std::string> restore_argv(const Stanza& source, const Options& o, const std::string& pgdata,
                                      const Target& target);

// The PostgreSQL that replays a restored cluster to its target: logins on a socket in
// socket_dir only, from hba_file (hostd's, not the backup's), nothing archived. The cluster's
// postgresql.auto.conf came from the source tenant, so every setting that runs a command or
// loads code is pinned empty here: the command line outranks it.
std::vector<std::string> recovery_server_argv(const std::string& bindir, const std::string& pgdata,
                                              const std::string& socket_dir, const std::string& hba_file);
inline constexpr uint16_t kRecoveryPort = 5432;  // names the socket in socket_dir

// One backup in the repository.
struct BackupSet {
    std::string label;
    BackupType type = BackupType::full;
    std::string prior;              // the backup this one depends on ("" for full)
    std::time_t start = 0, stop = 0;
    uint64_t size = 0;              // the cluster's size when backed up
    uint64_t repo_size = 0;         // what it takes in the repository (compressed)
    uint64_t repo_delta = 0;        // what it added to the repository
    std::string wal_start, wal_stop;  // the WAL segments it needs
};

struct Info {
    std::vector<BackupSet> backups;      // oldest first
    std::string wal_min, wal_max;        // archived WAL ("" when none)
    int status_code = 0;                 // pgBackRest's: 0 ok, 1 missing stanza, 2 no valid backups, ...
    std::string status_message;
    bool backup_running = false;
};

// `pgbackrest info --output=json` for one stanza. Throws Errc::failed naming what is missing
// when the text is not pgBackRest's info.
Info parse_info(std::string_view json, std::string_view stanza);

// What pgBackRest said went wrong, from its stderr or a unit's journal: its last ERROR line
// ("ERROR: [041]: unable to open ..."), else the last non-empty line; at most 1000 characters.
std::string error_of(std::string_view output);

// "000000010000000000000002" → (timeline 1, segment number 2 of a 16 MB WAL).
std::optional<uint64_t> wal_segment_number(std::string_view wal);

}  // namespace hostd::backup

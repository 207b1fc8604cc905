// A tenant's PostgreSQL cluster: rendering of postgresql.conf / pg_hba.conf (pure), initdb
// (effect), and libpq checks. Throws hostd::Error (base/error.h); never logs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/exec.h"

namespace hostd::pgconf {

struct ClusterSpec {
    std::string tenant;            // validated tenant name
    uint16_t port = 0;             // TCP port on listen_address
    std::string listen_address = "127.0.0.1";
    std::string socket_dir;        // unix_socket_directories (the tenant's own)
    uint64_t memory_bytes = 0;     // the unit's MemoryMax; tuning derives from it
    double cpus = 1.0;             // the unit's CPU quota in CPUs
    uint64_t disk_bytes = 0;       // the tenant's disk; WAL sizing derives from it (0: PostgreSQL's defaults)
    bool ssl = false;              // ssl = on with server.crt/server.key in the data directory;
                                   // then TCP logins must use TLS (hostd checks over the socket)
    std::vector<std::string> preload_libraries;  // shared_preload_libraries (hostd's; see below)
    // Backups: this OS user (the tenant's own) logs in as backup_role by peer over the socket
    // (pgBackRest's login); "" for none.
    std::string backup_peer, backup_role;
    // A role root may also log in as by peer (pg_ident's map "hostd"): a branch copied from a
    // running tenant starts with the source's admin password, and hostd's first login sets the
    // branch's own (then renders the files without it). "" otherwise.
    std::string root_login;
};

// The libraries among a tenant's extensions that the server must load at start
// (shared_preload_libraries): pg_stat_statements and auto_explain; every other contrib
// extension loads its library when it is used. In the order given.
std::vector<std::string> preload_libraries(const std::vector<std::string>& extensions);

// Every size derived from the unit's limits, in one place so the file's comments and the
// numbers cannot drift apart (the comments in render_postgresql_conf state these rules; the
// check of a tenant's overrides against its limits, pgconf/fit.h, starts from them).
struct Tuning {
    uint64_t memory_mib;
    bool memory_assumed;
    unsigned cpus;  // the CPU quota rounded up, at least 1
    uint64_t max_connections;
    uint64_t shared_buffers_mb;
    uint64_t effective_cache_size_mb;
    uint64_t work_mem_kb;
    uint64_t maintenance_work_mem_mb;
    unsigned max_worker_processes;
    unsigned max_parallel_workers;
    unsigned max_parallel_workers_per_gather;
    unsigned max_parallel_maintenance_workers;
    uint64_t max_wal_size_mb;  // 0: not set (PostgreSQL's default, 1GB)
    uint64_t min_wal_size_mb;
};
Tuning tune(const ClusterSpec& spec);

// postgresql.conf: port, listen_addresses, unix_socket_directories, password_encryption =
// scram-sha-256, logging to stderr (journal), shared_buffers/max_connections derived from
// memory (documented in the file's comments), include_if_exists = 'hostd.override.conf'.
std::string render_postgresql_conf(const ClusterSpec& spec);

// hostd.guard.conf: what the disk-full guard puts in force while a tenant's disk is nearly
// full (default_transaction_read_only = on). postgresql.conf includes it after the overrides.
std::string render_guard_conf();

// pg_hba.conf: local + host 127.0.0.1/32 + ::1/128, all with scram-sha-256; beside them the peer
// logins over the socket of hostd's role, pgBackRest's (also for replication: a branch of a
// running tenant is copied with pg_basebackup as it) and root_login.
std::string render_pg_hba(const ClusterSpec& spec);
// pg_ident.conf: the map of the pg_hba line for hostd's own login (root → kMonitorRole).
std::string render_pg_ident(const ClusterSpec& spec);

struct InitdbOptions {
    std::string bindir;            // e.g. /usr/lib/postgresql/15/bin
    std::string pgdata;            // must not exist or be empty; parent writable by uid
    uid_t uid = 0;
    gid_t gid = 0;
    std::string superuser;         // initdb -U
    uint64_t wal_segsize_mb = 0;   // initdb --wal-segsize; 0: initdb's own (16)
    std::string password;          // fed through --pwfile=/dev/fd/N (a pipe handed to uid/gid),
                                   // never on argv or disk; no line breaks
};

// Runs initdb as uid/gid with --auth=scram-sha-256 --data-checksums --encoding=UTF8
// --locale=C.UTF-8 --no-sync (the caller syncs the whole filesystem once, see sync_filesystem),
// then writes the rendered postgresql.conf and pg_hba.conf (owned by uid/gid, 0600; not
// fsynced either: durable after sync_filesystem). run starts initdb (base/exec.h).
void initdb(const InitdbOptions& opts, const ClusterSpec& spec, const Runner& run = run_checked);

// syncfs() on the filesystem containing path.
void sync_filesystem(const std::string& path);

struct ConnParams {
    std::string host;              // IP/hostname, or a socket directory
    std::string hostaddr;          // if set: the address connected to; host is then only the TLS server name
    uint16_t port = 0;
    std::string user;
    std::string password;
    std::string dbname = "postgres";
    int connect_timeout_s = 3;
    std::string sslmode = "prefer";  // libpq's sslmode
    std::string options;             // libpq's options: "-c name=value ..." for the session
    // Client-side limit on one statement's answer (0: none). statement_timeout is the server's
    // to honour; code a tenant's superuser loaded into its server need not, and hostd must not
    // wait on it.
    int query_timeout_ms = 0;
};

// hostd's own login to a tenant's cluster, for its checks and metrics: the role kMonitorRole,
// by peer authentication over the tenant's socket directory (hostd connects as root; pg_ident
// maps root to that role and nothing else), so it needs no password the tenant could change.
// The session's search_path is pg_catalog and its statements time out, whatever the tenant set
// for the role: a tenant can neither shadow the catalog views hostd reads nor make it hang.
inline constexpr const char* kMonitorRole = "hostd";
ConnParams monitor_params(const std::string& socket_dir, uint16_t port);
// What the tenant's cluster needs for that login: the role, with pg_monitor's read rights.
// Idempotent; run as the tenant's superuser.
std::string monitor_role_sql();

// PQping: the server accepts connections (no login needed, so no credential of the tenant's).
bool ping(const ConnParams& p);
// The same, saying why not: "" when the server accepts connections, else what PQping answered
// (refuses connections: starting, shutting down or recovering; no answer at all).
std::string ping_problem(const ConnParams& p);
// Retries ping until it answers yes or timeout passes (Errc::unavailable then).
void wait_ping(const ConnParams& p, std::chrono::milliseconds timeout);

// Runs SQL that returns no rows (several statements allowed); throws Errc::failed.
void exec_sql(const ConnParams& p, const std::string& sql);

// What pgBackRest's login needs (pgconf's caller names the role): a superuser that logs in by
// peer over the socket only (pg_hba/pg_ident: render with ClusterSpec::backup_peer). Idempotent.
std::string backup_role_sql(const std::string& role);

// Connects with libpq and runs `SELECT 1`; throws Errc::unavailable with libpq's message on failure.
void check_select1(const ConnParams& p);

// Retries check_select1 until it succeeds or timeout passes (then rethrows the last error).
void wait_select1(const ConnParams& p, std::chrono::milliseconds timeout,
                  std::chrono::milliseconds interval = std::chrono::milliseconds(20));

// exec_sql once the login works: the login is retried (as wait_select1) until timeout, the
// statement runs once. One login where wait_select1 and exec_sql take two.
void wait_exec_sql(const ConnParams& p, const std::string& sql, std::chrono::milliseconds timeout,
                   std::chrono::milliseconds interval = std::chrono::milliseconds(20));

// Runs a query and returns its first column; throws Errc::failed with the server's message
// (also for a statement that returns no rows).
std::vector<std::string> query_column(const ConnParams& p, const std::string& sql);

// Changes role's password over a connection made with p: the SCRAM-SHA-256 verifier is
// computed here (PQencryptPasswordConn, as psql's \password does) and only it is sent, in an
// ALTER ROLE with the role and verifier quoted by libpq, so the password itself never reaches
// the server (nor its log, pg_stat_activity or a failed statement's message). Throws
// Errc::unavailable when the login fails, Errc::failed when the statement does.
void set_role_password(const ConnParams& p, const std::string& role, const std::string& password);

// A cluster made ahead of its tenant (hostd's warm pool) becomes the tenant's: p (the socket,
// port and options; user and password are set here) logs in as bootstrap_role, the cluster's
// initdb superuser, and in that one session and transaction makes handover_role a superuser
// without login, becomes it (SET SESSION AUTHORIZATION), renames bootstrap_role to admin (so
// the admin is the bootstrap superuser, as after an initdb of its own) and gives it
// admin_verifier (scram_verifier of its password, made ahead of this), then, back as the bootstrap
// (now admin) role, drops handover_role and makes hostd's own role (monitor_role_sql). The
// role names must not need quoting beyond what libpq quotes. Throws Errc::unavailable when the
// login fails, Errc::failed when a statement does (then nothing of it is committed).
void hand_over_cluster(ConnParams p, const std::string& bootstrap_role, const std::string& bootstrap_password,
                       const std::string& handover_role, const std::string& admin, const std::string& admin_verifier);

// postgresql:// URL with percent-encoding of user/password.
std::string connection_url(const std::string& host, uint16_t port, const std::string& user,
                           const std::string& password, const std::string& dbname);

// The same naming several hosts (libpq's multi-host URL: "h1:p1,h2:p2"; libpq tries them in
// order). Throws Errc::invalid for no hosts.
struct UrlHost {
    std::string host;
    uint16_t port = 0;
};
std::string connection_url(const std::vector<UrlHost>& hosts, const std::string& user, const std::string& password,
                           const std::string& dbname);

// A random password: 24 characters from [A-Za-z0-9] (OpenSSL RAND_bytes, rejection sampling).
std::string random_password();

// PostgreSQL's SCRAM-SHA-256 secret for a password ("SCRAM-SHA-256$<iterations>:<salt>$
// <StoredKey>:<ServerKey>", RFC 5802/7677; OpenSSL's PBKDF2 and HMAC), which ALTER ROLE ...
// PASSWORD and initdb's password file store as given. Computed here, not by libpq
// (PQencryptPasswordConn), so it needs no connection and can be made ahead of the login that
// sets it. Only printable ASCII, which SASLprep leaves as it is (hostd's own passwords are
// [A-Za-z0-9]); anything else throws Errc::invalid. salt empty: 16 random bytes.
inline constexpr int kScramIterations = 4096;  // PostgreSQL's and RFC 7677's
std::string scram_verifier(const std::string& password, int iterations = kScramIterations, std::string salt = {});

}  // namespace hostd::pgconf

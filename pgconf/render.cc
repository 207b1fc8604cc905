// Pure rendering of a tenant's postgresql.conf and pg_hba.conf: spec in, text out.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "base/error.h"
#include "pgconf/pgconf.h"
#include "pgconf/quote.h"

namespace hostd::pgconf {
namespace {

using detail::quote;

constexpr uint64_t kMiB = 1024 * 1024;
// When the unit has no memory limit recorded, size as if it had this much.
constexpr uint64_t kAssumedMemoryMiB = 1024;

void validate(const ClusterSpec& spec) {
    if (spec.tenant.empty()) throw Error(Errc::invalid, "The cluster spec has no tenant name", "tenant");
    if (spec.port == 0) throw Error(Errc::invalid, "The cluster spec has no port", "port");
    if (spec.listen_address.empty())
        throw Error(Errc::invalid, "The cluster spec has no listen address", "listen_address");
    if (spec.socket_dir.empty() || spec.socket_dir.front() != '/')
        throw Error(Errc::invalid, "The socket directory must be an absolute path, not '" + spec.socket_dir + "'",
                    "socket_dir");
    // Names written bare into pg_hba/pg_ident lines.
    for (const std::string* n : {&spec.backup_peer, &spec.backup_role, &spec.root_login})
        for (char c : *n)
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
                throw Error(Errc::invalid, "'" + *n + "' cannot be named in pg_hba.conf", "backup_peer");
    if (spec.backup_peer.empty() != spec.backup_role.empty())
        throw Error(Errc::invalid, "The backup login needs both an OS user and a role", "backup_peer");
}

}  // namespace

Tuning tune(const ClusterSpec& spec) {
    Tuning t{};
    t.memory_assumed = spec.memory_bytes == 0;
    t.memory_mib = t.memory_assumed ? kAssumedMemoryMiB : std::max<uint64_t>(spec.memory_bytes / kMiB, 1);
    double c = (std::isfinite(spec.cpus) && spec.cpus > 0) ? std::min(spec.cpus, 1024.0) : 1.0;
    t.cpus = std::max(1u, static_cast<unsigned>(std::ceil(c - 1e-9)));

    const uint64_t m = t.memory_mib;
    t.max_connections = std::clamp<uint64_t>(m / 8, 20, 100);
    t.shared_buffers_mb = std::clamp<uint64_t>(m / 4, 16, 8192);
    t.effective_cache_size_mb = std::max(m / 2, t.shared_buffers_mb);
    uint64_t rest_mib = m > t.shared_buffers_mb ? m - t.shared_buffers_mb : 0;
    t.work_mem_kb = std::clamp<uint64_t>(rest_mib * 1024 / (3 * t.max_connections), 1024, 65536);
    t.maintenance_work_mem_mb = std::clamp<uint64_t>(m / 16, 8, 1024);

    t.max_parallel_workers = t.cpus;
    t.max_worker_processes = std::max(8u, t.cpus);
    t.max_parallel_workers_per_gather = std::min(4u, t.cpus / 2);
    t.max_parallel_maintenance_workers = std::min(4u, t.cpus / 2);
    if (spec.disk_bytes > 0) {
        const uint64_t disk_mib = spec.disk_bytes / kMiB;
        t.max_wal_size_mb = std::clamp<uint64_t>(disk_mib / 8, 48, 1024);
        t.min_wal_size_mb = std::clamp<uint64_t>(disk_mib / 32, 32, 80);
    }
    return t;
}

namespace {

std::string format_cpus(double cpus) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", cpus);
    return buf;
}

}  // namespace

std::vector<std::string> preload_libraries(const std::vector<std::string>& extensions) {
    std::vector<std::string> out;
    for (const auto& e : extensions)
        if (e == "pg_stat_statements" || e == "auto_explain") out.push_back(e);
    return out;
}

std::string render_postgresql_conf(const ClusterSpec& spec) {
    validate(spec);
    const Tuning t = tune(spec);
    std::ostringstream o;
    o << "# postgresql.conf of hostd tenant " << quote(spec.tenant, "tenant") << ".\n"
      << "# Managed by hostd — do not edit; rewritten on every change. Local settings go in\n"
      << "# hostd.override.conf beside this file: it is read last, so its values win.\n"
      << "#\n";
    if (t.memory_assumed)
        o << "# Sized for: memory " << t.memory_mib << " MiB (no MemoryMax recorded; assumed), ";
    else
        o << "# Sized for: memory " << t.memory_mib << " MiB (the unit's MemoryMax), ";
    o << "CPUs " << format_cpus(spec.cpus > 0 ? spec.cpus : 1.0) << " (CPUQuota).\n"
      << "\n"
      << "# --- Connections ---------------------------------------------------------------------\n"
      << "# Loopback and the tenant's own socket directory only: the public side is the proxy,\n"
      << "# which connects to the listen address.\n"
      << "listen_addresses = " << quote(spec.listen_address, "listen_address") << "\n"
      << "port = " << spec.port << "\n"
      << "unix_socket_directories = " << quote(spec.socket_dir, "socket_dir") << "\n";
    if (spec.ssl)
        o << "# TLS with the certificate hostd's local CA issued for this tenant's names.\n"
          << "ssl = on\n"
          << "ssl_cert_file = 'server.crt'\n"
          << "ssl_key_file = 'server.key'\n"
          << "ssl_min_protocol_version = 'TLSv1.2'\n";
    o
      << "password_encryption = 'scram-sha-256'\n"
      << "# max_connections = memory_MiB / 8, at least 20, at most 100: every backend costs a few\n"
      << "# MiB of its own, and they must fit beside shared_buffers.\n"
      << "max_connections = " << t.max_connections << "\n"
      << "\n"
      << "# --- Memory --------------------------------------------------------------------------\n"
      << "# The unit's MemoryMax covers shared memory, every backend and the page cache of the\n"
      << "# tenant's files alike, so each size is a share of it:\n"
      << "#   shared_buffers       = 25% of memory, at least 16MB, at most 8GB\n"
      << "#   effective_cache_size = 50% of memory (the page cache counts against MemoryMax too),\n"
      << "#                          at least shared_buffers\n"
      << "#   work_mem             = (memory - shared_buffers) / (3 * max_connections),\n"
      << "#                          at least 1MB, at most 64MB\n"
      << "#   maintenance_work_mem = memory / 16, at least 8MB, at most 1GB\n"
      << "shared_buffers = " << t.shared_buffers_mb << "MB\n"
      << "effective_cache_size = " << t.effective_cache_size_mb << "MB\n"
      << "work_mem = " << t.work_mem_kb << "kB\n"
      << "maintenance_work_mem = " << t.maintenance_work_mem_mb << "MB\n"
      << "# Plain shared memory: no System V segments or huge pages to reserve on the host.\n"
      << "huge_pages = off\n"
      << "shared_memory_type = mmap\n"
      << "dynamic_shared_memory_type = posix\n"
      << "# JIT compilation needs writable+executable memory, which the unit's sandbox forbids\n"
      << "# (MemoryDenyWriteExecute=yes).\n"
      << "jit = off\n"
      << "# A start after a crash, or on a copy (a branch), first makes the data directory durable:\n"
      << "# one syncfs of the tenant's own filesystem rather than an fsync of every file.\n"
      << "recovery_init_sync_method = syncfs\n"
      << "\n"
      << "# --- Parallelism ---------------------------------------------------------------------\n"
      << "# From the CPU quota rounded up (n, at least 1): max_parallel_workers = n,\n"
      << "# max_worker_processes = max(8, n), per-gather and maintenance workers = min(4, n / 2).\n"
      << "max_worker_processes = " << t.max_worker_processes << "\n"
      << "max_parallel_workers = " << t.max_parallel_workers << "\n"
      << "max_parallel_workers_per_gather = " << t.max_parallel_workers_per_gather << "\n"
      << "max_parallel_maintenance_workers = " << t.max_parallel_maintenance_workers << "\n"
      << "\n"
      << (t.max_wal_size_mb == 0 ? std::string() :
          "# --- WAL -----------------------------------------------------------------------------\n"
          "# WAL shares the tenant's disk: a checkpoint every 1/8 of the disk (48MB..1GB) keeps it\n"
          "# from outgrowing the data, so a full disk shows up as a failed INSERT, not as a crash on\n"
          "# a WAL write; recycled segments: 1/32 of the disk (32MB..80MB).\n"
          "max_wal_size = " + std::to_string(t.max_wal_size_mb) + "MB\n"
          "min_wal_size = " + std::to_string(t.min_wal_size_mb) + "MB\n\n");
    o << "# --- Autovacuum ----------------------------------------------------------------------\n"
      << "# An idle cluster's largest cost of its own is its autovacuum launcher starting a worker (a\n"
      << "# fork, a connection to a database, a look at its tables) for each database in turn every\n"
      << "# autovacuum_naptime: with PostgreSQL's 1min, a few forks a minute per tenant, tens a second\n"
      << "# on a host of hundreds of tenants. 10min cuts that by ten; the price is that a table that\n"
      << "# needs a vacuum or an analyze may wait up to 10 minutes for it. A busy tenant can set it\n"
      << "# back: hostctl set NAME --set autovacuum_naptime=1min.\n"
      << "autovacuum_naptime = 10min\n\n";
    if (!spec.preload_libraries.empty()) {
        std::string libs;
        for (const auto& l : spec.preload_libraries) libs += (libs.empty() ? "" : ",") + l;
        o << "# --- Extensions ----------------------------------------------------------------------\n"
          << "# The libraries of the extensions hostd enabled for this tenant (extensions.allowed in\n"
          << "# hostd.toml); read at server start only. CREATE EXTENSION is the tenant's to run.\n"
          << "shared_preload_libraries = " << quote(libs, "extensions") << "\n\n";
    }
    o << "# --- Logging -------------------------------------------------------------------------\n"
      << "# stderr goes to the journal through the unit, which records the time and the unit; the\n"
      << "# prefix adds what the journal cannot know: backend PID, user and database.\n"
      << "logging_collector = off\n"
      << "log_destination = 'stderr'\n"
      << "log_line_prefix = '[%p] %q%u@%d '\n"
      << "log_timezone = 'UTC'\n"
      << "cluster_name = " << quote("hostd-" + spec.tenant, "tenant") << "\n"
      << "\n"
      << "# --- Locale and time -----------------------------------------------------------------\n"
      << "lc_messages = 'C.UTF-8'\n"
      << "lc_monetary = 'C.UTF-8'\n"
      << "lc_numeric = 'C.UTF-8'\n"
      << "lc_time = 'C.UTF-8'\n"
      << "datestyle = 'iso, mdy'\n"
      << "timezone = 'UTC'\n"
      << "default_text_search_config = 'pg_catalog.english'\n"
      << "\n"
      << "# Local settings, read last (see the top of this file).\n"
      << "include_if_exists = 'hostd.override.conf'\n"
      << "# Present only while hostd's disk-full guard holds the tenant read-only; after the\n"
      << "# overrides, so they cannot undo it.\n"
      << "include_if_exists = 'hostd.guard.conf'\n";
    return o.str();
}

std::string render_guard_conf() {
    return "# Written by hostd's disk-full guard: the tenant's disk is nearly full. Every new\n"
           "# transaction is read-only until space is freed (DROP/TRUNCATE/DELETE+VACUUM in a\n"
           "# BEGIN READ WRITE transaction) or the disk is grown (hostctl resize); then hostd removes\n"
           "# this file.\n"
           "default_transaction_read_only = on\n";
}

std::string render_pg_ident(const ClusterSpec& spec) {
    validate(spec);
    std::string s = std::string("# pg_ident.conf of a hostd tenant. Managed by hostd.\n"
                                "# MAPNAME  SYSTEM-USERNAME  PG-USERNAME\n"
                                "hostd      root             ") + kMonitorRole + "\n";
    // pgBackRest's login: the tenant's own OS user (its archive and backups run as it).
    if (!spec.backup_peer.empty()) s += "hostd      " + spec.backup_peer + "  " + spec.backup_role + "\n";
    // A branch's first login, to set its admin password (see ClusterSpec::root_login).
    if (!spec.root_login.empty()) s += "hostd      root             " + spec.root_login + "\n";
    return s;
}

std::string render_pg_hba(const ClusterSpec& spec) {
    validate(spec);
    std::ostringstream o;
    o << "# pg_hba.conf of hostd tenant " << quote(spec.tenant, "tenant") << ".\n"
      << "# Managed by hostd — do not edit; rewritten on every change.\n"
      << "# Password logins (SCRAM) over the tenant's socket directory and loopback only; the\n"
      << "# public side is the proxy, which connects from loopback.\n"
      << "#\n"
      << "# hostd's own login (checks, metrics) comes first: peer over the socket, root mapped to\n"
      << "# the role " << kMonitorRole << " by pg_ident.conf, and nobody else may log in as that role.\n"
      << "#\n"
      << "# TYPE     DATABASE  USER  ADDRESS         METHOD\n"
      << "local      all       " << kMonitorRole << "                 peer map=hostd\n";
    if (!spec.root_login.empty())
        o << "# Until hostd has set this branch's own admin password: root logs in as its admin.\n"
          << "local      all       " << spec.root_login << "   peer map=hostd\n";
    if (!spec.backup_role.empty())
        o << "local      all       " << spec.backup_role << "          peer map=hostd\n"
          << "local      replication " << spec.backup_role << "        peer map=hostd\n";
    o << "local      all       all                   scram-sha-256\n";
    if (spec.ssl)
        // Every TCP login comes through the proxy from loopback: require TLS for all of them;
        // hostd's own checks use the socket directory.
        o << "hostssl    all       all   127.0.0.1/32    scram-sha-256\n"
          << "hostssl    all       all   ::1/128         scram-sha-256\n"
          << "hostnossl  all       all   all             reject\n";
    else
        o << "host       all       all   127.0.0.1/32    scram-sha-256\n"
          << "host       all       all   ::1/128         scram-sha-256\n";
    return o.str();
}

}  // namespace hostd::pgconf

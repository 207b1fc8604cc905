// hostd.toml: every setting is declared once in a table (config.cc) that drives parsing,
// validation and the commented default file that `cmake --install` ships.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hostd {

using PortRange = std::pair<uint16_t, uint16_t>;

// Debian's contrib extensions (postgresql-15) and auto_explain: extensions.allowed's default.
std::vector<std::string> default_extensions_allowed();

struct Config {
    // [api]
    std::string socket_path = "/run/hostd/hostd.sock";
    std::string socket_group = "hostd";
    // [users] uids and gids of tenants' OS users (both ends included)
    std::pair<uint32_t, uint32_t> user_ids{65536, 99999};
    uint64_t api_max_connections = 1024;  // at once on the API socket (a thread each)
    uint64_t api_idle_timeout = 30;       // seconds a client may keep a connection without a byte moving
    // [paths]
    std::string state_dir = "/var/lib/hostd";
    std::string mount_root = "/srv/hostd";
    // [storage]
    std::string backend = "loop";
    std::string loop_dir = "/var/lib/hostd/loop";
    // Loop images are sparse: their sizes may total at most this times the space they can have
    // (free under loop_dir plus what they have written already). 0: no limit.
    double loop_overcommit = 1.0;
    std::string filesystem = "ext4";
    std::string mount_options = "nodev,nosuid,noexec,noatime";
    std::vector<std::string> devices;  // device backend pool: used when a create names no device
    // [pool] the warm pool (loop backend): disks prepared ahead of creates; 0: off. Two: a
    // burst of two creates is fast, and two spares cost about 2 x 45 MB of disk, no memory.
    uint64_t pool_size = 2;

    // [guard] disk-full guard
    double guard_readonly_below = 5;   // percent of the disk free: switch to read-only below
    double guard_readwrite_above = 10; // percent free (reserve not counted): back to read-write above
    uint64_t guard_reserve = 32ull << 20;  // reserve file, at most a tenth of the disk
    double guard_interval = 0.5;       // seconds between checks
    double listeners_interval = 1;     // seconds between looks for tenants listening on other ports; 0 = off
    // [metrics]
    std::string metrics_listen;        // "127.0.0.1:9187": a TCP listener for /metrics; "" = off
    uint64_t metrics_max_connections = 64;        // at once on that listener
    uint64_t metrics_max_connections_per_ip = 8;  // at once from one address
    uint64_t metrics_timeout = 10;                // seconds an idle connection is kept
    std::string metrics_textfile;      // a file for node_exporter's textfile collector; "" = off
    double metrics_interval = 15;      // seconds between textfile writes
    double metrics_refresh = 5;        // seconds between refreshes of the PostgreSQL facts (up, connections, size)
    double metrics_refresh_budget = 1; // PostgreSQL connections per second for those facts, over all tenants
    // [defaults] (a create request may override each)
    uint64_t disk_size = 1ull << 30;
    uint64_t memory = 256ull << 20;
    double cpu = 1.0;
    uint64_t tasks = 512;
    // [limits] (what a request may ask for)
    uint64_t min_disk_size = 128ull << 20;
    uint64_t max_disk_size = 1ull << 40;
    uint64_t min_memory = 64ull << 20;
    uint64_t max_memory = 0;  // 0: the host's physical memory
    double max_cpu = 0;       // 0: the host's CPU count
    uint64_t max_tasks = 65536;
    // Tenants' memory limits (MemoryMax) may total at most this times the host's physical
    // memory (creates, reuses and memory changes beyond it are refused). 0: no limit.
    double memory_overcommit = 1.0;
    // [extensions] what a tenant may ask hostd to enable (extensions, pgconf/extensions.h)
    std::vector<std::string> extensions_allowed = default_extensions_allowed();
    // [backup] pgBackRest; repo "" = off
    std::string backup_repo;                       // each tenant's repository: <backup_repo>/<tenant>
    std::string pgbackrest = "/usr/bin/pgbackrest";
    std::string backup_compress = "lz4";
    uint64_t backup_retention_full = 2;
    // pgBackRest processes of a branch's or a restore's copy; 0: the host's CPUs, at most 4.
    uint64_t restore_processes = 0;
    // Days a deleted (purged) tenant's backups are kept for branches; 0: until purged by hand.
    uint64_t backup_deleted_retention = 7;
    uint64_t archive_timeout = 60;                 // seconds: PostgreSQL's archive_timeout (the recovery point)
    // A repository host instead of repo: another hostd with [repository], "ADDR:PORT" of its API.
    std::string backup_repo_host;
    std::string backup_server_address;             // where it reaches this host's tenants ("": proxy.public_host)
    PortRange backup_server_ports{24000, 24999};   // each tenant's pgBackRest server for it
    std::string full_schedule = "Sun *-*-* 01:00:00";      // systemd OnCalendar= of full backups
    std::string incr_schedule = "Mon..Sat *-*-* 01:00:00"; // and of incremental ones
    // [repository] this host keeps other hosts' tenants' repositories (repohost/); listen "" = off
    std::string repository_listen;
    std::string repository_root = "/var/lib/hostd-repos";
    PortRange repository_ports{18000, 18999};
    // [postgres]
    std::string pg_bindir = "/usr/lib/postgresql/15/bin";
    PortRange pg_ports{25000, 27999};
    // initdb --wal-segsize, MB: each new cluster's WAL segment (fixed for its life). 16 is
    // PostgreSQL's; smaller segments make an idle tenant's disk smaller (density) and cost one
    // archive-push per segment under heavy writes.
    uint64_t pg_wal_segsize = 16;
    // [proxy]
    std::string proxy = "haproxy";
    std::string public_host = "127.0.0.1";
    std::string bind_address = "0.0.0.0";
    PortRange public_ports{28000, 30999};
    std::string haproxy_bin = "/usr/sbin/haproxy";
    std::string haproxy_main_config = "/etc/haproxy/haproxy.cfg";
    std::string haproxy_config = "/etc/haproxy/hostd.cfg";
    std::string haproxy_unit = "haproxy.service";
    std::string domain;                 // Traefik: per-tenant host names <tenant>.<domain>, routed by SNI
    uint16_t sni_port = 5432;           // the one public port of SNI routes
    std::string traefik_dir = "/etc/traefik/hostd";
    std::string traefik_entry_point = "postgres";
    // [ha] high availability across hosts (#17); off while ha_address is empty
    std::string ha_address;                    // this host's address on the hosts' network (an IP)
    std::vector<std::string> ha_hosts;         // the fleet, "name=address"; name = gethostname()
    std::vector<std::string> ha_etcd_hosts;    // names of hosts running an etcd member; empty: all
    uint16_t ha_api_port = 8444;               // the peer API (mutual TLS) on ha_address
    PortRange ha_rest_ports{23000, 23999};     // Patroni's REST API, one port per member
    uint16_t ha_etcd_client_port = 2379;
    uint16_t ha_etcd_peer_port = 2380;
    uint64_t ha_ttl = 10, ha_loop_wait = 2, ha_retry_timeout = 4;  // Patroni's timing (ha::Timing)
    uint64_t ha_prepare_timeout = 600;         // seconds a prepared member waits for its start
    // [hibernate] idle tenants stopped, woken by their next connection (hostd/hibernate.h)
    double hibernate_after = 0;                // seconds without a client connection; 0 = off
    double hibernate_check_interval = 10;      // seconds between looks at the connections
    uint16_t hibernate_waker_port = 22432;     // the waker's listener on 127.0.0.1
    uint64_t hibernate_max_relays = 256;       // connections the waker holds at once
};

// [hibernate]: on when after is set (HAProxy only; parse_config refuses it with Traefik).
inline bool hibernate_on(const Config& c) { return c.hibernate_after > 0; }

// Archiving and backups on: into a local directory (backup.repo) or on a repository host.
inline bool backups_on(const Config& c) { return !c.backup_repo.empty() || !c.backup_repo_host.empty(); }
inline bool remote_repository(const Config& c) { return !c.backup_repo_host.empty(); }

// [ha]: on when this host has an address on the hosts' network.
inline bool ha_on(const Config& c) { return !c.ha_address.empty(); }
struct HaHost {
    std::string name;     // its gethostname(): [a-z0-9][a-z0-9-]*, at most 63
    std::string address;  // an IPv4 or IPv6 literal
    bool operator==(const HaHost&) const = default;
};
// [ha] hosts as name and address, in the file's order (parse_config has checked them).
std::vector<HaHost> ha_fleet(const Config& c);
// Whether host `name` runs an etcd member ([ha] etcd_hosts, or every host when it is empty).
bool ha_etcd_host(const Config& c, const std::string& name);
// With [ha] on: checks that host_name (this host's gethostname()) is one of [ha] hosts, listed
// with [ha] address; throws Errc::invalid saying what to change otherwise. Returns host_name.
std::string ha_self(const Config& c, const std::string& host_name, const std::string& source = "hostd.toml");

// Parses TOML text over the defaults. Unknown keys and bad values throw hostd::Error naming
// the key and the source.
Config parse_config(std::string_view toml_text, const std::string& source);

// The file at path, or the defaults if it does not exist.
Config load_config(const std::string& path);

// The commented default hostd.toml (every key, its default and what it does).
std::string default_config_text();

}  // namespace hostd

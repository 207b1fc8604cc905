#include "model/config.h"

#include <toml++/toml.h>

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <optional>
#include <sstream>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "base/size.h"
#include "base/strings.h"
#include "routes/routes.h"

namespace hostd {
namespace {

enum class Kind { text, size, number, count, port, ports, ids, list, duration };

struct Setting {
    const char* section;
    const char* key;
    Kind kind;
    const char* help;
    std::function<void*(Config&)> field;  // where the value lives
};

// "A-B" with A <= B, both unsigned 32-bit.
std::optional<std::pair<uint32_t, uint32_t>> parse_id_range(std::string_view s) {
    auto dash = s.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    uint32_t a = 0, b = 0;
    auto num = [](std::string_view t, uint32_t& out) {
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
        return !t.empty() && ec == std::errc() && end == t.data() + t.size();
    };
    if (!num(s.substr(0, dash), a) || !num(s.substr(dash + 1), b) || a > b) return std::nullopt;
    return std::pair{a, b};
}

// "90", "90s", "15m", "2h", "1d", "0.5s": seconds; nullopt for anything else.
std::optional<double> parse_duration(std::string_view s) {
    double mult = 1;
    if (!s.empty()) {
        switch (s.back()) {
        case 's': mult = 1; s.remove_suffix(1); break;
        case 'm': mult = 60; s.remove_suffix(1); break;
        case 'h': mult = 3600; s.remove_suffix(1); break;
        case 'd': mult = 86400; s.remove_suffix(1); break;
        default: break;
        }
    }
    double v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !(v >= 0)) return std::nullopt;
    return v * mult;
}

#define FIELD(m) [](Config& c) -> void* { return &c.m; }

const std::vector<Setting>& settings() {
    static const std::vector<Setting> table = {
        {"api", "socket", Kind::text, "Unix socket of the HTTP+JSON API (socket activation passes it in; this is for manual runs).", FIELD(socket_path)},
        {"api", "group", Kind::text, "Members of this group (and root) may use the API.", FIELD(socket_group)},
        {"api", "max_connections", Kind::count, "Connections the API socket serves at once (a thread each); one more is closed at once. Idle ones go after idle_timeout. hostd raises its open-file limit to fit these and metrics.max_connections.", FIELD(api_max_connections)},
        {"api", "idle_timeout", Kind::count, "Seconds a client may hold an API connection without sending its request or reading the reply before hostd closes it (0: never). A running operation is never cut: a create streaming its steps may be silent for minutes.", FIELD(api_idle_timeout)},
        {"users", "ids", Kind::ids, "uids and gids of tenants' OS users (\"_<tenant>\", made with useradd), one of each per tenant: at least as many as the host will hold tenants. The default lies above every 16-bit range (Debian's and systemd's system, regular, dynamic and nobody ids end at 65535) and below 100000, where useradd starts the subordinate id ranges of containers (/etc/subuid); systemd-nspawn's own container ranges start at 524288. Ranges touching 0-999 or 60001-65535 are refused.", FIELD(user_ids)},
        {"paths", "state_dir", Kind::text, "Tenant records (root only).", FIELD(state_dir)},
        {"paths", "mount_root", Kind::text, "Each tenant's filesystem is mounted at <mount_root>/<tenant> (hostd renders the tenant unit template, hostd-postgres@.service, with it at start).", FIELD(mount_root)},
        {"storage", "backend", Kind::text, "\"loop\": a sparse file per tenant attached as a loop device; \"device\": a block device named in each create request.", FIELD(backend)},
        {"storage", "loop_dir", Kind::text, "Where the loop backend keeps its image files.", FIELD(loop_dir)},
        {"storage", "loop_overcommit", Kind::number, "Loop images are sparse files: a create or resize is refused when the sizes of all tenants' images (kept ones too) would total more than this times the space they can have (free under loop_dir plus what the images hold already). 1: every image can fill up to its size; above 1, tenants that fill their disks can run loop_dir's filesystem out of space, and then whichever tenant writes next gets I/O errors, not only the one that filled it. 0: no limit.", FIELD(loop_overcommit)},
        {"storage", "filesystem", Kind::text, "Filesystem made on each tenant disk.", FIELD(filesystem)},
        {"storage", "mount_options", Kind::text, "Mount options of tenant filesystems (PostgreSQL runs nothing from its data directory: noexec is fine).", FIELD(mount_options)},
        {"storage", "devices", Kind::list, "Device backend pool: block devices (e.g. /dev/disk/by-id/...) hostd may format for a create that names none. Each is checked like a named device.", FIELD(devices)},
        {"pool", "size", Kind::count, "Warm pool (loop backend): disks hostd keeps prepared ahead of creates, each a loop image of limits.disk_size with storage.filesystem and a cluster initdb'd on it (its own system identifier). A create of that size and filesystem takes one and skips the disk, format and initdb steps; hostd prepares the next in the background at idle CPU and I/O priority. Each costs the space its cluster holds (about 45 MB written of the sparse image) and no memory (nothing of it runs). 0: off, every create takes the full path.", FIELD(pool_size)},
        {"guard", "readonly_below", Kind::number, "Disk-full guard: when less than this percent of a tenant's disk (and never less than two 16 MiB WAL segments) is free, hostd makes the tenant read-only (default_transaction_read_only) and releases its reserve.", FIELD(guard_readonly_below)},
        {"guard", "readwrite_above", Kind::number, "Back to read-write when more than this percent is free again (after delete, VACUUM or resize), not counting the reserve.", FIELD(guard_readwrite_above)},
        {"guard", "reserve", Kind::size, "Space held back per tenant in a preallocated file (at most a tenth of the disk), released when the guard trips so the tenant can still clean up.", FIELD(guard_reserve)},
        {"guard", "interval", Kind::number, "Seconds between two checks of every tenant's free space; 0 turns the guard off.", FIELD(guard_interval)},
        {"guard", "listeners_interval", Kind::number, "Seconds between two looks at the host's listening TCP sockets: a tenant's process listening on any port but its own (another tenant's while it is down, or any free one) is killed and logged. 0 turns the watch off.", FIELD(listeners_interval)},
        {"metrics", "listen", Kind::text, "A TCP listener serving GET /metrics for Prometheus, e.g. \"127.0.0.1:9187\" (no TLS, no auth: keep it on loopback or a private network). Empty: off; /metrics is always on the API socket.", FIELD(metrics_listen)},
        {"metrics", "max_connections", Kind::count, "Connections the TCP listener holds at once (one thread serves them all); more wait in the backlog.", FIELD(metrics_max_connections)},
        {"metrics", "max_connections_per_ip", Kind::count, "Connections the TCP listener holds at once from one address; more are closed at once (0: no limit). Prometheus needs one.", FIELD(metrics_max_connections_per_ip)},
        {"metrics", "timeout", Kind::count, "Seconds the TCP listener keeps a connection on which nothing moves (0: never).", FIELD(metrics_timeout)},
        {"metrics", "textfile", Kind::text, "Also write the metrics atomically to this file for node_exporter's textfile collector (e.g. /var/lib/prometheus/node-exporter/hostd.prom). Empty: off.", FIELD(metrics_textfile)},
        {"metrics", "interval", Kind::number, "Seconds between two writes of the textfile.", FIELD(metrics_interval)},
        {"metrics", "refresh", Kind::number, "Seconds between two refreshes of the facts asked of PostgreSQL (up, connections, database size), and between two passes over every tenant's usage (units, disks, cgroups) while hostd is scraped; a scrape shows the latest (the usage with its age) and never waits on a tenant.", FIELD(metrics_refresh)},
        {"metrics", "refresh_budget", Kind::number, "PostgreSQL connections per second hostd allows itself for those facts, over all tenants: tenants are refreshed one at a time, so with many of them a round takes tenants / refresh_budget seconds instead of refresh, and the load on the host stays flat.", FIELD(metrics_refresh_budget)},
        {"defaults", "disk_size", Kind::size, "Disk size of a tenant when the request names none.", FIELD(disk_size)},
        {"defaults", "memory", Kind::size, "MemoryMax of a tenant's unit when the request names none.", FIELD(memory)},
        {"defaults", "cpu", Kind::number, "CPU quota in CPUs (0.5 = half a CPU) when the request names none.", FIELD(cpu)},
        {"defaults", "tasks", Kind::count, "TasksMax of a tenant's unit when the request names none.", FIELD(tasks)},
        {"limits", "min_disk_size", Kind::size, "Smallest disk a request may ask for.", FIELD(min_disk_size)},
        {"limits", "max_disk_size", Kind::size, "Largest disk a request may ask for.", FIELD(max_disk_size)},
        {"limits", "min_memory", Kind::size, "Least memory a tenant may have (PostgreSQL needs some to start).", FIELD(min_memory)},
        {"limits", "max_memory", Kind::size, "Most memory a tenant may have; 0 = the host's physical memory.", FIELD(max_memory)},
        {"limits", "max_cpu", Kind::number, "Most CPUs a tenant may have; 0 = the host's CPU count.", FIELD(max_cpu)},
        {"limits", "max_tasks", Kind::count, "Most tasks a tenant may have.", FIELD(max_tasks)},
        {"limits", "memory_overcommit", Kind::number, "Tenants' memory limits (MemoryMax) may total at most this times the host's physical memory: a create, a reuse or a memory change beyond it is refused with what is free (hostctl host shows it). 1: every tenant can use all of its memory at once. Idle tenants use far less than their limit (about 14 MB each), so a host of many small, mostly idle tenants can promise more (2: twice its memory), at the risk of the kernel's OOM killer choosing among tenants when they all get busy. 0: no limit.", FIELD(memory_overcommit)},
        {"extensions", "allowed", Kind::list, "Extensions a tenant may ask hostd to enable (create/set \"extensions\"); any other is refused with this list. hostd preloads the library of those that need it (pg_stat_statements, auto_explain: shared_preload_libraries, which tenants cannot set themselves); the tenant's superuser then runs CREATE EXTENSION. Extensions that need no preloaded library can be created by the tenant's superuser whether listed or not: this list governs what hostd loads into a tenant's server. The default is every contrib extension Debian's postgresql-15 ships, and auto_explain.", FIELD(extensions_allowed)},
        {"backup", "repo", Kind::text, "Directory of the tenants' pgBackRest repositories (each tenant's own: <repo>/<tenant>, only its OS user may use it, and only it is visible in its unit). A separate disk or a network mount: never a tenant's disk, nor below paths.state_dir or paths.mount_root. \"\" (the default): no archiving, no backups.", FIELD(backup_repo)},
        {"backup", "pgbackrest", Kind::text, "The pgbackrest program (Debian's package pgbackrest).", FIELD(pgbackrest)},
        {"backup", "compress", Kind::text, "Compression of WAL and backups: \"lz4\" (fast), \"zst\", \"gz\", \"bz2\" or \"none\".", FIELD(backup_compress)},
        {"backup", "retention_full", Kind::count, "Full backups kept per tenant; older ones, and the WAL only they need, are expired after each backup.", FIELD(backup_retention_full)},
        {"backup", "restore_processes", Kind::count, "Processes pgBackRest decompresses and copies with when it restores a backup for a branch or a restore (backups and WAL use one, to spare the tenants). 0: the host's CPU count, at most 4.", FIELD(restore_processes)},
        {"backup", "deleted_retention", Kind::count, "Days the backups of a tenant deleted with purge stay, for branches (hostctl create NEW --from DELETED), before hostd removes them; its OS user, which owns them, stays as long. 0: until purged by hand (hostctl delete NAME --purge --purge-backups).", FIELD(backup_deleted_retention)},
        {"backup", "full_schedule", Kind::text, "When each tenant gets a full backup: a systemd calendar event (OnCalendar=, see systemd.time(7)), spread over an hour per tenant (timer hostd-backup-full@<tenant>.timer). \"\": none on a schedule.", FIELD(full_schedule)},
        {"backup", "incr_schedule", Kind::text, "When each tenant gets an incremental backup (what changed since the last one; the first is full), as full_schedule (hostd-backup-incr@<tenant>.timer). \"\": none on a schedule.", FIELD(incr_schedule)},
        {"backup", "archive_timeout", Kind::count, "Seconds after which PostgreSQL hands a partly filled WAL segment to the archive (its archive_timeout): the most committed work a lost disk can take with it when the tenant writes little. 0: only full segments (postgres.wal_segsize).", FIELD(archive_timeout)},
        {"backup", "repo_host", Kind::text, "Keep the tenants' backups on a repository host instead of repo: \"ADDR:PORT\" of the API of another hostd whose [repository] listens there (it must trust this host's certificate: the hosts share hostd's CA). Each tenant archives its WAL through its own pgBackRest TLS server there, with a client certificate only that server accepts; backups run on the repository host, on its schedule. \"\": off.", FIELD(backup_repo_host)},
        {"backup", "server_address", Kind::text, "With repo_host: the address of this host the repository host reaches each tenant's pgBackRest server at (backups read the tenant's cluster through it). \"\": proxy.public_host.", FIELD(backup_server_address)},
        {"backup", "server_ports", Kind::ports, "With repo_host: ports of the tenants' pgBackRest servers, one per tenant (only the repository host's certificate is let in).", FIELD(backup_server_ports)},
        {"repository", "listen", Kind::text, "Makes this host a repository host: other hostd hosts of the fleet (sharing this host's CA) keep their tenants' pgBackRest repositories here. ADDRESS:PORT of its HTTPS API (client certificates \"hostd@<host>\" from the CA only), e.g. \"10.0.0.2:8443\"; each repository's own pgbackrest server listens on the same address. Empty: off.", FIELD(repository_listen)},
        {"repository", "root", Kind::text, "The repositories: <root>/<client host>/<tenant>, each owned by an OS user of its own. Backups run here with [backup]'s compress, retention_full, schedules and processes.", FIELD(repository_root)},
        {"repository", "ports", Kind::ports, "Ports of the per-repository pgbackrest servers, one each.", FIELD(repository_ports)},
        {"postgres", "bindir", Kind::text, "PostgreSQL server binaries (initdb).", FIELD(pg_bindir)},
        {"postgres", "ports", Kind::ports, "Ports for tenants' PostgreSQL on 127.0.0.1 (keep clear of the ephemeral range).", FIELD(pg_ports)},
        {"postgres", "wal_segsize", Kind::count, "WAL segment size in MB of every new cluster (initdb --wal-segsize; a cluster keeps its own for life, so this changes only creates and the pool disks prepared after it): 1, 2, 4, 8 or 16 (PostgreSQL's default). The first segment is written whole at initdb, so a smaller one makes each idle tenant's disk smaller (16: about 40 MB of its image, 4: about 31 MB, 1: about 29 MB); the price is one archive-push per segment when backups are on (a tenant writing 20 MB/s starts 5 a second at 4, 1.3 at 16).", FIELD(pg_wal_segsize)},
        {"proxy", "kind", Kind::text, "Which proxy routes tenants: \"haproxy\" (hostd writes one file and reloads haproxy.service) or \"traefik\" (one file per tenant in traefik_dir, which Traefik's file provider watches; `hostd --traefik-static` prints the static config Traefik needs).", FIELD(proxy)},
        {"proxy", "public_host", Kind::text, "Host name or address clients use; it goes into connection URLs (port routes).", FIELD(public_host)},
        {"proxy", "bind", Kind::text, "Address the proxy listens on for tenants.", FIELD(bind_address)},
        {"proxy", "ports", Kind::ports, "Public ports, one per tenant (port routes).", FIELD(public_ports)},
        {"proxy", "domain", Kind::text, "Traefik only: give each tenant the host name <tenant>.<domain> (a wildcard DNS record pointing at this host) on the one port sni_port; Traefik picks the tenant by the TLS server name and passes the TLS stream through. Empty: a public port per tenant.", FIELD(domain)},
        {"proxy", "sni_port", Kind::port, "With domain: the port of Traefik's shared PostgreSQL entry point.", FIELD(sni_port)},
        {"proxy", "traefik_dir", Kind::text, "Traefik: the directory its file provider watches; hostd owns the hostd-*.toml files there.", FIELD(traefik_dir)},
        {"proxy", "traefik_entry_point", Kind::text, "Traefik: the name of the shared entry point (with domain). Port routes use entry points named hostd-<port>.", FIELD(traefik_entry_point)},
        {"proxy", "haproxy_bin", Kind::text, "HAProxy binary (used to validate configs).", FIELD(haproxy_bin)},
        {"proxy", "haproxy_main_config", Kind::text, "HAProxy's main config, validated together with hostd's.", FIELD(haproxy_main_config)},
        {"proxy", "haproxy_config", Kind::text, "The file hostd owns; haproxy.service loads it with -f (a drop-in shipped with hostd).", FIELD(haproxy_config)},
        {"proxy", "haproxy_unit", Kind::text, "The systemd unit reloaded after a change.", FIELD(haproxy_unit)},
        {"ha", "address", Kind::text, "High availability across hosts (HA tenants: Patroni members on several hostd hosts, etcd as their store). This host's address on the hosts' network, an IP literal: the peer API, etcd, Patroni's REST API and PostgreSQL for the other members listen on it. Empty: HA is off and every other [ha] key is unused.", FIELD(ha_address)},
        {"ha", "hosts", Kind::list, "The HA hosts, each \"name=address\": name its host name (gethostname(), lower-case letters, digits and '-'), address as that host's [ha] address. This host must be one of them. Only these hosts' hostd may use the peer API (a certificate with CN hostd@<name> from hostd's CA, which every host must share), and the etcd hosts among them form etcd's initial cluster. The same list on every host.", FIELD(ha_hosts)},
        {"ha", "etcd_hosts", Kind::list, "Names (from hosts) of the hosts that run an etcd member (hostd-etcd.service, started by hostd): an odd number, 1 to 7 (3 or 5 for a fleet: etcd needs a majority of them up). Empty: every host.", FIELD(ha_etcd_hosts)},
        {"ha", "api_port", Kind::port, "Port of the peer API (HTTPS with client certificates, on address) through which hosts set up each other's members.", FIELD(ha_api_port)},
        {"ha", "rest_ports", Kind::ports, "Ports for Patroni's REST API, one per HA member on this host (HAProxy's health checks, the other members).", FIELD(ha_rest_ports)},
        {"ha", "etcd_client_port", Kind::port, "etcd's client port (on address and 127.0.0.1). Debian's etcd.service listens on 2379 too: mask it (hostd refuses to start its etcd while another unit holds the port).", FIELD(ha_etcd_client_port)},
        {"ha", "etcd_peer_port", Kind::port, "etcd's peer port (on address).", FIELD(ha_etcd_peer_port)},
        {"ha", "ttl", Kind::count, "Patroni's ttl: seconds a primary's leader key lives without renewal; a vanished primary is replaced after up to this long (see README: High availability). loop_wait + 2 x retry_timeout must not exceed it.", FIELD(ha_ttl)},
        {"ha", "loop_wait", Kind::count, "Patroni's loop_wait: seconds between two rounds of each member (each writes its key to etcd).", FIELD(ha_loop_wait)},
        {"ha", "retry_timeout", Kind::count, "Patroni's retry_timeout: seconds a primary may fail to reach etcd before it demotes itself.", FIELD(ha_retry_timeout)},
        {"ha", "prepare_timeout", Kind::count, "Seconds a member prepared for another host's create waits to be started before this host rolls it back.", FIELD(ha_prepare_timeout)},
        {"hibernate", "after", Kind::duration, "Hibernation of idle tenants (HAProxy only): a tenant no client has been connected to for this long (seconds, or \"30s\", \"15m\", \"2h\", \"1d\") is stopped cleanly and recorded as hibernated; its public port stays open, and its next connection starts it again (about 0.3 s more on that connection, measured by tests/e2e/hibernate) through hostd's waker. hostd's own connections (metrics, checks) use the tenant's Unix socket and neither keep it awake nor wake it. A running idle tenant costs about 13 MB of memory that cannot be reclaimed; a hibernated one costs none. \"0\": off.", FIELD(hibernate_after)},
        {"hibernate", "check_interval", Kind::duration, "How often hostd counts each tenant's client connections (one look at the kernel's socket table for all tenants).", FIELD(hibernate_check_interval)},
        {"hibernate", "waker_port", Kind::port, "The waker's port on 127.0.0.1: HAProxy hands it a hibernated tenant's connections (PROXY protocol v2; the public port names the tenant); it starts the tenant and relays that connection to it. Outside every port range hostd hands out.", FIELD(hibernate_waker_port)},
        {"hibernate", "max_relays", Kind::count, "Connections the waker holds at once (waiting for their tenant, then relayed for their whole session, a thread each); one more is closed at once and logged.", FIELD(hibernate_max_relays)},
    };
    return table;
}
#undef FIELD

std::string where(const Setting& s, const std::string& source) {
    return "'" + std::string(s.section) + "." + s.key + "' in " + source;
}

std::string render_value(const Setting& s, Config& c) {
    void* p = s.field(c);
    std::ostringstream o;
    switch (s.kind) {
    case Kind::text: o << '"' << *static_cast<std::string*>(p) << '"'; break;
    case Kind::size: o << '"' << format_size(*static_cast<uint64_t*>(p)) << '"'; break;
    case Kind::number: o << *static_cast<double*>(p); break;
    case Kind::duration: o << '"' << *static_cast<double*>(p) << "s\""; break;
    case Kind::count: o << *static_cast<uint64_t*>(p); break;
    case Kind::port: o << *static_cast<uint16_t*>(p); break;
    case Kind::ports: {
        auto r = *static_cast<PortRange*>(p);
        o << '"' << r.first << '-' << r.second << '"';
        break;
    }
    case Kind::ids: {
        auto r = *static_cast<std::pair<uint32_t, uint32_t>*>(p);
        o << '"' << r.first << '-' << r.second << '"';
        break;
    }
    case Kind::list: {
        o << '[';
        const auto& v = *static_cast<std::vector<std::string>*>(p);
        for (size_t i = 0; i < v.size(); i++) o << (i ? ", " : "") << '"' << v[i] << '"';
        o << ']';
        break;
    }
    }
    return o.str();
}

bool is_ip_literal(const std::string& a) {
    unsigned char buf[16];
    return inet_pton(AF_INET, a.c_str(), buf) == 1 || inet_pton(AF_INET6, a.c_str(), buf) == 1;
}

// An HA host's name: Patroni's member name and etcd's, and the CN hostd@<name>.
bool is_ha_name(std::string_view n) { return is_dns_label(n); }

std::optional<HaHost> parse_ha_host(const std::string& entry) {
    const auto eq = entry.find('=');
    if (eq == std::string::npos) return std::nullopt;
    HaHost h{entry.substr(0, eq), entry.substr(eq + 1)};
    if (!is_ha_name(h.name) || !is_ip_literal(h.address)) return std::nullopt;
    return h;
}

bool overlaps(PortRange a, PortRange b) { return !(a.second < b.first || b.second < a.first); }

// [ha]: the fleet's names and addresses, etcd's members, ports apart from every other range.
void check_ha(const Config& c, const std::string& source) {
    auto bad = [&](const std::string& key, const std::string& why) {
        throw Error(Errc::invalid, "'ha." + key + "' in " + source + " " + why);
    };
    std::vector<HaHost> fleet;
    for (const auto& e : c.ha_hosts) {
        auto h = parse_ha_host(e);
        if (!h)
            bad("hosts", "must list \"name=address\" entries: a host name of 1-63 lower-case letters, digits and '-' "
                         "(not starting with '-'), '=', an IP address; not '" + e + "'");
        for (const auto& o : fleet) {
            if (o.name == h->name) bad("hosts", "names host '" + h->name + "' twice");
            if (o.address == h->address) bad("hosts", "gives address " + h->address + " to both '" + o.name + "' and '" + h->name + "'");
        }
        fleet.push_back(*h);
    }
    for (size_t i = 0; i < c.ha_etcd_hosts.size(); i++) {
        const std::string& n = c.ha_etcd_hosts[i];
        bool listed = false;
        for (const auto& h : fleet) listed = listed || h.name == n;
        if (!listed) bad("etcd_hosts", "names '" + n + "', which is not one of 'ha.hosts'");
        for (size_t j = 0; j < i; j++)
            if (c.ha_etcd_hosts[j] == n) bad("etcd_hosts", "names '" + n + "' twice");
    }
    if (!ha_on(c)) return;
    if (!is_ip_literal(c.ha_address)) bad("address", "must be an IPv4 or IPv6 address (etcd and PostgreSQL listen on it), not '" + c.ha_address + "'");
    if (fleet.empty()) bad("hosts", "must list the HA hosts, this one among them (\"name=address\"), when 'ha.address' is set");
    const size_t etcd = c.ha_etcd_hosts.empty() ? fleet.size() : c.ha_etcd_hosts.size();
    if (etcd % 2 == 0 || etcd > 7)
        bad(c.ha_etcd_hosts.empty() ? "hosts" : "etcd_hosts",
            "gives etcd " + std::to_string(etcd) + " members: it needs an odd number, 1 to 7 (a majority must be up, and an "
            "even number survives no more failures than one less); name them in 'ha.etcd_hosts'");
    if (c.ha_ttl < 1 || c.ha_loop_wait < 1 || c.ha_retry_timeout < 1 || c.ha_loop_wait + 2 * c.ha_retry_timeout > c.ha_ttl || c.ha_ttl > 3600)
        bad("ttl", "must be at least 'ha.loop_wait' + 2 x 'ha.retry_timeout' (Patroni's rule), each at least 1 and ttl at most 3600; not " +
                       std::to_string(c.ha_ttl) + "/" + std::to_string(c.ha_loop_wait) + "/" + std::to_string(c.ha_retry_timeout));
    if (c.ha_prepare_timeout < 10 || c.ha_prepare_timeout > 86400) bad("prepare_timeout", "must be 10-86400 seconds");
    // Every port this host's HA listens on, against each other and every other configured range.
    struct Named {
        const char* key;
        PortRange r;
    };
    std::vector<Named> ranges = {{"postgres.ports", c.pg_ports}, {"proxy.ports", c.public_ports}};
    if (!c.repository_listen.empty()) ranges.push_back({"repository.ports", c.repository_ports});
    if (!c.backup_repo_host.empty()) ranges.push_back({"backup.server_ports", c.backup_server_ports});
    auto single = [](uint16_t p) { return PortRange{p, p}; };
    if (!c.domain.empty()) ranges.push_back({"proxy.sni_port", single(c.sni_port)});
    if (!c.repository_listen.empty()) {
        const auto colon = c.repository_listen.rfind(':');
        uint32_t p = 0;
        std::from_chars(c.repository_listen.data() + colon + 1, c.repository_listen.data() + c.repository_listen.size(), p);
        if (p > 0 && p <= 65535) ranges.push_back({"repository.listen", single(static_cast<uint16_t>(p))});
    }
    const std::vector<Named> own = {{"ha.api_port", single(c.ha_api_port)},
                                    {"ha.etcd_client_port", single(c.ha_etcd_client_port)},
                                    {"ha.etcd_peer_port", single(c.ha_etcd_peer_port)},
                                    {"ha.rest_ports", c.ha_rest_ports}};
    for (size_t i = 0; i < own.size(); i++) {
        for (size_t j = 0; j < i; j++)
            if (overlaps(own[i].r, own[j].r))
                throw Error(Errc::invalid, "'" + std::string(own[i].key) + "' and '" + own[j].key + "' in " + source + " must not overlap");
        for (const auto& o : ranges)
            if (overlaps(own[i].r, o.r))
                throw Error(Errc::invalid, "'" + std::string(own[i].key) + "' in " + source + " must not overlap '" + o.key + "'");
    }
}

}  // namespace

std::vector<HaHost> ha_fleet(const Config& c) {
    std::vector<HaHost> out;
    for (const auto& e : c.ha_hosts)
        if (auto h = parse_ha_host(e)) out.push_back(*h);
    return out;
}

bool ha_etcd_host(const Config& c, const std::string& name) {
    if (c.ha_etcd_hosts.empty()) {
        for (const auto& h : ha_fleet(c))
            if (h.name == name) return true;
        return false;
    }
    return std::find(c.ha_etcd_hosts.begin(), c.ha_etcd_hosts.end(), name) != c.ha_etcd_hosts.end();
}

std::string ha_self(const Config& c, const std::string& host_name, const std::string& source) {
    if (!ha_on(c)) return host_name;
    if (!is_ha_name(host_name))
        throw Error(Errc::invalid, "This host's name '" + host_name + "' cannot be an HA host's (1-63 lower-case letters, digits "
                                   "and '-'): rename the host, or leave 'ha.address' in " + source + " empty");
    for (const auto& h : ha_fleet(c)) {
        if (h.name != host_name) continue;
        if (h.address != c.ha_address)
            throw Error(Errc::invalid, "'ha.hosts' in " + source + " gives this host ('" + host_name + "') the address " + h.address +
                                       ", but 'ha.address' is " + c.ha_address + ": make them agree");
        return host_name;
    }
    throw Error(Errc::invalid, "This host ('" + host_name + "', its host name) is not in 'ha.hosts' in " + source + ": add \"" +
                               host_name + "=" + c.ha_address + "\" there (on every host), or leave 'ha.address' empty");
}

std::vector<std::string> default_extensions_allowed() {
    return {"adminpack", "amcheck", "auto_explain", "autoinc", "bloom", "btree_gin", "btree_gist", "citext", "cube",
            "dblink", "dict_int", "dict_xsyn", "earthdistance", "file_fdw", "fuzzystrmatch", "hstore",
            "insert_username", "intagg", "intarray", "isn", "lo", "ltree", "moddatetime", "old_snapshot",
            "pageinspect", "pg_buffercache", "pg_freespacemap", "pg_prewarm", "pg_stat_statements", "pg_surgery",
            "pg_trgm", "pg_visibility", "pg_walinspect", "pgcrypto", "pgrowlocks", "pgstattuple", "postgres_fdw",
            "refint", "seg", "sslinfo", "tablefunc", "tcn", "tsm_system_rows", "tsm_system_time", "unaccent",
            "uuid-ossp", "xml2"};
}

namespace {
// [hibernate]: HAProxy only (its backup server hands a hibernated tenant's connections to the
// waker; Traefik has no such fallback and SNI routes share one port, which cannot name the
// tenant), a waker port no tenant, proxy or server of hostd can be given.
void check_hibernate(const Config& c, const std::string& source) {
    if (!hibernate_on(c)) return;
    auto bad = [&](const std::string& key, const std::string& why) {
        throw Error(Errc::invalid, "'hibernate." + key + "' in " + source + " " + why);
    };
    if (c.proxy != "haproxy")
        bad("after", "needs proxy.kind = \"haproxy\": a hibernated tenant's connections reach hostd's waker through an "
                     "HAProxy backup server, which Traefik routes cannot have; set hibernate.after = 0 or use HAProxy");
    if (c.hibernate_after < 1) bad("after", "must be at least 1 second (0 turns hibernation off)");
    if (c.hibernate_check_interval < 0.1 || c.hibernate_check_interval > 3600) bad("check_interval", "must be 0.1 s to 1 h");
    if (c.hibernate_max_relays < 1 || c.hibernate_max_relays > 10000) bad("max_relays", "must be 1-10000");
    const uint16_t w = c.hibernate_waker_port;
    std::vector<std::pair<const char*, PortRange>> ranges = {{"postgres.ports", c.pg_ports}, {"proxy.ports", c.public_ports}};
    if (!c.backup_repo_host.empty()) ranges.push_back({"backup.server_ports", c.backup_server_ports});
    if (!c.repository_listen.empty()) ranges.push_back({"repository.ports", c.repository_ports});
    if (ha_on(c)) ranges.push_back({"ha.rest_ports", c.ha_rest_ports});
    for (auto& [key, r] : ranges)
        if (w >= r.first && w <= r.second) bad("waker_port", std::string("must not be in '") + key + "'");
}
}  // namespace

Config parse_config(std::string_view text, const std::string& source) {
    toml::table doc;
    try {
        doc = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        std::ostringstream o;
        o << "Failed to parse " << source << " at line " << e.source().begin.line << ": " << e.description();
        throw Error(Errc::invalid, o.str());
    }
    Config c;
    for (auto& [sec_name, sec_node] : doc) {
        auto* sec = sec_node.as_table();
        if (!sec) throw Error(Errc::invalid, "'" + std::string(sec_name.str()) + "' in " + source + " must be a [section]");
        for (auto& [key, node] : *sec) {
            const Setting* s = nullptr;
            for (auto& cand : settings())
                if (sec_name.str() == cand.section && key.str() == cand.key) s = &cand;
            if (!s)
                throw Error(Errc::invalid, "Unknown setting '" + std::string(sec_name.str()) + "." + std::string(key.str()) +
                                               "' in " + source + "; see the commented default hostd.toml");
            void* p = s->field(c);
            switch (s->kind) {
            case Kind::text:
                if (!node.is_string()) throw Error(Errc::invalid, where(*s, source) + " must be a string");
                *static_cast<std::string*>(p) = *node.value<std::string>();
                break;
            case Kind::size: {
                std::optional<uint64_t> v;
                if (node.is_string()) v = parse_size(*node.value<std::string>());
                else if (node.is_integer() && *node.value<int64_t>() >= 0) v = static_cast<uint64_t>(*node.value<int64_t>());
                if (!v) throw Error(Errc::invalid, where(*s, source) + " must be a size such as \"512M\" or \"2G\"");
                *static_cast<uint64_t*>(p) = *v;
                break;
            }
            case Kind::number: {
                auto v = node.value<double>();
                if (!v || *v < 0) throw Error(Errc::invalid, where(*s, source) + " must be a non-negative number");
                *static_cast<double*>(p) = *v;
                break;
            }
            case Kind::duration: {
                std::optional<double> v;
                if (node.is_string()) v = parse_duration(*node.value<std::string>());
                else if (node.is_integer() || node.is_floating_point()) v = node.value<double>();
                if (!v || *v < 0 || *v > 365.0 * 86400)
                    throw Error(Errc::invalid, where(*s, source) + " must be a duration such as 30 (seconds), \"90s\", \"15m\", \"2h\" or \"1d\", at most a year");
                *static_cast<double*>(p) = *v;
                break;
            }
            case Kind::count: {
                auto v = node.value<int64_t>();
                if (!v || *v < 0) throw Error(Errc::invalid, where(*s, source) + " must be a non-negative integer");
                *static_cast<uint64_t*>(p) = static_cast<uint64_t>(*v);
                break;
            }
            case Kind::port: {
                auto v = node.value<int64_t>();
                if (!v || *v < 1 || *v > 65535) throw Error(Errc::invalid, where(*s, source) + " must be a port, 1-65535");
                *static_cast<uint16_t*>(p) = static_cast<uint16_t>(*v);
                break;
            }
            case Kind::ports: {
                std::optional<PortRange> r;
                if (node.is_string()) r = parse_port_range(*node.value<std::string>());
                if (!r) throw Error(Errc::invalid, where(*s, source) + " must be a port range such as \"25000-27999\"");
                *static_cast<PortRange*>(p) = *r;
                break;
            }
            case Kind::ids: {
                std::optional<std::pair<uint32_t, uint32_t>> r;
                if (node.is_string()) r = parse_id_range(*node.value<std::string>());
                if (!r) throw Error(Errc::invalid, where(*s, source) + " must be a range of ids such as \"65536-99999\"");
                *static_cast<std::pair<uint32_t, uint32_t>*>(p) = *r;
                break;
            }
            case Kind::list: {
                auto* arr = node.as_array();
                auto& out = *static_cast<std::vector<std::string>*>(p);
                out.clear();
                if (arr)
                    for (auto& e : *arr) {
                        if (!e.is_string()) { arr = nullptr; break; }
                        out.push_back(*e.value<std::string>());
                    }
                if (!arr) throw Error(Errc::invalid, where(*s, source) + " must be a list of strings");
                break;
            }
            }
        }
    }
    if (c.backend != "loop" && c.backend != "device")
        throw Error(Errc::invalid, "'storage.backend' in " + source + " must be \"loop\" or \"device\"");
    if (c.proxy != "haproxy" && c.proxy != "traefik")
        throw Error(Errc::invalid, "'proxy.kind' in " + source + " must be \"haproxy\" or \"traefik\"");
    if (!c.domain.empty()) {
        if (c.proxy != "traefik")
            throw Error(Errc::invalid, "'proxy.domain' in " + source + " needs proxy.kind = \"traefik\": HAProxy routes "
                                       "each tenant by its own port (leave domain empty)");
        if (!routes::is_dns_name(c.domain))
            throw Error(Errc::invalid, "'proxy.domain' in " + source + " must be a DNS name in lower case, such as "
                                       "\"db.example.com\"");
        if (c.sni_port >= c.pg_ports.first && c.sni_port <= c.pg_ports.second)
            throw Error(Errc::invalid, "'proxy.sni_port' in " + source + " must not be in 'postgres.ports'");
    }
    if (c.traefik_dir.empty() || c.traefik_dir.front() != '/')
        throw Error(Errc::invalid, "'proxy.traefik_dir' in " + source + " must be an absolute path");
    if (!routes::is_dns_name(c.traefik_entry_point))
        throw Error(Errc::invalid, "'proxy.traefik_entry_point' in " + source + " must be a name of a-z, 0-9 and '-'");
    if (!c.backup_repo.empty()) {
        auto below = [](const std::string& p, const std::string& dir) {
            return p == dir || (p.size() > dir.size() && p.compare(0, dir.size(), dir) == 0 && (dir.back() == '/' || p[dir.size()] == '/'));
        };
        if (c.backup_repo.front() != '/' || c.backup_repo.find("/../") != std::string::npos || c.backup_repo.ends_with("/.."))
            throw Error(Errc::invalid, "'backup.repo' in " + source + " must be an absolute path");
        for (const std::string* d : {&c.state_dir, &c.mount_root, &c.loop_dir})
            if (below(c.backup_repo, *d) || below(*d, c.backup_repo))
                throw Error(Errc::invalid, "'backup.repo' in " + source + " must lie apart from '" + *d +
                                           "': backups must survive what happens to the tenants' disks and hostd's state");
    }
    if (!c.backup_repo_host.empty()) {
        if (!c.backup_repo.empty())
            throw Error(Errc::invalid, "'backup.repo' and 'backup.repo_host' in " + source + " are two places for the same "
                                       "backups: set one");
        const auto colon = c.backup_repo_host.rfind(':');
        uint32_t port = 0;
        const std::string_view p = colon == std::string::npos ? "" : std::string_view(c.backup_repo_host).substr(colon + 1);
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
        if (colon == 0 || colon == std::string::npos || p.empty() || ec != std::errc() || end != p.data() + p.size() ||
            port == 0 || port > 65535 ||
            c.backup_repo_host.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz.-:[]") != std::string::npos)
            throw Error(Errc::invalid, "'backup.repo_host' in " + source + " must be ADDR:PORT, like \"10.0.0.5:8443\"");
    }
    if (!c.backup_server_address.empty() &&
        c.backup_server_address.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz.-:") != std::string::npos)
        throw Error(Errc::invalid, "'backup.server_address' in " + source + " must be an address or host name");
    if (c.backup_compress != "lz4" && c.backup_compress != "zst" && c.backup_compress != "gz" && c.backup_compress != "bz2" &&
        c.backup_compress != "none")
        throw Error(Errc::invalid, "'backup.compress' in " + source + " must be \"lz4\", \"zst\", \"gz\", \"bz2\" or \"none\"");
    if (c.backup_retention_full < 1 || c.backup_retention_full > 9999999)
        throw Error(Errc::invalid, "'backup.retention_full' in " + source + " must be 1-9999999");
    if (c.restore_processes > 64)
        throw Error(Errc::invalid, "'backup.restore_processes' in " + source + " must be 0-64");
    if (c.backup_deleted_retention > 36500)
        throw Error(Errc::invalid, "'backup.deleted_retention' in " + source + " must be 0-36500 days");
    for (const std::string* sched : {&c.full_schedule, &c.incr_schedule})
        for (char ch : *sched)
            if (ch == '\n' || ch == '\r' || ch == '%' || ch == '\\')
                throw Error(Errc::invalid, "'backup.full_schedule' and 'backup.incr_schedule' in " + source +
                                           " must be systemd calendar events such as \"Sun *-*-* 01:00:00\"");
    if (c.archive_timeout > 86400)
        throw Error(Errc::invalid, "'backup.archive_timeout' in " + source + " must be at most 86400 seconds");
    if (!c.repository_listen.empty()) {
        const auto colon = c.repository_listen.rfind(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == c.repository_listen.size())
            throw Error(Errc::invalid, "'repository.listen' in " + source + " must be ADDRESS:PORT such as \"10.0.0.2:8443\"");
        const std::string& r = c.repository_root;
        auto below = [](const std::string& p, const std::string& dir) {
            return p == dir || (p.size() > dir.size() && p.compare(0, dir.size(), dir) == 0 && p[dir.size()] == '/');
        };
        if (r.size() < 2 || r.front() != '/' || r.back() == '/' || r.find("//") != std::string::npos ||
            r.find("/./") != std::string::npos || r.find("/../") != std::string::npos || r.ends_with("/..") || r.ends_with("/."))
            throw Error(Errc::invalid, "'repository.root' in " + source + " must be an absolute, normalized path");
        for (const std::string* d : {&c.state_dir, &c.mount_root, &c.loop_dir})
            if (below(r, *d) || below(*d, r))
                throw Error(Errc::invalid, "'repository.root' in " + source + " must lie apart from '" + *d + "'");
        const bool overlap = !(c.repository_ports.second < c.pg_ports.first || c.pg_ports.second < c.repository_ports.first) ||
                             !(c.repository_ports.second < c.public_ports.first || c.public_ports.second < c.repository_ports.first);
        if (overlap)
            throw Error(Errc::invalid, "'repository.ports' in " + source + " must not overlap 'postgres.ports' or 'proxy.ports'");
    }
    if (c.filesystem != "ext4" && c.filesystem != "xfs")
        throw Error(Errc::invalid, "'storage.filesystem' in " + source + " must be \"ext4\" or \"xfs\"");
    for (auto& d : c.devices)
        if (d.empty() || d.front() != '/')
            throw Error(Errc::invalid, "'storage.devices' in " + source + " must list absolute device paths, not '" + d + "'");
    for (auto& e : c.extensions_allowed)
        if (e.empty() || e.size() > 63 ||
            e.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos)
            throw Error(Errc::invalid, "'extensions.allowed' in " + source + " must list extension names (a-z, 0-9, '_', "
                                       "'-'), not '" + e + "'");
    if (c.pg_wal_segsize == 0 || c.pg_wal_segsize > 16 || (c.pg_wal_segsize & (c.pg_wal_segsize - 1)) != 0)
        throw Error(Errc::invalid, "'postgres.wal_segsize' in " + source + " must be 1, 2, 4, 8 or 16 (MB; min_wal_size is kept at two segments or more), not " + std::to_string(c.pg_wal_segsize));
    if (c.pool_size > 64) throw Error(Errc::invalid, "'pool.size' in " + source + " must be at most 64 (disks kept prepared), not " + std::to_string(c.pool_size));
    if (c.guard_interval > 0 && !(c.guard_readonly_below < c.guard_readwrite_above && c.guard_readwrite_above < 100))
        throw Error(Errc::invalid, "'guard.readonly_below' must be below 'guard.readwrite_above', and that below 100, in " + source);
    // PostgreSQL with hostd's smallest settings (shared_buffers 16MB, 20 connections × work_mem
    // 1MB) needs 36 MiB of its MemoryMax before it has any room to work (pgconf/fit.h).
    if (c.min_memory < (48ull << 20))
        throw Error(Errc::invalid, "'limits.min_memory' in " + source + " must be at least 48M: PostgreSQL with hostd's "
                                   "smallest settings needs 36M before it has room to work");
    if (c.api_max_connections < 1 || c.api_max_connections > 100000)
        throw Error(Errc::invalid, "'api.max_connections' in " + source + " must be 1-100000");
    if (c.metrics_max_connections < 1 || c.metrics_max_connections > 100000)
        throw Error(Errc::invalid, "'metrics.max_connections' in " + source + " must be 1-100000");
    if (c.metrics_max_connections_per_ip > c.metrics_max_connections)
        throw Error(Errc::invalid, "'metrics.max_connections_per_ip' in " + source + " must not exceed 'metrics.max_connections'");
    if (c.api_idle_timeout > 86400 || c.metrics_timeout > 86400)
        throw Error(Errc::invalid, "'api.idle_timeout' and 'metrics.timeout' in " + source + " must be at most 86400 seconds");
    if (!(c.metrics_refresh_budget > 0))
        throw Error(Errc::invalid, "'metrics.refresh_budget' in " + source + " must be above 0 (connections per second)");
    // Ids others hand out: the system's (0-999), systemd's (homed, container-mapped host users,
    // DynamicUser=) and nobody/(uid_t)-1 (60001-65535); above 2^31 they read as negative.
    auto [id_lo, id_hi] = c.user_ids;
    if (id_lo < 1000 || (id_lo <= 65535 && id_hi >= 60001) || id_hi > 0x7fffffffu)
        throw Error(Errc::invalid, "'users.ids' in " + source + " must lie within 1000-60000 or 65536-2147483647 "
                                   "(the system's, systemd's and nobody's ids are not hostd's), not " +
                                       std::to_string(id_lo) + "-" + std::to_string(id_hi));
    bool overlap = !(c.pg_ports.second < c.public_ports.first || c.public_ports.second < c.pg_ports.first);
    if (overlap) throw Error(Errc::invalid, "'postgres.ports' and 'proxy.ports' in " + source + " must not overlap");
    check_ha(c, source);
    check_hibernate(c, source);
    if (!c.backup_repo_host.empty())
        for (const PortRange& r : {c.pg_ports, c.public_ports})
            if (!(c.backup_server_ports.second < r.first || r.second < c.backup_server_ports.first))
                throw Error(Errc::invalid, "'backup.server_ports' in " + source + " must not overlap 'postgres.ports' or 'proxy.ports'");
    return c;
}

Config load_config(const std::string& path) {
    std::string text;
    try {
        text = read_file(path);
    } catch (const Error& e) {
        if (e.code() == Errc::not_found) return Config{};
        throw;
    }
    Config c = parse_config(text, path);
    if (ha_on(c)) {
        char buf[256] = {};
        if (::gethostname(buf, sizeof buf - 1) < 0) throw Error(Errc::failed, "Failed to read this host's name (gethostname)");
        ha_self(c, buf, path);
    }
    return c;
}

std::string default_config_text() {
    Config c;
    std::ostringstream o;
    o << "# hostd configuration. Every setting is shown with its default; uncomment to change.\n"
         "# Sizes take binary units (\"512M\", \"2G\"). Restart hostd after a change.\n";
    std::string section;
    for (auto& s : settings()) {
        if (section != s.section) {
            section = s.section;
            o << "\n[" << section << "]\n";
        }
        o << "# " << s.help << "\n# " << s.key << " = " << render_value(s, c) << "\n";
    }
    return o.str();
}

}  // namespace hostd

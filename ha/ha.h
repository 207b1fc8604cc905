// High availability across hosts (issue #17), pure: the text of what runs an HA tenant's member
// and the fleet's DCS. Patroni (Debian's `patroni`) runs in the tenant's unit instead of
// `postgres` and manages its PostgreSQL; etcd (Debian's `etcd-server`, v3 API) on the hosts is
// the DCS; every member host's HAProxy sends the tenant's public port to the member whose Patroni
// REST API answers /primary. Values in, text out; bad values throw hostd::Error (Errc::invalid,
// with the field). Never touches the machine.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hostd::ha {

struct HostPort {
    std::string host;  // an IPv4/IPv6 literal or a DNS name
    uint16_t port = 0;
};

// TLS files, absolute paths. For etcd: its certificate and key (read by etcd's user) and the CA
// the other end's certificate must come from; for Patroni: its client certificate and key (read
// by the tenant's user) and the CA etcd's certificate must come from.
struct TlsFiles {
    std::string cert_file;
    std::string key_file;
    std::string ca_file;
};

// Patroni's timing (its dynamic configuration, written to etcd when the scope is bootstrapped;
// later changes go through Patroni's PATCH /config, not this file). The trade-off: a primary
// that vanishes (machine down, partition) is replaced only after its leader key expires, up to
// `ttl` seconds after its last renewal (it renews every loop_wait), plus the time a replica needs
// to notice (its etcd watch wakes it, unless the etcd member it talks to is on the lost host:
// then a read times out, about retry_timeout / 3, and it moves to another), plus the new leader's
// check of the other members (2 s for an unreachable one) and the promotion. A short ttl fails
// over sooner, but a primary that cannot reach etcd within retry_timeout demotes itself, so etcd
// trouble longer than that costs a spurious failover; a short loop_wait costs etcd writes (every
// member of every HA tenant writes its key each loop). Patroni wants loop_wait + 2 *
// retry_timeout <= ttl. Patroni's defaults (30/10/10) give an RTO of 30-45 s; 15/5/5 measured
// 13 and 20 s in tests/e2e/ha; these (10/2/4) measured 12 s, within the 15 s goal of #17.
struct Timing {
    int ttl = 10;
    int loop_wait = 2;
    int retry_timeout = 4;
};

// Which etcd API Patroni speaks: its `etcd` section (v2 API) or `etcd3` (v3). Patroni 3.0.2
// (Debian 12) must use v2: its etcd3 `_update_leader` writes the leader key with a plain put
// whenever its lease changed, so a primary that was cut off and sees its own stale view when the
// network returns overwrites the key of the member promoted meanwhile and takes the lead back,
// losing that member's commits (fixed in Patroni 3.0.3: b4afc683, 1c7bf2f5). Patroni's v2 client
// renews the key with a compare-and-swap on its value (prevValue = its name) and creates it only
// if absent (prevExist = false), whatever its view: a stale member fails and demotes. v3 for a
// Patroni >= 3.0.3 (Debian 13: 4.0). See README: High availability, What fails.
enum class EtcdApi { v2, v3 };

struct Credentials {
    std::string username;
    std::string password;  // any printable characters (Patroni escapes them in its pgpass)
};

struct PatroniMember {
    std::string scope;      // the tenant's name: one Patroni cluster (etcd key prefix) per tenant
    std::string name;       // this member's name in the scope: its host's name
    std::string etcd_namespace = "/hostd/";  // keys live under <namespace><scope>/
    // Patroni's REST API: where it listens (this host's address and the member's own port) and
    // what the other members and HAProxy connect to.
    HostPort restapi_listen;
    std::string connect_address;  // this host's address as the others reach it (REST and PostgreSQL)
    std::vector<HostPort> etcd;   // etcd's client endpoints: every host's
    // Patroni's etcd client over https (etcd.protocol, cacert, cert, key): the member's client
    // certificate for etcd (client use, CN its etcd user: hostd/etcd_admin.h tenant_user) and
    // the CA etcd's certificate comes from. Absolute paths, readable by the member's OS user.
    TlsFiles etcd_tls;
    EtcdApi etcd_api = EtcdApi::v2;  // v2 with Debian 12's Patroni 3.0.2 (see EtcdApi)
    // PostgreSQL (Debian's 15): the tenant's data directory, binaries and socket directory; it
    // listens on listen_addresses at pg_port (this host's address for the other members and
    // HAProxy on other hosts, 127.0.0.1 for this host's HAProxy).
    std::string data_dir;
    std::string bin_dir = "/usr/lib/postgresql/15/bin";
    std::string socket_dir;
    std::string pgpass;  // the passfile Patroni writes for its own connections (tenant-owned dir)
    // The member's own postgresql.conf settings as a file Patroni includes first (its
    // custom_conf; "" for none): hostd's tuning of the tenant's limits and its overrides, outside
    // pgdata (a replica's pgdata is the primary's copy). What Patroni sets itself comes after.
    std::string custom_conf;
    std::vector<std::string> listen_addresses;
    uint16_t pg_port = 0;
    // postgresql.conf settings of this member (limits, archiving). Rendered with
    // wal_sender_timeout and wal_receiver_timeout 5s unless given (see ha.cc: Patroni 3.0.2).
    // Not the settings every member must share, which Patroni takes from its global
    // configuration only (its CMDLINE_OPTIONS: max_connections, max_worker_processes,
    // max_wal_senders, max_replication_slots, max_locks_per_transaction,
    // max_prepared_transactions, wal_level, track_commit_timestamp, wal_keep_size,
    // wal_keep_segments) and silently drops here: refused, give them in global_parameters. Nor
    // what Patroni or hostd set themselves (listen_addresses, port, cluster_name, hot_standby,
    // wal_log_hints; unix_socket_directories, ssl, ssl_cert_file, ssl_key_file):
    // refused in both maps.
    std::map<std::string, std::string> parameters;
    // Settings of the whole scope: Patroni's global (dynamic) configuration,
    // bootstrap.dcs.postgresql.parameters, written to etcd when the scope is bootstrapped (later
    // changes go through Patroni's PATCH /config). Values Patroni would drop (max_connections
    // below 25, max_wal_senders below 3, max_replication_slots below 4, max_worker_processes
    // below 2, max_locks_per_transaction below 32, wal_level minimal, a max_* that is no integer,
    // wal_keep_size below 16MB, ...) are refused. A name given in both maps is refused.
    std::map<std::string, std::string> global_parameters;
    // TLS: every TCP login to PostgreSQL is TLS (member_hba), and the members' own connections
    // to each other (streaming replication, pg_rewind) check the other's certificate against ca
    // with the name they connect to (sslmode verify-full): a member's certificate names its
    // connect_address. Absolute paths, readable by the member's OS user (the key its own, 0600).
    struct Tls {
        std::string cert_file;  // the member's server certificate (PostgreSQL's ssl_cert_file)
        std::string key_file;   // its key (ssl_key_file)
        std::string ca_file;    // the CA the members' certificates are issued from (sslrootcert)
    } tls;
    std::vector<std::string> pg_hba;  // whole lines, in order (Patroni writes pg_hba.conf from them)
    std::vector<std::string> pg_ident;  // whole lines of pg_ident.conf (Patroni writes it; none: left alone)
    Credentials superuser;    // Patroni's own local connections, and pg_rewind
    Credentials replication;  // the replicas' streaming (a role Patroni creates at bootstrap)
    Credentials rewind;       // pg_rewind of a demoted primary (a role Patroni creates, not a superuser)
    // Patroni's REST API (restapi.authentication): with a username, Patroni asks for basic auth
    // on its unsafe verbs (POST /switchover, /restart, /reinitialize, PATCH /config, ...), so no
    // one on the hosts' network can steer the tenant; GET /cluster, /primary and /replica stay
    // open (HAProxy's checks, hostd's reads). hostd's: "hostd" and HaSecrets::rest_password.
    // Empty username and password: no authentication (the e2e suite's plain members).
    Credentials rest;
    // Synchronous mode (Patroni's, part of its dynamic configuration: bootstrap.dcs): Patroni makes
    // one replica synchronous (synchronous_standby_names), so a commit is acknowledged only once
    // that replica has flushed it, and promotes only that replica: no acknowledged commit is lost
    // by a failover. With every replica gone, a non-strict primary goes on alone (writes are
    // acknowledged by it only until a replica is back; Patroni still promotes no replica that was
    // not synchronous); strict, it accepts no commit until a replica is back (durability over
    // availability: a three-member tenant with two members down stops writing). See README.
    bool synchronous_mode = false;
    bool synchronous_mode_strict = false;  // only with synchronous_mode
    bool failsafe_mode = true;      // etcd lost: a primary that reaches every member keeps serving
    Timing timing;
};

// pg_hba lines for a member: local connections (Patroni's own, the tenant's tools; a replica's
// Patroni reads its timeline over a local replication connection) and clients from anywhere
// (through HAProxy on any member host) with SCRAM; streaming replication for the replication
// role from the members' addresses only (/32 or /128 each). Every TCP login over TLS only
// (`hostssl`, then `hostnossl ... reject`), like a plain tenant's pg_hba.conf.
std::vector<std::string> member_hba(const std::vector<std::string>& member_addresses, const std::string& replication_user);

// The member's patroni.yml. YAML is a superset of JSON: a comment header (what the file is and
// the timing's trade-off) and then one JSON document, so every value is quoted by a JSON writer
// and no name, password or hba line can change the file's structure. Validates every field:
// scope and name [a-z0-9][a-z0-9-]* (at most 63), addresses IP literals or DNS names, ports not
// 0, paths absolute without control characters, parameter names [a-z0-9_.], no control
// characters in values, passwords or hba lines, timing within Patroni's rule, the settings of
// parameters and global_parameters as said there, TLS files absolute paths, the REST API's
// username a label and its password given (no control characters) when either is.
std::string render_patroni(const PatroniMember& m);

// Whether Patroni takes setting `name` from its global (DCS) configuration only, dropping it
// from a member's own files (max_connections, wal_level, max_wal_senders, ...).
bool global_only_setting(const std::string& name);

// The CN of every etcd member's peer certificate (etcd's peer-cert-allowed-cn): a peer must
// present a certificate of the CA with exactly this CN, so a tenant's client certificate from the
// same CA (its etcd user, its repository client) cannot speak Raft to a member. No tenant or
// host name can be it (':' and '@' are not in their alphabets).
inline constexpr const char* kEtcdPeerCn = "hostd:etcd-peer";

// One host's etcd member: TLS everywhere, every client and peer must present a certificate of the
// CA (client-cert-auth; the client certificate's CN is its etcd user once auth is on: see
// hostd/etcd_admin.h).
struct EtcdMember {
    std::string name;     // the host's name
    std::string address;  // this host's address (peers and clients)
    std::string data_dir = "/var/lib/etcd/hostd";
    uint16_t client_port = 2379, peer_port = 2380;
    std::map<std::string, std::string> initial_cluster;  // every member, this one included: name → address
    std::string cluster_token = "hostd";
    bool new_cluster = true;  // false: joining a cluster that runs ("existing")
    int heartbeat_ms = 100, election_ms = 1000;  // etcd's defaults; election >= 5 * heartbeat
    bool enable_v2 = true;  // the v2 API for Patroni 3.0.2's `etcd` DCS (EtcdApi::v2); v3 always on
    // Served on the client URLs: a server certificate naming address and 127.0.0.1.
    TlsFiles client_tls;
    // Served and presented on the peer URLs: server and client use, CN kEtcdPeerCn, naming address.
    TlsFiles peer_tls;
};

// etcd's environment file (systemd's EnvironmentFile=, ETCD_<FLAG>=value lines; etcd 3.4 reads
// no flag and no variable at all once given --config-file, and its file has no key for
// peer-cert-allowed-cn): clients over https on its address and 127.0.0.1, peers over https on
// its address, client and peer certificates required (client-cert-auth, peer-client-cert-auth,
// peer-cert-allowed-cn kEtcdPeerCn); the v3 API (and the v2 API with enable_v2). Every value is
// validated to characters that need no quoting (paths: letters, digits, '/', '.', '_', '-').
std::string render_etcd(const EtcdMember& m);

// The client endpoints of the members ("https://addr:port" joined with ','), as etcdctl takes them.
std::string etcd_endpoints(const std::vector<HostPort>& members);

// One member of an HA tenant as a proxy reaches it.
struct ProxyMember {
    std::string name;   // the member's host name (the HAProxy server name)
    std::string host;   // its address
    uint16_t pg_port = 0;
    uint16_t rest_port = 0;
};

enum class Role { primary, replica };

// A tenant's public port on one member host, routed to all members; HAProxy's health check asks
// each member's Patroni (GET /primary, or /replica for a read-only port: 200 or not), so only
// the member holding that role is up; a member marked down has its sessions cut
// (on-marked-down shutdown-sessions), so no client stays on a demoted primary.
struct HaRoute {
    std::string tenant;
    std::string bind_address;
    uint16_t public_port = 0;
    Role role = Role::primary;
    std::vector<ProxyMember> members;
};

// A `listen hostd_<port>` section like routes/' (mode tcp of its own), for hostd's HAProxy file.
std::string render_haproxy(const HaRoute& r);

}  // namespace hostd::ha

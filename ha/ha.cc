#include "ha/ha.h"

#include <arpa/inet.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/strings.h"
#include "routes/routes.h"

namespace hostd::ha {
namespace {

using nlohmann::ordered_json;

[[noreturn]] void refuse(const std::string& field, const std::string& value, const std::string& why) {
    throw Error(Errc::invalid, "HA: '" + value + "' cannot be " + field + ": " + why, field);
}

bool is_ip(const std::string& a) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET, a.c_str(), buf) == 1 || ::inet_pton(AF_INET6, a.c_str(), buf) == 1;
}
bool is_ipv6(const std::string& a) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET6, a.c_str(), buf) == 1;
}

// [a-z0-9][a-z0-9-]*, at most 63: a DNS label, an etcd key part and an HAProxy word at once.
void check_label(const std::string& field, const std::string& v) {
    if (!is_dns_label(v)) refuse(field, v, "use 1-63 lower-case letters, digits and '-', not starting with '-'");
}

void check_host(const std::string& field, const std::string& v) {
    if (is_ip(v)) return;
    bool ok = !v.empty() && v.size() <= 253 && v.front() != '.' && v.back() != '.' && v.find("..") == std::string::npos;
    for (char c : v) ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
    if (!ok) refuse(field, v, "give an IP address or a DNS name");
}

void check_port(const std::string& field, uint16_t p) {
    if (p == 0) refuse(field, "0", "give a port in 1-65535");
}

void check_text(const std::string& field, const std::string& v) {
    for (unsigned char c : v)
        if (c < 0x20 || c == 0x7f) refuse(field, v, "control characters (newlines, tabs) are not allowed");
}

void check_path(const std::string& field, const std::string& v) {
    if (v.empty() || v.front() != '/') refuse(field, v, "give an absolute path");
    check_text(field, v);
}

std::string host_port(const std::string& host, uint16_t port) {
    return (is_ipv6(host) ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string url(const std::string& host, uint16_t port) { return "https://" + host_port(host, port); }

// A path etcd's environment file holds unquoted: absolute, letters, digits, '/', '.', '_', '-'.
void check_plain_path(const std::string& field, const std::string& v) {
    check_path(field, v);
    for (char c : v)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '.' || c == '_' || c == '-'))
            refuse(field, v, "use letters, digits, '/', '.', '_' and '-' only");
}

void check_tls(const std::string& field, const TlsFiles& t, bool plain) {
    for (auto [name, v] : {std::pair{".cert_file", &t.cert_file}, std::pair{".key_file", &t.key_file}, std::pair{".ca_file", &t.ca_file}})
        plain ? check_plain_path(field + name, *v) : check_path(field + name, *v);
}

// "# " before every line of text.
std::string comment(const std::string& text) {
    std::istringstream in(text);
    std::string line, out;
    while (std::getline(in, line)) out += line.empty() ? "#\n" : "# " + line + "\n";
    return out;
}

// Patroni 3.0.2's CMDLINE_OPTIONS (patroni/postgresql/config.py): the settings it puts on
// postgres's command line. It takes them from the global configuration only (a member's own
// postgresql.parameters lose them without a word), and drops a global value its check refuses.
// Those it always sets itself (listen_addresses, port, ...) have no check here.
struct GlobalOnly {
    const char* name;
    bool (*ok)(const std::string&);  // nullptr: Patroni's own, never given
    const char* want;
};

bool int_at_least(const std::string& v, long min) {
    if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) return false;
    return std::stol(v) >= min;
}

// A size as Patroni's parse_int(v, 'MB') reads it: digits, then kB, MB, GB or TB (none: MB).
bool mb_at_least(const std::string& v, long min) {
    size_t n = v.find_first_not_of("0123456789");
    if (n == 0 || n > 9) return false;
    const std::string num = v.substr(0, n == std::string::npos ? v.size() : n);
    const std::string unit = n == std::string::npos ? "MB" : v.substr(n);
    const double value = std::stod(num);
    double mb = unit == "kB" ? value / 1024 : unit == "MB" ? value : unit == "GB" ? value * 1024 : unit == "TB" ? value * 1048576 : -1;
    return mb >= min;
}

const GlobalOnly kGlobalOnly[] = {
    {"listen_addresses", nullptr, nullptr},
    {"port", nullptr, nullptr},
    {"cluster_name", nullptr, nullptr},
    {"hot_standby", nullptr, nullptr},
    {"wal_log_hints", nullptr, nullptr},
    {"wal_level", [](const std::string& v) { return v == "replica" || v == "hot_standby" || v == "logical"; },
     "replica or logical"},
    {"max_connections", [](const std::string& v) { return int_at_least(v, 25); }, "an integer of at least 25"},
    {"max_wal_senders", [](const std::string& v) { return int_at_least(v, 3); }, "an integer of at least 3"},
    {"wal_keep_segments", [](const std::string& v) { return int_at_least(v, 1); }, "an integer of at least 1"},
    {"wal_keep_size", [](const std::string& v) { return mb_at_least(v, 16); }, "at least 16MB (a number and kB, MB, GB or TB)"},
    {"max_prepared_transactions", [](const std::string& v) { return int_at_least(v, 0); }, "an integer of at least 0"},
    {"max_locks_per_transaction", [](const std::string& v) { return int_at_least(v, 32); }, "an integer of at least 32"},
    {"track_commit_timestamp",
     [](const std::string& v) { return v == "on" || v == "off" || v == "true" || v == "false" || v == "yes" || v == "no" || v == "1" || v == "0"; },
     "on or off"},
    {"max_replication_slots", [](const std::string& v) { return int_at_least(v, 4); }, "an integer of at least 4"},
    {"max_worker_processes", [](const std::string& v) { return int_at_least(v, 2); }, "an integer of at least 2"},
};

const GlobalOnly* global_only(const std::string& name) {
    for (const auto& g : kGlobalOnly)
        if (name == g.name) return &g;
    return nullptr;
}

// What render_patroni sets from the member's own fields.
bool hostd_owned(const std::string& name) {
    return name == "unix_socket_directories" || name == "ssl" || name == "ssl_cert_file" || name == "ssl_key_file";
}

void check_parameter(const std::string& field, const std::string& k, const std::string& v) {
    bool ok = !k.empty();
    for (char c : k) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.');
    if (!ok) refuse(field, k, "a setting's name is lower-case letters, digits, '_' and '.'");
    check_text(field, v);
    if (hostd_owned(k)) refuse(field, k, "hostd sets it from the member's socket directory and TLS files");
    const GlobalOnly* g = global_only(k);
    if (!g) return;
    if (!g->ok) refuse(field, k, "Patroni sets it itself");
    if (field == "parameters")
        refuse(field, k, "every member must share it: Patroni takes it from its global configuration only (give it in global_parameters)");
    if (!g->ok(v)) refuse(field, k + " = " + v, std::string("Patroni drops it unless it is ") + g->want);
}

}  // namespace

bool global_only_setting(const std::string& name) { return global_only(name) != nullptr; }

std::vector<std::string> member_hba(const std::vector<std::string>& member_addresses, const std::string& replication_user) {
    check_label("replication", replication_user);
    std::vector<std::string> out = {"local all all scram-sha-256", "local replication " + replication_user + " scram-sha-256",
                                    "hostssl all all 127.0.0.1/32 scram-sha-256",
                                    "hostssl all all ::1/128 scram-sha-256"};
    for (const auto& a : member_addresses) {
        if (!is_ip(a)) refuse("member_addresses", a, "give the members' IP addresses");
        out.push_back("hostssl replication " + replication_user + " " + a + (is_ipv6(a) ? "/128" : "/32") + " scram-sha-256");
    }
    out.push_back("hostssl all all 0.0.0.0/0 scram-sha-256");
    out.push_back("hostssl all all ::/0 scram-sha-256");
    // Every TCP login is TLS (passwords, data): a plain one is refused by name rather than by
    // finding no line. (A replication connection matches no `all` line: without TLS it finds no
    // line and is refused too.)
    out.push_back("hostnossl all all 0.0.0.0/0 reject");
    out.push_back("hostnossl all all ::/0 reject");
    return out;
}

std::string render_patroni(const PatroniMember& m) {
    check_label("scope", m.scope);
    check_label("name", m.name);
    if (m.etcd_namespace.size() < 2 || m.etcd_namespace.front() != '/' || m.etcd_namespace.back() != '/')
        refuse("etcd_namespace", m.etcd_namespace, "give a key prefix like /hostd/");
    for (char c : m.etcd_namespace.substr(1, m.etcd_namespace.size() - 2))
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            refuse("etcd_namespace", m.etcd_namespace, "use lower-case letters, digits, '-' and '_' between the slashes");
    check_host("restapi_listen", m.restapi_listen.host);
    check_port("restapi_listen", m.restapi_listen.port);
    check_host("connect_address", m.connect_address);
    if (m.etcd.empty()) refuse("etcd", "", "give at least one etcd endpoint");
    for (const auto& e : m.etcd) {
        check_host("etcd", e.host);
        check_port("etcd", e.port);
    }
    check_tls("etcd_tls", m.etcd_tls, false);
    check_path("data_dir", m.data_dir);
    check_path("bin_dir", m.bin_dir);
    check_path("socket_dir", m.socket_dir);
    check_path("pgpass", m.pgpass);
    if (!m.custom_conf.empty()) check_path("custom_conf", m.custom_conf);
    if (m.listen_addresses.empty()) refuse("listen_addresses", "", "give at least one address");
    for (const auto& a : m.listen_addresses) check_host("listen_addresses", a);
    check_port("pg_port", m.pg_port);
    for (const auto& [k, v] : m.parameters) check_parameter("parameters", k, v);
    for (const auto& [k, v] : m.global_parameters) {
        check_parameter("global_parameters", k, v);
        if (m.parameters.count(k)) refuse("global_parameters", k, "given in parameters too; give it in one of them");
    }
    check_path("tls.cert_file", m.tls.cert_file);
    check_path("tls.key_file", m.tls.key_file);
    check_path("tls.ca_file", m.tls.ca_file);
    for (const auto& l : m.pg_ident) {
        check_text("pg_ident", l);
        if (l.find_first_not_of(' ') == std::string::npos) refuse("pg_ident", l, "give a whole line");
    }
    for (const auto& l : m.pg_hba) {
        check_text("pg_hba", l);
        if (l.find_first_not_of(' ') == std::string::npos) refuse("pg_hba", l, "give a whole line");
    }
    for (const auto* c : {&m.superuser, &m.replication, &m.rewind}) {
        const std::string field = c == &m.superuser ? "superuser" : c == &m.replication ? "replication" : "rewind";
        check_label(field, c->username);
        check_text(field, c->password);
        if (c->password.empty()) refuse(field, "", "give a password");
    }
    if (m.superuser.username == m.replication.username)
        refuse("replication", m.replication.username, "the replication role must not be the superuser");
    if (m.rewind.username == m.superuser.username || m.rewind.username == m.replication.username)
        refuse("rewind", m.rewind.username, "the rewind role must be a role of its own");
    const bool rest_auth = !m.rest.username.empty() || !m.rest.password.empty();
    if (rest_auth) {
        // A label has no ':', which basic auth could not carry in a username.
        check_label("rest", m.rest.username);
        check_text("rest", m.rest.password);
        if (m.rest.password.empty()) refuse("rest", "", "give the REST API's password");
    }
    if (m.synchronous_mode_strict && !m.synchronous_mode)
        refuse("synchronous_mode_strict", "true", "strict synchronous mode needs synchronous_mode");
    const Timing& t = m.timing;
    if (t.loop_wait < 1 || t.retry_timeout < 1 || t.loop_wait + 2 * t.retry_timeout > t.ttl)
        refuse("timing", std::to_string(t.ttl) + "/" + std::to_string(t.loop_wait) + "/" + std::to_string(t.retry_timeout),
               "Patroni needs loop_wait + 2 * retry_timeout <= ttl (each at least 1 s)");

    ordered_json etcd_hosts = ordered_json::array();
    for (const auto& e : m.etcd) etcd_hosts.push_back(host_port(e.host, e.port));
    std::string listen;
    for (const auto& a : m.listen_addresses) listen += (listen.empty() ? "" : ",") + a;

    ordered_json params = ordered_json::object();
    params["unix_socket_directories"] = m.socket_dir;
    // A primary cut off from the others demotes itself with a fast shutdown, which waits for its
    // WAL senders; a sender blocked on a dead peer ends only after wal_sender_timeout (60 s by
    // default): a short timeout ends that demotion sooner, and replicas notice a dead primary as
    // fast. (The lead taken back after a partition was not this window but Patroni 3.0.2's etcd3
    // leader-key write: see EtcdApi in ha.h.)
    params["wal_sender_timeout"] = "5s";
    params["wal_receiver_timeout"] = "5s";
    for (const auto& [k, v] : m.parameters) params[k] = v;
    params["ssl"] = "on";
    params["ssl_cert_file"] = m.tls.cert_file;
    params["ssl_key_file"] = m.tls.key_file;
    ordered_json global_params = ordered_json::object();
    for (const auto& [k, v] : m.global_parameters) global_params[k] = v;
    ordered_json dcs_postgresql = {{"use_pg_rewind", true}, {"use_slots", true}};
    if (!m.global_parameters.empty()) dcs_postgresql["parameters"] = global_params;
    // The members' connections to each other (a replica's streaming, a demoted primary's
    // pg_rewind): TLS, the other's certificate checked against the CA for the address connected
    // to (Patroni adds these to the leader's address and port: primary_conninfo, pg_rewind's
    // --source-server). Patroni's own superuser logins use the socket directory.
    auto login = [&](const Credentials& c, bool tls) {
        ordered_json j = {{"username", c.username}, {"password", c.password}};
        if (tls) {
            j["sslmode"] = "verify-full";
            j["sslrootcert"] = m.tls.ca_file;
        }
        return j;
    };

    ordered_json doc = {
        {"scope", m.scope},
        {"namespace", m.etcd_namespace},
        {"name", m.name},
        {"restapi",
         {{"listen", host_port(m.restapi_listen.host, m.restapi_listen.port)},
          {"connect_address", host_port(m.connect_address, m.restapi_listen.port)}}},
        // Patroni 3.0.2's etcd3 overwrites the leader key from a stale view (see EtcdApi): v2 by default.
        // etcd over TLS with the member's client certificate: its CN is the member's etcd user,
        // which may touch its scope's keys only (hostd/etcd_admin.h).
        {m.etcd_api == EtcdApi::v2 ? "etcd" : "etcd3",
         {{"hosts", etcd_hosts},
          {"protocol", "https"},
          {"cacert", m.etcd_tls.ca_file},
          {"cert", m.etcd_tls.cert_file},
          {"key", m.etcd_tls.key_file}}},
        {"bootstrap",
         {{"dcs",
           {{"ttl", t.ttl},
            {"loop_wait", t.loop_wait},
            {"retry_timeout", t.retry_timeout},
            {"maximum_lag_on_failover", 1048576},
            {"synchronous_mode", m.synchronous_mode},
            {"synchronous_mode_strict", m.synchronous_mode_strict},
            {"failsafe_mode", m.failsafe_mode},
            {"postgresql", dcs_postgresql}}},
          {"initdb", ordered_json::array({{{"encoding", "UTF8"}}, "data-checksums"})},
          // Patroni 3.0's --validate-config wants it; postgresql.pg_hba below is what is used.
          {"pg_hba", m.pg_hba}}},
        {"postgresql",
         {{"listen", listen + ":" + std::to_string(m.pg_port)},
          {"connect_address", host_port(m.connect_address, m.pg_port)},
          {"data_dir", m.data_dir},
          {"bin_dir", m.bin_dir},
          {"pgpass", m.pgpass},
          {"use_unix_socket", true},
          {"use_unix_socket_repl", true},
          {"authentication",
           {{"superuser", login(m.superuser, false)},
            {"replication", login(m.replication, true)},
            {"rewind", login(m.rewind, true)}}},
          {"parameters", params},
          {"pg_hba", m.pg_hba}}},
        {"tags", {{"nofailover", false}, {"noloadbalance", false}, {"clonefrom", false}, {"nosync", false}}},
    };

    if (!m.custom_conf.empty()) doc["postgresql"]["custom_conf"] = m.custom_conf;
    if (!m.pg_ident.empty()) doc["postgresql"]["pg_ident"] = m.pg_ident;
    if (rest_auth)
        doc["restapi"]["authentication"] = {{"username", m.rest.username}, {"password", m.rest.password}};

    std::string head =
        "Patroni member '" + m.name + "' of scope '" + m.scope + "'. Written by hostd; do not edit.\n"
        "YAML: this comment, then one JSON document (JSON is YAML), quoted by a JSON writer.\n"
        "\n"
        "Timing (bootstrap.dcs; written to etcd when the scope is bootstrapped, later changed with\n"
        "Patroni's PATCH /config): ttl " + std::to_string(t.ttl) + " s, loop_wait " + std::to_string(t.loop_wait) +
        " s, retry_timeout " + std::to_string(t.retry_timeout) + " s.\n"
        "A primary that vanishes is replaced once its leader key expires (up to ttl after its last\n"
        "renewal) and a replica's loop runs (its etcd watch wakes it; at most loop_wait): the RTO is\n"
        "about ttl to ttl + loop_wait. A shorter ttl fails over sooner, but a primary that cannot\n"
        "reach etcd for retry_timeout demotes itself, so etcd trouble longer than that costs a\n"
        "failover (failsafe_mode keeps a primary that still reaches every member serving while\n"
        "etcd as a whole is down). Patroni needs loop_wait + 2 * retry_timeout <= ttl.\n";
    return comment(head) + doc.dump(2) + "\n";
}

std::string render_etcd(const EtcdMember& m) {
    check_label("name", m.name);
    check_host("address", m.address);
    if (!is_ip(m.address)) refuse("address", m.address, "give the host's IP address");
    check_plain_path("data_dir", m.data_dir);
    check_port("client_port", m.client_port);
    check_port("peer_port", m.peer_port);
    if (m.client_port == m.peer_port) refuse("peer_port", std::to_string(m.peer_port), "clients and peers need two ports");
    check_label("cluster_token", m.cluster_token);
    check_tls("client_tls", m.client_tls, true);
    check_tls("peer_tls", m.peer_tls, true);
    if (!m.initial_cluster.count(m.name)) refuse("initial_cluster", m.name, "list this member too");
    if (m.initial_cluster.at(m.name) != m.address)
        refuse("initial_cluster", m.initial_cluster.at(m.name), "this member's address must be its own address");
    std::set<std::string> addrs;
    std::string cluster;
    for (const auto& [n, a] : m.initial_cluster) {
        check_label("initial_cluster", n);
        if (!is_ip(a)) refuse("initial_cluster", a, "give the members' IP addresses");
        if (!addrs.insert(a).second) refuse("initial_cluster", a, "two members on one address");
        cluster += (cluster.empty() ? "" : ",") + n + "=" + url(a, m.peer_port);
    }
    if (m.heartbeat_ms < 10 || m.election_ms < 5 * m.heartbeat_ms)
        refuse("election_ms", std::to_string(m.election_ms), "etcd wants an election timeout of at least 5 heartbeats");

    std::string clients = url(m.address, m.client_port);
    if (m.address != "127.0.0.1") clients += "," + url("127.0.0.1", m.client_port);
    const std::vector<std::pair<const char*, std::string>> env = {
        {"NAME", m.name},
        {"DATA_DIR", m.data_dir},
        {"LISTEN_PEER_URLS", url(m.address, m.peer_port)},
        {"INITIAL_ADVERTISE_PEER_URLS", url(m.address, m.peer_port)},
        {"LISTEN_CLIENT_URLS", clients},
        {"ADVERTISE_CLIENT_URLS", url(m.address, m.client_port)},
        {"INITIAL_CLUSTER", cluster},
        {"INITIAL_CLUSTER_TOKEN", m.cluster_token},
        {"INITIAL_CLUSTER_STATE", m.new_cluster ? "new" : "existing"},
        {"HEARTBEAT_INTERVAL", std::to_string(m.heartbeat_ms)},
        {"ELECTION_TIMEOUT", std::to_string(m.election_ms)},
        // Patroni 3.0.2's `etcd` DCS (the v2 API: compare-and-swap on the leader key; ha.h EtcdApi).
        {"ENABLE_V2", m.enable_v2 ? "true" : "false"},
        // Patroni's etcd3 client speaks the v3 API through the gRPC gateway (JSON over HTTP).
        {"ENABLE_GRPC_GATEWAY", "true"},
        // Clients: TLS, and a certificate of the CA required; its CN is the etcd user.
        {"CERT_FILE", m.client_tls.cert_file},
        {"KEY_FILE", m.client_tls.key_file},
        {"TRUSTED_CA_FILE", m.client_tls.ca_file},
        {"CLIENT_CERT_AUTH", "true"},
        // Peers: TLS, a certificate of the CA with the peers' CN (kEtcdPeerCn) required both ways.
        {"PEER_CERT_FILE", m.peer_tls.cert_file},
        {"PEER_KEY_FILE", m.peer_tls.key_file},
        {"PEER_TRUSTED_CA_FILE", m.peer_tls.ca_file},
        {"PEER_CLIENT_CERT_AUTH", "true"},
        {"PEER_CERT_ALLOWED_CN", kEtcdPeerCn},
    };
    std::string out = comment("etcd member '" + m.name + "' for hostd's HA tenants (the DCS of their Patroni scopes).\n"
                              "Written by hostd; do not edit. systemd's EnvironmentFile= of hostd-etcd.service: etcd\n"
                              "reads its flags from ETCD_* variables (none of them needs quoting).");
    for (const auto& [k, v] : env) out += std::string("ETCD_") + k + "=" + v + "\n";
    return out;
}

std::string etcd_endpoints(const std::vector<HostPort>& members) {
    std::string out;
    for (const auto& e : members) {
        check_host("etcd", e.host);
        check_port("etcd", e.port);
        out += (out.empty() ? "" : ",") + url(e.host, e.port);
    }
    return out;
}

std::string render_haproxy(const HaRoute& r) {
    check_label("tenant", r.tenant);
    check_host("bind_address", r.bind_address);
    if (!is_ip(r.bind_address)) refuse("bind_address", r.bind_address, "HAProxy binds an IP address");
    check_port("public_port", r.public_port);
    if (r.members.empty()) refuse("members", "", "give at least one member");
    std::set<std::string> names;
    for (const auto& m : r.members) {
        check_label("members", m.name);
        if (!names.insert(m.name).second) refuse("members", m.name, "two members with one name");
        check_host("members", m.host);
        check_port("pg_port", m.pg_port);
        check_port("rest_port", m.rest_port);
    }
    // One renderer for hostd's HAProxy file and this: routes/' listener with members.
    routes::Route route{.tenant = r.tenant,
                        .bind_address = r.bind_address,
                        .public_port = r.public_port,
                        .check_path = r.role == Role::primary ? "/primary" : "/replica"};
    for (const auto& m : r.members) route.members.push_back({.name = m.name, .host = m.host, .port = m.pg_port, .check_port = m.rest_port});
    return routes::render_haproxy_listener(r.public_port, {.bind_address = r.bind_address, .route = route});
}

}  // namespace hostd::ha

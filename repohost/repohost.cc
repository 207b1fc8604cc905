#include "repohost/repohost.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <cstdio>
#include <sstream>

#include "base/error.h"
#include "model/tenant.h"
#include "units/hardening.h"

namespace hostd::repohost {
namespace {

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool path_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '.' ||
           c == '_' || c == '-' || c == '+' || c == '@';
}

// An absolute, normalized path of characters systemd and pgBackRest take as they are.
void check_path(const std::string& field, const std::string& v) {
    auto bad = [&](const std::string& why) {
        throw Error(Errc::invalid, "'" + v + "' cannot be " + field + ": " + why, field);
    };
    if (v.empty() || v.front() != '/') bad("give an absolute path");
    if (v.size() > 1024) bad("at most 1024 characters");
    for (char c : v)
        if (!path_char(c)) bad("use only letters, digits and / . _ - + @");
    for (size_t start = 1; start <= v.size();) {
        size_t end = v.find('/', start);
        if (end == std::string::npos) end = v.size();
        const std::string part = v.substr(start, end - start);
        if (v != "/" && (part.empty() || part == "." || part == ".."))
            bad("write it without empty, '.' or '..' components and without a trailing '/'");
        start = end + 1;
    }
}

bool is_ip(const std::string& s) {
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool dns_name(std::string_view h) {
    if (h.empty() || h.size() > 253) return false;
    size_t label = 0;
    for (size_t i = 0; i < h.size(); i++) {
        const char c = h[i];
        if (c == '.') {
            if (label == 0 || h[i - 1] == '-') return false;
            label = 0;
            continue;
        }
        if (!lower_alnum(c) && c != '-') return false;
        if (label == 0 && c == '-') return false;
        if (++label > 63) return false;
    }
    return label > 0 && h.back() != '-';
}

std::string hex8(uint32_t v) {
    char b[9];
    std::snprintf(b, sizeof b, "%08x", v);
    return b;
}

// FNV-1a: stable across builds and machines (the user's name is in the state on disk).
uint32_t fnv1a(std::string_view s) {
    uint32_t h = 2166136261u;
    for (unsigned char c : s) {
        h ^= c;
        h *= 16777619u;
    }
    return h;
}

std::vector<std::string> common(const Settings& s, const Repo& r) {
    const Names n = names_of(s, r.host, r.tenant);
    return {s.options.exe,
            "--no-config",
            "--stanza=" + r.tenant,
            "--repo1-path=" + n.repo,
            "--lock-path=/run/" + n.runtime_dir,
            "--log-level-file=off",
            "--log-level-console=off",
            "--log-level-stderr=warn"};
}

// The tenant host's pgbackrest server, reached with this host's certificate; its PostgreSQL.
std::vector<std::string> pg_remote(const Repo& r) {
    return {"--pg1-host=" + r.pg.host,
            "--pg1-host-type=tls",
            "--pg1-host-port=" + std::to_string(r.pg.server_port),
            "--pg1-host-cert-file=%d/client.crt",
            "--pg1-host-key-file=%d/client.key",
            "--pg1-host-ca-file=%d/ca.crt",
            "--pg1-path=" + r.pg.path,
            "--pg1-socket-path=" + r.pg.socket_path,
            "--pg1-port=" + std::to_string(r.pg.port),
            "--pg1-user=" + r.pg.user};
}

void append(std::vector<std::string>& to, const std::vector<std::string>& more) { to.insert(to.end(), more.begin(), more.end()); }

// ExecStart= from argv whose every word was validated: nothing in them needs quoting, and the
// only '%' is systemd's %d (the credentials directory).
std::string exec_line(const std::vector<std::string>& argv) {
    std::string line;
    for (const auto& w : argv) {
        for (size_t i = 0; i < w.size(); i++) {
            const char c = w[i];
            const bool ok = path_char(c) || c == '=' || c == ':' || c == ',' || (c == '%' && i + 1 < w.size() && w[i + 1] == 'd');
            if (!ok) throw Error(Errc::invalid, "A repository unit cannot run the argument '" + w + "'", "command");
        }
        line += (line.empty() ? "" : " ") + w;
    }
    return line;
}

// The sandbox of every unit of a repository: its user, its repository the only directory it
// may write (and the only one of root it sees), its credentials, nothing of hostd's.
void sandbox(std::ostringstream& o, const Settings& s, const Names& n, bool server) {
    o << "User=" << n.user << "\n"
      << "Group=" << n.user << "\n"
      << "UMask=0077\n"
      << "# pgBackRest's locks, shared by the repository's units (server, stanza-create, backups).\n"
      << "RuntimeDirectory=" << n.runtime_dir << "\n"
      << "RuntimeDirectoryMode=0700\n"
      << "RuntimeDirectoryPreserve=yes\n"
      << "# The repository's own certificate and the CA, as copies for this unit only (%d).\n";
    if (server)
        o << "LoadCredential=server.crt:" << n.server_cert << "\n"
          << "LoadCredential=server.key:" << n.server_key << "\n";
    else
        o << "LoadCredential=client.crt:" << n.client_cert << "\n"
          << "LoadCredential=client.key:" << n.client_key << "\n";
    o << "LoadCredential=ca.crt:" << s.ca_cert << "\n"
      << "ProtectSystem=strict\n"
      << "# Its own repository and no other: the client's --repo1-path outranks the server's.\n"
      << "TemporaryFileSystem=" << s.root << ":ro\n"
      << "BindPaths=" << n.repo << "\n";
    std::string hidden;
    for (const auto& h : s.hidden) hidden += (hidden.empty() ? "-" : " -") + h;
    if (!hidden.empty()) o << "InaccessiblePaths=" << hidden << "\n";
    o << "# pgBackRest's children read the default configuration, whatever the server was given.\n"
         "BindReadOnlyPaths=-/dev/null:/etc/pgbackrest.conf\n"
         "InaccessiblePaths=-/etc/pgbackrest\n"
         "RemoveIPC=yes\n"
      << units::kHardening;
}

std::string command_unit(const Settings& s, const Repo& r, const Names& n, const std::string& unit,
                         const std::string& what, const std::vector<std::string>& argv, bool background) {
    std::ostringstream o;
    o << "# " << what << " of the repository of tenant " << r.tenant << " of host " << r.host
      << ". Written by hostd (repository host) at each start.\n"
         "\n"
         "[Unit]\n"
      << "Description=hostd repository " << n.id << ": " << what << "\n"
      << "After=network.target " << n.server_unit << "\n"
      << "\n"
         "[Service]\n"
         "Type=oneshot\n"
      << "ExecStart=" << exec_line(argv) << "\n"
      << "# hostd reads pgBackRest's error from here (opened by systemd, outside the sandbox).\n"
      << "StandardOutput=truncate:" << n.log(unit) << "\n"
      << "StandardError=inherit\n";
    if (background)
        o << "Nice=10\n"
             "IOSchedulingClass=idle\n"
             "CPUWeight=20\n"
             "IOWeight=20\n";
    sandbox(o, s, n, false);
    return o.str();
}

}  // namespace

std::pair<std::string, uint16_t> parse_listen(std::string_view spec, const std::string& field) {
    const std::string text(spec);
    auto bad = [&] {
        throw Error(Errc::invalid, "'" + text + "' is not ADDRESS:PORT (like 10.0.0.2:8443 or [fd00::2]:8443)", field);
    };
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) bad();
    std::string host = text.substr(0, colon);
    const std::string port_s = text.substr(colon + 1);
    if (port_s.empty() || port_s.size() > 5 || port_s.find_first_not_of("0123456789") != std::string::npos) bad();
    const unsigned long port = std::stoul(port_s);
    if (port < 1 || port > 65535) bad();
    unsigned char buf[16];
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
        if (inet_pton(AF_INET6, host.c_str(), buf) != 1) bad();
    } else if (inet_pton(AF_INET, host.c_str(), buf) != 1) {
        bad();
    }
    return {host, static_cast<uint16_t>(port)};
}

void validate_host(std::string_view host) {
    bool ok = !host.empty() && host.size() <= 63 && host.front() != '.' && host.back() != '.' && host.front() != '-';
    for (size_t i = 0; ok && i < host.size(); i++)
        ok = lower_alnum(host[i]) || host[i] == '-' || (host[i] == '.' && host[i - 1] != '.');
    if (!ok)
        throw Error(Errc::invalid, "'" + std::string(host) + "' is not a host name hostd takes: lower-case letters, digits, "
                                   "'-' and inner '.', at most 63",
                    "host");
}

std::optional<std::string> host_of_cn(std::string_view cn) {
    constexpr std::string_view prefix = "hostd@";
    if (!cn.starts_with(prefix)) return std::nullopt;
    std::string host(cn.substr(prefix.size()));
    try {
        validate_host(host);
    } catch (const Error&) {
        return std::nullopt;
    }
    return host;
}

void validate_tenant(std::string_view tenant) {
    try {
        validate_name(tenant);
    } catch (const Error& e) {
        throw Error(Errc::invalid, e.what(), "tenant");
    }
    if (tenant == "hostd") throw Error(Errc::invalid, "'hostd' is no tenant's name (it names hosts)", "tenant");
}

void validate(const PgHost& pg) {
    if (!is_ip(pg.host) && !dns_name(pg.host))
        throw Error(Errc::invalid, "'" + pg.host + "' is not an IP address or a DNS name in lower case", "pg_host");
    if (pg.server_port == 0) throw Error(Errc::invalid, "give the port of the tenant host's pgbackrest server, 1-65535", "pg_server_port");
    if (pg.port == 0) throw Error(Errc::invalid, "give the tenant's PostgreSQL port, 1-65535", "pg_port");
    check_path("pg_path", pg.path);
    check_path("pg_socket_path", pg.socket_path);
    bool ok = !pg.user.empty() && pg.user.size() <= 63 && !(pg.user[0] >= '0' && pg.user[0] <= '9');
    for (char c : pg.user) ok = ok && (lower_alnum(c) || c == '_');
    if (!ok) throw Error(Errc::invalid, "'" + pg.user + "' is not a role name of a-z, 0-9 and '_'", "pg_user");
}

std::string Names::backup_unit(backup::BackupType t) const {
    return "hostd-repo-backup-" + std::string(backup::to_string(t)) + "-" + id + ".service";
}
std::string Names::timer(backup::BackupType t) const {
    return "hostd-repo-backup-" + std::string(backup::to_string(t)) + "-" + id + ".timer";
}
std::string Names::log(std::string_view unit) const { return log_dir + "/" + std::string(unit) + ".log"; }

Names names_of(const Settings& s, std::string_view host, std::string_view tenant) {
    Names n;
    n.id = std::string(host) + "_" + std::string(tenant);
    n.user = "_rh_" + hex8(fnv1a(n.id));  // the "_": no tenant's user ("_<tenant>"), never swept as one
    n.host_dir = s.root + "/" + std::string(host);
    n.repo = n.host_dir + "/" + std::string(tenant);
    n.server_unit = "hostd-repo-server-" + n.id + ".service";
    n.stanza_unit = "hostd-repo-stanza-" + n.id + ".service";
    n.state_file = s.state_dir + "/" + n.id + ".toml";
    n.server_cert = s.state_dir + "/" + n.id + ".server.crt";
    n.server_key = s.state_dir + "/" + n.id + ".server.key";
    n.client_cert = s.state_dir + "/" + n.id + ".client.crt";
    n.client_key = s.state_dir + "/" + n.id + ".client.key";
    n.runtime_dir = "hostd-repos/" + n.id;
    n.log_dir = s.log_dir;
    return n;
}

std::string server_cn(const Repo& r) { return "repository." + r.tenant + "." + r.host; }
std::string backup_client_cn(const Settings& s, const Repo& r) { return "backup." + r.tenant + "." + r.host + "@" + s.self; }

std::vector<std::string> server_argv(const Settings& s, const Repo& r) {
    return {s.options.exe,
            "--no-config",
            "--log-level-file=off",
            "--log-level-console=off",
            "--log-level-stderr=info",
            "--tls-server-address=" + s.listen_address,
            "--tls-server-port=" + std::to_string(r.port),
            "--tls-server-cert-file=%d/server.crt",
            "--tls-server-key-file=%d/server.key",
            "--tls-server-ca-file=%d/ca.crt",
            // Only the tenant's own repository client, and only for its stanza.
            "--tls-server-auth=" + r.tenant + "@" + r.host + "=" + r.tenant,
            "server"};
}

std::vector<std::string> stanza_create_argv(const Settings& s, const Repo& r) {
    auto a = common(s, r);
    append(a, pg_remote(r));
    // pg_control read through the tenant's server, not five 100 ms-polled queries (see
    // backup::stanza_create_argv).
    append(a, {"--no-online", "stanza-create"});
    return a;
}

std::vector<std::string> backup_argv(const Settings& s, const Repo& r, backup::BackupType type) {
    auto a = common(s, r);
    append(a, pg_remote(r));
    append(a, {"--type=" + std::string(backup::to_string(type)), "--start-fast", "--compress-type=" + s.options.compress,
               "--process-max=" + std::to_string(s.options.process_max),
               // pgBackRest expires after each backup: retention from this host's [backup].
               "--repo1-retention-full=" + std::to_string(s.options.retention_full), "backup"});
    return a;
}

std::vector<std::string> info_argv(const Settings& s, const Repo& r) {
    auto a = common(s, r);
    append(a, {"--output=json", "info"});
    return a;
}

std::vector<std::string> timers(const Settings& s, const Repo& r) {
    const Names n = names_of(s, r.host, r.tenant);
    std::vector<std::string> t;
    if (r.retired) return t;
    if (!s.full_schedule.empty()) t.push_back(n.timer(backup::BackupType::full));
    if (!s.incr_schedule.empty()) t.push_back(n.timer(backup::BackupType::incr));
    return t;
}

std::vector<std::pair<std::string, std::string>> render_units(const Settings& s, const Repo& r) {
    validate_host(r.host);
    validate_tenant(r.tenant);
    validate(r.pg);
    const Names n = names_of(s, r.host, r.tenant);
    std::vector<std::pair<std::string, std::string>> files;
    {
        std::ostringstream o;
        o << "# pgBackRest's TLS server of one repository: tenant " << r.tenant << " of host " << r.host
          << ", for its\n# client certificate (CN " << r.tenant << "@" << r.host
          << ") only. Written by hostd (repository host) at each start.\n"
             "\n"
             "[Unit]\n"
          << "Description=hostd repository " << n.id << ": pgbackrest server\n"
          << "After=network.target\n"
             "\n"
             "[Service]\n"
             "Type=exec\n"
          << "ExecStart=" << exec_line(server_argv(s, r)) << "\n"
          << "Restart=on-failure\n"
             "RestartSec=1s\n";
        sandbox(o, s, n, true);
        files.emplace_back(n.server_unit, o.str());
    }
    files.emplace_back(n.stanza_unit, command_unit(s, r, n, n.stanza_unit, "stanza-create", stanza_create_argv(s, r), false));
    for (auto t : {backup::BackupType::full, backup::BackupType::diff, backup::BackupType::incr})
        files.emplace_back(n.backup_unit(t), command_unit(s, r, n, n.backup_unit(t), std::string(backup::to_string(t)) + " backup",
                                                          backup_argv(s, r, t), true));
    auto timer = [&](backup::BackupType t, const std::string& cal) {
        for (char c : cal)
            if (c == '\n' || c == '\r' || c == '%' || c == '\\')
                throw Error(Errc::invalid, "'" + cal + "' cannot be a systemd calendar event", "schedule");
        std::ostringstream o;
        o << "# When " << n.backup_unit(t) << " runs. Written by hostd from hostd.toml [backup].\n\n"
          << "[Unit]\nDescription=hostd repository " << n.id << ": " << backup::to_string(t) << " backups\n\n"
          << "[Timer]\nOnCalendar=" << cal << "\nRandomizedDelaySec=1h\nPersistent=yes\n";
        files.emplace_back(n.timer(t), o.str());
    };
    if (!r.retired && !s.full_schedule.empty()) timer(backup::BackupType::full, s.full_schedule);
    if (!r.retired && !s.incr_schedule.empty()) timer(backup::BackupType::incr, s.incr_schedule);
    return files;
}

std::string failure_of(std::string_view log) {
    const std::string error = backup::error_of(log);
    std::vector<std::string> warnings;
    size_t at = 0;
    while (at < log.size()) {
        size_t nl = log.find('\n', at);
        if (nl == std::string_view::npos) nl = log.size();
        std::string_view line = log.substr(at, nl - at);
        at = nl + 1;
        if (line.find("ERROR: [") != std::string_view::npos) {
            if (error.starts_with(std::string(line.substr(0, std::min<size_t>(line.size(), 200))))) break;
            warnings.clear();  // an earlier error's
            continue;
        }
        const auto w = line.find("WARN: ");
        if (w == std::string_view::npos) continue;
        std::string text(line.substr(w));
        while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.pop_back();
        warnings.push_back(text);
    }
    if (warnings.size() > 3) warnings.erase(warnings.begin(), warnings.end() - 3);
    std::string out = error;
    for (const auto& w : warnings) out += (out.empty() ? "" : " | ") + w;
    if (out.size() > 2000) out = out.substr(0, 1997) + "...";
    return out;
}

std::string render_state(const Repo& r) {
    toml::table t{{"host", r.host},
                  {"tenant", r.tenant},
                  {"port", static_cast<int64_t>(r.port)},
                  {"pg_host", r.pg.host},
                  {"pg_server_port", static_cast<int64_t>(r.pg.server_port)},
                  {"pg_path", r.pg.path},
                  {"pg_socket_path", r.pg.socket_path},
                  {"pg_port", static_cast<int64_t>(r.pg.port)},
                  {"pg_user", r.pg.user}};
    if (r.retired) t.insert("retired", true);
    if (r.pending) t.insert("pending", true);
    std::ostringstream o;
    o << "# A repository kept by this hostd (repository host). Written by hostd.\n" << t << "\n";
    return o.str();
}

Repo parse_state(std::string_view text, const std::string& source) {
    toml::table t;
    try {
        t = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        throw Error(Errc::failed, "The repository state " + source + " is not TOML: " + std::string(e.description()));
    }
    auto str = [&](const char* k) {
        auto v = t[k].value<std::string>();
        if (!v) throw Error(Errc::failed, "The repository state " + source + " has no text '" + k + "'");
        return *v;
    };
    auto port = [&](const char* k) {
        auto v = t[k].value<int64_t>();
        if (!v || *v < 1 || *v > 65535) throw Error(Errc::failed, "The repository state " + source + " has no port '" + k + "'");
        return static_cast<uint16_t>(*v);
    };
    Repo r{.host = str("host"), .tenant = str("tenant"), .port = port("port"),
           .pg = {.host = str("pg_host"), .server_port = port("pg_server_port"), .path = str("pg_path"),
                  .socket_path = str("pg_socket_path"), .port = port("pg_port"), .user = str("pg_user")},
           .retired = t["retired"].value_or(false), .pending = t["pending"].value_or(false)};
    try {
        validate_host(r.host);
        validate_tenant(r.tenant);
        validate(r.pg);
    } catch (const Error& e) {
        throw Error(Errc::failed, "The repository state " + source + " is not valid: " + e.what());
    }
    return r;
}

}  // namespace hostd::repohost

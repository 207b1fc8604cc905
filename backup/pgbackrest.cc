#include "backup/pgbackrest.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdio>
#include <regex>

#include "base/error.h"

namespace hostd::backup {
namespace {

using json = nlohmann::json;

void append(std::vector<std::string>& to, const std::vector<std::string>& more) { to.insert(to.end(), more.begin(), more.end()); }

// The options every command takes: which stanza, where its repository is, where its locks go,
// and no log files (what pgBackRest says goes to the caller: PostgreSQL's log, the journal, hostd).
std::vector<std::string> common(const Stanza& s, const Options& o) {
    std::vector<std::string> a{o.exe};
    if (s.config.empty()) {
        a.push_back("--no-config");  // Debian's /etc/pgbackrest.conf is not the tenant's, nor readable by it
        a.push_back("--stanza=" + s.name);
        a.push_back("--repo1-path=" + s.repo);
    } else {
        a.push_back("--config=" + s.config);  // the repository host's, written by hostd
        a.push_back("--stanza=" + s.name);
    }
    append(a, {"--lock-path=" + s.work_dir, "--log-level-file=off", "--log-level-console=off", "--log-level-stderr=warn"});
    return a;
}

std::vector<std::string> pg(const Stanza& s) {
    std::vector<std::string> a{"--pg1-path=" + s.pgdata, "--pg1-socket-path=" + s.socket_dir};
    if (s.port) a.push_back("--pg1-port=" + std::to_string(s.port));
    if (!s.user.empty()) a.push_back("--pg1-user=" + s.user);
    return a;
}


int two(std::string_view t, size_t at) {
    if (at + 2 > t.size() || !isdigit((unsigned char)t[at]) || !isdigit((unsigned char)t[at + 1])) return -1;
    return (t[at] - '0') * 10 + (t[at + 1] - '0');
}

// RFC 3339 ("2026-11-30T04:56:04.791Z", "2026-11-30 05:56:04+01:00") → UTC seconds and
// milliseconds; nullopt if it is not one.
std::optional<std::pair<std::time_t, int>> parse_rfc3339(std::string_view t) {
    static const std::regex re(R"(^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$)");
    std::cmatch m;
    if (!std::regex_match(t.begin(), t.end(), m, re)) return std::nullopt;
    std::tm tm{};
    tm.tm_year = std::stoi(m[1]) - 1900;
    tm.tm_mon = std::stoi(m[2]) - 1;
    tm.tm_mday = std::stoi(m[3]);
    tm.tm_hour = std::stoi(m[4]);
    tm.tm_min = std::stoi(m[5]);
    tm.tm_sec = std::stoi(m[6]);
    if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return std::nullopt;
    const int mday = tm.tm_mday, mon = tm.tm_mon;
    std::time_t secs = timegm(&tm);
    if (tm.tm_mday != mday || tm.tm_mon != mon) return std::nullopt;  // 2026-02-31 normalized away
    int ms = 0;
    if (m[7].matched) {
        std::string frac = m[7].str().substr(1);
        frac.resize(3, '0');
        ms = std::stoi(frac);  // milliseconds: pgBackRest's precision (truncated, not rounded up past T)
    }
    const std::string zone = m[8].str();
    if (zone != "Z" && zone != "z") {
        const int hh = two(zone, 1), mm = two(zone, 4);
        if (hh > 23 || mm > 59) return std::nullopt;
        const long off = (hh * 60L + mm) * 60;
        secs -= zone[0] == '+' ? off : -off;
    }
    return std::make_pair(secs, ms);
}

std::time_t time_of(const json& j, const char* key) { return j.contains(key) && j[key].is_number() ? j[key].get<std::time_t>() : 0; }
uint64_t u64(const json& j, const char* key) { return j.contains(key) && j[key].is_number() ? j[key].get<uint64_t>() : 0; }
std::string str(const json& j, const char* key) { return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : ""; }

}  // namespace

std::string_view to_string(BackupType t) {
    switch (t) {
        case BackupType::full: return "full";
        case BackupType::diff: return "diff";
        case BackupType::incr: return "incr";
    }
    return "full";
}

std::optional<BackupType> backup_type_from(std::string_view s) {
    if (s == "full") return BackupType::full;
    if (s == "diff") return BackupType::diff;
    if (s == "incr") return BackupType::incr;
    return std::nullopt;
}

std::string archive_command(const Stanza& s, const Options& o) {
    std::vector<std::string> a = common(s, o);
    append(a, {"--pg1-path=" + s.pgdata, "--spool-path=" + s.work_dir, "--archive-async=y",
               "--process-max=" + std::to_string(o.process_max), "--compress-type=" + o.compress, "archive-push", "%p"});
    std::string cmd;
    for (const auto& w : a) cmd += (cmd.empty() ? "" : " ") + w;
    return cmd;
}

std::vector<std::string> stanza_create_argv(const Stanza& s, const Options& o) {
    auto a = common(s, o);
    append(a, pg(s));
    // The system identifier and version from the data directory's pg_control, not a login:
    // pgBackRest 2.45 polls each query's answer every 100 ms, so an online stanza-create waits
    // ~0.6 s on five queries that tell it nothing pg_control does not. Works while the server runs.
    append(a, {"--no-online", "stanza-create"});
    return a;
}

std::vector<std::string> backup_argv(const Stanza& s, const Options& o, BackupType type) {
    auto a = common(s, o);
    append(a, pg(s));
    append(a, {"--type=" + std::string(to_string(type)),
               // An immediate checkpoint: an on-demand backup starts now, not at the next one.
               "--start-fast", "--compress-type=" + o.compress, "--process-max=" + std::to_string(o.process_max),
               "--repo1-retention-full=" + std::to_string(o.retention_full), "backup"});
    return a;
}

std::vector<std::string> info_argv(const Stanza& s, const Options& o) {
    auto a = common(s, o);
    append(a, {"--output=json", "info"});
    return a;
}

std::string remote_config(const RemoteRepo& r) {
    // pgBackRest's INI: one [global] section; values end at the line's end.
    for (const std::string* v : {&r.host, &r.path, &r.cert, &r.key, &r.ca})
        if (v->empty() || v->find_first_of("\n\r") != std::string::npos)
            throw Error(Errc::invalid, "A repository host's setting is empty or holds a line break", "repository");
    if (r.port == 0) throw Error(Errc::invalid, "A repository host's port cannot be 0", "repository");
    return "[global]\n"
           "repo1-host=" + r.host + "\n"
           "repo1-host-type=tls\n"
           "repo1-host-port=" + std::to_string(r.port) + "\n"
           "repo1-path=" + r.path + "\n"
           "repo1-host-cert-file=" + r.cert + "\n"
           "repo1-host-key-file=" + r.key + "\n"
           "repo1-host-ca-file=" + r.ca + "\n";
}

std::vector<std::string> server_argv(const Server& s, const Options& o) {
    return {o.exe,
            "--no-config",
            "--log-level-file=off",
            "--log-level-console=off",
            "--log-level-stderr=warn",
            "--tls-server-address=" + s.address,
            "--tls-server-port=" + s.port,
            "--tls-server-cert-file=" + s.cert,
            "--tls-server-key-file=" + s.key,
            "--tls-server-ca-file=" + s.ca,
            "--tls-server-auth=" + s.client_cn + "=" + s.stanza,
            "server"};
}

Target parse_target(std::string_view text, const std::string& field) {
    if (text == "latest") return {Target::Kind::latest, ""};
    static const std::regex label(R"(^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$)");
    if (std::regex_match(text.begin(), text.end(), label)) return {Target::Kind::label, std::string(text)};
    auto t = parse_rfc3339(text);
    if (!t)
        throw Error(Errc::invalid,
                    "'" + std::string(text) + "' is not a point to restore to: give \"latest\", a backup label (like "
                    "20261130-045601F) or an RFC 3339 time (like 2026-11-30T04:56:04.791Z)",
                    field);
    std::tm tm{};
    gmtime_r(&t->first, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, t->second);
    return {Target::Kind::time, buf};
}

std::vector<std::string> restore_argv(const Stanza& source, const Options& o, const std::string& pgdata,
                                      const Target& target) {
    Stanza into = source;
    into.pgdata = pgdata;
    auto a = common(into, o);
    a.push_back("--pg1-path=" + pgdata);
    // Restore clears archive-get's queue in the spool (the branch's own, not the default
    // /var/spool/pgbackrest), but archive-get takes no spool without async: restore_command is
    // written here rather than derived from restore's own options.
    a.push_back("--spool-path=" + source.work_dir);
    std::string get;
    for (const auto& w : common(into, o)) get += w + " ";
    a.push_back("--recovery-option=restore_command=" + get + "--pg1-path=" + pgdata + " archive-get %f \"%p\"");
    a.push_back("--process-max=" + std::to_string(o.restore_process_max));
    switch (target.kind) {
        case Target::Kind::latest:
            a.push_back("--type=default");  // replay all the WAL archived
            break;
        case Target::Kind::time:
            a.push_back("--type=time");
            a.push_back("--target=" + target.value);
            a.push_back("--target-action=promote");
            break;
        case Target::Kind::label:
            a.push_back("--set=" + target.value);
            a.push_back("--type=immediate");  // consistent as the backup ended, no later WAL
            a.push_back("--target-action=promote");
            break;
    }
    a.push_back("restore");
    return a;
}

std::vector<std::string> recovery_server_argv(const std::string& bindir, const std::string& pgdata,
                                              const std::string& socket_dir, const std::string& hba_file) {
    std::vector<std::string> a = {bindir + "/postgres", "-D", pgdata};
    for (const std::string& setting : std::vector<std::string>{
             "listen_addresses=", "port=" + std::to_string(kRecoveryPort), "unix_socket_directories=" + socket_dir,
          "hba_file=" + hba_file, "archive_mode=off", "ssl=off", "shared_preload_libraries=",
          "session_preload_libraries=", "local_preload_libraries=", "archive_cleanup_command=",
          "recovery_end_command=", "archive_library=", "jit=off"}) {
        a.push_back("-c");
        a.push_back(setting);
    }
    return a;
}

Info parse_info(std::string_view text, std::string_view stanza) {
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_array())
        throw Error(Errc::failed, "pgBackRest's info is not the JSON array it prints; is the pgbackrest binary the one hostd expects?");
    for (const auto& st : doc) {
        if (!st.is_object() || str(st, "name") != stanza) continue;
        Info info;
        if (st.contains("status") && st["status"].is_object()) {
            info.status_code = st["status"].value("code", 0);
            info.status_message = str(st["status"], "message");
            const auto& s = st["status"];
            if (s.contains("lock") && s["lock"].is_object() && s["lock"].contains("backup") && s["lock"]["backup"].is_object())
                info.backup_running = s["lock"]["backup"].value("held", false);
        }
        if (st.contains("archive") && st["archive"].is_array())
            for (const auto& a : st["archive"]) {
                const std::string mn = str(a, "min"), mx = str(a, "max");
                if (!mn.empty() && (info.wal_min.empty() || mn < info.wal_min)) info.wal_min = mn;
                if (!mx.empty() && mx > info.wal_max) info.wal_max = mx;
            }
        if (st.contains("backup") && st["backup"].is_array())
            for (const auto& b : st["backup"]) {
                if (!b.is_object()) continue;
                BackupSet set;
                set.label = str(b, "label");
                set.type = backup_type_from(str(b, "type")).value_or(BackupType::full);
                set.prior = str(b, "prior");
                if (b.contains("timestamp")) {
                    set.start = time_of(b["timestamp"], "start");
                    set.stop = time_of(b["timestamp"], "stop");
                }
                if (b.contains("info") && b["info"].is_object()) {
                    set.size = u64(b["info"], "size");
                    if (b["info"].contains("repository")) {
                        set.repo_size = u64(b["info"]["repository"], "size");
                        set.repo_delta = u64(b["info"]["repository"], "delta");
                    }
                }
                if (b.contains("archive") && b["archive"].is_object()) {
                    set.wal_start = str(b["archive"], "start");
                    set.wal_stop = str(b["archive"], "stop");
                }
                info.backups.push_back(std::move(set));
            }
        return info;
    }
    throw Error(Errc::not_found, "pgBackRest's repository has no stanza '" + std::string(stanza) + "'");
}

std::optional<uint64_t> wal_segment_number(std::string_view wal) {
    if (wal.size() != 24) return std::nullopt;
    for (char c : wal)
        if (!isxdigit((unsigned char)c)) return std::nullopt;
    const uint64_t log = std::stoull(std::string(wal.substr(8, 8)), nullptr, 16);
    const uint64_t seg = std::stoull(std::string(wal.substr(16, 8)), nullptr, 16);
    return log * 256 + seg;  // 16 MB segments: 256 per log id
}

std::string error_of(std::string_view output) {
    std::vector<std::string_view> lines, errors;
    size_t at = 0;
    while (at <= output.size()) {
        size_t nl = output.find('\n', at);
        if (nl == std::string_view::npos) nl = output.size();
        std::string_view line = output.substr(at, nl - at);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
        if (!line.empty()) {
            lines.push_back(line);
            // pgBackRest's own lines start with the level; a unit's journal may prefix them.
            if (line.find("ERROR: [") != std::string_view::npos) errors.push_back(line);
        }
        at = nl + 1;
    }
    // The last ERROR (a journal holds earlier runs' too), else the last line.
    std::string out(!errors.empty() ? errors.back() : lines.empty() ? std::string_view() : lines.back());
    if (out.size() > 1000) out = out.substr(0, 997) + "...";
    return out;
}

}  // namespace hostd::backup

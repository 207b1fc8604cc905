#include "wire/wire.h"

#include <charconv>
#include <ctime>
#include <initializer_list>
#include <time.h>

#include "base/strings.h"
#include "base/size.h"

namespace hostd::wire {
namespace {

void refuse_unknown(const json& body, std::initializer_list<const char*> known) {
    if (!body.is_object()) throw Error(Errc::invalid, "The request body must be a JSON object", "body");
    for (auto& [k, _] : body.items()) {
        bool ok = false;
        for (auto* kn : known) ok |= (k == kn);
        if (!ok) throw Error(Errc::invalid, "Unknown field '" + k + "'", k);
    }
}

bool present(const json& body, const char* field) { return body.contains(field) && !body[field].is_null(); }

std::optional<uint64_t> size_field(const json& body, const char* field) {
    if (!present(body, field)) return std::nullopt;
    return parse_size_value(body[field], field);
}

std::optional<uint64_t> count_field(const json& body, const char* field) {
    if (!present(body, field)) return std::nullopt;
    const auto& v = body[field];
    if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0))
        throw Error(Errc::invalid, std::string("'") + field + "' must be a whole number", field);
    return v.get<uint64_t>();
}

std::optional<double> cpu_field(const json& body) {
    if (!present(body, "cpu")) return std::nullopt;
    if (!body["cpu"].is_number()) throw Error(Errc::invalid, "'cpu' must be a number of CPUs such as 0.5 or 2", "cpu");
    return body["cpu"].get<double>();
}

std::optional<std::string> choice_field(const json& body, const char* field, const char* a, const char* b) {
    if (!present(body, field)) return std::nullopt;
    const auto& v = body[field];
    if (!v.is_string() || (v != a && v != b))
        throw Error(Errc::invalid, std::string("'") + field + "' must be \"" + a + "\" or \"" + b + "\"", field);
    return v.get<std::string>();
}

bool bool_field(const json& body, const char* field) {
    if (!present(body, field)) return false;
    if (!body[field].is_boolean()) throw Error(Errc::invalid, std::string("'") + field + "' must be true or false", field);
    return body[field].get<bool>();
}

std::optional<Settings> settings_field(const json& body, const char* field = "settings") {
    if (!present(body, field)) return std::nullopt;
    const auto& s = body[field];
    if (!s.is_object())
        throw Error(Errc::invalid, std::string("'") + field + "' must be an object of PostgreSQL settings, e.g. {\"work_mem\": \"64MB\"}", field);
    Settings out;
    for (auto& [k, v] : s.items()) {
        if (v.is_string()) out[k] = v.get<std::string>();
        else if (v.is_boolean()) out[k] = v.get<bool>() ? "on" : "off";
        else if (v.is_number()) out[k] = v.dump();
        else throw Error(Errc::invalid, "Setting '" + k + "' must be a string, a number or a boolean", "settings." + k);
    }
    return out;
}

std::vector<std::string> names_field(const json& body, const char* field) {
    std::vector<std::string> out;
    if (!present(body, field)) return out;
    const auto& a = body[field];
    if (!a.is_array())
        throw Error(Errc::invalid, std::string("'") + field + "' must be an array of setting names, e.g. [\"work_mem\"]", field);
    for (auto& v : a) {
        if (!v.is_string() || v.get<std::string>().empty())
            throw Error(Errc::invalid, std::string("'") + field + "' must hold setting names (non-empty strings)", field);
        out.push_back(v.get<std::string>());
    }
    return out;
}

std::optional<std::vector<std::string>> extensions_field(const json& body) {
    if (!present(body, "extensions")) return std::nullopt;
    const auto& a = body["extensions"];
    const char* shape = "'extensions' must be a list of extension names, e.g. [\"pg_stat_statements\"]";
    if (!a.is_array()) throw Error(Errc::invalid, shape, "extensions");
    std::vector<std::string> out;
    for (const auto& e : a) {
        if (!e.is_string() || e.get<std::string>().empty()) throw Error(Errc::invalid, shape, "extensions");
        out.push_back(e.get<std::string>());
    }
    return out;
}

json disk_json(const storage::DiskStats& d) {
    return {{"bytes_total", d.bytes_total},         {"bytes_used", d.bytes_used},
            {"bytes_available", d.bytes_available}, {"inodes_total", d.inodes_total},
            {"inodes_used", d.inodes_used},         {"inodes_available", d.inodes_available}};
}

storage::DiskStats disk_from(const json& j) {
    return {.bytes_total = j.value("bytes_total", uint64_t{0}), .bytes_used = j.value("bytes_used", uint64_t{0}),
            .bytes_available = j.value("bytes_available", uint64_t{0}), .inodes_total = j.value("inodes_total", uint64_t{0}),
            .inodes_used = j.value("inodes_used", uint64_t{0}), .inodes_available = j.value("inodes_available", uint64_t{0})};
}

json status_json(const LiveStatus& s) {
    json j = json::object();
    if (!s.unit_error.empty()) {
        j["unit_error"] = s.unit_error;
    } else {
        j["unit"] = {{"active_state", s.active_state}, {"sub_state", s.sub_state}, {"main_pid", s.main_pid},
                     {"restarts", s.restarts}};
        if (!s.result.empty()) j["unit"]["result"] = s.result;
        if (!s.last_exit.empty()) j["unit"]["last_exit"] = s.last_exit;
    }
    if (s.memory_current) j["memory_current"] = *s.memory_current;
    if (s.memory_max) j["memory_max"] = *s.memory_max;
    if (s.tasks_current) j["tasks_current"] = *s.tasks_current;
    if (s.cpu_usage_nsec) j["cpu_usage_nsec"] = *s.cpu_usage_nsec;
    if (s.io_read_bytes) j["io_read_bytes"] = *s.io_read_bytes;
    if (s.io_write_bytes) j["io_write_bytes"] = *s.io_write_bytes;
    if (s.disk) j["disk"] = disk_json(*s.disk);
    return j;
}

std::optional<uint64_t> opt_u64(const json& j, const char* k) {
    if (!j.contains(k) || !j[k].is_number()) return std::nullopt;
    return j[k].get<uint64_t>();
}

std::string str(const json& j, const char* k) {
    if (!j.contains(k) || !j[k].is_string()) return "";
    return j[k].get<std::string>();
}

LiveStatus status_from(const json& j) {
    LiveStatus s;
    s.unit_error = str(j, "unit_error");
    if (j.contains("unit") && j["unit"].is_object()) {
        const auto& u = j["unit"];
        s.active_state = str(u, "active_state");
        s.sub_state = str(u, "sub_state");
        s.main_pid = u.value("main_pid", 0u);
        s.restarts = u.value("restarts", 0u);
        s.result = str(u, "result");
        s.last_exit = str(u, "last_exit");
    }
    s.memory_current = opt_u64(j, "memory_current");
    s.memory_max = opt_u64(j, "memory_max");
    s.tasks_current = opt_u64(j, "tasks_current");
    s.cpu_usage_nsec = opt_u64(j, "cpu_usage_nsec");
    s.io_read_bytes = opt_u64(j, "io_read_bytes");
    s.io_write_bytes = opt_u64(j, "io_write_bytes");
    if (j.contains("disk") && j["disk"].is_object()) s.disk = disk_from(j["disk"]);
    return s;
}

// RFC 3339 in UTC back to Unix time (0 for anything else; format_rfc3339 writes it).
std::time_t utc_from(const std::string& s) {
    std::tm tm{};
    const char* end = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return end && *end == '\0' ? ::timegm(&tm) : 0;
}

json failure_json(const BackupFailure& f) {
    return {{"at", format_rfc3339(f.at)}, {"type", f.type}, {"by", f.by}, {"message", f.message}};
}
BackupFailure failure_from(const json& j) {
    return {.at = utc_from(str(j, "at")), .type = str(j, "type"), .by = str(j, "by"), .message = str(j, "message")};
}

json health_json(const BackupHealth& h) {
    json j = {{"checked_at", format_rfc3339(h.checked)}, {"failures", h.failures}, {"failing", h.failing()}};
    if (!h.error.empty()) j["error"] = h.error;
    if (h.last_backup) j["last_backup"] = {{"label", h.last_label}, {"type", h.last_type}, {"finished_at", format_rfc3339(h.last_backup)}};
    if (h.last_full) j["last_full_at"] = format_rfc3339(h.last_full);
    if (h.last_wal) j["last_wal_at"] = format_rfc3339(h.last_wal);
    if (h.repo_bytes) j["repo_bytes"] = *h.repo_bytes;
    if (h.last_failure) j["last_failure"] = failure_json(*h.last_failure);
    return j;
}
BackupHealth health_from(const json& j) {
    BackupHealth h;
    h.checked = utc_from(str(j, "checked_at"));
    h.error = str(j, "error");
    h.failures = opt_u64(j, "failures").value_or(0);
    if (j.contains("last_backup") && j["last_backup"].is_object()) {
        const json& b = j["last_backup"];
        h.last_label = str(b, "label");
        h.last_type = str(b, "type");
        h.last_backup = utc_from(str(b, "finished_at"));
    }
    h.last_full = utc_from(str(j, "last_full_at"));
    h.last_wal = utc_from(str(j, "last_wal_at"));
    h.repo_bytes = opt_u64(j, "repo_bytes");
    if (j.contains("last_failure") && j["last_failure"].is_object()) h.last_failure = failure_from(j["last_failure"]);
    return h;
}

const json& member(const json& body, const char* k) {
    static const json empty = json::object();
    return body.is_object() && body.contains(k) && body[k].is_object() ? body[k] : empty;
}

// A create's `ha`: {"replicas": ["HOST", ...], "synchronous": bool, "synchronous_strict": bool}.
std::optional<HaRequest> ha_field(const json& body) {
    if (!present(body, "ha")) return std::nullopt;
    const json& h = body["ha"];
    if (!h.is_object())
        throw Error(Errc::invalid, "'ha' must be an object: {\"replicas\": [\"HOST\", ...], \"synchronous\": true, "
                                   "\"synchronous_strict\": false}", "ha");
    for (auto& [k, _] : h.items())
        if (k != "replicas" && k != "synchronous" && k != "synchronous_strict")
            throw Error(Errc::invalid, "Unknown field 'ha." + k + "'", "ha." + k);
    HaRequest r;
    if (present(h, "replicas")) {
        const json& a = h["replicas"];
        const char* shape = "'ha.replicas' must be a list of host names, e.g. [\"db2\", \"db3\"]";
        if (!a.is_array()) throw Error(Errc::invalid, shape, "ha.replicas");
        for (const auto& v : a) {
            if (!v.is_string()) throw Error(Errc::invalid, shape, "ha.replicas");
            r.replicas.push_back(v.get<std::string>());
        }
    }
    for (auto [k, out] : {std::pair{"synchronous", &r.synchronous}, std::pair{"synchronous_strict", &r.strict}}) {
        if (!present(h, k)) continue;
        if (!h[k].is_boolean()) throw Error(Errc::invalid, std::string("'ha.") + k + "' must be true or false", std::string("ha.") + k);
        *out = h[k].get<bool>();
    }
    return r;
}

json opt_json(const std::optional<uint64_t>& v) { return v ? json(*v) : json(nullptr); }

json members_json(const std::vector<MemberView>& members) {
    json a = json::array();
    for (const auto& m : members)
        a.push_back({{"host", m.host}, {"role", m.role}, {"state", m.state}, {"lag", opt_json(m.lag_bytes)},
                     {"timeline", opt_json(m.timeline)}, {"sync", m.sync}, {"address", m.address},
                     {"public_host", m.public_host}, {"public_port", m.public_port}});
    return a;
}
std::vector<MemberView> members_from(const json& a) {
    std::vector<MemberView> out;
    for (const auto& j : a) {
        if (!j.is_object()) continue;
        out.push_back({.host = str(j, "host"), .role = str(j, "role"), .state = str(j, "state"), .lag_bytes = opt_u64(j, "lag"),
                       .timeline = opt_u64(j, "timeline"), .sync = j.value("sync", false), .address = str(j, "address"),
                       .public_host = str(j, "public_host"), .public_port = j.value("public_port", uint16_t{0})});
    }
    return out;
}

json ha_json(const HaView& h) {
    return {{"leader", h.leader}, {"timeline", opt_json(h.timeline)}, {"synchronous", h.synchronous},
            {"synchronous_strict", h.strict}, {"source", h.source}};
}
HaView ha_from(const json& j) {
    return {.leader = str(j, "leader"), .timeline = opt_u64(j, "timeline"), .synchronous = j.value("synchronous", false),
            .strict = j.value("synchronous_strict", false), .source = str(j, "source")};
}

}  // namespace

uint64_t parse_size_value(const json& v, const char* field) {
    std::optional<uint64_t> bytes;
    if (v.is_string()) bytes = parse_size(v.get<std::string>());
    else if (v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) bytes = v.get<uint64_t>();
    if (!bytes) {
        std::string typed = v.is_string() ? " ('" + v.get<std::string>() + "' is not one)" : "";
        throw Error(Errc::invalid, std::string("'") + field + "' must be a size such as \"512M\" or \"2G\" (or a number of bytes)" + typed, field);
    }
    return *bytes;
}

json parse_body(std::string_view text) {
    if (text.empty()) return json::object();
    // No request nests deeper than a few levels ({"settings": {...}}); anything deeper is refused
    // while parsing, before it is built.
    constexpr int max_depth = 16;
    const auto depth_check = [](int depth, json::parse_event_t, json&) {
        if (depth >= max_depth)  // depth counts from 0 (the body itself)
            throw Error(Errc::invalid, "The request body nests deeper than " + std::to_string(max_depth) + " levels", "body");
        return true;
    };
    json body = json::parse(text, depth_check, false);
    if (body.is_discarded()) throw Error(Errc::invalid, "The request body is not valid JSON", "body");
    if (!body.is_object()) throw Error(Errc::invalid, "The request body must be a JSON object", "body");
    return body;
}

CreateRequest parse_create(const json& body) {
    refuse_unknown(body, {"disk_size", "memory", "cpu", "tasks", "io_weight", "settings", "extensions", "device", "backend",
                          "reuse", "filesystem", "force", "from", "ha"});
    CreateRequest r;
    r.backend = choice_field(body, "backend", "loop", "device");
    if (present(body, "device")) {
        if (!body["device"].is_string() || body["device"].get<std::string>().empty())
            throw Error(Errc::invalid, "'device' must be the path of a block device", "device");
        r.device = body["device"].get<std::string>();
    }
    r.filesystem = choice_field(body, "filesystem", "ext4", "xfs");
    r.force = bool_field(body, "force");
    r.reuse = bool_field(body, "reuse");
    r.disk_size = size_field(body, "disk_size");
    r.memory = size_field(body, "memory");
    r.cpu = cpu_field(body);
    r.tasks = count_field(body, "tasks");
    r.io_weight = count_field(body, "io_weight");
    r.settings = settings_field(body);
    r.extensions = extensions_field(body);
    if (present(body, "from")) {
        const json& f = body["from"];
        if (!f.is_object() || !f.contains("tenant") || !f["tenant"].is_string())
            throw Error(Errc::invalid, "'from' must be an object naming the source: {\"tenant\": \"NAME\", \"time\": \"latest\"}", "from");
        refuse_unknown(f, {"tenant", "time"});
        CreateRequest::From from{.tenant = f["tenant"].get<std::string>()};
        if (present(f, "time")) {
            if (!f["time"].is_string())
                throw Error(Errc::invalid, "'from.time' must be \"latest\", a backup label or an RFC 3339 time", "from.time");
            from.target = f["time"].get<std::string>();
        }
        r.from = from;
    }
    r.ha = ha_field(body);
    return r;
}

std::string parse_backup_request(const json& body) {
    if (body.is_null()) return "incr";
    refuse_unknown(body, {"type"});
    auto t = body.contains("type") ? body["type"] : json("incr");
    if (!t.is_string()) throw Error(Errc::invalid, "'type' must be \"full\", \"diff\" or \"incr\"", "type");
    return t.get<std::string>();
}

json render_backup_request(const std::string& type) { return {{"type", type}}; }

RestoreRequest parse_restore(const json& body) {
    RestoreRequest r;
    if (body.is_null()) return r;
    refuse_unknown(body, {"time"});
    if (present(body, "time")) {
        if (!body["time"].is_string())
            throw Error(Errc::invalid, "'time' must be a string: \"latest\", an RFC 3339 time or a backup label", "time");
        r.time = body["time"].get<std::string>();
    }
    return r;
}

json render(const RestoreRequest& r) { return {{"time", r.time}}; }

LimitsUpdate parse_limits(const json& body) {
    refuse_unknown(body, {"memory", "cpu", "tasks", "io_weight", "settings", "set_settings", "unset_settings",
                          "reset_settings", "extensions"});
    LimitsUpdate u{.memory = size_field(body, "memory"), .cpu = cpu_field(body), .tasks = count_field(body, "tasks"),
                   .io_weight = count_field(body, "io_weight"), .settings = settings_field(body),
                   .extensions = extensions_field(body)};
    u.settings_edit.set = settings_field(body, "set_settings").value_or(Settings{});
    u.settings_edit.unset = names_field(body, "unset_settings");
    u.settings_edit.reset = bool_field(body, "reset_settings");
    if (u.settings && !u.settings_edit.empty())
        throw Error(Errc::invalid, "'settings' replaces every override; give it alone, or edit them with "
                                   "set_settings, unset_settings and reset_settings", "settings");
    return u;
}

PasswordRequest parse_password(const json& body) {
    refuse_unknown(body, {"password"});
    PasswordRequest r;
    if (present(body, "password")) {
        if (!body["password"].is_string())
            throw Error(Errc::invalid, "'password' must be a string (or left out: hostd generates one)", "password");
        r.password = body["password"].get<std::string>();
    }
    return r;
}

json render(const PasswordRequest& r) {
    json j = json::object();
    if (r.password) j["password"] = *r.password;
    return j;
}

SwitchoverRequest parse_switchover(const json& body) {
    SwitchoverRequest r;
    if (body.is_null()) return r;
    refuse_unknown(body, {"to"});
    if (present(body, "to")) {
        if (!body["to"].is_string())
            throw Error(Errc::invalid, "'to' must be a member's host name (or left out: hostd picks the replica)", "to");
        r.to = body["to"].get<std::string>();
    }
    return r;
}

json render(const SwitchoverRequest& r) {
    json j = json::object();
    if (r.to) j["to"] = *r.to;
    return j;
}

ReplaceRequest parse_replace(const json& body) {
    if (!body.is_object()) throw Error(Errc::invalid, "The body must be an object such as {\"member\": \"db3\"}");
    refuse_unknown(body, {"member", "with"});
    ReplaceRequest r;
    if (!body.contains("member") || !body["member"].is_string())
        throw Error(Errc::invalid, "'member' must be the host name of the member to replace", "member");
    r.member = body["member"].get<std::string>();
    validate_host_name(r.member, "member");
    if (present(body, "with")) {
        if (!body["with"].is_string())
            throw Error(Errc::invalid, "'with' must be a host name (or left out: the member is rebuilt on its own host)", "with");
        r.with = body["with"].get<std::string>();
        validate_host_name(*r.with, "with");
    }
    return r;
}

json render(const ReplaceRequest& r) {
    json j = {{"member", r.member}};
    if (r.with) j["with"] = *r.with;
    return j;
}

ResizeRequest parse_resize(const json& body) {
    refuse_unknown(body, {"size", "allow_offline"});
    auto size = size_field(body, "size");
    if (!size) throw Error(Errc::invalid, "A resize needs 'size', the new disk size (e.g. \"2G\")", "size");
    return {.size = *size, .allow_offline = present(body, "allow_offline") ? bool_field(body, "allow_offline") : true};
}

void parse_empty(const json& body) { refuse_unknown(body, {}); }

json render(const CreateRequest& r) {
    json j = json::object();
    if (r.backend) j["backend"] = *r.backend;
    if (r.device) j["device"] = *r.device;
    if (r.filesystem) j["filesystem"] = *r.filesystem;
    if (r.disk_size) j["disk_size"] = *r.disk_size;
    if (r.memory) j["memory"] = *r.memory;
    if (r.cpu) j["cpu"] = *r.cpu;
    if (r.tasks) j["tasks"] = *r.tasks;
    if (r.io_weight) j["io_weight"] = *r.io_weight;
    if (r.settings) j["settings"] = *r.settings;
    if (r.extensions) j["extensions"] = *r.extensions;
    if (r.reuse) j["reuse"] = true;
    if (r.force) j["force"] = true;
    if (r.from) j["from"] = {{"tenant", r.from->tenant}, {"time", r.from->target}};
    if (r.ha) j["ha"] = {{"replicas", r.ha->replicas}, {"synchronous", r.ha->synchronous}, {"synchronous_strict", r.ha->strict}};
    return j;
}

json render(const HaMember& m) {
    json j = {{"host", m.host}, {"address", m.address}, {"public_host", m.public_host}, {"pg_port", m.pg_port},
              {"rest_port", m.rest_port}, {"public_port", m.public_port}, {"phase", std::string(to_string(m.phase))}};
    if (m.replica_port) j["replica_port"] = m.replica_port;
    return j;
}

HaMember parse_ha_member(const json& j) {
    if (!j.is_object()) throw Error(Errc::invalid, "An HA member must be an object", "member");
    refuse_unknown(j, {"host", "address", "public_host", "pg_port", "rest_port", "public_port", "replica_port", "phase"});
    HaMember m;
    auto port = [&](const char* k) {
        const json& v = j.contains(k) ? j[k] : json();
        if (!v.is_number_unsigned() || v.get<uint64_t>() == 0 || v.get<uint64_t>() > 65535)
            throw Error(Errc::invalid, std::string("An HA member's '") + k + "' must be a port (1-65535)", k);
        return static_cast<uint16_t>(v.get<uint64_t>());
    };
    auto text = [&](const char* k) {
        if (!j.contains(k) || !j[k].is_string() || j[k].get<std::string>().empty())
            throw Error(Errc::invalid, std::string("An HA member's '") + k + "' must be a non-empty string", k);
        return j[k].get<std::string>();
    };
    m.host = text("host");
    validate_host_name(m.host, "host");
    m.address = text("address");
    m.public_host = text("public_host");
    m.pg_port = port("pg_port");
    m.rest_port = port("rest_port");
    if (present(j, "replica_port")) m.replica_port = port("replica_port");  // a member made before read-only URLs has none
    m.public_port = port("public_port");
    auto phase = member_phase_from(text("phase"));
    if (!phase) throw Error(Errc::invalid, "An HA member's 'phase' is one of planned, prepared, started, removing", "phase");
    m.phase = *phase;
    return m;
}

json render(const HaSpec& h) {
    json members = json::array();
    for (const auto& m : h.members) members.push_back(render(m));
    return {{"create_id", h.create_id},
            {"initiator", h.initiator},
            {"synchronous", h.synchronous},
            {"synchronous_strict", h.strict},
            {"members", members},
            {"secrets",
             {{"patroni", h.secrets.patroni},
              {"replication", h.secrets.replication},
              {"rewind", h.secrets.rewind},
              {"rest", h.secrets.rest_password}}}};
}

HaSpec parse_ha_spec(const json& j) {
    if (!j.is_object()) throw Error(Errc::invalid, "'ha' must be an object", "ha");
    refuse_unknown(j, {"create_id", "initiator", "synchronous", "synchronous_strict", "members", "secrets"});
    HaSpec h;
    auto text = [](const json& o, const char* k, const char* field) {
        if (!o.contains(k) || !o[k].is_string() || o[k].get<std::string>().empty())
            throw Error(Errc::invalid, std::string("'") + field + "' must be a non-empty string", field);
        return o[k].get<std::string>();
    };
    h.create_id = text(j, "create_id", "ha.create_id");
    h.initiator = text(j, "initiator", "ha.initiator");
    validate_host_name(h.initiator, "ha.initiator");
    h.synchronous = j.value("synchronous", false);
    h.strict = j.value("synchronous_strict", false);
    if (j.contains("members")) {
        if (!j["members"].is_array()) throw Error(Errc::invalid, "'ha.members' must be a list", "ha.members");
        for (const auto& m : j["members"]) h.members.push_back(parse_ha_member(m));
    }
    if (!j.contains("secrets") || !j["secrets"].is_object()) throw Error(Errc::invalid, "'ha.secrets' must be an object", "ha.secrets");
    const json& s = j["secrets"];
    refuse_unknown(s, {"patroni", "replication", "rewind", "rest"});
    h.secrets = {.patroni = text(s, "patroni", "ha.secrets.patroni"), .replication = text(s, "replication", "ha.secrets.replication"),
                 .rewind = text(s, "rewind", "ha.secrets.rewind"), .rest_password = text(s, "rest", "ha.secrets.rest")};
    return h;
}

json render(const HaPrepare& p) {
    json r = render(p.request);
    r.erase("ha");
    return {{"ha", render(p.ha)}, {"password", p.password}, {"request", r}};
}

HaPrepare parse_ha_prepare(const json& body) {
    refuse_unknown(body, {"ha", "password", "request"});
    HaPrepare p;
    if (!body.contains("ha")) throw Error(Errc::invalid, "'ha' is missing", "ha");
    p.ha = parse_ha_spec(body["ha"]);
    if (!body.contains("password") || !body["password"].is_string() || body["password"].get<std::string>().empty())
        throw Error(Errc::invalid, "'password' must be a non-empty string", "password");
    p.password = body["password"].get<std::string>();
    if (!body.contains("request") || !body["request"].is_object()) throw Error(Errc::invalid, "'request' must be an object", "request");
    p.request = parse_create(body["request"]);
    if (p.request.ha) throw Error(Errc::invalid, "A member's create carries no 'ha' of its own", "request.ha");
    return p;
}

json render(const LimitsUpdate& u) {
    json j = json::object();
    if (u.memory) j["memory"] = *u.memory;
    if (u.cpu) j["cpu"] = *u.cpu;
    if (u.tasks) j["tasks"] = *u.tasks;
    if (u.io_weight) j["io_weight"] = *u.io_weight;
    if (u.settings) j["settings"] = *u.settings;
    if (u.settings_edit.reset) j["reset_settings"] = true;
    if (!u.settings_edit.unset.empty()) j["unset_settings"] = u.settings_edit.unset;
    if (!u.settings_edit.set.empty()) j["set_settings"] = u.settings_edit.set;
    if (u.extensions) j["extensions"] = *u.extensions;
    return j;
}

json render(const ResizeRequest& r) {
    json j = {{"size", r.size}};
    if (!r.allow_offline) j["allow_offline"] = false;
    return j;
}

json render(const TenantView& t) {
    json j = {
        {"name", t.name},
        {"state", to_string(t.state)},
        {"backend", t.spec.backend},
        {"filesystem", t.spec.filesystem},
        {"disk_size", t.spec.disk_size},
        {"memory", t.spec.memory},
        {"cpu", t.spec.cpu},
        {"tasks", t.spec.tasks},
        {"io_weight", t.spec.io_weight},
        {"settings", t.spec.settings},
        {"extensions", t.spec.extensions},
        {"fs_uuid", t.fs_uuid},
        {"label", t.label},
        {"device", t.device},
        {"device_id", t.device_id},
        {"mountpoint", t.mountpoint},
        {"unit", t.unit},
        {"read_only", t.read_only},
        {"stopped", t.stopped},
        {"os_user", t.os_user},
        {"port", t.port},
        {"public_port", t.public_port},
        {"admin_user", t.admin_user},
        {"created_at", t.created_at},
    };
    if (!t.step.empty()) j["step"] = t.step;
    if (!t.image.empty()) j["image"] = t.image;
    if (!t.url.empty()) j["url"] = t.url;
    if (!t.read_only_url.empty()) j["read_only_url"] = t.read_only_url;
    if (t.password) j["password"] = *t.password;
    if (t.status) j["status"] = status_json(*t.status);
    if (t.pending_restart) j["pending_restart"] = *t.pending_restart;
    if (!t.problem.empty()) j["problem"] = t.problem;
    if (!t.live.state.empty()) j["live_state"] = t.live.state;
    if (!t.live.reason.empty()) j["live_reason"] = t.live.reason;
    if (t.backup) j["backup"] = health_json(*t.backup);
    // An HA tenant's only: a plain tenant's JSON stays as it was.
    if (!t.members.empty()) j["members"] = members_json(t.members);
    if (t.ha) j["ha"] = ha_json(*t.ha);
    return j;
}

json render(const std::vector<TenantView>& tenants) {
    json arr = json::array();
    for (auto& t : tenants) arr.push_back(render(t));
    return {{"tenants", arr}};
}

json render_one(const TenantView& t) { return {{"tenant", render(t)}}; }

namespace {

// A JSON writer for render_text: nlohmann's dump(2) layout, with its exact output for what is
// not plain (strings that need escaping, doubles, nested objects) taken from nlohmann itself.
struct Writer {
    std::string& out;
    int indent;  // of the keys of the object being written
    bool first = true;

    static void plain_or_dumped(std::string& out, const std::string& s) {
        for (unsigned char c : s)
            if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
                out += json(s).dump(-1, ' ', false, json::error_handler_t::replace);
                return;
            }
        out += '"';
        out += s;
        out += '"';
    }
    void key(const char* k) {
        out += first ? "\n" : ",\n";
        first = false;
        out.append(static_cast<size_t>(indent), ' ');
        out += '"';
        out += k;
        out += "\": ";
    }
    void str(const char* k, const std::string& v) {
        key(k);
        plain_or_dumped(out, v);
    }
    void u64(const char* k, uint64_t v) {
        key(k);
        char b[24];
        const auto r = std::to_chars(b, b + sizeof b, v);
        out.append(b, r.ptr);
    }
    void boolean(const char* k, bool v) {
        key(k);
        out += v ? "true" : "false";
    }
    // Anything else: nlohmann's own text at this depth (a value never holds a raw newline, so
    // indenting each line after the first is exact).
    void value(const char* k, const json& v) {
        key(k);
        const std::string text = v.dump(2, ' ', false, json::error_handler_t::replace);
        const std::string pad = "\n" + std::string(static_cast<size_t>(indent), ' ');
        for (char c : text) {
            if (c == '\n') out += pad;
            else out += c;
        }
    }
    void strings(const char* k, const std::vector<std::string>& v) {
        if (v.empty()) {
            key(k);
            out += "[]";
            return;
        }
        key(k);
        out += '[';
        for (size_t i = 0; i < v.size(); i++) {
            out += i ? ",\n" : "\n";
            out.append(static_cast<size_t>(indent + 2), ' ');
            plain_or_dumped(out, v[i]);
        }
        out += '\n';
        out.append(static_cast<size_t>(indent), ' ');
        out += ']';
    }
};

// One tenant as render(TenantView) has it, its keys in nlohmann's (sorted) order.
void write_tenant(std::string& out, const TenantView& t, int indent) {
    out += '{';
    Writer w{out, indent + 2};
    w.str("admin_user", t.admin_user);
    w.str("backend", t.spec.backend);
    if (t.backup) w.value("backup", health_json(*t.backup));
    w.value("cpu", t.spec.cpu);
    w.str("created_at", t.created_at);
    w.str("device", t.device);
    w.str("device_id", t.device_id);
    w.u64("disk_size", t.spec.disk_size);
    w.strings("extensions", t.spec.extensions);
    w.str("filesystem", t.spec.filesystem);
    w.str("fs_uuid", t.fs_uuid);
    if (t.ha) w.value("ha", ha_json(*t.ha));
    if (!t.image.empty()) w.str("image", t.image);
    w.u64("io_weight", t.spec.io_weight);
    w.str("label", t.label);
    if (!t.live.reason.empty()) w.str("live_reason", t.live.reason);
    if (!t.live.state.empty()) w.str("live_state", t.live.state);
    if (!t.members.empty()) w.value("members", members_json(t.members));
    w.u64("memory", t.spec.memory);
    w.str("mountpoint", t.mountpoint);
    w.str("name", t.name);
    w.str("os_user", t.os_user);
    if (t.password) w.str("password", *t.password);
    if (t.pending_restart) w.strings("pending_restart", *t.pending_restart);
    w.u64("port", t.port);
    if (!t.problem.empty()) w.str("problem", t.problem);
    w.u64("public_port", t.public_port);
    w.boolean("read_only", t.read_only);
    if (!t.read_only_url.empty()) w.str("read_only_url", t.read_only_url);
    if (t.spec.settings.empty()) {
        w.key("settings");
        out += "{}";
    } else {
        w.value("settings", t.spec.settings);
    }
    w.str("state", std::string(to_string(t.state)));
    if (t.status) w.value("status", status_json(*t.status));
    if (!t.step.empty()) w.str("step", t.step);
    w.boolean("stopped", t.stopped);
    w.u64("tasks", t.spec.tasks);
    w.str("unit", t.unit);
    if (!t.url.empty()) w.str("url", t.url);
    out += '\n';
    out.append(static_cast<size_t>(indent), ' ');
    out += '}';
}

}  // namespace

std::string render_text(const std::vector<TenantView>& tenants) {
    std::string out;
    out.reserve(64 + tenants.size() * 1024);
    if (tenants.empty()) return "{\n  \"tenants\": []\n}\n";
    out += "{\n  \"tenants\": [";
    for (size_t i = 0; i < tenants.size(); i++) {
        out += i ? ",\n    " : "\n    ";
        write_tenant(out, tenants[i], 4);
    }
    out += "\n  ]\n}\n";
    return out;
}

json render(const Created& c) {
    json t = render(c.tenant);
    t["create_ms"] = c.ms;
    if (!c.destroyed.empty()) t["destroyed"] = c.destroyed;
    return {{"tenant", t}};
}

json render(const Restored& r) {
    json t = render(r.tenant);
    t["restore_ms"] = r.ms;
    t["restored_to"] = r.target;
    t["wal_max"] = r.wal_max;
    return {{"tenant", t}};
}

json render(const Resized& r) {
    json t = render(r.tenant);
    t["resize_ms"] = r.ms;
    t["online"] = r.online;
    if (r.disk) t["disk"] = disk_json(*r.disk);
    return {{"tenant", t}};
}

json render(const LimitsChanged& l) {
    json t = render(l.tenant);
    t["pending_restart"] = l.pending_restart;
    return {{"tenant", t}};
}

json render(const Deleted& d) {
    json t = {{"name", d.name}, {"state", d.state}, {"purged", d.purged}};
    if (!d.backups.empty()) t["backups"] = d.backups;
    if (!d.kept_until.empty()) t["kept_until"] = d.kept_until;
    return {{"tenant", t}};
}

json render(const ReconcileReport& r) {
    json actions = json::array();
    for (auto& a : r.actions) {
        json j = {{"action", a.action}};
        if (!a.tenant.empty()) j["tenant"] = a.tenant;
        if (!a.problem.empty()) j["problem"] = a.problem;
        actions.push_back(std::move(j));
    }
    return {{"reconcile", {{"actions", actions}, {"duration_ms", r.duration_ms}}}};
}

json render(const HostInfo& h) {
    json ha_hosts = json::array();
    for (const auto& [name, address] : h.ha_hosts) ha_hosts.push_back({{"name", name}, {"address", address}});
    return {{"host",
             {{"tenants", h.tenants},
              {"tenants_active", h.tenants_active},
              {"memory_committed", h.memory_committed},
              {"memory_total", h.memory_total},
              {"memory_overcommit", h.memory_overcommit},
              {"memory_free", h.memory_free},
              {"cpu_committed", h.cpu_committed},
              {"cpus", h.cpus},
              {"disk_committed", h.disk_committed},
              {"loop_dir_available", h.loop_dir_available},
              {"ports_free", h.ports_free},
              {"ports_detached", h.ports_detached},
              {"ports_total", h.ports_total},
              {"ha_host", h.ha_host.empty() ? json(nullptr) : json(h.ha_host)},
              {"ha_address", h.ha_address.empty() ? json(nullptr) : json(h.ha_address)},
              {"ha_hosts", ha_hosts}}}};
}

json render_ca(const std::string& pem) { return {{"ca", pem}}; }

namespace {
json backup_json(const BackupView& b) {
    return {{"label", b.label},           {"type", b.type},           {"prior", b.prior},
            {"started_at", b.started_at}, {"finished_at", b.finished_at}, {"size", b.size},
            {"repo_size", b.repo_size},   {"repo_delta", b.repo_delta}, {"wal_start", b.wal_start},
            {"wal_stop", b.wal_stop}};
}
BackupView backup_from(const json& j) {
    return {.label = str(j, "label"), .type = str(j, "type"), .prior = str(j, "prior"),
            .started_at = str(j, "started_at"), .finished_at = str(j, "finished_at"),
            .size = opt_u64(j, "size").value_or(0), .repo_size = opt_u64(j, "repo_size").value_or(0),
            .repo_delta = opt_u64(j, "repo_delta").value_or(0), .wal_start = str(j, "wal_start"),
            .wal_stop = str(j, "wal_stop")};
}
}  // namespace

json render(const BackupList& b) {
    json list = json::array();
    for (const auto& v : b.backups) list.push_back(backup_json(v));
    json j = {{"tenant", b.tenant}, {"backups", list}, {"wal_min", b.wal_min}, {"wal_max", b.wal_max},
              {"recoverable_from", b.recoverable_from}, {"running", b.running}, {"status", b.status},
              {"failing", b.failing}, {"last_failure", b.last_failure ? failure_json(*b.last_failure) : json(nullptr)}};
    if (!b.deleted.empty()) {
        j["deleted"] = b.deleted;
        if (!b.deleted_at.empty()) j["deleted_at"] = b.deleted_at;
        j["kept_until"] = b.kept_until;
    }
    return j;
}

json render(const std::vector<KeptView>& kept) {
    json list = json::array();
    for (const auto& k : kept)
        list.push_back({{"name", k.name}, {"deleted_at", k.deleted_at}, {"kept_until", k.kept_until},
                        {"repository", k.repository}, {"repository_host", k.repository_host}, {"uid", k.uid}, {"gid", k.gid}, {"os_user", k.os_user},
                        {"admin_user", k.admin_user}, {"filesystem", k.filesystem}, {"disk_size", k.disk_size},
                        {"memory", k.memory}});
    return {{"deleted", list}};
}

std::vector<KeptView> parse_kept(const json& body) {
    std::vector<KeptView> out;
    if (!body.contains("deleted") || !body["deleted"].is_array()) return out;
    for (const auto& j : body["deleted"])
        out.push_back({.name = str(j, "name"), .deleted_at = str(j, "deleted_at"), .kept_until = str(j, "kept_until"),
                       .repository = str(j, "repository"), .repository_host = str(j, "repository_host"), .uid = j.value("uid", uint32_t{0}), .gid = j.value("gid", uint32_t{0}),
                       .os_user = str(j, "os_user"), .admin_user = str(j, "admin_user"), .filesystem = str(j, "filesystem"),
                       .disk_size = opt_u64(j, "disk_size").value_or(0), .memory = opt_u64(j, "memory").value_or(0)});
    return out;
}

json render(const BackupDone& b) { return {{"tenant", b.tenant}, {"backup", backup_json(b.backup)}, {"ms", b.ms}}; }

BackupList parse_backup_list(const json& body) {
    BackupList b{.tenant = str(body, "tenant"), .wal_min = str(body, "wal_min"), .wal_max = str(body, "wal_max"),
                 .recoverable_from = str(body, "recoverable_from"),
                 .running = body.contains("running") && body["running"].is_boolean() && body["running"].get<bool>(),
                 .status = str(body, "status"), .deleted = str(body, "deleted"), .deleted_at = str(body, "deleted_at"),
                 .kept_until = str(body, "kept_until")};
    if (body.contains("backups") && body["backups"].is_array())
        for (const auto& j : body["backups"]) b.backups.push_back(backup_from(j));
    b.failing = body.contains("failing") && body["failing"].is_boolean() && body["failing"].get<bool>();
    if (body.contains("last_failure") && body["last_failure"].is_object()) b.last_failure = failure_from(body["last_failure"]);
    return b;
}

BackupDone parse_backup_done(const json& body) {
    return {.tenant = str(body, "tenant"), .backup = backup_from(member(body, "backup")),
            .ms = body.contains("ms") && body["ms"].is_number() ? body["ms"].get<long>() : 0};
}

json render_step(std::string_view step, long ms) {
    if (ms < 0) return {{"start", std::string(step)}};
    return {{"step", std::string(step)}, {"ms", ms}};
}

TenantView parse_tenant(const json& j) {
    TenantView t;
    t.name = str(j, "name");
    t.state = tenant_state_from(str(j, "state")).value_or(TenantState::creating);
    t.step = str(j, "step");
    t.spec.backend = str(j, "backend");
    t.spec.filesystem = str(j, "filesystem");
    t.spec.disk_size = j.value("disk_size", uint64_t{0});
    t.spec.memory = j.value("memory", uint64_t{0});
    t.spec.cpu = j.value("cpu", 0.0);
    t.spec.tasks = j.value("tasks", uint64_t{0});
    t.spec.io_weight = j.value("io_weight", uint64_t{0});
    if (j.contains("settings") && j["settings"].is_object())
        for (auto& [k, v] : j["settings"].items())
            if (v.is_string()) t.spec.settings[k] = v.get<std::string>();
    if (j.contains("extensions") && j["extensions"].is_array())
        for (auto& e : j["extensions"])
            if (e.is_string()) t.spec.extensions.push_back(e.get<std::string>());
    t.fs_uuid = str(j, "fs_uuid");
    t.label = str(j, "label");
    t.device = str(j, "device");
    t.device_id = str(j, "device_id");
    t.image = str(j, "image");
    t.mountpoint = str(j, "mountpoint");
    t.unit = str(j, "unit");
    t.os_user = str(j, "os_user");
    t.admin_user = str(j, "admin_user");
    t.created_at = str(j, "created_at");
    t.port = j.value("port", uint16_t{0});
    t.public_port = j.value("public_port", uint16_t{0});
    t.read_only = j.value("read_only", false);
    t.url = str(j, "url");
    t.read_only_url = str(j, "read_only_url");
    if (j.contains("password") && j["password"].is_string()) t.password = j["password"].get<std::string>();
    if (j.contains("status") && j["status"].is_object()) t.status = status_from(j["status"]);
    if (j.contains("pending_restart") && j["pending_restart"].is_array()) {
        t.pending_restart.emplace();
        for (auto& s : j["pending_restart"])
            if (s.is_string()) t.pending_restart->push_back(s.get<std::string>());
    }
    t.problem = str(j, "problem");
    t.stopped = j.value("stopped", false);
    t.live = {str(j, "live_state"), str(j, "live_reason")};
    if (j.contains("backup") && j["backup"].is_object()) t.backup = health_from(j["backup"]);
    if (j.contains("members") && j["members"].is_array()) t.members = members_from(j["members"]);
    if (j.contains("ha") && j["ha"].is_object()) t.ha = ha_from(j["ha"]);
    return t;
}

std::vector<TenantView> parse_tenants(const json& body) {
    std::vector<TenantView> out;
    if (body.is_object() && body.contains("tenants") && body["tenants"].is_array())
        for (auto& t : body["tenants"]) out.push_back(parse_tenant(t));
    return out;
}

TenantView parse_tenant_reply(const json& body) { return parse_tenant(member(body, "tenant")); }

Created parse_created(const json& body) {
    const json& t = member(body, "tenant");
    return {.tenant = parse_tenant(t), .ms = t.value("create_ms", 0L), .destroyed = str(t, "destroyed")};
}

Restored parse_restored(const json& body) {
    const json& t = member(body, "tenant");
    return {.tenant = parse_tenant(t), .ms = t.value("restore_ms", 0L), .target = str(t, "restored_to"),
            .wal_max = str(t, "wal_max")};
}

Resized parse_resized(const json& body) {
    const json& t = member(body, "tenant");
    Resized r{.tenant = parse_tenant(t), .ms = t.value("resize_ms", 0L), .online = t.value("online", true)};
    if (t.contains("disk") && t["disk"].is_object()) r.disk = disk_from(t["disk"]);
    return r;
}

LimitsChanged parse_limits_changed(const json& body) {
    const json& t = member(body, "tenant");
    LimitsChanged l{.tenant = parse_tenant(t)};
    if (t.contains("pending_restart") && t["pending_restart"].is_array())
        for (auto& s : t["pending_restart"])
            if (s.is_string()) l.pending_restart.push_back(s.get<std::string>());
    return l;
}

Deleted parse_deleted(const json& body) {
    const json& t = member(body, "tenant");
    return {.name = str(t, "name"), .state = str(t, "state"), .purged = t.value("purged", false),
            .backups = str(t, "backups"), .kept_until = str(t, "kept_until")};
}

ReconcileReport parse_reconcile(const json& body) {
    const json& r = member(body, "reconcile");
    ReconcileReport out{.duration_ms = r.value("duration_ms", 0L)};
    if (r.contains("actions") && r["actions"].is_array())
        for (auto& a : r["actions"]) out.actions.push_back({str(a, "tenant"), str(a, "action"), str(a, "problem")});
    return out;
}

namespace {
std::vector<std::pair<std::string, std::string>> ha_hosts_from(const json& h) {
    std::vector<std::pair<std::string, std::string>> out;
    if (h.contains("ha_hosts") && h["ha_hosts"].is_array())
        for (const auto& e : h["ha_hosts"])
            if (e.is_object()) out.emplace_back(str(e, "name"), str(e, "address"));
    return out;
}
}  // namespace

HostInfo parse_host(const json& body) {
    const json& h = member(body, "host");
    return {.tenants = h.value("tenants", uint64_t{0}), .tenants_active = h.value("tenants_active", uint64_t{0}),
            .memory_committed = h.value("memory_committed", uint64_t{0}), .memory_total = h.value("memory_total", uint64_t{0}),
            .memory_overcommit = h.value("memory_overcommit", 0.0), .memory_free = h.value("memory_free", uint64_t{0}),
            .cpu_committed = h.value("cpu_committed", 0.0), .cpus = h.value("cpus", uint64_t{0}),
            .disk_committed = h.value("disk_committed", uint64_t{0}),
            .loop_dir_available = h.value("loop_dir_available", uint64_t{0}), .ports_free = h.value("ports_free", uint64_t{0}),
            .ports_detached = h.value("ports_detached", uint64_t{0}), .ports_total = h.value("ports_total", uint64_t{0}),
            .ha_host = h.contains("ha_host") && h["ha_host"].is_string() ? h["ha_host"].get<std::string>() : "",
            .ha_address = h.contains("ha_address") && h["ha_address"].is_string() ? h["ha_address"].get<std::string>() : "",
            .ha_hosts = ha_hosts_from(h)};
}

std::string parse_ca(const json& body) { return body.is_object() ? str(body, "ca") : ""; }

int http_status(Errc code) {
    switch (code) {
    case Errc::invalid: return 400;
    case Errc::not_found: return 404;
    case Errc::conflict: return 409;
    case Errc::refused: return 409;
    case Errc::failed: return 500;
    case Errc::unavailable: return 503;
    }
    return 500;
}

json render_error(const Error& e) {
    json err = {{"code", errc_name(e.code())}, {"message", e.what()}};
    if (!e.field().empty()) err["field"] = e.field();
    return {{"error", err}};
}

Error parse_error(const json& body, long status) {
    const json& e = member(body, "error");
    std::string message = str(e, "message");
    if (message.empty()) message = "HTTP " + std::to_string(status);
    Errc code = Errc::failed;
    for (auto c : {Errc::invalid, Errc::not_found, Errc::conflict, Errc::refused, Errc::failed, Errc::unavailable})
        if (errc_name(c) == str(e, "code")) code = c;
    return Error(code, message, str(e, "field"));
}

}  // namespace hostd::wire

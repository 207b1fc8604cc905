#include "hostd/tenant.h"

#include <unistd.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <toml++/toml.h>

#include "base/error.h"
#include "base/size.h"
#include "pgconf/pgconf.h"
#include "units/systemd.h"

namespace hostd {

std::string_view to_string(TenantState s) {
    switch (s) {
    case TenantState::creating: return "creating";
    case TenantState::ready: return "ready";
    case TenantState::deleting: return "deleting";
    case TenantState::detached: return "detached";
    }
    return "creating";
}

std::optional<TenantState> tenant_state_from(std::string_view s) {
    for (auto st : {TenantState::creating, TenantState::ready, TenantState::deleting, TenantState::detached})
        if (to_string(st) == s) return st;
    return std::nullopt;
}

void validate_name(std::string_view n) {
    auto bad = [](const std::string& why) { throw Error(Errc::invalid, "Invalid tenant name: " + why, "name"); };
    if (n.empty()) bad("it is empty");
    if (n.size() > 30) bad("it has " + std::to_string(n.size()) + " characters; at most 30 are allowed");
    if (!(n[0] >= 'a' && n[0] <= 'z')) bad("it must start with a lower-case letter (a-z)");
    for (char c : n)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            bad("only lower-case letters, digits and '-' are allowed");
    if (n.back() == '-') bad("it must not end with '-'");
}

namespace {

uint64_t host_memory() { return static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)); }
double host_cpus() { return static_cast<double>(::sysconf(_SC_NPROCESSORS_ONLN)); }

std::optional<uint64_t> size_field(const nlohmann::json& body, const char* field, uint64_t lo, uint64_t hi) {
    if (!body.contains(field) || body[field].is_null()) return std::nullopt;
    const auto& v = body[field];
    std::optional<uint64_t> bytes;
    if (v.is_string()) bytes = parse_size(v.get<std::string>());
    else if (v.is_number_unsigned()) bytes = v.get<uint64_t>();
    if (!bytes)
        throw Error(Errc::invalid, std::string("'") + field + "' must be a size such as \"512M\" or \"2G\" (or a number of bytes)", field);
    if (*bytes < lo || *bytes > hi)
        throw Error(Errc::invalid, std::string("'") + field + "' is " + format_size(*bytes) + "; it must be between " +
                                       format_size(lo) + " and " + format_size(hi), field);
    return bytes;
}

std::optional<double> cpu_field(const nlohmann::json& body, const Config& cfg) {
    if (!body.contains("cpu")) return std::nullopt;
    double max_cpu = cfg.max_cpu > 0 ? cfg.max_cpu : host_cpus();
    const auto& v = body["cpu"];
    if (!v.is_number()) throw Error(Errc::invalid, "'cpu' must be a number of CPUs such as 0.5 or 2", "cpu");
    double cpu = v.get<double>();
    if (!std::isfinite(cpu) || cpu < 0.01 || cpu > max_cpu) {
        std::ostringstream o;
        o << "'cpu' must be between 0.01 and " << max_cpu << " (CPUs on this host)";
        throw Error(Errc::invalid, o.str(), "cpu");
    }
    return cpu;
}

std::optional<uint64_t> count_field(const nlohmann::json& body, const char* field, uint64_t lo, uint64_t hi) {
    if (!body.contains(field)) return std::nullopt;
    const auto& v = body[field];
    if (!v.is_number_unsigned() || v.get<uint64_t>() < lo || v.get<uint64_t>() > hi)
        throw Error(Errc::invalid, std::string("'") + field + "' must be an integer between " + std::to_string(lo) +
                                       " and " + std::to_string(hi), field);
    return v.get<uint64_t>();
}

void refuse_unknown(const nlohmann::json& body, std::initializer_list<const char*> known) {
    if (!body.is_object()) throw Error(Errc::invalid, "The request body must be a JSON object", "body");
    for (auto& [k, _] : body.items()) {
        bool ok = false;
        for (auto* kn : known) ok |= (k == kn);
        if (!ok) throw Error(Errc::invalid, "Unknown field '" + k + "'", k);
    }
}

}  // namespace

CreateRequest parse_create_request(const nlohmann::json& body, const Config& cfg) {
    refuse_unknown(body, {"disk_size", "memory", "cpu", "tasks", "io_weight", "settings", "device", "backend", "reuse",
                          "filesystem", "force"});
    CreateRequest r;
    TenantSpec& s = r.spec;
    s.filesystem = cfg.filesystem;
    s.backend = cfg.backend;
    if (body.contains("backend")) {
        if (!body["backend"].is_string() || (body["backend"] != "loop" && body["backend"] != "device"))
            throw Error(Errc::invalid, "'backend' must be \"loop\" or \"device\"", "backend");
        s.backend = body["backend"].get<std::string>();
    }
    if (body.contains("device")) {
        if (!body["device"].is_string() || body["device"].get<std::string>().empty())
            throw Error(Errc::invalid, "'device' must be the path of a block device", "device");
        s.device = body["device"].get<std::string>();
        if (s.device.front() != '/' || s.device.find('\n') != std::string::npos)
            throw Error(Errc::invalid, "'device' must be an absolute path such as /dev/vdb", "device");
        if (!body.contains("backend")) s.backend = "device";
    }
    if (s.backend == "device" && s.device.empty() && cfg.devices.empty())
        throw Error(Errc::invalid, "The device backend needs 'device' (the block device to use), or a pool of "
                                   "devices in hostd.toml (storage.devices)", "device");
    if (s.backend == "loop" && !s.device.empty())
        throw Error(Errc::invalid, "'device' cannot be used with the loop backend", "device");
    if (body.contains("filesystem")) {
        if (!body["filesystem"].is_string() || (body["filesystem"] != "ext4" && body["filesystem"] != "xfs"))
            throw Error(Errc::invalid, "'filesystem' must be \"ext4\" or \"xfs\"", "filesystem");
        s.filesystem = body["filesystem"].get<std::string>();
    }
    if (body.contains("force")) {
        if (!body["force"].is_boolean()) throw Error(Errc::invalid, "'force' must be true or false", "force");
        r.force = body["force"].get<bool>();
        if (r.force && s.backend != "device")
            throw Error(Errc::invalid, "'force' only applies to the device backend (formatting over a signature)", "force");
    }

    s.disk_size = size_field(body, "disk_size", cfg.min_disk_size, cfg.max_disk_size).value_or(cfg.disk_size);
    auto limits = parse_limits_update(body, cfg);
    s.memory = limits.memory.value_or(cfg.memory);
    s.cpu = limits.cpu.value_or(cfg.cpu);
    s.tasks = limits.tasks.value_or(cfg.tasks);
    s.io_weight = limits.io_weight.value_or(0);
    s.settings = limits.settings.value_or(std::map<std::string, std::string>{});
    if (body.contains("reuse")) {
        if (!body["reuse"].is_boolean()) throw Error(Errc::invalid, "'reuse' must be true or false", "reuse");
        r.reuse = body["reuse"].get<bool>();
    }
    return r;
}

uint64_t parse_resize_request(const nlohmann::json& body, const Config& cfg) {
    refuse_unknown(body, {"size"});
    auto size = size_field(body, "size", cfg.min_disk_size, cfg.max_disk_size);
    if (!size) throw Error(Errc::invalid, "A resize needs 'size', the new disk size (e.g. \"2G\")", "size");
    return *size;
}

nlohmann::json disk_json(const storage::DiskStats& d) {
    return {{"bytes_total", d.bytes_total},         {"bytes_used", d.bytes_used},
            {"bytes_available", d.bytes_available}, {"inodes_total", d.inodes_total},
            {"inodes_used", d.inodes_used},         {"inodes_available", d.inodes_available}};
}

void refuse_unknown_fields(const nlohmann::json& body) {
    refuse_unknown(body, {"memory", "cpu", "tasks", "io_weight", "settings"});
}

std::optional<std::map<std::string, std::string>> raw_settings(const nlohmann::json& body) {
    if (!body.contains("settings")) return std::nullopt;
    const auto& s = body["settings"];
    if (!s.is_object())
        throw Error(Errc::invalid, "'settings' must be an object of PostgreSQL settings, e.g. {\"work_mem\": \"64MB\"}", "settings");
    std::map<std::string, std::string> out;
    for (auto& [k, v] : s.items()) {
        if (v.is_string()) out[k] = v.get<std::string>();
        else if (v.is_boolean()) out[k] = v.get<bool>() ? "on" : "off";
        else if (v.is_number()) out[k] = v.dump();
        else throw Error(Errc::invalid, "Setting '" + k + "' must be a string, a number or a boolean", "settings." + k);
    }
    return out;
}

LimitsUpdate parse_limits_update(const nlohmann::json& body, const Config& cfg) {
    LimitsUpdate u;
    u.memory = size_field(body, "memory", cfg.min_memory, cfg.max_memory ? cfg.max_memory : host_memory());
    u.cpu = cpu_field(body, cfg);
    u.tasks = count_field(body, "tasks", 16, cfg.max_tasks);
    u.io_weight = count_field(body, "io_weight", 1, 10000);
    u.settings = raw_settings(body);
    return u;
}

std::string mountpoint_of(const Config& cfg, const std::string& tenant) { return cfg.mount_root + "/" + tenant; }

PublicEndpoint public_endpoint(const Config& cfg, const TenantRecord& t) {
    if (cfg.domain.empty()) return {.host = cfg.public_host, .port = t.public_port, .sni_host = ""};
    std::string name = t.name + "." + cfg.domain;
    return {.host = name, .port = cfg.sni_port, .sni_host = name};
}

routes::Route route_of(const Config& cfg, const TenantRecord& t) {
    auto ep = public_endpoint(cfg, t);
    return {.tenant = t.name, .bind_address = cfg.bind_address, .public_port = ep.port, .backend_host = "127.0.0.1",
            .backend_port = t.port, .sni_host = ep.sni_host};
}

std::string proxy_check_address(const Config& cfg) {
    const auto& b = cfg.bind_address;
    if (b == "0.0.0.0" || b == "*" || b.empty()) return "127.0.0.1";
    if (b == "::") return "::1";
    return b;
}

std::string connection_url(const Config& cfg, const TenantRecord& t, bool with_password) {
    // verify-full works too, with the host's CA from `hostctl ca`: the tenant's certificate
    // names the URL's host.
    auto ep = public_endpoint(cfg, t);
    return pgconf::connection_url(ep.host, ep.port, t.admin_user, with_password ? t.password : "", "postgres") +
           "?sslmode=require";
}

nlohmann::json to_json(const Config& cfg, const TenantRecord& t, bool with_secret) {
    nlohmann::json j = {
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
        {"fs_uuid", t.fs_uuid},
        {"label", t.label},
        {"device", t.device},
        {"mountpoint", mountpoint_of(cfg, t.name)},
        {"unit", units::tenant_unit(t.name)},
        {"read_only", t.read_only},
        {"os_user", t.os_user},
        {"port", t.port},
        {"public_port", public_endpoint(cfg, t).port},
        {"admin_user", t.admin_user},
        {"created_at", t.created_at},
    };
    if (!t.step.empty()) j["step"] = t.step;
    if (!t.image.empty()) j["image"] = t.image;
    if (t.state == TenantState::ready) {
        // The password is in the URL; only show the URL where secrets may be shown.
        j["url"] = connection_url(cfg, t, with_secret);
    }
    if (with_secret) j["password"] = t.password;
    return j;
}

std::string to_toml(const TenantRecord& t) {
    toml::table spec{
        {"backend", t.spec.backend},
        {"device", t.spec.device},
        {"filesystem", t.spec.filesystem},
        {"disk_size", static_cast<int64_t>(t.spec.disk_size)},
        {"memory", static_cast<int64_t>(t.spec.memory)},
        {"cpu", t.spec.cpu},
        {"tasks", static_cast<int64_t>(t.spec.tasks)},
        {"io_weight", static_cast<int64_t>(t.spec.io_weight)},
    };
    toml::table settings;
    for (auto& [k, v] : t.spec.settings) settings.insert(k, v);
    spec.insert("settings", settings);
    toml::table facts{
        {"fs_uuid", t.fs_uuid},     {"label", t.label},
        {"image", t.image},         {"device", t.device},
        {"os_user", t.os_user},     {"uid", static_cast<int64_t>(t.uid)},
        {"port", t.port},           {"public_port", t.public_port},
        {"admin_user", t.admin_user}, {"password", t.password},
        {"created_at", t.created_at},
    };
    toml::table doc{
        {"name", t.name},
        {"state", std::string(to_string(t.state))},
        {"step", t.step},
        {"reuse", t.reuse},
        {"purge", t.purge},
        {"read_only", t.read_only},
        {"spec", spec},
        {"facts", facts},
    };
    std::ostringstream o;
    o << "# hostd tenant record: written by hostd, do not edit while hostd runs.\n" << doc << "\n";
    return o.str();
}

TenantRecord from_toml(std::string_view text, const std::string& source) {
    toml::table doc;
    try {
        doc = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        throw Error(Errc::invalid, "Failed to parse tenant record " + source + ": " + std::string(e.description()));
    }
    TenantRecord t;
    t.name = doc["name"].value_or(std::string{});
    auto st = tenant_state_from(doc["state"].value_or(std::string{}));
    if (t.name.empty() || !st) throw Error(Errc::invalid, "Tenant record " + source + " lacks a name or a valid state");
    t.state = *st;
    t.step = doc["step"].value_or(std::string{});
    t.reuse = doc["reuse"].value_or(false);
    t.purge = doc["purge"].value_or(false);
    t.read_only = doc["read_only"].value_or(false);
    auto sp = doc["spec"];
    t.spec.backend = sp["backend"].value_or(std::string{"loop"});
    t.spec.device = sp["device"].value_or(std::string{});
    t.spec.filesystem = sp["filesystem"].value_or(std::string{"ext4"});
    t.spec.disk_size = static_cast<uint64_t>(sp["disk_size"].value_or(int64_t{0}));
    t.spec.memory = static_cast<uint64_t>(sp["memory"].value_or(int64_t{0}));
    t.spec.cpu = sp["cpu"].value_or(0.0);
    t.spec.tasks = static_cast<uint64_t>(sp["tasks"].value_or(int64_t{0}));
    t.spec.io_weight = static_cast<uint64_t>(sp["io_weight"].value_or(int64_t{0}));
    if (auto* st = sp["settings"].as_table())
        for (auto& [k, v] : *st) t.spec.settings[std::string(k.str())] = v.value_or(std::string{});
    auto f = doc["facts"];
    t.fs_uuid = f["fs_uuid"].value_or(std::string{});
    t.label = f["label"].value_or(std::string{});
    t.image = f["image"].value_or(std::string{});
    t.device = f["device"].value_or(std::string{});
    t.os_user = f["os_user"].value_or(std::string{});
    t.uid = static_cast<uint32_t>(f["uid"].value_or(int64_t{0}));
    t.port = static_cast<uint16_t>(f["port"].value_or(int64_t{0}));
    t.public_port = static_cast<uint16_t>(f["public_port"].value_or(int64_t{0}));
    t.admin_user = f["admin_user"].value_or(std::string{});
    t.password = f["password"].value_or(std::string{});
    t.created_at = f["created_at"].value_or(std::string{});
    return t;
}

}  // namespace hostd

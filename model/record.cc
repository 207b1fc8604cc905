#include "model/record.h"

#include <sstream>
#include <toml++/toml.h>

#include "base/error.h"

namespace hostd {

namespace {

// [ha] and its [[ha.members]]. The secrets sit beside the tenant's password (facts.password):
// in the record file, which only root reads (the store writes it 0600).
toml::table ha_toml(const HaSpec& ha) {
    toml::array members;
    for (const auto& m : ha.members)
        members.push_back(toml::table{
            {"host", m.host},
            {"address", m.address},
            {"public_host", m.public_host},
            {"pg_port", m.pg_port},
            {"rest_port", m.rest_port},
            {"public_port", m.public_port},
            {"replica_port", m.replica_port},
            {"phase", std::string(to_string(m.phase))},
        });
    return toml::table{
        {"create_id", ha.create_id},
        {"initiator", ha.initiator},
        {"synchronous", ha.synchronous},
        {"strict", ha.strict},
        {"patroni_password", ha.secrets.patroni},
        {"replication_password", ha.secrets.replication},
        {"rewind_password", ha.secrets.rewind},
        {"rest_password", ha.secrets.rest_password},
        {"members", members},
    };
}

HaSpec ha_from(const toml::table& h, const std::string& source) {
    auto bad = [&](const std::string& why) { throw Error(Errc::invalid, "Tenant record " + source + ": [ha] " + why); };
    HaSpec ha;
    ha.create_id = h["create_id"].value_or(std::string{});
    ha.initiator = h["initiator"].value_or(std::string{});
    ha.synchronous = h["synchronous"].value_or(false);
    ha.strict = h["strict"].value_or(false);
    ha.secrets.patroni = h["patroni_password"].value_or(std::string{});
    ha.secrets.replication = h["replication_password"].value_or(std::string{});
    ha.secrets.rewind = h["rewind_password"].value_or(std::string{});
    ha.secrets.rest_password = h["rest_password"].value_or(std::string{});
    if (ha.create_id.empty()) bad("lacks create_id");
    const auto* members = h["members"].as_array();
    if (!members) bad("lacks its [[ha.members]]");
    for (const auto& node : *members) {
        const auto* m = node.as_table();
        if (!m) bad("has a member that is not a table");
        HaMember hm;
        hm.host = (*m)["host"].value_or(std::string{});
        hm.address = (*m)["address"].value_or(std::string{});
        hm.public_host = (*m)["public_host"].value_or(std::string{});
        hm.pg_port = static_cast<uint16_t>((*m)["pg_port"].value_or(int64_t{0}));
        hm.rest_port = static_cast<uint16_t>((*m)["rest_port"].value_or(int64_t{0}));
        hm.public_port = static_cast<uint16_t>((*m)["public_port"].value_or(int64_t{0}));
        hm.replica_port = static_cast<uint16_t>((*m)["replica_port"].value_or(int64_t{0}));  // none before read-only URLs
        const std::string phase = (*m)["phase"].value_or(std::string{});
        auto p = member_phase_from(phase);
        if (!p) bad("member '" + hm.host + "' has phase '" + phase + "'; it is one of planned, prepared, started, removing");
        hm.phase = *p;
        try {
            validate_host_name(hm.host, "host");
        } catch (const Error& e) {
            bad(std::string("has a member with a bad host: ") + e.what());
        }
        ha.members.push_back(std::move(hm));
    }
    return ha;
}

}  // namespace

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
    toml::array extensions;
    for (auto& e : t.spec.extensions) extensions.push_back(e);
    spec.insert("extensions", extensions);
    toml::table facts{
        {"fs_uuid", t.fs_uuid},     {"label", t.label},
        {"image", t.image},         {"device", t.device},
        {"device_id", t.device_id},
        {"os_user", t.os_user},     {"uid", static_cast<int64_t>(t.uid)},
        {"port", t.port},           {"public_port", t.public_port},
        {"admin_user", t.admin_user}, {"password", t.password},
        {"created_at", t.created_at},
    };
    if (!t.password_pending.empty()) facts.insert("password_pending", t.password_pending);
    if (t.backup_port) facts.insert("backup_port", t.backup_port);
    toml::table doc{
        {"name", t.name},
        {"state", std::string(to_string(t.state))},
        {"step", t.step},
        {"reuse", t.reuse},
        {"purge", t.purge},
        {"purge_backups", t.purge_backups},
        {"read_only", t.read_only},
        {"stopped", t.stopped},
        {"spec", spec},
        {"facts", facts},
    };
    if (t.ha) doc.insert("ha", ha_toml(*t.ha));
    if (t.hibernated) doc.insert("hibernated", true);  // only when so: records of awake tenants stay as they were
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
    t.purge_backups = doc["purge_backups"].value_or(false);
    t.read_only = doc["read_only"].value_or(false);
    t.stopped = doc["stopped"].value_or(false);  // false in records written before it was recorded
    t.hibernated = doc["hibernated"].value_or(false);
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
    if (auto* ex = sp["extensions"].as_array())
        for (auto& e : *ex)
            if (auto v = e.value<std::string>()) t.spec.extensions.push_back(*v);
    auto f = doc["facts"];
    t.fs_uuid = f["fs_uuid"].value_or(std::string{});
    t.label = f["label"].value_or(std::string{});
    t.image = f["image"].value_or(std::string{});
    t.device = f["device"].value_or(std::string{});
    t.device_id = f["device_id"].value_or(std::string{});  // "" in records written before it was recorded
    t.os_user = f["os_user"].value_or(std::string{});
    t.uid = static_cast<uint32_t>(f["uid"].value_or(int64_t{0}));
    t.port = static_cast<uint16_t>(f["port"].value_or(int64_t{0}));
    t.public_port = static_cast<uint16_t>(f["public_port"].value_or(int64_t{0}));
    t.backup_port = static_cast<uint16_t>(f["backup_port"].value_or(int64_t{0}));
    t.admin_user = f["admin_user"].value_or(std::string{});
    t.password = f["password"].value_or(std::string{});
    t.password_pending = f["password_pending"].value_or(std::string{});
    t.created_at = f["created_at"].value_or(std::string{});
    if (auto* h = doc["ha"].as_table()) t.ha = ha_from(*h, source);  // none in a plain tenant's (and older) records
    return t;
}

}  // namespace hostd

#include "ha/plan.h"

#include <arpa/inet.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"
#include "pgconf/pgconf.h"

namespace hostd::ha {
namespace {

using nlohmann::json;

[[noreturn]] void bad_answer(const std::string& what) {
    throw Error(Errc::failed, "Patroni's /cluster answer cannot be read: " + what);
}

[[noreturn]] void conflict(const std::string& what) { throw Error(Errc::conflict, what, "to"); }

std::string names_of(const ClusterView& c) {
    std::string out;
    for (const auto& m : c.members) out += (out.empty() ? "" : ", ") + m.name;
    return out.empty() ? "none" : out;
}

bool is_ip(const std::string& a) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET, a.c_str(), buf) == 1 || ::inet_pton(AF_INET6, a.c_str(), buf) == 1;
}

bool is_host_name(const std::string& v) {
    bool ok = !v.empty() && v.size() <= 253 && v.front() != '.' && v.back() != '.' && v.front() != '-' &&
              v.find("..") == std::string::npos;
    for (char c : v) ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
    return ok;
}

}  // namespace

const char* member_role_name(MemberRole r) {
    switch (r) {
        case MemberRole::primary: return "primary";
        case MemberRole::replica: return "replica";
        case MemberRole::down: return "down";
    }
    return "down";
}

const MemberStatus* ClusterView::primary() const {
    for (const auto& m : members)
        if (m.role == MemberRole::primary) return &m;
    return nullptr;
}

const MemberStatus* ClusterView::find(const std::string& name) const {
    for (const auto& m : members)
        if (m.name == name) return &m;
    return nullptr;
}

ClusterView parse_cluster(const std::string& body, const std::vector<std::string>& expected) {
    json doc;
    try {
        doc = json::parse(body);
    } catch (const json::exception& e) {
        bad_answer(std::string("not JSON (") + e.what() + ")");
    }
    if (!doc.is_object() || !doc.contains("members") || !doc["members"].is_array()) bad_answer("no \"members\" array");
    ClusterView c;
    if (doc.contains("pause")) c.paused = doc["pause"].is_boolean() && doc["pause"].get<bool>();
    std::set<std::string> seen;
    for (const auto& j : doc["members"]) {
        if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty())
            bad_answer("a member without a name");
        MemberStatus m;
        m.name = j["name"].get<std::string>();
        if (!seen.insert(m.name).second) bad_answer("member '" + m.name + "' is listed twice");
        const std::string role = j.value("role", std::string());
        if (role == "leader" || role == "standby_leader" || role == "primary" || role == "master") {
            m.role = MemberRole::primary;
        } else if (role == "replica") {
            m.role = MemberRole::replica;
        } else if (role == "sync_standby" || role == "quorum_standby") {
            m.role = MemberRole::replica;
            m.sync = true;
        } else {
            bad_answer("member '" + m.name + "' has the unknown role '" + role + "'");
        }
        if (j.contains("state") && j["state"].is_string()) m.state = j["state"].get<std::string>();
        if (j.contains("host") && j["host"].is_string()) m.host = j["host"].get<std::string>();
        if (j.contains("port") && j["port"].is_number_unsigned() && j["port"].get<uint64_t>() <= 65535)
            m.port = static_cast<uint16_t>(j["port"].get<uint64_t>());
        if (j.contains("timeline") && j["timeline"].is_number_unsigned())
            m.timeline = static_cast<uint32_t>(j["timeline"].get<uint64_t>());
        // The primary has no lag; a replica's is bytes, or "unknown" (no position reported yet).
        if (m.role == MemberRole::replica && j.contains("lag") && j["lag"].is_number_unsigned())
            m.lag_bytes = j["lag"].get<uint64_t>();
        if (j.contains("tags") && j["tags"].is_object()) {
            const auto& t = j["tags"];
            m.nofailover = t.contains("nofailover") && t["nofailover"].is_boolean() && t["nofailover"].get<bool>();
        }
        c.members.push_back(std::move(m));
    }
    int leaders = 0;
    for (const auto& m : c.members) leaders += m.role == MemberRole::primary;
    if (leaders > 1) bad_answer("two leaders");
    for (const auto& name : expected)
        if (!seen.count(name)) c.members.push_back({.name = name, .role = MemberRole::down});
    std::sort(c.members.begin(), c.members.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return c;
}

Switchover plan_switchover(const ClusterView& c, const std::optional<std::string>& to, bool synchronous) {
    const MemberStatus* leader = c.primary();
    if (!leader)
        conflict("No member is primary now (Patroni names no leader: a failover may be under way, or etcd is out of reach): "
                 "there is nothing to switch over; look at the members and try again when one is primary");
    const MemberStatus* sync = nullptr;
    for (const auto& m : c.members)
        if (m.role == MemberRole::replica && m.sync) sync = &m;

    // Why a member cannot take over ("" if it can).
    auto unfit = [&](const MemberStatus& m) -> std::string {
        if (m.role == MemberRole::primary) return "'" + m.name + "' is the primary already";
        if (m.role == MemberRole::down) return "member '" + m.name + "' is down (Patroni does not report it)";
        if (!m.running()) return "member '" + m.name + "' is not running (Patroni says '" + m.state + "')";
        if (m.nofailover) return "member '" + m.name + "' is tagged nofailover: Patroni never promotes it";
        if (synchronous && !m.sync)
            return "in synchronous mode only the synchronous standby can take over without losing commits, and '" + m.name +
                   "' is not it (" + (sync ? "it is '" + sync->name + "'" : std::string("there is none now")) + ")";
        return "";
    };

    if (to) {
        const MemberStatus* m = c.find(*to);
        if (!m)
            throw Error(Errc::not_found, "'" + *to + "' is no member of this tenant (its members: " + names_of(c) + ")", "to");
        if (std::string why = unfit(*m); !why.empty()) conflict("Cannot switch over to '" + *to + "': " + why);
        return {leader->name, m->name};
    }
    if (sync && unfit(*sync).empty()) return {leader->name, sync->name};
    if (synchronous)
        conflict(sync ? "Cannot switch over: the synchronous standby cannot take over (" + unfit(*sync) +
                            "), and in synchronous mode no other member can without losing commits; wait for it to run again"
                      : "Cannot switch over: in synchronous mode only the synchronous standby can take over without losing "
                        "commits, and there is none now (no replica streams synchronously); wait for a replica to catch up");
    const MemberStatus* best = nullptr;
    for (const auto& m : c.members) {
        if (!unfit(m).empty()) continue;
        // Least lag first; a lag Patroni does not know comes after every known one.
        auto key = [](const MemberStatus* x) { return x->lag_bytes.value_or(UINT64_MAX); };
        if (!best || key(&m) < key(best)) best = &m;  // members are by name: ties keep the first
    }
    if (!best) {
        std::string why;
        for (const auto& m : c.members)
            if (m.role != MemberRole::primary) why += (why.empty() ? "" : "; ") + unfit(m);
        conflict("Cannot switch over: no replica can take over (" + (why.empty() ? "the tenant has no replica" : why) +
                 "); bring a replica back first");
    }
    return {leader->name, best->name};
}

std::string ha_url(const std::vector<HostPort>& members, const std::string& user, const std::string& password,
                   const std::string& dbname, const std::string& session_attrs) {
    if (members.empty()) throw Error(Errc::invalid, "An HA tenant's URL needs at least one member host", "members");
    std::vector<pgconf::UrlHost> hosts;
    for (const auto& m : members) {
        if (!is_ip(m.host) && !is_host_name(m.host))
            throw Error(Errc::invalid, "'" + m.host + "' cannot be a member host in a URL: give an IP address or a DNS name",
                        "members");
        if (m.port == 0) throw Error(Errc::invalid, "Member host '" + m.host + "' has no port", "members");
        hosts.push_back({m.host, m.port});
    }
    if (session_attrs != "read-write" && session_attrs != "standby" && session_attrs != "prefer-standby")
        throw Error(Errc::invalid, "'" + session_attrs + "' is not a session kind for an HA URL", "session_attrs");
    return pgconf::connection_url(hosts, user, password, dbname) + "?sslmode=require&target_session_attrs=" + session_attrs;
}

}  // namespace hostd::ha

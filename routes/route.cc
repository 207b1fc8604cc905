#include <algorithm>
#include <map>
#include <set>

#include "base/error.h"
#include "routes/detail.h"

namespace hostd::routes {
namespace {

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
}
bool is_address_char(char c) { return is_name_char(c) || c == ':' || c == '*'; }

}  // namespace

// Dot-separated labels of a-z, 0-9 and '-', none empty, longer than 63 or starting or ending
// with '-'; at most 253 in all.
bool is_dns_name(const std::string& n) {
    if (n.empty() || n.size() > 253) return false;
    size_t start = 0;
    while (true) {
        size_t dot = n.find('.', start);
        std::string label = n.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label)
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
        if (dot == std::string::npos) return true;
        start = dot + 1;
    }
}

namespace detail {

void validate(const Route& r) {
    if (r.tenant.empty() || !std::all_of(r.tenant.begin(), r.tenant.end(), is_name_char))
        throw Error(Errc::invalid, "Route tenant name '" + r.tenant + "' is not usable in a proxy configuration",
                    "tenant");
    auto check_addr = [&](const std::string& a, const char* field) {
        if (a.empty() || !std::all_of(a.begin(), a.end(), is_address_char))
            throw Error(Errc::invalid, "Route of tenant '" + r.tenant + "': '" + a + "' is not an address", field);
    };
    check_addr(r.bind_address, "bind_address");
    if (r.public_port == 0) throw Error(Errc::invalid, "Route of tenant '" + r.tenant + "' has no public port", "public_port");
    if (!r.sni_host.empty() && !is_dns_name(r.sni_host))
        throw Error(Errc::invalid, "Route of tenant '" + r.tenant + "': '" + r.sni_host + "' is not a DNS name", "sni_host");
    if (r.members.empty()) {
        if (!r.check_path.empty())
            throw Error(Errc::invalid, "Route of tenant '" + r.tenant + "': a check path is for routes with members (HA)",
                        "check_path");
        check_addr(r.backend_host, "backend_host");
        if (r.backend_port == 0)
            throw Error(Errc::invalid, "Route of tenant '" + r.tenant + "' has no backend port", "backend_port");
        return;
    }
    // An HA tenant's route: its members are its backends.
    if (!r.backend_host.empty() || r.backend_port != 0)
        throw Error(Errc::invalid, "Route of HA tenant '" + r.tenant + "': its members are its backends; give no backend_host "
                                   "or backend_port", "backend_host");
    if (!r.sni_host.empty())
        throw Error(Errc::invalid, "Route of HA tenant '" + r.tenant + "': routing by host name (SNI) is for single-host tenants",
                    "sni_host");
    const bool path_ok = r.check_path.size() > 1 && r.check_path.front() == '/' &&
                         std::all_of(r.check_path.begin(), r.check_path.end(), [](char c) {
                             return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
                                    c == '_' || c == '.' || c == '-';
                         });
    if (!path_ok)
        throw Error(Errc::invalid, "Route of HA tenant '" + r.tenant + "': '" + r.check_path + "' is not a health-check path "
                                   "(an absolute path of letters, digits and / _ . -, like /primary)", "check_path");
    std::set<std::string> names;
    for (const auto& m : r.members) {
        // HAProxy's server names: letters, digits, '-', '_' and '.' (a host name fits).
        if (m.name.empty() || !std::all_of(m.name.begin(), m.name.end(), is_name_char))
            throw Error(Errc::invalid, "Route of HA tenant '" + r.tenant + "': member name '" + m.name +
                                           "' is not usable in a proxy configuration", "members");
        if (!names.insert(m.name).second)
            throw Error(Errc::invalid, "Route of HA tenant '" + r.tenant + "' names member '" + m.name + "' twice", "members");
        if (m.host.empty() || !std::all_of(m.host.begin(), m.host.end(), is_address_char) ||
            m.host.find('*') != std::string::npos)
            throw Error(Errc::invalid, "Route of HA tenant '" + r.tenant + "': member '" + m.name + "' has no usable address ('" +
                                           m.host + "')", "members");
        if (m.port == 0 || m.check_port == 0)
            throw Error(Errc::invalid, "Route of HA tenant '" + r.tenant + "': member '" + m.name + "' needs a port and a check port",
                        "members");
    }
}

std::vector<const Route*> validate_table(const std::vector<Route>& routes) {
    std::vector<const Route*> sorted;
    for (const auto& r : routes) {
        validate(r);
        sorted.push_back(&r);
    }
    std::sort(sorted.begin(), sorted.end(), [](const Route* a, const Route* b) { return a->tenant < b->tenant; });
    std::map<uint16_t, const Route*> by_port;
    for (size_t i = 0; i < sorted.size(); i++) {
        if (i > 0 && sorted[i]->tenant == sorted[i - 1]->tenant)
            throw Error(Errc::invalid, "Two routes for tenant '" + sorted[i]->tenant + "'", "tenant");
        if (!sorted[i]->sni_host.empty()) continue;  // SNI routes share their port by design
        auto [it, fresh] = by_port.emplace(sorted[i]->public_port, sorted[i]);
        if (!fresh)
            throw Error(Errc::conflict, "Tenants '" + it->second->tenant + "' and '" + sorted[i]->tenant +
                                            "' both route public port " + std::to_string(sorted[i]->public_port),
                        "public_port");
    }
    return sorted;
}

std::string host_port(const std::string& host, uint16_t port) {
    bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace detail
}  // namespace hostd::routes

// Traefik: one dynamic-configuration file per tenant in the directory its file provider
// watches. Rendered with toml++ (quoting is the library's job), checked, then renamed in.

#include <dirent.h>

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/fs.h"
#include "routes/detail.h"
#include "routes/routes.h"

namespace hostd::routes {
namespace {

constexpr std::string_view kPrefix = "hostd-";
constexpr std::string_view kSuffix = ".toml";

std::string header() {
    return "# Managed by hostd: do not edit; rewritten or removed with the tenant's route.\n"
           "# Traefik file provider, dynamic configuration (TCP).\n\n";
}

std::string object_name(const Route& r) { return std::string(kPrefix) + r.tenant; }

std::string render_body(const TraefikSettings& s, const Route& r) {
    const bool sni = !r.sni_host.empty();
    const std::string name = object_name(r);
    toml::table router{
        {"entryPoints", toml::array{sni ? s.entry_point : s.port_entry_point + std::to_string(r.public_port)}},
        {"rule", "HostSNI(`" + (sni ? r.sni_host : std::string("*")) + "`)"},
        {"service", name},
    };
    if (sni) router.insert("tls", toml::table{{"passthrough", true}});
    toml::table service{
        {"loadBalancer",
         toml::table{{"servers", toml::array{toml::table{{"address", detail::host_port(r.backend_host, r.backend_port)}}}}}}};
    toml::table doc{{"tcp", toml::table{{"routers", toml::table{{name, router}}}, {"services", toml::table{{name, service}}}}}};
    std::ostringstream o;
    o << doc << "\n";
    return o.str();
}

[[noreturn]] void bad(const std::string& what) {
    throw Error(Errc::failed, "Refusing to write a Traefik file: " + what + " (a bug in hostd; nothing was changed)");
}

void only_keys(const toml::table& t, std::initializer_list<std::string_view> keys, const std::string& where) {
    for (auto& [k, _] : t)
        if (std::find(keys.begin(), keys.end(), k.str()) == keys.end())
            bad("unexpected key '" + std::string(k.str()) + "' in " + where);
}

const toml::table& table_at(const toml::table& t, std::string_view key, const std::string& where) {
    auto* v = t.get_as<toml::table>(key);
    if (!v) bad("'" + std::string(key) + "' in " + where + " is missing or not a table");
    return *v;
}

bool is_host_port(const std::string& a) {
    auto colon = a.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == a.size()) return false;
    auto port = a.substr(colon + 1);
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) return false;
    long p = std::stol(port);
    return p > 0 && p < 65536;
}

bool is_own_file(const std::string& name) {
    return name.size() > kPrefix.size() + kSuffix.size() && name.starts_with(kPrefix) && name.ends_with(kSuffix);
}

// Temp files write_file_atomic leaves when a crash comes between create and rename:
// ".hostd-<tenant>.toml.<n>.tmp".
bool is_own_temp(const std::string& name) {
    return name.starts_with("." + std::string(kPrefix)) && name.ends_with(".tmp") && name.find(kSuffix) != std::string::npos;
}

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> out;
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
    if (!d) throw_errno(errno, "Failed to read Traefik's directory '" + dir + "'");
    while (auto* e = ::readdir(d.get())) out.emplace_back(e->d_name);
    return out;
}

class TraefikWriter final : public RouteWriter {
public:
    explicit TraefikWriter(TraefikSettings s) : s_(std::move(s)) {}
    bool apply(const std::vector<Route>& routes, bool) override { return apply_traefik(s_, routes); }

private:
    TraefikSettings s_;
};

}  // namespace

std::string traefik_file_name(const std::string& tenant) { return std::string(kPrefix) + tenant + std::string(kSuffix); }

std::string render_traefik(const TraefikSettings& s, const Route& r) {
    detail::validate(r);
    if (!r.members.empty())
        throw Error(Errc::invalid, "An HA tenant's route ('" + r.tenant + "': a server per member, checked over HTTP) "
                                   "needs proxy.kind = \"haproxy\"", "members");
    return header() + render_body(s, r);
}

void check_traefik_file(const std::string& text) {
    toml::table doc;
    try {
        doc = toml::parse(text);
    } catch (const toml::parse_error& e) {
        bad("it does not parse as TOML: " + std::string(e.description()));
    }
    only_keys(doc, {"tcp"}, "the file");
    const auto& tcp = table_at(doc, "tcp", "the file");
    only_keys(tcp, {"routers", "services"}, "tcp");
    const auto& routers = table_at(tcp, "routers", "tcp");
    const auto& services = table_at(tcp, "services", "tcp");
    if (routers.size() != 1 || services.size() != 1) bad("it must hold one router and one service");

    for (auto& [name, node] : services) {
        const std::string where = "service '" + std::string(name.str()) + "'";
        auto* svc = node.as_table();
        if (!svc) bad(where + " is not a table");
        only_keys(*svc, {"loadBalancer"}, where);
        const auto& lb = table_at(*svc, "loadBalancer", where);
        only_keys(lb, {"servers"}, where + ".loadBalancer");
        auto* servers = lb.get_as<toml::array>("servers");
        if (!servers || servers->empty()) bad(where + " has no servers");
        for (auto& srv : *servers) {
            auto* st = srv.as_table();
            if (!st) bad(where + ": a server is not a table");
            only_keys(*st, {"address"}, where + " server");
            auto addr = st->get_as<std::string>("address");
            if (!addr || !is_host_port(addr->get())) bad(where + ": a server's address is not host:port");
        }
    }
    for (auto& [name, node] : routers) {
        const std::string where = "router '" + std::string(name.str()) + "'";
        auto* rt = node.as_table();
        if (!rt) bad(where + " is not a table");
        only_keys(*rt, {"entryPoints", "rule", "service", "tls"}, where);
        auto* eps = rt->get_as<toml::array>("entryPoints");
        if (!eps || eps->size() != 1 || !(*eps)[0].is_string()) bad(where + " needs exactly one entry point");
        auto rule = rt->get_as<std::string>("rule");
        if (!rule || !rule->get().starts_with("HostSNI(`") || !rule->get().ends_with("`)"))
            bad(where + " needs a HostSNI(`...`) rule");
        auto svc = rt->get_as<std::string>("service");
        if (!svc || !services.contains(svc->get())) bad(where + " names no service of this file");
        bool wildcard = rule->get() == "HostSNI(`*`)";
        if (auto* tls = rt->get_as<toml::table>("tls")) {
            only_keys(*tls, {"passthrough"}, where + ".tls");
            auto pt = tls->get_as<bool>("passthrough");
            if (!pt || !pt->get()) bad(where + ": TLS must be passed through to the tenant");
            if (wildcard) bad(where + ": a TLS route needs a host name");
        } else if (!wildcard) {
            bad(where + ": a host-name rule needs TLS passthrough");
        }
    }
}

bool apply_traefik(const TraefikSettings& s, const std::vector<Route>& routes) {
    // Everything is rendered and checked before the first file changes.
    detail::validate_table(routes);
    std::map<std::string, std::string> want;  // file name -> content
    for (const auto& r : routes) {
        std::string text = render_traefik(s, r);
        check_traefik_file(text);
        want.emplace(traefik_file_name(r.tenant), std::move(text));
    }

    make_dirs(s.directory);
    bool changed = false;
    for (auto& [file, text] : want) {
        const std::string path = s.directory + "/" + file;
        try {
            if (read_file(path) == text) continue;
        } catch (const Error& e) {
            if (e.code() != Errc::not_found) throw;
        }
        write_file_atomic(path, text, 0644);
        changed = true;
    }
    for (auto& name : list_dir(s.directory)) {
        if ((is_own_file(name) && !want.count(name)) || is_own_temp(name)) {
            if (remove_file(s.directory + "/" + name) && is_own_file(name)) changed = true;
        }
    }
    return changed;
}

std::unique_ptr<RouteWriter> traefik_writer(TraefikSettings s) { return std::make_unique<TraefikWriter>(std::move(s)); }

std::string render_traefik_static(const TraefikSettings& s, const std::string& bind_address, uint16_t sni_port,
                                  uint16_t first_port, uint16_t last_port) {
    const std::string bind = bind_address == "0.0.0.0" || bind_address == "::" ? "" : bind_address;
    toml::table eps;
    if (sni_port) {
        eps.insert(s.entry_point, toml::table{{"address", detail::host_port(bind, sni_port)}});
    } else {
        for (uint32_t p = first_port; p <= last_port; p++)
            eps.insert(s.port_entry_point + std::to_string(p),
                       toml::table{{"address", detail::host_port(bind, static_cast<uint16_t>(p))}});
    }
    toml::table doc{{"entryPoints", eps},
                    {"providers", toml::table{{"file", toml::table{{"directory", s.directory}, {"watch", true}}}}}};
    std::ostringstream o;
    o << "# Traefik static configuration for hostd (traefik.toml), printed by `hostd --traefik-static`.\n"
      << (sni_port ? "# One entry point shared by every tenant; Traefik routes by the TLS server name.\n"
                   : "# One entry point per public port: a tenant is reached on its own port.\n")
      << doc << "\n";
    return o.str();
}

}  // namespace hostd::routes

// Writes, through hostd's own path (hostd.toml -> tenant records -> routes -> the Traefik
// writer), the route files of sample tenants into <dir>/<config-name>/, for
// tests/traefik_schema_test.sh to check against the official Traefik v3 schema.
#include <iostream>
#include <string>
#include <vector>

#include "base/error.h"
#include "model/config.h"
#include "hostd/effects.h"
#include "model/tenant.h"

using namespace hostd;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: traefik_samples DIR\n";
        return 2;
    }
    const std::string dir = argv[1];
    // Every shape of route hostd writes: host names (SNI, TLS passthrough) and ports, an
    // address and a wildcard bind, IPv4 and IPv6, the longest tenant name.
    const std::vector<std::pair<std::string, std::string>> configs = {
        {"sni", "[proxy]\nkind = \"traefik\"\ndomain = \"db.example.com\"\n"},
        {"sni-custom", "[proxy]\nkind = \"traefik\"\ndomain = \"pg.internal\"\nsni_port = 15432\n"
                       "traefik_entry_point = \"pg-tenants\"\nbind = \"::\"\n"},
        {"ports", "[proxy]\nkind = \"traefik\"\nports = \"28000-28999\"\nbind = \"127.0.0.1\"\n"},
    };
    try {
        for (auto& [name, toml] : configs) {
            Config cfg = parse_config(toml, name);
            cfg.traefik_dir = dir + "/" + name;
            std::vector<routes::Route> rs;
            uint16_t port = 25000, public_port = 28000;
            for (std::string tenant : {"acme", "b", "a-very-long-tenant-name-of-30c", "x9-2"}) {
                TenantRecord t;
                t.name = tenant;
                t.port = ++port;
                t.public_port = ++public_port;
                rs.push_back(route_of(cfg, t));
            }
            make_route_writer(cfg)->apply(rs, false);
        }
    } catch (const std::exception& e) {
        std::cerr << "traefik_samples: " << e.what() << "\n";
        return 1;
    }
    return 0;
}

// Checks shared by the route writers; not part of the routes/ interface.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "routes/routes.h"

namespace hostd::routes::detail {

// Every value of a route goes into a proxy's config file as a bare word or a quoted string;
// they are kept to characters that cannot change that file's structure in any of the
// formats (HAProxy words, TOML strings, Traefik rules). Throws Errc::invalid naming the field.
void validate(const Route& r);

// A whole table: every route validated, one route per tenant, and no two port routes on one
// public port (a proxy would share that port's connections between them: HAProxy binds with
// SO_REUSEPORT and `haproxy -c` binds nothing; Traefik names the entry point by the port).
// Throws Errc::invalid / Errc::conflict naming the tenants. Returns the routes by tenant name.
std::vector<const Route*> validate_table(const std::vector<Route>& routes);

// "host:port", IPv6 literals in brackets so the port is not read as the last group.
std::string host_port(const std::string& host, uint16_t port);

}  // namespace hostd::routes::detail

// Tenant OS accounts: each tenant's PostgreSQL runs as its own system user, so the OS is the
// wall between tenants (a PostgreSQL superuser can run programs).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace hostd::units {

struct OsUser {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
};

std::optional<OsUser> find_user(const std::string& name);

// useradd --system --user-group, no home created, shell nologin. Errc::conflict if it exists.
OsUser create_user(const std::string& name, const std::string& home);

// Every OS user hostd made (named "_<tenant>", comment "hostd tenant").
std::vector<std::string> hostd_users();

// userdel (and its group); a missing user is fine.
void delete_user(const std::string& name);

}  // namespace hostd::units

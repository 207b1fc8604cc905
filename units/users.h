// Tenant OS accounts: each tenant's PostgreSQL runs as its own system user, so the OS is the
// wall between tenants (a PostgreSQL superuser can run programs).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hostd::units {

// The comment (GECOS) hostd gives every OS user it makes: its marker. hostd removes no user
// without it (a tenant named "apt" must never take Debian's own "_apt" with it).
inline constexpr std::string_view kUserMarker = "hostd tenant";

struct OsUser {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
    bool hostd = false;  // carries hostd's marker
};

// Where tenant users' uids and gids come from (both ends included).
struct IdRange {
    uint32_t first = 0, last = 0;
};

std::optional<OsUser> find_user(const std::string& name);
std::optional<gid_t> find_group(const std::string& name);

// useradd --system --user-group, uid and gid from ids, no home created, shell nologin, comment
// kUserMarker. Errc::conflict if the user exists; Errc::unavailable when ids has no free id.
OsUser create_user(const std::string& name, const std::string& home, IdRange ids);

// Every OS user hostd made (named "_<tenant>", with the marker).
std::vector<std::string> hostd_users();

// userdel (and its group), only of a user that carries the marker.
enum class Removed { removed, missing, not_hostds };
Removed delete_user(const std::string& name);

}  // namespace hostd::units

// A tenant's record on disk (<state_dir>/tenants/<name>.toml): its spec and facts in TOML.
#pragma once

#include <string>
#include <string_view>

#include "model/tenant.h"

namespace hostd {

std::string to_toml(const TenantRecord& t);
// Throws Errc::invalid naming the source on a bad file.
TenantRecord from_toml(std::string_view text, const std::string& source);

}  // namespace hostd

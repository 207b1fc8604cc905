// PostgreSQL's quoting for the configuration files pgconf renders (postgresql.conf,
// hostd.override.conf); not part of pgconf's interface.
#pragma once

#include <string>
#include <string_view>

namespace hostd::pgconf::detail {

// A string value as PostgreSQL's configuration parser reads it: single quotes, an embedded
// quote doubled, a backslash doubled (the parser treats backslash as an escape character).
// A control character is refused (Errc::invalid naming field): a newline would end the quoted
// string and let the rest of the value be read as settings of its own.
std::string quote(std::string_view value, const std::string& field);

}  // namespace hostd::pgconf::detail

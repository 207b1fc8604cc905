// hostd's log: the journal with structured fields (journalctl -u hostd TENANT=acme), and
// stderr too when it is a terminal. Only the layer that decides logs; libraries never do.
#pragma once

#include <string_view>

namespace hostd::log {

void info(std::string_view message, std::string_view tenant = {});
void warning(std::string_view message, std::string_view tenant = {});
void error(std::string_view message, std::string_view tenant = {});

}  // namespace hostd::log

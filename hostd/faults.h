// Fault injection for the crash tests: with -DHOSTD_FAULT_INJECTION=ON, hostd kills itself
// (SIGKILL, as the OOM killer or a power cut would) at the point named by the environment
// variable HOSTD_CRASH_AT, "<operation>:<before|after>:<step>" (e.g. "create:after:initdb").
// Without the option this compiles to nothing.
#pragma once

#include <string_view>

namespace hostd {

#ifdef HOSTD_FAULT_INJECTION
void crash_point(std::string_view op, std::string_view when, std::string_view step);
#else
inline void crash_point(std::string_view, std::string_view, std::string_view) {}
#endif

}  // namespace hostd

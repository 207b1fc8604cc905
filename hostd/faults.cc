#include "hostd/faults.h"

#ifdef HOSTD_FAULT_INJECTION
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "hostd/log.h"

namespace hostd {

void crash_point(std::string_view op, std::string_view when, std::string_view step) {
    const char* at = std::getenv("HOSTD_CRASH_AT");
    if (!at) return;
    std::string here = std::string(op) + ":" + std::string(when) + ":" + std::string(step);
    if (here != at) return;
    log::warning("Fault injection: killing hostd at " + here);
    ::kill(::getpid(), SIGKILL);
}

}  // namespace hostd
#endif

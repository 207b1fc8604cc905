#include "hostd/log.h"

#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace hostd::log {
namespace {

void emit(int priority, std::string_view message, std::string_view tenant) {
    std::string msg(message), t(tenant);
    if (t.empty())
        sd_journal_send("MESSAGE=%s", msg.c_str(), "PRIORITY=%i", priority, "SYSLOG_IDENTIFIER=hostd", nullptr);
    else
        sd_journal_send("MESSAGE=%s: %s", t.c_str(), msg.c_str(), "PRIORITY=%i", priority, "TENANT=%s", t.c_str(),
                        "SYSLOG_IDENTIFIER=hostd", nullptr);
    if (::isatty(2)) std::fprintf(stderr, "%s%s%s\n", t.c_str(), t.empty() ? "" : ": ", msg.c_str());
}

}  // namespace

void info(std::string_view m, std::string_view t) { emit(LOG_INFO, m, t); }
void warning(std::string_view m, std::string_view t) { emit(LOG_WARNING, m, t); }
void error(std::string_view m, std::string_view t) { emit(LOG_ERR, m, t); }

}  // namespace hostd::log

#include "model/views.h"

namespace hostd {
namespace {

// systemd's Result of a failed service, in words ("" for the results that only say how the
// main process ended: last_exit says that better).
std::string result_words(const std::string& result) {
    if (result == "start-limit-hit") return "it failed too often in a row and systemd stopped restarting it";
    if (result == "oom-kill") return "the kernel killed it for lack of memory";
    if (result == "timeout") return "it did not start or stop in time";
    if (result == "resources") return "systemd could not set it up (a missing disk, user or file?)";
    if (result == "signal" || result == "core-dump") return "PostgreSQL was killed";
    if (result == "exit-code") return "PostgreSQL exited with an error";
    if (result.empty() || result == "success") return "";
    return "it failed";
}

// How the unit failed: how PostgreSQL last ended, and systemd's result.
std::string failure(const LiveStatus& u) {
    const bool has_result = !u.result.empty() && u.result != "success";
    const bool plain = u.result == "signal" || u.result == "core-dump" || u.result == "exit-code";
    std::string why;
    if (!u.last_exit.empty()) {
        why = "PostgreSQL " + u.last_exit;
        if (has_result && !plain) why += "; " + result_words(u.result);
    } else {
        why = has_result ? result_words(u.result) : "its unit failed";
    }
    if (has_result) why += " (" + u.result + ")";
    return why;
}

}  // namespace

Live derive_live(const TenantRecord& t, const LiveStatus& u, const std::string& problem, const std::string& activity,
                 const std::optional<std::string>& ping) {
    if (t.state != TenantState::ready) return {std::string(to_string(t.state)), ""};
    if (!activity.empty()) return {activity, ""};
    if (!u.unit_error.empty()) return {"unknown", "systemd could not be asked: " + u.unit_error};
    const std::string& a = u.active_state;
    const bool runs = a == "active" || a == "reloading";
    if (t.stopped) {
        if (a == "deactivating") return {"stopping", "stopped on purpose"};
        if (runs || a == "activating")
            return {"running", "stopped on purpose, but its unit was started outside hostd (systemctl?); "
                               "hostctl stop or hostctl reconcile stops it again, hostctl start keeps it running"};
        return {"stopped", "stopped on purpose (hostctl stop); hostctl start brings it back"};
    }
    if (t.hibernated) {
        if (a == "deactivating") return {"hibernating", ""};
        if (runs || a == "activating")
            return {"running", "recorded as hibernated, but its unit runs (a hibernation under way, or started outside "
                               "hostd); hostctl start keeps it running"};
        return {"hibernated", "no client for [hibernate] after; its next connection starts it (hostctl start now)"};
    }
    if (a == "activating") {
        if (u.sub_state == "auto-restart")
            return {"restarting", failure(u) + "; systemd restarts it"};
        return {"starting", ""};
    }
    if (a == "deactivating") return {"stopping", "its unit is being stopped, not by hostd"};
    if (runs) {
        if (ping && !ping->empty()) return {"down", *ping};
        if (t.read_only)
            return {"read-only", "the disk is nearly full (hostd's disk-full guard): free space, or grow it (hostctl resize)"};
        return {"running", ""};
    }
    // failed, inactive, or not loaded at all: it should run and does not.
    if (!problem.empty()) return {"down", problem};
    if (a == "failed") return {"down", failure(u)};
    return {"down", "its unit is not running (" + (a.empty() ? std::string("not loaded") : a) + ")"};
}

}  // namespace hostd

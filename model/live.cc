#include "model/views.h"

namespace hostd {
namespace {

// systemd's Result of a failed service, in words.
std::string failure(const LiveStatus& u) {
    std::string why;
    if (u.result == "start-limit-hit") why = "it failed too often in a row and systemd stopped restarting it";
    else if (u.result == "signal" || u.result == "core-dump") why = "PostgreSQL was killed";
    else if (u.result == "exit-code") why = "PostgreSQL exited with an error";
    else if (u.result == "oom-kill") why = "the kernel killed it for lack of memory";
    else if (u.result == "timeout") why = "it did not start or stop in time";
    else if (u.result == "resources") why = "systemd could not set it up (a missing disk, user or file?)";
    else if (!u.result.empty() && u.result != "success") why = "it failed";
    else why = "its unit failed";
    if (!u.result.empty() && u.result != "success") why += " (" + u.result + ")";
    if (!u.last_exit.empty()) why += "; PostgreSQL last " + u.last_exit;
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
    if (a == "failed") return {"down", failure(u) + "; hostctl reconcile (or hostctl start) starts it again"};
    return {"down", "its unit is not running (" + (a.empty() ? std::string("not loaded") : a) +
                        "); hostctl reconcile (or hostctl start) starts it again"};
}

}  // namespace hostd

// systemd over sd-bus: start/stop/reload units and wait for their jobs, set cgroup limits,
// read unit status. One Systemd object owns one bus connection and is not thread-safe:
// open one per operation (a connection to systemd's private socket costs well under 1 ms).
#pragma once

#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct sd_bus;

namespace hostd::units {

struct Limits {
    uint64_t memory_max = 0;  // bytes; MemoryMax=
    double cpus = 0;          // CPUs; CPUQuota= cpus*100%  (0: no quota)
    uint64_t tasks_max = 0;   // TasksMax= (0: leave as is)
    uint64_t io_weight = 0;   // IOWeight= 1..10000 (0: leave as is)
};

struct UnitStatus {
    std::string load_state;    // "loaded", "not-found", ...
    std::string active_state;  // "active", "inactive", "failed", "activating", ...
    std::string sub_state;
    uint32_t main_pid = 0;
    uint32_t n_restarts = 0;
    // Of a unit that is not active (else ""): the service's Result ("success", "exit-code",
    // "signal", "start-limit-hit", ...) and how its main process last ended ("exited with status
    // 1", "was killed by signal KILL"; "" if unknown).
    std::string result, last_exit;
    // Of a unit that is not active: when it last stopped running (InactiveEnterTimestamp, µs
    // since the epoch; 0: never ran).
    uint64_t inactive_since_usec = 0;
    std::optional<uint64_t> memory_current, memory_max, tasks_current, tasks_max, cpu_usage_nsec;
    std::optional<uint64_t> cpu_quota_per_sec_usec;
};

struct BusDeleter {
    void operator()(sd_bus* b) const;
};
using BusPtr = std::unique_ptr<sd_bus, BusDeleter>;

class Systemd {
public:
    // systemd's private socket when root (no dbus-daemon in the path), else the system bus.
    static Systemd connect();

    // Enqueue a job (mode "replace") and wait for its JobRemoved; throws unless the result is
    // "done", naming the unit, the job result and what to look at (journalctl -u UNIT).
    void start(const std::string& unit, std::chrono::milliseconds timeout = std::chrono::seconds(90));
    // The same, and meanwhile runs once the job is queued, before its end is awaited: calls on
    // this connection that systemd answers while the job runs (its signals are kept meanwhile).
    void start(const std::string& unit, const std::function<void()>& meanwhile,
               std::chrono::milliseconds timeout = std::chrono::seconds(90));
    void stop(const std::string& unit, std::chrono::milliseconds timeout = std::chrono::seconds(90));
    void reload(const std::string& unit, std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // RestartUnit: stop (if running), then start; waits for the job like start.
    void restart(const std::string& unit, std::chrono::milliseconds timeout = std::chrono::seconds(90));
    // Reload when running, start when not (a proxy that is down gets its routes by starting).
    void reload_or_restart(const std::string& unit, std::chrono::milliseconds timeout = std::chrono::seconds(90));

    // Enqueue a job (StartUnit, RestartUnit, ...; mode "replace") and return without waiting for
    // it: for a unit whose start waits on other machines (an etcd member of a new cluster).
    void enqueue(const std::string& method, const std::string& unit);
    // EnableUnitFiles (persistent, like `systemctl enable`): the unit starts at boot. Then Reload.
    void enable(const std::string& unit);

    // SetUnitProperties; runtime=false makes systemd persist them as drop-ins under
    // /etc/systemd/system.control/<unit>.d/ and apply them live to a running unit.
    void set_limits(const std::string& unit, const Limits& limits, bool runtime = false);

    // Reload (daemon-reload): systemd reads its unit files again. Costs grow with the units
    // loaded: for a changed template only, never per tenant.
    void daemon_reload();

    // ResetFailed on the unit; a unit that is not loaded or not failed is fine.
    void reset_failed(const std::string& unit);

    UnitStatus status(const std::string& unit);

    // Loaded units matching a glob (ListUnitsByPatterns), as (name, ActiveState); with several
    // globs, the units matching any of them, in one call.
    std::vector<std::pair<std::string, std::string>> list_units(const std::string& pattern);
    std::vector<std::pair<std::string, std::string>> list_units(const std::vector<std::string>& patterns);
    // The same call with SubState too: one round trip for every tenant's state.
    struct UnitBrief {
        std::string name, active_state, sub_state;
    };
    std::vector<UnitBrief> list_unit_states(const std::string& pattern);
    std::vector<UnitBrief> list_unit_states(const std::vector<std::string>& patterns);

private:
    explicit Systemd(BusPtr bus) : bus_(std::move(bus)) {}
    void run_job(const char* method, const std::string& unit, std::chrono::milliseconds timeout,
                 const std::function<void()>& meanwhile = {});
    BusPtr bus_;
};

// How a main process ended, from ExecMainCode (CLD_*) and ExecMainStatus: "exited with status 1",
// "killed by signal KILL", "dumped core on signal SEGV"; "" when it has not ended. Pure.
std::string describe_exit(int32_t code, int32_t status);

// Removes the persistent drop-ins SetUnitProperties wrote for unit (nothing there is fine).
void remove_control_dropins(const std::string& unit, const std::string& root = "/etc/systemd/system.control");

}  // namespace hostd::units

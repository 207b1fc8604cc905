#include "units/systemd.h"

#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>

#include "base/error.h"

namespace hostd::units {
namespace {

constexpr const char* kDest = "org.freedesktop.systemd1";
constexpr const char* kPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";
constexpr const char* kUnitIface = "org.freedesktop.systemd1.Unit";
constexpr const char* kServiceIface = "org.freedesktop.systemd1.Service";

struct MessageDeleter {
    void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageDeleter>;
struct SlotDeleter {
    void operator()(sd_bus_slot* s) const { sd_bus_slot_unref(s); }
};
using SlotPtr = std::unique_ptr<sd_bus_slot, SlotDeleter>;

struct BusError {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    BusError() = default;
    BusError(const BusError&) = delete;
    ~BusError() { sd_bus_error_free(&e); }
    bool has(const char* name) const { return sd_bus_error_has_name(&e, name); }
};

[[noreturn]] void fail(int r, const BusError& err, const std::string& what) {
    std::string detail = sd_bus_error_is_set(&err.e) && err.e.message ? err.e.message : std::strerror(-r);
    Errc code = err.has("org.freedesktop.systemd1.NoSuchUnit") ? Errc::not_found : Errc::failed;
    throw Error(code, what + ": " + detail);
}

std::string unit_path(const std::string& unit) {
    char* p = nullptr;
    if (sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit.c_str(), &p) < 0)
        throw Error(Errc::failed, "Failed to encode the bus path of unit '" + unit + "'");
    std::string s(p);
    free(p);
    return s;
}

// JobRemoved results seen on this connection, by job path. Kept in a map because a job can
// finish before the method reply carrying its path has been read.
struct JobWatch {
    std::map<std::string, std::string> results;
};

int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) {
    uint32_t id;
    const char *path, *unit, *result;
    if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) >= 0)
        static_cast<JobWatch*>(userdata)->results[path] = result;
    return 0;
}

}  // namespace

void BusDeleter::operator()(sd_bus* b) const { sd_bus_flush_close_unref(b); }


Systemd Systemd::connect() {
    sd_bus* raw = nullptr;
    if (::geteuid() == 0 && sd_bus_new(&raw) >= 0) {
        BusPtr b(raw);
        if (sd_bus_set_address(b.get(), "unix:path=/run/systemd/private") >= 0 && sd_bus_start(b.get()) >= 0)
            return Systemd(std::move(b));
    }
    int r = sd_bus_open_system(&raw);
    if (r < 0)
        throw Error(Errc::unavailable, std::string("Failed to connect to systemd: ") + std::strerror(-r) +
                                           "; hostd needs systemd as the service manager");
    return Systemd(BusPtr(raw));
}

void Systemd::run_job(const char* method, const std::string& unit, std::chrono::milliseconds timeout,
                      const std::function<void()>& meanwhile) {
    sd_bus* bus = bus_.get();
    JobWatch watch;
    sd_bus_slot* raw_slot = nullptr;
    int r = sd_bus_match_signal(bus, &raw_slot, nullptr, kPath, kManager, "JobRemoved", on_job_removed, &watch);
    if (r < 0) throw Error(Errc::failed, std::string("Failed to watch systemd jobs: ") + std::strerror(-r));
    SlotPtr slot(raw_slot);
    {
        // systemd emits job signals only to clients that subscribed.
        BusError err;
        r = sd_bus_call_method(bus, kDest, kPath, kManager, "Subscribe", &err.e, nullptr, "");
        if (r < 0 && !err.has("org.freedesktop.systemd1.AlreadySubscribed")) fail(r, err, "Failed to subscribe to systemd");
    }
    BusError err;
    sd_bus_message* raw_reply = nullptr;
    r = sd_bus_call_method(bus, kDest, kPath, kManager, method, &err.e, &raw_reply, "ss", unit.c_str(), "replace");
    if (r < 0) fail(r, err, std::string("Failed to ") + method + " '" + unit + "'");
    MessagePtr reply(raw_reply);
    const char* job = nullptr;
    r = sd_bus_message_read(reply.get(), "o", &job);
    if (r < 0) throw Error(Errc::failed, std::string("Unexpected reply from systemd to ") + method);
    std::string job_path(job);
    if (meanwhile) meanwhile();

    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (auto it = watch.results.find(job_path); it != watch.results.end()) {
            if (it->second == "done") return;
            throw Error(Errc::failed, std::string(method) + " of '" + unit + "' failed (job result '" + it->second + "')" +
                                          "; see 'journalctl -u " + unit + "'");
        }
        r = sd_bus_process(bus, nullptr);
        if (r < 0) throw Error(Errc::failed, std::string("Lost the connection to systemd: ") + std::strerror(-r));
        if (r > 0) continue;
        auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            throw Error(Errc::unavailable, std::string("Timed out after ") + std::to_string(timeout.count() / 1000) +
                                               " s waiting for systemd to finish " + method + " of '" + unit + "'");
        r = sd_bus_wait(bus, static_cast<uint64_t>(left.count()));
        if (r < 0) throw Error(Errc::failed, std::string("Failed to wait for systemd: ") + std::strerror(-r));
    }
}

void Systemd::start(const std::string& unit, std::chrono::milliseconds t) { run_job("StartUnit", unit, t); }
void Systemd::start(const std::string& unit, const std::function<void()>& meanwhile, std::chrono::milliseconds t) {
    run_job("StartUnit", unit, t, meanwhile);
}
void Systemd::stop(const std::string& unit, std::chrono::milliseconds t) { run_job("StopUnit", unit, t); }
void Systemd::reload(const std::string& unit, std::chrono::milliseconds t) { run_job("ReloadUnit", unit, t); }
void Systemd::restart(const std::string& unit, std::chrono::milliseconds t) { run_job("RestartUnit", unit, t); }
void Systemd::reload_or_restart(const std::string& unit, std::chrono::milliseconds t) {
    run_job("ReloadOrRestartUnit", unit, t);
}

void Systemd::set_limits(const std::string& unit, const Limits& l, bool runtime) {
    sd_bus* bus = bus_.get();
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus, &raw, kDest, kPath, kManager, "SetUnitProperties");
    if (r < 0) throw Error(Errc::failed, "Failed to build a SetUnitProperties call");
    MessagePtr m(raw);
    r = sd_bus_message_append(m.get(), "sb", unit.c_str(), runtime ? 1 : 0);
    if (r >= 0) r = sd_bus_message_open_container(m.get(), 'a', "(sv)");
    if (r >= 0 && l.memory_max) r = sd_bus_message_append(m.get(), "(sv)", "MemoryMax", "t", l.memory_max);
    if (r >= 0 && l.cpus > 0)
        r = sd_bus_message_append(m.get(), "(sv)", "CPUQuotaPerSecUSec", "t", static_cast<uint64_t>(std::llround(l.cpus * 1e6)));
    if (r >= 0 && l.tasks_max) r = sd_bus_message_append(m.get(), "(sv)", "TasksMax", "t", l.tasks_max);
    if (r >= 0 && l.io_weight) r = sd_bus_message_append(m.get(), "(sv)", "IOWeight", "t", l.io_weight);
    if (r >= 0) r = sd_bus_message_close_container(m.get());
    if (r < 0) throw Error(Errc::failed, "Failed to build a SetUnitProperties call");
    BusError err;
    r = sd_bus_call(bus, m.get(), 0, &err.e, nullptr);
    if (r < 0) fail(r, err, "Failed to set limits on '" + unit + "'");
}

void Systemd::enqueue(const std::string& method, const std::string& unit) {
    BusError err;
    int r = sd_bus_call_method(bus_.get(), kDest, kPath, kManager, method.c_str(), &err.e, nullptr, "ss", unit.c_str(), "replace");
    if (r < 0) fail(r, err, "Failed to " + method + " '" + unit + "'");
}

void Systemd::enable(const std::string& unit) {
    BusError err;
    const char* files[] = {unit.c_str(), nullptr};
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus_.get(), &raw, kDest, kPath, kManager, "EnableUnitFiles");
    if (r < 0) throw Error(Errc::failed, std::string("Failed to ask systemd to enable '") + unit + "': " + std::strerror(-r));
    MessagePtr m(raw);
    if ((r = sd_bus_message_append_strv(m.get(), const_cast<char**>(files))) < 0 ||
        (r = sd_bus_message_append(m.get(), "bb", 0, 0)) < 0)
        throw Error(Errc::failed, std::string("Failed to ask systemd to enable '") + unit + "': " + std::strerror(-r));
    r = sd_bus_call(bus_.get(), m.get(), 0, &err.e, nullptr);
    if (r < 0) fail(r, err, "Failed to enable '" + unit + "'");
    daemon_reload();
}

void Systemd::daemon_reload() {
    BusError err;
    // Reload returns once systemd has read its unit files again (the default call timeout is
    // 25 s; a reload with few units takes well under one).
    int r = sd_bus_call_method(bus_.get(), kDest, kPath, kManager, "Reload", &err.e, nullptr, "");
    if (r < 0) fail(r, err, "Failed to reload systemd's unit files");
}

void Systemd::reset_failed(const std::string& unit) {
    BusError err;
    int r = sd_bus_call_method(bus_.get(), kDest, kPath, kManager, "ResetFailedUnit", &err.e, nullptr, "s", unit.c_str());
    if (r < 0 && !err.has("org.freedesktop.systemd1.NoSuchUnit")) fail(r, err, "Failed to reset '" + unit + "'");
}

UnitStatus Systemd::status(const std::string& unit) {
    sd_bus* bus = bus_.get();
    {
        // LoadUnit makes an instance of the template known even if it never ran.
        BusError err;
        int r = sd_bus_call_method(bus, kDest, kPath, kManager, "LoadUnit", &err.e, nullptr, "s", unit.c_str());
        if (r < 0) fail(r, err, "Failed to look up '" + unit + "'");
    }
    std::string path = unit_path(unit);
    auto str = [&](const char* iface, const char* prop) {
        BusError err;
        char* v = nullptr;
        int r = sd_bus_get_property_string(bus, kDest, path.c_str(), iface, prop, &err.e, &v);
        if (r < 0) fail(r, err, std::string("Failed to read ") + prop + " of '" + unit + "'");
        std::string s(v);
        free(v);
        return s;
    };
    auto u64 = [&](const char* iface, const char* prop) -> std::optional<uint64_t> {
        BusError err;
        uint64_t v = 0;
        if (sd_bus_get_property_trivial(bus, kDest, path.c_str(), iface, prop, &err.e, 't', &v) < 0) return std::nullopt;
        if (v == UINT64_MAX) return std::nullopt;  // "infinity" / not tracked
        return v;
    };
    auto u32 = [&](const char* iface, const char* prop) -> uint32_t {
        BusError err;
        uint32_t v = 0;
        sd_bus_get_property_trivial(bus, kDest, path.c_str(), iface, prop, &err.e, 'u', &v);
        return v;
    };
    auto i32 = [&](const char* iface, const char* prop) -> int32_t {
        BusError err;
        int32_t v = 0;
        sd_bus_get_property_trivial(bus, kDest, path.c_str(), iface, prop, &err.e, 'i', &v);
        return v;
    };
    UnitStatus s;
    s.load_state = str(kUnitIface, "LoadState");
    s.active_state = str(kUnitIface, "ActiveState");
    s.sub_state = str(kUnitIface, "SubState");
    s.main_pid = u32(kServiceIface, "MainPID");
    s.n_restarts = u32(kServiceIface, "NRestarts");
    // How it failed: only asked of a unit that is not running (three more round trips each, and
    // hostctl list asks this of every tenant).
    if (s.active_state != "active" && s.active_state != "reloading") {
        try {
            s.result = str(kServiceIface, "Result");
        } catch (const Error&) {
            // not a service, or an old systemd: the result stays unknown
        }
        s.last_exit = describe_exit(i32(kServiceIface, "ExecMainCode"), i32(kServiceIface, "ExecMainStatus"));
        s.inactive_since_usec = u64(kUnitIface, "InactiveEnterTimestamp").value_or(0);
    }
    s.memory_current = u64(kServiceIface, "MemoryCurrent");
    s.memory_max = u64(kServiceIface, "MemoryMax");
    s.tasks_current = u64(kServiceIface, "TasksCurrent");
    s.tasks_max = u64(kServiceIface, "TasksMax");
    s.cpu_usage_nsec = u64(kServiceIface, "CPUUsageNSec");
    s.cpu_quota_per_sec_usec = u64(kServiceIface, "CPUQuotaPerSecUSec");
    return s;
}

std::vector<std::pair<std::string, std::string>> Systemd::list_units(const std::string& pattern) {
    return list_units(std::vector<std::string>{pattern});
}

std::vector<std::pair<std::string, std::string>> Systemd::list_units(const std::vector<std::string>& patterns) {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& u : list_unit_states(patterns)) out.emplace_back(std::move(u.name), std::move(u.active_state));
    return out;
}

std::vector<Systemd::UnitBrief> Systemd::list_unit_states(const std::string& pattern) {
    return list_unit_states(std::vector<std::string>{pattern});
}

std::vector<Systemd::UnitBrief> Systemd::list_unit_states(const std::vector<std::string>& patterns) {
    sd_bus* bus = bus_.get();
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus, &raw, kDest, kPath, kManager, "ListUnitsByPatterns");
    if (r < 0) throw Error(Errc::failed, "Failed to build a ListUnitsByPatterns call");
    MessagePtr m(raw);
    const char* none[] = {nullptr};
    std::vector<const char*> globs;
    std::string named;
    for (const auto& p : patterns) {
        globs.push_back(p.c_str());
        named += (named.empty() ? "'" : ", '") + p + "'";
    }
    globs.push_back(nullptr);
    r = sd_bus_message_append_strv(m.get(), const_cast<char**>(none));
    if (r >= 0) r = sd_bus_message_append_strv(m.get(), const_cast<char**>(globs.data()));
    if (r < 0) throw Error(Errc::failed, "Failed to build a ListUnitsByPatterns call");
    BusError err;
    sd_bus_message* raw_reply = nullptr;
    r = sd_bus_call(bus, m.get(), 0, &err.e, &raw_reply);
    if (r < 0) fail(r, err, "Failed to list units " + named);
    MessagePtr reply(raw_reply);
    std::vector<UnitBrief> out;
    r = sd_bus_message_enter_container(reply.get(), 'a', "(ssssssouso)");
    if (r < 0) throw Error(Errc::failed, "Unexpected reply from systemd to ListUnitsByPatterns");
    const char *name, *desc, *load, *active, *sub, *follow, *job_type, *job_path;
    const char* path;
    uint32_t job_id;
    while ((r = sd_bus_message_read(reply.get(), "(ssssssouso)", &name, &desc, &load, &active, &sub, &follow, &path,
                                    &job_id, &job_type, &job_path)) > 0)
        out.push_back({name, active, sub});
    if (r < 0) throw Error(Errc::failed, "Unexpected reply from systemd to ListUnitsByPatterns");
    return out;
}

std::string describe_exit(int32_t code, int32_t status) {
    auto sig = [](int32_t n) {
        const char* abbrev = ::sigabbrev_np(n);
        return abbrev ? std::string(abbrev) : std::to_string(n);
    };
    switch (code) {
    case 1: return "exited with status " + std::to_string(status);  // CLD_EXITED
    case 2: return "was killed by signal " + sig(status);           // CLD_KILLED
    case 3: return "dumped core on signal " + sig(status);          // CLD_DUMPED
    default: return "";
    }
}

void remove_control_dropins(const std::string& unit, const std::string& root) {
    std::error_code ec;
    std::filesystem::remove_all(root + "/" + unit + ".d", ec);
    if (ec) throw Error(Errc::failed, "Failed to remove drop-ins of '" + unit + "': " + ec.message());
}

}  // namespace hostd::units

// Settings against limits: see fit.h for the rule.
#include "pgconf/fit.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>

#include "base/error.h"
#include "base/size.h"
#include "base/strings.h"

namespace hostd::pgconf {
namespace {

// PostgreSQL's defaults for what hostd's postgresql.conf does not set.
constexpr double kDefaultMaxWalSenders = 10;
constexpr double kDefaultAutovacuumWorkers = 3;

std::string bytes(double b) { return format_size(static_cast<uint64_t>(std::llround(std::max(b, 0.0)))); }
std::string count(double n) { return format_number(n); }
// A size as PostgreSQL takes it, rounded down to whole kB: "7864kB", "64MB".
std::string pg_size(double b) {
    const auto kb = static_cast<uint64_t>(std::max(b, 0.0) / 1024);
    return kb % 1024 == 0 && kb > 0 ? std::to_string(kb / 1024) + "MB" : std::to_string(kb) + "kB";
}

}  // namespace

FitNumbers fit_numbers(const SettingsCatalog& catalog, const ClusterSpec& spec,
                       const std::map<std::string, std::string>& overrides) {
    const Tuning t = tune(spec);
    auto value = [&](const char* name, double rendered) {
        auto it = overrides.find(name);
        if (it == overrides.end()) return rendered;
        return setting_number(catalog, name, it->second).value_or(rendered);
    };
    FitNumbers n;
    n.shared_buffers = value("shared_buffers", static_cast<double>(t.shared_buffers_mb) * 1024 * 1024);
    n.work_mem = value("work_mem", static_cast<double>(t.work_mem_kb) * 1024);
    n.max_connections = value("max_connections", static_cast<double>(t.max_connections));
    n.max_wal_senders = value("max_wal_senders", kDefaultMaxWalSenders);
    n.autovacuum_max_workers = value("autovacuum_max_workers", kDefaultAutovacuumWorkers);
    n.max_worker_processes = value("max_worker_processes", static_cast<double>(t.max_worker_processes));
    return n;
}

void check_fit(const SettingsCatalog& catalog, const ClusterSpec& spec, uint64_t tasks_max,
               const std::map<std::string, std::string>& overrides) {
    const FitNumbers n = fit_numbers(catalog, spec, overrides);
    // The override to blame, in this order; else the limit.
    auto field = [&](std::initializer_list<const char*> names, const char* limit) {
        for (const char* s : names)
            if (overrides.count(s)) return "settings." + std::string(s);
        return std::string(limit);
    };
    if (spec.memory_bytes > 0) {
        const double memory = static_cast<double>(spec.memory_bytes);
        if (n.shared_buffers >= memory)
            throw Error(Errc::invalid, "shared_buffers " + bytes(n.shared_buffers) + " exceeds the tenant's memory " +
                                           bytes(memory) + " (MemoryMax): set shared_buffers well below it (hostd's "
                                           "own choice is a quarter), or give the tenant more memory",
                        field({"shared_buffers"}, "memory"));
        if (n.memory_needed() > memory) {
            const double room = memory - n.shared_buffers;
            std::string hint = "lower work_mem to at most " + pg_size(room / n.max_connections);
            if (const double c = std::floor(room / n.work_mem); c >= 1) hint += " or max_connections to at most " + count(c);
            hint += ", or give the tenant at least " + bytes(n.memory_needed()) + " of memory";
            throw Error(Errc::invalid, "shared_buffers " + bytes(n.shared_buffers) + " + max_connections " +
                                           count(n.max_connections) + " × work_mem " + bytes(n.work_mem) + " = " +
                                           bytes(n.memory_needed()) + " exceeds the tenant's memory " + bytes(memory) +
                                           " (MemoryMax): " + hint,
                        field({"work_mem", "max_connections", "shared_buffers"}, "memory"));
        }
    }
    if (tasks_max > 0 && n.tasks_needed() > static_cast<double>(tasks_max))
        throw Error(Errc::invalid,
                    "The tenant's PostgreSQL may run " + count(n.tasks_needed()) + " processes (max_connections " +
                        count(n.max_connections) + " + max_wal_senders " + count(n.max_wal_senders) +
                        " + autovacuum_max_workers " + count(n.autovacuum_max_workers) + " + max_worker_processes " +
                        count(n.max_worker_processes) + " + " + count(kServerProcesses) +
                        " server processes), more than its tasks limit " + std::to_string(tasks_max) +
                        " (TasksMax): lower max_connections, or give it at least " + count(n.tasks_needed()) + " tasks",
                    field({"max_connections", "max_worker_processes", "max_wal_senders", "autovacuum_max_workers"},
                          "tasks"));
}

}  // namespace hostd::pgconf

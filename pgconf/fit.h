// Whether a tenant's PostgreSQL settings fit the limits of its unit: pure, no I/O. The settings
// in force are hostd's rendered ones (pgconf.h, tune()) with the tenant's overrides on top.
//
// The rule (also in the README, "PostgreSQL settings per tenant"):
//   memory  shared_buffers must be below MemoryMax, and
//           shared_buffers + max_connections × work_mem ≤ MemoryMax
//           (every connection may sort or hash with work_mem at once; the page cache and
//           maintenance work share what is left)
//   tasks   max_connections + max_wal_senders + autovacuum_max_workers + max_worker_processes
//           + kServerProcesses ≤ TasksMax
//           (each is a process of its own; a fork beyond TasksMax fails, and with it the login)
// hostd's rendered values need 36 MiB at most at the smallest memory (limits.min_memory is at
// least 48M) and half the memory above 160 MiB; 49 tasks at the smallest memory, 129 from
// 800 MiB (up to 8 CPUs): the default TasksMax, 512, holds them.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "pgconf/pgconf.h"
#include "pgconf/settings.h"

namespace hostd::pgconf {

// The postmaster and its helpers that are not counted in any setting: checkpointer, background
// writer, WAL writer, autovacuum launcher, archiver, startup, and one for a reload's command.
inline constexpr uint64_t kServerProcesses = 8;

struct FitNumbers {
    double shared_buffers = 0;   // bytes
    double work_mem = 0;         // bytes
    double max_connections = 0;
    double max_wal_senders = 0;
    double autovacuum_max_workers = 0;
    double max_worker_processes = 0;
    double memory_needed() const { return shared_buffers + max_connections * work_mem; }
    double tasks_needed() const {
        return max_connections + max_wal_senders + autovacuum_max_workers + max_worker_processes + kServerProcesses;
    }
};

// The values in force for a cluster of these limits with these (validated) overrides.
FitNumbers fit_numbers(const SettingsCatalog& catalog, const ClusterSpec& spec,
                       const std::map<std::string, std::string>& overrides);

// Errc::invalid with the numbers and what to change when the settings do not fit memory
// (spec.memory_bytes) or tasks_max; the field is the override to blame ("settings.work_mem"),
// else "memory" or "tasks". memory_bytes 0 or tasks_max 0: that side is not checked.
void check_fit(const SettingsCatalog& catalog, const ClusterSpec& spec, uint64_t tasks_max,
               const std::map<std::string, std::string>& overrides);

}  // namespace hostd::pgconf

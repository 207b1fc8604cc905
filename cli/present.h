// How hostctl shows hostd's replies to a person: tables and progress lines. Pure: domain
// types in, text out (--json prints wire/'s rendering instead).
#pragma once

#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "model/views.h"

namespace hostd {

// What a tenant is doing now (its live state: running, stopped, down, ...), else its lifecycle
// state (a reply from a hostd that does not tell).
std::string state_word(const TenantView& t);

// hostctl list's table: NAME STATE PORT DISK MEMORY CPU IO URL, where STATE is state_word, DISK is
// used/total, MEMORY used/limit, CPU the quota and the CPU time used, IO the bytes read/written
// since the unit started ("-" when unknown: where the host's cgroups do not account them).
std::vector<std::vector<std::string>> tenant_rows(const std::vector<TenantView>& tenants);

// hostctl show: "key:" / value rows of one tenant, its live status where known.
std::vector<std::vector<std::string>> tenant_details(const TenantView& t);
// hostctl show of an HA tenant: HOST ROLE STATE LAG TL SYNC, a row per member, "-" where
// unknown (LAG the bytes a replica is behind; SYNC "yes" for the synchronous standby). Only a
// header for a plain tenant (no members): hostctl prints the table only when there are members.
std::vector<std::vector<std::string>> member_rows(const std::vector<MemberView>& members);
// hostctl show, backups on: rows of what hostd last saw of the tenant's backups (the newest
// backup and its age, the newest archived WAL's age, the repository's size, the last failure),
// ages against now.
std::vector<std::vector<std::string>> backup_health_rows(const BackupHealth& h, std::time_t now);
// "42 s", "12 min", "3 h 05 min", "2 d 04 h": how long ago, to read at a glance.
std::string format_age(std::time_t seconds);
// hostctl backups: the last failed backup in a line ("" when none since hostd started).
std::string backup_failure_line(const BackupList& b);

// A tenant's backups: a row each (label, type, finished, size, in the repository), oldest first.
std::vector<std::vector<std::string>> backup_rows(const BackupList& b);
// Deleted tenants whose backups are kept: NAME DELETED KEPT-UNTIL DISK MEMORY OWNER REPOSITORY.
std::vector<std::vector<std::string>> kept_rows(const std::vector<KeptView>& kept);

// Setting overrides on one line: "work_mem=64MB, max_prepared_transactions=5", or "none".
std::string settings_line(const Settings& settings);

// hostctl host: RESOURCE COMMITTED HOST FREE NOTE, one row each for tenants, memory, cpu, disk
// and ports: what the tenants are given against what the host has.
std::vector<std::vector<std::string>> host_rows(const HostInfo& h);

// A connection URL without the password in its user part ("postgresql://acme@host:1/db"):
// what hostctl may put on a command line, where every user of the machine can read it (ps).
std::string url_without_password(std::string_view url);

// One finished step of a create as hostctl prints it: "  disk          12 ms".
std::string step_line(std::string_view step, long ms);
// The terminal's progress line while a step runs: "<spinner> NAME: STEP... 1.2 s" (frame counts up).
std::string spinner_line(size_t frame, std::string_view what, long elapsed_ms);

}  // namespace hostd

// What is known of each tenant's backups without asking at request time: its newest backup,
// when its newest WAL segment reached the repository, and the repository's size, read in the
// background one tenant at a time (pgBackRest's info as the tenant's OS user, never root, and
// a walk of the repository directory's metadata); and the backups that failed, on request
// (Manager::backup reports them) or on schedule (a timer's hostd-backup-<type>@<tenant>.service
// that failed, noticed through systemd). Each failure is logged to the journal once.
// Kept in memory: after a restart, failed scheduled units are noticed again; failures on
// request are gone (the journal keeps them).
#pragma once

#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "backup/ops.h"
#include "hostd/effects.h"
#include "hostd/store.h"
#include "model/config.h"
#include "model/views.h"

namespace hostd {

// Pure: h updated with what pgBackRest's info and the repository walk said at now (the
// failure record is left as it is).
void apply_backup_facts(BackupHealth& h, const backup::Info& info, const backup::RepoUsage& usage, std::time_t now);

class BackupWatch {
public:
    // Seconds between two looks at the same tenant's repository (one pgBackRest process each).
    static constexpr std::time_t kRecheck = 60;

    BackupWatch(const Config& cfg, Effects& fx, Store& store) : cfg_(cfg), fx_(fx), store_(store) {}

    // One round (a ticker calls it every few seconds): failed scheduled units noticed, then the
    // ready tenant looked at longest ago (never first) looked at, if kRecheck has passed.
    void tick();
    // Looks at one tenant now: info as given (just read by the caller), the repository walked.
    void seen(const std::string& tenant, const backup::Info& info);
    // A failed backup: logged, counted, kept as the tenant's last failure.
    void failed(const std::string& tenant, BackupFailure f);

    std::optional<BackupHealth> health(const std::string& tenant) const;
    std::map<std::string, BackupHealth> all() const;

private:
    void look(const TenantRecord& t);

    const Config& cfg_;
    Effects& fx_;
    Store& store_;
    mutable std::mutex mu_;
    std::map<std::string, BackupHealth> health_;
    std::map<std::string, std::time_t> units_seen_;  // failed unit → the failure already reported
    std::map<std::string, std::string> remote_errors_;  // tenant → its repository host's last scheduled error
};

}  // namespace hostd

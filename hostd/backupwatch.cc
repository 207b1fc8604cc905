#include "hostd/backupwatch.h"

#include <algorithm>
#include <set>

#include "base/error.h"
#include "hostd/log.h"
#include "model/layout.h"

namespace hostd {

void apply_backup_facts(BackupHealth& h, const backup::Info& info, const backup::RepoUsage& usage, std::time_t now) {
    h.checked = now;
    h.error.clear();
    h.last_backup = h.last_full = 0;
    h.last_type.clear();
    h.last_label.clear();
    for (const auto& b : info.backups) {  // oldest first
        if (b.stop >= h.last_backup) {
            h.last_backup = b.stop;
            h.last_type = std::string(backup::to_string(b.type));
            h.last_label = b.label;
        }
        if (b.type == backup::BackupType::full) h.last_full = std::max(h.last_full, b.stop);
    }
    h.last_wal = usage.last_wal;
    h.repo_bytes = usage.bytes;
}

void BackupWatch::look(const TenantRecord& t) {
    const TenantLayout l = layout_of(cfg_, t);
    std::string error;
    backup::Info info;
    try {
        info = fx_.backup_info(t, l);
    } catch (const Error& e) {
        error = e.what();
    }
    std::optional<backup::RepoUsage> usage;
    try {
        usage = fx_.repository_usage(l);
    } catch (const Error& e) {
        if (error.empty()) error = e.what();
    }
    // A repository host runs the scheduled backups: its last one's error, each error once.
    bool report = false;
    if (usage) {
        std::lock_guard g(mu_);
        std::string& last = remote_errors_[t.name];
        report = usage->scheduled_error != last && !usage->scheduled_error.empty();
        last = usage->scheduled_error;
    }
    if (report) failed(t.name, {.at = std::time(nullptr), .type = "scheduled", .by = "schedule", .message = usage->scheduled_error});
    std::lock_guard g(mu_);
    BackupHealth& h = health_[t.name];
    if (error.empty()) {
        apply_backup_facts(h, info, *usage, std::time(nullptr));
        return;
    }
    // What was known stays (the last backup did happen); the size is what could be measured.
    if (h.error != error) log::warning("Cannot read the backups' repository: " + error, t.name);
    h.checked = std::time(nullptr);
    h.error = error;
    if (usage) h.repo_bytes = usage->bytes, h.last_wal = usage->last_wal;
}

void BackupWatch::seen(const std::string& tenant, const backup::Info& info) {
    std::optional<backup::RepoUsage> usage;
    try {
        usage = fx_.repository_usage(layout_of(cfg_, tenant));
    } catch (const Error& e) {
        log::warning(std::string("Cannot measure the backups' repository: ") + e.what(), tenant);
    }
    std::lock_guard g(mu_);
    BackupHealth& h = health_[tenant];
    const std::optional<uint64_t> bytes = h.repo_bytes;
    const std::time_t wal = h.last_wal;
    apply_backup_facts(h, info, usage.value_or(backup::RepoUsage{}), std::time(nullptr));
    if (!usage) h.repo_bytes = bytes, h.last_wal = wal;
}

void BackupWatch::failed(const std::string& tenant, BackupFailure f) {
    log::error("The " + f.type + " backup (" + (f.by == "schedule" ? "scheduled" : "on request") + ") failed: " + f.message, tenant);
    std::lock_guard g(mu_);
    BackupHealth& h = health_[tenant];
    h.failures++;
    h.last_failure = std::move(f);
}

void BackupWatch::tick() {
    if (!backups_on(cfg_)) return;
    std::vector<TenantRecord> ready;
    std::set<std::string> names;
    for (auto& r : store_.snapshot())
        if (r.state == TenantState::ready) names.insert(r.name), ready.push_back(std::move(r));
    {
        std::lock_guard g(mu_);
        std::erase_if(health_, [&](const auto& e) { return !names.count(e.first); });
        std::erase_if(remote_errors_, [&](const auto& e) { return !names.count(e.first); });
    }
    // Scheduled backups: a unit that failed, each failure once.
    try {
        std::set<std::string> failed_now;
        for (auto& f : fx_.failed_backup_units()) {
            failed_now.insert(f.unit);
            if (!names.count(f.tenant)) continue;
            {
                std::lock_guard g(mu_);
                // Its repository looked at first, so a failure older than the newest backup (a
                // unit left failed before hostd restarted) is not taken for the newest attempt.
                if (auto h = health_.find(f.tenant); h == health_.end() || !h->second.checked) continue;
                auto it = units_seen_.find(f.unit);
                if (it != units_seen_.end() && it->second == f.at) continue;
                units_seen_[f.unit] = f.at;
            }
            failed(f.tenant, {.at = f.at, .type = f.type, .by = "schedule", .message = f.message});
        }
        std::lock_guard g(mu_);
        std::erase_if(units_seen_, [&](const auto& e) { return !failed_now.count(e.first); });
    } catch (const Error& e) {
        log::warning(std::string("Cannot ask systemd for the scheduled backups: ") + e.what());
    }
    // The repository of the tenant looked at longest ago, when due.
    const TenantRecord* next = nullptr;
    std::time_t oldest = 0;
    {
        std::lock_guard g(mu_);
        for (const auto& r : ready) {
            if (!store_.activity(r.name).empty()) continue;  // a verb is under way on it
            auto it = health_.find(r.name);
            const std::time_t at = it == health_.end() ? 0 : it->second.checked;
            if (!next || at < oldest) next = &r, oldest = at;
        }
    }
    if (next && std::time(nullptr) - oldest >= kRecheck) look(*next);
}

std::optional<BackupHealth> BackupWatch::health(const std::string& tenant) const {
    std::lock_guard g(mu_);
    auto it = health_.find(tenant);
    if (it == health_.end()) return std::nullopt;
    return it->second;
}

std::map<std::string, BackupHealth> BackupWatch::all() const {
    std::lock_guard g(mu_);
    return health_;
}

}  // namespace hostd

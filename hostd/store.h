// The record store: every tenant's record, in memory and on disk (written before each step is
// taken, so a crash leaves a record that says what was under way), and the per-tenant locks
// that keep two operations, or an operation and the disk-full guard, off one tenant.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/kept.h"
#include "model/tenant.h"

namespace hostd {

class Store {
public:
    explicit Store(const Config& cfg) : cfg_(cfg) {}
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Reads every record under <state_dir>/tenants; a bad file is logged and skipped.
    void load();
    void save(const TenantRecord& t);  // on disk (atomically), then in memory
    void forget(const std::string& name);
    TenantRecord get(const std::string& name) const;  // a copy; Errc::not_found
    std::vector<TenantRecord> snapshot() const;        // copies of every record
    // Changes whenever a record or a problem may have changed (a save, a forget, a problem set,
    // a locked() edit; also load), never otherwise: what a plain list shows is the same while
    // it stays. Unique across the process's stores (a cache keyed by it cannot mix two up).
    uint64_t generation() const;
    // fn(record, problem) for each record in name order, under the store's lock, without copies
    // (fn must be quick and do no I/O).
    template <class F>
    void each(F&& fn) const {
        std::lock_guard g(mu_);
        static const std::string none;
        for (auto& [name, t] : records_) {
            auto p = problems_.find(name);
            fn(t, p == problems_.end() ? none : p->second);
        }
    }

    // Deleted tenants whose backups are kept (<state_dir>/deleted, model/kept.h), loaded with
    // the records. A name is in at most one of the two (a purge writes this before it forgets).
    void save_kept(const KeptStanza& k);
    void forget_kept(const std::string& name);
    std::optional<KeptStanza> kept(const std::string& name) const;
    std::map<std::string, KeptStanza> kept_all() const;

    // fn(records) under the store's lock, for a check-and-reserve that must be atomic (a new
    // tenant's name, ports and device). A record inserted there is in memory only until saved.
    template <class F>
    auto locked(F&& fn) {
        std::lock_guard g(mu_);
        bump();
        return fn(records_);
    }
    template <class F>
    auto locked(F&& fn) const {
        std::lock_guard g(mu_);
        return fn(records_);
    }
    // The same, with the kept backups' records too (a new name must be free of both).
    template <class F>
    auto locked_with_kept(F&& fn) {
        std::lock_guard g(mu_);
        bump();
        return fn(records_, static_cast<const std::map<std::string, KeptStanza>&>(kept_));
    }

    // Tenants whose route the proxy has: ready ones that run. A tenant left down, or stopped on
    // purpose, is not routed.
    void set_routed(const std::string& name, bool routed);
    std::vector<TenantRecord> routed() const;

    // Why a ready tenant is not running ("" when it is).
    void set_problem(const std::string& name, const std::string& problem);
    std::string problem(const std::string& name) const;
    // A verb under way that changes whether the tenant serves ("restarting", "starting",
    // "stopping"; "" when none): what GET shows meanwhile. Held by the verb for its length.
    void set_activity(const std::string& name, const std::string& activity);
    std::string activity(const std::string& name) const;
    class Activity {
    public:
        Activity(Store& s, std::string name, const std::string& what) : s_(s), name_(std::move(name)) {
            s_.set_activity(name_, what);
        }
        ~Activity() { s_.set_activity(name_, ""); }
        Activity(const Activity&) = delete;
        Activity& operator=(const Activity&) = delete;

    private:
        Store& s_;
        std::string name_;
    };

    // Marks a tenant busy for the length of one operation; Errc::conflict if another runs.
    // Waits for the disk-full guard, which holds a tenant for milliseconds, never fails on it.
    class OpLock {
    public:
        OpLock(Store& s, const std::string& name);
        ~OpLock();
        OpLock(const OpLock&) = delete;
        OpLock& operator=(const OpLock&) = delete;

    private:
        Store& s_;
        std::string name_;
    };
    // The guard's hold: false (and nothing held) when an operation runs on the tenant.
    bool try_guard(const std::string& name);
    void release_guard(const std::string& name);
    bool busy(const std::string& name) const;

private:
    void bump();  // a new generation; under mu_

    const Config& cfg_;
    mutable std::mutex mu_;  // guards everything below
    uint64_t generation_ = 0;
    std::map<std::string, TenantRecord> records_;
    std::map<std::string, KeptStanza> kept_;
    std::set<std::string> busy_;
    std::set<std::string> guarding_;
    std::condition_variable guard_cv_;
    std::set<std::string> routed_;
    std::map<std::string, std::string> problems_;
    std::map<std::string, std::string> activities_;
};

}  // namespace hostd

#include "hostd/store.h"

#include <atomic>
#include <filesystem>

#include "base/error.h"
#include "base/fs.h"
#include "hostd/log.h"
#include "model/layout.h"
#include "model/record.h"

namespace hostd {

namespace {
std::atomic<uint64_t> generations{0};  // shared by every store: a generation names one state of one store
}  // namespace

void Store::bump() { generation_ = ++generations; }

uint64_t Store::generation() const {
    std::lock_guard g(mu_);
    return generation_;
}

void Store::load() {
    const std::string dir = layout::records_dir(cfg_);
    make_dirs(dir, 0700);
    std::lock_guard g(mu_);
    bump();
    for (auto& e : std::filesystem::directory_iterator(dir)) {
        auto p = e.path();
        if (p.extension() != ".toml" || p.filename().string().front() == '.') continue;
        try {
            auto t = from_toml(read_file(p.string()), p.string());
            if (t.state == TenantState::ready && !t.stopped) routed_.insert(t.name);
            records_[t.name] = std::move(t);
        } catch (const Error& e) {
            log::error(std::string("Skipping a tenant record: ") + e.what());
        }
    }
    log::info("Loaded " + std::to_string(records_.size()) + " tenant record(s) from " + dir);
    const std::string kdir = layout::kept_dir(cfg_);
    if (!path_exists(kdir)) return;
    for (auto& e : std::filesystem::directory_iterator(kdir)) {
        auto p = e.path();
        if (p.extension() != ".toml" || p.filename().string().front() == '.') continue;
        try {
            auto k = kept_from_toml(read_file(p.string()), p.string());
            kept_[k.name] = std::move(k);
        } catch (const Error& e) {
            log::error(std::string("Skipping a kept-backups record: ") + e.what());
        }
    }
    if (!kept_.empty()) log::info("Loaded " + std::to_string(kept_.size()) + " deleted tenant(s) whose backups are kept, from " + kdir);
}

void Store::save_kept(const KeptStanza& k) {
    make_dirs(layout::kept_dir(cfg_), 0700);
    write_file_atomic(layout::kept_record(cfg_, k.name), to_toml(k), 0600);
    std::lock_guard g(mu_);
    kept_[k.name] = k;
}

void Store::forget_kept(const std::string& name) {
    remove_file(layout::kept_record(cfg_, name));
    std::lock_guard g(mu_);
    kept_.erase(name);
}

std::optional<KeptStanza> Store::kept(const std::string& name) const {
    std::lock_guard g(mu_);
    auto it = kept_.find(name);
    if (it == kept_.end()) return std::nullopt;
    return it->second;
}

std::map<std::string, KeptStanza> Store::kept_all() const {
    std::lock_guard g(mu_);
    return kept_;
}

void Store::save(const TenantRecord& t) {
    write_file_atomic(layout_of(cfg_, t.name).record, to_toml(t), 0600);
    std::lock_guard g(mu_);
    records_[t.name] = t;
    bump();
}

void Store::forget(const std::string& name) {
    remove_file(layout_of(cfg_, name).record);
    std::lock_guard g(mu_);
    records_.erase(name);
    routed_.erase(name);
    problems_.erase(name);
    bump();
}

TenantRecord Store::get(const std::string& name) const {
    std::lock_guard g(mu_);
    auto it = records_.find(name);
    if (it == records_.end()) throw Error(Errc::not_found, "No tenant named '" + name + "'");
    return it->second;
}

std::vector<TenantRecord> Store::snapshot() const {
    std::lock_guard g(mu_);
    std::vector<TenantRecord> v;
    v.reserve(records_.size());
    for (auto& [_, t] : records_) v.push_back(t);
    return v;
}

void Store::set_routed(const std::string& name, bool routed) {
    std::lock_guard g(mu_);
    if (routed) routed_.insert(name);
    else routed_.erase(name);
}

std::vector<TenantRecord> Store::routed() const {
    std::lock_guard g(mu_);
    std::vector<TenantRecord> v;
    for (auto& name : routed_)
        if (auto it = records_.find(name); it != records_.end() && !it->second.stopped) v.push_back(it->second);
    return v;
}

void Store::set_problem(const std::string& name, const std::string& problem) {
    std::lock_guard g(mu_);
    auto it = problems_.find(name);
    if ((it == problems_.end() ? std::string() : it->second) == problem) return;  // the same: no new generation
    if (problem.empty()) problems_.erase(it);
    else problems_[name] = problem;
    bump();
}

std::string Store::problem(const std::string& name) const {
    std::lock_guard g(mu_);
    auto it = problems_.find(name);
    return it == problems_.end() ? "" : it->second;
}

void Store::set_activity(const std::string& name, const std::string& activity) {
    std::lock_guard g(mu_);
    if (activity.empty()) activities_.erase(name);
    else activities_[name] = activity;
}

std::string Store::activity(const std::string& name) const {
    std::lock_guard g(mu_);
    auto it = activities_.find(name);
    return it == activities_.end() ? "" : it->second;
}

Store::OpLock::OpLock(Store& s, const std::string& name) : s_(s), name_(name) {
    std::unique_lock g(s_.mu_);
    s_.guard_cv_.wait(g, [&] { return !s_.guarding_.count(name); });
    if (!s_.busy_.insert(name).second)
        throw Error(Errc::conflict, "Another operation on tenant '" + name + "' is in progress; try again when it ends");
}

Store::OpLock::~OpLock() {
    std::lock_guard g(s_.mu_);
    s_.busy_.erase(name_);
}

bool Store::try_guard(const std::string& name) {
    std::lock_guard g(mu_);
    if (busy_.count(name)) return false;  // an operation runs: the guard looks again next round
    guarding_.insert(name);
    return true;
}

void Store::release_guard(const std::string& name) {
    {
        std::lock_guard g(mu_);
        guarding_.erase(name);
    }
    guard_cv_.notify_all();
}

bool Store::busy(const std::string& name) const {
    std::lock_guard g(mu_);
    return busy_.count(name) > 0;
}

}  // namespace hostd

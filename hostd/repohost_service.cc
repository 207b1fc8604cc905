#include "hostd/repohost_service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "base/fs.h"
#include "hostd/log.h"
#include "units/systemd.h"
#include "units/users.h"

namespace hostd {

namespace {

using repohost::Names;
using repohost::Repo;

class RealRepoEffects : public RepoEffects {
public:
    backup::RunAs ensure_user(const std::string& name) override {
        auto u = units::find_user(name);
        if (!u) u = units::create_user(name, "/nonexistent", {ids_.first, ids_.second});
        else if (!u->hostd)
            throw Error(Errc::conflict, "The OS user '" + name + "' exists and is not hostd's: remove or rename it");
        return {u->uid, u->gid};
    }
    void delete_user(const std::string& name) override { units::delete_user(name); }
    void make_repo(const std::string& root, const std::string& host_dir, const std::string& repo, backup::RunAs owner) override {
        make_dirs(root, 0711);
        if (::chmod(root.c_str(), 0711) < 0) throw_errno(errno, "Failed to set the mode of '" + root + "'");
        backup::make_repository(host_dir, repo, owner);
    }
    void remove_repo(const std::string& repo, const std::string& host_dir) override {
        std::error_code ec;
        std::filesystem::remove_all(repo, ec);  // links are removed, never followed
        if (ec) throw Error(Errc::failed, "Failed to remove the repository '" + repo + "': " + ec.message());
        std::filesystem::remove(host_dir, ec);  // only when empty
    }
    void write_file(const std::string& path, const std::string& content, mode_t mode) override {
        make_dirs(path.substr(0, path.rfind('/')), 0700);
        write_file_atomic(path, content, mode);
    }
    void remove_file(const std::string& path) override { hostd::remove_file(path); }
    std::map<std::string, std::string> read_states(const std::string& dir) override {
        std::map<std::string, std::string> out;
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(dir, ec))
            if (e.is_regular_file() && e.path().extension() == ".toml") out[e.path()] = read_file(e.path());
        return out;
    }
    std::string read_log(const std::string& path) override {
        try {
            return read_file(path);
        } catch (const Error&) {
            return "";
        }
    }
    bool port_free(uint16_t port) override {
        // Free on every address: what bind() to the wildcard says.
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return false;
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_ANY);
        const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(fd);
        return ok;
    }
    void daemon_reload() override { units::Systemd::connect().daemon_reload(); }
    void start(const std::string& unit, int timeout_s) override {
        auto sd = units::Systemd::connect();
        sd.reset_failed(unit);
        sd.start(unit, std::chrono::seconds(timeout_s));
    }
    void restart(const std::string& unit) override { units::Systemd::connect().restart(unit); }
    void stop(const std::string& unit) override {
        auto sd = units::Systemd::connect();
        if (sd.status(unit).load_state == "loaded") sd.stop(unit);
        sd.reset_failed(unit);
    }
    bool failed(const std::string& unit) override { return units::Systemd::connect().status(unit).active_state == "failed"; }
    backup::RepoUsage usage(const std::string& repo) override { return backup::repository_usage(repo); }
    void ensure_cert(const std::string& cert, const std::string& key, const pgconf::CertRequest& req) override {
        if (::access(cert.c_str(), F_OK) == 0 && ::access(key.c_str(), F_OK) == 0) return;
        const pgconf::PemPair pair = pgconf::issue_cert(ca_, req);
        make_dirs(cert.substr(0, cert.rfind('/')), 0700);
        write_file_atomic(key, pair.key_pem, 0600);
        write_file_atomic(cert, pair.cert_pem, 0600);
    }

    std::pair<uint32_t, uint32_t> ids_;
    pgconf::CaPaths ca_;
};

constexpr int kBackupTimeout = 24 * 3600;
constexpr int kStanzaTimeout = 600;

}  // namespace

std::unique_ptr<RepoEffects> make_real_repo_effects(std::pair<uint32_t, uint32_t> user_ids, const pgconf::CaPaths& ca) {
    auto fx = std::make_unique<RealRepoEffects>();
    fx->ids_ = user_ids;
    fx->ca_ = ca;
    return fx;
}

repohost::Settings repo_settings(const Config& cfg, const std::string& self) {
    repohost::Settings s;
    s.self = self;
    auto [addr, port] = repohost::parse_listen(cfg.repository_listen, "repository.listen");
    s.listen_address = addr;
    s.listen_port = port;
    s.root = cfg.repository_root;
    s.ports = cfg.repository_ports;
    s.state_dir = cfg.state_dir + "/repos";
    s.hidden = {cfg.state_dir, "/etc/hostd", "/run/hostd"};
    if (!cfg.backup_repo.empty()) s.hidden.push_back(cfg.backup_repo);  // this host's own tenants' backups
    s.ca_cert = cfg.state_dir + "/ca/ca.crt";
    s.ca_key = cfg.state_dir + "/ca/ca.key";
    s.options.exe = cfg.pgbackrest;
    s.options.compress = cfg.backup_compress;
    s.options.retention_full = cfg.backup_retention_full;
    s.full_schedule = cfg.full_schedule;
    s.incr_schedule = cfg.incr_schedule;
    return s;
}

RepoHost::RepoHost(repohost::Settings s, std::string self, std::unique_ptr<RepoEffects> fx)
    : s_(std::move(s)), self_(std::move(self)), fx_(std::move(fx)) {
    s_.self = self_;
}

repohost::RepoView RepoHost::view(const Repo& r) const {
    const Names n = repohost::names_of(s_, r.host, r.tenant);
    return {.tenant = r.tenant, .port = r.port, .path = n.repo, .host = s_.self, .backup_client = repohost::backup_client_cn(s_, r)};
}

void RepoHost::write_units(const Repo& r) {
    const Names n = repohost::names_of(s_, r.host, r.tenant);
    fx_->ensure_cert(n.server_cert, n.server_key,
                     {.cn = repohost::server_cn(r), .names = {s_.self, s_.listen_address}, .server = true, .client = false});
    fx_->ensure_cert(n.client_cert, n.client_key,
                     {.cn = repohost::backup_client_cn(s_, r), .names = {}, .server = false, .client = true});
    for (const auto& [name, text] : repohost::render_units(s_, r)) fx_->write_file(s_.unit_dir + "/" + name, text, 0644);
}

void RepoHost::install(const Repo& r) {
    write_units(r);
    fx_->daemon_reload();
}

void RepoHost::uninstall(const Repo& r) {
    const Names n = repohost::names_of(s_, r.host, r.tenant);
    std::vector<std::string> units;
    for (auto t : {backup::BackupType::full, backup::BackupType::diff, backup::BackupType::incr}) {
        units.push_back(n.timer(t));
        units.push_back(n.backup_unit(t));
    }
    units.push_back(n.stanza_unit);
    units.push_back(n.server_unit);
    for (const auto& u : units) {
        try {
            fx_->stop(u);
        } catch (const std::exception& e) {
            log::warning("Repository " + n.id + ": stopping " + u + ": " + e.what());
        }
        fx_->remove_file(s_.unit_dir + "/" + u);
        fx_->remove_file(n.log(u));
    }
    for (const auto& f : {n.server_cert, n.server_key, n.client_cert, n.client_key}) fx_->remove_file(f);
    fx_->daemon_reload();
}

void RepoHost::stanza_create(const Repo& r) {
    const Names n = repohost::names_of(s_, r.host, r.tenant);
    try {
        fx_->start(n.stanza_unit, kStanzaTimeout);
    } catch (const std::exception& e) {
        std::string msg = repohost::failure_of(fx_->read_log(n.log(n.stanza_unit)));
        throw UpstreamError("pgBackRest's stanza-create for tenant '" + r.tenant + "' of host '" + r.host + "' (pg1-host " +
                            r.pg.host + ":" + std::to_string(r.pg.server_port) + ") failed: " +
                            (msg.empty() ? std::string(e.what()) : msg));
    }
}

std::optional<Repo> RepoHost::find(const std::string& id) {
    auto it = repos_.find(id);
    if (it == repos_.end()) return std::nullopt;
    return it->second;
}

void RepoHost::reconcile() {
    std::lock_guard g(mu_);
    for (const auto& [path, text] : fx_->read_states(s_.state_dir)) {
        try {
            Repo r = repohost::parse_state(text, path);
            const Names n = repohost::names_of(s_, r.host, r.tenant);
            if (r.pending) {
                undo_pending(r);
                continue;
            }
            repos_[n.id] = r;
            write_units(r);
        } catch (const std::exception& e) {
            log::error("Repository host: " + std::string(e.what()));
        }
    }
    if (repos_.empty()) return;
    fx_->daemon_reload();
    for (const auto& [id, r] : repos_) {
        const Names n = repohost::names_of(s_, r.host, r.tenant);
        try {
            fx_->restart(n.server_unit);
            for (const auto& t : repohost::timers(s_, r)) fx_->start(t, 60);
        } catch (const std::exception& e) {
            log::error("Repository " + id + ": " + e.what());
        }
    }
    log::info("Repository host: " + std::to_string(repos_.size()) + " repositories served");
}

repohost::RepoView RepoHost::put(const std::string& host, const std::string& tenant, const repohost::PgHost& pg) {
    repohost::validate_host(host);
    repohost::validate_tenant(tenant);
    repohost::validate(pg);
    std::lock_guard g(mu_);
    const Names n = repohost::names_of(s_, host, tenant);
    if (auto old = find(n.id)) {
        if (old->pg == pg && !old->retired) {
            fx_->start(n.server_unit, 60);
            return view(*old);
        }
        // Changed: the same port and repository, new units and a stanza-create against them.
        Repo r = *old;
        r.pg = pg;
        r.retired = false;  // its tenant is back (a reuse of its kept data)
        install(r);
        try {
            fx_->restart(n.server_unit);
            stanza_create(r);
            for (const auto& t : repohost::timers(s_, r)) fx_->start(t, 60);
        } catch (...) {
            install(*old);
            try {
                fx_->restart(n.server_unit);
            } catch (const std::exception& e) {
                log::error("Repository " + n.id + ": restarting its server after a failed update: " + e.what());
            }
            throw;
        }
        fx_->write_file(n.state_file, repohost::render_state(r), 0600);
        repos_[n.id] = r;
        return view(r);
    }
    for (const auto& [id, other] : repos_)
        if (repohost::names_of(s_, other.host, other.tenant).user == n.user)
            throw Error(Errc::conflict, "The OS user name of this repository (" + n.user + ") is taken by repository " + id);
    std::set<uint16_t> used;
    for (const auto& [id, other] : repos_) used.insert(other.port);
    used.insert(s_.listen_port);
    auto port = repohost::pick_port(s_.ports, used, [&](uint16_t p) { return fx_->port_free(p); });
    if (!port)
        throw Error(Errc::unavailable, "No free port in repository.ports (" + std::to_string(s_.ports.first) + "-" +
                                           std::to_string(s_.ports.second) + ") for another repository server: widen it");
    Repo r{.host = host, .tenant = tenant, .port = *port, .pg = pg, .pending = true};
    // Undone in reverse when any step fails: a failed PUT leaves nothing. Recorded as pending
    // first: after a crash in between, the next start undoes it.
    bool user = false, dir = false, units = false;
    try {
        fx_->write_file(n.state_file, repohost::render_state(r), 0600);
        const backup::RunAs owner = fx_->ensure_user(n.user);
        user = true;
        fx_->make_repo(s_.root, n.host_dir, n.repo, owner);
        dir = true;
        units = true;
        install(r);
        fx_->start(n.server_unit, 60);
        stanza_create(r);
        for (const auto& t : repohost::timers(s_, r)) fx_->start(t, 60);
        r.pending = false;
        fx_->write_file(n.state_file, repohost::render_state(r), 0600);
    } catch (...) {
        try {
            if (units) uninstall(r);
            if (dir) fx_->remove_repo(n.repo, n.host_dir);
            if (user) fx_->delete_user(n.user);
            fx_->remove_file(n.state_file);
        } catch (const std::exception& e) {
            log::error("Repository " + n.id + ": undoing a failed creation: " + e.what());
        }
        throw;
    }
    repos_[n.id] = r;
    log::info("Repository " + n.id + " served on port " + std::to_string(r.port));
    return view(r);
}

void RepoHost::backup(const std::string& host, const std::string& tenant, backup::BackupType type) {
    repohost::validate_tenant(tenant);
    Names n;
    {
        std::lock_guard g(mu_);
        n = repohost::names_of(s_, host, tenant);
        auto r = find(n.id);
        if (!r) throw Error(Errc::not_found, "No repository of tenant '" + tenant + "' of host '" + host + "' here");
        if (r->retired)
            throw Error(Errc::conflict, "Tenant '" + tenant + "' of host '" + host + "' was deleted: its repository is kept for "
                                        "branches and restores only, and takes no new backup");
    }
    const std::string unit = n.backup_unit(type);
    try {
        fx_->start(unit, kBackupTimeout);
    } catch (const std::exception& e) {
        std::string msg = repohost::failure_of(fx_->read_log(n.log(unit)));
        throw UpstreamError("The " + std::string(backup::to_string(type)) + " backup of tenant '" + tenant + "' failed: " +
                            (msg.empty() ? std::string(e.what()) : msg));
    }
}

repohost::RepoView RepoHost::get(const std::string& host, const std::string& tenant) {
    repohost::validate_tenant(tenant);
    Repo r;
    {
        std::lock_guard g(mu_);
        auto found = find(repohost::names_of(s_, host, tenant).id);
        if (!found) throw Error(Errc::not_found, "No repository of tenant '" + tenant + "' of host '" + host + "' here");
        r = *found;
    }
    const Names n = repohost::names_of(s_, host, tenant);
    repohost::RepoView v = view(r);
    v.retired = r.retired;
    const backup::RepoUsage u = fx_->usage(n.repo);
    v.bytes = u.bytes;
    v.last_wal = u.last_wal;
    for (auto t : {backup::BackupType::full, backup::BackupType::incr, backup::BackupType::diff})
        if (fx_->failed(n.backup_unit(t))) {
            v.last_backup_error = repohost::failure_of(fx_->read_log(n.log(n.backup_unit(t))));
            if (v.last_backup_error.empty()) v.last_backup_error = "the " + std::string(backup::to_string(t)) + " backup failed";
            break;
        }
    return v;
}

void RepoHost::destroy(const Repo& r) {
    const Names n = repohost::names_of(s_, r.host, r.tenant);
    uninstall(r);
    fx_->remove_repo(n.repo, n.host_dir);
    fx_->delete_user(n.user);
    fx_->remove_file(n.state_file);
}

void RepoHost::undo_pending(const Repo& r) {
    log::warning("Repository " + repohost::names_of(s_, r.host, r.tenant).id +
                 ": its creation did not finish (hostd stopped during its PUT); undoing it");
    destroy(r);
}

void RepoHost::retire(const std::string& host, const std::string& tenant) {
    repohost::validate_tenant(tenant);
    std::lock_guard g(mu_);
    const Names n = repohost::names_of(s_, host, tenant);
    auto r = find(n.id);
    if (!r) throw Error(Errc::not_found, "No repository of tenant '" + tenant + "' of host '" + host + "' here");
    if (r->retired) return;
    // Recorded first: a crash after it still comes back retired (reconcile starts no timer).
    Repo retired = *r;
    retired.retired = true;
    fx_->write_file(n.state_file, repohost::render_state(retired), 0600);
    repos_[n.id] = retired;
    for (auto t : {backup::BackupType::full, backup::BackupType::diff, backup::BackupType::incr}) {
        fx_->stop(n.timer(t));
        fx_->remove_file(s_.unit_dir + "/" + n.timer(t));
    }
    fx_->daemon_reload();
    log::info("Repository " + n.id + " retired: its tenant was deleted, its backups are kept (no more scheduled backups)");
}

void RepoHost::remove(const std::string& host, const std::string& tenant) {
    repohost::validate_tenant(tenant);
    std::lock_guard g(mu_);
    const Names n = repohost::names_of(s_, host, tenant);
    auto r = find(n.id);
    if (!r) throw Error(Errc::not_found, "No repository of tenant '" + tenant + "' of host '" + host + "' here");
    destroy(*r);
    repos_.erase(n.id);
    log::info("Repository " + n.id + " removed");
}

}  // namespace hostd

// The repository-host role's operations (hostd.toml [repository]; repohost/repohost.h): each
// repository kept here for another host's tenant gets an OS user, a directory, a pgbackrest
// server unit, a stanza-create, backup units and timers; all of it persisted as one state file,
// so a start of hostd (reconcile) runs every server again. The effects are behind RepoEffects
// (the real ones: users, files, systemd), as the Manager's are behind Effects.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backup/ops.h"
#include "base/error.h"
#include "model/config.h"
#include "pgconf/tls.h"
#include "repohost/repohost.h"

namespace hostd {

// pgBackRest itself failed (stanza-create, a backup): the API answers 502 with its message.
class UpstreamError : public Error {
public:
    explicit UpstreamError(const std::string& what) : Error(Errc::failed, what) {}
};

class RepoEffects {
public:
    virtual ~RepoEffects() = default;
    // The repository's OS user (hostd's marker), made when missing.
    virtual backup::RunAs ensure_user(const std::string& name) = 0;
    virtual void delete_user(const std::string& name) = 0;
    // root and host_dir root's 0711, repo the owner's 0700.
    virtual void make_repo(const std::string& root, const std::string& host_dir, const std::string& repo, backup::RunAs owner) = 0;
    virtual void remove_repo(const std::string& repo, const std::string& host_dir) = 0;  // and host_dir when empty
    virtual void write_file(const std::string& path, const std::string& content, mode_t mode) = 0;
    virtual void remove_file(const std::string& path) = 0;
    virtual std::map<std::string, std::string> read_states(const std::string& dir) = 0;  // path → text
    virtual std::string read_log(const std::string& path) = 0;  // "" when missing
    virtual bool port_free(uint16_t port) = 0;
    virtual void daemon_reload() = 0;
    virtual void start(const std::string& unit, int timeout_s) = 0;  // waits for the job; throws when it failed
    virtual void restart(const std::string& unit) = 0;
    virtual void stop(const std::string& unit) = 0;  // and reset-failed; a unit not loaded is fine
    virtual bool failed(const std::string& unit) = 0;
    virtual backup::RepoUsage usage(const std::string& repo) = 0;
    // A certificate from the CA at cert and its key at key (root's, 0600), unless both are there.
    virtual void ensure_cert(const std::string& cert, const std::string& key, const pgconf::CertRequest& req) = 0;
};
std::unique_ptr<RepoEffects> make_real_repo_effects(std::pair<uint32_t, uint32_t> user_ids, const pgconf::CaPaths& ca);

// [repository] and [backup] of cfg as the role uses them; self: this host's name.
repohost::Settings repo_settings(const Config& cfg, const std::string& self);

class RepoHost {
public:
    // self: this host's name (the CN hostd@<self> its backups reach tenant hosts with).
    RepoHost(repohost::Settings s, std::string self, std::unique_ptr<RepoEffects> fx);

    // At start: every repository of the state dir gets its units written and its server and
    // timers started. One that fails is logged and left; the others go on.
    void reconcile();

    // host: the client's, from its certificate. Idempotent; a changed body updates the units and
    // runs stanza-create again. Nothing is left behind when a new repository fails.
    repohost::RepoView put(const std::string& host, const std::string& tenant, const repohost::PgHost& pg);
    void backup(const std::string& host, const std::string& tenant, backup::BackupType type);
    repohost::RepoView get(const std::string& host, const std::string& tenant);
    void remove(const std::string& host, const std::string& tenant);
    // Its tenant was deleted with its backups kept: its timers stopped and removed, backups on
    // demand refused, its server left serving (restores, branches). Idempotent.
    void retire(const std::string& host, const std::string& tenant);

    const repohost::Settings& settings() const { return s_; }

private:
    repohost::RepoView view(const repohost::Repo& r) const;
    void install(const repohost::Repo& r);   // certificates and unit files written, daemon-reload
    void write_units(const repohost::Repo& r);
    void uninstall(const repohost::Repo& r); // units stopped and removed
    void destroy(const repohost::Repo& r);       // units, repository, OS user and state file gone
    void undo_pending(const repohost::Repo& r);  // all a PUT cut short made (destroy, logged)
    void stanza_create(const repohost::Repo& r);
    std::optional<repohost::Repo> find(const std::string& id);

    repohost::Settings s_;
    std::string self_;
    std::unique_ptr<RepoEffects> fx_;
    std::mutex mu_;
    std::map<std::string, repohost::Repo> repos_;  // by Names::id
};

}  // namespace hostd

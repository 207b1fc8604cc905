// A deleted tenant's backups, kept: after `delete --purge` (without purge_backups) its disk is
// gone but its pgBackRest stanza stays, for branches, until backup.deleted_retention days pass or
// a purge of the backups says so. Its OS user stays too (locked, never logs in): the repository
// is that uid's, and as long as the user exists no tenant can be given the uid (nor the name).
// Pure: the record, its TOML, and the rules (what a delete does, what expires, which names are taken).
#pragma once

#include <cstdint>
#include <ctime>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/strings.h"
#include "model/tenant.h"

namespace hostd {

struct KeptStanza {
    std::string name;
    std::string deleted_at;   // RFC 3339, UTC: when its disk was purged
    std::string repository;   // <backup.repo>/<name>, or with a repository host its files here
                              // (<backup_remote>/<name>: configuration and client certificate)
    std::string repository_host;  // backup.repo_host when it was deleted ("" a local repository)
    uint32_t uid = 0, gid = 0;  // the OS user that owns the repository (kept while it is)
    // What a branch takes from its source: the tenant as it was recorded (spec, admin user,
    // OS user, port). No password: a branch gets its own.
    TenantRecord tenant;
};

std::string to_toml(const KeptStanza& k);
// Errc::invalid naming the source on a bad file.
KeptStanza kept_from_toml(std::string_view text, const std::string& source);

// The kept record of a tenant purged at deleted_at (its password dropped).
KeptStanza kept_of(const TenantRecord& t, const std::string& deleted_at, const std::string& repository, uint32_t gid,
                   const std::string& repository_host = "");

// What a delete does with a tenant's OS user and its repository.
struct StanzaFate {
    bool keep_user = false;    // the repository stays: its owner's uid stays taken
    bool remove_repo = false;  // the backups go (purge_backups, or a create rolled back)
    bool record = false;       // a KeptStanza is written (the tenant record goes)
};
// backups_on: backup.repo or backup.repo_host set; repo_exists: the tenant's backup_dir is there.
// purge_backups only with purge (the backups of a tenant whose data is kept stay with it).
StanzaFate stanza_fate(bool backups_on, bool repo_exists, bool purge, bool purge_backups);

// When a kept stanza expires: deleted_at + retention_days; 0 days (keep until purged by hand)
// or an unreadable deleted_at: never (0).
std::time_t kept_until(const KeptStanza& k, uint64_t retention_days);
// The names whose kept stanza has expired at now, in name order.
std::vector<std::string> expired_stanzas(const std::map<std::string, KeptStanza>& kept, std::time_t now,
                                         uint64_t retention_days);

// A new tenant may not take the name of a deleted one whose backups are kept (the stanza, its
// repository and its OS user are that name's): Errc::conflict saying what to do.
void check_name_not_kept(std::string_view name, const std::map<std::string, KeptStanza>& kept, uint64_t retention_days);

std::time_t parse_rfc3339(std::string_view s);  // 0 when not "YYYY-MM-DDTHH:MM:SSZ"

}  // namespace hostd

#include "model/kept.h"

#include <cstdio>
#include <sstream>
#include <toml++/toml.h>

#include "base/error.h"
#include "model/record.h"

namespace hostd {

std::string to_toml(const KeptStanza& k) {
    toml::table kept{
        {"deleted_at", k.deleted_at},
        {"repository", k.repository},
        {"uid", static_cast<int64_t>(k.uid)},
        {"gid", static_cast<int64_t>(k.gid)},
    };
    if (!k.repository_host.empty()) kept.insert("repository_host", k.repository_host);
    std::ostringstream o;
    // The tenant as it was recorded, then what its backups' keeping adds.
    o << to_toml(k.tenant) << "\n[kept]\n" << kept << "\n";
    return o.str();
}

KeptStanza kept_from_toml(std::string_view text, const std::string& source) {
    toml::table doc;
    try {
        doc = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        throw Error(Errc::invalid, "Failed to parse kept-backups record " + source + ": " + std::string(e.description()));
    }
    KeptStanza k;
    k.tenant = from_toml(text, source);
    k.name = k.tenant.name;
    auto kt = doc["kept"];
    k.deleted_at = kt["deleted_at"].value_or(std::string{});
    k.repository = kt["repository"].value_or(std::string{});
    k.uid = static_cast<uint32_t>(kt["uid"].value_or(int64_t{0}));
    k.gid = static_cast<uint32_t>(kt["gid"].value_or(int64_t{0}));
    k.repository_host = kt["repository_host"].value_or(std::string{});
    if (k.repository.empty() || k.uid == 0)
        throw Error(Errc::invalid, "Kept-backups record " + source + " lacks its repository or its owner's uid");
    return k;
}

KeptStanza kept_of(const TenantRecord& t, const std::string& deleted_at, const std::string& repository, uint32_t gid,
                   const std::string& repository_host) {
    KeptStanza k{.name = t.name, .deleted_at = deleted_at, .repository = repository, .repository_host = repository_host,
                 .uid = t.uid, .gid = gid, .tenant = t};
    k.tenant.password.clear();
    k.tenant.password_pending.clear();
    k.tenant.state = TenantState::detached;  // never served again; only its backups remain
    k.tenant.step.clear();
    k.tenant.reuse = k.tenant.purge = k.tenant.purge_backups = false;
    k.tenant.device.clear();
    k.tenant.device_id.clear();
    k.tenant.image.clear();
    return k;
}

StanzaFate stanza_fate(bool backups_on, bool repo_exists, bool purge, bool purge_backups) {
    if (!backups_on || !repo_exists) return {};
    if (purge && purge_backups) return {.keep_user = false, .remove_repo = true, .record = false};
    if (purge) return {.keep_user = true, .remove_repo = false, .record = true};
    return {.keep_user = true, .remove_repo = false, .record = false};  // detached: its record holds it
}

std::time_t parse_rfc3339(std::string_view s) {
    if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
        return 0;
    std::tm tm{};
    const std::string str(s);
    if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                    &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

std::time_t kept_until(const KeptStanza& k, uint64_t retention_days) {
    const std::time_t at = parse_rfc3339(k.deleted_at);
    if (retention_days == 0 || at == 0) return 0;
    return at + static_cast<std::time_t>(retention_days) * 86400;
}

std::vector<std::string> expired_stanzas(const std::map<std::string, KeptStanza>& kept, std::time_t now,
                                         uint64_t retention_days) {
    std::vector<std::string> out;
    for (const auto& [name, k] : kept)
        if (std::time_t until = kept_until(k, retention_days); until != 0 && until <= now) out.push_back(name);
    return out;
}

void check_name_not_kept(std::string_view name, const std::map<std::string, KeptStanza>& kept, uint64_t retention_days) {
    auto it = kept.find(std::string(name));
    if (it == kept.end()) return;
    const std::string n(name);
    const std::time_t until = kept_until(it->second, retention_days);
    throw Error(Errc::conflict,
                "Tenant '" + n + "' was deleted at " + it->second.deleted_at + " and its backups are kept (" +
                    (until ? "until " + format_rfc3339(until) : std::string("until they are purged")) +
                    "); the name stays theirs meanwhile. Branch from them (create NEW --from " + n +
                    "), purge them (hostctl delete " + n + " --purge --purge-backups), or pick another name",
                "name");
}

}  // namespace hostd

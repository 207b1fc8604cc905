#include "cli/present.h"

#include <algorithm>
#include <cstdio>

#include "base/size.h"
#include "base/strings.h"

namespace hostd {
namespace {

std::string size_or_dash(const std::optional<uint64_t>& v) { return v ? format_size(*v) : "-"; }

}  // namespace

std::string state_word(const TenantView& t) { return t.live.state.empty() ? std::string(to_string(t.state)) : t.live.state; }

std::vector<std::vector<std::string>> tenant_rows(const std::vector<TenantView>& tenants) {
    std::vector<std::vector<std::string>> rows{{"NAME", "STATE", "PORT", "DISK", "MEMORY", "CPU", "IO", "URL"}};
    for (auto& t : tenants) {
        const LiveStatus none;
        const LiveStatus& st = t.status ? *t.status : none;
        std::string cpu = format_number(t.spec.cpu);
        if (st.cpu_usage_nsec) {
            char used[32];
            std::snprintf(used, sizeof used, " (%.1fs)", static_cast<double>(*st.cpu_usage_nsec) / 1e9);
            cpu += used;
        }
        std::optional<uint64_t> disk_used;
        if (st.disk) disk_used = st.disk->bytes_used;
        rows.push_back({t.name, state_word(t), t.public_port ? std::to_string(t.public_port) : "-",
                        size_or_dash(disk_used) + "/" + format_size(t.spec.disk_size),
                        size_or_dash(st.memory_current) + "/" + format_size(t.spec.memory), cpu,
                        st.io_read_bytes || st.io_write_bytes
                            ? size_or_dash(st.io_read_bytes) + "/" + size_or_dash(st.io_write_bytes)
                            : "-",
                        t.url.empty() ? "-" : t.url});
    }
    return rows;
}

std::vector<std::vector<std::string>> tenant_details(const TenantView& t) {
    std::vector<std::vector<std::string>> rows;
    auto add = [&](const char* k, const std::string& v) {
        if (!v.empty()) rows.push_back({std::string(k) + ":", v});
    };
    add("name", t.name);
    add("state", std::string(to_string(t.state)));
    if (t.live.state != to_string(t.state)) add("status", t.live.state);
    // A disk that is gone says itself how the tenant comes back (hostctl restore), not start.
    const bool disk_gone = t.live.reason.find("disk missing") != std::string::npos;
    add("reason", t.live.reason + (t.live.state == "down" && t.problem.empty() && !disk_gone
                                       ? "; hostctl start (or reconcile) starts it again" : ""));
    add("step", t.step);
    add("url", t.url);
    add("read_only_url", t.read_only_url);
    add("admin_user", t.admin_user);
    add("password", t.password.value_or(""));
    add("public_port", std::to_string(t.public_port));
    add("port", std::to_string(t.port));
    add("backend", t.spec.backend);
    add("device", t.device);
    add("device_id", t.device_id);
    add("image", t.image);
    add("filesystem", t.spec.filesystem);
    add("fs_uuid", t.fs_uuid);
    add("label", t.label);
    add("mountpoint", t.mountpoint);
    add("unit", t.unit);
    add("os_user", t.os_user);
    add("created_at", t.created_at);
    rows.push_back({"disk_size:", format_size(t.spec.disk_size)});
    rows.push_back({"memory:", format_size(t.spec.memory)});
    rows.push_back({"cpu:", format_number(t.spec.cpu)});
    rows.push_back({"tasks:", std::to_string(t.spec.tasks)});
    rows.push_back({"io_weight:", t.spec.io_weight ? std::to_string(t.spec.io_weight) : "100 (systemd's default)"});
    // Each override, and whether PostgreSQL still runs with another value until a restart.
    bool first = true;
    for (auto& [k, v] : t.spec.settings) {
        std::string row = k + " = " + v;
        if (t.pending_restart && std::find(t.pending_restart->begin(), t.pending_restart->end(), k) != t.pending_restart->end())
            row += "  (waits for a restart)";
        rows.push_back({first ? "settings:" : "", row});
        first = false;
    }
    if (first) rows.push_back({"settings:", "none (PostgreSQL's and hostd's values)"});
    // Settings changed outside the overrides (ALTER SYSTEM) that wait too.
    if (t.pending_restart)
        for (auto& k : *t.pending_restart)
            if (!t.spec.settings.count(k)) rows.push_back({"pending_restart:", k + " (not an override: hostd's tuning of the limits, or ALTER SYSTEM)"});
    if (!t.spec.extensions.empty()) {
        std::string list;
        for (const auto& e : t.spec.extensions) list += (list.empty() ? "" : ", ") + e;
        rows.push_back({"extensions:", list});
    }
    if (t.ha) {
        const HaView& h = *t.ha;
        std::string mode = h.synchronous ? (h.strict ? "synchronous (strict)" : "synchronous") : "asynchronous";
        std::string leader = h.leader.empty() ? "leader unknown" : "leader " + h.leader;
        if (h.timeline) leader += ", timeline " + std::to_string(*h.timeline);
        if (!h.source.empty()) leader += " (as " + h.source + "'s Patroni tells)";
        rows.push_back({"ha:", std::to_string(t.members.size()) + " members, " + mode + ", " + leader});
    }
    if (t.read_only) rows.push_back({"read_only:", "yes: the disk is nearly full (hostd's disk-full guard); free space or resize"});
    if (t.problem != t.live.reason) add("problem", t.problem);
    if (t.status) {
        const LiveStatus& s = *t.status;
        if (s.unit_error.empty()) {
            std::string unit = s.active_state.empty() ? "not loaded" : s.active_state + " (" + s.sub_state + ")";
            if (!s.result.empty() && s.result != "success") unit += ", result " + s.result;
            rows.push_back({"unit_state:", unit});
            if (!s.last_exit.empty()) rows.push_back({"last_exit:", "PostgreSQL " + s.last_exit});
            rows.push_back({"restarts:", std::to_string(s.restarts) + " (by systemd, since the unit was loaded)"});
        }
        if (s.memory_current) rows.push_back({"memory_used:", format_size(*s.memory_current)});
        if (s.disk)
            rows.push_back({"disk_used:", format_size(s.disk->bytes_used) + " of " + format_size(s.disk->bytes_total) +
                                              ", inodes " + std::to_string(s.disk->inodes_used) + " of " +
                                              std::to_string(s.disk->inodes_total)});
    }
    return rows;
}

std::vector<std::vector<std::string>> member_rows(const std::vector<MemberView>& members) {
    std::vector<std::vector<std::string>> rows{{"HOST", "ROLE", "STATE", "LAG", "TL", "SYNC"}};
    for (const auto& m : members)
        rows.push_back({m.host, m.role.empty() ? "unknown" : m.role, m.state.empty() ? "unknown" : m.state,
                        m.lag_bytes ? format_size(*m.lag_bytes) : "-", m.timeline ? std::to_string(*m.timeline) : "-",
                        m.sync ? "yes" : "-"});
    return rows;
}

std::string settings_line(const Settings& settings) {
    if (settings.empty()) return "none";
    std::string out;
    for (auto& [k, v] : settings) out += (out.empty() ? "" : ", ") + k + "=" + v;
    return out;
}

std::vector<std::vector<std::string>> host_rows(const HostInfo& h) {
    std::vector<std::vector<std::string>> rows{{"RESOURCE", "COMMITTED", "HOST", "FREE", "NOTE"}};
    const uint64_t detached = h.tenants - std::min(h.tenants, h.tenants_active);
    rows.push_back({"tenants", std::to_string(h.tenants_active), "-", "-",
                    detached ? std::to_string(detached) + " deleted with their data kept" : ""});
    std::string memory_note = h.memory_overcommit > 0
                                  ? "limits.memory_overcommit " + format_number(h.memory_overcommit) + ": up to " +
                                        format_size(static_cast<uint64_t>(static_cast<long double>(h.memory_total) *
                                                                          h.memory_overcommit))
                                  : "no limit (limits.memory_overcommit = 0)";
    rows.push_back({"memory", format_size(h.memory_committed), format_size(h.memory_total), format_size(h.memory_free),
                    memory_note});
    rows.push_back({"cpu", format_number(h.cpu_committed), std::to_string(h.cpus), "-",
                    "CPU quotas share the CPUs; they are not reserved"});
    rows.push_back({"disk", format_size(h.disk_committed), "-", format_size(h.loop_dir_available),
                    "free: the space under the loop backend's directory"});
    rows.push_back({"ports", std::to_string(h.ports_total - std::min(h.ports_total, h.ports_free)),
                    std::to_string(h.ports_total), std::to_string(h.ports_free),
                    h.ports_detached ? std::to_string(h.ports_detached) + " tenants deleted without purge hold theirs"
                                     : ""});
    return rows;
}

std::string step_line(std::string_view step, long ms) {
    std::string s = "  " + std::string(step);
    if (s.size() < 16) s.append(16 - s.size(), ' ');
    else s += ' ';
    std::string n = std::to_string(ms);
    if (n.size() < 6) s.append(6 - n.size(), ' ');
    return s + n + " ms";
}

std::string spinner_line(size_t frame, std::string_view what, long elapsed_ms) {
    static const char* frames[] = {"|", "/", "-", "\\"};
    char secs[32];
    std::snprintf(secs, sizeof secs, "%ld.%ld s", elapsed_ms / 1000, (elapsed_ms % 1000) / 100);
    return std::string(frames[frame % 4]) + " " + std::string(what) + " " + secs;
}

std::string url_without_password(std::string_view url) {
    // scheme://user:password@host...: the password is percent-encoded, so the user part ends
    // at the first '@' (and a URL without one has no password).
    const auto start = url.find("://");
    if (start == std::string_view::npos) return std::string(url);
    const auto user = start + 3;
    const auto at = url.find('@', user);
    const auto end_of_authority = url.find_first_of("/?", user);
    if (at == std::string_view::npos || (end_of_authority != std::string_view::npos && at > end_of_authority))
        return std::string(url);
    const auto colon = url.find(':', user);
    if (colon == std::string_view::npos || colon > at) return std::string(url);
    return std::string(url.substr(0, colon)) + std::string(url.substr(at));
}

std::vector<std::vector<std::string>> backup_rows(const BackupList& b) {
    std::vector<std::vector<std::string>> rows{{"LABEL", "TYPE", "FINISHED", "SIZE", "REPO", "WAL"}};
    for (const auto& v : b.backups)
        rows.push_back({v.label, v.type, v.finished_at, format_size(v.size), format_size(v.repo_size),
                        v.wal_start + ".." + v.wal_stop});
    return rows;
}

std::vector<std::vector<std::string>> kept_rows(const std::vector<KeptView>& kept) {
    std::vector<std::vector<std::string>> rows{{"NAME", "DELETED", "KEPT-UNTIL", "DISK", "MEMORY", "OWNER", "REPOSITORY"}};
    for (const auto& k : kept)
        rows.push_back({k.name, k.deleted_at, k.kept_until.empty() ? "purged by hand" : k.kept_until, format_size(k.disk_size),
                        format_size(k.memory), k.os_user + " (uid " + std::to_string(k.uid) + ")",
                        k.repository_host.empty() ? k.repository : "on " + k.repository_host});
    return rows;
}

std::string format_age(std::time_t seconds) {
    if (seconds < 0) seconds = 0;
    char buf[48];
    if (seconds < 120) std::snprintf(buf, sizeof buf, "%lld s", static_cast<long long>(seconds));
    else if (seconds < 3600) std::snprintf(buf, sizeof buf, "%lld min", static_cast<long long>(seconds / 60));
    else if (seconds < 86400)
        std::snprintf(buf, sizeof buf, "%lld h %02lld min", static_cast<long long>(seconds / 3600), static_cast<long long>(seconds % 3600 / 60));
    else std::snprintf(buf, sizeof buf, "%lld d %02lld h", static_cast<long long>(seconds / 86400), static_cast<long long>(seconds % 86400 / 3600));
    return buf;
}

namespace {
std::string failure_text(const BackupFailure& f, std::time_t now) {
    return f.type + " backup " + (f.by == "schedule" ? "(scheduled)" : "(on request)") + " " +
           (now ? format_age(now - f.at) + " ago" : "at " + std::to_string(f.at)) + ": " + f.message;
}
}  // namespace

std::vector<std::vector<std::string>> backup_health_rows(const BackupHealth& h, std::time_t now) {
    std::vector<std::vector<std::string>> rows;
    if (!h.checked && !h.last_failure) {
        rows.push_back({"backup:", "not looked at yet (hostd reads each repository in the background)"});
        return rows;
    }
    rows.push_back({"last_backup:", h.last_backup ? h.last_type + " " + h.last_label + ", " + format_age(now - h.last_backup) + " ago"
                                                  : "none yet (hostctl backup, or its timers)"});
    if (h.last_full && h.last_type != "full") rows.push_back({"last_full:", format_age(now - h.last_full) + " ago"});
    rows.push_back({"last_wal:", h.last_wal ? "archived " + format_age(now - h.last_wal) + " ago" : "none archived yet"});
    if (h.repo_bytes) rows.push_back({"repository:", format_size(*h.repo_bytes) + " on disk"});
    if (!h.error.empty()) rows.push_back({"repo_error:", h.error});
    if (h.last_failure)
        rows.push_back({h.failing() ? "backup_failing:" : "last_failure:",
                        failure_text(*h.last_failure, now) + (h.failing() ? "" : " (a backup succeeded since)")});
    return rows;
}

std::string backup_failure_line(const BackupList& b) {
    if (!b.last_failure) return "";
    return std::string(b.failing ? "Failing: the newest attempt failed, " : "Last failure (a backup succeeded since): ") +
           failure_text(*b.last_failure, std::time(nullptr));
}

}  // namespace hostd

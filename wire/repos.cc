#include "wire/repos.h"

#include "base/error.h"

namespace hostd::wire {

using nlohmann::json;

namespace {

void object_of(const json& body, std::initializer_list<const char*> keys) {
    if (!body.is_object()) throw Error(Errc::invalid, "The request body must be a JSON object", "body");
    for (auto it = body.begin(); it != body.end(); ++it) {
        bool known = false;
        for (const char* k : keys) known = known || it.key() == k;
        if (!known) throw Error(Errc::invalid, "Unknown field '" + it.key() + "'", it.key());
    }
}

std::string text(const json& body, const char* key, bool required, const std::string& fallback = "") {
    if (!body.contains(key)) {
        if (required) throw Error(Errc::invalid, std::string("'") + key + "' is required", key);
        return fallback;
    }
    if (!body[key].is_string()) throw Error(Errc::invalid, std::string("'") + key + "' must be a string", key);
    return body[key].get<std::string>();
}

uint16_t port(const json& body, const char* key) {
    if (!body.contains(key)) throw Error(Errc::invalid, std::string("'") + key + "' is required", key);
    const json& v = body[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 65535)
        throw Error(Errc::invalid, std::string("'") + key + "' must be a port, an integer 1-65535", key);
    return static_cast<uint16_t>(v.get<int64_t>());
}

}  // namespace

repohost::PgHost parse_repo_request(const json& body) {
    object_of(body, {"pg_host", "pg_server_port", "pg_path", "pg_socket_path", "pg_port", "pg_user"});
    repohost::PgHost pg;
    pg.host = text(body, "pg_host", true);
    pg.server_port = port(body, "pg_server_port");
    pg.path = text(body, "pg_path", true);
    pg.socket_path = text(body, "pg_socket_path", true);
    pg.port = port(body, "pg_port");
    pg.user = text(body, "pg_user", false, "hostd_backup");
    return pg;
}

json render_repo_request(const repohost::PgHost& pg) {
    return {{"pg_host", pg.host}, {"pg_server_port", pg.server_port}, {"pg_path", pg.path},
            {"pg_socket_path", pg.socket_path}, {"pg_port", pg.port}, {"pg_user", pg.user}};
}

json render(const repohost::RepoView& v, bool with_usage) {
    json j = {{"tenant", v.tenant}, {"repo_host_port", v.port}, {"repo_path", v.path}, {"repo_host", v.host},
              {"backup_client", v.backup_client}};
    if (with_usage) {
        j["bytes"] = v.bytes;
        j["last_wal"] = v.last_wal;
        j["last_backup_error"] = v.last_backup_error;
        j["retired"] = v.retired;
    }
    return j;
}

repohost::RepoView parse_repo_view(const json& body) {
    auto s = [&](const char* k) { return body.contains(k) && body[k].is_string() ? body[k].get<std::string>() : std::string(); };
    auto n = [&](const char* k) { return body.contains(k) && body[k].is_number_integer() ? body[k].get<int64_t>() : int64_t{0}; };
    repohost::RepoView v{.tenant = s("tenant"), .port = static_cast<uint16_t>(n("repo_host_port")), .path = s("repo_path"),
                         .host = s("repo_host"), .backup_client = s("backup_client"),
                         .bytes = static_cast<uint64_t>(std::max<int64_t>(0, n("bytes"))), .last_wal = n("last_wal"),
                         .last_backup_error = s("last_backup_error"),
                         .retired = body.contains("retired") && body["retired"].is_boolean() && body["retired"].get<bool>()};
    if (n("repo_host_port") <= 0 || n("repo_host_port") > 65535 || v.path.empty() || v.backup_client.empty())
        throw Error(Errc::failed, "The repository host's answer lacks repo_host_port, repo_path or backup_client: is it "
                                  "a hostd of this version?");
    return v;
}

backup::BackupType parse_repo_backup(const json& body) {
    object_of(body, {"type"});
    const std::string t = text(body, "type", true);
    auto type = backup::backup_type_from(t);
    if (!type) throw Error(Errc::invalid, "'" + t + "' is not a backup type: give full, diff or incr", "type");
    return *type;
}

}  // namespace hostd::wire

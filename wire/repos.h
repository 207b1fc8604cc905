// The repository host's API (hostd.toml [repository]): its requests and replies as JSON.
#pragma once

#include <nlohmann/json.hpp>

#include "backup/pgbackrest.h"
#include "repohost/repohost.h"

namespace hostd::wire {

// PUT /v1/repos/{tenant}: {"pg_host", "pg_server_port", "pg_path", "pg_socket_path", "pg_port",
// "pg_user"} (pg_user optional: "hostd_backup"). Unknown keys, wrong types and ports outside
// 1-65535 → Errc::invalid naming the field; the values themselves are checked by repohost::validate.
repohost::PgHost parse_repo_request(const nlohmann::json& body);
nlohmann::json render_repo_request(const repohost::PgHost& pg);
// {"tenant", "repo_host", "repo_host_port", "repo_path", "backup_client"}; with_usage: also "bytes",
// "last_wal", "last_backup_error" (GET).
nlohmann::json render(const repohost::RepoView& v, bool with_usage);
// The same, read back by a tenant host (hostd/repoclient); a reply without a port, path or
// backup_client → Errc::failed.
repohost::RepoView parse_repo_view(const nlohmann::json& body);
// POST /v1/repos/{tenant}/backups: {"type": "full|diff|incr"}.
backup::BackupType parse_repo_backup(const nlohmann::json& body);

}  // namespace hostd::wire

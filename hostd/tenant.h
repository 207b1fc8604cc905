// The tenant: its validated request (spec), the facts recorded while provisioning it, and
// its lifecycle state. Pure: validation and (de)serialisation only.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "hostd/config.h"
#include "routes/routes.h"
#include "storage/storage.h"

namespace hostd {

enum class TenantState {
    creating,  // provisioning in progress (step says where); not yet usable
    ready,     // mounted, running, routed, answered SELECT 1 through the proxy
    deleting,  // tear-down in progress
    detached,  // deleted without purge: nothing runs, the data is kept for a create with reuse
};
std::string_view to_string(TenantState s);
std::optional<TenantState> tenant_state_from(std::string_view s);

// Lower-case letter first, then lower-case letters, digits and inner dashes; at most 30.
// Throws Errc::invalid (field "name") saying what is wrong.
void validate_name(std::string_view name);

struct TenantSpec {
    std::string backend;        // "loop" | "device"
    std::string device;         // device backend: the block device given by the operator
    std::string filesystem;     // "ext4" | "xfs"
    uint64_t disk_size = 0;     // bytes
    uint64_t memory = 0;        // MemoryMax, bytes
    double cpu = 0;             // CPUs
    uint64_t tasks = 0;         // TasksMax
    uint64_t io_weight = 0;     // IOWeight (1..10000; 0: systemd's default, 100)
    // PostgreSQL setting overrides (validated, normalized), written to hostd.override.conf.
    std::map<std::string, std::string> settings;
};

// The request's "settings" object as strings ("64MB", "250", "true"); validation against
// PostgreSQL's catalog happens in the Manager. Throws Errc::invalid (field "settings").
std::optional<std::map<std::string, std::string>> raw_settings(const nlohmann::json& body);

struct CreateRequest {
    TenantSpec spec;  // spec.settings unvalidated here
    bool reuse = false;  // bring back a detached tenant's data instead of making a new disk
    bool force = false;  // device backend: format over a signature (never over anything mounted/held/claimed)
};

// Body of PUT /v1/tenants/{name}: every field optional, defaults from the config.
// Throws Errc::invalid naming the field.
CreateRequest parse_create_request(const nlohmann::json& body, const Config& cfg);

// Body of PATCH /v1/tenants/{name}: the limits to change live (each optional).
struct LimitsUpdate {
    std::optional<uint64_t> memory;
    std::optional<double> cpu;
    std::optional<uint64_t> tasks;
    std::optional<uint64_t> io_weight;
    std::optional<std::map<std::string, std::string>> settings;  // replaces all overrides; unvalidated
};
// Body of POST /v1/tenants/{name}/resize: {"size": "2G"} → bytes, within the configured limits.
uint64_t parse_resize_request(const nlohmann::json& body, const Config& cfg);

LimitsUpdate parse_limits_update(const nlohmann::json& body, const Config& cfg);
// Throws Errc::invalid for a field a PATCH cannot change (disk, backend...).
void refuse_unknown_fields(const nlohmann::json& body);

struct TenantRecord {
    std::string name;
    TenantState state = TenantState::creating;
    std::string step;            // current/last step of an operation in progress
    TenantSpec spec;
    // Facts recorded while provisioning.
    std::string fs_uuid;         // identity of the tenant's filesystem
    std::string label;
    std::string image;           // loop backend: the image file
    std::string device;          // the block device in use (/dev/loopN or the operator's)
    std::string os_user;
    uint32_t uid = 0;
    uint16_t port = 0;           // PostgreSQL on 127.0.0.1
    uint16_t public_port = 0;    // proxy: the tenant's own port (the shared SNI port with proxy.domain)
    std::string admin_user;
    std::string password;
    std::string created_at;      // RFC 3339, UTC
    // Intent of the operation in progress, so a reconcile after a crash knows what to do.
    bool reuse = false;          // creating: bringing back kept data (roll back to detached)
    bool purge = false;          // deleting: destroy the data too
    // Disk-full guard: hostd switched the tenant to read-only and released its reserve.
    bool read_only = false;
};

std::string mountpoint_of(const Config& cfg, const std::string& tenant);

// How clients reach a tenant through the proxy. Port routes: public_host and the tenant's own
// public port. SNI routes (proxy.domain set): the host name <tenant>.<domain> on the one port
// all tenants share; the proxy picks the tenant by the TLS server name.
struct PublicEndpoint {
    std::string host;      // what goes into the URL
    uint16_t port = 0;
    std::string sni_host;  // empty for port routes
};
PublicEndpoint public_endpoint(const Config& cfg, const TenantRecord& t);

// The proxy route of a tenant (PostgreSQL on 127.0.0.1:<port>).
routes::Route route_of(const Config& cfg, const TenantRecord& t);

// Where hostd itself reaches the proxy's listeners (its check through the proxy).
std::string proxy_check_address(const Config& cfg);

// postgresql:// URL of the route, sslmode=require (tenants accept TCP logins over TLS only,
// and an SNI route needs TLS to be chosen at all); with_password false leaves it out.
std::string connection_url(const Config& cfg, const TenantRecord& t, bool with_password = true);

// The record as the API shows it; with_secret adds the admin password.
nlohmann::json to_json(const Config& cfg, const TenantRecord& t, bool with_secret);
// Disk usage as the API shows it (bytes and inodes: total, used, available).
nlohmann::json disk_json(const storage::DiskStats& d);

// The record on disk (TOML). from_toml throws Errc::invalid naming the source on a bad file.
std::string to_toml(const TenantRecord& t);
TenantRecord from_toml(std::string_view text, const std::string& source);

}  // namespace hostd

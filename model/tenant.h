// The tenant as data: its lifecycle state, what it was asked to be (spec), the facts recorded
// while provisioning it, and the requests that create or change it. Pure: validation and the
// resolution of a request against hostd.toml; no I/O, no JSON (wire/ does the API's JSON).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"
#include "model/ha.h"
#include "routes/routes.h"

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

// PostgreSQL setting overrides, name → value as PostgreSQL reads it ("64MB", "on").
using Settings = std::map<std::string, std::string>;

struct TenantSpec {
    std::string backend;        // "loop" | "device"
    std::string device;         // device backend: the block device given by the operator
    std::string filesystem;     // "ext4" | "xfs"
    uint64_t disk_size = 0;     // bytes
    uint64_t memory = 0;        // MemoryMax, bytes
    double cpu = 0;             // CPUs
    uint64_t tasks = 0;         // TasksMax
    uint64_t io_weight = 0;     // IOWeight (1..10000; 0: systemd's default, 100)
    Settings settings;          // validated, normalized; written to hostd.override.conf
    // Extensions hostd enabled (extensions.allowed), sorted: their libraries preloaded where
    // they need it; the tenant's superuser runs CREATE EXTENSION.
    std::vector<std::string> extensions;
};

// PUT /v1/tenants/{name}: every field optional; resolve_spec fills in hostd.toml's defaults.
struct CreateRequest {
    std::optional<std::string> backend, device, filesystem;
    std::optional<uint64_t> disk_size, memory, tasks, io_weight;
    std::optional<double> cpu;
    std::optional<Settings> settings;  // unvalidated: the Manager checks them against PostgreSQL's catalog
    std::optional<std::vector<std::string>> extensions;
    bool reuse = false;  // bring back a detached tenant's data instead of making a new disk
    // A branch: the data of another tenant as of a point its backups and WAL reach, instead of
    // a fresh cluster. target: "latest", a backup label or an RFC 3339 time.
    struct From {
        std::string tenant;
        std::string target = "latest";
    };
    std::optional<From> from;
    bool force = false;  // device backend: format over a signature (never over anything mounted/held/claimed)
    // An HA tenant: replicas on other hostd hosts (model/ha.h). Refused for now (check_create_ha).
    std::optional<HaRequest> ha;
};

// What the host that creates an HA tenant asks each replica's host to prepare (the peer API's
// POST /v1/ha/{tenant}/prepare): the tenant's HA settings and secrets (no members yet), its
// admin password (one for the tenant, on every member), and the create as the user gave it,
// without `ha` (each host resolves it against its own hostd.toml).
struct HaPrepare {
    HaSpec ha;
    std::string password;
    CreateRequest request;
};

// An edit of a tenant's setting overrides: reset drops them all first, then unset removes
// names and set adds or changes values; overrides it does not name are kept. Unvalidated.
struct SettingsEdit {
    bool reset = false;
    std::vector<std::string> unset;
    Settings set;
    bool empty() const { return !reset && unset.empty() && set.empty(); }
    bool operator==(const SettingsEdit&) const = default;
};

// The overrides after an edit. Names are matched as PostgreSQL matches them (ASCII case
// folded) and keyed by their lower-case spelling, as validated overrides are; unsetting a
// name that is not overridden changes nothing. Pure; the result still needs validating.
Settings edit_settings(const Settings& current, const SettingsEdit& edit);

// PATCH /v1/tenants/{name}: the limits to change live (each optional).
struct LimitsUpdate {
    std::optional<uint64_t> memory;
    std::optional<double> cpu;
    std::optional<uint64_t> tasks;
    std::optional<uint64_t> io_weight;
    std::optional<Settings> settings;  // replaces all overrides; unvalidated
    SettingsEdit settings_edit;        // or edits them (never both: wire/ refuses that)
    std::optional<std::vector<std::string>> extensions;  // replaces the list
    bool empty() const { return !memory && !cpu && !tasks && !io_weight && !settings && settings_edit.empty() && !extensions; }
};

// POST /v1/tenants/{name}/restore: where the restore stops ("latest": every archived WAL; an
// RFC 3339 time; a backup label), as backup::parse_target takes it.
struct RestoreRequest {
    std::string time = "latest";
};

// POST /v1/tenants/{name}/password: the new password of the tenant's admin role; none: hostd
// generates one (as at create).
struct PasswordRequest {
    std::optional<std::string> password;
};

// A password an operator gives: 8 to 256 bytes, no control characters (a newline or NUL would
// not survive a URL, a .pgpass line or a shell's read). Throws Errc::invalid, field "password".
void validate_password(std::string_view password);

// POST /v1/tenants/{name}/resize.
struct ResizeRequest {
    uint64_t size = 0;  // bytes
    // false: refuse (409, field "allow_offline") rather than stop PostgreSQL when the filesystem
    // can only grow unmounted here, before anything changes; hostctl asks first, then allows.
    bool allow_offline = true;
};

// POST /v1/tenants/{name}/switchover (an HA tenant): the member host to make primary; none:
// the one ha::plan_switchover picks (the synchronous standby, else the least lagging replica).
struct SwitchoverRequest {
    std::optional<std::string> to;
};

// POST /v1/tenants/{name}/replace (an HA tenant): the member on host `member` is removed and a
// new one made on `with` (none: on `member` again, rebuilt), cloned from the primary.
struct ReplaceRequest {
    std::string member;
    std::optional<std::string> with;
};

// A create's request that makes spec again on another host: filesystem, sizes, limits,
// settings and extensions as recorded; the backend and device left to that host's hostd.toml
// (an HA member's disk is that host's own). For an HA member made after the create.
CreateRequest request_of(const TenantSpec& spec);

// A create's `ha`: check_ha_request, then what it cannot go with (reuse, from, device: the
// members' disks are new loop or pool disks, each made on its own host), then what this hostd
// cannot do yet: it does not create HA tenants (they also need [ha] in hostd.toml). Throws
// Errc::invalid, field "ha" or "ha.*". Nothing for a request without `ha`.
void check_create_ha(const CreateRequest& req, const Config& cfg);

// The request against the configuration: defaults for what it leaves out, every value within
// the configured limits. Throws Errc::invalid naming the field. settings are passed through.
// A request with `ha` is checked first (check_create_ha).
TenantSpec resolve_spec(const CreateRequest& req, const Config& cfg);
// A create with reuse against the detached tenant's recorded spec: the disk stays what it is,
// so backend, device, filesystem, disk_size and force are refused (Errc::invalid naming the
// field, with the reason); memory, cpu, tasks and io_weight apply when given and stay as
// recorded otherwise; settings given are set over the recorded overrides (the others kept).
// The settings in the result still need validating.
TenantSpec resolve_reuse_spec(const CreateRequest& req, const TenantSpec& kept, const Config& cfg);
void check_limits(const LimitsUpdate& u, const Config& cfg);
// With backups on (backup.repo), hostd owns the archive: archive_mode, archive_command and
// archive_timeout are refused (Errc::invalid, field "settings").
void check_backup_owned(const Settings& s, const Config& cfg);
void check_resize(const ResizeRequest& r, const Config& cfg);
// Extensions asked for, against extensions.allowed: sorted, each once. Errc::invalid (field
// "extensions") for one not on the list, saying what is.
std::vector<std::string> resolve_extensions(const std::vector<std::string>& asked, const Config& cfg);

struct TenantRecord {
    std::string name;
    TenantState state = TenantState::creating;
    std::string step;            // current/last step of an operation in progress
    TenantSpec spec;
    // Facts recorded while provisioning.
    std::string fs_uuid;         // identity of the tenant's filesystem
    std::string label;
    std::string image;           // loop backend: the image file
    std::string device;          // the block device in use (/dev/loopN or the operator's), by its kernel name now
    // Device backend: what names the disk across a reboot that renames it (storage::stable_id:
    // a /dev/disk/by-id link, or its WWN/serial); "" where it has none (loop devices), then the
    // filesystem UUID alone identifies it, as it identifies the data on any disk.
    std::string device_id;
    std::string os_user;
    uint32_t uid = 0;
    uint16_t port = 0;           // PostgreSQL on 127.0.0.1
    uint16_t public_port = 0;    // proxy: the tenant's own port (the shared SNI port with proxy.domain)
    uint16_t backup_port = 0;    // its pgBackRest server for the repository host (backup.repo_host)
    std::string admin_user;
    std::string password;
    // A password change in progress: recorded before PostgreSQL is told, so whichever of the
    // two the role has after a crash, hostd knows it (the next change logs in with either).
    std::string password_pending;
    std::string created_at;      // RFC 3339, UTC
    // Intent of the operation in progress, so a reconcile after a crash knows what to do.
    bool reuse = false;          // creating: bringing back kept data (roll back to detached)
    bool purge = false;          // deleting: destroy the data too
    bool purge_backups = false;  // deleting with purge: its backups too (else they are kept, model/kept.h)
    // Disk-full guard: hostd switched the tenant to read-only and released its reserve.
    bool read_only = false;
    // Stopped on purpose (hostctl stop): a reconcile, a restart of hostd or a reboot leave it
    // stopped (and unrouted) until it is started.
    bool stopped = false;
    // Hibernated ([hibernate], hostd/hibernate.h): stopped after a quiet spell, still routed (its
    // public port leads to hostd's waker), started by its next connection or hostctl start. A
    // reconcile, a restart of hostd or a reboot leave it so. Never with stopped.
    bool hibernated = false;
    // An HA tenant's members and shared secrets (model/ha.h); none for a plain tenant. Its unit
    // is hostd-patroni@<name> (layout_of(cfg, record)).
    std::optional<HaSpec> ha;
};

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
// An HA member's second route, on its replica_port: every member, checked with Patroni's GET
// /replica (a running replica answers 200), named "<tenant>.ro" (no tenant name has a dot).
// None for a plain tenant or a member made before read-only URLs.
std::optional<routes::Route> replica_route_of(const Config& cfg, const TenantRecord& t);
// This host's member of an HA tenant (the one on the record's own ports), or nullptr.
const HaMember* own_member(const TenantRecord& t);

// Where hostd itself reaches the proxy's listeners (its check through the proxy).
std::string proxy_check_address(const Config& cfg);

// postgresql:// URL of the route, sslmode=require (tenants accept TCP logins over TLS only,
// and an SNI route needs TLS to be chosen at all); with_password false leaves it out.
std::string connection_url(const Config& cfg, const TenantRecord& t, bool with_password = true);
// An HA tenant's read-only URL: every member host's replica port, target_session_attrs=standby;
// "" for a plain tenant or members without replica ports.
std::string read_only_url(const Config& cfg, const TenantRecord& t, bool with_password = true);

}  // namespace hostd

// The API's JSON, in one place: request bodies and replies as the domain types of model/,
// parsed and rendered here for both sides — hostd's HTTP server and hostctl's client.
// Parsing a request checks its shape (known fields, types, sizes as "2G"); the values' ranges
// against hostd.toml are the model's (resolve_spec, check_limits).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "model/tenant.h"
#include "model/views.h"

namespace hostd::wire {

using nlohmann::json;

// A request body: "" is {}; anything but a JSON object, or one nested deeper than 16 levels, is
// Errc::invalid (field "body").
json parse_body(std::string_view text);

// Requests. parse_* throw Errc::invalid naming the field (unknown fields too).
CreateRequest parse_create(const json& body);
LimitsUpdate parse_limits(const json& body);
ResizeRequest parse_resize(const json& body);
PasswordRequest parse_password(const json& body);
json render(const PasswordRequest& r);
// POST /v1/tenants/{name}/backups: {"type": "full" | "diff" | "incr"} (body optional: incr).
std::string parse_backup_request(const json& body);
json render_backup_request(const std::string& type);
// POST /v1/tenants/{name}/restore: {"time": "latest" | RFC 3339 | backup label} (body optional: latest).
RestoreRequest parse_restore(const json& body);
json render(const RestoreRequest& r);
// POST /v1/tenants/{name}/switchover: {"to": "HOST"} (body optional: hostd picks the member).
SwitchoverRequest parse_switchover(const json& body);
json render(const SwitchoverRequest& r);
// POST /v1/tenants/{name}/replace: {"member": "HOST", "with": "HOST"} ("with" optional: the
// member rebuilt on its own host). Host names are checked as [ha] hosts entries.
ReplaceRequest parse_replace(const json& body);
json render(const ReplaceRequest& r);
// A verb without a request body (start, stop, restart): {} or nothing; any field is refused.
void parse_empty(const json& body);
json render(const CreateRequest& r);
json render(const LimitsUpdate& u);
json render(const ResizeRequest& r);

// Replies: the body of each verb's 2xx answer, and back.
json render(const TenantView& t);
json render(const std::vector<TenantView>& tenants);  // {"tenants": [...]}
json render_one(const TenantView& t);                  // {"tenant": {...}}
// The list's reply as text, written straight from the views: byte for byte what
// render(tenants).dump(2) gives (sorted keys, invalid UTF-8 as U+FFFD) and a newline, without
// building the JSON tree first (GET /v1/tenants with thousands of tenants; wire_json_test
// checks the two agree).
std::string render_text(const std::vector<TenantView>& tenants);
json render(const Created& c);
json render(const Resized& r);
json render(const Restored& r);  // {"tenant": {..., "restore_ms", "restored_to", "wal_max"}}
json render(const LimitsChanged& l);
json render(const Deleted& d);
json render(const ReconcileReport& r);
json render(const HostInfo& h);
json render_ca(const std::string& pem);
json render(const BackupList& b);
json render(const std::vector<KeptView>& kept);  // {"deleted": [...]}
json render(const BackupDone& b);
// A size as a request carries it ("512M", "2G" or bytes); Errc::invalid naming field otherwise.
uint64_t parse_size_value(const json& v, const char* field);
// One line of a create's progress stream (PUT ?progress=1): {"step":"disk","ms":12} when a
// step ends; {"start":"format"} when one starts (ms < 0).
json render_step(std::string_view step, long ms);

TenantView parse_tenant(const json& j);          // one tenant object
std::vector<TenantView> parse_tenants(const json& body);
TenantView parse_tenant_reply(const json& body);  // {"tenant": {...}}
Created parse_created(const json& body);
Resized parse_resized(const json& body);
Restored parse_restored(const json& body);
LimitsChanged parse_limits_changed(const json& body);
Deleted parse_deleted(const json& body);
ReconcileReport parse_reconcile(const json& body);
HostInfo parse_host(const json& body);
std::string parse_ca(const json& body);
BackupList parse_backup_list(const json& body);
std::vector<KeptView> parse_kept(const json& body);
BackupDone parse_backup_done(const json& body);

// The HA hosts' peer API (hostd/ha_api.h): an HA tenant's part of its record with its
// secrets, one member, and a prepare's body. Parsing checks the shape and the host names.
json render(const HaSpec& h);
HaSpec parse_ha_spec(const json& j);
json render(const HaMember& m);
HaMember parse_ha_member(const json& j);
json render(const HaPrepare& p);
HaPrepare parse_ha_prepare(const json& body);

// Errors: {"error": {"code": "invalid", "message": "...", "field": "cpu"}}.
int http_status(Errc code);
json render_error(const Error& e);
// The error a reply carries; a body without one becomes "HTTP <status>".
Error parse_error(const json& body, long status);

}  // namespace hostd::wire

// An HA member's Patroni configuration from its record (#17), pure: what hostd writes to the
// member's <mountpoint>/ha/patroni.yml. One place says which file, role, port and address a
// member uses, so the provisioner, the unit and the tests cannot disagree.
#pragma once

#include <map>
#include <string>

#include "ha/ha.h"
#include "model/config.h"
#include "model/tenant.h"

namespace hostd {

// The roles Patroni logs in as (never the tenant's admin: the tenant's own ALTER ROLE of its
// admin cannot cut Patroni off).
inline constexpr const char* kPatroniSuperuser = "hostd-patroni";
inline constexpr const char* kPatroniReplication = "hostd-replicator";
inline constexpr const char* kPatroniRewind = "hostd-rewind";

// Files in the member's ha directory (TenantLayout::ha_dir), root's, readable by the tenant's
// group: patroni.yml, the tenant's PostgreSQL settings as Patroni's custom_conf (hostd's tuning
// of its limits, then its overrides: included from there), and its TLS files.
namespace ha_files {
inline constexpr const char* kPatroniYml = "patroni.yml";
inline constexpr const char* kBaseConf = "postgresql.base.conf";
inline constexpr const char* kOverrides = "hostd.override.conf";
inline constexpr const char* kCert = "server.crt";
inline constexpr const char* kKey = "server.key";  // the tenant's, 0600 (PostgreSQL's rule for its key)
inline constexpr const char* kCa = "ca.crt";
inline constexpr const char* kEtcdCert = "etcd.crt";  // Patroni's client certificate for etcd (CN tenant:<t>)
inline constexpr const char* kEtcdKey = "etcd.key";   // the tenant's, 0600
}  // namespace ha_files

// The member on host `self` of HA record t (t.ha with every member known): scope = tenant,
// name = host, REST on its address and rest_port, PostgreSQL on its address and 127.0.0.1 at
// t.port, the etcd hosts of [ha], the timing of [ha], TLS with the files above, pg_hba from
// ha::member_hba (replication from the members' addresses only), the scope's settings that
// every member must share (max_connections, max_worker_processes from the tenant's limits).
// Throws Errc::invalid when self is no member of t.
ha::PatroniMember patroni_member(const Config& cfg, const TenantRecord& t, const std::string& self);

// The settings every member of t's scope shares, from its limits and overrides: what
// patroni_member puts in global_parameters (Patroni's bootstrap configuration) and what a limits
// change later patches into the scope's configuration in etcd.
std::map<std::string, std::string> scope_parameters(const TenantRecord& t);

// Refuses (Errc::invalid, field "settings") an HA tenant's override that Patroni takes from its
// global configuration only (ha::global_only_setting) and hostd does not pass there: it would
// be dropped silently. hostd passes max_connections, max_worker_processes and wal_keep_size.
void check_ha_settings(const Settings& settings);

}  // namespace hostd

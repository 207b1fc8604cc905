#include "model/patroni.h"

#include <algorithm>

#include "base/error.h"
#include "model/layout.h"
#include "pgconf/pgconf.h"

namespace hostd {

ha::PatroniMember patroni_member(const Config& cfg, const TenantRecord& t, const std::string& self) {
    if (!t.ha) throw Error(Errc::invalid, "Tenant '" + t.name + "' is not an HA tenant");
    const HaMember* me = t.ha->member(self);
    if (!me) throw Error(Errc::invalid, "Host '" + self + "' is no member of HA tenant '" + t.name + "'");
    const TenantLayout l = layout_of(cfg, t);
    ha::PatroniMember m;
    m.scope = t.name;
    m.name = self;
    m.restapi_listen = {me->address, me->rest_port};
    m.connect_address = me->address;
    for (const auto& h : ha_fleet(cfg))
        if (ha_etcd_host(cfg, h.name)) m.etcd.push_back({h.address, cfg.ha_etcd_client_port});
    m.data_dir = l.pgdata;
    m.bin_dir = cfg.pg_bindir;
    m.socket_dir = l.socket_dir;
    m.pgpass = l.pgpass;
    m.listen_addresses = {me->address, "127.0.0.1"};
    m.pg_port = t.port;
    m.custom_conf = l.ha_dir + "/" + ha_files::kBaseConf;
    // What every member must run with the same value is the scope's (Patroni passes it on the
    // command line); the rest of the tenant's tuning is in custom_conf.
    m.global_parameters = scope_parameters(t);
    m.etcd_tls = {.cert_file = l.ha_dir + "/" + ha_files::kEtcdCert, .key_file = l.ha_dir + "/" + ha_files::kEtcdKey,
                  .ca_file = l.ha_dir + "/" + ha_files::kCa};
    m.tls = {.cert_file = l.ha_dir + "/" + ha_files::kCert, .key_file = l.ha_dir + "/" + ha_files::kKey,
             .ca_file = l.ha_dir + "/" + ha_files::kCa};
    std::vector<std::string> addrs;
    for (const auto& x : t.ha->members) addrs.push_back(x.address);
    // hostd's own login first, as in a plain tenant's pg_hba (pgconf::render_pg_hba): root by
    // peer over the socket as the monitor role, and nobody else as it.
    m.pg_hba = ha::member_hba(addrs, kPatroniReplication);
    m.pg_hba.insert(m.pg_hba.begin(), std::string("local all ") + pgconf::kMonitorRole + " peer map=hostd");
    m.pg_ident = {std::string("hostd root ") + pgconf::kMonitorRole};
    m.superuser = {kPatroniSuperuser, t.ha->secrets.patroni};
    m.replication = {kPatroniReplication, t.ha->secrets.replication};
    m.rewind = {kPatroniRewind, t.ha->secrets.rewind};
    // Patroni's unsafe REST verbs (switchover, restart, reinitialize, PATCH /config) need these;
    // another tenant's processes reach its REST port too.
    m.rest = {"hostd", t.ha->secrets.rest_password};
    m.synchronous_mode = t.ha->synchronous;
    m.synchronous_mode_strict = t.ha->strict;
    m.timing = {.ttl = static_cast<int>(cfg.ha_ttl), .loop_wait = static_cast<int>(cfg.ha_loop_wait),
                .retry_timeout = static_cast<int>(cfg.ha_retry_timeout)};
    return m;
}

std::map<std::string, std::string> scope_parameters(const TenantRecord& t) {
    const pgconf::Tuning tu = pgconf::tune({.tenant = t.name, .memory_bytes = t.spec.memory, .cpus = t.spec.cpu,
                                            .disk_bytes = t.spec.disk_size});
    auto setting = [&](const char* name, uint64_t tuned) {
        auto it = t.spec.settings.find(name);
        return it != t.spec.settings.end() ? it->second : std::to_string(tuned);
    };
    std::map<std::string, std::string> p;
    // Patroni drops a max_connections below 25 (its own minimum).
    p["max_connections"] = setting("max_connections", std::max<uint64_t>(tu.max_connections, 25));
    p["max_worker_processes"] = setting("max_worker_processes", tu.max_worker_processes);
    // Patroni keeps wal_keep_size of WAL on every member (its default 128MB) beside max_wal_size:
    // on a small disk that filled it (a 256M member's pg_wal held 177 MB after a few failovers,
    // and the old primary's pg_rewind failed with "No space left on device"). A share of the
    // disk, as max_wal_size is (pgconf::tune), between Patroni's minimum 16MB and its default;
    // a replica further behind has its replication slot.
    const uint64_t disk_mib = t.spec.disk_size >> 20;
    p["wal_keep_size"] = setting("wal_keep_size", std::clamp<uint64_t>(disk_mib / 16, 16, 128)) +
                         (t.spec.settings.count("wal_keep_size") ? "" : "MB");
    // Patroni gives each replica a replication slot on the primary: a replica that stays away
    // (its machine lost, cut off) would make the primary keep WAL for it until its disk is full
    // and the tenant stops. A quarter of the disk at most; a replica further behind loses its
    // slot and is rebuilt (hostctl replace NAME HOST).
    p["max_slot_wal_keep_size"] = setting("max_slot_wal_keep_size", std::clamp<uint64_t>(disk_mib / 4, 32, 8192)) +
                                  (t.spec.settings.count("max_slot_wal_keep_size") ? "" : "MB");
    return p;
}

void check_ha_settings(const Settings& settings) {
    for (const auto& [k, v] : settings) {
        if (!ha::global_only_setting(k) || k == "max_connections" || k == "max_worker_processes" || k == "wal_keep_size")
            continue;
        throw Error(Errc::invalid, "Setting '" + k + "' cannot be given to an HA tenant: Patroni takes it from the scope's "
                                   "configuration only and would drop it (hostd passes max_connections, "
                                   "max_worker_processes and wal_keep_size there)", "settings");
    }
}

}  // namespace hostd

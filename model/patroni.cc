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
    const pgconf::Tuning tu = pgconf::tune({.tenant = t.name, .memory_bytes = t.spec.memory, .cpus = t.spec.cpu,
                                            .disk_bytes = t.spec.disk_size});
    auto setting = [&](const char* name, uint64_t tuned) {
        auto it = t.spec.settings.find(name);
        return it != t.spec.settings.end() ? it->second : std::to_string(tuned);
    };
    // Patroni drops a max_connections below 25 (its own minimum).
    m.global_parameters["max_connections"] = setting("max_connections", std::max<uint64_t>(tu.max_connections, 25));
    m.global_parameters["max_worker_processes"] = setting("max_worker_processes", tu.max_worker_processes);
    // Patroni keeps wal_keep_size of WAL on every member (its default 128MB) beside max_wal_size:
    // on a small disk that filled it (a 256M member's pg_wal held 177 MB after a few failovers,
    // and the old primary's pg_rewind failed with "No space left on device"). A share of the
    // disk, as max_wal_size is (pgconf::tune), between Patroni's minimum 16MB and its default;
    // a replica further behind has its replication slot.
    const uint64_t disk_mib = t.spec.disk_size >> 20;
    m.global_parameters["wal_keep_size"] = setting("wal_keep_size", std::clamp<uint64_t>(disk_mib / 16, 16, 128)) +
                                           (t.spec.settings.count("wal_keep_size") ? "" : "MB");
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

}  // namespace hostd

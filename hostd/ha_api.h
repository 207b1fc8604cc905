// The HA hosts' peer API (#17) on [ha] address:api_port: HTTPS with mutual TLS
// (hostd/peer_server.h), serving only hostd@<host> certificates of hostd's CA whose <host> is in
// [ha] hosts; 403 for anything else. Through it the host that creates an HA tenant sets up its
// members on the others (#17 plan, section 5). Served so far:
//   GET /v1/ha/{tenant}/member   this host's member of tenant; 404 while none exists
// And the HA role as hostd's main starts it (start_ha_role): this host's certificate, etcd on an
// etcd host (hostd-etcd.service with /etc/hostd/etcd.env, over TLS), the API, etcd's auth on
// (etcd_admin.h), and a first look at every other host (logged: unreachable, or a certificate
// from another CA).
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "ha/ha.h"
#include "hostd/etcd_admin.h"
#include "model/config.h"
#include "wire/wire.h"

namespace hostd {

class Peers;
class PeerServer;

class PeerHandler;

// What the peer API answers (status, JSON body) to client host's request; self is this host.
// handler serves the tenants' verbs (none: every tenant is unknown here):
//   GET  /v1/ha/{t}/member    this host's member of t (404: none)
//   POST /v1/ha/{t}/prepare   wire::HaPrepare → {"member": HaMember}
//   POST /v1/ha/{t}/start     {"ha": HaSpec} → {}
//   POST /v1/ha/{t}/abort     {"create_id": ...} → {}
//   POST /v1/ha/{t}/remove    {"purge": bool} → {}
std::pair<int, wire::json> ha_dispatch(const std::string& self, const std::string& client, const std::string& method,
                                       const std::string& url, const std::string& body, PeerHandler* handler = nullptr);

// The etcd unit hostd runs on an etcd host, its environment file (ha::render_etcd) and the
// directory of the TLS files it reads (etcd's user's: it cannot read hostd's state directory):
// ca.crt (hostd's CA), client.crt/.key (this host's certificate: names its host name, [ha]
// address and 127.0.0.1), peer.crt/.key (CN ha::kEtcdPeerCn, naming the host and address).
inline constexpr const char* kEtcdUnit = "hostd-etcd.service";
inline constexpr const char* kEtcdConfig = "/etc/hostd/etcd.env";
inline constexpr const char* kEtcdTlsDir = "/etc/hostd/etcd";

// This host's etcd member from [ha] (pure): its name and address, the ports, every etcd host as
// the initial cluster (a new cluster: once etcd has its data directory, that decides), v2 on,
// the TLS files in kEtcdTlsDir.
ha::EtcdMember etcd_member(const Config& cfg, const std::string& self);

// Writes etcd's TLS files (kEtcdTlsDir: the CA, host_cert as its client certificate, a peer
// certificate issued now) and configuration (kEtcdConfig) and enables and starts kEtcdUnit
// without waiting for it (a member of a new cluster waits for the others); restarts it when the
// configuration changed (etcd reads its certificates anew at each TLS handshake). Refuses
// (Errc::conflict, naming the unit and what to do) while another unit or process listens on
// etcd's client or peer port.
void start_etcd(const Config& cfg, const std::string& self, const pgconf::PemPair& host_cert);

// hostd's client of the fleet's etcd (pure): every etcd host's client endpoint, this host's
// first, hostd's root certificate (<state_dir>/ha/etcd-root.{crt,key}, issue_etcd_root_cert).
EtcdAdminOptions etcd_admin_options(const Config& cfg, const std::string& self);

struct HaRole {
    struct State;
    std::unique_ptr<State> state;
    HaRole();
    HaRole(HaRole&&) noexcept;
    ~HaRole();
    // hostd's etcd admin client (grant_tenant, revoke_tenant, remove_scope); nullptr when [ha]
    // is off.
    EtcdAdmin* etcd_admin() const;
};
// Empty when [ha] is off. etcd that cannot be started is logged (hostd serves on without it);
// a certificate or API that cannot be had throws. etcd's auth is turned on in the background
// (retried until etcd has a quorum; logged). handler: the tenants' side of the peer API (the
// Manager).
HaRole start_ha_role(const Config& cfg, PeerHandler* handler = nullptr);

}  // namespace hostd

// The HA hosts' peer API (#17) on [ha] address:api_port: HTTPS with mutual TLS
// (hostd/peer_server.h), serving only hostd@<host> certificates of hostd's CA whose <host> is in
// [ha] hosts; 403 for anything else. Through it the host that creates an HA tenant sets up its
// members on the others (#17 plan, section 5). Served so far:
//   GET /v1/ha/{tenant}/member   this host's member of tenant; 404 while none exists
// And the HA role as hostd's main starts it (start_ha_role): etcd on an etcd host
// (hostd-etcd.service with /etc/hostd/etcd.yml), this host's certificate, the API, and a first
// look at every other host (logged: unreachable, or a certificate from another CA).
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "ha/ha.h"
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

// The etcd unit hostd runs on an etcd host, and its configuration file.
inline constexpr const char* kEtcdUnit = "hostd-etcd.service";
inline constexpr const char* kEtcdConfig = "/etc/hostd/etcd.yml";

// This host's etcd member from [ha] (pure): its name and address, the ports, every etcd host as
// the initial cluster (a new cluster: once etcd has its data directory, that decides), v2 on.
ha::EtcdMember etcd_member(const Config& cfg, const std::string& self);

// Writes etcd's configuration (kEtcdConfig) and enables and starts kEtcdUnit without waiting
// for it (a member of a new cluster waits for the others); restarts it when the file changed.
// Refuses (Errc::conflict, naming the unit and what to do) while another unit or process
// listens on etcd's client or peer port.
void start_etcd(const Config& cfg, const std::string& self);

struct HaRole {
    struct State;
    std::unique_ptr<State> state;
    HaRole();
    HaRole(HaRole&&) noexcept;
    ~HaRole();
};
// Empty when [ha] is off. etcd that cannot be started is logged (hostd serves on without it);
// a certificate or API that cannot be had throws.
// handler: the tenants' side of the peer API (the Manager); peers: where the host's client of
// the other hosts is put (the Manager's, made here once this host's certificate exists).
HaRole start_ha_role(const Config& cfg, PeerHandler* handler = nullptr);

}  // namespace hostd

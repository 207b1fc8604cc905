// The HA hosts' client of each other's peer API (hostd/ha_api.h): a virtual Peers so that the
// create flow can be tested with a fake that fails any call on demand, and the real one over
// libcurl with mutual TLS (hostd/peer_client.h): this host's certificate <state_dir>/ha/host.crt
// (CN hostd@<host>), the other host's checked against hostd's CA and its [ha] hosts address.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/tenant.h"

namespace hostd {

// What a host says of its member of a tenant (GET /v1/ha/{tenant}/member); grows with the
// create flow (#17 plan, section 5).
struct PeerMember {
    std::string record_state;
    std::string create_id;
    std::vector<std::string> hosts;  // the member hosts its record names (a replaced member is not among them)
};

class Peers {
public:
    virtual ~Peers() = default;
    // host's member of tenant; nullopt when it has none (its 404). Throws Errc::invalid for a
    // host not in [ha] hosts, Errc::unavailable when it cannot be reached or its certificate is
    // not from this host's CA (the sentence says which file to copy), Errc::failed for its errors.
    virtual std::optional<PeerMember> status(const std::string& host, const std::string& tenant) = 0;
    // The create of an HA tenant, on a replica's host (hostd/ha_api.h serves them): prepare
    // reserves and makes its member's disk, user and ports and returns the member; start gives
    // it every member and starts it (Patroni clones it from the primary), returning once it runs
    // and is routed; abort undoes a member of create_id that is not ready (none there: fine).
    // remove deletes that host's member of a ready tenant (purge: its data too). Throw as status.
    virtual HaMember prepare(const std::string& host, const std::string& tenant, const HaPrepare& p) = 0;
    virtual void start(const std::string& host, const std::string& tenant, const HaSpec& ha) = 0;
    virtual void abort(const std::string& host, const std::string& tenant, const std::string& create_id) = 0;
    virtual void remove(const std::string& host, const std::string& tenant, bool purge) = 0;
    // A replace changed the members: that host's member takes ha as its record's, rewrites its
    // Patroni files (pg_hba for the new member's address, the certificate's names), has Patroni
    // reread them and routes to the members anew.
    virtual void update(const std::string& host, const std::string& tenant, const HaSpec& ha) = 0;
    // The tenant's admin password changed (on the primary, by the host asked): that host's
    // record takes it, so its URL and its next change have it.
    virtual void password(const std::string& host, const std::string& tenant, const std::string& password) = 0;
    // A limits change of the tenant (on the host asked): that host's member of create create_id
    // takes every field of full (settings and extensions whole, as the host asked computed them).
    virtual void limits(const std::string& host, const std::string& tenant, const std::string& create_id,
                        const LimitsUpdate& full) = 0;
    // One request to see that host serves this one: reachable, its certificate from this CA and
    // naming it (hostd@<host>), and this host allowed there. Throws as status does.
    virtual void hello(const std::string& host) = 0;
};

// The other half: what the peer API (hostd/ha_api.h) asks of this host's tenants, in domain
// types; the Manager serves it. Each throws hostd::Error as its verb does.
class PeerHandler {
public:
    virtual ~PeerHandler() = default;
    virtual std::optional<PeerMember> ha_member(const std::string& tenant) = 0;
    virtual HaMember ha_prepare(const std::string& tenant, const HaPrepare& p) = 0;
    virtual void ha_start(const std::string& tenant, const HaSpec& ha) = 0;
    virtual void ha_abort(const std::string& tenant, const std::string& create_id) = 0;
    virtual void ha_remove(const std::string& tenant, bool purge) = 0;
    virtual void ha_update(const std::string& tenant, const HaSpec& ha) = 0;
    virtual void ha_password(const std::string& tenant, const std::string& password) = 0;
    virtual void ha_limits(const std::string& tenant, const std::string& create_id, const LimitsUpdate& full) = 0;
};

// The real one, for [ha] hosts on [ha] api_port. tls_dir holds host.crt and host.key.
std::unique_ptr<Peers> make_real_peers(const Config& cfg, const std::string& tls_dir);

}  // namespace hostd

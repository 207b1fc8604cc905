// An HA tenant as data (#17): its members on several hostd hosts, run by Patroni with etcd as
// the DCS; the secrets of the roles Patroni logs in as; what a create asks for. Every member
// host keeps the tenant's ordinary record plus this (TenantRecord::ha). Pure: names, checks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hostd {

// Where a member is in its host's part of a create or a removal:
//   planned   named by the coordinator, nothing made on its host yet
//   prepared  its host reserved it: disk, OS user, ports (waiting for start)
//   started   its files, certificate and route are written and Patroni runs it
//   removing  being taken out of the tenant
enum class MemberPhase { planned, prepared, started, removing };
std::string_view to_string(MemberPhase p);
std::optional<MemberPhase> member_phase_from(std::string_view s);

// One member of an HA tenant: a hostd host and what the tenant has there.
struct HaMember {
    std::string host;         // the hostd host's name (its [ha] hosts entry, gethostname())
    std::string address;      // that host's address on the hosts' net ([ha] address)
    std::string public_host;  // where clients reach the member (that host's proxy.public_host)
    uint16_t pg_port = 0;     // PostgreSQL there, on 127.0.0.1 and address
    uint16_t rest_port = 0;   // Patroni's REST API there, on address
    uint16_t public_port = 0; // that host's proxy's port for the tenant
    uint16_t replica_port = 0; // that host's proxy's port to the replicas (the read-only URL); 0: none
    MemberPhase phase = MemberPhase::planned;
    bool operator==(const HaMember&) const = default;
};

// The passwords of the roles Patroni uses (never the tenant's admin, so the tenant's own
// ALTER ROLE cannot cut Patroni off), and of Patroni's REST API. The same on every member.
struct HaSecrets {
    std::string patroni;        // hostd_patroni: Patroni's superuser
    std::string replication;    // hostd_replicator: streaming replication
    std::string rewind;         // hostd_rewind: pg_rewind
    std::string rest_password;  // Patroni's REST API (basic auth)
    bool operator==(const HaSecrets&) const = default;
};

// An HA tenant's part of its record.
struct HaSpec {
    std::string create_id;  // random per create: a stale start cannot revive a later create of the same name
    std::string initiator;  // the host that coordinated the create; its member bootstrapped the scope
    std::vector<HaMember> members;
    bool synchronous = false;  // Patroni's synchronous_mode
    bool strict = false;       // synchronous_mode_strict: no writes without a synchronous replica
    HaSecrets secrets;
    bool operator==(const HaSpec&) const = default;

    // The member on host, or nullptr.
    const HaMember* member(std::string_view host) const;
};

// A create's `ha` (PUT /v1/tenants/{name}): the hosts of the replicas; this host (the one
// asked) makes the first member and coordinates.
struct HaRequest {
    std::vector<std::string> replicas;  // host names
    bool synchronous = false;
    bool strict = false;                // "synchronous_strict" on the wire
    bool operator==(const HaRequest&) const = default;
};

// At most this many replicas: 3 members in all, one etcd quorum's worth.
inline constexpr size_t kMaxReplicas = 2;

// A hostd host's name: a DNS label (base/strings.h is_dns_label). Throws Errc::invalid on
// field, saying what is wrong.
void validate_host_name(std::string_view host, const std::string& field);

// A create's `ha` on its own: 1 to kMaxReplicas replicas, each a valid host name and named
// once, strict only with synchronous. Throws Errc::invalid on the field at fault
// ("ha.replicas", "ha.synchronous_strict"). What it needs of the host ([ha] configured, the
// hosts known) and what it cannot go with are the create's checks (check_create_ha).
void check_ha_request(const HaRequest& r);

}  // namespace hostd

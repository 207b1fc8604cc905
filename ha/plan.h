// An HA tenant's (#17) state as Patroni reports it, and the decisions taken from it, pure: Patroni's
// GET /cluster read into a ClusterView, the member a switchover goes to, the tenant's multi-host
// URL. Text in, values out; no I/O. Refusals throw hostd::Error (Errc::conflict when the cluster's
// state forbids it, Errc::invalid / not_found for bad input), with a sentence that says what to do.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ha/ha.h"

namespace hostd::ha {

enum class MemberRole {
    primary,  // Patroni's leader (or standby_leader): holds the scope's leader key
    replica,  // replica or sync_standby
    down,     // not in Patroni's answer: no member key in etcd (Patroni stopped, its host gone)
};
const char* member_role_name(MemberRole r);  // "primary", "replica", "down"

struct MemberStatus {
    std::string name;
    MemberRole role = MemberRole::down;
    bool sync = false;   // the synchronous standby (Patroni's sync_standby): promoted without loss
    std::string state;   // Patroni's words ("running", "streaming", "starting", "stopped", "crashed",
                         // "start failed", ...); "" when down
    // Bytes of WAL this replica is behind the leader's last reported position (Patroni's `lag`);
    // nullopt for the primary, a down member, or when Patroni does not know ("unknown").
    std::optional<uint64_t> lag_bytes;
    std::optional<uint32_t> timeline;
    std::string host;    // its PostgreSQL as Patroni advertises it ("" when down)
    uint16_t port = 0;
    bool nofailover = false;  // Patroni's tag: never promoted
    bool running() const { return state == "running" || state == "streaming"; }
};

struct ClusterView {
    std::vector<MemberStatus> members;  // by name
    bool paused = false;                // Patroni's maintenance mode: no automatic failover
    const MemberStatus* primary() const;  // nullptr: no leader now
    const MemberStatus* find(const std::string& name) const;
};

// Patroni's GET /cluster answer (patroni/utils.py:cluster_as_json, Patroni 3.0.2: {"members":
// [{"name", "role", "state", "api_url", "host", "port", "timeline", "lag", "tags", ...}],
// "pause"}). expected: the tenant's members as hostd knows them; those missing from the answer
// are listed as down. A member in the answer that is not expected is listed too (an empty
// expected list takes the answer as it is). Throws Errc::failed (naming what is wrong) for text
// that is not such an answer: not JSON, no members array, a member without a name or with an
// unknown role, two leaders.
ClusterView parse_cluster(const std::string& body, const std::vector<std::string>& expected = {});

// A switchover: Patroni's POST /switchover body is {"leader": leader, "candidate": candidate}.
struct Switchover {
    std::string leader;
    std::string candidate;
};

// Which member a switchover goes to. to: the member named by the user (hostctl switchover --to);
// none: the synchronous standby if one runs, else the running replica with the least lag
// (ties by name). synchronous: the tenant runs Patroni's synchronous mode, where only the
// synchronous standby can take over without losing commits (Patroni 3.0.2 answers 412 for any
// other): only it qualifies. Refuses with Errc::conflict: no leader now; `to` is the primary
// already, down or not running, tagged nofailover, or (synchronous) not the synchronous
// standby; no replica qualifies. Errc::not_found: `to` is no member.
Switchover plan_switchover(const ClusterView& c, const std::optional<std::string>& to, bool synchronous);

// The tenant's URL naming every member host (libpq tries them in order and keeps the one that
// accepts writes): postgresql://user:password@h1:p1,h2:p2/dbname?sslmode=require&
// target_session_attrs=read-write. user and password percent-encoded (pgconf::connection_url);
// an empty password leaves it out. Throws Errc::invalid for no members, a host that is neither an
// IP address nor a DNS name, or port 0. session_attrs: "standby" for the read-only URL (a
// replica promoted since the proxy's last check is passed over for the next host).
std::string ha_url(const std::vector<HostPort>& members, const std::string& user, const std::string& password,
                   const std::string& dbname, const std::string& session_attrs = "read-write");

}  // namespace hostd::ha

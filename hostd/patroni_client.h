// Patroni's REST API of an HA tenant's member (#17), as hostd asks it: plain HTTP (libcurl) to
// the member host's address and the member's rest_port, short timeouts, and every failure said
// in one sentence naming the member and what failed. Reads (GET /cluster) need no credentials;
// the verbs that change the cluster (POST /switchover) carry basic auth (ha::PatroniMember::rest).
// Effects and the metrics Observer call this; the Manager and the collector see it through them.
#pragma once

#include <map>
#include <string>

#include "ha/ha.h"
#include "ha/plan.h"
#include "model/ha.h"

namespace hostd::patroni {

// "member 'db2' (Patroni at 10.0.0.3:23001)": who is asked, for the sentences.
std::string who(const HaMember& m);

// The base URL of the member's Patroni ("http://10.0.0.3:23001", IPv6 in brackets).
std::string base_url(const HaMember& m);

// GET /cluster: the body (Patroni's cluster_as_json; ha::parse_cluster reads it). Throws
// Errc::unavailable naming the member when no answer came within 2 s (Patroni stopped, its
// host down or cut off) or the answer is not 200.
std::string cluster(const HaMember& m);

// What Patroni said to a POST /switchover, as hostd takes it (pure, so tested on its words):
// 200 → its sentence; 503 "Switchover status unknown" (Patroni stopped polling before the new
// leader showed) → its sentence too, the caller looks at /cluster; 412 (Patroni refuses: not the
// leader, not the synchronous standby, no good candidate) → Errc::conflict; 401/403 → Errc::failed
// (hostd's REST credentials refused: the member's patroni.yml and the record disagree); anything
// else → Errc::failed. Each sentence names the member and both members of the switchover.
std::string switchover_outcome(const HaMember& m, const ha::Switchover& s, long status, const std::string& body);

// POST /switchover {"leader": s.leader, "candidate": s.candidate} to m's Patroni (the leader's)
// with basic auth. Patroni answers once the new leader holds the key (it polls for up to 20 s),
// so this waits up to 25 s (2 s to connect). Returns or throws as switchover_outcome; no answer:
// Errc::unavailable naming the member.
std::string switchover(const HaMember& m, const ha::Credentials& rest, const ha::Switchover& s);

// PATCH /config {"postgresql": {"parameters": parameters}} to m's Patroni with basic auth: the
// scope's configuration in etcd, which every member's Patroni applies at its next loop (a
// setting that needs a restart is then pending on each member). Throws Errc::unavailable when no
// answer came, Errc::failed naming the member and Patroni's words for any status but 200.
void patch_parameters(const HaMember& m, const ha::Credentials& rest, const std::map<std::string, std::string>& parameters);

}  // namespace hostd::patroni

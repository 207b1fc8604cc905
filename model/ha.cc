#include "model/ha.h"

#include <algorithm>

#include "base/error.h"
#include "base/strings.h"

namespace hostd {

std::string_view to_string(MemberPhase p) {
    switch (p) {
    case MemberPhase::planned: return "planned";
    case MemberPhase::prepared: return "prepared";
    case MemberPhase::started: return "started";
    case MemberPhase::removing: return "removing";
    }
    return "planned";
}

std::optional<MemberPhase> member_phase_from(std::string_view s) {
    for (auto p : {MemberPhase::planned, MemberPhase::prepared, MemberPhase::started, MemberPhase::removing})
        if (to_string(p) == s) return p;
    return std::nullopt;
}

const HaMember* HaSpec::member(std::string_view host) const {
    auto it = std::find_if(members.begin(), members.end(), [&](const HaMember& m) { return m.host == host; });
    return it == members.end() ? nullptr : &*it;
}

void validate_host_name(std::string_view host, const std::string& field) {
    if (!is_dns_label(host))
        throw Error(Errc::invalid, "'" + std::string(host) + "' is not a host name: use 1-63 lower-case letters, digits and '-', "
                                   "not starting with '-' (the name hostd's host has in [ha] hosts)", field);
}

void check_ha_request(const HaRequest& r) {
    if (r.replicas.empty() || r.replicas.size() > kMaxReplicas)
        throw Error(Errc::invalid, "An HA tenant has 1 or " + std::to_string(kMaxReplicas) + " replicas, each on another host; 'ha.replicas' names " +
                                       std::to_string(r.replicas.size()),
                    "ha.replicas");
    for (size_t i = 0; i < r.replicas.size(); i++) {
        validate_host_name(r.replicas[i], "ha.replicas");
        if (std::find(r.replicas.begin(), r.replicas.begin() + static_cast<long>(i), r.replicas[i]) != r.replicas.begin() + static_cast<long>(i))
            throw Error(Errc::invalid, "'ha.replicas' names host '" + r.replicas[i] + "' twice; each replica needs a host of its own",
                        "ha.replicas");
    }
    if (r.strict && !r.synchronous)
        throw Error(Errc::invalid, "'synchronous_strict' goes with 'synchronous': strict mode stops writes without a synchronous replica",
                    "ha.synchronous_strict");
}

}  // namespace hostd

// Hibernation of idle tenants: which tenants have had no client connection for [hibernate]
// after. Pure: the caller counts the connections (hostd/hibernate.h) and acts on the answer.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hostd {

// One tenant as the idle check sees it.
struct IdleFact {
    std::string name;
    // May hibernate at all: ready, not stopped on purpose, not an HA member, no verb under way.
    bool eligible = false;
    bool hibernated = false;   // hibernates now
    uint32_t connections = 0;  // client connections to its PostgreSQL (TCP, established)
};

// last_busy: when each tenant was last seen busy (seconds on a steady clock), kept by the
// caller between calls. A tenant that has connections, is not eligible, hibernates already or
// is seen for the first time (hostd just started: it gets a whole spell) is busy now; names no
// longer among facts are forgotten. Returns the eligible tenants idle for at least after
// seconds, in name order. Pure.
std::vector<std::string> due_for_hibernation(const std::vector<IdleFact>& facts, std::map<std::string, double>& last_busy,
                                             double now, double after);

// Client connections per local port, from the kernel's established TCP sockets' local ports
// (each connection to a tenant's PostgreSQL shows once there, with the tenant's port; the
// client's end shows with its own ephemeral port and counts for that one, which no tenant has).
std::map<uint16_t, uint32_t> count_by_port(const std::vector<uint16_t>& local_ports);

}  // namespace hostd

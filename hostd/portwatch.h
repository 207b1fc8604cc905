// The port watch: a tenant listens on its own port only. A tenant superuser can run programs
// as the tenant's user (COPY ... FROM PROGRAM), and on these hosts nothing stops it from
// binding another port — systemd's SocketBindDeny= needs cgroup BPF, which hybrid-cgroup hosts
// lack — so a listener on a port that is not the tenant's (a free port, or the backend port
// of a tenant that is down, which the proxy would route that tenant's clients to) is caught
// from the kernel's socket table and its process killed. PostgreSQL's own port and listen
// address are on its command line, so ALTER SYSTEM cannot move them.
#pragma once

#include <string>
#include <vector>

#include "hostd/effects.h"
#include "hostd/store.h"
#include "model/tenant.h"
#include "units/sockets.h"

namespace hostd {

struct Squatter {
    std::string tenant;
    uint16_t own_port = 0;
    units::Listener listener;
};

// Pure: the listeners owned by a tenant's OS user on any port but the tenant's own (its
// PostgreSQL's, with a repository host its pgBackRest server's, and for an HA member its
// Patroni's REST port: the member's on self, this host's name among the HA hosts).
std::vector<Squatter> find_squatters(const std::vector<TenantRecord>& tenants, const std::vector<units::Listener>& listeners,
                                     const std::string& self = "");

class PortWatch {
public:
    PortWatch(Effects& fx, Store& store, std::string self = "") : fx_(fx), store_(store), self_(std::move(self)) {}
    // One look at the socket table; each squatter's process is killed and logged. Returns them.
    std::vector<Squatter> tick();

private:
    Effects& fx_;
    Store& store_;
    std::string self_;
};

}  // namespace hostd

// Who listens where: the kernel's own table of listening TCP sockets (sock_diag), with the uid
// and inode of each, and the processes of a user that hold one. hostd's port watch uses them
// to catch a tenant listening on a port that is not its own (systemd's SocketBindDeny= needs
// cgroup BPF, which these hybrid-cgroup hosts do not have).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace hostd::units {

struct Listener {
    std::string address;  // "127.0.0.1", "::", ...
    uint16_t port = 0;
    uid_t uid = 0;
    uint64_t inode = 0;   // the socket's inode: /proc/<pid>/fd/N → "socket:[inode]"
};

// Every listening TCP socket (IPv4 and IPv6) in this network namespace.
std::vector<Listener> tcp_listeners();

// Every established TCP socket (both ends of a loopback connection are two): address and port
// are its local end's. The idle watch counts a tenant's client connections with it: the ends
// on the tenant's PostgreSQL port.
std::vector<Listener> tcp_established();

// The processes (of any user) that hold the socket with this inode: who listens on a port.
std::vector<pid_t> socket_holders(uint64_t inode);

// SIGKILLs the processes of user uid that hold the socket with this inode; returns their pids.
std::vector<pid_t> kill_socket_holders(uid_t uid, uint64_t inode);

}  // namespace hostd::units

// What the daemon's process holds for its lifetime: the lock that keeps a second hostd away
// from the socket, the state and the first one's operations, and an open-file limit that fits
// the listeners' connections.
#pragma once

#include <cstdint>
#include <string>

#include "base/fd.h"
#include "model/config.h"

namespace hostd {

// An exclusive flock(2) on path (made if missing), held until destruction; the file holds the
// holder's PID. Taken, it throws Error(Errc::conflict) naming the PID that holds it. The lock
// goes with the process (a crash or SIGKILL releases it; no stale file to clean up), and its
// descriptor is close-on-exec, so no child outlives hostd holding it.
class InstanceLock {
public:
    explicit InstanceLock(const std::string& path);
    InstanceLock(InstanceLock&&) = default;

private:
    Fd fd_;
};

// Where the locks live: beside the API socket (a second hostd would unlink and rebind it) and
// in the state directory (a second hostd with another socket would still act on the records).
std::string socket_lock_path(const Config& cfg);
std::string state_lock_path(const Config& cfg);

// Open files hostd may need at once: each API connection's socket and what the operation it
// runs holds open (an exec's pipes, an image, a loop device, a libpq socket, a file being
// written: fewer than 16), each metrics connection's socket, and a margin for the rest (the
// journal, sd-bus, the listeners, a refresh's libpq socket), and the hibernation waker's relays
// (two sockets each). Idle tenants hold none.
uint64_t files_needed(const Config& cfg);

// Raises the soft RLIMIT_NOFILE to need (at most the hard limit). Returns a warning to log if
// the hard limit is below need, else "".
std::string raise_file_limit(uint64_t need);

}  // namespace hostd

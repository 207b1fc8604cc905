// HAProxy's runtime API: one command on its stats socket (a Unix socket), its reply. The
// socket is in non-interactive mode: HAProxy answers the line and closes the connection.

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/error.h"
#include "base/fd.h"
#include "routes/routes.h"

namespace hostd::routes {
namespace {

// Waits until fd is ready for events or the deadline passes (throws, naming what it waited for).
void wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline, const std::string& socket,
              const std::string& what) {
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) throw Error(Errc::failed, "HAProxy's runtime socket " + socket + ": no " + what + " in time");
        pollfd p{.fd = fd, .events = events, .revents = 0};
        int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n > 0) return;
        if (n < 0 && errno != EINTR) throw_errno(errno, "HAProxy's runtime socket " + socket + ": poll");
    }
}

}  // namespace

std::string haproxy_runtime_command(const std::string& socket, const std::string& command, int timeout_ms) {
    if (command.find('\n') != std::string::npos || command.find(';') != std::string::npos)
        throw Error(Errc::invalid, "A runtime command for HAProxy is one command on one line: '" + command + "'");
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (socket.size() >= sizeof(a.sun_path))
        throw Error(Errc::invalid, "HAProxy's runtime socket path is too long: " + socket);
    std::memcpy(a.sun_path, socket.c_str(), socket.size() + 1);

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) throw_errno(errno, "Failed to make a socket for HAProxy's runtime API");
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof(a)) < 0) {
        if (errno != EINPROGRESS && errno != EAGAIN)
            throw_errno(errno, "Cannot reach HAProxy's runtime socket " + socket + " (is haproxy running with hostd's configuration?)",
                        Errc::unavailable);
        wait_for(fd.get(), POLLOUT, deadline, socket, "connection");
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) throw_errno(err, "Cannot reach HAProxy's runtime socket " + socket, Errc::unavailable);
    }
    const std::string line = command + "\n";
    for (size_t off = 0; off < line.size();) {
        wait_for(fd.get(), POLLOUT, deadline, socket, "room to send '" + command + "'");
        ssize_t n = ::send(fd.get(), line.data() + off, line.size() - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            throw_errno(errno, "HAProxy's runtime socket " + socket + ": sending '" + command + "'");
        }
        off += static_cast<size_t>(n);
    }
    ::shutdown(fd.get(), SHUT_WR);  // one command: HAProxy answers it and closes
    std::string reply;
    char buf[4096];
    while (true) {
        wait_for(fd.get(), POLLIN, deadline, socket, "reply to '" + command + "'");
        ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
        if (n == 0) return reply;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            throw_errno(errno, "HAProxy's runtime socket " + socket + ": reading the reply to '" + command + "'");
        }
        reply.append(buf, static_cast<size_t>(n));
        if (reply.size() > (1u << 20)) throw Error(Errc::failed, "HAProxy's reply to '" + command + "' is too long");
    }
}

}  // namespace hostd::routes

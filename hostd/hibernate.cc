#include "hostd/hibernate.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "hostd/log.h"
#include "model/hibernate.h"
#include "routes/proxy_v2.h"

namespace hostd {
namespace {

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1000000));
}

void set_nonblocking(int fd) {
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) throw_errno(errno, "Failed to make a socket non-blocking");
}

}  // namespace

// ---- IdleWatch

IdleWatch::IdleWatch(Manager& m, std::function<std::vector<units::Listener>()> established)
    : m_(m), established_(std::move(established)) {}

std::map<uint16_t, uint32_t> IdleWatch::connections() {
    std::vector<uint16_t> ports;
    for (const auto& s : established_()) ports.push_back(s.port);
    return count_by_port(ports);
}

void IdleWatch::tick() {
    const Config& cfg = m_.config();
    std::map<uint16_t, uint32_t> conns;
    try {
        conns = connections();
        last_error_.clear();
    } catch (const Error& e) {
        // Not knowing who is connected, nothing hibernates (and the spells start again).
        if (last_error_ != e.what())
            log::error(std::string("Hibernation: cannot read the kernel's TCP sockets, no tenant hibernates meanwhile: ") + e.what());
        last_error_ = e.what();
        last_busy_.clear();
        return;
    }
    std::vector<IdleFact> facts;
    std::map<std::string, uint16_t> port_of;
    for (const TenantRecord& t : m_.snapshot()) {
        const bool eligible = t.state == TenantState::ready && !t.stopped && !t.ha;
        auto it = conns.find(t.port);
        facts.push_back({.name = t.name, .eligible = eligible, .hibernated = t.hibernated,
                         .connections = it == conns.end() ? 0u : it->second});
        port_of[t.name] = t.port;
    }
    const double now = std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
    for (const std::string& name : due_for_hibernation(facts, last_busy_, now, cfg.hibernate_after)) {
        const uint16_t port = port_of[name];
        try {
            // Asked again once its route points at the waker: a client that came meanwhile keeps it awake.
            if (!m_.hibernate(name, [&] { return connections()[port] == 0; })) last_busy_[name] = now;
        } catch (const Error& e) {
            log::error(std::string("Hibernation failed: ") + e.what(), name);
            last_busy_[name] = now;  // tried again after a whole spell, not every tick
        }
    }
}

// ---- Waker

Waker::Waker(uint16_t port, size_t max_relays, Tenants tenants, std::chrono::milliseconds wait)
    : tenants_(std::move(tenants)), max_relays_(max_relays), wait_(wait) {
    listener_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listener_) throw_errno(errno, "Failed to make the hibernation waker's socket");
    const int one = 1;
    ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0)
        throw_errno(errno, "Failed to listen on 127.0.0.1:" + std::to_string(port) +
                               " for hibernated tenants' connections (hibernate.waker_port in hostd.toml: choose a free port)");
    if (::listen(listener_.get(), 128) < 0) throw_errno(errno, "Failed to listen on the hibernation waker's socket");
    socklen_t len = sizeof a;
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    stop_ = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!stop_) throw_errno(errno, "Failed to make the hibernation waker's eventfd");
    accept_ = std::thread([this] { accept_loop(); });
}

Waker::~Waker() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_.get(), &one, sizeof one);
    accept_.join();
    std::unique_lock lk(mu_);
    idle_.wait(lk, [this] { return active_ == 0; });
}

void Waker::accept_loop() {
    for (;;) {
        pollfd p[2] = {{listener_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            log::error(std::string("The hibernation waker stops: poll failed: ") + std::strerror(errno));
            return;
        }
        if (p[1].revents) return;
        if (!(p[0].revents & POLLIN)) continue;
        Fd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!c) continue;  // gone before it was taken, or out of descriptors (logged by nothing: the next one tries)
        std::lock_guard g(mu_);
        if (active_ >= max_relays_) {
            log::warning("Hibernation waker: " + std::to_string(active_) + " connections held already (hibernate.max_relays); one more is closed");
            continue;
        }
        active_++;
        std::thread([this, fd = std::move(c)]() mutable {
            try {
                serve(std::move(fd));
            } catch (const std::exception& e) {
                log::error(std::string("Hibernation waker: a connection failed: ") + e.what());
            }
            std::lock_guard g2(mu_);
            if (--active_ == 0) idle_.notify_all();
        }).detach();
    }
}

std::optional<uint16_t> Waker::read_header(int fd, Clock::time_point deadline, std::string& peer) {
    std::string buf;
    size_t need = 16;
    for (;;) {
        while (buf.size() < need) {
            pollfd p[2] = {{fd, POLLIN, 0}, {stop_.get(), POLLIN, 0}};
            const int r = ::poll(p, 2, ms_left(deadline));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0 || p[1].revents) {
                peer = r == 0 ? "no PROXY header within the wait" : "hostd stops";
                return std::nullopt;
            }
            char chunk[routes::kProxyV2MaxLength];
            // Exactly what the header still lacks: the client's own bytes stay in the socket.
            const ssize_t n = ::recv(fd, chunk, need - buf.size(), 0);
            if (n <= 0) {
                if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
                peer = "closed before its PROXY header";
                return std::nullopt;
            }
            buf.append(chunk, static_cast<size_t>(n));
            // Anything but a PROXY header is refused at its first bytes, not after a wait for more.
            if (routes::parse_proxy_v2(buf).status == routes::ProxyV2::Status::invalid) break;
        }
        const routes::ProxyV2 h = routes::parse_proxy_v2(buf);
        if (h.status == routes::ProxyV2::Status::invalid) {
            peer = "a bad PROXY header: " + h.error;
            return std::nullopt;
        }
        if (h.status == routes::ProxyV2::Status::ok) {
            peer = h.source + ":" + std::to_string(h.source_port);
            return h.destination_port;
        }
        need = h.need;
    }
}

Fd Waker::connect_backend(uint16_t port, Clock::time_point deadline) {
    for (;;) {
        Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!s) throw_errno(errno, "Failed to make a socket toward the tenant");
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return s;
        const int err = errno;
        if (Clock::now() >= deadline)
            throw_errno(err, "Failed to reach the tenant's PostgreSQL on 127.0.0.1:" + std::to_string(port));
        pollfd p{stop_.get(), POLLIN, 0};
        if (::poll(&p, 1, 50) > 0) throw Error(Errc::unavailable, "hostd stops");
    }
}

void Waker::serve(Fd client) {
    const auto t0 = Clock::now();
    const auto deadline = t0 + wait_;
    std::string peer;
    const std::optional<uint16_t> public_port = read_header(client.get(), std::min(deadline, t0 + std::chrono::seconds(5)), peer);
    if (!public_port) {
        log::warning("Hibernation waker: a connection closed: " + peer);
        return;
    }
    const std::optional<WakeTarget> t = tenants_.find(*public_port);
    if (!t || !t->serves) {
        // An idle listener, or a tenant stopped on purpose or being deleted: as HAProxy alone
        // would, the connection is closed.
        log::info("Hibernation waker: no tenant to wake on port " + std::to_string(*public_port) + " (" +
                  (t ? "it is stopped or not ready" : "none routed there") + "); the connection from " + peer + " is closed");
        return;
    }
    try {
        if (t->hibernated) {
            tenants_.wake(t->name, deadline);
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
            log::info("Woken by a connection from " + peer + " in " + std::to_string(ms) + " ms", t->name);
        }
        Fd backend = connect_backend(t->pg_port, deadline);
        relay(client.get(), backend.get());
    } catch (const Error& e) {
        log::error("Hibernation waker: the connection from " + peer + " is closed: " + e.what(), t->name);
    }
}

// Both ways until both sides have closed (each close passed on as a shutdown of writing), an
// error, or hostd stopping. Non-blocking, one buffer each way: a side that does not read
// never stalls the other way.
void Waker::relay(int a, int b) {
    set_nonblocking(a);
    set_nonblocking(b);
    const int one = 1;
    ::setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct Way {
        int from, to;
        std::vector<char> buf = std::vector<char>(64 * 1024);
        size_t have = 0, sent = 0;
        bool eof = false, shut = false;
    };
    Way ways[2] = {{a, b}, {b, a}};
    for (;;) {
        if (ways[0].shut && ways[1].shut) return;
        pollfd p[3] = {{a, 0, 0}, {b, 0, 0}, {stop_.get(), POLLIN, 0}};
        for (int i = 0; i < 2; i++) {
            Way& w = ways[i];
            pollfd& in = p[i];       // w.from is a for way 0, b for way 1
            pollfd& out = p[1 - i];  // and w.to the other
            if (!w.eof && w.have == 0) in.events |= POLLIN;
            if (w.sent < w.have) out.events |= POLLOUT;
        }
        if (::poll(p, 3, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (p[2].revents) return;
        for (int i = 0; i < 2; i++) {
            // A reset, or a side closed both ways with nothing more to read from it: done.
            if ((p[i].revents & POLLERR) || ((p[i].revents & POLLHUP) && ways[i].eof)) return;
        }
        for (int i = 0; i < 2; i++) {
            Way& w = ways[i];
            if (!w.eof && w.have == 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                const ssize_t n = ::recv(w.from, w.buf.data(), w.buf.size(), 0);
                if (n > 0) w.have = static_cast<size_t>(n), w.sent = 0;
                else if (n == 0) w.eof = true;
                else if (errno != EAGAIN && errno != EINTR) return;  // reset: both sides close
            }
            if (w.sent < w.have) {
                const ssize_t n = ::send(w.to, w.buf.data() + w.sent, w.have - w.sent, MSG_NOSIGNAL);
                if (n > 0) w.sent += static_cast<size_t>(n);
                else if (n < 0 && errno != EAGAIN && errno != EINTR) return;
                if (w.sent == w.have) w.have = w.sent = 0;
            }
            if (w.eof && w.have == 0 && !w.shut) {
                ::shutdown(w.to, SHUT_WR);
                w.shut = true;
            }
        }
    }
}

Waker::Tenants waker_tenants(Manager& m) {
    return {.find =
                [&m](uint16_t public_port) -> std::optional<WakeTarget> {
                    for (const TenantRecord& t : m.snapshot())
                        if (!t.ha && t.public_port == public_port && t.state != TenantState::detached)
                            return WakeTarget{.name = t.name, .pg_port = t.port, .hibernated = t.hibernated,
                                              .serves = t.state == TenantState::ready && !t.stopped};
                    return std::nullopt;
                },
            .wake = [&m](const std::string& name, Clock::time_point deadline) { m.wake(name, deadline); }};
}

}  // namespace hostd

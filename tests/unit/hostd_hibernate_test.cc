// The waker on real loopback sockets: the PROXY header names the tenant, which is woken once,
// and the connection's bytes are relayed both ways; anything else is closed without a wake.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "hostd/hibernate.h"

using namespace hostd;

namespace {

Fd listen_any(uint16_t& port) {
    Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(s.get(), 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return s;
}

Fd connect_to(uint16_t port) {
    Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return s;
}

// "PostgreSQL": echoes every connection's bytes back, with a prefix.
class Echo {
public:
    Echo() : listener_(listen_any(port)), thread_([this] { run(); }) {}
    ~Echo() {
        ::shutdown(listener_.get(), SHUT_RDWR);
        thread_.join();
    }
    uint16_t port = 0;

private:
    void run() {
        for (;;) {
            Fd c(::accept(listener_.get(), nullptr, nullptr));
            if (!c) return;
            std::thread([c = std::move(c)] {
                char buf[4096];
                for (ssize_t n; (n = ::recv(c.get(), buf, sizeof buf, 0)) > 0;) {
                    const std::string out = "echo:" + std::string(buf, static_cast<size_t>(n));
                    ::send(c.get(), out.data(), out.size(), MSG_NOSIGNAL);
                }
            }).detach();
        }
    }
    Fd listener_;
    std::thread thread_;
};

std::string header_for(uint16_t public_port) {
    std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
    h += std::string("\x21\x11\x00\x0c", 4);
    const unsigned char block[12] = {192, 0, 2, 7, 127, 0, 0, 1, 0x9c, 0x40,
                                     static_cast<unsigned char>(public_port >> 8), static_cast<unsigned char>(public_port & 0xff)};
    h.append(reinterpret_cast<const char*>(block), 12);
    return h;
}

void send_all(const Fd& s, const std::string& d) { ASSERT_EQ(::send(s.get(), d.data(), d.size(), MSG_NOSIGNAL), ssize_t(d.size())); }

// What comes back within 3 s until the peer closes or `want` bytes came; "" for a close at once.
std::string read_some(const Fd& s, size_t want) {
    std::string got;
    while (got.size() < want) {
        pollfd p{s.get(), POLLIN, 0};
        if (::poll(&p, 1, 3000) <= 0) break;
        char buf[4096];
        const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
    }
    return got;
}

bool closed_soon(const Fd& s) {
    pollfd p{s.get(), POLLIN, 0};
    if (::poll(&p, 1, 3000) <= 0) return false;
    char c;
    return ::recv(s.get(), &c, 1, 0) <= 0;
}

struct Tenants {
    Echo echo;
    std::mutex mu;
    std::vector<std::string> woken;
    bool hibernated = true, serves = true;
    Waker::Tenants fns() {
        return {.find = [this](uint16_t port) -> std::optional<WakeTarget> {
                    if (port != 28001) return std::nullopt;
                    return WakeTarget{.name = "acme", .pg_port = echo.port, .hibernated = hibernated, .serves = serves};
                },
                .wake = [this](const std::string& name, std::chrono::steady_clock::time_point) {
                    std::lock_guard g(mu);
                    woken.push_back(name);
                }};
    }
};

}  // namespace

TEST(Waker, WakesTheTenantThePublicPortNamesAndRelaysBothWays) {
    Tenants t;
    Waker w(0, 8, t.fns());
    Fd c = connect_to(w.port());
    send_all(c, header_for(28001) + "hello");
    EXPECT_EQ(read_some(c, 10), "echo:hello");
    send_all(c, "again");
    EXPECT_EQ(read_some(c, 10), "echo:again");
    {
        std::lock_guard g(t.mu);
        EXPECT_EQ(t.woken, std::vector<std::string>{"acme"});
    }
    // The client's close reaches the tenant, whose close comes back.
    ::shutdown(c.get(), SHUT_WR);
    EXPECT_TRUE(closed_soon(c));
}

TEST(Waker, RelaysWithoutAWakeToATenantAwakeAlready) {
    Tenants t;
    t.hibernated = false;
    Waker w(0, 8, t.fns());
    Fd c = connect_to(w.port());
    send_all(c, header_for(28001) + "x");
    EXPECT_EQ(read_some(c, 6), "echo:x");
    std::lock_guard g(t.mu);
    EXPECT_TRUE(t.woken.empty());
}

TEST(Waker, ClosesWithoutAWakeOnABadHeaderAnUnknownPortOrAStoppedTenant) {
    Tenants t;
    Waker w(0, 8, t.fns());
    for (const std::string& bad : {std::string("\x00\x00\x00\x08\x04\xd2\x16\x2f", 8), std::string("GET / HTTP/1.0\r\n\r\n"),
                                   header_for(28001).substr(0, 12) + std::string("\x20\x00\x00\x00", 4),  // LOCAL
                                   header_for(28009)}) {
        SCOPED_TRACE(bad.size());
        Fd c = connect_to(w.port());
        send_all(c, bad);
        EXPECT_TRUE(closed_soon(c));
    }
    t.serves = false;
    Fd c = connect_to(w.port());
    send_all(c, header_for(28001));
    EXPECT_TRUE(closed_soon(c));
    std::lock_guard g(t.mu);
    EXPECT_TRUE(t.woken.empty());
}

TEST(Waker, HoldsAtMostMaxRelaysConnections) {
    Tenants t;
    Waker w(0, 1, t.fns());
    Fd held = connect_to(w.port());
    send_all(held, header_for(28001) + "a");
    EXPECT_EQ(read_some(held, 6), "echo:a");  // relayed: it holds the one place
    Fd more = connect_to(w.port());
    EXPECT_TRUE(closed_soon(more));
    held.reset();
    // Once the first is gone its place is free again.
    for (int i = 0; i < 50; i++) {
        Fd c = connect_to(w.port());
        send_all(c, header_for(28001) + "b");
        if (read_some(c, 6) == "echo:b") return;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "no place freed";
}

TEST(Waker, StopsWithConnectionsHeldAndSaysWhenItsPortIsTaken) {
    Tenants t;
    auto w = std::make_unique<Waker>(0, 8, t.fns());
    const uint16_t port = w->port();
    try {
        Waker again(port, 8, t.fns());
        ADD_FAILURE() << "bound a port in use";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("hibernate.waker_port"), std::string::npos) << e.what();
    }
    Fd silent = connect_to(port);  // no header: waits in read_header
    Fd relayed = connect_to(port);
    send_all(relayed, header_for(28001) + "z");
    EXPECT_EQ(read_some(relayed, 6), "echo:z");
    w.reset();  // returns: every connection cut
    EXPECT_TRUE(closed_soon(relayed));
    EXPECT_TRUE(closed_soon(silent));
}

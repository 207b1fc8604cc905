// Hibernation of idle tenants ([hibernate] in hostd.toml; README "Hibernation"). Two parts:
//
// IdleWatch: every check_interval, one look at the kernel's established TCP sockets counts each
// tenant's client connections (sockets on its PostgreSQL port: clients come through HAProxy over
// TCP, while hostd's own logins for metrics and checks use the tenant's Unix socket and are
// not counted, so they neither keep a tenant awake nor wake it). A tenant with none for `after`
// is hibernated (Manager::hibernate: recorded, routed to the waker, its unit stopped).
//
// Waker: one listener on 127.0.0.1:<waker_port>, HAProxy's backup server of every hostd
// listener (send-proxy-v2). A hibernated tenant's own server is in maintenance, so its
// connections come here; the PROXY header's destination port (the tenant's public port) names
// the tenant, which is woken (Manager::wake: started, PostgreSQL accepting, its own server
// ready again: later connections go straight to it), and this connection is relayed to its
// PostgreSQL until either side closes. Connections held at once are bounded (max_relays).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "hostd/manager.h"
#include "units/sockets.h"

namespace hostd {

class IdleWatch {
public:
    // established: the kernel's established TCP sockets (units::tcp_established; a fake in tests).
    IdleWatch(Manager& m, std::function<std::vector<units::Listener>()> established);
    // One look; tenants idle for [hibernate] after are hibernated. Failures are logged.
    void tick();

private:
    std::map<uint16_t, uint32_t> connections();

    Manager& m_;
    std::function<std::vector<units::Listener>()> established_;
    std::map<std::string, double> last_busy_;  // model/hibernate.h due_for_hibernation
    std::string last_error_;                   // logged once, not every tick
};

// Who a connection on a public port is for (from the records; nullopt: no tenant there).
struct WakeTarget {
    std::string name;
    uint16_t pg_port = 0;   // PostgreSQL on 127.0.0.1
    bool hibernated = false;
    bool serves = false;    // ready, not stopped on purpose: worth relaying to
};

class Waker {
public:
    struct Tenants {
        std::function<std::optional<WakeTarget>(uint16_t public_port)> find;
        std::function<void(const std::string& name, std::chrono::steady_clock::time_point deadline)> wake;
    };
    // Listens on 127.0.0.1:port; throws saying what failed (the port taken: change
    // hibernate.waker_port). wait: how long a connection may wait for its tenant to accept.
    Waker(uint16_t port, size_t max_relays, Tenants tenants, std::chrono::milliseconds wait = std::chrono::seconds(30));
    // Stops accepting, cuts every relay, waits for their threads.
    ~Waker();
    Waker(const Waker&) = delete;
    Waker& operator=(const Waker&) = delete;

    uint16_t port() const { return port_; }  // the port bound (port 0 given: the kernel's choice)

private:
    void accept_loop();
    void serve(Fd client);
    // Reads exactly the PROXY v2 header (never a byte of the client's own), within deadline.
    std::optional<uint16_t> read_header(int fd, std::chrono::steady_clock::time_point deadline, std::string& peer);
    Fd connect_backend(uint16_t port, std::chrono::steady_clock::time_point deadline);
    void relay(int a, int b);

    Tenants tenants_;
    size_t max_relays_;
    std::chrono::milliseconds wait_;
    Fd listener_;
    Fd stop_;  // an eventfd, written once: every poll in here wakes and ends
    uint16_t port_ = 0;
    std::mutex mu_;
    std::condition_variable idle_;
    size_t active_ = 0;  // connection threads alive
    std::thread accept_;  // last: starts after everything it uses exists
};

// The Waker's view of the Manager: the tenant on a public port from the records, and its wake.
Waker::Tenants waker_tenants(Manager& m);

}  // namespace hostd

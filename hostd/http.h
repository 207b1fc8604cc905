// HTTP/1.1 + JSON API on a Unix socket (libmicrohttpd). Routes are a table of handlers that
// parse the request with wire/, call the Manager in domain types and render its reply with
// wire/; errors map to HTTP in one place (wire::http_status). Every byte is hostile: a request
// whose method, path, query, headers or body is not UTF-8, or whose path or query holds a NUL,
// is refused with 400 before it is routed, and replies are rendered so that they cannot throw.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

namespace hostd {

class Manager;
class Collector;

// The gid whose members may use the API: api.group's. A group that does not exist is an error
// naming it and what to do (never a fallback: gid 0 would let root's group in).
gid_t api_group_id(const std::string& group);

// What one listener holds at most. Past max_connections (or max_per_ip from one address, TCP
// only) a new connection is closed at once on the API socket (libmicrohttpd accepts and closes
// it) and waits in the backlog on the metrics listener. A connection on which no byte moves
// for idle_timeout seconds while hostd waits for the client (its request, or room to write the
// reply) is closed; an operation running for a request is never cut.
struct ListenerLimits {
    unsigned max_connections = 1024;
    unsigned max_per_ip = 0;     // 0: no limit
    unsigned idle_timeout = 30;  // seconds; 0: never
};

class ApiServer {
public:
    using Limits = ListenerLimits;

    // listen_fd: a listening AF_UNIX socket (from systemd, or made by hostd). Peers other
    // than root or members of allowed_gid are refused with 403. A thread per connection, so
    // reads keep answering while creates run.
    // GET /metrics is served from collector (text/plain) when one is given.
    ApiServer(Manager& m, int listen_fd, gid_t allowed_gid, Collector* collector = nullptr, Limits limits = {});
    // A TCP listener that serves GET /metrics only (for Prometheus); everything else is 404.
    // One thread polls every connection (a scrape never waits on a tenant), so a flood of idle
    // connections costs file descriptors up to the limits, not threads.
    static std::unique_ptr<ApiServer> metrics_only(Manager& m, int listen_fd, Collector& collector, Limits limits);
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    // The most a request body may hold; a longer one gets 413.
    static constexpr size_t max_body = 1u << 20;

    struct Impl;

private:
    ApiServer(Manager& m, int listen_fd, gid_t allowed_gid, Collector* collector, bool metrics_only, Limits limits);
    std::unique_ptr<Impl> impl_;
};

}  // namespace hostd

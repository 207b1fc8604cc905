// HTTP/1.1 + JSON API on a Unix socket (libmicrohttpd, a thread per connection so reads
// keep answering while creates run). Routes are a table of handlers that parse the request
// with wire/, call the Manager in domain types and render its reply with wire/; errors map to
// HTTP in one place (wire::http_status).
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

class ApiServer {
public:
    // listen_fd: a listening AF_UNIX socket (from systemd, or made by hostd). Peers other
    // than root or members of allowed_gid are refused with 403.
    // GET /metrics is served from collector (text/plain) when one is given.
    ApiServer(Manager& m, int listen_fd, gid_t allowed_gid, Collector* collector = nullptr);
    // A TCP listener that serves GET /metrics only (for Prometheus); everything else is 404.
    static std::unique_ptr<ApiServer> metrics_only(Manager& m, int listen_fd, Collector& collector);
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    struct Impl;

private:
    ApiServer(Manager& m, int listen_fd, gid_t allowed_gid, Collector* collector, bool metrics_only);
    std::unique_ptr<Impl> impl_;
};

}  // namespace hostd

// HTTP/1.1 + JSON API on a Unix socket (libmicrohttpd, a thread per connection so reads
// keep answering while creates run). Routes are a table; errors map to HTTP in one place.
#pragma once

#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/error.h"

namespace hostd {

class Manager;

int http_status(Errc code);
nlohmann::json error_body(const Error& e);

class ApiServer {
public:
    // listen_fd: a listening AF_UNIX socket (from systemd, or made by hostd). Peers other
    // than root or members of allowed_gid are refused with 403.
    ApiServer(Manager& m, int listen_fd, gid_t allowed_gid);
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace hostd

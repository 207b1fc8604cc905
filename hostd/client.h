// hostd's API client over the Unix socket (libcurl). Used by hostctl and the benchmarks.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace hostd {

struct ApiResponse {
    long status = 0;         // HTTP status; 0 when hostd could not be reached
    nlohmann::json body;     // parsed JSON (null if the body was not JSON)
    std::string transport_error;
};

class Client {
public:
    explicit Client(std::string socket_path) : socket_(std::move(socket_path)) {}
    ApiResponse call(const std::string& method, const std::string& path, const nlohmann::json* body = nullptr,
                     long timeout_s = 600) const;
    // Percent-encodes one path segment (tenant names arrive here unvalidated).
    static std::string escape(const std::string& segment);

private:
    std::string socket_;
};

}  // namespace hostd

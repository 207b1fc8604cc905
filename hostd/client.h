// hostd's API client over the Unix socket (libcurl). Used by hostctl and the benchmarks.
#pragma once

#include <functional>
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
    // A streamed reply (application/x-ndjson, e.g. PUT ?progress=1): on_line gets each line
    // before the last as it arrives; the last line ({"done":true,"status":N,...}) becomes the
    // response (status N, body without "done"/"status").
    ApiResponse stream(const std::string& method, const std::string& path, const nlohmann::json* body,
                       const std::function<void(const nlohmann::json&)>& on_line, long timeout_s = 600) const;
    // Percent-encodes one path segment (tenant names arrive here unvalidated).
    static std::string escape(const std::string& segment);

private:
    std::string socket_;
};

}  // namespace hostd

// One error type for every hostd layer: a stable machine-readable code, a human sentence
// (what failed and what to do), and, for bad input, the request field at fault.
// The API maps the code to an HTTP status in one place (hostd/api.cc).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace hostd {

enum class Errc {
    invalid,      // bad input: names, sizes, options (HTTP 400)
    not_found,    // no such tenant or object (404)
    conflict,     // exists already, or taken (409)
    refused,      // would be unsafe: a device with data, a peer without rights (403/409)
    failed,       // a step of the system failed: exec, mount, bus, SQL (500)
    unavailable,  // a dependency is not there or not ready in time (503)
};

std::string_view errc_name(Errc c);

class Error : public std::runtime_error {
public:
    Error(Errc code, std::string message, std::string field = {})
        : std::runtime_error(std::move(message)), code_(code), field_(std::move(field)) {}
    Errc code() const noexcept { return code_; }
    const std::string& field() const noexcept { return field_; }

private:
    Errc code_;
    std::string field_;
};

// "<what>: <strerror(err)>", for failed system calls; err is an errno value (positive).
[[noreturn]] void throw_errno(int err, const std::string& what, Errc code = Errc::failed);

}  // namespace hostd

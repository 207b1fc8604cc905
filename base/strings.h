// Small string helpers shared by the libraries.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

namespace hostd {

// s with ASCII A-Z turned to a-z and every other byte unchanged, whatever the locale: for
// names compared case-insensitively (setting names, filesystem UUIDs, host names).
std::string lower(std::string_view s);

// s is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
// NUL is a valid character here; callers that cannot hold one check for it apart.
bool is_utf8(std::string_view s);

// A DNS label as hostd takes one for a host or member name: 1 to 63 lower-case letters,
// digits and '-', not starting with '-' ([a-z0-9][a-z0-9-]{0,62}); also an etcd key part and
// an HAProxy word.
bool is_dns_label(std::string_view s);

// A number as a person writes it: 0.5, 2, 1.25 (iostream's shortest form, no trailing zeros).
std::string format_number(double v);

// Unix time as RFC 3339 in UTC, to the second ("2026-11-30T04:56:04Z"); "" for 0.
std::string format_rfc3339(std::time_t t);

}  // namespace hostd

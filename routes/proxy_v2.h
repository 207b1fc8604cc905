// The PROXY protocol v2 header HAProxy puts before a connection's bytes (`send-proxy-v2`):
// where the client came from and which address and port it connected to. hostd's waker reads
// it to know which tenant a connection is for. Pure; the input may be anything (the header is
// parsed strictly: a bad one is refused, never guessed at).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hostd::routes {

struct ProxyV2 {
    enum class Status {
        incomplete,  // a valid beginning: `need` bytes in all are needed
        ok,          // a whole header of `length` bytes (the connection's own bytes follow it)
        invalid,     // not a header this parser takes: `error` says why
    };
    Status status = Status::incomplete;
    size_t need = 16;    // incomplete: how many bytes the whole header (or its fixed part) has
    size_t length = 0;   // ok: the header's length (16 + its address block and TLVs)
    std::string error;
    // ok: a proxied TCP connection (PROXY command) over IPv4 or IPv6.
    std::string source, destination;  // addresses as inet_ntop writes them
    uint16_t source_port = 0, destination_port = 0;
};

// The largest header accepted: the 16 fixed bytes and an address block with TLVs of at most
// 512 bytes (HAProxy's without TLVs: 28 for IPv4, 52 for IPv6).
inline constexpr size_t kProxyV2MaxLength = 16 + 512;

// Parses the start of data. Only version 2, command PROXY, TCP over IPv4 or IPv6: LOCAL (a
// health check), UDP, Unix sockets and unknown families are invalid (they name no public port).
ProxyV2 parse_proxy_v2(std::string_view data);

}  // namespace hostd::routes

#include "routes/proxy_v2.h"

#include <arpa/inet.h>

#include <algorithm>

namespace hostd::routes {
namespace {

constexpr std::string_view kSignature("\r\n\r\n\0\r\nQUIT\n", 12);

ProxyV2 invalid(std::string why) {
    ProxyV2 r;
    r.status = ProxyV2::Status::invalid;
    r.error = std::move(why);
    return r;
}

uint16_t be16(std::string_view d, size_t at) {
    return static_cast<uint16_t>((static_cast<unsigned char>(d[at]) << 8) | static_cast<unsigned char>(d[at + 1]));
}

std::string address(int family, const char* bytes) {
    char out[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(family, bytes, out, sizeof out);
    return out;
}

}  // namespace

ProxyV2 parse_proxy_v2(std::string_view d) {
    // The signature is checked on every byte there is, so a client speaking anything else is
    // refused at its first bytes, not after a wait for sixteen.
    const size_t sig = std::min(d.size(), kSignature.size());
    if (d.substr(0, sig) != kSignature.substr(0, sig)) return invalid("no PROXY protocol v2 signature");
    if (d.size() < 16) return ProxyV2{};
    const auto ver_cmd = static_cast<unsigned char>(d[12]);
    const auto fam = static_cast<unsigned char>(d[13]);
    const size_t len = be16(d, 14);
    if ((ver_cmd >> 4) != 2) return invalid("PROXY protocol version " + std::to_string(ver_cmd >> 4) + ", not 2");
    if ((ver_cmd & 0x0f) == 0) return invalid("a LOCAL connection (a health check), not a proxied one");
    if ((ver_cmd & 0x0f) != 1) return invalid("unknown PROXY protocol command " + std::to_string(ver_cmd & 0x0f));
    size_t block = 0;
    int family = 0;
    if (fam == 0x11) family = AF_INET, block = 12;        // TCP over IPv4
    else if (fam == 0x21) family = AF_INET6, block = 36;  // TCP over IPv6
    else return invalid("address family and protocol 0x" + std::string(1, "0123456789abcdef"[fam >> 4]) +
                        "0123456789abcdef"[fam & 15] + ", not TCP over IPv4 or IPv6");
    if (len < block) return invalid("an address block of " + std::to_string(len) + " bytes, too short for its family");
    if (16 + len > kProxyV2MaxLength) return invalid("a header of " + std::to_string(16 + len) + " bytes, more than " +
                                                     std::to_string(kProxyV2MaxLength));
    if (d.size() < 16 + len) {
        ProxyV2 r;
        r.need = 16 + len;
        return r;
    }
    ProxyV2 r;
    r.status = ProxyV2::Status::ok;
    r.length = 16 + len;
    r.need = r.length;
    const char* a = d.data() + 16;
    const size_t alen = family == AF_INET ? 4 : 16;
    r.source = address(family, a);
    r.destination = address(family, a + alen);
    r.source_port = be16(d, 16 + 2 * alen);
    r.destination_port = be16(d, 16 + 2 * alen + 2);
    if (r.destination_port == 0) return invalid("destination port 0");
    return r;
}

}  // namespace hostd::routes

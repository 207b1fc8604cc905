// Connection URLs and random passwords.

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "base/error.h"
#include "pgconf/pgconf.h"

namespace hostd::pgconf {
namespace {

// RFC 3986: everything but the unreserved characters is percent-encoded. That is stricter
// than the userinfo and path grammars require, and always safe for libpq and every other parser.
std::string percent_encode(const std::string& s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                          c == '.' || c == '_' || c == '~';
        if (unreserved) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xf];
        }
    }
    return out;
}

}  // namespace

std::string connection_url(const std::string& host, uint16_t port, const std::string& user,
                           const std::string& password, const std::string& dbname) {
    std::string url = "postgresql://";
    if (!user.empty()) {
        url += percent_encode(user);
        // No password (e.g. a URL shown without secrets): no ':' either.
        if (!password.empty()) url += ":" + percent_encode(password);
        url += "@";
    }
    if (host.find(':') != std::string::npos && host.front() != '[')
        url += "[" + host + "]";  // IPv6 literal
    else if (!host.empty() && host.front() == '/')
        url += percent_encode(host);  // a socket directory, as libpq reads it
    else
        url += host;
    if (port != 0) url += ":" + std::to_string(port);
    url += "/" + percent_encode(dbname);
    return url;
}

std::string random_password() {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    constexpr unsigned n = sizeof alphabet - 1;  // 62
    constexpr unsigned limit = 256 - 256 % n;    // 248: bytes at or above it would bias the draw
    constexpr size_t length = 24;
    std::string out;
    unsigned char buf[64];
    while (out.size() < length) {
        if (RAND_bytes(buf, sizeof buf) != 1) throw Error(Errc::failed, "Failed to get random bytes from OpenSSL");
        for (unsigned char b : buf) {
            if (b >= limit) continue;
            out += alphabet[b % n];
            if (out.size() == length) break;
        }
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return out;
}

}  // namespace hostd::pgconf

// Connection URLs and random passwords.

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

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

std::string base64(const unsigned char* data, size_t n) {
    std::string out(4 * ((n + 2) / 3), '\0');
    const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
    out.resize(static_cast<size_t>(len));
    return out;
}

}  // namespace

std::string scram_verifier(const std::string& password, int iterations, std::string salt) {
    for (unsigned char c : password)
        if (c < 0x20 || c > 0x7e)
            throw Error(Errc::invalid, "A SCRAM secret is made here only for printable ASCII passwords", "password");
    if (password.empty()) throw Error(Errc::invalid, "The password is empty", "password");
    if (iterations < 1) throw Error(Errc::invalid, "SCRAM needs at least one iteration", "iterations");
    if (salt.empty()) {
        salt.resize(16);  // PostgreSQL's SCRAM_DEFAULT_SALT_LEN
        if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) != 1)
            throw Error(Errc::failed, "Failed to get random bytes from OpenSSL");
    }
    // SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, i); ClientKey and ServerKey are HMACs
    // of it; PostgreSQL keeps StoredKey = SHA-256(ClientKey) and ServerKey.
    unsigned char salted[SHA256_DIGEST_LENGTH], client[SHA256_DIGEST_LENGTH], stored[SHA256_DIGEST_LENGTH],
        server[SHA256_DIGEST_LENGTH];
    unsigned int len = 0;
    bool ok = PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                                reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                                iterations, EVP_sha256(), sizeof salted, salted) == 1;
    ok = ok && HMAC(EVP_sha256(), salted, sizeof salted, reinterpret_cast<const unsigned char*>("Client Key"), 10, client, &len);
    ok = ok && SHA256(client, sizeof client, stored);
    ok = ok && HMAC(EVP_sha256(), salted, sizeof salted, reinterpret_cast<const unsigned char*>("Server Key"), 10, server, &len);
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client, sizeof client);
    if (!ok) throw Error(Errc::failed, "Failed to compute a SCRAM secret (OpenSSL)");
    return "SCRAM-SHA-256$" + std::to_string(iterations) + ":" +
           base64(reinterpret_cast<const unsigned char*>(salt.data()), salt.size()) + "$" + base64(stored, sizeof stored) +
           ":" + base64(server, sizeof server);
}

std::string connection_url(const std::string& host, uint16_t port, const std::string& user,
                           const std::string& password, const std::string& dbname) {
    return connection_url(std::vector<UrlHost>{{host, port}}, user, password, dbname);
}

std::string connection_url(const std::vector<UrlHost>& hosts, const std::string& user, const std::string& password,
                           const std::string& dbname) {
    if (hosts.empty()) throw Error(Errc::invalid, "A connection URL needs at least one host", "hosts");
    std::string url = "postgresql://";
    if (!user.empty()) {
        url += percent_encode(user);
        // No password (e.g. a URL shown without secrets): no ':' either.
        if (!password.empty()) url += ":" + percent_encode(password);
        url += "@";
    }
    for (size_t i = 0; i < hosts.size(); i++) {
        const std::string& host = hosts[i].host;
        if (i > 0) url += ",";
        if (host.find(':') != std::string::npos && host.front() != '[')
            url += "[" + host + "]";  // IPv6 literal
        else if (!host.empty() && host.front() == '/')
            url += percent_encode(host);  // a socket directory, as libpq reads it
        else
            url += host;
        if (hosts[i].port != 0) url += ":" + std::to_string(hosts[i].port);
    }
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

// The client half of host-to-host HTTPS (hostd/peer_server.h), shared by the repository host's
// client (repoclient.h) and the HA peers' (peers.h): libcurl with this host's certificate
// (CN hostd@<host>), the other host's checked against hostd's CA and its address; a failure to
// connect said in one sentence naming the other host and what to do (a certificate from another
// CA: which file to copy), and an error reply said in the other host's own words.
#pragma once

#include <string>

#include "wire/wire.h"

namespace hostd::peer {

struct Tls {
    std::string cert, key, ca;  // paths: this host's certificate and key, the CA that vouches for the other
};

// Who is asked, for the sentences: "the repository host at 10.0.0.5:8443", with hints for when it
// cannot be reached and when its certificate is not from this host's CA.
struct Target {
    std::string what;          // "The repository host at 10.0.0.5:8443", "HA host 'b' (10.0.0.3:8444)"
    std::string unreachable;   // "is its hostd running with [repository] listen there?"
    std::string other_ca;      // "copy /var/lib/hostd/ca/ca.crt and ca.key from one host to the other"
};

struct Reply {
    long status = 0;
    std::string body;
    std::string peer_cn;  // the other host's certificate's CN, when asked for (want_peer)
};

// One request (body: JSON or none). Throws Errc::unavailable when no HTTP reply came: the
// other host down, its certificate refused (not from this CA: target.other_ca; not naming
// the address it was reached at), or no reply in timeout_s.
Reply perform(const Target& target, const std::string& url, const Tls& tls, const std::string& method,
              const wire::json* body, long timeout_s, bool want_peer = false);

// A reply that is not a success, said as the other host's: "<what> <where> failed: <its error>"
// (Errc::not_found for a 404, Errc::failed otherwise).
[[noreturn]] void fail(const Reply& r, const std::string& what, const std::string& where);

// "CN = hostd@b, O = x" or "/CN=hostd@b": the CN's value ("" without one).
std::string cn_of(std::string_view subject);

}  // namespace hostd::peer

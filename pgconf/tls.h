// TLS for tenants: hostd keeps a local CA and issues each tenant a server certificate, so
// clients can connect with `sslmode=verify-full sslrootcert=ca.crt` to the host name (or IP
// address) in the tenant's URL. OpenSSL 3 underneath; throws hostd::Error (base/error.h) with
// OpenSSL's own error strings; never logs.
#pragma once

#include <string>
#include <vector>

namespace hostd::pgconf {

struct CaPaths {
    std::string cert;  // e.g. /var/lib/hostd/ca/ca.crt (0644)
    std::string key;   // e.g. /var/lib/hostd/ca/ca.key (0600)
};

// Loads the CA from its two files and checks that they belong together and that the
// certificate is a CA; or, when neither file exists, creates it: an EC P-256 key, a
// self-signed certificate with basicConstraints CA:TRUE (critical), keyUsage keyCertSign and
// cRLSign (critical), subject CN "hostd local CA <hostname>", valid for 10 years. The
// directory is created (0700) if missing; both files are written with write_file_atomic, the
// key first and with mode 0600. Only one of the two files present → Errc::failed, naming the
// one to remove or restore; a CA is never created over a half-present one.
void ensure_ca(const CaPaths& ca);

struct ServerCertRequest {
    std::string tenant;              // the subject's CN
    std::vector<std::string> names;  // subjectAltName, at least one: an IPv4/IPv6 address → IP,
                                     // anything else → DNS (a host name; "*." first is allowed)
    int days = 825;                  // 1..3650
};

struct PemPair {
    std::string cert_pem;
    std::string key_pem;  // PKCS#8, unencrypted: hand it to the tenant's user, mode 0600
};

// Issues a server certificate signed by the CA (SHA-256): a fresh EC P-256 key, a random
// 128-bit serial, basicConstraints CA:FALSE, keyUsage digitalSignature, extendedKeyUsage
// serverAuth, subjectAltName from names, key identifiers. Valid from 5 minutes ago (clock skew)
// for `days`. Bad input → Errc::invalid with the field ("tenant", "names", "days"); the CA
// missing → Errc::not_found.
PemPair issue_server_cert(const CaPaths& ca, const ServerCertRequest& req);

// Certificates between hostd's hosts and for pgBackRest's TLS (a repository on another host):
// the same signing as issue_server_cert, with the extended key usages asked for. A client-only
// certificate may have no names; its CN is what the other end authorizes (pgBackRest's
// tls-server-auth, a repository host's API). Conventions (model/layout.h names them): a host's
// certificate "hostd@<host>" (server and client), a tenant's repository client "<tenant>@<host>"
// (client only); tenant names hold no '@', so neither can pass for the other.
struct CertRequest {
    std::string cn;
    std::vector<std::string> names;  // subjectAltName as for a server certificate; required if server
    bool server = true, client = false;
    int days = 825;
};
PemPair issue_cert(const CaPaths& ca, const CertRequest& req);

// The CA certificate as PEM (what `hostctl ca` prints, and clients use as sslrootcert).
std::string ca_certificate_pem(const CaPaths& ca);

}  // namespace hostd::pgconf

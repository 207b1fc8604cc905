// Who may touch what in the HA hosts' etcd (#17): etcd's v2 auth, keyed by client certificates.
// etcd requires a certificate of hostd's CA from every client (client-cert-auth, ha::render_etcd);
// once auth is on, the certificate's CN is the etcd user. hostd's own CN is "root" (etcd's root
// user: every key and the auth API), each HA tenant's members' CN is tenant_user(t), a user whose
// one role may read and write /hostd/<t> and /hostd/<t>/* (its Patroni scope) and nothing else;
// any other certificate of the CA (a host's, a tenant's repository client) is etcd's guest, which
// hostd leaves without any permission. Patroni speaks the v2 API (ha.h EtcdApi), whose auth is
// apart from v3's: hostd turns v3's on as well with root alone, so no tenant may use v3 at all
// (member changes, the store).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pgconf/tls.h"

namespace hostd {

// The CN of hostd's client certificate for etcd: etcd's root user.
inline constexpr const char* kEtcdRootUser = "root";

// The etcd user (and role) of tenant's members: "tenant:<t>", the CN of their client certificate.
// No other certificate hostd issues has such a CN (a host's is hostd@<h>, a tenant's repository
// client <t>@<h>, a tenant's server certificate, CN <t>, is for server use only, and the etcd
// peers' is hostd:etcd-peer). Errc::invalid for a name that is not a tenant's.
std::string etcd_tenant_user(const std::string& tenant);
// The keys of tenant's Patroni scope: "/hostd/<t>" (Patroni's namespace /hostd/ and scope <t>).
std::string etcd_scope_key(const std::string& tenant);

// A tenant member's client certificate for etcd, from the CA: CN etcd_tenant_user(tenant), client
// use only, no names. Hand it to the member's Patroni (ha::PatroniMember::etcd_tls) with ca.cert
// as its CA; the key is the tenant's (0600, its user's).
pgconf::PemPair issue_etcd_tenant_cert(const pgconf::CaPaths& ca, const std::string& tenant);

// hostd's client certificate for etcd: CN kEtcdRootUser, client use only. Any hostd of the fleet
// issues its own from the shared CA, so no host has to hand a password or a user to another,
// and a host that joins later is root at once. Keep it root's (0600).
pgconf::PemPair issue_etcd_root_cert(const pgconf::CaPaths& ca);

// What hostd asks of etcd. Every call is idempotent and safe while other hosts make the same
// calls; throws hostd::Error (Errc::unavailable: no etcd endpoint answered; Errc::failed: etcd
// refused, in its words).
class EtcdAdmin {
public:
    virtual ~EtcdAdmin() = default;
    // Auth on, and as hostd wants it: the root user (its password a fresh random one nobody
    // keeps: hostd is root by its certificate), the guest role without any permission, and
    // every other user and role a tenant's as grant_tenant makes it (anything else removed,
    // extra roles and permissions revoked: what a client set before auth was on is undone).
    // The v3 API's auth too (its own users): on, with the root user and role only.
    virtual void ensure_auth() = 0;
    // tenant's user and role: read and write on etcd_scope_key(t) and everything under it, and
    // nothing else. Turns auth on first if it is off (ensure_auth).
    virtual void grant_tenant(const std::string& tenant) = 0;
    // The user and role gone (none is fine): a certificate of tenant's is then a guest.
    virtual void revoke_tenant(const std::string& tenant) = 0;
    // The scope's keys gone (none is fine): the tenant's Patroni cluster forgotten.
    virtual void remove_scope(const std::string& tenant) = 0;
    // Whether a member of the scope is alive (a key under <scope>/members: Patroni's, with its
    // ttl): another HA tenant of that name runs, or one not deleted yet.
    virtual bool scope_in_use(const std::string& tenant) = 0;
};

struct EtcdAdminOptions {
    std::vector<std::string> endpoints;  // "https://addr:port", tried in order until one answers
    std::string cert, key;               // hostd's client certificate (issue_etcd_root_cert) and key
    std::string ca;                      // the CA etcd's certificate comes from
    long timeout_s = 5;                  // per request
    std::string etcdctl = "/usr/bin/etcdctl";  // for the v3 API's auth (Debian's etcd-client)
};

// The real one: etcd's v2 HTTP API over libcurl.
std::unique_ptr<EtcdAdmin> make_real_etcd_admin(EtcdAdminOptions options);

}  // namespace hostd

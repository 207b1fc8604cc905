#include "hostd/repoclient.h"

#include <memory>

#include "base/error.h"
#include "hostd/peer_client.h"
#include "wire/repos.h"
#include "wire/wire.h"

namespace hostd {
namespace {

peer::Target target(const std::string& base, const std::string& ca) {
    return {.what = "The repository host at " + base,
            .unreachable = "is its hostd running with [repository] listen there?",
            .other_ca = "copy " + ca + " and the ca.key beside it from one host to the other, then restart its hostd"};
}

peer::Reply perform(const std::string& base, const std::string& url, const RepoHostTls& tls, const std::string& method,
                    const wire::json* body, long timeout_s, bool want_peer = false) {
    return peer::perform(target(base, tls.ca), url, {.cert = tls.cert, .key = tls.key, .ca = tls.ca}, method, body, timeout_s,
                         want_peer);
}

// A reply that is not a success: the repository host's own error, said as its.
[[noreturn]] void fail(const peer::Reply& r, const std::string& what) { peer::fail(r, what, "on the repository host"); }

std::string escape(const std::string& s) {
    // Tenant names are [a-z0-9-]: nothing to escape; refuse anything else rather than guess.
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            throw Error(Errc::invalid, "'" + s + "' is not a tenant name", "name");
    return s;
}

}  // namespace

RepoHostClient::RepoHostClient(std::string address, RepoHostTls tls) : base_("https://" + address), tls_(std::move(tls)) {}

std::string RepoHostClient::peer_name() const {
    peer::Reply r = perform(base_, base_ + "/v1/repos/-", tls_, "GET", nullptr, 30, /*want_peer=*/true);
    if (r.peer_cn.empty()) throw Error(Errc::failed, "The repository host's certificate names no CN");
    return r.peer_cn;
}

repohost::RepoView RepoHostClient::put(const std::string& tenant, const repohost::PgHost& pg) const {
    const wire::json body = wire::render_repo_request(pg);
    peer::Reply r = perform(base_, base_ + "/v1/repos/" + escape(tenant), tls_, "PUT", &body, 300);
    if (r.status / 100 != 2) fail(r, "Making the repository of '" + tenant + "'");
    return wire::parse_repo_view(wire::parse_body(r.body));
}

void RepoHostClient::backup(const std::string& tenant, backup::BackupType type) const {
    const wire::json body = wire::json{{"type", std::string(backup::to_string(type))}};
    peer::Reply r = perform(base_, base_ + "/v1/repos/" + escape(tenant) + "/backups", tls_, "POST", &body, 6 * 3600);
    if (r.status / 100 != 2) fail(r, "The " + std::string(backup::to_string(type)) + " backup of '" + tenant + "'");
}

repohost::RepoView RepoHostClient::state(const std::string& tenant) const {
    peer::Reply r = perform(base_, base_ + "/v1/repos/" + escape(tenant), tls_, "GET", nullptr, 30);
    if (r.status / 100 != 2) fail(r, "Reading the repository of '" + tenant + "'");
    return wire::parse_repo_view(wire::parse_body(r.body));
}

void RepoHostClient::retire(const std::string& tenant) const {
    peer::Reply r = perform(base_, base_ + "/v1/repos/" + escape(tenant) + "/retire", tls_, "POST", nullptr, 120);
    if (r.status / 100 != 2 && r.status != 404) fail(r, "Retiring the repository of '" + tenant + "'");
}

void RepoHostClient::remove(const std::string& tenant) const {
    peer::Reply r = perform(base_, base_ + "/v1/repos/" + escape(tenant), tls_, "DELETE", nullptr, 120);
    if (r.status / 100 != 2 && r.status != 404) fail(r, "Removing the repository of '" + tenant + "'");
}

}  // namespace hostd

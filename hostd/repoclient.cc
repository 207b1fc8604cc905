#include "hostd/repoclient.h"

#include <memory>

#include "base/curl.h"
#include "base/error.h"
#include "wire/repos.h"
#include "wire/wire.h"

namespace hostd {
namespace {

using curl::collect;

struct Reply {
    long status = 0;
    std::string body;
    std::string peer_cn;
};

// "CN = hostd@b, O = x" or "/CN=hostd@b": the CN's value.
std::string cn_of(std::string_view subject) {
    size_t at = subject.find("CN");
    while (at != std::string_view::npos) {
        size_t i = at + 2;
        while (i < subject.size() && subject[i] == ' ') i++;
        if (i < subject.size() && subject[i] == '=') {
            i++;
            while (i < subject.size() && subject[i] == ' ') i++;
            size_t end = subject.find_first_of(",/\n", i);
            return std::string(subject.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i));
        }
        at = subject.find("CN", at + 2);
    }
    return "";
}

Reply perform(const std::string& url, const RepoHostTls& tls, const std::string& method, const wire::json* body,
              long timeout_s, bool want_peer = false) {
    curl::Easy c(curl_easy_init());
    if (!c) throw Error(Errc::failed, "libcurl could not be initialised");
    curl::Slist headers(curl_slist_append(nullptr, "Content-Type: application/json"));
    Reply r;
    std::string payload;
    curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(c.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c.get(), CURLOPT_SSLCERT, tls.cert.c_str());
    curl_easy_setopt(c.get(), CURLOPT_SSLKEY, tls.key.c_str());
    curl_easy_setopt(c.get(), CURLOPT_CAINFO, tls.ca.c_str());
    curl_easy_setopt(c.get(), CURLOPT_CAPATH, nullptr);
    curl_easy_setopt(c.get(), CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c.get(), CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c.get(), CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &r.body);
    if (want_peer) curl_easy_setopt(c.get(), CURLOPT_CERTINFO, 1L);
    if (body) {
        payload = body->dump();
        curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, payload.c_str());
        curl_easy_setopt(c.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    }
    const CURLcode rc = curl_easy_perform(c.get());
    if (rc != CURLE_OK)
        throw Error(Errc::unavailable, "The repository host at " + url.substr(0, url.find('/', 8)) + " cannot be reached (" +
                                           curl_easy_strerror(rc) + "); is its hostd running with [repository] listen there?");
    curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &r.status);
    if (want_peer) {
        curl_certinfo* ci = nullptr;
        if (curl_easy_getinfo(c.get(), CURLINFO_CERTINFO, &ci) == CURLE_OK && ci && ci->num_of_certs > 0)
            for (curl_slist* s = ci->certinfo[0]; s; s = s->next)
                if (std::string_view(s->data).starts_with("Subject:")) r.peer_cn = cn_of(std::string_view(s->data).substr(8));
    }
    return r;
}

// A reply that is not a success: the repository host's own error, said as its.
[[noreturn]] void fail(const Reply& r, const std::string& what) {
    wire::json body = wire::json::parse(r.body, nullptr, false);
    Error e = wire::parse_error(body.is_discarded() ? wire::json::object() : body, r.status);
    throw Error(r.status == 404 ? Errc::not_found : Errc::failed, what + " on the repository host failed: " + e.what());
}

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
    Reply r = perform(base_ + "/v1/repos/-", tls_, "GET", nullptr, 30, /*want_peer=*/true);
    if (r.peer_cn.empty()) throw Error(Errc::failed, "The repository host's certificate names no CN");
    return r.peer_cn;
}

repohost::RepoView RepoHostClient::put(const std::string& tenant, const repohost::PgHost& pg) const {
    const wire::json body = wire::render_repo_request(pg);
    Reply r = perform(base_ + "/v1/repos/" + escape(tenant), tls_, "PUT", &body, 300);
    if (r.status / 100 != 2) fail(r, "Making the repository of '" + tenant + "'");
    return wire::parse_repo_view(wire::parse_body(r.body));
}

void RepoHostClient::backup(const std::string& tenant, backup::BackupType type) const {
    const wire::json body = wire::json{{"type", std::string(backup::to_string(type))}};
    Reply r = perform(base_ + "/v1/repos/" + escape(tenant) + "/backups", tls_, "POST", &body, 6 * 3600);
    if (r.status / 100 != 2) fail(r, "The " + std::string(backup::to_string(type)) + " backup of '" + tenant + "'");
}

repohost::RepoView RepoHostClient::state(const std::string& tenant) const {
    Reply r = perform(base_ + "/v1/repos/" + escape(tenant), tls_, "GET", nullptr, 30);
    if (r.status / 100 != 2) fail(r, "Reading the repository of '" + tenant + "'");
    return wire::parse_repo_view(wire::parse_body(r.body));
}

void RepoHostClient::retire(const std::string& tenant) const {
    Reply r = perform(base_ + "/v1/repos/" + escape(tenant) + "/retire", tls_, "POST", nullptr, 120);
    if (r.status / 100 != 2 && r.status != 404) fail(r, "Retiring the repository of '" + tenant + "'");
}

void RepoHostClient::remove(const std::string& tenant) const {
    Reply r = perform(base_ + "/v1/repos/" + escape(tenant), tls_, "DELETE", nullptr, 120);
    if (r.status / 100 != 2 && r.status != 404) fail(r, "Removing the repository of '" + tenant + "'");
}

}  // namespace hostd

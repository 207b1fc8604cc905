#include "hostd/peer_client.h"

#include "base/curl.h"
#include "base/error.h"

namespace hostd::peer {

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

Reply perform(const Target& target, const std::string& url, const Tls& tls, const std::string& method,
              const wire::json* body, long timeout_s, bool want_peer) {
    curl::Easy c(curl_easy_init());
    if (!c) throw Error(Errc::failed, "libcurl could not be initialised");
    curl::Slist headers(curl_slist_append(nullptr, "Content-Type: application/json"));
    Reply r;
    std::string payload;
    char errbuf[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(c.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers.get());
    if (!tls.cert.empty()) {
        curl_easy_setopt(c.get(), CURLOPT_SSLCERT, tls.cert.c_str());
        curl_easy_setopt(c.get(), CURLOPT_SSLKEY, tls.key.c_str());
    }
    curl_easy_setopt(c.get(), CURLOPT_CAINFO, tls.ca.c_str());
    curl_easy_setopt(c.get(), CURLOPT_CAPATH, nullptr);
    curl_easy_setopt(c.get(), CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c.get(), CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c.get(), CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.get(), CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, curl::collect);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &r.body);
    if (want_peer) curl_easy_setopt(c.get(), CURLOPT_CERTINFO, 1L);
    if (body) {
        payload = body->dump();
        curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, payload.c_str());
        curl_easy_setopt(c.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    }
    const CURLcode rc = curl_easy_perform(c.get());
    if (rc != CURLE_OK) {
        const std::string detail = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
        // OpenSSL's words for a chain that does not lead to the CA given (another CA's
        // certificate, or a self-signed one) as libcurl reports them.
        const bool other_ca = rc == CURLE_PEER_FAILED_VERIFICATION &&
                              (detail.find("issuer") != std::string::npos || detail.find("self-signed") != std::string::npos ||
                               detail.find("self signed") != std::string::npos);
        if (other_ca)
            throw Error(Errc::unavailable, target.what + " has a certificate that is not from this host's CA (" + tls.ca +
                                               "): hosts that talk to each other share one CA; " + target.other_ca +
                                               " (" + detail + ")");
        throw Error(Errc::unavailable, target.what + " cannot be reached (" + detail + "); " + target.unreachable);
    }
    curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &r.status);
    if (want_peer) {
        curl_certinfo* ci = nullptr;
        if (curl_easy_getinfo(c.get(), CURLINFO_CERTINFO, &ci) == CURLE_OK && ci && ci->num_of_certs > 0)
            for (curl_slist* s = ci->certinfo[0]; s; s = s->next)
                if (std::string_view(s->data).starts_with("Subject:")) r.peer_cn = cn_of(std::string_view(s->data).substr(8));
    }
    return r;
}

void fail(const Reply& r, const std::string& what, const std::string& where) {
    wire::json body = wire::json::parse(r.body, nullptr, false);
    Error e = wire::parse_error(body.is_discarded() ? wire::json::object() : body, r.status);
    throw Error(r.status == 404 ? Errc::not_found : Errc::failed, what + " " + where + " failed: " + e.what());
}

}  // namespace hostd::peer

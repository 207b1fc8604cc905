#include "hostd/patroni_client.h"

#include <arpa/inet.h>

#include <nlohmann/json.hpp>

#include "base/curl.h"
#include "base/error.h"

namespace hostd::patroni {
namespace {

constexpr long kConnectMs = 2000;
constexpr long kReadMs = 2000;       // GET /cluster: Patroni answers from its DCS cache
constexpr long kSwitchoverMs = 25000; // Patroni polls up to 20 s for the new leader before it answers

struct Answer {
    long status = 0;
    std::string body;
};

// One request; throws Errc::unavailable naming the member when no HTTP answer came.
Answer perform(const HaMember& m, const std::string& method, const std::string& path, const std::string* body,
               const ha::Credentials* auth, long timeout_ms, const std::string& what) {
    curl::Easy c(curl_easy_init());
    if (!c) throw Error(Errc::failed, "libcurl could not be initialised");
    const std::string url = base_url(m) + path;
    curl::Slist headers(curl_slist_append(nullptr, "Content-Type: application/json"));
    char errbuf[CURL_ERROR_SIZE] = {};
    Answer a;
    curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(c.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT_MS, kConnectMs);
    curl_easy_setopt(c.get(), CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.get(), CURLOPT_NOPROXY, "*");  // the hosts' own network, never an http_proxy
    curl_easy_setopt(c.get(), CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(c.get(), CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, curl::collect);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &a.body);
    if (auth) {
        curl_easy_setopt(c.get(), CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
        curl_easy_setopt(c.get(), CURLOPT_USERNAME, auth->username.c_str());
        curl_easy_setopt(c.get(), CURLOPT_PASSWORD, auth->password.c_str());
    }
    if (body) {
        curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, body->c_str());
        curl_easy_setopt(c.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
    }
    const CURLcode rc = curl_easy_perform(c.get());
    if (rc != CURLE_OK) {
        const std::string detail = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
        throw Error(Errc::unavailable, what + " failed: " + who(m) + " did not answer (" + detail +
                                           "); is its hostd-patroni unit running there, and the host reachable?");
    }
    curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &a.status);
    return a;
}

// Patroni's plain-text answers, shortened and on one line, for a sentence.
std::string words(const std::string& body) {
    std::string out;
    for (char ch : body.substr(0, 300)) out += (ch == '\n' || ch == '\r' || ch == '\t') ? ' ' : ch;
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out.empty() ? "no reason given" : out;
}

bool is_ipv6(const std::string& a) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET6, a.c_str(), buf) == 1;
}

}  // namespace

std::string who(const HaMember& m) {
    return "member '" + m.host + "' (Patroni at " + (is_ipv6(m.address) ? "[" + m.address + "]" : m.address) + ":" +
           std::to_string(m.rest_port) + ")";
}

std::string base_url(const HaMember& m) {
    return "http://" + (is_ipv6(m.address) ? "[" + m.address + "]" : m.address) + ":" + std::to_string(m.rest_port);
}

std::string cluster(const HaMember& m) {
    const Answer a = perform(m, "GET", "/cluster", nullptr, nullptr, kReadMs, "GET /cluster");
    if (a.status != 200)
        throw Error(Errc::unavailable, "GET /cluster failed: " + who(m) + " answered " + std::to_string(a.status) + " (" +
                                           words(a.body) + ")");
    return a.body;
}

std::string switchover_outcome(const HaMember& m, const ha::Switchover& s, long status, const std::string& body) {
    const std::string what = "The switchover from '" + s.leader + "' to '" + s.candidate + "'";
    const std::string said = words(body);
    if (status == 200) return said;
    // Patroni wrote the switchover key but gave up polling before the new leader showed: it may
    // still happen; the caller reads /cluster.
    if (status == 503 && said.find("status unknown") != std::string::npos) return said;
    if (status == 412)
        throw Error(Errc::conflict, what + " was refused by " + who(m) + ": " + said +
                                        "; look at the members (hostctl show) and try again");
    if (status == 401 || status == 403)
        throw Error(Errc::failed, what + " failed: " + who(m) + " refused hostd's REST API credentials (" + said +
                                      "); the member's patroni.yml (restapi.authentication) and its record disagree");
    throw Error(Errc::failed, what + " failed: " + who(m) + " answered " + std::to_string(status) + " (" + said + ")");
}

std::string switchover(const HaMember& m, const ha::Credentials& rest, const ha::Switchover& s) {
    const std::string body = nlohmann::json{{"leader", s.leader}, {"candidate", s.candidate}}.dump();
    const Answer a = perform(m, "POST", "/switchover", &body, &rest, kSwitchoverMs, "POST /switchover");
    return switchover_outcome(m, s, a.status, a.body);
}

void patch_parameters(const HaMember& m, const ha::Credentials& rest, const std::map<std::string, std::string>& parameters) {
    const std::string body = nlohmann::json{{"postgresql", {{"parameters", parameters}}}}.dump();
    const Answer a = perform(m, "PATCH", "/config", &body, &rest, kReadMs * 5, "PATCH /config");
    if (a.status == 200) return;
    if (a.status == 401 || a.status == 403)
        throw Error(Errc::failed, "PATCH /config failed: " + who(m) + " refused hostd's REST API credentials (" + words(a.body) +
                                      "); the member's patroni.yml (restapi.authentication) and its record disagree");
    throw Error(Errc::failed, "PATCH /config failed: " + who(m) + " answered " + std::to_string(a.status) + " (" +
                                  words(a.body) + ")");
}

}  // namespace hostd::patroni

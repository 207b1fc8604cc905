// libcurl's handles as RAII types, and the write callback that collects a reply's bytes: shared
// by hostctl's client of hostd's socket and hostd's client of a repository host. Header-only
// (its users link libcurl themselves).
#pragma once

#include <curl/curl.h>

#include <cstddef>
#include <memory>
#include <string>

namespace hostd::curl {

struct EasyDeleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

// CURLOPT_WRITEFUNCTION appending to the std::string given as CURLOPT_WRITEDATA.
inline size_t collect(char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

// One GET of path over the HTTP server on a Unix socket (hostd's API), the body kept as text:
// the HTTP status, 0 when it could not be asked.
inline long get_over_socket(const std::string& socket, const std::string& path, std::string& body) {
    body.clear();
    Easy c(curl_easy_init());
    if (!c) return 0;
    const std::string url = "http://localhost" + path;
    curl_easy_setopt(c.get(), CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
    curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, &collect);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &body);
    long status = 0;
    if (curl_easy_perform(c.get()) == CURLE_OK) curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
    return status;
}

}  // namespace hostd::curl

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

}  // namespace hostd::curl

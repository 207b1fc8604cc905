#include "hostd/client.h"

#include <curl/curl.h>

#include <memory>

namespace hostd {
namespace {

struct CurlDeleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

size_t collect(char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

struct LineSink {
    CURL* curl;
    std::string raw, buffer;
    nlohmann::json last;
    const std::function<void(const nlohmann::json&)>* on_line;
};

size_t split_lines(char* data, size_t size, size_t n, void* out) {
    auto* sink = static_cast<LineSink*>(out);
    long status = 0;
    curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {  // a plain JSON reply (refused before streaming began)
        sink->raw.append(data, size * n);
        return size * n;
    }
    sink->buffer.append(data, size * n);
    size_t nl;
    while ((nl = sink->buffer.find('\n')) != std::string::npos) {
        auto j = nlohmann::json::parse(sink->buffer.substr(0, nl), nullptr, false);
        sink->buffer.erase(0, nl + 1);
        if (j.is_discarded()) continue;
        if (j.is_object() && j.value("done", false)) sink->last = std::move(j);
        else (*sink->on_line)(j);
    }
    return size * n;
}

using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using WriteFn = size_t (*)(char*, size_t, size_t, void*);

// One request over hostd's socket; the reply's bytes go to write(data). Returns false with
// r.transport_error set when hostd could not be reached; else r.status is the HTTP status.
bool perform(CURL* c, const std::string& socket, const std::string& method, const std::string& path,
             const nlohmann::json* body, long timeout_s, WriteFn write, void* data, ApiResponse& r) {
    std::string url = "http://localhost" + path, payload;
    std::unique_ptr<curl_slist, SlistDeleter> headers(curl_slist_append(nullptr, "Content-Type: application/json"));
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, data);
    if (body) {
        payload = body->dump();
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload.c_str());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        r.transport_error = std::string("cannot reach hostd at ") + socket + ": " + curl_easy_strerror(rc);
        return false;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    return true;
}

// A fresh handle; null with r.transport_error set if libcurl cannot make one.
CurlHandle new_handle(ApiResponse& r) {
    CurlHandle c(curl_easy_init());
    if (!c) r.transport_error = "libcurl could not be initialised";
    return c;
}

}  // namespace

ApiResponse Client::stream(const std::string& method, const std::string& path, const nlohmann::json* body,
                           const std::function<void(const nlohmann::json&)>& on_line, long timeout_s) const {
    ApiResponse r;
    CurlHandle c = new_handle(r);
    if (!c) return r;
    LineSink sink{c.get(), {}, {}, nullptr, &on_line};
    if (!perform(c.get(), socket_, method, path, body, timeout_s, split_lines, &sink, r)) return r;
    if (r.status == 200 && sink.last.is_object()) {
        r.status = sink.last.value("status", 500L);
        sink.last.erase("done");
        sink.last.erase("status");
        r.body = std::move(sink.last);
    } else if (r.status == 200) {
        r.status = 500;  // the stream ended without its result line: hostd went away mid-create
        r.body = {{"error", {{"code", "failed"}, {"message", "hostd closed the progress stream before the result"}}}};
    } else {
        r.body = nlohmann::json::parse(sink.raw, nullptr, false);
        if (r.body.is_discarded()) r.body = nullptr;
    }
    return r;
}

std::string Client::escape(const std::string& s) {
    std::string out;
    static const char* hex = "0123456789ABCDEF";
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
        else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

ApiResponse Client::call(const std::string& method, const std::string& path, const nlohmann::json* body, long timeout_s) const {
    ApiResponse r;
    CurlHandle c = new_handle(r);
    if (!c) return r;
    std::string received;
    if (!perform(c.get(), socket_, method, path, body, timeout_s, collect, &received, r)) return r;
    r.body = nlohmann::json::parse(received, nullptr, false);
    if (r.body.is_discarded()) r.body = nullptr;
    return r;
}

}  // namespace hostd

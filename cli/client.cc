#include "cli/client.h"

#include <cerrno>
#include <memory>

#include "base/curl.h"

namespace hostd {
namespace {

using curl::collect;

struct LineSink {
    CURL* curl;
    std::string raw, buffer;
    wire::json last;
    const std::function<void(const wire::json&)>* on_line;
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
        auto j = wire::json::parse(sink->buffer.substr(0, nl), nullptr, false);
        sink->buffer.erase(0, nl + 1);
        if (j.is_discarded()) continue;
        if (j.is_object() && j.value("done", false)) sink->last = std::move(j);
        else (*sink->on_line)(j);
    }
    return size * n;
}

using CurlHandle = curl::Easy;
using WriteFn = size_t (*)(char*, size_t, size_t, void*);

// One request over hostd's socket; the reply's bytes go to write(data). Returns false with
// r.transport_error set when hostd could not be reached; else r.status is the HTTP status.
bool perform(CURL* c, const std::string& socket, const std::string& method, const std::string& path,
             const wire::json* body, long timeout_s, WriteFn write, void* data, ApiResponse& r) {
    std::string url = "http://localhost" + path, payload;
    curl::Slist headers(curl_slist_append(nullptr, "Content-Type: application/json"));
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
        long os_errno = 0;
        curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
        r.denied = os_errno == EACCES || os_errno == EPERM;
        r.transport_error = r.denied ? "permission denied on hostd's socket " + socket +
                                           ": root and members of its group (api.group, default hostd) may use it"
                                     : std::string("cannot reach hostd at ") + socket + ": " + curl_easy_strerror(rc);
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

ApiResponse Client::stream(const std::string& method, const std::string& path, const wire::json* body,
                           const std::function<void(const wire::json&)>& on_line, long timeout_s) const {
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
        r.body = wire::json::parse(sink.raw, nullptr, false);
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

ApiResponse Client::call(const std::string& method, const std::string& path, const wire::json* body, long timeout_s) const {
    ApiResponse r;
    CurlHandle c = new_handle(r);
    if (!c) return r;
    std::string received;
    if (!perform(c.get(), socket_, method, path, body, timeout_s, collect, &received, r)) return r;
    r.body = wire::json::parse(received, nullptr, false);
    if (r.body.is_discarded()) r.body = nullptr;
    return r;
}

namespace {

std::string tenant_path(const std::string& name) { return "/v1/tenants/" + Client::escape(name); }

// The typed answer of a raw exchange: parse(body) on 2xx, hostd's error otherwise.
template <class T, class Parse>
Reply<T> typed(ApiResponse r, Parse parse) {
    Reply<T> out;
    out.status = r.status;
    out.transport_error = std::move(r.transport_error);
    out.denied = r.denied;
    out.body = std::move(r.body);
    if (out.status == 0) return out;
    if (out.status >= 200 && out.status < 300) out.value = parse(out.body);
    else out.error = wire::parse_error(out.body, out.status);
    return out;
}

// A progress stream's lines ({"start":"disk"}, {"step":"disk","ms":12}) told to on_step.
std::function<void(const wire::json&)> step_lines(const Client::StepFn& on_step) {
    return [on_step](const wire::json& line) {
        if (!on_step || !line.is_object()) return;
        if (line.contains("step")) on_step(line.value("step", ""), line.value("ms", 0L));
        else if (line.contains("start")) on_step(line.value("start", ""), -1);
    };
}

}  // namespace

Reply<Created> Client::create(const std::string& name, const CreateRequest& req, const StepFn& on_step) const {
    const wire::json body = wire::render(req);
    return typed<Created>(stream("PUT", tenant_path(name) + "?progress=1", &body,
                                 step_lines(on_step)),
                          wire::parse_created);
}

Reply<Restored> Client::restore(const std::string& name, const RestoreRequest& req, const StepFn& on_step) const {
    const wire::json body = wire::render(req);
    return typed<Restored>(stream("POST", tenant_path(name) + "/restore?progress=1", &body,
                                  step_lines(on_step)),
                           wire::parse_restored);
}

Reply<Deleted> Client::remove(const std::string& name, bool purge, bool purge_backups) const {
    const std::string query = purge ? (purge_backups ? "?purge=true&purge_backups=true" : "?purge=true")
                                    : (purge_backups ? "?purge_backups=true" : "");
    return typed<Deleted>(call("DELETE", tenant_path(name) + query), wire::parse_deleted);
}

Reply<TenantView> Client::get(const std::string& name) const {
    return typed<TenantView>(call("GET", tenant_path(name)), wire::parse_tenant_reply);
}

Reply<std::vector<TenantView>> Client::list(bool live) const {
    return typed<std::vector<TenantView>>(call("GET", live ? "/v1/tenants?live=1" : "/v1/tenants"), wire::parse_tenants);
}

Reply<Resized> Client::resize(const std::string& name, const ResizeRequest& req) const {
    const wire::json body = wire::render(req);
    return typed<Resized>(call("POST", tenant_path(name) + "/resize", &body), wire::parse_resized);
}

Reply<TenantView> Client::set_password(const std::string& name, const PasswordRequest& req) const {
    const wire::json body = wire::render(req);
    return typed<TenantView>(call("POST", tenant_path(name) + "/password", &body), wire::parse_tenant_reply);
}

Reply<TenantView> Client::switchover(const std::string& name, const SwitchoverRequest& req) const {
    const wire::json body = wire::render(req);
    return typed<TenantView>(call("POST", tenant_path(name) + "/switchover", &body), wire::parse_tenant_reply);
}

Reply<TenantView> Client::replace(const std::string& name, const ReplaceRequest& req, const StepFn& on_step) const {
    const wire::json body = wire::render(req);
    return typed<TenantView>(stream("POST", tenant_path(name) + "/replace?progress=1", &body,
                                    step_lines(on_step)),
                             wire::parse_tenant_reply);
}

Reply<TenantView> Client::lifecycle(const std::string& name, const std::string& verb) const {
    const wire::json body = wire::json::object();
    return typed<TenantView>(call("POST", tenant_path(name) + "/" + verb, &body), wire::parse_tenant_reply);
}

Reply<LimitsChanged> Client::set_limits(const std::string& name, const LimitsUpdate& u) const {
    const wire::json body = wire::render(u);
    return typed<LimitsChanged>(call("PATCH", tenant_path(name), &body), wire::parse_limits_changed);
}

Reply<BackupDone> Client::backup(const std::string& name, const std::string& type) const {
    const wire::json body = wire::render_backup_request(type);
    return typed<BackupDone>(call("POST", tenant_path(name) + "/backups", &body), wire::parse_backup_done);
}

Reply<BackupList> Client::backups(const std::string& name) const {
    return typed<BackupList>(call("GET", tenant_path(name) + "/backups"), wire::parse_backup_list);
}

Reply<std::vector<KeptView>> Client::deleted() const {
    return typed<std::vector<KeptView>>(call("GET", "/v1/deleted"), wire::parse_kept);
}

Reply<ReconcileReport> Client::reconcile() const {
    return typed<ReconcileReport>(call("POST", "/v1/reconcile"), wire::parse_reconcile);
}

Reply<HostInfo> Client::host() const { return typed<HostInfo>(call("GET", "/v1/host"), wire::parse_host); }

Reply<std::string> Client::ca() const { return typed<std::string>(call("GET", "/v1/ca"), wire::parse_ca); }

}  // namespace hostd

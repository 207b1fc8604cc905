#include "hostd/http.h"

#include <microhttpd.h>
#include <sys/socket.h>

#include <cstring>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "base/error.h"
#include "hostd/collector.h"
#include "hostd/log.h"
#include "hostd/manager.h"
#include "units/users.h"
#include "wire/wire.h"

namespace hostd {

namespace {

struct Request {
    std::string method, path, body;
    bool purge = false;
    bool allowed = false;
    bool live = false;               // GET /v1/tenants?live=1
    bool progress = false;           // PUT ?progress=1: stream each step as NDJSON
    Manager::Progress on_step;       // set by the streaming reply
};

using wire::json;

struct Reply {
    int status = 200;
    json body;
};

using Handler = std::function<Reply(Manager&, const Request&, const std::string& arg)>;

struct Route {
    const char* method;
    const char* prefix;  // exact path, or a prefix ending in '/' whose remainder is the argument
    Handler handler;
};

const std::vector<Route>& route_table() {
    static const std::vector<Route> table = {
        // ?live=1: each ready tenant's live status too (unit, memory, CPU, disk), as GET of one.
        {"GET", "/v1/tenants", [](Manager& m, const Request& r, const std::string&) { return Reply{200, wire::render(m.list(r.live))}; }},
        {"GET", "/v1/tenants/", [](Manager& m, const Request&, const std::string& n) { return Reply{200, wire::render_one(m.get(n))}; }},
        {"PUT", "/v1/tenants/",
         [](Manager& m, const Request& r, const std::string& n) {
             return Reply{201, wire::render(m.create(n, wire::parse_create(wire::parse_body(r.body)), r.on_step))};
         }},
        {"POST", "/v1/tenants/",
         [](Manager& m, const Request& r, const std::string& arg) {
             const std::string suffix = "/resize";
             if (arg.size() <= suffix.size() || arg.compare(arg.size() - suffix.size(), suffix.size(), suffix) != 0)
                 throw Error(Errc::not_found, "No such API path: /v1/tenants/" + arg + " (POST takes /v1/tenants/NAME/resize)");
             auto req = wire::parse_resize(wire::parse_body(r.body));
             return Reply{200, wire::render(m.resize(arg.substr(0, arg.size() - suffix.size()), req))};
         }},
        {"PATCH", "/v1/tenants/",
         [](Manager& m, const Request& r, const std::string& n) {
             return Reply{200, wire::render(m.set_limits(n, wire::parse_limits(wire::parse_body(r.body))))};
         }},
        {"DELETE", "/v1/tenants/",
         [](Manager& m, const Request& r, const std::string& n) { return Reply{200, wire::render(m.remove(n, r.purge))}; }},
        {"GET", "/v1/ca", [](Manager& m, const Request&, const std::string&) { return Reply{200, wire::render_ca(m.ca_certificate())}; }},
        {"GET", "/v1/host", [](Manager& m, const Request&, const std::string&) { return Reply{200, wire::render(m.host())}; }},
        {"POST", "/v1/reconcile", [](Manager& m, const Request&, const std::string&) { return Reply{200, wire::render(m.reconcile())}; }},
    };
    return table;
}

Reply dispatch(Manager& m, const Request& r) {
    bool path_known = false;
    for (auto& route : route_table()) {
        std::string_view p(route.prefix);
        std::string arg;
        bool match;
        if (p.back() == '/') {
            match = r.path.size() > p.size() && r.path.compare(0, p.size(), p) == 0;
            if (match) arg = r.path.substr(p.size());  // may hold '/', newlines...: the name check says no
        } else {
            match = r.path == p;
        }
        if (!match) continue;
        path_known = true;
        if (r.method != route.method) continue;
        try {
            return route.handler(m, r, arg);
        } catch (const Error& e) {
            return {wire::http_status(e.code()), wire::render_error(e)};
        } catch (const std::exception& e) {
            log::error(std::string("Internal error serving ") + r.method + " " + r.path + ": " + e.what());
            return {500, wire::render_error(Error(Errc::failed, std::string("Internal error: ") + e.what()))};
        }
    }
    if (path_known) return {405, wire::render_error(Error(Errc::invalid, "Method " + r.method + " is not allowed on " + r.path))};
    return {404, wire::render_error(Error(Errc::not_found, "No such API path: " + r.path))};
}

bool peer_allowed(MHD_Connection* c, gid_t allowed_gid) {
    auto* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info) return false;
    int fd = info->connect_fd;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return false;
    if (cred.uid == 0 || cred.gid == allowed_gid) return true;
    // Supplementary groups of the peer process, as the kernel saw them at connect().
    std::vector<gid_t> groups(64);
    socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) < 0) return false;
    groups.resize(glen / sizeof(gid_t));
    for (gid_t g : groups)
        if (g == allowed_gid) return true;
    return false;
}

}  // namespace

struct ApiServer::Impl {
    Manager& manager;
    gid_t allowed_gid;
    Collector* collector = nullptr;
    bool metrics_only = false;  // TCP: no peer credentials; /metrics and nothing else
    MHD_Daemon* daemon = nullptr;

    static MHD_Result send_text(MHD_Connection* c, unsigned status, const std::string& text, const char* type) {
        MHD_Response* resp = MHD_create_response_from_buffer(text.size(), const_cast<char*>(text.data()), MHD_RESPMEM_MUST_COPY);
        MHD_add_response_header(resp, "Content-Type", type);
        MHD_Result r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return r;
    }

    static MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method, const char*,
                                 const char* upload, size_t* upload_size, void** ctx) {
        auto* self = static_cast<Impl*>(cls);
        auto* req = static_cast<Request*>(*ctx);
        if (!req) {
            req = new Request{method, url ? url : ""};
            req->allowed = self->metrics_only || peer_allowed(c, self->allowed_gid);
            const char* purge = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "purge");
            req->purge = purge && (std::strcmp(purge, "true") == 0 || std::strcmp(purge, "1") == 0);
            const char* live = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "live");
            req->live = live && (std::strcmp(live, "true") == 0 || std::strcmp(live, "1") == 0);
            const char* progress = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "progress");
            req->progress = progress && (std::strcmp(progress, "true") == 0 || std::strcmp(progress, "1") == 0);
            *ctx = req;
            return MHD_YES;
        }
        if (*upload_size) {
            if (req->body.size() + *upload_size > (1u << 20)) return MHD_NO;  // 1 MiB is plenty for a spec
            req->body.append(upload, *upload_size);
            *upload_size = 0;
            return MHD_YES;
        }
        if (req->allowed && self->collector && req->path == "/metrics" && req->method == "GET") {
            try {
                return send_text(c, 200, self->collector->scrape(), "text/plain; version=0.0.4; charset=utf-8");
            } catch (const std::exception& e) {
                log::error(std::string("Failed to collect metrics: ") + e.what());
                return send_text(c, 500, std::string("failed to collect metrics: ") + e.what() + "\n", "text/plain");
            }
        }
        if (req->allowed && !self->metrics_only && req->progress && req->method == "PUT") return stream_create(self, c, *req);
        Reply reply;
        if (self->metrics_only)
            reply = {404, wire::render_error(Error(Errc::not_found, "This listener serves GET /metrics only"))};
        else if (!req->allowed)
            reply = {403, wire::render_error(Error(Errc::refused, "Permission denied: the API is for root and members of the hostd group"))};
        else
            reply = dispatch(self->manager, *req);
        std::string text = reply.body.dump(2) + "\n";
        MHD_Response* resp = MHD_create_response_from_buffer(text.size(), text.data(), MHD_RESPMEM_MUST_COPY);
        MHD_add_response_header(resp, "Content-Type", "application/json");
        MHD_Result r = MHD_queue_response(c, static_cast<unsigned>(reply.status), resp);
        MHD_destroy_response(resp);
        return r;
    }

    // PUT ?progress=1: 200 with a chunked application/x-ndjson body, one line per step as it
    // ends ({"step":"disk","ms":12}), then one line with the result and the status the plain
    // reply would have had ({"done":true,"status":201,"tenant":{...}} or ..."error":{...}).
    // The create runs on a worker thread; MHD's reader (this connection's thread) waits for lines.
    struct Stream {
        std::mutex mu;
        std::condition_variable cv;
        std::deque<std::string> lines;
        bool done = false;
        std::string current;
        size_t offset = 0;
        std::thread worker;
        void push(std::string line, bool last) {
            std::lock_guard g(mu);
            lines.push_back(std::move(line));
            done = last;
            cv.notify_all();
        }
    };

    static ssize_t stream_read(void* cls, uint64_t, char* buf, size_t max) {
        auto* s = static_cast<Stream*>(cls);
        if (s->offset >= s->current.size()) {
            std::unique_lock l(s->mu);
            s->cv.wait(l, [&] { return !s->lines.empty() || s->done; });
            if (s->lines.empty()) return MHD_CONTENT_READER_END_OF_STREAM;
            s->current = std::move(s->lines.front());
            s->lines.pop_front();
            s->offset = 0;
        }
        size_t n = std::min(max, s->current.size() - s->offset);
        std::memcpy(buf, s->current.data() + s->offset, n);
        s->offset += n;
        return static_cast<ssize_t>(n);
    }

    static void stream_free(void* cls) {
        auto* s = static_cast<Stream*>(cls);
        if (s->worker.joinable()) s->worker.join();  // a create always finishes, client or not
        delete s;
    }

    static MHD_Result stream_create(Impl* self, MHD_Connection* c, const Request& req) {
        auto* s = new Stream;
        s->worker = std::thread([self, s, r = req]() mutable {
            r.on_step = [s](std::string_view step, long ms) {
                s->push(wire::render_step(step, ms).dump() + "\n", false);
            };
            Reply reply = dispatch(self->manager, r);
            json last = reply.body.is_object() ? reply.body : json::object();
            last["done"] = true;
            last["status"] = reply.status;
            s->push(last.dump() + "\n", true);
        });
        MHD_Response* resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, &stream_read, s, &stream_free);
        if (!resp) {
            stream_free(s);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "application/x-ndjson");
        MHD_Result r = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return r;
    }

    static void on_completed(void*, MHD_Connection*, void** ctx, MHD_RequestTerminationCode) {
        delete static_cast<Request*>(*ctx);
        *ctx = nullptr;
    }
};

std::unique_ptr<ApiServer> ApiServer::metrics_only(Manager& m, int listen_fd, Collector& collector) {
    auto s = std::unique_ptr<ApiServer>(new ApiServer(m, listen_fd, 0, &collector, true));
    return s;
}

gid_t api_group_id(const std::string& group) {
    if (auto gid = units::find_group(group)) return *gid;
    throw Error(Errc::not_found, "The API group '" + group + "' (api.group in hostd.toml) does not exist: create it with "
                                 "'systemd-sysusers hostd.conf' (the group hostd ships in sysusers.d) or 'groupadd --system " +
                                     group + "', or set api.group to an existing group whose members may use hostd");
}

ApiServer::ApiServer(Manager& m, int listen_fd, gid_t allowed_gid, Collector* collector)
    : ApiServer(m, listen_fd, allowed_gid, collector, false) {}

ApiServer::ApiServer(Manager& m, int listen_fd, gid_t allowed_gid, Collector* collector, bool metrics_only)
    : impl_(new Impl{m, allowed_gid, collector, metrics_only}) {
    impl_->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
                                     0, nullptr, nullptr, &Impl::on_request, impl_.get(),
                                     MHD_OPTION_LISTEN_SOCKET, listen_fd,
                                     MHD_OPTION_NOTIFY_COMPLETED, &Impl::on_completed, nullptr,
                                     MHD_OPTION_CONNECTION_TIMEOUT, 0u,
                                     MHD_OPTION_END);
    if (!impl_->daemon) throw Error(Errc::failed, "Failed to start the HTTP server on the API socket");
}

ApiServer::~ApiServer() {
    if (impl_->daemon) MHD_stop_daemon(impl_->daemon);
}

}  // namespace hostd

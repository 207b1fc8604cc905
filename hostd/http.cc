#include "hostd/http.h"

#include <microhttpd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/strings.h"
#include "hostd/collector.h"
#include "hostd/log.h"
#include "hostd/manager.h"
#include "units/users.h"
#include "wire/wire.h"

namespace hostd {

namespace {

// GET /v1/tenants's text while the tenants stay as they are (Manager::list_generation): a list
// asked again and again (a dashboard, a script polling for a state) costs a copy, not a
// rendering of every tenant. Anything that changes a record or a problem renders it anew on
// the next request, so it is never older than the store.
struct ListCache {
    std::mutex mu;
    uint64_t generation = 0;
    std::shared_ptr<const std::string> text;

    std::shared_ptr<const std::string> get(Manager& m) {
        const uint64_t g = m.list_generation();  // before the list: the text is at least as new
        {
            std::lock_guard l(mu);
            if (g != 0 && g == generation && text) return text;
        }
        auto fresh = std::make_shared<const std::string>(wire::render_text(m.list()));
        std::lock_guard l(mu);
        generation = g;
        text = fresh;
        return fresh;
    }
};

struct Request {
    std::string target;              // the request-target as sent: path and query, still %-encoded
    bool started = false;            // the first call of the access handler is past
    bool too_large = false;          // the body went past ApiServer::max_body: the rest is dropped
    std::string method, path, body;
    bool purge = false;
    bool purge_backups = false;      // DELETE ?purge=1&purge_backups=1
    bool allowed = false;
    bool live = false;               // GET /v1/tenants?live=1
    bool progress = false;           // PUT (create) or POST .../restore ?progress=1: stream each step as NDJSON
    bool streamed = false;           // answered by stream_create (its connection has no idle timeout)
    Manager::Progress on_step;       // set by the streaming reply
    ListCache* list_cache = nullptr; // the server's, for GET /v1/tenants
};

using wire::json;

struct Reply {
    int status = 200;
    json body;
    std::shared_ptr<const std::string> text;  // the body already rendered (the list's); then `body` is unused
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
        // Written straight to text (wire::render_text): with thousands of tenants the JSON tree
        // took most of the request's time.
        {"GET", "/v1/tenants",
         [](Manager& m, const Request& r, const std::string&) {
             if (!r.live && r.list_cache) return Reply{200, {}, r.list_cache->get(m)};
             return Reply{200, {}, std::make_shared<const std::string>(wire::render_text(m.list(r.live)))};
         }},
        {"GET", "/v1/tenants/",
         [](Manager& m, const Request&, const std::string& arg) {
             const std::string backups = "/backups";
             if (arg.size() > backups.size() && arg.compare(arg.size() - backups.size(), backups.size(), backups) == 0)
                 return Reply{200, wire::render(m.backups(arg.substr(0, arg.size() - backups.size())))};
             return Reply{200, wire::render_one(m.get(arg))};
         }},
        {"PUT", "/v1/tenants/",
         [](Manager& m, const Request& r, const std::string& n) {
             return Reply{201, wire::render(m.create(n, wire::parse_create(wire::parse_body(r.body)), r.on_step))};
         }},
        {"POST", "/v1/tenants/",
         [](Manager& m, const Request& r, const std::string& arg) {
             // /v1/tenants/NAME/<action>
             const auto slash = arg.rfind('/');
             const std::string name = slash == std::string::npos ? arg : arg.substr(0, slash);
             const std::string action = slash == std::string::npos ? "" : arg.substr(slash + 1);
             if (action == "resize") {
                 auto req = wire::parse_resize(wire::parse_body(r.body));
                 return Reply{200, wire::render(m.resize(name, req))};
             }
             if (action == "backups") {
                 const std::string type = wire::parse_backup_request(r.body.empty() ? json() : wire::parse_body(r.body));
                 return Reply{201, wire::render(m.backup(name, type))};
             }
             if (action == "restore") {
                 // Streams its steps as a create does (?progress=1).
                 const RestoreRequest req = wire::parse_restore(r.body.empty() ? json() : wire::parse_body(r.body));
                 return Reply{200, wire::render(m.restore(name, req, r.on_step))};
             }
             if (action == "switchover") {
                 // An HA tenant (409 for another); the reply shows its members as they now are.
                 const SwitchoverRequest req = wire::parse_switchover(r.body.empty() ? json() : wire::parse_body(r.body));
                 return Reply{200, wire::render_one(m.switchover(name, req))};
             }
             if (action == "replace") {
                 // An HA tenant's member (409 for another); streams its steps as a create does (?progress=1).
                 const ReplaceRequest req = wire::parse_replace(wire::parse_body(r.body));
                 return Reply{200, wire::render_one(m.replace_member(name, req, r.on_step))};
             }
             if (action == "password")
                 return Reply{200, wire::render_one(m.set_password(name, wire::parse_password(wire::parse_body(r.body))))};
             // Lifecycle: no body, the tenant as GET shows it in the reply.
             using Verb = TenantView (Manager::*)(const std::string&);
             static const std::pair<const char*, Verb> lifecycle[] = {
                 {"start", &Manager::start}, {"stop", &Manager::stop}, {"restart", &Manager::restart}, {"wake", &Manager::wake_now}};
             for (auto& [verb, fn] : lifecycle)
                 if (action == verb) {
                     wire::parse_empty(wire::parse_body(r.body));
                     return Reply{200, wire::render_one((m.*fn)(name))};
                 }
             throw Error(Errc::not_found, "No such API path: /v1/tenants/" + arg +
                                              " (POST takes /v1/tenants/NAME/resize, /start, /stop, /restart, /wake, /password, /backups, /restore, /switchover or /replace)");
         }},
        {"PATCH", "/v1/tenants/",
         [](Manager& m, const Request& r, const std::string& n) {
             return Reply{200, wire::render(m.set_limits(n, wire::parse_limits(wire::parse_body(r.body))))};
         }},
        {"DELETE", "/v1/tenants/",
         [](Manager& m, const Request& r, const std::string& n) {
             return Reply{200, wire::render(m.remove(n, r.purge, r.purge_backups))};
         }},
        // Deleted tenants whose backups are kept (branches can be made from them).
        {"GET", "/v1/deleted", [](Manager& m, const Request&, const std::string&) { return Reply{200, wire::render(m.deleted())}; }},
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

// Replies must never throw: a message quoting what a client sent is checked UTF-8 at the
// door, and whatever slips through is rendered with U+FFFD instead of an exception.
std::string render(const json& j, int indent) { return j.dump(indent, ' ', false, json::error_handler_t::replace); }

// Why the request line and headers are refused before routing, or "" if they are not. The path
// and query are checked after %-decoding (what the routes see), a NUL in them too: the C strings
// libmicrohttpd hands over would end there, and "acme%00junk" would name tenant "acme".
std::string refusal(MHD_Connection* c, const char* method, const std::string& target) {
    if (!is_utf8(method)) return "The request method is not valid UTF-8";
    std::string decoded = target;
    decoded.resize(MHD_http_unescape(decoded.data()));
    if (decoded.find('\0') != std::string::npos) return "The request path or query string holds a NUL byte (%00)";
    if (!is_utf8(decoded)) return "The request path or query string is not valid UTF-8 (after %-decoding)";
    bool headers_ok = true;
    MHD_get_connection_values_n(
        c, static_cast<MHD_ValueKind>(MHD_HEADER_KIND | MHD_FOOTER_KIND),
        [](void* cls, MHD_ValueKind, const char* key, size_t key_size, const char* value, size_t value_size) {
            auto* ok = static_cast<bool*>(cls);
            std::string_view k(key ? key : "", key ? key_size : 0), v(value ? value : "", value ? value_size : 0);
            *ok = is_utf8(k) && is_utf8(v) && k.find('\0') == k.npos && v.find('\0') == v.npos;
            return *ok ? MHD_YES : MHD_NO;
        },
        &headers_ok);
    if (!headers_ok) return "A request header is not valid UTF-8";
    return "";
}

// Content-Length past the limit: refused before a byte of the body is read.
bool declares_too_much(MHD_Connection* c) {
    const char* len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!len) return false;
    char* end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(len, &end, 10);
    return errno == ERANGE || n > ApiServer::max_body;
}

bool flag(MHD_Connection* c, const char* name) {
    const char* v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    return v && (std::strcmp(v, "true") == 0 || std::strcmp(v, "1") == 0);
}

}  // namespace

struct ApiServer::Impl {
    Manager& manager;
    gid_t allowed_gid;
    Collector* collector = nullptr;
    bool metrics_only = false;  // TCP: no peer credentials; /metrics and nothing else
    Limits limits;
    MHD_Daemon* daemon = nullptr;
    ListCache list_cache;

    static MHD_Result send_text(MHD_Connection* c, unsigned status, const std::string& text, const char* type) {
        MHD_Response* resp = MHD_create_response_from_buffer(text.size(), const_cast<char*>(text.data()), MHD_RESPMEM_MUST_COPY);
        MHD_add_response_header(resp, "Content-Type", type);
        MHD_Result r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return r;
    }

    // A body already rendered, sent from where it is (no copy: the list's is megabytes with
    // thousands of tenants); the response holds it until libmicrohttpd is done with it.
    static MHD_Result send_shared(MHD_Connection* c, unsigned status, std::shared_ptr<const std::string> text, const char* type) {
        auto* held = new std::shared_ptr<const std::string>(std::move(text));
        MHD_Response* resp = MHD_create_response_from_buffer_with_free_callback_cls(
            (*held)->size(), const_cast<char*>((*held)->data()),
            [](void* cls) { delete static_cast<std::shared_ptr<const std::string>*>(cls); }, held);
        if (!resp) {
            delete held;
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", type);
        MHD_Result r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return r;
    }

    static MHD_Result send_json(MHD_Connection* c, int status, const json& body) {
        return send_text(c, static_cast<unsigned>(status), render(body, 2) + "\n", "application/json");
    }

    static MHD_Result refuse(MHD_Connection* c, int status, Errc code, const std::string& why, const std::string& field = "") {
        return send_json(c, status, wire::render_error(Error(code, why, field)));
    }

    // The request-target as sent, before libmicrohttpd splits off the query and %-decodes both.
    static void* on_uri(void*, const char* uri, MHD_Connection*) { return new Request{.target = uri ? uri : ""}; }

    // An exception must not unwind through libmicrohttpd's C frames: whatever escapes a
    // handler becomes a 500 (or, if a reply is already queued, a closed connection).
    static MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method, const char* version,
                                 const char* upload, size_t* upload_size, void** ctx) {
        try {
            return serve(static_cast<Impl*>(cls), c, url, method, version, upload, upload_size, ctx);
        } catch (const std::exception& e) {
            log::error(std::string("Internal error serving a request: ") + e.what());
            try {
                return refuse(c, 500, Errc::failed, std::string("Internal error: ") + e.what());
            } catch (...) {
                return MHD_NO;
            }
        } catch (...) {
            return MHD_NO;
        }
    }

    static MHD_Result serve(Impl* self, MHD_Connection* c, const char* url, const char* method, const char*,
                            const char* upload, size_t* upload_size, void** ctx) {
        auto* req = static_cast<Request*>(*ctx);
        if (!req) *ctx = req = new Request{.target = url ? url : ""};  // on_uri always runs first; kept safe
        if (!req->started) {
            // Headers are in; the body is not. A reply queued now is sent at once and the body
            // is never read.
            req->started = true;
            if (std::string why = refusal(c, method, req->target); !why.empty()) return refuse(c, 400, Errc::invalid, why);
            if (declares_too_much(c))
                return refuse(c, 413, Errc::invalid, "The request body is larger than 1 MiB", "body");
            req->method = method;
            req->path = url ? url : "";
            req->allowed = self->metrics_only || peer_allowed(c, self->allowed_gid);
            req->purge = flag(c, "purge");
            req->purge_backups = flag(c, "purge_backups");
            req->live = flag(c, "live");
            req->progress = flag(c, "progress");
            req->list_cache = &self->list_cache;
            return MHD_YES;
        }
        if (*upload_size) {
            // A chunked body has no length to refuse up front: past the limit the rest is read
            // and dropped, then 413 (a reply can only be queued once the request is in).
            if (!req->too_large && req->body.size() + *upload_size > max_body) {
                req->too_large = true;
                std::string().swap(req->body);
            }
            if (!req->too_large) req->body.append(upload, *upload_size);
            *upload_size = 0;
            return MHD_YES;
        }
        if (req->too_large) return refuse(c, 413, Errc::invalid, "The request body is larger than 1 MiB", "body");
        if (!is_utf8(req->body)) return refuse(c, 400, Errc::invalid, "The request body is not valid UTF-8", "body");
        if (std::string why = refusal(c, method, req->target); !why.empty())  // trailers of a chunked body
            return refuse(c, 400, Errc::invalid, why);
        if (req->allowed && self->collector && req->path == "/metrics" && req->method == "GET") {
            try {
                return send_text(c, 200, self->collector->scrape(), "text/plain; version=0.0.4; charset=utf-8");
            } catch (const std::exception& e) {
                log::error(std::string("Failed to collect metrics: ") + e.what());
                return send_text(c, 500, std::string("failed to collect metrics: ") + e.what() + "\n", "text/plain");
            }
        }
        if (req->allowed && !self->metrics_only && req->progress &&
            (req->method == "PUT" || (req->method == "POST" && (req->path.ends_with("/restore") || req->path.ends_with("/replace")))))
            return stream_create(self, c, *req);
        Reply reply;
        if (self->metrics_only)
            reply = {404, wire::render_error(Error(Errc::not_found, "This listener serves GET /metrics only"))};
        else if (!req->allowed)
            reply = {403, wire::render_error(Error(Errc::refused, "Permission denied: the API is for root and members of the hostd group"))};
        else
            reply = dispatch(self->manager, *req);
        if (reply.text) return send_shared(c, static_cast<unsigned>(reply.status), std::move(reply.text), "application/json");
        return send_json(c, reply.status, reply.body);
    }

    // PUT ?progress=1: 200 with a chunked application/x-ndjson body, a line as each step starts
    // ({"start":"disk"}) and one as it ends ({"step":"disk","ms":12}), then one line with the result and the status the plain
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

    static MHD_Result stream_create(Impl* self, MHD_Connection* c, Request& req) {
        // No idle timeout while the create runs: between two lines a step may take minutes
        // (initdb on a loaded host) while nothing moves on the socket, and libmicrohttpd counts
        // the time the reader waits for a line as idle. A plain reply needs nothing of the sort
        // (queueing it counts as activity). on_completed puts the timeout back.
        MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
        req.streamed = true;
        auto* s = new Stream;
        s->worker = std::thread([self, s, r = req]() mutable {
            try {
                r.on_step = [s](std::string_view step, long ms) {
                    s->push(render(wire::render_step(step, ms), -1) + "\n", false);
                };
                Reply reply = dispatch(self->manager, r);
                json last = reply.body.is_object() ? reply.body : json::object();
                last["done"] = true;
                last["status"] = reply.status;
                s->push(render(last, -1) + "\n", true);
            } catch (const std::exception& e) {
                log::error(std::string("Internal error streaming a create: ") + e.what());
                s->push("{\"done\":true,\"status\":500,\"error\":{\"code\":\"failed\",\"message\":\"Internal error\"}}\n", true);
            }
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

    static void on_completed(void* cls, MHD_Connection* c, void** ctx, MHD_RequestTerminationCode) {
        auto* req = static_cast<Request*>(*ctx);
        if (req && req->streamed)  // the next request on this connection waits no longer than any other
            MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, static_cast<Impl*>(cls)->limits.idle_timeout);
        delete req;
        *ctx = nullptr;
    }
};

std::unique_ptr<ApiServer> ApiServer::metrics_only(Manager& m, int listen_fd, Collector& collector, Limits limits) {
    return std::unique_ptr<ApiServer>(new ApiServer(m, listen_fd, 0, &collector, true, limits));
}

gid_t api_group_id(const std::string& group) {
    if (auto gid = units::find_group(group)) return *gid;
    throw Error(Errc::not_found, "The API group '" + group + "' (api.group in hostd.toml) does not exist: create it with "
                                 "'systemd-sysusers hostd.conf' (the group hostd ships in sysusers.d) or 'groupadd --system " +
                                     group + "', or set api.group to an existing group whose members may use hostd");
}

ApiServer::ApiServer(Manager& m, int listen_fd, gid_t allowed_gid, Collector* collector, Limits limits)
    : ApiServer(m, listen_fd, allowed_gid, collector, false, limits) {}

ApiServer::ApiServer(Manager& m, int listen_fd, gid_t allowed_gid, Collector* collector, bool metrics_only, Limits limits)
    : impl_(new Impl{m, allowed_gid, collector, metrics_only, limits}) {
    // poll(), not select(): with many connections (or tenants' files) open, descriptors pass
    // FD_SETSIZE (1024), which select() cannot watch and libmicrohttpd would then refuse.
    // The API: a thread per connection (a create blocks its thread for seconds; reads go on).
    // The metrics listener: one thread for all (scrapes are quick and never wait on a tenant).
    const unsigned flags = MHD_USE_POLL | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                           (metrics_only ? 0u : static_cast<unsigned>(MHD_USE_THREAD_PER_CONNECTION));
    impl_->daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &Impl::on_request, impl_.get(),
                                     MHD_OPTION_LISTEN_SOCKET, listen_fd,
                                     MHD_OPTION_URI_LOG_CALLBACK, &Impl::on_uri, nullptr,
                                     MHD_OPTION_NOTIFY_COMPLETED, &Impl::on_completed, impl_.get(),
                                     MHD_OPTION_CONNECTION_LIMIT, std::max(1u, limits.max_connections),
                                     MHD_OPTION_PER_IP_CONNECTION_LIMIT, limits.max_per_ip,
                                     MHD_OPTION_CONNECTION_TIMEOUT, limits.idle_timeout,
                                     MHD_OPTION_END);
    if (!impl_->daemon)
        throw Error(Errc::failed, metrics_only ? "Failed to start the HTTP server of the metrics listener"
                                               : "Failed to start the HTTP server on the API socket");
}

ApiServer::~ApiServer() {
    if (impl_->daemon) MHD_stop_daemon(impl_->daemon);
}

}  // namespace hostd

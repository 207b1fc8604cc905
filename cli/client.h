// hostd's API client over the Unix socket (libcurl): each verb takes and returns the domain
// types of model/, with the JSON done by wire/ — the same module the server uses. Used by
// hostctl and the benchmarks.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "model/tenant.h"
#include "model/views.h"
#include "wire/wire.h"

namespace hostd {

struct ApiResponse {
    long status = 0;         // HTTP status; 0 when hostd could not be reached
    wire::json body;         // parsed JSON (null if the body was not JSON)
    std::string transport_error;
    bool denied = false;     // the socket refused this user (EACCES): not a hostd that is down
};

// A verb's answer: the value on success; else hostd's error, or why hostd was not reached.
template <class T>
struct Reply {
    long status = 0;                 // HTTP status; 0: hostd not reached (transport_error says why)
    std::optional<T> value;          // 2xx
    std::optional<Error> error;      // hostd's error (its code, sentence and field)
    std::string transport_error;
    bool denied = false;             // status 0 because the socket refused this user
    wire::json body;                 // the reply as hostd sent it
    bool ok() const { return value.has_value(); }
};

class Client {
public:
    explicit Client(std::string socket_path) : socket_(std::move(socket_path)) {}

    using StepFn = std::function<void(std::string_view step, long ms)>;
    // PUT with ?progress=1: on_step hears each step as hostd starts it (ms -1) and finishes it.
    Reply<Created> create(const std::string& name, const CreateRequest& req, const StepFn& on_step = {}) const;
    // POST /v1/tenants/NAME/restore?progress=1: the tenant brought back from its backups after
    // its disk was lost; on_step as for create.
    Reply<Restored> restore(const std::string& name, const RestoreRequest& req, const StepFn& on_step = {}) const;
    Reply<Deleted> remove(const std::string& name, bool purge, bool purge_backups = false) const;
    Reply<TenantView> get(const std::string& name) const;
    Reply<std::vector<TenantView>> list(bool live) const;
    Reply<Resized> resize(const std::string& name, const ResizeRequest& req) const;
    Reply<LimitsChanged> set_limits(const std::string& name, const LimitsUpdate& u) const;
    // POST /v1/tenants/NAME/password: the tenant with its new password and URL.
    Reply<TenantView> set_password(const std::string& name, const PasswordRequest& req) const;
    Reply<BackupDone> backup(const std::string& name, const std::string& type) const;
    Reply<BackupList> backups(const std::string& name) const;
    // GET /v1/deleted: deleted tenants whose backups are kept.
    Reply<std::vector<KeptView>> deleted() const;
    // POST /v1/tenants/NAME/start|stop|restart|wake: the tenant as GET shows it afterwards.
    Reply<TenantView> start(const std::string& name) const { return lifecycle(name, "start"); }
    Reply<TenantView> stop(const std::string& name) const { return lifecycle(name, "stop"); }
    Reply<TenantView> restart(const std::string& name) const { return lifecycle(name, "restart"); }
    Reply<TenantView> wake(const std::string& name) const { return lifecycle(name, "wake"); }
    // POST /v1/tenants/NAME/switchover: an HA tenant's primary moved (to req.to, or the member
    // hostd picks); the tenant as GET shows it afterwards, with its members.
    Reply<TenantView> switchover(const std::string& name, const SwitchoverRequest& req) const;
    // POST /v1/tenants/NAME/replace?progress=1 (an HA tenant): the tenant as it is after.
    Reply<TenantView> replace(const std::string& name, const ReplaceRequest& req, const StepFn& on_step = {}) const;
    Reply<ReconcileReport> reconcile() const;
    Reply<HostInfo> host() const;
    Reply<std::string> ca() const;

    // The raw exchange under the verbs (and for callers that time the HTTP itself).
    ApiResponse call(const std::string& method, const std::string& path, const wire::json* body = nullptr,
                     long timeout_s = 600) const;
    // A streamed reply (application/x-ndjson, e.g. PUT ?progress=1): on_line gets each line
    // before the last as it arrives; the last line ({"done":true,"status":N,...}) becomes the
    // response (status N, body without "done"/"status").
    ApiResponse stream(const std::string& method, const std::string& path, const wire::json* body,
                       const std::function<void(const wire::json&)>& on_line, long timeout_s = 600) const;
    // Percent-encodes one path segment (tenant names arrive here unvalidated).
    static std::string escape(const std::string& segment);
    const std::string& socket_path() const { return socket_; }

private:
    Reply<TenantView> lifecycle(const std::string& name, const std::string& verb) const;
    std::string socket_;
};

}  // namespace hostd

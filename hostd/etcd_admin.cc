#include "hostd/etcd_admin.h"

#include <algorithm>
#include <optional>
#include <set>
#include <sstream>
#include <unistd.h>

#include "base/error.h"
#include "base/exec.h"
#include "base/strings.h"
#include "hostd/log.h"
#include "hostd/peer_client.h"
#include "pgconf/pgconf.h"
#include "wire/wire.h"

namespace hostd {

namespace {
constexpr std::string_view kTenantPrefix = "tenant:";
}

std::string etcd_tenant_user(const std::string& tenant) {
    if (!is_dns_label(tenant))
        throw Error(Errc::invalid, "'" + tenant + "' is not a tenant's name: no etcd user for it", "tenant");
    return std::string(kTenantPrefix) + tenant;
}

std::string etcd_scope_key(const std::string& tenant) {
    etcd_tenant_user(tenant);  // validates
    return "/hostd/" + tenant;
}

pgconf::PemPair issue_etcd_tenant_cert(const pgconf::CaPaths& ca, const std::string& tenant) {
    return pgconf::issue_cert(ca, {.cn = etcd_tenant_user(tenant), .names = {}, .server = false, .client = true});
}

pgconf::PemPair issue_etcd_root_cert(const pgconf::CaPaths& ca) {
    return pgconf::issue_cert(ca, {.cn = kEtcdRootUser, .names = {}, .server = false, .client = true});
}

namespace {

using wire::json;

// The names in a v2 auth permission list (absent or null: none).
std::set<std::string> names(const json& j) {
    std::set<std::string> out;
    if (j.is_array())
        for (const auto& v : j)
            if (v.is_string()) out.insert(v.get<std::string>());
    return out;
}

// A name as one URL path segment (whatever a client named a user or role while auth was off).
std::string segment(const std::string& name) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : name) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~' ||
            c == ':' || c == '@')
            out += static_cast<char>(c);
        else
            out += std::string("%") + hex[c >> 4] + hex[c & 15];
    }
    return out;
}

json array_of(const std::set<std::string>& s) {
    json a = json::array();
    for (const auto& v : s) a.push_back(v);
    return a;
}

class RealEtcdAdmin : public EtcdAdmin {
public:
    explicit RealEtcdAdmin(EtcdAdminOptions o) : o_(std::move(o)) {
        if (o_.endpoints.empty()) throw Error(Errc::invalid, "No etcd endpoint given", "endpoints");
    }

    void ensure_auth() override {
        if (!enabled()) {
            // Until auth is on anyone with a certificate of the CA may do this too: whatever it
            // set is undone below, once auth is on and only root may change it.
            ok_or(call("PUT", "/v2/auth/users/root", json{{"user", kEtcdRootUser}, {"password", pgconf::random_password()}, {"roles", {"root"}}}),
                  {200, 201, 409}, "creating etcd's root user");
            ok_or(call("PUT", "/v2/auth/roles/guest", json{{"role", "guest"}, {"permissions", {{"kv", {{"read", json::array()}, {"write", json::array()}}}}}}),
                  {200, 201, 409}, "creating etcd's guest role without permissions");
            // 409: already on (another host was first).
            ok_or(call("PUT", "/v2/auth/enable", nullptr), {200, 409}, "turning etcd's auth on");
            log::info("HA: etcd's auth is on (client certificates' CN as users)");
        }
        // From here as root (this host's certificate). A password someone set while auth was
        // off would still let its holder in as root: a fresh one nobody keeps.
        ok_or(call("PUT", "/v2/auth/users/root", json{{"user", kEtcdRootUser}, {"password", pgconf::random_password()}}), {200, 201},
              "resetting etcd's root password");
        const json roles = ok_or(call("GET", "/v2/auth/roles", nullptr), {200}, "listing etcd's roles");
        for (const auto& r : roles.value("roles", json::array())) {
            const std::string name = r.value("role", "");
            if (name == "root") continue;
            if (name == "guest") {
                const auto& kv = r["permissions"]["kv"];
                const auto read = names(kv.value("read", json())), write = names(kv.value("write", json()));
                if (!read.empty() || !write.empty()) {
                    ok_or(call("PUT", "/v2/auth/roles/guest", json{{"role", "guest"}, {"revoke", {{"kv", {{"read", array_of(read)}, {"write", array_of(write)}}}}}}),
                          {200}, "revoking the guest role's permissions");
                    log::warning("HA: etcd's guest role had permissions; revoked");
                }
                continue;
            }
            if (const auto t = tenant_of(name)) {
                converge_role(*t);
                continue;
            }
            ok_or(call("DELETE", "/v2/auth/roles/" + segment(name), nullptr), {200, 404}, "removing etcd role '" + name + "'");
            log::warning("HA: etcd role '" + name + "' is not hostd's; removed");
        }
        const json users = ok_or(call("GET", "/v2/auth/users", nullptr), {200}, "listing etcd's users");
        for (const auto& u : users.value("users", json::array())) {
            const std::string name = u.value("user", "");
            if (name == kEtcdRootUser) continue;
            if (const auto t = tenant_of(name)) {
                converge_role(*t);  // a user whose role is gone gets it back
                converge_user(*t);
                continue;
            }
            ok_or(call("DELETE", "/v2/auth/users/" + segment(name), nullptr), {200, 404}, "removing etcd user '" + name + "'");
            log::warning("HA: etcd user '" + name + "' is not hostd's; removed");
        }
        ensure_v3_auth();
    }

    void grant_tenant(const std::string& tenant) override {
        etcd_tenant_user(tenant);
        if (!enabled()) ensure_auth();
        converge_role(tenant);
        converge_user(tenant);
    }

    void revoke_tenant(const std::string& tenant) override {
        const std::string user = etcd_tenant_user(tenant);
        ok_or(call("DELETE", "/v2/auth/users/" + user, nullptr), {200, 404}, "removing etcd user '" + user + "'");
        ok_or(call("DELETE", "/v2/auth/roles/" + user, nullptr), {200, 404}, "removing etcd role '" + user + "'");
    }

    void remove_scope(const std::string& tenant) override {
        const std::string key = etcd_scope_key(tenant);
        ok_or(call("DELETE", "/v2/keys" + key + "?recursive=true", nullptr), {200, 404}, "removing the keys under " + key);
    }

    bool scope_in_use(const std::string& tenant) override {
        const std::string key = etcd_scope_key(tenant) + "/members";
        const peer::Reply r = call("GET", "/v2/keys" + key, nullptr);
        if (r.status == 404) return false;
        const json j = ok_or(r, {200}, "reading the keys under " + key);
        return j.contains("node") && j["node"].contains("nodes") && j["node"]["nodes"].is_array() && !j["node"]["nodes"].empty();
    }

private:
    EtcdAdminOptions o_;

    // The v3 API's auth is apart from v2's, and off, any client certificate of the CA may use
    // it all: remove a member, fill the store. No HA tenant speaks v3 (Patroni 3.0.2 speaks v2),
    // so v3 gets the root user and role only, auth on. Through etcdctl (gRPC: once v3 auth is on,
    // etcd's gRPC gateway refuses every request bearing a client certificate, and the CN is the
    // user over gRPC only). Passwords go through stdin, never argv.
    ExecResult etcdctl(std::vector<std::string> args, const std::string& input = "") {
        std::string endpoints;
        for (const auto& e : o_.endpoints) endpoints += (endpoints.empty() ? "" : ",") + e;
        std::vector<std::string> argv = {o_.etcdctl, "--endpoints=" + endpoints, "--cacert=" + o_.ca, "--cert=" + o_.cert,
                                         "--key=" + o_.key, "--command-timeout=" + std::to_string(o_.timeout_s) + "s"};
        argv.insert(argv.end(), args.begin(), args.end());
        ExecOptions opts{.argv = argv, .input = input, .timeout = std::chrono::seconds(4 * o_.timeout_s + 5)};
        opts.env.push_back("ETCDCTL_API=3");
        if (::access(o_.etcdctl.c_str(), X_OK) != 0)
            throw Error(Errc::failed, o_.etcdctl + " is missing: install Debian's etcd-client (make deps) on every HA host");
        return exec(opts);
    }
    void etcdctl_ok(std::vector<std::string> args, const std::string& what, const std::string& fine = "", const std::string& input = "") {
        const auto r = etcdctl(args, input);
        if (r.exit_code == 0 || (!fine.empty() && r.err.find(fine) != std::string::npos)) return;
        const std::string why = r.err.empty() ? r.out : r.err;
        if (why.find("context deadline exceeded") != std::string::npos || why.find("connection") != std::string::npos)
            throw Error(Errc::unavailable, "etcd (v3) did not answer " + what + ": " + why.substr(0, 300));
        throw Error(Errc::failed, "etcd refused " + what + " (v3): " + why.substr(0, 300));
    }

    void ensure_v3_auth() {
        etcdctl_ok({"role", "add", "root"}, "adding the v3 root role", "role name already exists");
        etcdctl_ok({"user", "add", "root", "--interactive=false"}, "adding the v3 root user", "user name already exists",
                   pgconf::random_password() + "\n");
        etcdctl_ok({"user", "grant-role", "root", "root"}, "granting the v3 root role to root", "already");
        etcdctl_ok({"auth", "enable"}, "turning etcd's v3 auth on");  // already on: etcd says nothing
        // From here only root (hostd's certificate; or root's password: a fresh one nobody keeps).
        etcdctl_ok({"user", "passwd", "root", "--interactive=false"}, "resetting the v3 root password", "",
                   pgconf::random_password() + "\n");
        for (const char* kind : {"user", "role"}) {
            const auto r = etcdctl({kind, "list"});
            if (r.exit_code != 0) throw Error(Errc::failed, std::string("etcd refused listing its v3 ") + kind + "s: " + r.err.substr(0, 300));
            std::istringstream in(r.out);
            for (std::string name; std::getline(in, name);) {
                if (name.empty() || name == "root") continue;
                etcdctl_ok({kind, "delete", "--", name}, std::string("removing v3 ") + kind + " '" + name + "'", "not found");
                log::warning(std::string("HA: etcd v3 ") + kind + " '" + name + "' is not hostd's; removed");
            }
        }
    }

    std::optional<std::string> tenant_of(const std::string& name) const {
        if (!name.starts_with(kTenantPrefix)) return std::nullopt;
        const std::string t = name.substr(kTenantPrefix.size());
        if (!is_dns_label(t)) return std::nullopt;
        return t;
    }

    bool enabled() {
        return ok_or(call("GET", "/v2/auth/enable", nullptr), {200}, "asking whether etcd's auth is on").value("enabled", false);
    }

    // The tenant's role with exactly read and write on its scope.
    void converge_role(const std::string& tenant) {
        const std::string role = etcd_tenant_user(tenant), key = etcd_scope_key(tenant);
        const std::set<std::string> want = {key, key + "/*"};
        const json perms = {{"kv", {{"read", array_of(want)}, {"write", array_of(want)}}}};
        const auto created = call("PUT", "/v2/auth/roles/" + role, json{{"role", role}, {"permissions", perms}});
        ok_or(created, {200, 201, 409}, "creating etcd role '" + role + "'");
        if (created.status != 409) return;
        const json have = ok_or(call("GET", "/v2/auth/roles/" + role, nullptr), {200}, "reading etcd role '" + role + "'");
        json grant = {{"read", json::array()}, {"write", json::array()}}, revoke = grant;
        bool change = false;
        for (const char* rw : {"read", "write"}) {
            const auto got = names(have["permissions"]["kv"].value(rw, json()));
            for (const auto& p : want)
                if (!got.count(p)) grant[rw].push_back(p);
            for (const auto& p : got)
                if (!want.count(p)) revoke[rw].push_back(p);
            change = change || !grant[rw].empty() || !revoke[rw].empty();
        }
        if (!change) return;
        ok_or(call("PUT", "/v2/auth/roles/" + role, json{{"role", role}, {"grant", {{"kv", grant}}}, {"revoke", {{"kv", revoke}}}}), {200},
              "setting etcd role '" + role + "''s permissions");
        log::warning("HA: etcd role '" + role + "' had other permissions than its scope's; set to " + key + " and " + key + "/*");
    }

    // The tenant's user with exactly its own role (a random password nobody keeps: its members
    // log in by certificate).
    void converge_user(const std::string& tenant) {
        const std::string user = etcd_tenant_user(tenant);
        const json body = {{"user", user}, {"password", pgconf::random_password()}, {"roles", {user}}};
        for (int attempt = 0; attempt < 2; attempt++) {
            const auto created = call("PUT", "/v2/auth/users/" + user, body);
            ok_or(created, {200, 201, 409}, "creating etcd user '" + user + "'");
            if (created.status != 409) return;
            // Its roles as etcd lists them (a role that does not exist makes this fail: wrong too).
            const auto got = call("GET", "/v2/auth/users/" + user, nullptr);
            if (got.status == 200) {
                const json j = json::parse(got.body, nullptr, false);
                std::vector<std::string> roles;
                if (!j.is_discarded())
                    for (const auto& r : j.value("roles", json::array())) roles.push_back(r.value("role", ""));
                if (roles == std::vector<std::string>{user}) return;
            }
            log::warning("HA: etcd user '" + user + "' had other roles than its own; made again");
            ok_or(call("DELETE", "/v2/auth/users/" + user, nullptr), {200, 404}, "removing etcd user '" + user + "'");
        }
        throw Error(Errc::failed, "etcd user '" + user + "' could not be set to its own role (another host changing it at the same time?); try again");
    }

    // One request, to the first endpoint that answers (and is not failing itself: 5xx).
    peer::Reply call(const std::string& method, const std::string& path, const json* body) {
        std::string last;
        for (const auto& ep : o_.endpoints) {
            const peer::Target target{.what = "etcd at " + ep,
                                      .unreachable = "is hostd-etcd.service running on that host, with a quorum?",
                                      .other_ca = "hosts share one CA (README: High availability)"};
            try {
                auto r = peer::perform(target, ep + path, {.cert = o_.cert, .key = o_.key, .ca = o_.ca}, method, body, o_.timeout_s);
                if (r.status < 500) return r;
                last = "etcd at " + ep + " answered " + std::to_string(r.status) + ": " + message(r);
            } catch (const Error& e) {
                if (e.code() != Errc::unavailable) throw;
                last = e.what();
            }
        }
        throw Error(Errc::unavailable, "No etcd endpoint answered " + method + " " + path + " (last: " + last + ")");
    }
    peer::Reply call(const std::string& method, const std::string& path, const json& body) { return call(method, path, &body); }
    peer::Reply call(const std::string& method, const std::string& path, std::nullptr_t) {
        return call(method, path, static_cast<const json*>(nullptr));
    }

    static std::string message(const peer::Reply& r) {
        const json j = json::parse(r.body, nullptr, false);
        if (!j.is_discarded() && j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
        return r.body.substr(0, 200);
    }

    // The reply's JSON body when its status is one of ok; else Errc::failed in etcd's words.
    static json ok_or(const peer::Reply& r, std::initializer_list<long> ok, const std::string& what) {
        if (std::find(ok.begin(), ok.end(), r.status) == ok.end())
            throw Error(Errc::failed, "etcd refused " + what + " (HTTP " + std::to_string(r.status) + "): " + message(r));
        const json j = json::parse(r.body, nullptr, false);
        return j.is_discarded() ? json::object() : j;
    }
};

}  // namespace

std::unique_ptr<EtcdAdmin> make_real_etcd_admin(EtcdAdminOptions options) {
    return std::make_unique<RealEtcdAdmin>(std::move(options));
}

}  // namespace hostd

#include "hostd/peers.h"

#include "base/error.h"
#include "hostd/peer_client.h"
#include "wire/wire.h"

namespace hostd {
namespace {

class RealPeers final : public Peers {
public:
    RealPeers(const Config& cfg, const std::string& tls_dir)
        : fleet_(ha_fleet(cfg)),
          port_(cfg.ha_api_port),
          tls_{.cert = tls_dir + "/host.crt", .key = tls_dir + "/host.key", .ca = cfg.state_dir + "/ca/ca.crt"} {}

    std::optional<PeerMember> status(const std::string& host, const std::string& tenant) override {
        check_tenant(tenant);
        peer::Reply r = call(host, "GET", "/v1/ha/" + tenant + "/member");
        if (r.status == 404) return std::nullopt;
        if (r.status / 100 != 2) peer::fail(r, "Reading the member of '" + tenant + "'", "on HA host '" + host + "'");
        const wire::json body = wire::parse_body(r.body);
        PeerMember m{.record_state = body.value("record_state", ""), .create_id = body.value("create_id", "")};
        if (body.contains("hosts") && body["hosts"].is_array())
            for (const auto& h : body["hosts"])
                if (h.is_string()) m.hosts.push_back(h.get<std::string>());
        return m;
    }

    HaMember prepare(const std::string& host, const std::string& tenant, const HaPrepare& p) override {
        check_tenant(tenant);
        const wire::json body = wire::render(p);
        peer::Reply r = call(host, "POST", "/v1/ha/" + tenant + "/prepare", false, &body, 180);
        if (r.status / 100 != 2) peer::fail(r, "Preparing the member of '" + tenant + "'", "on HA host '" + host + "'");
        const wire::json reply = wire::parse_body(r.body);
        if (!reply.contains("member")) throw Error(Errc::failed, "HA host '" + host + "' answered a prepare without its member");
        HaMember m = wire::parse_ha_member(reply["member"]);
        if (m.host != host) throw Error(Errc::failed, "HA host '" + host + "' answered a prepare with a member on '" + m.host + "'");
        return m;
    }

    void start(const std::string& host, const std::string& tenant, const HaSpec& ha) override {
        check_tenant(tenant);
        const wire::json body = {{"ha", wire::render(ha)}};
        // A replica's start copies the primary's data: as long as that takes.
        peer::Reply r = call(host, "POST", "/v1/ha/" + tenant + "/start", false, &body, 360);
        if (r.status / 100 != 2) peer::fail(r, "Starting the member of '" + tenant + "'", "on HA host '" + host + "'");
    }

    void abort(const std::string& host, const std::string& tenant, const std::string& create_id) override {
        check_tenant(tenant);
        const wire::json body = {{"create_id", create_id}};
        peer::Reply r = call(host, "POST", "/v1/ha/" + tenant + "/abort", false, &body, 120);
        if (r.status / 100 != 2) peer::fail(r, "Undoing the member of '" + tenant + "'", "on HA host '" + host + "'");
    }

    void update(const std::string& host, const std::string& tenant, const HaSpec& ha) override {
        check_tenant(tenant);
        const wire::json body = {{"ha", wire::render(ha)}};
        peer::Reply r = call(host, "POST", "/v1/ha/" + tenant + "/update", false, &body, 60);
        if (r.status / 100 != 2) peer::fail(r, "Updating the members of '" + tenant + "'", "on HA host '" + host + "'");
    }

    void password(const std::string& host, const std::string& tenant, const std::string& password) override {
        check_tenant(tenant);
        const wire::json body = {{"password", password}};
        peer::Reply r = call(host, "POST", "/v1/ha/" + tenant + "/password", false, &body, 30);
        if (r.status / 100 != 2) peer::fail(r, "Recording the new password of '" + tenant + "'", "on HA host '" + host + "'");
    }

    void limits(const std::string& host, const std::string& tenant, const std::string& create_id,
                const LimitsUpdate& full) override {
        check_tenant(tenant);
        const wire::json body = {{"create_id", create_id}, {"limits", wire::render(full)}};
        peer::Reply r = call(host, "POST", "/v1/ha/" + tenant + "/limits", false, &body, 60);
        if (r.status / 100 != 2) peer::fail(r, "Changing the limits of the member of '" + tenant + "'", "on HA host '" + host + "'");
    }

    void remove(const std::string& host, const std::string& tenant, bool purge) override {
        check_tenant(tenant);
        const wire::json body = {{"purge", purge}};
        peer::Reply r = call(host, "POST", "/v1/ha/" + tenant + "/remove", false, &body, 180);
        if (r.status == 404) return;  // no member there (any more)
        if (r.status / 100 != 2) peer::fail(r, "Deleting the member of '" + tenant + "'", "on HA host '" + host + "'");
    }

    void hello(const std::string& host) override {
        peer::Reply r = call(host, "GET", "/v1/ha/-/member", /*want_peer=*/true);
        if (r.status == 403) peer::fail(r, "A request from this host", "on HA host '" + host + "'");
        if (r.peer_cn != "hostd@" + host)
            throw Error(Errc::failed, "HA host '" + host + "' at " + address_of(host) + " presents the certificate of '" +
                                          r.peer_cn + "', not hostd@" + host + ": check 'ha.hosts' on both hosts");
    }

private:
    std::vector<HaHost> fleet_;
    uint16_t port_;
    peer::Tls tls_;

    std::string address_of(const std::string& host) const {
        for (const auto& h : fleet_)
            if (h.name == host) return h.address.find(':') != std::string::npos ? "[" + h.address + "]" : h.address;
        throw Error(Errc::invalid, "'" + host + "' is not one of 'ha.hosts'", "host");
    }

    static void check_tenant(const std::string& t) {
        // Tenant names are [a-z0-9-]: nothing to escape; refuse anything else rather than guess.
        bool ok = !t.empty();
        for (char c : t) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
        if (!ok) throw Error(Errc::invalid, "'" + t + "' is not a tenant name", "name");
    }

    peer::Reply call(const std::string& host, const std::string& method, const std::string& path, bool want_peer = false,
                     const wire::json* body = nullptr, long timeout_s = 30) {
        const std::string base = "https://" + address_of(host) + ":" + std::to_string(port_);
        const peer::Target target{
            .what = "HA host '" + host + "' (" + base + ")",
            .unreachable = "is its hostd running with [ha] address set there, and is " + host + " up?",
            .other_ca = "copy " + tls_.ca + " and the ca.key beside it from host " + host +
                        " to this host, or from this host to " + host + " (every HA host must have the same), "
                        "then restart hostd where it was copied"};
        return peer::perform(target, base + path, tls_, method, body, timeout_s, want_peer);
    }
};

}  // namespace

std::unique_ptr<Peers> make_real_peers(const Config& cfg, const std::string& tls_dir) {
    return std::make_unique<RealPeers>(cfg, tls_dir);
}

}  // namespace hostd

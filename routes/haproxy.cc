// HAProxy: the route file hostd owns (pure rendering) and its validated replacement.

#include <algorithm>
#include <sstream>

#include "base/error.h"
#include "base/exec.h"
#include "base/fs.h"
#include "routes/detail.h"
#include "routes/routes.h"

namespace hostd::routes {
namespace {

using detail::host_port;

// The lines HAProxy marks [ALERT], without their "[ALERT]    (pid) : config : " prefix; the
// temp file's name is replaced by the file it was meant to become.
std::string haproxy_alerts(const std::string& output, const std::string& tmp, const std::string& target) {
    std::istringstream in(output);
    std::string line, out;
    while (std::getline(in, line)) {
        if (line.rfind("[ALERT]", 0) != 0) continue;
        auto pos = line.find(" : ");
        if (pos != std::string::npos) line = line.substr(pos + 3);
        if (line.rfind("config : ", 0) == 0) line = line.substr(9);
        for (size_t p; (p = line.find(tmp)) != std::string::npos;) line.replace(p, tmp.size(), target);
        if (!out.empty()) out += "; ";
        out += line;
    }
    if (out.empty()) {  // no [ALERT] lines: the whole output, on one line
        out = output;
        std::replace(out.begin(), out.end(), '\n', ' ');
        while (!out.empty() && out.back() == ' ') out.pop_back();
    }
    return out.empty() ? "no message" : out;
}

}  // namespace

std::string render_haproxy(const std::vector<Route>& routes) {
    const std::vector<const Route*> sorted = detail::validate_table(routes);
    for (const Route* r : sorted)
        if (!r->sni_host.empty())
            throw Error(Errc::invalid, "HAProxy routes each tenant by its own port; routing by host name (SNI) for '" +
                                           r->tenant + "' needs proxy.kind = \"traefik\"", "sni_host");

    std::ostringstream o;
    o << "# Managed by hostd — do not edit; rewritten on every change.\n"
      << "# One `listen` section per tenant, loaded after the main configuration\n"
      << "# (haproxy -f <main> -f <this file>); every version passes `haproxy -c` first.\n"
      << "\n"
      << "# Process-wide settings for PostgreSQL's long sessions. HAProxy 2.6 merges this second\n"
      << "# `global` section into the main one (checked with haproxy -c -dW); being in this file,\n"
      << "# it is validated with every route change. On reload, old workers keep serving their\n"
      << "# open sessions: they are cut only after 24h (like the idle timeouts) or once a worker\n"
      << "# has outlived 100 reloads, which bounds the number of old workers kept alive.\n"
      << "global\n"
      << "    hard-stop-after 24h\n"
      << "    mworker-max-reloads 100\n"
      << "\n"
      << "# Defaults of its own, so the main configuration's (often mode http) do not apply here.\n"
      << "# PostgreSQL sessions can sit idle for hours (pools, open psql sessions): the client and\n"
      << "# server timeouts are long so HAProxy does not cut them. Connect and health-check\n"
      << "# timeouts are short so a dead backend shows at once; TCP keep-alives toward clients let\n"
      << "# the kernel notice clients that vanished without closing.\n"
      << "defaults\n"
      << "    mode tcp\n"
      << "    log global\n"
      << "    option tcplog\n"
      << "    option clitcpka\n"
      << "    timeout connect 5s\n"
      << "    timeout client 24h\n"
      << "    timeout server 24h\n"
      << "    timeout check 2s\n";
    if (sorted.empty()) o << "\n# No routes.\n";
    for (const Route* r : sorted) {
        o << "\n"
          << "listen hostd_" << r->tenant << "\n"
          << "    bind " << host_port(r->bind_address, r->public_port) << "\n"
          << "    server pg " << host_port(r->backend_host, r->backend_port) << " check inter 2s fall 3 rise 1\n";
    }
    return o.str();
}

bool apply_haproxy(const HaproxySettings& s, const std::vector<Route>& routes, const std::function<void()>& reload) {
    const std::string content = render_haproxy(routes);

    // Checked before it replaces the live file: a file HAProxy rejects never goes into place.
    StagedFile staged(s.hostd_config, content);

    // Not -q: with it HAProxy 2.6 also keeps its [ALERT] lines to itself.
    ExecResult r = exec({.argv = {s.haproxy_bin, "-c", "-f", s.main_config, "-f", staged.temp_path()}});
    if (r.exit_code != 0)
        throw Error(Errc::failed, "HAProxy rejected the new configuration: " +
                                      haproxy_alerts(r.err + r.out, staged.temp_path(), s.hostd_config));

    std::string current;
    bool have_current = true;
    try {
        current = read_file(s.hostd_config);
    } catch (const Error& e) {
        if (e.code() != Errc::not_found) throw;
        have_current = false;
    }
    if (have_current && current == content) return false;  // the staged file is removed unused

    staged.commit();
    reload();
    return true;
}

namespace {
class HaproxyWriter final : public RouteWriter {
public:
    HaproxyWriter(HaproxySettings s, std::function<void()> reload) : s_(std::move(s)), reload_(std::move(reload)) {}
    bool apply(const std::vector<Route>& routes, bool force_reload) override {
        bool changed = apply_haproxy(s_, routes, reload_);
        if (!changed && force_reload) reload_();
        return changed;
    }

private:
    HaproxySettings s_;
    std::function<void()> reload_;
};
}  // namespace

std::unique_ptr<RouteWriter> haproxy_writer(HaproxySettings s, std::function<void()> reload) {
    return std::make_unique<HaproxyWriter>(std::move(s), std::move(reload));
}

}  // namespace hostd::routes

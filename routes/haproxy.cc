// HAProxy: the route file hostd owns (pure rendering) and its validated replacement.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <random>
#include <sstream>

#include "base/error.h"
#include "base/exec.h"
#include "base/fd.h"
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

std::string temp_path_beside(const std::string& path) {
    std::filesystem::path p(path);
    std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return dir + "/." + p.filename().string() + "." + std::to_string(rng() % 1000000000) + ".tmp";
}

void write_new_file(const std::string& path, const std::string& content) {
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) throw_errno(errno, "Failed to create '" + path + "'");
    if (::fchmod(fd.get(), 0644) < 0) throw_errno(errno, "Failed to chmod '" + path + "'");
    size_t off = 0;
    while (off < content.size()) {
        ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno(errno, "Failed to write '" + path + "'");
        off += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) < 0) throw_errno(errno, "Failed to fsync '" + path + "'");
}

// Removes the temp file unless it was renamed into place.
class TempFile {
public:
    explicit TempFile(std::string path) : path_(std::move(path)) {}
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() {
        if (!path_.empty()) ::unlink(path_.c_str());
    }
    const std::string& path() const { return path_; }
    void release() { path_.clear(); }

private:
    std::string path_;
};

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

    TempFile tmp(temp_path_beside(s.hostd_config));
    write_new_file(tmp.path(), content);

    // Not -q: with it HAProxy 2.6 also keeps its [ALERT] lines to itself.
    ExecResult r = exec({.argv = {s.haproxy_bin, "-c", "-f", s.main_config, "-f", tmp.path()}});
    if (r.exit_code != 0)
        throw Error(Errc::failed, "HAProxy rejected the new configuration: " +
                                      haproxy_alerts(r.err + r.out, tmp.path(), s.hostd_config));

    std::string current;
    bool have_current = true;
    try {
        current = read_file(s.hostd_config);
    } catch (const Error& e) {
        if (e.code() != Errc::not_found) throw;
        have_current = false;
    }
    if (have_current && current == content) return false;  // tmp removed by its guard

    if (::rename(tmp.path().c_str(), s.hostd_config.c_str()) < 0)
        throw_errno(errno, "Failed to rename '" + tmp.path() + "' to '" + s.hostd_config + "'");
    tmp.release();
    // Best effort, as in write_file_atomic: once the rename is done, failing here would skip
    // the reload, and a retry would then find nothing changed and not reload either.
    std::filesystem::path dir = std::filesystem::path(s.hostd_config).parent_path();
    Fd dfd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd) ::fsync(dfd.get());

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

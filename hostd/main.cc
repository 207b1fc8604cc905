// hostd: the daemon. A straight line: config → manager (load state) → API on the socket
// systemd passes in → READY → wait for a stop signal.
#include <grp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <iostream>
#include <optional>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "hostd/api.h"
#include "hostd/config.h"
#include "hostd/log.h"
#include "hostd/manager.h"
#include "hostd/ticker.h"

using namespace hostd;

namespace {

gid_t group_id(const std::string& name) {
    group gr{}, *res = nullptr;
    std::vector<char> buf(16384);
    if (::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &res) != 0 || !res) return 0;  // root only
    return gr.gr_gid;
}

// For runs without socket activation (development): make the socket ourselves.
Fd bind_socket(const std::string& path, gid_t gid) {
    make_dirs(path.substr(0, path.rfind('/')), 0755);
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw_errno(errno, "Failed to create the API socket");
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) throw Error(Errc::invalid, "API socket path '" + path + "' is too long");
    std::strcpy(a.sun_path, path.c_str());
    ::unlink(path.c_str());
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) throw_errno(errno, "Failed to bind '" + path + "'");
    ::chown(path.c_str(), 0, gid);
    ::chmod(path.c_str(), 0660);
    if (::listen(fd.get(), 128) < 0) throw_errno(errno, "Failed to listen on '" + path + "'");
    return fd;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hostd: many PostgreSQL tenants on one machine, each with its own disk, unit and route"};
    std::string config_path = "/etc/hostd/hostd.toml";
    bool print_default = false;
    app.add_option("-c,--config", config_path, "Configuration file")->capture_default_str();
    app.add_flag("--print-default-config", print_default, "Print the commented default hostd.toml and exit");
    app.set_version_flag("--version", "hostd " HOSTD_VERSION);
    CLI11_PARSE(app, argc, argv);
    if (print_default) {
        std::cout << default_config_text();
        return 0;
    }

    try {
        Config cfg = load_config(config_path);
        gid_t gid = group_id(cfg.socket_group);

        // Signals are taken synchronously below; block them before any thread starts.
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        pthread_sigmask(SIG_BLOCK, &stop, nullptr);
        signal(SIGPIPE, SIG_IGN);

        Manager manager(cfg, make_real_effects(cfg));
        manager.start();

        Fd listen_fd;
        int n = sd_listen_fds(1);
        if (n > 1) throw Error(Errc::invalid, "Expected one socket from systemd, got " + std::to_string(n));
        if (n == 1) listen_fd.reset(SD_LISTEN_FDS_START);
        else listen_fd = bind_socket(cfg.socket_path, gid);

        ApiServer api(manager, listen_fd.get(), gid);
        // The disk-full guard: a few statvfs calls per round, never a tenant's process.
        std::optional<Ticker> guard;
        if (cfg.guard_interval > 0)
            guard.emplace(std::chrono::milliseconds(static_cast<long>(cfg.guard_interval * 1000)), [&] { manager.guard_tick(); });
        sd_notify(0, "READY=1\nSTATUS=Serving the API");
        log::info("hostd " HOSTD_VERSION " ready");

        int sig = 0;
        sigwait(&stop, &sig);
        sd_notify(0, "STOPPING=1");
        log::info(std::string("Stopping on ") + strsignal(sig));
        return 0;
    } catch (const std::exception& e) {
        log::error(std::string("hostd failed to start: ") + e.what());
        std::cerr << "hostd: " << e.what() << "\n";
        return 1;
    }
}

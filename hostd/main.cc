// hostd: the daemon. A straight line: config → manager (load state) → API on the socket
// systemd passes in → READY → wait for a stop signal.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstring>
#include <iostream>
#include <optional>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "hostd/ha_api.h"
#include "hostd/peer_server.h"
#include "hostd/peers.h"
#include "hostd/hibernate.h"
#include "hostd/http.h"
#include "hostd/instance.h"
#include "clidoc/clidoc.h"
#include "hostd/collector.h"
#include "model/config.h"
#include "hostd/log.h"
#include "hostd/manager.h"
#include "hostd/repohost_api.h"
#include "hostd/repohost_service.h"
#include "hostd/ticker.h"
#include "model/layout.h"
#include "routes/routes.h"
#include "units/template.h"

using namespace hostd;

namespace {

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

// "127.0.0.1:9187" or "[::1]:9187": a listening TCP socket. Only numeric addresses: a
// metrics port is no place for name resolution at start-up.
Fd bind_tcp(const std::string& spec) {
    const auto colon = spec.rfind(':');
    if (colon == std::string::npos || colon == 0)
        throw Error(Errc::invalid, "'metrics.listen' must be ADDRESS:PORT such as 127.0.0.1:9187, not '" + spec + "'");
    std::string host = spec.substr(0, colon);
    const std::string port_s = spec.substr(colon + 1);
    int port = 0;
    try {
        port = std::stoi(port_s);
    } catch (...) {
    }
    if (port <= 0 || port > 65535) throw Error(Errc::invalid, "'metrics.listen' has no valid port: '" + spec + "'");
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family = AF_INET;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = family = AF_INET6;
        a->sin6_port = htons(static_cast<uint16_t>(port));
        if (inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1)
            throw Error(Errc::invalid, "'metrics.listen': '" + host + "' is not an IPv6 address");
        len = sizeof *a;
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(static_cast<uint16_t>(port));
        if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1)
            throw Error(Errc::invalid, "'metrics.listen': '" + host + "' is not an IPv4 address");
        len = sizeof *a;
    }
    Fd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw_errno(errno, "Failed to create the metrics socket");
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0) throw_errno(errno, "Failed to bind the metrics listener " + spec);
    if (::listen(fd.get(), 64) < 0) throw_errno(errno, "Failed to listen on " + spec);
    return fd;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hostd: many PostgreSQL tenants on one machine, each with its own disk, unit and route", "hostd"};
    std::string config_path = "/etc/hostd/hostd.toml";
    bool print_default = false;
    app.add_option("-c,--config", config_path, "Configuration file")->capture_default_str();
    app.add_flag("--print-default-config", print_default, "Print the commented default hostd.toml and exit");
    app.set_version_flag("--version", "hostd " HOSTD_VERSION);
    bool print_man = false;
    app.add_flag("--man", print_man, "Print hostd's manual page (roff) and exit");
    bool print_template = false;
    app.add_flag("--print-unit-template", print_template,
                 "Print the tenant unit template (hostd-postgres@.service) for the config file's paths, and exit");
    bool print_traefik = false;
    app.add_flag("--traefik-static", print_traefik,
                 "Print the static Traefik configuration (entry points, file provider) that matches the [proxy] "
                 "settings of the config file, and exit");
    CLI11_PARSE(app, argc, argv);
    if (print_man) {
        hostd::ManInfo info;
        info.section = "8";
        info.version = "hostd " HOSTD_VERSION;
        info.description =
            "hostd is a root daemon that turns a Linux machine into a multi-tenant PostgreSQL 15 host: per tenant a "
            "block device (loop file or raw disk), an initdb'd cluster, a sandboxed systemd unit hostd-postgres@NAME "
            "running as its own OS user with cgroup limits, and a route in HAProxy or Traefik.\n"
            "It is started by systemd from hostd.socket and serves HTTP/JSON on /run/hostd/hostd.sock; hostctl(1) is "
            "its command-line client. Every setting and its default: hostd --print-default-config.";
        info.files = "/etc/hostd/hostd.toml: configuration\n/var/lib/hostd: state (tenant records, CA)\n"
                     "/srv/hostd: tenants' mount points\n/etc/haproxy/hostd.cfg: HAProxy routes written by hostd\n"
                     "/etc/traefik/hostd/hostd-NAME.toml: Traefik routes written by hostd (proxy.kind = traefik)\n"
                     "/etc/hostd/etcd.env, /etc/hostd/etcd: etcd's configuration and TLS files on an HA etcd host, written by "
                     "hostd from [ha] (hostd-etcd.service)\n/var/lib/hostd/ha: this host's certificate for the HA peer API and "
                     "etcd, and hostd's client certificate for etcd (etcd-root.crt)";
        info.see_also = "hostctl(1), systemd.socket(5), haproxy(1), traefik(1)";
        std::cout << hostd::man_page(app, info);
        return 0;
    }
    if (print_default) {
        std::cout << default_config_text();
        return 0;
    }
    if (print_template) {
        try {
            std::cout << units::render_tenant_template(layout::template_paths(load_config(config_path)));
            return 0;
        } catch (const std::exception& e) {
            std::cerr << "hostd: " << e.what() << "\n";
            return 1;
        }
    }
    if (print_traefik) {
        try {
            Config cfg = load_config(config_path);
            std::cout << routes::render_traefik_static(
                {.directory = cfg.traefik_dir, .entry_point = cfg.traefik_entry_point}, cfg.bind_address,
                cfg.domain.empty() ? 0 : cfg.sni_port, cfg.public_ports.first, cfg.public_ports.second);
            return 0;
        } catch (const std::exception& e) {
            std::cerr << "hostd: " << e.what() << "\n";
            return 1;
        }
    }

    try {
        Config cfg = load_config(config_path);
        // One hostd at a time, decided before anything is touched: a second one (started by
        // hand while systemd's runs) would unlink the live socket and reconcile under the
        // first one's operations.
        InstanceLock socket_lock(socket_lock_path(cfg));
        InstanceLock state_lock(state_lock_path(cfg));
        if (std::string warning = raise_file_limit(files_needed(cfg)); !warning.empty()) log::warning(warning);
        gid_t gid = api_group_id(cfg.socket_group);

        // Signals are taken synchronously below; block them before any thread starts.
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        pthread_sigmask(SIG_BLOCK, &stop, nullptr);
        signal(SIGPIPE, SIG_IGN);

        // [ha] address: an HA host (#17): its name among the hosts, its client of theirs.
        std::unique_ptr<Peers> peers;
        std::string self;
        if (ha_on(cfg)) {
            self = ha_self(cfg, this_host_name());
            peers = make_real_peers(cfg, cfg.state_dir + "/ha");
        }
        Manager manager(cfg, make_real_effects(cfg), std::move(peers), self);
        // [hibernate]: the waker listens before the first route names it (hostd/hibernate.h).
        std::optional<Waker> waker;
        if (hibernate_on(cfg)) waker.emplace(cfg.hibernate_waker_port, cfg.hibernate_max_relays, waker_tenants(manager));
        manager.start();
        // [repository] listen: this host keeps other hosts' tenants' repositories (hostd/repohost_api.h).
        RepositoryRole repository = start_repository_role(cfg);
        // etcd on an etcd host, the peer API (hostd/ha_api.h) served by the Manager.
        HaRole ha = start_ha_role(cfg, &manager);

        Fd listen_fd;
        int n = sd_listen_fds(1);
        if (n > 1) throw Error(Errc::invalid, "Expected one socket from systemd, got " + std::to_string(n));
        if (n == 1) listen_fd.reset(SD_LISTEN_FDS_START);
        else listen_fd = bind_socket(cfg.socket_path, gid);

        Collector collector({.records = [&] { return manager.snapshot(); },
                             .op_stats = [&] { return manager.op_stats(); },
                             .backups = [&] { return manager.backup_health(); }},
                            make_real_observer(cfg), cfg, HOSTD_VERSION);
        ApiServer api(manager, listen_fd.get(), gid, &collector,
                      {.max_connections = static_cast<unsigned>(cfg.api_max_connections),
                       .idle_timeout = static_cast<unsigned>(cfg.api_idle_timeout)});
        // PostgreSQL facts for /metrics, refreshed apart from scrapes, one tenant at a time.
        std::optional<Ticker> metrics_refresh;
        if (cfg.metrics_refresh > 0)
            metrics_refresh.emplace([&] {
                return std::chrono::milliseconds(static_cast<long>(collector.refresh_next() * 1000));
            });
        if (metrics_refresh) metrics_refresh->name("pg-refresh");
        // Usage facts for /metrics (units, disks, cgroups of every tenant), read apart from
        // scrapes while hostd is scraped: a scrape of thousands of tenants serves them, aged.
        std::optional<Ticker> usage_refresh;
        if (cfg.metrics_refresh > 0)
            usage_refresh.emplace(std::chrono::milliseconds(static_cast<long>(cfg.metrics_refresh * 1000)), [&] {
                try {
                    collector.refresh_usage_if_scraped();
                } catch (const std::exception& e) {
                    log::warning(std::string("Failed to read the tenants' usage for /metrics: ") + e.what());
                }
            });
        if (usage_refresh) usage_refresh->name("usage-refresh");
        Fd metrics_fd;
        std::unique_ptr<ApiServer> metrics_api;
        if (!cfg.metrics_listen.empty()) {
            metrics_fd = bind_tcp(cfg.metrics_listen);
            metrics_api = ApiServer::metrics_only(manager, metrics_fd.get(), collector,
                                                  {.max_connections = static_cast<unsigned>(cfg.metrics_max_connections),
                                                   .max_per_ip = static_cast<unsigned>(cfg.metrics_max_connections_per_ip),
                                                   .idle_timeout = static_cast<unsigned>(cfg.metrics_timeout)});
            log::info("Serving /metrics on " + cfg.metrics_listen);
        }
        std::optional<Ticker> textfile;
        if (!cfg.metrics_textfile.empty()) {
            auto write = [&] {
                try {
                    write_file_atomic(cfg.metrics_textfile, collector.scrape(), 0644);
                } catch (const std::exception& e) {
                    log::warning(std::string("Failed to write the metrics textfile: ") + e.what());
                }
            };
            write();
            textfile.emplace(std::chrono::milliseconds(static_cast<long>(std::max(1.0, cfg.metrics_interval) * 1000)), write);
        if (textfile) textfile->name("textfile");
        }
        // The disk-full guard: a few statvfs calls per round, never a tenant's process.
        std::optional<Ticker> guard;
        if (cfg.guard_interval > 0)
            guard.emplace(std::chrono::milliseconds(static_cast<long>(cfg.guard_interval * 1000)), [&] { manager.guard_tick(); });
        if (guard) guard->name("guard");
        // Tenants listen on their own port only: a look at the kernel's socket table.
        std::optional<Ticker> port_watch;
        if (cfg.listeners_interval > 0)
            port_watch.emplace(std::chrono::milliseconds(static_cast<long>(cfg.listeners_interval * 1000)), [&] {
                try {
                    manager.port_watch_tick();
                } catch (const std::exception& e) {
                    log::warning(std::string("Port watch: ") + e.what());
                }
            });
        if (port_watch) port_watch->name("portwatch");
        // [hibernate]: idle tenants stopped, one look at the kernel's TCP sockets per round.
        std::optional<IdleWatch> idle_watch;
        std::optional<Ticker> hibernation;
        if (hibernate_on(cfg)) {
            idle_watch.emplace(manager, [] { return units::tcp_established(); });
            hibernation.emplace(std::chrono::milliseconds(static_cast<long>(cfg.hibernate_check_interval * 1000)),
                                [&] { idle_watch->tick(); });
            hibernation->name("hibernate");
            log::info("Hibernation on: tenants idle for " + std::to_string(static_cast<long>(cfg.hibernate_after)) +
                      " s stop; the waker listens on 127.0.0.1:" + std::to_string(waker->port()));
        }
        // Deleted tenants' kept backups past backup.deleted_retention (also at start and on each reconcile).
        Ticker expire_kept(std::chrono::hours(1), [&] {
            try {
                manager.expire_kept();
            } catch (const std::exception& e) {
                log::warning(std::string("Expiring kept backups: ") + e.what());
            }
        });
        expire_kept.name("expire-kept");
        // Backups: failed scheduled ones noticed, one repository looked at when due (BackupWatch).
        std::optional<Ticker> backup_watch;
        if (backups_on(cfg))
            backup_watch.emplace(std::chrono::seconds(2), [&] {
                try {
                    manager.backup_watch_tick();
                } catch (const std::exception& e) {
                    log::warning(std::string("Backup watch: ") + e.what());
                }
            });
        if (backup_watch) backup_watch->name("backupwatch");
        // HA members prepared for another host's create whose start never came ([ha] prepare_timeout),
        // and members replaced while this host could not be reached.
        std::optional<Ticker> ha_prepared;
        if (ha_on(cfg))
            ha_prepared.emplace(std::chrono::seconds(30), [&] {
                try {
                    manager.ha_recover(std::chrono::seconds(0));
                    manager.ha_expire_prepared(std::time(nullptr));
                    manager.ha_fence_replaced();
                } catch (const std::exception& e) {
                    log::warning(std::string("HA members' round: ") + e.what());
                }
            });
        if (ha_prepared) ha_prepared->name("ha-members");
        // The warm pool refills on its own thread, at idle CPU and I/O priority (hostd/warmpool.h).
        std::optional<Ticker> pool_refill;
        if (cfg.pool_size > 0 && cfg.backend == "loop")
            pool_refill.emplace([&, lowered = false]() mutable {
                if (!lowered) lower_thread_priority();
                lowered = true;
                return manager.pool_tick();
            });
        if (pool_refill) pool_refill->name("pool-refill");
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

// hostd-api-bench: GET /v1/tenants and GET /metrics with many tenants, without that many real
// tenants. A Manager loads N generated records (ready tenants, as a create leaves them) from a
// scratch state directory and hostd's own HTTP server (ApiServer) serves them on a Unix socket;
// each request is timed with libcurl from sending to the last byte (the client's JSON parse
// apart, printed on its own line). /metrics is served by the real Collector over an observer
// that makes the real per-tenant reads of a host where every tenant runs: a statvfs (of this
// machine's /) and the cgroup files (of this process's own cgroup) per tenant. What it cannot
// make is systemd's answer (no unit of N tenants here): the units are all "active", without
// the D-Bus round trip a real host has.
//   hostd-api-bench --tenants 2000 --runs 100
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <string>
#include <vector>

#include "base/curl.h"
#include "base/fs.h"
#include "hostd/collector.h"
#include "hostd/http.h"
#include "hostd/manager.h"
#include "hostd/ticker.h"
#include "model/layout.h"
#include "model/record.h"
#include "wire/wire.h"

using namespace hostd;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double pct(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t i = static_cast<size_t>(p / 100 * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

// This process's cgroup below /sys/fs/cgroup ("0::/user.slice/..."), for real cgroup reads.
std::string own_cgroup() {
    std::ifstream in("/proc/self/cgroup");
    std::string line, v1_cpu;
    while (std::getline(in, line)) {
        if (line.rfind("0::", 0) == 0) return line.substr(3);
        if (line.find(":memory:") != std::string::npos) v1_cpu = line.substr(line.rfind(':') + 1);
    }
    return v1_cpu.empty() ? "/" : v1_cpu;
}

// A host where every tenant is mounted and runs: the per-tenant reads are the real ones.
class BusyHostObserver final : public Observer {
public:
    BusyHostObserver(const Config& cfg, const std::vector<std::string>& names) : cg_(own_cgroup()) {
        for (auto& n : names) {
            const TenantLayout l = layout_of(cfg, n);
            units_[l.unit] = "active";
            mounted_.insert(l.mountpoint);
        }
    }
    std::map<std::string, std::string> unit_states() override { return units_; }
    std::set<std::string> mounted() override { return mounted_; }
    storage::DiskStats disk(const std::string&) override { return storage::disk_stats("/"); }
    CgroupUsage cgroup(const std::string&) override { return read_cgroup_usage(cg_); }
    uint32_t restarts(const std::string&) override { return 0; }
    bool pg_up(const TenantRecord&, const std::string&) override { return true; }
    PgFacts pg_facts(const TenantRecord&, const std::string&) override {
        return {.connections = 1, .max_connections = 100, .database_bytes = 8u << 20};
    }
    std::string patroni_cluster(const HaMember& m) override { throw Error(Errc::unavailable, "no Patroni on " + m.host); }

private:
    std::string cg_;
    std::map<std::string, std::string> units_;
    std::set<std::string> mounted_;
};


std::string fmt(double ms) {
    char b[32];
    std::snprintf(b, sizeof b, ms < 10 ? "%.2f ms" : "%.1f ms", ms);
    return b;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app("hostd-api-bench: GET /v1/tenants and /metrics latency with N generated tenants");
    int tenants = 2000, runs = 100;
    app.add_option("--tenants", tenants, "How many tenant records to load")->check(CLI::Range(1, 100000));
    app.add_option("--runs", runs, "Requests timed per route")->check(CLI::Range(1, 100000));
    CLI11_PARSE(app, argc, argv);

    const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("hostd-api-bench." + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    struct Cleanup {
        std::filesystem::path d;
        ~Cleanup() { std::filesystem::remove_all(d); }
    } cleanup{dir};
    try {
        Config cfg;
        cfg.state_dir = (dir / "state").string();
        cfg.mount_root = (dir / "srv").string();
        cfg.loop_dir = (dir / "loop").string();
        std::vector<std::string> names;
        make_dirs(layout::records_dir(cfg), 0700);
        for (int i = 0; i < tenants; i++) {
            char name[16];
            std::snprintf(name, sizeof name, "t%05d", i);
            names.push_back(name);
            TenantRecord t;
            t.name = name;
            t.state = TenantState::ready;
            t.step = "done";
            t.spec = {.backend = "loop", .filesystem = "ext4", .disk_size = 256ull << 20, .memory = 256ull << 20,
                      .cpu = 1, .tasks = 512, .io_weight = 100, .settings = {}, .extensions = {}};
            t.fs_uuid = "0b7f3c1e-7d2a-4c55-9f1e-" + std::string(name).substr(1) + "0000000";
            t.label = std::string("hostd-") + name;
            t.image = cfg.loop_dir + "/" + name + ".img";
            t.device = "/dev/loop" + std::to_string(i);
            t.os_user = std::string("pg-") + name;
            t.uid = 20000 + static_cast<uint32_t>(i);
            t.port = static_cast<uint16_t>(20000 + i);
            t.public_port = static_cast<uint16_t>(40000 + i);
            t.admin_user = "admin";
            t.password = "Zq8vN1r0Lm3pX7tB4kW9yC2d";
            t.created_at = "2026-11-30T12:00:00Z";
            write_file_atomic(layout::records_dir(cfg) + "/" + name + ".toml", to_toml(t), 0600);
        }
        Manager manager(cfg, make_real_effects(cfg));  // a plain list asks nothing of the machine
        manager.load();
        Collector collector({.records = [&] { return manager.snapshot(); }, .op_stats = [&] { return manager.op_stats(); }},
                            std::make_unique<BusyHostObserver>(cfg, names), cfg, "bench");
        std::printf("%d tenants, %d requests per route, %u CPUs\n", tenants, runs, std::thread::hardware_concurrency());
        // The slow facts (PostgreSQL's), as the background refresh leaves them after a round.
        for (int i = 0; i < tenants; i++) collector.refresh_next();
        // The usage facts, as hostd's usage-refresh thread reads them while it is scraped: one
        // pass timed, then the thread, every metrics.refresh seconds, beside the scrapes.
        {
            std::vector<double> pass;
            for (int i = 0; i < 5; i++) {
                const auto t = Clock::now();
                collector.refresh_usage();
                pass.push_back(ms_since(t));
            }
            std::printf("%-34s median %s (every metrics.refresh = %.0f s while scraped)\n", "usage facts, one pass",
                        fmt(pct(pass, 50)).c_str(), cfg.metrics_refresh);
        }
        Ticker usage_refresh(std::chrono::milliseconds(static_cast<long>(cfg.metrics_refresh * 1000)),
                             [&] { collector.refresh_usage_if_scraped(); });

        const std::string socket = (dir / "api.sock").string();
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", socket.c_str());
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0)
            throw std::runtime_error("cannot listen on " + socket);
        ApiServer api(manager, fd, 0, &collector);

        auto series = [&](const char* what, const std::string& path, bool parse) {
            std::vector<double> lat, parse_ms;
            std::string body;
            size_t bytes = 0;
            for (int i = 0; i < runs; i++) {
                const auto t = Clock::now();
                if (hostd::curl::get_over_socket(socket, path, body) != 200) throw std::runtime_error(std::string(what) + ": not 200: " + body.substr(0, 200));
                lat.push_back(ms_since(t));
                bytes = body.size();
                if (parse) {
                    const auto p = Clock::now();
                    auto j = nlohmann::json::parse(body);
                    parse_ms.push_back(ms_since(p));
                    if (j["tenants"].size() != static_cast<size_t>(tenants)) throw std::runtime_error("the list is short");
                }
            }
            std::printf("%-34s median %s, p95 %s, max %s (n=%d, %zu bytes)\n", what, fmt(pct(lat, 50)).c_str(),
                        fmt(pct(lat, 95)).c_str(), fmt(pct(lat, 100)).c_str(), runs, bytes);
            if (parse)
                std::printf("%-34s median %s, p95 %s (client side, not in the figure above)\n", "  its JSON parse",
                            fmt(pct(parse_ms, 50)).c_str(), fmt(pct(parse_ms, 95)).c_str());
        };
        {
            // Where a list's time goes, in this process without HTTP.
            std::vector<double> list_ms, text_ms;
            for (int i = 0; i < runs; i++) {
                auto t = Clock::now();
                const auto views = manager.list();
                list_ms.push_back(ms_since(t));
                t = Clock::now();
                const std::string text = wire::render_text(views);
                text_ms.push_back(ms_since(t));
            }
            std::printf("%-34s median %s, p95 %s\n", "  Manager::list (in process)", fmt(pct(list_ms, 50)).c_str(), fmt(pct(list_ms, 95)).c_str());
            std::printf("%-34s median %s, p95 %s\n", "  wire::render_text (in process)", fmt(pct(text_ms, 50)).c_str(), fmt(pct(text_ms, 95)).c_str());
        }
        series("GET /v1/tenants", "/v1/tenants", true);
        series("GET /metrics", "/metrics", false);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hostd-api-bench: %s\n", e.what());
        return 1;
    }
    return 0;
}

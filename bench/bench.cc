// hostd-bench: the figures of "a database in about a second, the hundredth as fast as the
// first", measured in one run inside the testbed and printed as a markdown table:
//   create → first query through the proxy (hostd) vs pg_createcluster → pg_isready (Debian)
//   flat cost over many creates, with the per-step breakdown from hostd's journal
//   idle memory per tenant (density), GET /v1/tenants and /metrics latency, proxy overhead.
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "base/exec.h"
#include "base/size.h"
#include "hostd/client.h"
#include "pgconf/pgconf.h"

namespace {

using Clock = std::chrono::steady_clock;
using hostd::Client;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double pct(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    double rank = p / 100.0 * static_cast<double>(v.size() - 1);
    auto lo = static_cast<size_t>(std::floor(rank)), hi = static_cast<size_t>(std::ceil(rank));
    return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}
double median(const std::vector<double>& v) { return pct(v, 50); }

std::vector<double> slice(const std::vector<double>& v, size_t from, size_t n) {
    if (from >= v.size()) return {};
    return {v.begin() + static_cast<long>(from), v.begin() + static_cast<long>(std::min(v.size(), from + n))};
}

struct Row {
    std::string figure, value, reference, ratio;
};

std::string fmt(double v, const char* unit = "ms") {
    char b[64];
    std::snprintf(b, sizeof b, v >= 100 ? "%.0f %s" : "%.1f %s", v, unit);
    std::string s(b);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}
std::string ratio(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", v);
    return b;
}

struct Created {
    std::string name;
    uint16_t public_port = 0, port = 0;
    std::string user, password;
};

Created create(const Client& c, const std::string& name, const nlohmann::json& body, double& total_ms) {
    auto t0 = Clock::now();
    auto r = c.call("PUT", "/v1/tenants/" + name, &body);
    if (r.status != 201) throw std::runtime_error("create " + name + ": HTTP " + std::to_string(r.status) + " " + r.body.dump() + r.transport_error);
    auto& t = r.body["tenant"];
    Created out{name, t["public_port"].get<uint16_t>(), t["port"].get<uint16_t>(), t["admin_user"], t["password"]};
    hostd::pgconf::check_select1({.host = "127.0.0.1", .port = out.public_port, .user = out.user, .password = out.password});
    total_ms = ms_since(t0);
    return out;
}

// Per-step durations of one tenant's create, from hostd's journal lines "Step 'x' done in N ms".
std::map<std::string, double> steps_of(const std::string& tenant) {
    auto r = hostd::exec({.argv = {"journalctl", "-u", "hostd", "TENANT=" + tenant, "-o", "cat", "--no-pager"}});
    std::map<std::string, double> out;
    static const std::regex re("Step '([a-z-]+)' done in ([0-9]+) ms");
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (std::regex_search(line, m, re)) out[m[1]] = std::stod(m[2]);
    }
    return out;
}

double reference_create(const std::string& name) {
    auto t0 = Clock::now();
    hostd::exec_checked({.argv = {"pg_createcluster", "15", name, "--start"}}, "pg_createcluster " + name);
    auto r = hostd::exec({.argv = {"pg_lsclusters", "-h", "15", name}});
    std::istringstream in(r.out);
    std::string ver, cl, port;
    in >> ver >> cl >> port;
    for (int i = 0; i < 500; i++) {
        if (hostd::exec({.argv = {"pg_isready", "-q", "-h", "/var/run/postgresql", "-p", port}}).exit_code == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return ms_since(t0);
}

double pgbench_tps(const std::string& host, uint16_t port, const std::string& user, const std::string& pw, int seconds,
                   bool select_only = false) {
    auto env = std::vector<std::string>{"PATH=/usr/bin:/bin", "PGPASSWORD=" + pw};
    std::vector<std::string> argv = {"/usr/lib/postgresql/15/bin/pgbench", "-h", host, "-p", std::to_string(port), "-U", user,
                                     "-c", "4", "-j", "2", "-T", std::to_string(seconds), "-n", "postgres"};
    if (select_only) argv.insert(argv.end() - 1, "-S");
    auto r = hostd::exec_checked({.argv = argv,
                                  .env = env, .timeout = std::chrono::seconds(seconds + 60)},
                                 "pgbench");
    static const std::regex re("tps = ([0-9.]+)");
    std::smatch m;
    if (!std::regex_search(r.out, m, re)) throw std::runtime_error("pgbench printed no tps: " + r.out);
    return std::stod(m[1]);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hostd-bench: provisioning speed, flat cost, density, API and proxy figures"};
    int count = 20, reference = 10, window = 20, settle = 10, pgbench_seconds = 10;
    std::string socket = "/run/hostd/hostd.sock", out_md = "", machine = "";
    bool keep = false;
    app.add_option("-n,--count", count, "Tenants to create one after another")->capture_default_str();
    app.add_option("--reference", reference, "pg_createcluster runs (0: skip)")->capture_default_str();
    app.add_option("--window", window, "First/last N creates compared for flat cost")->capture_default_str();
    app.add_option("--settle", settle, "Seconds idle before reading memory")->capture_default_str();
    app.add_option("--pgbench-seconds", pgbench_seconds, "Per pgbench run (0: skip)")->capture_default_str();
    app.add_option("--socket", socket, "hostd API socket")->capture_default_str();
    app.add_option("--markdown", out_md, "Also write the table to this file");
    app.add_option("--machine", machine, "Machine description for the table");
    app.add_flag("--keep", keep, "Keep the tenants");
    CLI11_PARSE(app, argc, argv);

    Client client(socket);
    std::vector<Row> rows;
    nlohmann::json body = {{"memory", "64M"}, {"disk_size", "256M"}};
    try {
        // 1. Reference: Debian's own way to get a cluster, in this machine, this run.
        std::vector<double> ref;
        for (int i = 1; i <= reference; i++) {
            std::string n = "ref" + std::to_string(i);
            ref.push_back(reference_create(n));
            hostd::exec({.argv = {"pg_dropcluster", "--stop", "15", n}});
            std::fprintf(stderr, "reference %-8s %7.0f ms\n", n.c_str(), ref.back());
        }

        // 2. hostd creates, one after another.
        std::vector<double> total;
        std::vector<Created> made;
        for (int i = 1; i <= count; i++) {
            double ms = 0;
            made.push_back(create(client, "b" + std::to_string(i), body, ms));
            total.push_back(ms);
            std::fprintf(stderr, "create %-8s %7.0f ms\n", made.back().name.c_str(), ms);
        }
        auto first = slice(total, 0, static_cast<size_t>(window));
        auto last = slice(total, total.size() > static_cast<size_t>(window) ? total.size() - static_cast<size_t>(window) : 0, static_cast<size_t>(window));
        rows.push_back({"create → first query through HAProxy, median (n=" + std::to_string(first.size()) + ")",
                        fmt(median(first)), reference ? fmt(median(ref)) + " (pg_createcluster --start → pg_isready, n=" + std::to_string(ref.size()) + ")" : "-",
                        reference ? ratio(median(first) / median(ref)) : "-"});
        rows.push_back({"create → first query through HAProxy, p95", fmt(pct(first, 95)), reference ? fmt(pct(ref, 95)) : "-", "-"});
        if (count > window) {
            rows.push_back({"flat cost: median of the last " + std::to_string(last.size()) + " creates / first " + std::to_string(first.size()) +
                                " (of " + std::to_string(count) + ")",
                            fmt(median(last)) + " / " + fmt(median(first)), "target ≤ 1.2", ratio(median(last) / median(first))});
            // Where growth comes from: per-step medians, first window vs last window.
            std::map<std::string, std::vector<double>> sf, sl;
            for (size_t i = 0; i < made.size(); i++) {
                bool in_first = i < first.size(), in_last = i >= made.size() - last.size();
                if (!in_first && !in_last) continue;
                for (auto& [step, ms] : steps_of(made[i].name)) (in_first ? sf : sl)[step].push_back(ms);
            }
            for (auto& [step, v] : sf)
                rows.push_back({"  step '" + step + "' median, first vs last window", fmt(median(v)) + " → " + fmt(median(sl[step])), "-",
                                median(v) > 0 ? ratio(median(sl[step]) / median(v)) : "-"});
        }

        // 3. Density: idle memory per tenant after settling.
        std::this_thread::sleep_for(std::chrono::seconds(settle));
        std::vector<double> mem;
        for (auto& c : made) {
            auto r = client.call("GET", "/v1/tenants/" + c.name);
            if (r.status == 200 && r.body["tenant"].contains("status") && r.body["tenant"]["status"].contains("memory_current"))
                mem.push_back(r.body["tenant"]["status"]["memory_current"].get<double>());
        }
        double host_mem = 24.0 * 1024 * 1024 * 1024;
        rows.push_back({"idle memory per tenant (cgroup memory current, median of " + std::to_string(mem.size()) + ")",
                        hostd::format_size(static_cast<uint64_t>(median(mem))), "-", "-"});
        rows.push_back({"idle tenants one 24 GiB host holds by that measure", std::to_string(static_cast<long>(host_mem / median(mem))), "-", "-"});

        // 4. API latency with every tenant in place.
        std::vector<double> lat, scrape;
        for (int i = 0; i < 100; i++) {
            auto t0 = Clock::now();
            client.call("GET", "/v1/tenants");
            lat.push_back(ms_since(t0));
        }
        rows.push_back({"GET /v1/tenants with " + std::to_string(made.size()) + " tenants, median / p95", fmt(median(lat)) + " / " + fmt(pct(lat, 95)), "-", "-"});
        for (int i = 0; i < 20; i++) {
            auto t0 = Clock::now();
            auto r = client.call("GET", "/metrics");
            if (r.status != 200) break;
            scrape.push_back(ms_since(t0));
        }
        rows.push_back({"GET /metrics with " + std::to_string(made.size()) + " tenants, median / p95",
                        scrape.empty() ? "not available" : fmt(median(scrape)) + " / " + fmt(pct(scrape, 95)), "-", "-"});

        // 5. Proxy overhead: pgbench (select-only... the default TPC-B-like run) via HAProxy vs direct.
        if (pgbench_seconds > 0 && !made.empty()) {
            auto& c = made.front();
            auto env = std::vector<std::string>{"PATH=/usr/bin:/bin", "PGPASSWORD=" + c.password};
            hostd::exec_checked({.argv = {"/usr/lib/postgresql/15/bin/pgbench", "-i", "-s", "5", "-q", "-h", "127.0.0.1", "-p",
                                          std::to_string(c.port), "-U", c.user, "postgres"},
                                 .env = env}, "pgbench -i");
            // Rounds alternate (direct, proxy, direct, ...) so that drift (tables growing, caches,
            // neighbours on the VM) does not favour either side; medians of 3.
            for (bool select_only : {false, true}) {
                std::vector<double> via, direct;
                for (int round = 0; round < 3; round++) {
                    direct.push_back(pgbench_tps("127.0.0.1", c.port, c.user, c.password, pgbench_seconds, select_only));
                    via.push_back(pgbench_tps("127.0.0.1", c.public_port, c.user, c.password, pgbench_seconds, select_only));
                }
                rows.push_back({std::string("pgbench ") + (select_only ? "select-only" : "TPC-B-like") +
                                    " TPS through HAProxy / direct (-c4 -j2, median of 3 alternated rounds of " +
                                    std::to_string(pgbench_seconds) + " s)",
                                fmt(median(via), "") + " / " + fmt(median(direct), ""), "target ≥ 0.90",
                                ratio(median(via) / median(direct))});
            }
        }

        if (!keep)
            for (auto& c : made) client.call("DELETE", "/v1/tenants/" + c.name + "?purge=true");
    } catch (const std::exception& e) {
        std::cerr << "hostd-bench: " << e.what() << "\n";
        return 1;
    }

    std::ostringstream md;
    md << "| figure | hostd | reference | ratio |\n|---|---|---|---|\n";
    for (auto& r : rows) md << "| " << r.figure << " | " << r.value << " | " << r.reference << " | " << r.ratio << " |\n";
    if (!machine.empty()) md << "\nMeasured " << machine << ".\n";
    std::cout << md.str();
    if (!out_md.empty()) std::ofstream(out_md) << md.str();
    return 0;
}

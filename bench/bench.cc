// hostd-bench: the figures of "a database in about a second, the hundredth as fast as the
// first", measured in one run inside the testbed and printed as a markdown table:
//   create → first query through the proxy (hostd) vs pg_createcluster → pg_isready (Debian)
//   flat cost over many creates, with the per-step breakdown from hostd's journal
//   idle memory per tenant (density), GET /v1/tenants and /metrics latency, proxy overhead.
#include <sys/resource.h>
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
#include "cli/client.h"
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

// Where the CPU goes during a pgbench run: the whole machine's busy time (/proc/stat: the
// testbed shares the VM's CPUs), HAProxy's processes, and pgbench itself (a waited-for child).
struct CpuSample {
    double busy_s = 0, total_s = 0, pgbench_s = 0;
    std::map<int, double> haproxy_s;  // by pid: the master and its workers
};

double ticks_to_s(double ticks) { return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK)); }

std::vector<int> haproxy_pids() {
    auto r = hostd::exec({.argv = {"systemctl", "show", "-P", "MainPID", "haproxy.service"}});
    int master = std::atoi(r.out.c_str());
    if (master <= 0) return {};
    std::vector<int> pids{master};
    std::ifstream kids("/proc/" + std::to_string(master) + "/task/" + std::to_string(master) + "/children");
    for (int pid; kids >> pid;) pids.push_back(pid);
    return pids;
}

// pids: HAProxy's processes, looked up before the run (no reload happens during it), so no
// program runs between the two samples but pgbench.
CpuSample cpu_sample(const std::vector<int>& pids) {
    CpuSample c;
    std::ifstream stat("/proc/stat");
    std::string cpu;
    double v[8] = {};  // user nice system idle iowait irq softirq steal
    stat >> cpu >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5] >> v[6] >> v[7];
    double total = 0;
    for (double x : v) total += x;
    c.total_s = ticks_to_s(total);
    c.busy_s = ticks_to_s(total - v[3] - v[4]);
    for (int pid : pids) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        std::getline(in, line);
        auto close = line.rfind(')');  // the command name may hold spaces
        if (close == std::string::npos) continue;
        std::istringstream f(line.substr(close + 2));
        std::string field;
        double utime = 0, stime = 0;
        for (int i = 3; i <= 15 && f >> field; i++) {  // fields 14 and 15: utime, stime
            if (i == 14) utime = std::stod(field);
            if (i == 15) stime = std::stod(field);
        }
        c.haproxy_s[pid] = ticks_to_s(utime + stime);
    }
    struct rusage ru{};
    ::getrusage(RUSAGE_CHILDREN, &ru);
    c.pgbench_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                  static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    return c;
}

struct PgbenchRun {
    double tps = 0;
    double txns = 0;
    double busy_frac = 0;                              // of the machine's CPU time during the run
    double cpu_us = 0, haproxy_us = 0, pgbench_us = 0;  // CPU per transaction
};

PgbenchRun pgbench_run(const std::string& host, uint16_t port, const std::string& user, const std::string& pw, int seconds,
                       bool select_only = false) {
    auto env = std::vector<std::string>{"PATH=/usr/bin:/bin", "PGPASSWORD=" + pw};
    std::vector<std::string> argv = {"/usr/lib/postgresql/15/bin/pgbench", "-h", host, "-p", std::to_string(port), "-U", user,
                                     "-c", "4", "-j", "2", "-T", std::to_string(seconds), "-n", "postgres"};
    if (select_only) argv.insert(argv.end() - 1, "-S");
    const std::vector<int> pids = haproxy_pids();
    const CpuSample before = cpu_sample(pids);
    auto r = hostd::exec_checked({.argv = argv,
                                  .env = env, .timeout = std::chrono::seconds(seconds + 60)},
                                 "pgbench");
    const CpuSample after = cpu_sample(pids);
    static const std::regex tps_re("tps = ([0-9.]+)"), n_re("number of transactions actually processed: ([0-9]+)");
    std::smatch m;
    PgbenchRun out;
    if (!std::regex_search(r.out, m, tps_re)) throw std::runtime_error("pgbench printed no tps: " + r.out);
    out.tps = std::stod(m[1]);
    if (!std::regex_search(r.out, m, n_re)) throw std::runtime_error("pgbench printed no transaction count: " + r.out);
    out.txns = std::stod(m[1]);
    double haproxy = 0;
    for (auto& [pid, s] : after.haproxy_s) {
        auto b = before.haproxy_s.find(pid);
        haproxy += s - (b == before.haproxy_s.end() ? 0 : b->second);
    }
    const double busy = after.busy_s - before.busy_s, total = after.total_s - before.total_s;
    out.busy_frac = total > 0 ? busy / total : 0;
    if (out.txns > 0) {
        out.cpu_us = busy / out.txns * 1e6;
        out.haproxy_us = haproxy / out.txns * 1e6;
        out.pgbench_us = (after.pgbench_s - before.pgbench_s) / out.txns * 1e6;
    }
    return out;
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
                std::vector<PgbenchRun> via, direct;
                for (int round = 0; round < 3; round++) {
                    direct.push_back(pgbench_run("127.0.0.1", c.port, c.user, c.password, pgbench_seconds, select_only));
                    via.push_back(pgbench_run("127.0.0.1", c.public_port, c.user, c.password, pgbench_seconds, select_only));
                }
                auto med = [](const std::vector<PgbenchRun>& runs, double PgbenchRun::*field) {
                    std::vector<double> v;
                    for (auto& r : runs) v.push_back(r.*field);
                    return median(v);
                };
                const std::string kind = select_only ? "select-only" : "TPC-B-like";
                rows.push_back({"pgbench " + kind + " TPS through HAProxy / direct (-c4 -j2, median of 3 alternated rounds of " +
                                    std::to_string(pgbench_seconds) + " s)",
                                fmt(med(via, &PgbenchRun::tps), "") + " / " + fmt(med(direct, &PgbenchRun::tps), ""), "target ≥ 0.90",
                                ratio(med(via, &PgbenchRun::tps) / med(direct, &PgbenchRun::tps))});
                // Where the difference goes: the machine's CPU per transaction, and HAProxy's and
                // pgbench's own share of it; the rest is PostgreSQL, the kernel and the VM's other work.
                rows.push_back({"  " + kind + " machine CPU per transaction through HAProxy / direct (busy " +
                                    fmt(100 * med(via, &PgbenchRun::busy_frac), "%") + " / " +
                                    fmt(100 * med(direct, &PgbenchRun::busy_frac), "%") + " of " +
                                    std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs)",
                                fmt(med(via, &PgbenchRun::cpu_us), "µs") + " / " + fmt(med(direct, &PgbenchRun::cpu_us), "µs"), "-",
                                ratio(med(via, &PgbenchRun::cpu_us) / med(direct, &PgbenchRun::cpu_us))});
                rows.push_back({"  " + kind + " of which HAProxy / pgbench, through HAProxy (direct: pgbench " +
                                    fmt(med(direct, &PgbenchRun::pgbench_us), "µs") + ")",
                                fmt(med(via, &PgbenchRun::haproxy_us), "µs") + " / " + fmt(med(via, &PgbenchRun::pgbench_us), "µs"),
                                "-", "-"});
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

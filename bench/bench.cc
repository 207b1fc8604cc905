// hostd-bench: the figures of "a database in about a second, the hundredth as fast as the
// first", measured in one run inside the testbed and printed as a markdown table:
//   create → first query through the proxy (hostd) vs pg_createcluster → pg_isready (Debian)
//   flat cost over many creates, with the per-step breakdown from hostd's journal
//   idle memory per tenant (density), GET /v1/tenants and /metrics latency, proxy overhead,
//   the proxy's price at one client (HAProxy vs systemd-socket-proxyd: µs per round trip, CPU);
// and with --backup-repo (backups switched on after those, so the creates above are timed as
// hostd ships, backups off): a branch of a 100 MB and a 1 GB tenant vs pg_basebackup + start,
// a full backup's throughput and what it costs a neighbour's pgbench, and the recovery point.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "base/curl.h"
#include "base/exec.h"
#include "base/size.h"
#include "base/strings.h"
#include "cli/client.h"
#include "model/layout.h"
#include "routes/routes.h"
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

// CPU time (user + system, all its threads) a process has used so far: /proc/<pid>/stat's
// utime and stime; nothing if it is gone.
std::optional<double> proc_cpu_s(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(in, line);
    auto close = line.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos) return std::nullopt;
    std::istringstream f(line.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && f >> field; i++) {  // fields 14 and 15: utime, stime
        if (i == 14) utime = std::stod(field);
        if (i == 15) stime = std::stod(field);
    }
    return ticks_to_s(utime + stime);
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
    for (int pid : pids)
        if (auto s = proc_cpu_s(pid)) c.haproxy_s[pid] = *s;
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

// ---- Backups, branches and the recovery point (with --backup-repo) ----------------------

const std::string kPgBin = "/usr/lib/postgresql/15/bin";
constexpr const char* kHostdToml = "/etc/hostd/hostd.toml";

double s_since(Clock::time_point t0) { return ms_since(t0) / 1000.0; }
void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

// A tenant's PostgreSQL directly (TLS on loopback), and through the proxy as a client.
hostd::pgconf::ConnParams direct(const Created& c) {
    return {.host = "127.0.0.1", .port = c.port, .user = c.user, .password = c.password, .sslmode = "require"};
}
hostd::pgconf::ConnParams proxied(const Created& c) {
    return {.host = "127.0.0.1", .port = c.public_port, .user = c.user, .password = c.password};
}
std::string one(const hostd::pgconf::ConnParams& p, const std::string& sql) { return hostd::pgconf::query_column(p, sql).at(0); }

void call_ok(const Client& c, const std::string& method, const std::string& path, int want, const nlohmann::json* body = nullptr) {
    auto r = c.call(method, path, body);
    if (r.status != want)
        throw std::runtime_error(method + " " + path + ": HTTP " + std::to_string(r.status) + " " + r.body.dump() + r.transport_error);
}
void purge(const Client& c, const std::string& name) { call_ok(c, "DELETE", "/v1/tenants/" + name + "?purge=true&purge_backups=true", 200); }

// hostd reads hostd.toml at start: backups are switched on (or archive_timeout changed) by
// rewriting its [backup] section and restarting hostd; running tenants keep running.
void configure_backups(const Client& c, const std::string& repo, const std::string& compress, int archive_timeout) {
    std::stringstream in;
    in << std::ifstream(kHostdToml).rdbuf();
    static const std::regex section("\\n\\[backup\\][^\\[]*");
    std::string toml = std::regex_replace(in.str(), section, "");
    toml += "\n[backup]\nrepo = \"" + repo + "\"\ncompress = \"" + compress + "\"\narchive_timeout = " +
            std::to_string(archive_timeout) + "\n";
    std::ofstream(kHostdToml) << toml;
    hostd::exec_checked({.argv = {"systemctl", "restart", "hostd.service"}}, "systemctl restart hostd");
    for (int i = 0; i < 600; i++) {
        if (c.call("GET", "/v1/tenants").status == 200) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("hostd did not answer after its restart");
}

std::vector<std::string> pg_env(const std::string& password) { return {"PATH=/usr/bin:/bin", "PGPASSWORD=" + password}; }

// pgbench -i at the scale that gives about mb of data; returns the cluster's size in bytes.
double load(const Created& c, int scale) {
    hostd::exec_checked({.argv = {kPgBin + "/pgbench", "-i", "-s", std::to_string(scale), "-q", "-h", "127.0.0.1", "-p",
                                  std::to_string(c.port), "-U", c.user, "postgres"},
                         .env = pg_env(c.password), .timeout = std::chrono::minutes(30)},
                        "pgbench -i");
    return std::stod(one(direct(c), "SELECT sum(pg_database_size(oid)) FROM pg_database"));
}

// Waits until the WAL written so far is in the repository (a backup or a branch right after a
// load would otherwise also time the archive's backlog).
void wait_archived(const Created& c) {
    auto p = direct(c);
    p.query_timeout_ms = 0;
    hostd::pgconf::exec_sql(p, "CHECKPOINT");
    const std::string seg = one(p, "SELECT pg_walfile_name(pg_current_wal_lsn())");
    one(p, "SELECT pg_switch_wal()");
    for (int i = 0; i < 6000; i++) {
        if (one(p, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= seg) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("WAL segment " + seg + " of " + c.name + " was not archived in 10 minutes");
}

struct BackupDone {
    double ms = 0, size = 0, repo_size = 0;
};
BackupDone full_backup(const Client& c, const std::string& name) {
    const nlohmann::json body = {{"type", "full"}};
    auto t0 = Clock::now();
    auto r = c.call("POST", "/v1/tenants/" + name + "/backups", &body);
    if (r.status != 201) throw std::runtime_error("backup " + name + ": HTTP " + std::to_string(r.status) + " " + r.body.dump());
    return {ms_since(t0), r.body["backup"]["size"].get<double>(), r.body["backup"]["repo_size"].get<double>()};
}

// The do-it-yourself branch: pg_basebackup of the source over its socket into a fresh
// directory, a postgres started on it, the first query answered; as the source's OS user (the
// one that may use its socket), so no file changes owner.
double reference_branch(const Created& src, const std::string& dir) {
    const hostd::TenantLayout l = hostd::layout_of(hostd::Config{}, src.name);  // its user, socket: no config needed
    const passwd* pw = ::getpwnam(l.os_user.c_str());
    if (!pw) throw std::runtime_error("no OS user '" + l.os_user + "' for the pg_basebackup reference");
    const uid_t uid = pw->pw_uid;
    const gid_t gid = pw->pw_gid;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir + "/sock");
    for (auto d : {dir, dir + "/sock"})
        if (::chown(d.c_str(), uid, gid) != 0) throw std::runtime_error("chown " + d);
    const std::string data = dir + "/data", sock = dir + "/sock", port = "5499";
    auto t0 = Clock::now();
    // The login hostd's pg_hba gives the tenant's OS user for replication (pgBackRest's role, peer).
    hostd::exec_checked({.argv = {kPgBin + "/pg_basebackup", "-h", l.socket_dir, "-p", std::to_string(src.port),
                                  "-U", "hostd_backup", "-w", "-D", data, "-X", "stream", "-c", "fast"},
                         .env = pg_env(""), .uid = uid, .gid = gid, .timeout = std::chrono::minutes(30)},
                        "pg_basebackup of " + src.name);
    hostd::exec_checked({.argv = {kPgBin + "/pg_ctl", "-D", data, "-l", dir + "/log", "-w", "-t", "600", "-o",
                                  // PostgreSQL's own default for the copy's first start (the source's
                                  // postgresql.conf says syncfs: its disk is its own, this directory's is not).
                                  "-c port=" + port + " -c listen_addresses='' -c unix_socket_directories=" + sock +
                                      " -c archive_mode=off -c ssl=off -c recovery_init_sync_method=fsync",
                                  "start"},
                         .uid = uid, .gid = gid, .timeout = std::chrono::minutes(11)},
                        "pg_ctl start of the pg_basebackup copy");
    hostd::pgconf::check_select1({.host = sock, .port = 5499, .user = src.user, .password = src.password, .sslmode = "disable"});
    const double ms = ms_since(t0);
    hostd::exec({.argv = {kPgBin + "/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"}, .uid = uid, .gid = gid});
    std::filesystem::remove_all(dir);
    return ms;
}

// pgbench -P 1 lines: (seconds since pgbench began, TPS of the second before).
std::vector<std::pair<double, double>> progress_of(const std::string& out) {
    static const std::regex re("progress: ([0-9.]+) s, ([0-9.]+) tps");
    std::vector<std::pair<double, double>> v;
    for (std::sregex_iterator it(out.begin(), out.end(), re), end; it != end; ++it)
        v.emplace_back(std::stod((*it)[1]), std::stod((*it)[2]));
    return v;
}
// Mean TPS of the seconds wholly inside [from, to].
double mean_tps(const std::vector<std::pair<double, double>>& v, double from, double to) {
    double sum = 0;
    int n = 0;
    for (auto& [t, tps] : v)
        if (t - 1 >= from && t <= to) sum += tps, n++;
    return n ? sum / n : 0;
}

std::string mb(double bytes) { return fmt(bytes / 1e6, "MB"); }

std::string list_of(const std::vector<double>& v, const char* unit) {
    std::string s;
    for (double x : v) s += (s.empty() ? "" : ", ") + fmt(x, unit);
    return s;
}

// What runs while a branch is made, sampled from /proc every 20 ms: the parts of its 'restore'
// step that are programs (pgBackRest's restore, the recovering server from start to stop, its
// WAL replay and the archive-get calls that fetch its WAL) and the stanza-create of 'backups'.
// Seconds each was seen running (parts may overlap: archive-get runs during the replay).
class Sampler {
public:
    Sampler() : th_([this] { run(); }) {}
    ~Sampler() { stop(); }
    Sampler(const Sampler&) = delete;
    Sampler& operator=(const Sampler&) = delete;
    std::map<std::string, double> stop() {
        done_ = true;
        if (th_.joinable()) th_.join();
        return seen_;
    }

private:
    static std::string part_of(const std::vector<std::string>& argv) {
        if (argv.empty()) return "";
        const std::string& a0 = argv[0];
        auto ends = [](const std::string& s, const std::string& tail) {
            return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
        };
        if (ends(a0, "/pg_basebackup")) return "pg_basebackup";
        if (ends(a0, "pgbackrest")) {
            // Its command is the first word that is not an option (options may quote others).
            for (size_t i = 1; i < argv.size(); i++)
                if (argv[i].rfind("--", 0) != 0) {
                    if (argv[i] == "restore") return "pgbackrest restore";
                    if (argv[i] == "archive-get" || argv[i] == "stanza-create") return argv[i];
                    return "";
                }
            return "";
        }
        // The recovering server's startup process: "postgres: CLUSTER: startup recovering ...".
        if (a0.rfind("postgres: ", 0) == 0 && a0.find(": startup") != std::string::npos) return "replay";
        // The recovering server itself (its postmaster, in hostd's recovery unit), start to stop.
        if (ends(a0, "/postgres"))
            for (size_t i = 1; i < argv.size(); i++)
                if (ends(argv[i], "/recovery_hba.conf")) return "recovering server";
        return "";
    }
    // What the startup process is at: its title's word after "startup" (recovering, waiting),
    // its state (R running, S sleeping, D waiting for the disk) and the kernel function it waits in.
    static std::string startup_state(const std::string& pid, const std::string& title) {
        std::istringstream words(title.substr(title.find(": startup") + 9));
        std::string word;
        words >> word;
        std::ifstream stat("/proc/" + pid + "/stat"), wchan("/proc/" + pid + "/wchan");
        std::string line, w;
        std::getline(stat, line);
        std::getline(wchan, w);
        const auto close = line.rfind(')');
        const std::string state = close != std::string::npos && close + 2 < line.size() ? line.substr(close + 2, 1) : "?";
        return "startup " + word + " " + state + " " + (w.empty() ? "-" : w);
    }
    void run() {
        auto last = Clock::now();
        while (!done_) {
            std::set<std::string> now;
            std::error_code ec;
            for (auto& e : std::filesystem::directory_iterator("/proc", ec)) {
                const std::string pid = e.path().filename();
                if (pid.empty() || !std::isdigit(static_cast<unsigned char>(pid[0]))) continue;
                std::ifstream in("/proc/" + pid + "/cmdline");
                std::vector<std::string> argv;
                for (std::string arg; std::getline(in, arg, '\0');) argv.push_back(arg);
                if (auto p = part_of(argv); !p.empty()) {
                    now.insert(p);
                    if (p == "replay") now.insert("  " + startup_state(pid, argv[0]));
                }
            }
            const double dt = s_since(last);
            last = Clock::now();
            for (auto& p : now) seen_[p] += dt;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    std::atomic<bool> done_{false};
    std::map<std::string, double> seen_;
    std::thread th_;  // last: starts once the rest is built
};

// Every process of a tenant's unit stopped (SIGSTOP) or let go on (SIGCONT): frozen, nothing it
// has not handed to the repository yet gets there, as when its machine or disk is gone at once.
void signal_unit(const std::string& tenant, const char* sig) {
    hostd::exec_checked({.argv = {"systemctl", "kill", "--signal=" + std::string(sig), hostd::layout_of(hostd::Config{}, tenant).unit}},
                        std::string("systemctl kill --signal=") + sig);
}

// ---- The proxy's price: HAProxy against another forwarder, at one client ------------------

constexpr const char* kSocketProxyd = "/usr/lib/systemd/systemd-socket-proxyd";

// systemd-socket-proxyd forwarding a loopback port the kernel picks to target (HOST:PORT): a
// child of this program, handed its listening socket the way systemd hands it (LISTEN_FDS),
// stopped by its PID when done (and by the kernel if this program dies first).
class SocketProxyd {
public:
    explicit SocketProxyd(const std::string& target) {
        if (::access(kSocketProxyd, X_OK) != 0)
            throw std::runtime_error(std::string(kSocketProxyd) + " is missing: it comes with the systemd package (make deps installs it)");
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw std::runtime_error(std::string("socket for systemd-socket-proxyd: ") + std::strerror(errno));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 128) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
            const int e = errno;
            ::close(fd);
            throw std::runtime_error(std::string("listening socket for systemd-socket-proxyd: ") + std::strerror(e));
        }
        port_ = ntohs(a.sin_port);
        // All the child needs is built before fork: after it, only async-signal-safe calls.
        std::string bin = kSocketProxyd, tgt = target;
        char* args[] = {bin.data(), tgt.data(), nullptr};
        char listen_fds[] = "LISTEN_FDS=1", path[] = "PATH=/usr/bin:/bin", listen_pid[32] = "LISTEN_PID=";
        pid_ = ::fork();
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGTERM);
            // fd 3 is the first passed socket; dup2 leaves the copy without O_CLOEXEC.
            if (fd == 3 ? ::fcntl(3, F_SETFD, 0) != 0 : ::dup2(fd, 3) != 3) ::_exit(127);
            char digits[16];
            int n = 0;
            for (pid_t p = ::getpid(); p > 0; p /= 10) digits[n++] = static_cast<char>('0' + p % 10);
            char* w = listen_pid + std::strlen("LISTEN_PID=");
            while (n > 0) *w++ = digits[--n];
            *w = '\0';
            char* envp[] = {listen_fds, listen_pid, path, nullptr};
            ::execve(args[0], args, envp);
            ::_exit(127);
        }
        const int e = errno;
        ::close(fd);
        if (pid_ < 0) throw std::runtime_error(std::string("fork for systemd-socket-proxyd: ") + std::strerror(e));
    }
    ~SocketProxyd() {
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
    }
    SocketProxyd(const SocketProxyd&) = delete;
    SocketProxyd& operator=(const SocketProxyd&) = delete;
    pid_t pid() const { return pid_; }
    uint16_t port() const { return port_; }

private:
    pid_t pid_ = -1;
    uint16_t port_ = 0;
};

// One pgbench run at one client, and the CPU time each forwarder's processes used meanwhile
// (whether or not the run went through it: a forwarder's CPU during others' runs is its own
// work without this traffic, HAProxy's health checks of every route).
struct C1Run {
    double tps = 0, txns = 0, wall_s = 0;
    double median_us = 0;  // of every transaction's latency (pgbench -l)
    std::vector<double> fwd_cpu_s;
};

double cpu_of(const std::vector<int>& pids) {
    double s = 0;
    for (int pid : pids) s += proc_cpu_s(pid).value_or(0);
    return s;
}

C1Run pgbench_c1(const Created& c, uint16_t port, int transactions, bool select_only, const std::vector<std::vector<int>>& forwarders) {
    auto env = pg_env(c.password);
    env.push_back("PGSSLMODE=require");  // TLS end to end on every path: the forwarders pass bytes through
    // TPC-B-like without waiting for its commit's flush: the loop device's flush takes 1–8 ms
    // here, varying from second to second, which would hide the µs this section measures.
    if (!select_only) env.push_back("PGOPTIONS=-c synchronous_commit=off");
    std::vector<std::string> argv = {kPgBin + "/pgbench", "-h", "127.0.0.1", "-p", std::to_string(port), "-U", c.user,
                                     "-c", "1", "-j", "1", "-t", std::to_string(transactions), "-n"};
    if (select_only) argv.push_back("-S");
    // Every transaction's latency, logged: its median is what one round trip costs when the
    // VM's other work does not get in the way (1 / TPS, the mean, takes every stall in).
    char dir_template[] = "/tmp/hostd-bench-c1.XXXXXX";
    if (!::mkdtemp(dir_template)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    const std::string dir = dir_template;
    argv.insert(argv.end(), {"-l", "--log-prefix=" + dir + "/txn", "postgres"});
    C1Run out;
    std::vector<double> before;
    for (auto& f : forwarders) before.push_back(cpu_of(f));
    const auto t0 = Clock::now();
    hostd::ExecResult r;
    try {
        r = hostd::exec_checked({.argv = argv, .env = env, .timeout = std::chrono::seconds(300)}, "pgbench -c1");
    } catch (...) {
        std::filesystem::remove_all(dir);
        throw;
    }
    out.wall_s = s_since(t0);
    for (size_t i = 0; i < forwarders.size(); i++) out.fwd_cpu_s.push_back(cpu_of(forwarders[i]) - before[i]);
    // Log lines: client_id transaction_no latency_us script_no time_epoch time_us.
    std::vector<double> lat;
    for (auto& e : std::filesystem::directory_iterator(dir)) {
        std::ifstream in(e.path());
        for (std::string line; std::getline(in, line);) {
            std::istringstream f(line);
            double client = 0, txn = 0, us = 0;
            if (f >> client >> txn >> us) lat.push_back(us);
        }
    }
    std::filesystem::remove_all(dir);
    if (lat.empty()) throw std::runtime_error("pgbench -l logged no transaction: " + r.out);
    out.median_us = median(lat);
    static const std::regex tps_re("tps = ([0-9.]+)"), n_re("number of transactions actually processed: ([0-9]+)");
    std::smatch m;
    if (!std::regex_search(r.out, m, tps_re)) throw std::runtime_error("pgbench printed no tps: " + r.out);
    out.tps = std::stod(m[1]);
    if (!std::regex_search(r.out, m, n_re)) throw std::runtime_error("pgbench printed no transaction count: " + r.out);
    out.txns = std::stod(m[1]);
    return out;
}

struct PriceOptions {
    int transactions = 200, rounds = 60, tpcb_rounds = 20;
};

// On one tenant, pgbench at one client (-c1: every round trip waits for the one before, so a
// forwarder's time adds to each) direct to PostgreSQL's port, through hostd's HAProxy route and
// through systemd-socket-proxyd forwarding the same port, in alternated rounds (the order turns
// each round so drift favours no path). Runs are short (a fixed number of transactions, a
// fraction of a second) so the three of a round see the VM in the same state: on this shared
// 2-CPU VM a -c1 run's median transaction is either about 150 µs or, while other work holds the
// CPUs, about 3 ms, changing from second to second. Per run: the median of its transactions'
// latencies (and the mean, 1 / TPS); added per round trip = (through − direct) / round trips per
// transaction, paired within a round, median over rounds. A forwarder's CPU per transaction: its
// processes' CPU time during the runs through it, less what it uses without this traffic (its CPU
// per second during the other paths' runs), over all rounds.
std::vector<Row> proxy_price(const Created& c, const PriceOptions& o) {
    std::vector<Row> rows;
    if (one(direct(c), "SELECT (to_regclass('pgbench_accounts') IS NOT NULL)::text") != "true")
        hostd::exec_checked({.argv = {kPgBin + "/pgbench", "-i", "-s", "5", "-q", "-h", "127.0.0.1", "-p", std::to_string(c.port), "-U", c.user, "postgres"},
                             .env = pg_env(c.password), .timeout = std::chrono::minutes(5)},
                            "pgbench -i");
    SocketProxyd proxyd("127.0.0.1:" + std::to_string(c.port));
    const std::vector<std::vector<int>> fwd = {haproxy_pids(), {proxyd.pid()}};  // no reload happens meanwhile
    if (fwd[0].empty()) throw std::runtime_error("haproxy.service has no main PID");
    const std::vector<std::string> names = {"direct", "HAProxy", "systemd-socket-proxyd"};
    const std::vector<uint16_t> ports = {c.port, c.public_port, proxyd.port()};
    for (uint16_t p : ports) pgbench_c1(c, p, 1000, true, fwd);  // warm-up: connections, caches, the forwarder's first accept

    struct Kind {
        std::string name;
        bool select_only;
        int rounds, round_trips;  // select-only: one SELECT; TPC-B-like: BEGIN, 3 UPDATEs, SELECT, INSERT, END
    };
    std::vector<Kind> kinds = {{"select-only", true, o.rounds, 1}};
    if (o.tpcb_rounds > 0) kinds.push_back({"TPC-B-like (synchronous_commit off)", false, o.tpcb_rounds, 7});
    std::vector<std::vector<std::vector<C1Run>>> runs(kinds.size(), std::vector<std::vector<C1Run>>(3));  // [kind][path][round]
    for (size_t k = 0; k < kinds.size(); k++)
        for (int r = 0; r < kinds[k].rounds; r++) {
            for (int i = 0; i < 3; i++) {
                const size_t p = static_cast<size_t>(r + i) % 3;
                runs[k][p].push_back(pgbench_c1(c, ports[p], o.transactions, kinds[k].select_only, fwd));
            }
            std::fprintf(stderr, "price    %s round %d: median µs direct %.0f, HAProxy %.0f, systemd-socket-proxyd %.0f\n", kinds[k].name.c_str(), r + 1,
                         runs[k][0].back().median_us, runs[k][1].back().median_us, runs[k][2].back().median_us);
        }
    // Each forwarder's CPU per second without this traffic: over every run not through it.
    std::vector<double> idle_rate(2);
    for (size_t f = 0; f < 2; f++) {
        double cpu = 0, wall = 0;
        for (auto& kind : runs)
            for (size_t p = 0; p < 3; p++)
                if (p != f + 1)
                    for (auto& x : kind[p]) cpu += x.fwd_cpu_s[f], wall += x.wall_s;
        idle_rate[f] = wall > 0 ? cpu / wall : 0;
    }
    for (size_t k = 0; k < kinds.size(); k++) {
        const Kind& kind = kinds[k];
        // Per round, paired with that round's direct run: from the median transaction and from the mean (1 / TPS).
        std::vector<double> direct_median, direct_mean, added[2], added_mean[2];
        double cpu_s[2] = {}, txns[2] = {};  // over every round (a run's own CPU time is a few clock ticks)
        for (int r = 0; r < kind.rounds; r++) {
            const C1Run& d = runs[k][0][static_cast<size_t>(r)];
            direct_median.push_back(d.median_us);
            direct_mean.push_back(1e6 / d.tps);
            for (size_t f = 0; f < 2; f++) {
                const C1Run& x = runs[k][f + 1][static_cast<size_t>(r)];
                added[f].push_back((x.median_us - d.median_us) / kind.round_trips);
                added_mean[f].push_back((1e6 / x.tps - 1e6 / d.tps) / kind.round_trips);
                cpu_s[f] += x.fwd_cpu_s[f] - idle_rate[f] * x.wall_s;
                txns[f] += x.txns;
            }
        }
        auto pair = [&](const std::vector<double>* v, const std::string& figure) {
            rows.push_back({figure, "HAProxy " + fmt(median(v[0]), "µs"), "systemd-socket-proxyd " + fmt(median(v[1]), "µs"),
                            median(v[1]) > 0 ? ratio(median(v[0]) / median(v[1])) : "-"});
        };
        pair(added, "proxy price, " + kind.name + " at -c1 (" + std::to_string(kind.round_trips) + " round trip" + (kind.round_trips > 1 ? "s" : "") +
                        " per transaction, TLS end to end), median of " + std::to_string(kind.rounds) + " alternated rounds of " + std::to_string(o.transactions) +
                        " transactions: latency added per round trip, from each run's median transaction (direct: " + fmt(median(direct_median), "µs") +
                        " per transaction; middle half of the rounds, HAProxy: " + fmt(pct(added[0], 25), "µs") + " to " + fmt(pct(added[0], 75), "µs") +
                        ", systemd-socket-proxyd: " + fmt(pct(added[1], 25), "µs") + " to " + fmt(pct(added[1], 75), "µs") + ")");
        pair(added_mean, "  " + kind.name + " at -c1: the same from the mean, 1 / TPS (direct: " + fmt(median(direct_mean), "µs") +
                             " per transaction; takes in every stall the VM's other work causes)");
        const std::vector<double> cpu[2] = {{cpu_s[0] / txns[0] * 1e6}, {cpu_s[1] / txns[1] * 1e6}};
        pair(cpu, "  " + kind.name + " at -c1: the forwarder's CPU per transaction, all rounds (utime + stime of its processes, less its CPU without this traffic: HAProxy " +
                      fmt(idle_rate[0] * 1000, "ms/s") + ", systemd-socket-proxyd " + fmt(idle_rate[1] * 1000, "ms/s") + ")");
    }
    return rows;
}

// ---- Flat cost and the idle host (bench/run ONLY=flat) -----------------------------------

// One process as /proc shows it: its CPU time so far, its own and that of the children it has
// waited for (utime + stime + cutime + cstime), its cgroup and its title (argv[0]).
struct ProcInfo {
    int pid = 0;
    double cpu_s = 0;
    std::string cgroup, title;
};

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<ProcInfo> processes() {
    std::vector<ProcInfo> out;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string pid = e.path().filename();
        if (pid.empty() || !std::isdigit(static_cast<unsigned char>(pid[0]))) continue;
        const std::string stat = read_all("/proc/" + pid + "/stat");
        const auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream f(stat.substr(close + 2));
        std::string field;
        double t[4] = {};
        for (int i = 3; i <= 17 && f >> field; i++)
            if (i >= 14) t[i - 14] = std::stod(field);  // utime stime cutime cstime
        ProcInfo p{.pid = std::stoi(pid), .cpu_s = ticks_to_s(t[0] + t[1] + t[2] + t[3])};
        // The cgroup as systemd placed it (v1: the name=systemd hierarchy; v2: the one line).
        std::istringstream cg(read_all("/proc/" + pid + "/cgroup"));
        for (std::string line; std::getline(cg, line);)
            if (line.find(":name=systemd:") != std::string::npos || line.rfind("0::", 0) == 0) p.cgroup = line.substr(line.rfind(':') + 1);
        const std::string cmd = read_all("/proc/" + pid + "/cmdline");
        p.title = cmd.substr(0, cmd.find('\0'));
        out.push_back(std::move(p));
    }
    return out;
}

// Who a process's CPU belongs to on an idle host. A process that exits is counted in its parent
// (cutime/cstime, once the parent waits for it): the connections a tenant's postmaster forks
// (HAProxy's health checks, hostd's refresh) and its autovacuum workers are in "postmaster".
std::string group_of(const ProcInfo& p) {
    if (p.pid == 1) return "systemd (PID 1, and the orphans it reaped)";
    if (p.cgroup.find("/hostd-postgres@") != std::string::npos) {
        const auto colon = p.title.find(": ", p.title.find(": ") + 2);  // "postgres: hostd-NAME: what"
        if (p.title.rfind("postgres: ", 0) == 0 && colon != std::string::npos) {
            std::string what = p.title.substr(colon + 2);
            while (!what.empty() && what.back() == ' ') what.pop_back();
            for (const char* k : {"checkpointer", "background writer", "walwriter", "autovacuum launcher", "logical replication launcher", "archiver"})
                if (what.rfind(k, 0) == 0) return std::string("tenants: ") + k;
            return "tenants: backends";
        }
        if (p.title.size() >= 9 && p.title.compare(p.title.size() - 9, 9, "/postgres") == 0)
            return "tenants: postmaster (with the connections and autovacuum workers it forked)";
        return "tenants: other processes";
    }
    if (p.cgroup.find("/hostd.service") != std::string::npos) return "hostd";
    if (p.cgroup.find("/haproxy.service") != std::string::npos) return "HAProxy";
    if (p.cgroup.find("/systemd-journald") != std::string::npos) return "systemd-journald";
    if (p.cgroup.find("/system.slice/") != std::string::npos || p.cgroup.find("/init.scope") != std::string::npos) return "other system services";
    return "other (this benchmark, shells)";
}

std::map<std::string, double> cpu_by_group() {
    std::map<std::string, double> g;
    for (auto& p : processes()) g[group_of(p)] += p.cpu_s;
    return g;
}

// hostd's threads by name (its tickers name theirs: guard, portwatch, pg-refresh, ...).
std::map<std::string, double> hostd_threads() {
    std::map<std::string, double> out;
    const int pid = std::atoi(hostd::exec({.argv = {"systemctl", "show", "-P", "MainPID", "hostd.service"}}).out.c_str());
    if (pid <= 0) return out;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
        const std::string tid = e.path().filename();
        std::string comm = read_all("/proc/" + std::to_string(pid) + "/task/" + tid + "/comm");
        while (!comm.empty() && comm.back() == '\n') comm.pop_back();
        // task/<tid>/stat: that thread's own time (/proc/<tid>/stat would be the whole process's)
        const std::string stat = read_all("/proc/" + std::to_string(pid) + "/task/" + tid + "/stat");
        const auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream f(stat.substr(close + 2));
        std::string field;
        double t[2] = {};
        for (int i = 3; i <= 15 && f >> field; i++)
            if (i >= 14) t[i - 14] = std::stod(field);
        out[comm] += ticks_to_s(t[0] + t[1]);
    }
    return out;
}

struct MachineCpu {
    double busy_s = 0, total_s = 0;
};
MachineCpu machine_cpu() {
    std::ifstream stat("/proc/stat");
    std::string cpu;
    double v[8] = {};
    stat >> cpu >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5] >> v[6] >> v[7];
    double total = 0;
    for (double x : v) total += x;
    return {ticks_to_s(total - v[3] - v[4]), ticks_to_s(total)};
}

// The number after key at the start of a line of text (/proc/meminfo, smaps_rollup, memory.stat).
uint64_t number_after(const std::string& text, const std::string& key) {
    const auto at = text.find("\n" + key);
    if (at == std::string::npos && text.rfind(key, 0) != 0) return 0;
    return std::strtoull(text.c_str() + (at == std::string::npos ? 0 : at + 1) + key.size(), nullptr, 10);
}

// The testbed's memory as its own memory cgroup counts it (v1, the root of its cgroup namespace:
// every process of the machine and the kernel memory charged to them), and the VM's MemAvailable.
struct TestbedMemory {
    double usage = 0, rss = 0, shmem = 0, cache = 0, kmem = 0, available = 0;
};
TestbedMemory testbed_memory() {
    TestbedMemory m;
    const std::string st = read_all("/sys/fs/cgroup/memory/memory.stat");
    m.usage = static_cast<double>(std::strtoull(read_all("/sys/fs/cgroup/memory/memory.usage_in_bytes").c_str(), nullptr, 10));
    m.kmem = static_cast<double>(std::strtoull(read_all("/sys/fs/cgroup/memory/memory.kmem.usage_in_bytes").c_str(), nullptr, 10));
    m.rss = static_cast<double>(number_after(st, "total_rss "));
    m.shmem = static_cast<double>(number_after(st, "total_shmem "));
    m.cache = static_cast<double>(number_after(st, "total_cache "));
    m.available = static_cast<double>(number_after(read_all("/proc/meminfo"), "MemAvailable:")) * 1024;
    return m;
}

// Which tenants hibernate, from /metrics' hostd_tenant_hibernated (the records: GET
// /v1/tenants?live=1 asks systemd about every tenant, minutes at a few hundred on a busy host).
std::map<std::string, std::string> live_state_of(const Client& client) {
    std::map<std::string, std::string> out;
    std::string text;
    if (hostd::curl::get_over_socket(client.socket_path(), "/metrics", text) != 200) return out;
    static const std::regex re("^hostd_tenant_hibernated\\{tenant=\"([^\"]+)\"\\} ([01])");
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (line.rfind("hostd_tenant_hibernated{", 0) == 0 && std::regex_search(line, m, re)) out[m[1]] = m[2] == "1" ? "hibernated" : "awake";
    }
    return out;
}
std::map<std::string, int> live_states(const Client& client) {
    std::map<std::string, int> out;
    for (auto& [name, st] : live_state_of(client)) out[st]++;
    return out;
}

// The flat-cost series and the idle host it leaves: N creates one after another (request to the
// first query through HAProxy), medians of successive windows and per-step medians first vs
// last window; then, with the N tenants idle, where the machine's CPU goes, memory and disk per
// tenant, the API's latency, and how many such tenants this machine holds by each resource.
std::vector<Row> flat_and_idle(const Client& client, int count, int window, double settle_s, double idle_s, bool keep, bool hibernate,
                               int wakes, int parallel, double create_minutes, bool existing) {
    std::vector<Row> rows;
    const nlohmann::json body = {{"memory", "64M"}, {"disk_size", "256M"}};
    const TestbedMemory mem_before = testbed_memory();
    std::vector<double> total;
    std::vector<Created> made;
    const auto t_creates = Clock::now();
    if (existing) {
        // The tenants a cut-short run left (f1, f2, ...; their passwords are not known: the wake
        // sample gets new ones), no creates.
        auto r = client.call("GET", "/v1/tenants");
        for (auto& t : r.body["tenants"]) {
            const std::string name = t.value("name", "");
            if (name.size() < 2 || name[0] != 'f' || t.value("state", "") != "ready") continue;
            made.push_back({name, t["public_port"].get<uint16_t>(), t["port"].get<uint16_t>(), t.value("admin_user", name), ""});
        }
        count = 0;
        rows.push_back({"tenants in place (made by an earlier invocation of this run, cut short after its creates)", std::to_string(made.size()), "-", "-"});
    }
    // parallel creates at once (1: one after another, the flat-cost series as such); with
    // create_minutes, no new create starts after that long (the idle figures are then of the
    // tenants made so far); likewise once /root/stop-creates exists.
    std::vector<std::optional<Created>> slots(static_cast<size_t>(count));
    std::vector<double> times(static_cast<size_t>(count), 0);
    std::atomic<int> next{0};
    std::atomic<bool> failed{false};
    std::string failure;
    std::mutex mu;
    auto worker = [&] {
        for (;;) {
            if (failed || (create_minutes > 0 && s_since(t_creates) > create_minutes * 60) || std::filesystem::exists("/root/stop-creates")) return;
            const int i = next++;
            if (i >= count) return;
            double ms = 0;
            try {
                slots[static_cast<size_t>(i)] = create(client, "f" + std::to_string(i + 1), body, ms);
            } catch (const std::exception& e) {
                std::lock_guard g(mu);
                failure = e.what();
                failed = true;
                return;
            }
            times[static_cast<size_t>(i)] = ms;
            std::fprintf(stderr, "create f%-7d %7.0f ms\n", i + 1, ms);
        }
    };
    std::vector<std::thread> workers;
    for (int k = 0; k < std::max(1, parallel); k++) workers.emplace_back(worker);
    for (auto& t : workers) t.join();
    if (failed) throw std::runtime_error(failure);
    for (size_t i = 0; i < slots.size(); i++)
        if (slots[i]) {
            made.push_back(*slots[i]);
            total.push_back(times[i]);
        }
    const double creates_min = s_since(t_creates) / 60;
    if (!existing && (made.size() < static_cast<size_t>(count) || parallel > 1))
        rows.push_back({"creates: " + std::to_string(made.size()) + " of " + std::to_string(count) + " asked, " + std::to_string(std::max(1, parallel)) +
                            " at once (the times below are each create's own, request to first query)",
                        fmt(creates_min, "min"), "-", "-"});
    const size_t w = static_cast<size_t>(window);
    const auto first = slice(total, 0, w), last = slice(total, total.size() > w ? total.size() - w : 0, w);
    if (!existing) {
    rows.push_back({"flat cost: median of the last " + std::to_string(last.size()) + " creates / first " + std::to_string(first.size()) + " (of " +
                        std::to_string(count) + ", full path: pool off; " + fmt(creates_min, "min") + " in all)",
                    fmt(median(last)) + " / " + fmt(median(first)), "target ≤ 1.2", ratio(median(last) / median(first))});
    rows.push_back({"  p95 of the last / first window", fmt(pct(last, 95)) + " / " + fmt(pct(first, 95)), "-", ratio(pct(last, 95) / pct(first, 95))});
    std::string windows;
    for (size_t from = 0; from < total.size(); from += w) windows += (windows.empty() ? "" : ", ") + fmt(median(slice(total, from, w)));
    rows.push_back({"  median of each window of " + std::to_string(window) + " creates, in order", windows, "-", "-"});
    std::map<std::string, std::vector<double>> sf, sl;
    for (size_t i = 0; i < made.size(); i++) {
        const bool in_first = i < first.size(), in_last = i >= made.size() - last.size();
        if (!in_first && !in_last) continue;
        for (auto& [step, ms] : steps_of(made[i].name)) (in_first ? sf : sl)[step].push_back(ms);
    }
    for (auto& [step, v] : sf)
        rows.push_back({"  step '" + step + "' median, first vs last window", fmt(median(v)) + " → " + fmt(median(sl[step])), "-",
                        median(v) > 0 ? ratio(median(sl[step]) / median(v)) : "-"});
    }

    // With [hibernate]: every tenant hibernates after its spell with no client; how many, and
    // how long after the last create (GET /v1/tenants' live states).
    const std::string n = std::to_string(made.size());
    if (hibernate) {
        const auto t_wait = Clock::now();
        std::map<std::string, int> states;
        for (;;) {
            states = live_states(client);
            const int h = states.count("hibernated") ? states["hibernated"] : 0;
            std::fprintf(stderr, "hibernated %d of %zu after %.0f s\n", h, made.size(), s_since(t_wait));
            if (h >= static_cast<int>(made.size()) || s_since(t_wait) > 1800) break;
            sleep_s(5);
        }
        const double waited = s_since(t_wait);
        std::string split;
        for (auto& [st, k] : states) split += (split.empty() ? "" : ", ") + st + " " + std::to_string(k);
        rows.push_back({"hibernated tenants after the creates: live states (GET /v1/tenants), " + fmt(waited, "s") + " after the last create",
                        split.empty() ? "none listed" : split, "all " + n, "-"});
    }

    // The idle host: every tenant's first checkpoint after its initdb (checkpoint_timeout) and
    // the page cache's writeback settle first; then the CPU used over idle_s.
    sleep_s(settle_s);
    const auto g0 = cpu_by_group();
    const auto h0 = hostd_threads();
    const MachineCpu m0 = machine_cpu();
    const auto t0 = Clock::now();
    sleep_s(idle_s);
    const double wall = s_since(t0);
    const MachineCpu m1 = machine_cpu();
    const auto h1 = hostd_threads();
    const auto g1 = cpu_by_group();
    double in_tb = 0;
    std::vector<std::pair<double, std::string>> parts;
    for (auto& [g, s] : g1) {
        const auto b = g0.find(g);
        const double d = std::max(0.0, s - (b == g0.end() ? 0 : b->second));
        in_tb += d;
        parts.emplace_back(d, g);
    }
    std::sort(parts.rbegin(), parts.rend());
    const double cpus = static_cast<double>(::sysconf(_SC_NPROCESSORS_ONLN));
    rows.push_back({"idle host, " + n + " tenants: CPU of this machine's processes (testbed: /proc/<pid>/stat utime+stime+cutime+cstime of every process, " +
                        fmt(idle_s, "s") + " after " + fmt(settle_s, "s") + " of settling), % of one CPU",
                    fmt(100 * in_tb / wall, "%") + " (" + fmt(100 * in_tb / wall / cpus, "%") + " of " + std::to_string(static_cast<int>(cpus)) + " CPUs)",
                    "target < 10 % of one CPU at 500", ratio(in_tb / wall / 0.10)});
    rows.push_back({"  the whole VM over the same time (/proc/stat: with the kernel's threads, loop devices, and the other work on this shared VM), % of one CPU",
                    fmt(100 * (m1.busy_s - m0.busy_s) / wall, "%"), "-", "-"});
    std::string split;
    for (auto& [d, g] : parts)
        if (d > 0) split += (split.empty() ? "" : "; ") + g + " " + fmt(100 * d / wall, "%");
    rows.push_back({"  by owner, % of one CPU", split, "-", "-"});
    std::vector<std::pair<double, std::string>> threads;
    for (auto& [t, s] : h1) {
        const auto b = h0.find(t);
        const double d = s - (b == h0.end() ? 0 : b->second);
        if (d > 0) threads.emplace_back(d, t);
    }
    std::sort(threads.rbegin(), threads.rend());
    std::string ts;
    for (auto& [d, t] : threads) ts += (ts.empty() ? "" : ", ") + t + " " + fmt(100 * d / wall, "%");
    rows.push_back({"  hostd by thread, % of one CPU", ts.empty() ? "-" : ts, "-", "-"});
    rows.push_back({"  per idle tenant (this machine's processes / " + n + ")", fmt(1000 * in_tb / wall / static_cast<double>(made.size()), "ms/s"), "-", "-"});

    // Memory per tenant: its cgroup's charge (memory.current: processes, shared memory, the page
    // cache of its files), split, and the proportional set size of its processes (PSS: shared
    // pages divided among the processes sharing them, e.g. the postgres binary's).
    std::vector<double> mem, pss, anon, file, disk;
    std::map<std::string, uint64_t> pss_of;
    for (auto& p : processes()) {
        const auto at = p.cgroup.find("/hostd-postgres@");
        if (at == std::string::npos) continue;
        const std::string unit = p.cgroup.substr(at + 1);
        pss_of[unit] += number_after(read_all("/proc/" + std::to_string(p.pid) + "/smaps_rollup"), "Pss:") * 1024;
    }
    for (auto& c : made) {
        const hostd::TenantLayout l = hostd::layout_of(hostd::Config{}, c.name);
        // GET of one asks systemd about it (a hibernated tenant has no memory to show)
        auto r = hibernate ? hostd::ApiResponse{} : client.call("GET", "/v1/tenants/" + c.name);
        if (r.status == 200 && r.body["tenant"].contains("status") && r.body["tenant"]["status"].contains("memory_current"))
            mem.push_back(r.body["tenant"]["status"]["memory_current"].get<double>());
        if (auto it = pss_of.find(l.unit); it != pss_of.end()) pss.push_back(static_cast<double>(it->second));
        std::string st = read_all("/sys/fs/cgroup/memory" + l.cgroup + "/memory.stat");  // v1
        if (!st.empty()) {
            anon.push_back(static_cast<double>(number_after(st, "total_rss ")));
            file.push_back(static_cast<double>(number_after(st, "total_cache ")));
        } else if (!(st = read_all("/sys/fs/cgroup" + l.cgroup + "/memory.stat")).empty()) {  // v2
            anon.push_back(static_cast<double>(number_after(st, "anon ")));
            file.push_back(static_cast<double>(number_after(st, "file ")));
        }
        struct stat sb{};
        if (::stat(l.image.c_str(), &sb) == 0) disk.push_back(static_cast<double>(sb.st_blocks) * 512);
    }
    auto size = [](double b) { return hostd::format_size(static_cast<uint64_t>(b)); };
    // The testbed as a whole (its memory cgroup: everything of this machine, hostd, HAProxy,
    // systemd, the tenants' mounts and loop devices' kernel memory) over the tenant count: the
    // honest figure when the tenants hibernate (a stopped unit has no cgroup to read).
    const TestbedMemory mem_after = testbed_memory();
    const double nd = static_cast<double>(made.size());
    const bool baseline = !existing && mem_before.usage > 0;  // the testbed before the creates is known
    if (mem_after.usage > 0) {
        rows.push_back({"testbed memory per tenant: its whole memory cgroup / " + n + " (anonymous / shared memory / page cache / kernel memory), " + size(mem_after.usage) + " in all",
                        size(mem_after.usage / nd) + " (" + size(mem_after.rss / nd) + " / " + size(mem_after.shmem / nd) + " / " +
                            size((mem_after.cache - mem_after.shmem) / nd) + " / " + size(mem_after.kmem / nd) + ")",
                        "-", "-"});
        rows.push_back({"  the same without the page cache (anonymous + shared + kernel memory, of which part of the kernel's is reclaimable slab)",
                        size((mem_after.rss + mem_after.shmem + mem_after.kmem) / nd), "-", "-"});
    }
    if (baseline && mem_after.usage > 0)
        rows.push_back({"  the same less the testbed before the creates (" + size(mem_before.usage) + ": anonymous + shared + kernel " +
                            size(mem_before.rss + mem_before.shmem + mem_before.kmem) + ")",
                        size((mem_after.rss + mem_after.shmem + mem_after.kmem - mem_before.rss - mem_before.shmem - mem_before.kmem) / nd), "-", "-"});
    rows.push_back({baseline ? "  the VM's MemAvailable (/proc/meminfo: with the other work on this shared VM) before the creates → with the " + n + " tenants"
                             : "  the VM's MemAvailable (/proc/meminfo: with the other work on this shared VM) with the " + n + " tenants",
                    baseline ? size(mem_before.available) + " → " + size(mem_after.available) + " (" +
                                   size(std::max(0.0, mem_before.available - mem_after.available) / nd) + " per tenant)"
                             : size(mem_after.available),
                    "-", "-"});
    if (!mem.empty()) rows.push_back({"idle memory per tenant, median of " + std::to_string(mem.size()) + ": cgroup memory current (of which processes' anonymous memory / page cache and shared memory)",
                    size(median(mem)) + " (" + size(median(anon)) + " / " + size(median(file)) + ")", "-", "-"});
    if (!pss.empty()) rows.push_back({"  PSS of its processes, median of " + std::to_string(pss.size()), size(median(pss)), "-", "-"});
    rows.push_back({"disk per tenant: blocks its loop image (a sparse 256M file) holds", size(median(disk)) + " (median of " + std::to_string(disk.size()) + ")", "-", "-"});

    // The API with every tenant in place: each request timed from sending to its last byte;
    // the client's parse of the list (hostctl's, nlohmann) apart, on its own row.
    std::vector<double> lat, parse, scrape;
    std::string text;
    for (int i = 0; i < 100; i++) {
        auto t = Clock::now();
        if (hostd::curl::get_over_socket(client.socket_path(), "/v1/tenants", text) != 200) break;
        lat.push_back(ms_since(t));
        t = Clock::now();
        if (!nlohmann::json::parse(text, nullptr, false).is_discarded()) parse.push_back(ms_since(t));
    }
    for (int i = 0; i < 40; i++) {
        auto t = Clock::now();
        if (hostd::curl::get_over_socket(client.socket_path(), "/metrics", text) != 200) break;
        scrape.push_back(ms_since(t));
    }
    rows.push_back({"GET /v1/tenants with " + n + " tenants, median / p95 (n=" + std::to_string(lat.size()) + ", to the last byte)",
                    lat.empty() ? "not available" : fmt(median(lat)) + " / " + fmt(pct(lat, 95)), "target p95 < 20 ms at 2000", "-"});
    rows.push_back({"  the client's JSON parse of that reply (hostctl's), median / p95", parse.empty() ? "-" : fmt(median(parse)) + " / " + fmt(pct(parse, 95)), "-", "-"});
    rows.push_back({"GET /metrics with " + n + " tenants, median / p95 (n=" + std::to_string(scrape.size()) + ", to the last byte)",
                    scrape.empty() ? "not available" : fmt(median(scrape)) + " / " + fmt(pct(scrape, 95)), "target p95 < 100 ms at 2000", "-"});

    // How many such idle tenants this machine holds, by each resource.
    const std::string meminfo = read_all("/proc/meminfo");
    const double mem_total = static_cast<double>(number_after(meminfo, "MemTotal:")) * 1024;
    struct statvfs vfs{};
    double free_disk = 0;
    if (::statvfs(hostd::Config{}.loop_dir.c_str(), &vfs) == 0) free_disk = static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize);
    double disk_sum = 0;
    for (double d : disk) disk_sum += d;
    const double per_cpu = in_tb / wall / static_cast<double>(made.size());
    if (!mem.empty() && median(mem) > 0 && median(pss) > 0)
        rows.push_back({"tenants this machine holds by memory: MemTotal " + size(mem_total) + " / memory current, / PSS", std::to_string(static_cast<long>(mem_total / median(mem))) +
                            ", " + std::to_string(static_cast<long>(mem_total / median(pss))), "-", "-"});
    if (mem_after.usage > 0) {
        const double per = (mem_after.rss + mem_after.shmem + mem_after.kmem) / nd;
        rows.push_back({"tenants this machine holds by memory: MemTotal " + size(mem_total) + " / the testbed's anonymous + shared + kernel memory per tenant (above)",
                        std::to_string(static_cast<long>(mem_total / per)), "-", "-"});
    }
    rows.push_back({"tenants this machine holds by disk: (free " + size(free_disk) + " + the " + n + " images' " + size(disk_sum) + ") / blocks per image",
                    std::to_string(static_cast<long>((free_disk + disk_sum) / median(disk))), "-", "-"});
    rows.push_back({"idle CPU of 2000 such tenants, from the per-tenant figure", fmt(100 * per_cpu * 2000, "%") + " of one CPU", "-", "-"});

    if (hibernate && wakes > 0) {
        // Wake: connect → first query through HAProxy to a hibernated tenant (a different one
        // each time, spread over the N), then the same again now that it is awake.
        std::vector<double> woke, awake;
        int skipped = 0;
        const size_t step = std::max<size_t>(1, made.size() / static_cast<size_t>(wakes));
        if (existing) {
            // New passwords for the sample (a password change wakes a tenant), then a wait until
            // they hibernate again.
            std::set<std::string> sample;
            for (size_t i = step / 2; i < made.size() && static_cast<int>(sample.size()) < wakes; i += step) {
                const nlohmann::json pw = {{"password", "bench-wake-" + made[i].name}};
                auto r = client.call("POST", "/v1/tenants/" + made[i].name + "/password", &pw);
                if (r.status != 200) {
                    std::fprintf(stderr, "password %s: HTTP %d %s\n", made[i].name.c_str(), r.status, r.body.dump().c_str());
                    continue;
                }
                made[i].password = "bench-wake-" + made[i].name;
                sample.insert(made[i].name);
            }
            const auto t_w = Clock::now();
            for (;;) {
                const auto st = live_state_of(client);
                size_t h = 0;
                for (auto& n : sample)
                    if (auto it = st.find(n); it != st.end() && it->second == "hibernated") h++;
                std::fprintf(stderr, "wake sample: %zu of %zu hibernated again after %.0f s\n", h, sample.size(), s_since(t_w));
                if (h == sample.size() || s_since(t_w) > 300) break;
                sleep_s(5);
            }
        }
        const auto states = live_state_of(client);
        for (size_t i = step / 2; i < made.size() && static_cast<int>(woke.size()) < wakes; i += step) {
            const Created& c = made[i];
            if (auto it = states.find(c.name); it == states.end() || it->second != "hibernated" || (existing && c.password.empty())) {
                skipped++;
                continue;
            }
            // libpq's connect_timeout covers the wait for the tenant's start (3 s by default).
            const hostd::pgconf::ConnParams p{.host = "127.0.0.1", .port = c.public_port, .user = c.user, .password = c.password, .connect_timeout_s = 30};
            auto t = Clock::now();
            try {
                hostd::pgconf::check_select1(p);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "wake %s failed: %s\n", c.name.c_str(), e.what());
                skipped++;
                continue;
            }
            woke.push_back(ms_since(t));
            t = Clock::now();
            hostd::pgconf::check_select1(p);
            awake.push_back(ms_since(t));
            std::fprintf(stderr, "wake %-8s %7.0f ms (then awake %5.0f ms)\n", c.name.c_str(), woke.back(), awake.back());
            sleep_s(1);
        }
        rows.push_back({"wake with " + n + " tenants: connect → first query through HAProxy to a hibernated tenant, median / p95 (n=" + std::to_string(woke.size()) +
                            (skipped ? ", " + std::to_string(skipped) + " skipped: not hibernated or failed" : std::string()) + ")",
                        woke.empty() ? "not available" : fmt(median(woke)) + " / " + fmt(pct(woke, 95)),
                        awake.empty() ? "-" : fmt(median(awake)) + " / " + fmt(pct(awake, 95)) + " awake (the next connection)",
                        awake.empty() ? "-" : ratio(median(woke) / median(awake))});
    }

    if (!keep)
        for (auto& c : made) client.call("DELETE", "/v1/tenants/" + c.name + "?purge=true&purge_backups=true");
    return rows;
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
    std::string backup_repo, compress = "lz4", ref_dir = "/var/lib/hostd-bench-ref";
    std::vector<int> branch_mb = {100, 1024}, rp_timeouts = {60, 5};
    int branch_runs = 3, branch_runs_large = 2, rp_runs = 3;
    app.add_option("--backup-repo", backup_repo, "Switch backups on with this repository (after the figures above) and measure branches, backups and the recovery point");
    app.add_option("--backup-compress", compress, "backup.compress for those")->capture_default_str();
    app.add_option("--branch-mb", branch_mb, "Sizes of the tenants branched (MB of pgbench data); the largest is also backed up beside a neighbour")->delimiter(',')->capture_default_str();
    app.add_option("--branch-runs", branch_runs, "Branches (and references) per size below 512 MB")->capture_default_str();
    app.add_option("--branch-runs-large", branch_runs_large, "Branches (and references) per size from 512 MB")->capture_default_str();
    app.add_option("--reference-dir", ref_dir, "Where the pg_basebackup reference copies go (a disk, not a tmpfs)")->capture_default_str();
    app.add_option("--rp-timeouts", rp_timeouts, "archive_timeout values for the recovery point")->delimiter(',')->capture_default_str();
    app.add_option("--rp-runs", rp_runs, "Recovery point trials per archive_timeout")->capture_default_str();
    PriceOptions price;
    std::string only;
    app.add_option("--price-transactions", price.transactions, "Per pgbench -c1 run of the proxy's price (0: skip it)")->capture_default_str();
    app.add_option("--price-rounds", price.rounds, "Alternated select-only rounds (direct, HAProxy, systemd-socket-proxyd) of the proxy's price")->capture_default_str();
    app.add_option("--price-tpcb-rounds", price.tpcb_rounds, "Alternated TPC-B-like rounds of the proxy's price (0: none)")->capture_default_str();
    app.add_option("--only", only, "Run one section alone, on one new tenant (no other figure)")->check(CLI::IsMember({"proxy-price", "flat", "branches"}));
    double idle_seconds = 60;
    app.add_option("--idle-seconds", idle_seconds, "Seconds the idle host's CPU is measured over (--only flat)")->capture_default_str();
    bool hibernate = false;
    int wakes = 20, parallel = 1;
    double create_minutes = 0;
    bool existing = false;
    app.add_flag("--existing", existing, "--only flat: no creates; the idle figures of the tenants f1, f2, ... in place (a run cut short)");
    app.add_option("--parallel", parallel, "Creates at once (--only flat)")->capture_default_str();
    app.add_option("--create-minutes", create_minutes, "No new create after this many minutes (--only flat; 0: all of --count)")->capture_default_str();
    app.add_flag("--hibernate", hibernate, "--only flat with [hibernate] on: wait until the tenants hibernate before the idle figures, then time wakes");
    app.add_option("--wakes", wakes, "Hibernated tenants woken for the wake figure (--hibernate)")->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    if (only == "branches") rp_timeouts.clear();
    Client client(socket);
    const auto t_run = Clock::now();
    double backup_min = 0;
    bool failed = false;
    std::vector<Row> rows;
    nlohmann::json body = {{"memory", "64M"}, {"disk_size", "256M"}};
    if (only == "flat") {  // bench/run's ONLY=flat: the flat-cost series and the idle host it leaves
        try {
            rows = flat_and_idle(client, count, window, settle, idle_seconds, keep, hibernate, wakes, parallel, create_minutes, existing);
        } catch (const std::exception& e) {
            std::cerr << "hostd-bench: flat: " << e.what() << "\n";
            return 1;
        }
    } else if (only == "proxy-price") {  // bench/run's ONLY=proxy-price: this section's rows alone
        try {
            double ms = 0;
            const Created c = create(client, "price", body, ms);
            const auto r = proxy_price(c, price);
            rows.insert(rows.end(), r.begin(), r.end());
            if (!keep) purge(client, c.name);
        } catch (const std::exception& e) {
            std::cerr << "hostd-bench: proxy price: " << e.what() << "\n";
            return 1;
        }
    } else
    try {
        if (only != "branches") {  // bench/run's ONLY=branches: section 6 alone, without the recovery point
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

            // 5b. The proxy's price at one client: HAProxy vs systemd-socket-proxyd, same tenant.
            if (price.transactions > 0 && !made.empty()) try {
                const auto r = proxy_price(made.front(), price);
                rows.insert(rows.end(), r.begin(), r.end());
            } catch (const std::exception& e) {
                // The figures above stand; this part's failure is in the table, and the exit status.
                std::cerr << "hostd-bench: proxy price: " << e.what() << "\n";
                rows.push_back({"proxy price", std::string("failed: ") + e.what(), "-", "-"});
                failed = true;
            }

            if (!keep)
                for (auto& c : made) client.call("DELETE", "/v1/tenants/" + c.name + "?purge=true&purge_backups=true");

        }

        // 6. Backups, branches, recovery point: switched on now, so the creates above are timed
        //    as hostd ships (backups off). Each figure beside its do-it-yourself reference.
        if (!backup_repo.empty()) try {
            const auto t_backup = Clock::now();
            int current_timeout = rp_timeouts.empty() ? 60 : rp_timeouts.front();
            configure_backups(client, backup_repo, compress, current_timeout);
            double ms = 0;
            // The neighbour: a small tenant under pgbench through the proxy while the largest
            // tenant's full backup runs.
            const Created nb = create(client, "nb", {{"memory", "256M"}, {"disk_size", "1G"}}, ms);
            load(nb, 5);
            const int largest = branch_mb.empty() ? 0 : *std::max_element(branch_mb.begin(), branch_mb.end());
            for (int size_mb : branch_mb) {
                // pgbench's tables and indexes take about 15.6 MB per scale unit, an empty cluster 23 MB.
                const int scale = std::max(1, static_cast<int>(std::lround((size_mb - 23) / 15.6)));
                const std::string disk = std::to_string(std::max(1, static_cast<int>(std::ceil(size_mb * 4 / 1024.0)))) + "G";
                const nlohmann::json src_body = {{"memory", "512M"}, {"disk_size", disk}};
                const Created src = create(client, "src" + std::to_string(size_mb), src_body, ms);
                auto t_load = Clock::now();
                const double bytes = load(src, scale);
                wait_archived(src);
                std::fprintf(stderr, "loaded %-8s %s (pgbench -s %d) in %.0f s\n", src.name.c_str(), mb(bytes).c_str(), scale, s_since(t_load));
                const std::string label = std::to_string(size_mb) + " MB tenant (" + mb(bytes) + ", pgbench -i -s " + std::to_string(scale) + ")";
                if (size_mb == largest) {
                    // Neighbour TPS while the full backup runs, then for as long again without it.
                    std::string nb_out;
                    const auto nb_t0 = Clock::now();
                    std::thread bench([&] {
                        auto r = hostd::exec({.argv = {kPgBin + "/pgbench", "-h", "127.0.0.1", "-p", std::to_string(nb.public_port), "-U", nb.user,
                                                       "-c", "4", "-j", "2", "-T", "3600", "-P", "1", "-n", "postgres"},
                                              .env = pg_env(nb.password), .timeout = std::chrono::seconds(3700)});
                        nb_out = r.out + r.err;
                    });
                    sleep_s(5);
                    const double b0 = s_since(nb_t0);
                    BackupDone b;
                    try {
                        b = full_backup(client, src.name);
                    } catch (...) {
                        one(direct(nb), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'pgbench'");
                        bench.join();
                        throw;
                    }
                    const double b1 = s_since(nb_t0), d = b1 - b0;
                    sleep_s(d + 1.5);
                    one(direct(nb), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'pgbench'");
                    bench.join();
                    const auto samples = progress_of(nb_out);
                    const double during = mean_tps(samples, b0, b1), without = mean_tps(samples, b1, b1 + d);
                    std::fprintf(stderr, "backup   %-8s %.1f s, neighbour %.0f tps during, %.0f after\n", src.name.c_str(), d, during, without);
                    rows.push_back({"full backup of the " + label + ", " + compress + ": cluster size / time (repository " + mb(b.repo_size) + ")",
                                    fmt(b.size / 1e6 / (b.ms / 1000), "MB/s") + " (" + mb(b.size) + " in " + fmt(b.ms / 1000, "s") + ")", "-", "-"});
                    rows.push_back({"  neighbour pgbench TPS through HAProxy (-c4 -j2) during that backup / the " + fmt(d, "s") + " after it",
                                    fmt(during, "") + " / " + fmt(without, ""), "-", without > 0 ? ratio(during / without) : "-"});
                } else {
                    full_backup(client, src.name);
                }
                // A time after the full backup with a commit after it in the repository: a branch
                // at that time is restored from the repository (a time is never copied live).
                sleep_s(1.1);  // pgBackRest picks the backup by its stop time, in whole seconds
                const std::string at = hostd::format_rfc3339(std::time(nullptr));
                hostd::pgconf::exec_sql(direct(src), "CREATE TABLE bench_after_time(x int)");
                wait_archived(src);
                // Branches of latest (copied from the running source), at that time (restored
                // from the repository) and the pg_basebackup reference, alternated.
                const int runs = size_mb >= 512 ? branch_runs_large : branch_runs;
                struct Series {
                    std::string how, time;
                    std::vector<double> ms;
                    std::map<std::string, std::vector<double>> steps, parts;
                };
                Series live{"latest: copied from the running source", "latest"}, repo{"at a time: restored from the repository", at};
                std::vector<double> ref_ms;
                for (int i = 1; i <= runs; i++) {
                    for (Series* s : {&live, &repo}) {
                        const std::string name = "br" + std::to_string(size_mb) + "-" + (s == &live ? "l" : "t") + std::to_string(i);
                        nlohmann::json body = src_body;
                        body["from"] = {{"tenant", src.name}, {"time", s->time}};
                        Sampler sampler;
                        create(client, name, body, ms);
                        for (auto& [part, sec] : sampler.stop()) {
                            if (part.rfind("  ", 0) == 0) std::fprintf(stderr, "  %-50s %6.0f ms\n", part.c_str(), sec * 1000);
                            else s->parts[part].push_back(sec * 1000);
                        }
                        s->ms.push_back(ms);
                        // hostd's own timings inside its steps (the copy, the hand-over, the sync).
                        const auto j = hostd::exec({.argv = {"journalctl", "-u", "hostd", "TENANT=" + name, "-o", "cat", "--no-pager",
                                                             "--grep", " in [0-9]+ ms"}});
                        std::istringstream jl(j.out);
                        for (std::string line; std::getline(jl, line);)
                            if (line.find("Step '") == std::string::npos) std::fprintf(stderr, "    %s\n", line.c_str());
                        for (auto& [step, v] : steps_of(name)) s->steps[step].push_back(v);
                        purge(client, name);
                        std::fprintf(stderr, "branch   %-10s %7.0f ms (%s)\n", name.c_str(), ms, s->how.c_str());
                    }
                    ref_ms.push_back(reference_branch(src, ref_dir + "/copy"));
                    std::fprintf(stderr, "reference pg_basebackup + start %7.0f ms\n", ref_ms.back());
                }
                for (Series* s : {&live, &repo}) {
                    rows.push_back({"branch (" + s->how + ") of a " + label + " → first query through HAProxy, median (n=" + std::to_string(runs) + ")",
                                    fmt(median(s->ms)),
                                    fmt(median(ref_ms)) + " (pg_basebackup -X stream -c fast over the socket + pg_ctl start → first query, n=" +
                                        std::to_string(runs) + ")",
                                    ratio(median(s->ms) / median(ref_ms)) + " (target ≤ 1.5" + (size_mb <= 100 ? ", and < 5 s" : "") + ")"});
                    std::string split;
                    for (const char* st : {"disk", "format", "mount", "user", "restore", "start", "check", "backups", "route", "check-proxy"})
                        if (s->steps.count(st)) split += (split.empty() ? "" : ", ") + std::string(st) + " " + fmt(median(s->steps[st]));
                    rows.push_back({"  its steps, medians (hostd's journal)", split, "-", "-"});
                    std::string programs;
                    for (const char* st : {"pg_basebackup", "pgbackrest restore", "recovering server", "replay", "archive-get", "stanza-create"})
                        if (s->parts.count(st)) programs += (programs.empty() ? "" : ", ") + std::string(st) + " " + fmt(median(s->parts[st]));
                    rows.push_back({"  programs seen running during it, medians (/proc sampled every 20 ms; archive-get runs during replay)",
                                    programs.empty() ? "-" : programs, "-", "-"});
                }
                purge(client, src.name);
            }
            purge(client, nb.name);

            // Recovery point: rows committed every 100 ms; at a random moment every process of the
            // source is frozen (nothing more reaches the repository, as when its disk is destroyed)
            // and a branch of it (latest) is made from the repository alone. Lost = the source's
            // last row committed before the freeze minus the branch's last row.
            std::mt19937 rng(static_cast<unsigned>(std::chrono::system_clock::now().time_since_epoch().count()));
            for (int timeout : rp_timeouts) {
                if (timeout != current_timeout) configure_backups(client, backup_repo, compress, current_timeout = timeout);
                const Created s = create(client, "rp" + std::to_string(timeout), {{"memory", "256M"}}, ms);
                hostd::pgconf::exec_sql(direct(s), "CREATE TABLE rp(ts timestamptz); INSERT INTO rp VALUES (clock_timestamp())");
                full_backup(client, s.name);
                std::vector<double> lost;
                for (int i = 1; i <= rp_runs; i++) {
                    std::thread writer([&] {
                        auto env = pg_env(s.password);
                        env.push_back("PGAPPNAME=rp-writer");
                        hostd::exec({.argv = {kPgBin + "/psql", "-X", "-q", "-h", "127.0.0.1", "-p", std::to_string(s.port), "-U", s.user, "-d", "postgres",
                                              "-c", "DO $$ BEGIN LOOP INSERT INTO rp VALUES (clock_timestamp()); COMMIT; PERFORM pg_sleep(0.1); END LOOP; END $$"},
                                     .env = env, .timeout = std::chrono::hours(1)});
                    });
                    const double wait = std::uniform_real_distribution<double>(timeout, 2.0 * timeout)(rng);
                    sleep_s(wait);
                    // Frozen at `frozen` (a clean stop would not do: PostgreSQL hands its last
                    // segment to the archive when it shuts down).
                    signal_unit(s.name, "SIGSTOP");
                    const double frozen = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
                    const std::string name = "lost" + std::to_string(timeout) + "-" + std::to_string(i);
                    std::optional<Created> b;
                    try {
                        b = create(client, name, {{"memory", "256M"}, {"from", {{"tenant", s.name}, {"time", "latest"}}}}, ms);
                    } catch (...) {
                        signal_unit(s.name, "SIGCONT");
                        one(direct(s), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'rp-writer'");
                        writer.join();
                        throw;
                    }
                    const double b_last = std::stod(one(proxied(*b), "SELECT extract(epoch FROM max(ts)) FROM rp"));
                    purge(client, name);
                    signal_unit(s.name, "SIGCONT");
                    one(direct(s), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'rp-writer'");
                    writer.join();
                    // The last row committed before the freeze (a row is stamped just before its commit).
                    const double s_last = std::stod(one(direct(s), "SELECT extract(epoch FROM max(ts)) FROM rp WHERE ts <= to_timestamp(" +
                                                                       std::to_string(frozen) + ")"));
                    lost.push_back(s_last - b_last);
                    std::fprintf(stderr, "recovery archive_timeout=%d s: stopped after %.1f s, lost %.1f s\n", timeout, wait, lost.back());
                }
                rows.push_back({"recovery point, archive_timeout = " + std::to_string(timeout) +
                                    " s: committed work missing from a branch made from the repository alone after the source froze (SIGSTOP) at a random moment, median (n=" +
                                    std::to_string(lost.size()) + ": " + list_of(lost, "s") + ")",
                                fmt(median(lost), "s"), "target ≤ " + std::to_string(timeout) + " s", ratio(median(lost) / timeout)});
                purge(client, s.name);
            }
            backup_min = s_since(t_backup) / 60;
        } catch (const std::exception& e) {
            // The figures above stand; this part's failure is in the table, and the exit status.
            std::cerr << "hostd-bench: backups, branches, recovery point: " << e.what() << "\n";
            rows.push_back({"backups, branches, recovery point", std::string("failed: ") + e.what(), "-", "-"});
            failed = true;
        }
    } catch (const std::exception& e) {
        std::cerr << "hostd-bench: " << e.what() << "\n";
        return 1;
    }

    std::ostringstream md;
    md << "| figure | hostd | reference | ratio |\n|---|---|---|---|\n";
    for (auto& r : rows) md << "| " << r.figure << " | " << r.value << " | " << r.reference << " | " << r.ratio << " |\n";
    if (!machine.empty()) {
        char took[160];
        if (backup_min > 0) std::snprintf(took, sizeof took, "; the run took %.0f min (backups, branches and recovery point: %.0f)", s_since(t_run) / 60, backup_min);
        else std::snprintf(took, sizeof took, "; the run took %.0f min", s_since(t_run) / 60);
        md << "\nMeasured " << machine << took << ".\n";
    }
    std::cout << md.str();
    if (!out_md.empty()) std::ofstream(out_md) << md.str();
    return failed ? 1 : 0;
}

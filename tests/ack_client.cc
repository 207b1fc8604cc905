// hostd-ack-client: acknowledged commits across a failover (issue #17, tests/e2e/ha).
//
//   hostd-ack-client run --url CONNINFO [--table T] [--start-id N] [--stop-file F] [--max-seconds S]
//                        [--interval-ms MS]
//     Connects with CONNINFO (the tenant's multi-host URL, target_session_attrs=read-write),
//     inserts ids N, N+1, ... into T(id), one transaction each (autocommit), and prints
//     "ack ID MS" on stdout only after the server acknowledged that COMMIT. On any failure it
//     prints "fail MS TEXT", drops the connection and connects again (the next attempt takes the
//     next id: a failed commit may or may not have happened; only acknowledged ids count). After
//     each connection, "conn MS SERVER" (the member's address). Stops when F exists or after S
//     seconds (default 600), whichever first. Waits MS (default 5) between transactions: a log of
//     hundreds of lines a second, not thousands, on a shared machine. The log's format: ha/acks.h.
//   hostd-ack-client report --log F --present F [--since-ms MS] [--not-server ADDR]
//     Holds the log against the ids the new primary has (one a line) and prints
//     "acknowledged commits: N", "acknowledged commits lost: N" (and which),
//     "writes back after: S s" (with --since-ms: the first ack after MS from another server than
//     ADDR) and "longest pause between acknowledged commits: S s". Exit 1 if any is lost.
//   hostd-ack-client median X...
//     Prints the median of the numbers.
#include <libpq-fe.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "ha/acks.h"

namespace {

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct PGconnFree {
    void operator()(PGconn* c) const { PQfinish(c); }
};
struct PGresultFree {
    void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, PGconnFree>;
using Result = std::unique_ptr<PGresult, PGresultFree>;

// One line, flushed at once: the log is read while the client runs, and its lines must be the
// ones the client saw when it died.
void emit(const std::string& line) {
    std::fputs((line + "\n").c_str(), stdout);
    std::fflush(stdout);
}

std::string one_line(const char* msg) {
    std::string s = msg ? msg : "";
    for (char& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

bool is_ident(const std::string& s) {
    if (s.empty() || s.size() > 63) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return !(s[0] >= '0' && s[0] <= '9');
}

int run(const std::string& url, const std::string& table, int64_t id, const std::string& stop_file, int max_seconds,
        int interval_ms) {
    if (!is_ident(table)) {
        std::cerr << "hostd-ack-client: --table '" << table << "': use lower-case letters, digits and '_'\n";
        return 2;
    }
    const std::string sql = "INSERT INTO " + table + "(id) VALUES ($1::bigint)";
    const int64_t deadline = now_ms() + int64_t{max_seconds} * 1000;
    auto stopped = [&] {
        struct stat st {};
        return now_ms() >= deadline || (!stop_file.empty() && ::stat(stop_file.c_str(), &st) == 0);
    };
    Conn conn;
    while (!stopped()) {
        if (!conn) {
            conn.reset(PQconnectdb(url.c_str()));
            if (PQstatus(conn.get()) != CONNECTION_OK) {
                emit("fail " + std::to_string(now_ms()) + " connect: " + one_line(PQerrorMessage(conn.get())));
                conn.reset();
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                continue;
            }
            Result r(PQexec(conn.get(), "SELECT coalesce(host(inet_server_addr()), 'local')"));
            if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
                emit("fail " + std::to_string(now_ms()) + " server address: " + one_line(PQerrorMessage(conn.get())));
                conn.reset();
                continue;
            }
            emit("conn " + std::to_string(now_ms()) + " " + PQgetvalue(r.get(), 0, 0));
        }
        const std::string v = std::to_string(id);
        const char* params[] = {v.c_str()};
        Result r(PQexecParams(conn.get(), sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0));
        if (PQresultStatus(r.get()) == PGRES_COMMAND_OK) {
            emit("ack " + v + " " + std::to_string(now_ms()));
        } else {
            emit("fail " + std::to_string(now_ms()) + " insert " + v + ": " + one_line(PQerrorMessage(conn.get())));
            conn.reset();
        }
        ++id;
        if (interval_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    }
    return 0;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string secs(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", s);
    return buf;
}

int report(const std::string& log_file, const std::string& present_file, std::optional<int64_t> since, const std::string& not_server) {
    auto log = hostd::ha::parse_ack_log(slurp(log_file));
    auto r = hostd::ha::check_acks(log, hostd::ha::parse_ids(slurp(present_file)), since, not_server);
    std::cout << "acknowledged commits: " << r.acknowledged << " (" << log.failures << " failed attempts, "
              << log.connections << " connections)\n";
    std::cout << "acknowledged commits lost: " << r.lost.size();
    for (size_t i = 0; i < r.lost.size() && i < 20; ++i) std::cout << (i ? "," : " (ids ") << r.lost[i];
    std::cout << (r.lost.empty() ? "" : r.lost.size() > 20 ? ",...)" : ")") << "\n";
    if (since) std::cout << "writes back after: " << (r.back_after_s ? secs(*r.back_after_s) + " s" : "never") << "\n";
    std::cout << "longest pause between acknowledged commits: " << secs(r.longest_pause_s) << " s (before id "
              << r.pause_before_id << ")\n";
    return r.lost.empty() && r.acknowledged > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hostd-ack-client: acknowledged commits across a failover"};
    app.require_subcommand(1);

    std::string url, table = "acks", stop_file;
    int64_t start_id = 1;
    int max_seconds = 600, interval_ms = 5;
    auto* run_cmd = app.add_subcommand("run", "insert ids, log each acknowledged one");
    run_cmd->add_option("--url", url, "libpq connection string")->required();
    run_cmd->add_option("--table", table);
    run_cmd->add_option("--start-id", start_id)->check(CLI::PositiveNumber);
    run_cmd->add_option("--stop-file", stop_file, "stop once this file exists");
    run_cmd->add_option("--max-seconds", max_seconds)->check(CLI::Range(1, 3600));
    run_cmd->add_option("--interval-ms", interval_ms, "pause between transactions")->check(CLI::Range(0, 10000));

    std::string log_file, present_file, not_server;
    int64_t since_ms = -1;
    auto* report_cmd = app.add_subcommand("report", "hold a log against the ids present");
    report_cmd->add_option("--log", log_file)->required();
    report_cmd->add_option("--present", present_file)->required();
    report_cmd->add_option("--since-ms", since_ms);
    report_cmd->add_option("--not-server", not_server);

    std::vector<double> values;
    auto* median_cmd = app.add_subcommand("median", "the median of numbers");
    median_cmd->add_option("values", values)->required();

    CLI11_PARSE(app, argc, argv);
    try {
        if (*run_cmd) return run(url, table, start_id, stop_file, max_seconds, interval_ms);
        if (*report_cmd)
            return report(log_file, present_file, since_ms >= 0 ? std::optional<int64_t>(since_ms) : std::nullopt, not_server);
        if (*median_cmd) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%g", hostd::ha::median(values));
            std::cout << buf << "\n";
            return 0;
        }
    } catch (const std::exception& e) {
        std::cerr << "hostd-ack-client: " << e.what() << "\n";
        return 2;
    }
    return 0;
}

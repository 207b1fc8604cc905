// hostd-bench: create N tenants one after another through hostd's API and time each from
// the request to the first query answered through the proxy (a fresh libpq connection to
// the URL hostd returned). Prints median and p95; runs inside the testbed (bench/run).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <vector>

#include "hostd/client.h"
#include "pgconf/pgconf.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    if (v.empty()) return 0;
    double rank = p / 100.0 * static_cast<double>(v.size() - 1);
    auto lo = static_cast<size_t>(std::floor(rank)), hi = static_cast<size_t>(std::ceil(rank));
    return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hostd-bench: time create → first query through the proxy"};
    int count = 20;
    std::string socket = "/run/hostd/hostd.sock", prefix = "bench", body_text = "{}";
    bool keep = false;
    app.add_option("-n,--count", count, "Tenants to create")->capture_default_str();
    app.add_option("--socket", socket, "hostd API socket")->capture_default_str();
    app.add_option("--prefix", prefix, "Tenant name prefix")->capture_default_str();
    app.add_option("--body", body_text, "JSON create request")->capture_default_str();
    app.add_flag("--keep", keep, "Keep the tenants (default: delete with purge afterwards)");
    CLI11_PARSE(app, argc, argv);

    hostd::Client client(socket);
    nlohmann::json body = nlohmann::json::parse(body_text);
    std::vector<double> total, server;
    std::vector<std::string> made;
    for (int i = 1; i <= count; i++) {
        std::string name = prefix + "-" + std::to_string(i);
        auto t0 = Clock::now();
        auto r = client.call("PUT", "/v1/tenants/" + name, &body);
        if (r.status != 201) {
            std::cerr << "create " << name << " failed: HTTP " << r.status << " " << r.body.dump() << r.transport_error << "\n";
            return 1;
        }
        made.push_back(name);
        auto& t = r.body["tenant"];
        // First query: a new connection through the proxy, as a customer would make it.
        hostd::pgconf::check_select1({.host = "127.0.0.1", .port = t["public_port"].get<uint16_t>(),
                                      .user = t["admin_user"], .password = t["password"]});
        double ms = ms_since(t0);
        total.push_back(ms);
        server.push_back(t.value("create_ms", 0.0));
        std::printf("%-20s %8.1f ms (hostd %5.0f ms)\n", name.c_str(), ms, server.back());
        std::fflush(stdout);
    }
    std::vector<double> del;
    if (!keep)
        for (auto& name : made) {
            auto t0 = Clock::now();
            auto r = client.call("DELETE", "/v1/tenants/" + name + "?purge=true");
            if (r.status != 200) std::cerr << "delete " << name << " failed: HTTP " << r.status << "\n";
            del.push_back(ms_since(t0));
        }
    std::printf("\n| figure | median | p95 | n |\n|---|---|---|---|\n");
    std::printf("| create → first query through HAProxy (ms) | %.0f | %.0f | %zu |\n", percentile(total, 50), percentile(total, 95), total.size());
    std::printf("| of which inside hostd (ms) | %.0f | %.0f | %zu |\n", percentile(server, 50), percentile(server, 95), server.size());
    if (!del.empty())
        std::printf("| delete --purge (ms) | %.0f | %.0f | %zu |\n", percentile(del, 50), percentile(del, 95), del.size());
    return 0;
}

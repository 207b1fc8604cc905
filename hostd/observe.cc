#include "hostd/observe.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "base/error.h"
#include "hostd/patroni_client.h"
#include "pgconf/pgconf.h"
#include "model/layout.h"
#include "units/systemd.h"

namespace hostd {

// ---- cgroup files (pure) ----

namespace cgroupfs {
namespace {

// The whole token as an unsigned decimal; nullopt for anything else ("max", "-1", "12k").
std::optional<uint64_t> number(std::string_view s) {
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

std::vector<std::string_view> tokens(std::string_view line) {
    std::vector<std::string_view> out;
    const char* ws = " \t\r";
    for (size_t b = line.find_first_not_of(ws); b != std::string_view::npos; b = line.find_first_not_of(ws, b)) {
        const size_t e = std::min(line.find_first_of(ws, b), line.size());
        out.push_back(line.substr(b, e - b));
        b = e;
    }
    return out;
}

template <class F>
void each_line(std::string_view text, F f) {
    while (!text.empty()) {
        const size_t nl = std::min(text.find('\n'), text.size());
        f(tokens(text.substr(0, nl)));
        text.remove_prefix(std::min(nl + 1, text.size()));
    }
}

}  // namespace

std::optional<uint64_t> parse_u64(std::string_view text) {
    const auto t = tokens(text.substr(0, text.find('\n')));
    if (t.empty()) return std::nullopt;
    const auto v = number(t.front());  // v2's "max" (no limit) is not a number
    if (v && *v >= (1ull << 62)) return std::nullopt;  // v1's "no limit" is a page-rounded INT64_MAX
    return v;
}

std::optional<uint64_t> parse_keyed(std::string_view text, std::string_view key) {
    std::optional<uint64_t> sum;
    each_line(text, [&](const std::vector<std::string_view>& t) {
        for (size_t i = 0; i < t.size(); i++) {
            std::optional<uint64_t> v;
            if (t[i] == key && i + 1 < t.size()) v = number(t[++i]);
            else if (t[i].size() > key.size() && t[i].starts_with(key) && t[i][key.size()] == '=')
                v = number(t[i].substr(key.size() + 1));
            if (v) sum = sum.value_or(0) + *v;
        }
    });
    return sum;
}

std::optional<uint64_t> parse_blkio(std::string_view text, std::string_view op) {
    std::optional<uint64_t> sum;
    each_line(text, [&](const std::vector<std::string_view>& t) {
        if (t.size() == 3 && t[1] == op)
            if (auto v = number(t[2])) sum = sum.value_or(0) + *v;
    });
    return sum;
}

CgroupUsage usage(bool v2, const std::string& cg, const ReadFile& read) {
    auto u64 = [&](const std::string& path) {
        const auto text = read(path);
        return text ? parse_u64(*text) : std::nullopt;
    };
    CgroupUsage u;
    if (v2) {
        u.memory_current = u64(cg + "/memory.current");
        u.memory_limit = u64(cg + "/memory.max");
        if (auto stat = read(cg + "/cpu.stat"))
            if (auto us = parse_keyed(*stat, "usage_usec")) u.cpu_seconds = static_cast<double>(*us) / 1e6;
        u.tasks_current = u64(cg + "/pids.current");
        u.tasks_limit = u64(cg + "/pids.max");
        if (auto io = read(cg + "/io.stat")) {
            u.io_read_bytes = parse_keyed(*io, "rbytes");
            u.io_write_bytes = parse_keyed(*io, "wbytes");
        }
    } else {
        u.memory_current = u64("/memory" + cg + "/memory.usage_in_bytes");
        u.memory_limit = u64("/memory" + cg + "/memory.limit_in_bytes");
        auto ns = u64("/cpuacct" + cg + "/cpuacct.usage");  // mounted alone, or joined with cpu
        if (!ns) ns = u64("/cpu,cpuacct" + cg + "/cpuacct.usage");
        if (ns) u.cpu_seconds = static_cast<double>(*ns) / 1e9;
        u.tasks_current = u64("/pids" + cg + "/pids.current");
        u.tasks_limit = u64("/pids" + cg + "/pids.max");
        if (auto io = read("/blkio" + cg + "/blkio.throttle.io_service_bytes_recursive")) {
            u.io_read_bytes = parse_blkio(*io, "Read");
            u.io_write_bytes = parse_blkio(*io, "Write");
        }
    }
    return u;
}

}  // namespace cgroupfs

// ---- the machine ----

namespace {

std::optional<std::string> read_text(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

class RealObserver final : public Observer {
public:
    explicit RealObserver(const Config& cfg)
        : mount_root_(cfg.mount_root) {}

    std::map<std::string, std::string> unit_states() override {
        // A connection per call: scrapes run on several threads, and a connection is not thread-safe.
        std::map<std::string, std::string> out;
        for (auto& [unit, active] : units::Systemd::connect().list_units(layout::unit_patterns())) out[unit] = active;
        return out;
    }

    std::set<std::string> mounted() override {
        auto v = storage::mounts_below(mount_root_);
        return {v.begin(), v.end()};
    }

    storage::DiskStats disk(const std::string& mountpoint) override { return storage::disk_stats(mountpoint); }

    CgroupUsage cgroup(const std::string& cgroup_path) override { return read_cgroup_usage(cgroup_path); }

    uint32_t restarts(const std::string& unit) override {
        // One connection kept between refreshes (one a tenant would be a connection per
        // refresh_next), guarded because the Observer is shared between threads.
        std::lock_guard g(bus_mu_);
        try {
            if (!bus_) bus_.emplace(units::Systemd::connect());
            return bus_->status(unit).n_restarts;
        } catch (const Error&) {
            bus_.reset();  // systemd restarted or the unit vanished: a fresh connection next time
            throw;
        }
    }

    bool pg_up(const TenantRecord& t, const std::string& socket_dir) override {
        return pgconf::ping(pgconf::monitor_params(socket_dir, t.port));
    }

    PgFacts pg_facts(const TenantRecord& t, const std::string& socket_dir) override {
        // Over the tenant's own socket directory with hostd's own login; every name schema-
        // qualified (and search_path is pg_catalog) so a tenant's look-alike views are not read.
        const auto row = pgconf::query_column(
            pgconf::monitor_params(socket_dir, t.port),
            "SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = 'client backend' "
            "AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()) || ' ' || "
            "pg_catalog.current_setting('max_connections') || ' ' || "
            "(SELECT pg_catalog.sum(pg_catalog.pg_database_size(oid)) FROM pg_catalog.pg_database) || ' ' || "
            "(SELECT archived_count || ' ' || failed_count || ' ' || "
            "COALESCE(pg_catalog.date_part('epoch', last_archived_time), 0) || ' ' || "
            "COALESCE(pg_catalog.date_part('epoch', last_failed_time), 0) FROM pg_catalog.pg_stat_archiver) || ' ' || "
            // Segments waiting for the archiver (.ready), and since when the oldest waits.
            "(SELECT pg_catalog.count(*) || ' ' || COALESCE(pg_catalog.date_part('epoch', pg_catalog.min(modification)), 0) "
            "FROM pg_catalog.pg_ls_archive_statusdir() WHERE name OPERATOR(pg_catalog.~~) '%.ready')");
        std::istringstream f(row.empty() ? "" : row.front());
        uint64_t c = 0, mx = 0, size = 0;
        if (!(f >> c >> mx >> size)) return {};  // answered, but not as asked: up, facts unknown
        PgFacts facts{.connections = c, .max_connections = mx, .database_bytes = size};
        ArchiveFacts a;
        if (f >> a.archived >> a.failed >> a.last_archived >> a.last_failed) {
            f >> a.pending >> a.oldest_pending;
            facts.archive = a;
        }
        return facts;
    }

    std::string patroni_cluster(const HaMember& m) override { return patroni::cluster(m); }

private:
    std::string mount_root_;
    std::mutex bus_mu_;
    std::optional<units::Systemd> bus_;
};

}  // namespace

std::unique_ptr<Observer> make_real_observer(const Config& cfg) { return std::make_unique<RealObserver>(cfg); }

CgroupUsage read_cgroup_usage(const std::string& cgroup_path) {
    // The unified hierarchy; it cannot change while the host runs.
    static const bool v2 = ::access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
    return cgroupfs::usage(v2, cgroup_path, [](const std::string& path) { return read_text("/sys/fs/cgroup" + path); });
}

}  // namespace hostd

#include "ha/acks.h"

#include <algorithm>
#include <charconv>
#include <unordered_set>

#include "base/error.h"

namespace hostd::ha {
namespace {

[[noreturn]] void bad(size_t line_no, std::string_view line, const std::string& why) {
    throw Error(Errc::invalid, "ack log line " + std::to_string(line_no) + " ('" + std::string(line) + "'): " + why, "log");
}

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ') ++i;
        size_t j = i;
        while (j < line.size() && line[j] != ' ') ++j;
        if (j > i) out.push_back(line.substr(i, j - i));
        i = j;
    }
    return out;
}

std::optional<int64_t> number(std::string_view w) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
    if (ec != std::errc() || p != w.data() + w.size() || w.empty()) return std::nullopt;
    return v;
}

template <class F>
void each_line(std::string_view text, F f) {
    size_t n = 0;
    while (!text.empty()) {
        size_t e = text.find('\n');
        std::string_view line = text.substr(0, e);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        f(++n, line);
        if (e == std::string_view::npos) break;
        text.remove_prefix(e + 1);
    }
}

}  // namespace

AckLog parse_ack_log(std::string_view text) {
    AckLog log;
    std::string server;
    each_line(text, [&](size_t n, std::string_view line) {
        auto w = words(line);
        if (w.empty() || w[0].front() == '#') return;
        if (w[0] == "ack") {
            if (w.size() != 3) bad(n, line, "expected 'ack ID MS'");
            auto id = number(w[1]), at = number(w[2]);
            if (!id || !at || *id <= 0 || *at < 0) bad(n, line, "ID and MS must be whole numbers, ID at least 1");
            if (!log.acks.empty() && *at < log.acks.back().at_ms) bad(n, line, "times must not go backwards");
            log.acks.push_back({*id, *at, server});
        } else if (w[0] == "conn") {
            if (w.size() != 3 || !number(w[1])) bad(n, line, "expected 'conn MS SERVER'");
            server = std::string(w[2]);
            ++log.connections;
        } else if (w[0] == "fail") {
            if (w.size() < 2 || !number(w[1])) bad(n, line, "expected 'fail MS TEXT'");
            server.clear();  // the next ack comes over a new connection, named by its own "conn"
            ++log.failures;
        } else {
            bad(n, line, "unknown event (ack, conn, fail)");
        }
    });
    return log;
}

std::vector<int64_t> parse_ids(std::string_view text) {
    std::vector<int64_t> ids;
    each_line(text, [&](size_t n, std::string_view line) {
        auto w = words(line);
        if (w.empty()) return;
        auto id = number(w[0]);
        if (w.size() != 1 || !id) throw Error(Errc::invalid, "id list line " + std::to_string(n) + " ('" + std::string(line) + "'): expected one whole number", "ids");
        ids.push_back(*id);
    });
    return ids;
}

AckReport check_acks(const AckLog& log, const std::vector<int64_t>& present, std::optional<int64_t> since_ms,
                     const std::string& not_server) {
    AckReport r;
    r.acknowledged = log.acks.size();
    std::unordered_set<int64_t> have(present.begin(), present.end());
    for (const auto& a : log.acks)
        if (!have.count(a.id)) r.lost.push_back(a.id);
    std::sort(r.lost.begin(), r.lost.end());
    r.lost.erase(std::unique(r.lost.begin(), r.lost.end()), r.lost.end());

    const Ack* prev = nullptr;
    for (const auto& a : log.acks) {
        if (since_ms && a.at_ms < *since_ms) continue;
        if (since_ms && !r.back_after_s && (not_server.empty() || a.server != not_server))
            r.back_after_s = static_cast<double>(a.at_ms - *since_ms) / 1000.0;
        if (prev && static_cast<double>(a.at_ms - prev->at_ms) / 1000.0 > r.longest_pause_s) {
            r.longest_pause_s = static_cast<double>(a.at_ms - prev->at_ms) / 1000.0;
            r.pause_before_id = a.id;
        }
        prev = &a;
    }
    return r;
}

double median(std::vector<double> v) {
    if (v.empty()) throw Error(Errc::invalid, "median of no values", "values");
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

}  // namespace hostd::ha

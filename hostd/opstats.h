// Counters of the Manager's operations, for /metrics: count and duration histogram per
// (kind, result). Plain data; the Manager fills it under its lock, readers get a copy.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace hostd {

struct OpStats {
    // Upper bounds in seconds (Prometheus "le"); +Inf is the count.
    static constexpr std::array<double, 10> kBuckets = {0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120};
    struct Series {
        uint64_t count = 0;
        double sum_seconds = 0;
        std::array<uint64_t, kBuckets.size()> buckets{};  // cumulative, like Prometheus
    };
    std::map<std::pair<std::string, std::string>, Series> ops;  // (kind "create"/"delete", result "ok"/"error")
    uint64_t reconcile_runs = 0;

    void record(const std::string& kind, const std::string& result, double seconds) {
        auto& s = ops[{kind, result}];
        s.count++;
        s.sum_seconds += seconds;
        for (size_t i = 0; i < kBuckets.size(); i++)
            if (seconds <= kBuckets[i]) s.buckets[i]++;
    }
};

}  // namespace hostd

// Prometheus text exposition (format 0.0.4), pure: families of samples in, text out.
// Label values are escaped (backslash, double quote, newline); names are the caller's
// constants. Families render in the order given, samples in the order added.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace hostd::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

struct Sample {
    std::string suffix;  // "" or "_bucket", "_sum", "_count" for histograms
    Labels labels;
    double value = 0;
};

struct Family {
    std::string name;
    std::string type;  // "gauge", "counter", "histogram", "info"-style gauges use "gauge"
    std::string help;
    std::vector<Sample> samples;

    Family& add(Labels labels, double value) {
        samples.push_back({"", std::move(labels), value});
        return *this;
    }
};

std::string render(const std::vector<Family>& families);

// A histogram family from cumulative bucket counts (upper bounds ascending), its sum and count.
void add_histogram(Family& f, const Labels& labels, const std::vector<double>& bounds,
                   const std::vector<uint64_t>& cumulative, double sum, uint64_t count);

}  // namespace hostd::metrics

#include "metrics/metrics.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace hostd::metrics {
namespace {

std::string escape(const std::string& v) {
    std::string o;
    o.reserve(v.size());
    for (char c : v) {
        if (c == '\\') o += "\\\\";
        else if (c == '"') o += "\\\"";
        else if (c == '\n') o += "\\n";
        else o += c;
    }
    return o;
}

std::string help_text(const std::string& v) {  // HELP escapes backslash and newline only
    std::string o;
    for (char c : v) {
        if (c == '\\') o += "\\\\";
        else if (c == '\n') o += "\\n";
        else o += c;
    }
    return o;
}

std::string number(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == std::floor(v) && std::fabs(v) < 1e15) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.0f", v);
        return buf;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

}  // namespace

std::string render(const std::vector<Family>& families) {
    std::ostringstream o;
    for (const auto& f : families) {
        o << "# HELP " << f.name << ' ' << help_text(f.help) << "\n# TYPE " << f.name << ' ' << f.type << '\n';
        for (const auto& s : f.samples) {
            o << f.name << s.suffix;
            if (!s.labels.empty()) {
                o << '{';
                for (size_t i = 0; i < s.labels.size(); i++)
                    o << (i ? "," : "") << s.labels[i].first << "=\"" << escape(s.labels[i].second) << '"';
                o << '}';
            }
            o << ' ' << number(s.value) << '\n';
        }
    }
    return o.str();
}

void add_histogram(Family& f, const Labels& labels, const std::vector<double>& bounds,
                   const std::vector<uint64_t>& cumulative, double sum, uint64_t count) {
    for (size_t i = 0; i < bounds.size() && i < cumulative.size(); i++) {
        Labels l = labels;
        l.emplace_back("le", number(bounds[i]));
        f.samples.push_back({"_bucket", std::move(l), static_cast<double>(cumulative[i])});
    }
    Labels inf = labels;
    inf.emplace_back("le", "+Inf");
    f.samples.push_back({"_bucket", std::move(inf), static_cast<double>(count)});
    f.samples.push_back({"_sum", labels, sum});
    f.samples.push_back({"_count", labels, static_cast<double>(count)});
}

}  // namespace hostd::metrics

#include "metrics/metrics.h"

#include <cmath>
#include <cstdio>
#include <charconv>

namespace hostd::metrics {
namespace {

void append_escaped(std::string& o, const std::string& v) {
    for (char c : v) {
        if (c == '\\') o += "\\\\";
        else if (c == '"') o += "\\\"";
        else if (c == '\n') o += "\\n";
        else o += c;
    }
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

void append_number(std::string& o, double v) {
    char buf[32];
    if (std::isnan(v)) o += "NaN";
    else if (std::isinf(v)) o += v > 0 ? "+Inf" : "-Inf";
    else if (v == std::floor(v) && std::fabs(v) < 1e15 && !(v == 0 && std::signbit(v))) {
        const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v));  // as %.0f
        o.append(buf, r.ptr);
    } else {
        const int n = std::snprintf(buf, sizeof buf, (v == std::floor(v) && std::fabs(v) < 1e15) ? "%.0f" : "%.9g", v);
        o.append(buf, static_cast<size_t>(n));
    }
}

std::string number(double v) {
    std::string o;
    append_number(o, v);
    return o;
}

}  // namespace

std::string render(const std::vector<Family>& families) {
    // Appended to one string (thousands of tenants make tens of thousands of lines).
    size_t samples = 0;
    for (const auto& f : families) samples += f.samples.size();
    std::string o;
    o.reserve(4096 + samples * 64);
    for (const auto& f : families) {
        o += "# HELP ";
        o += f.name;
        o += ' ';
        o += help_text(f.help);
        o += "\n# TYPE ";
        o += f.name;
        o += ' ';
        o += f.type;
        o += '\n';
        for (const auto& s : f.samples) {
            o += f.name;
            o += s.suffix;
            if (!s.labels.empty()) {
                o += '{';
                for (size_t i = 0; i < s.labels.size(); i++) {
                    if (i) o += ',';
                    o += s.labels[i].first;
                    o += "=\"";
                    append_escaped(o, s.labels[i].second);
                    o += '"';
                }
                o += '}';
            }
            o += ' ';
            append_number(o, s.value);
            o += '\n';
        }
    }
    return o;
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

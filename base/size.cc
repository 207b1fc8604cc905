#include "base/size.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace hostd {

std::optional<uint64_t> parse_size(std::string_view t) {
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    size_t i = 0;
    while (i < t.size() && (std::isdigit(static_cast<unsigned char>(t[i])) || t[i] == '.')) i++;
    std::string num(t.substr(0, i));
    std::string unit(t.substr(i));
    if (num.empty() || num.front() == '.' || num.back() == '.') return std::nullopt;
    for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (unit.size() == 3 && unit.substr(1) == "IB") unit = unit.substr(0, 1);
    else if (unit.size() == 2 && unit[1] == 'B') unit = unit.substr(0, 1);
    int shift;
    if (unit.empty() || unit == "B") shift = 0;
    else if (unit == "K") shift = 10;
    else if (unit == "M") shift = 20;
    else if (unit == "G") shift = 30;
    else if (unit == "T") shift = 40;
    else if (unit == "P") shift = 50;
    else return std::nullopt;
    char* end = nullptr;
    double v = std::strtod(num.c_str(), &end);
    if (*end != '\0' || !std::isfinite(v) || v < 0) return std::nullopt;
    double bytes = std::ldexp(v, shift);
    if (bytes >= 1.8e19) return std::nullopt;
    return static_cast<uint64_t>(std::llround(bytes));
}

std::string format_size(uint64_t b) {
    static const char* units[] = {"", "K", "M", "G", "T", "P"};
    int u = 0;
    double v = static_cast<double>(b);
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    char buf[32];
    if (u == 0 || v == std::floor(v)) std::snprintf(buf, sizeof buf, "%.0f%s", v, units[u]);
    else std::snprintf(buf, sizeof buf, "%.1f%s", v, units[u]);
    return buf;
}

std::optional<std::pair<uint16_t, uint16_t>> parse_port_range(std::string_view t) {
    auto dash = t.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    unsigned lo = 0, hi = 0;
    auto a = t.substr(0, dash), b = t.substr(dash + 1);
    auto r1 = std::from_chars(a.data(), a.data() + a.size(), lo);
    auto r2 = std::from_chars(b.data(), b.data() + b.size(), hi);
    if (r1.ec != std::errc{} || r1.ptr != a.data() + a.size() || r2.ec != std::errc{} || r2.ptr != b.data() + b.size())
        return std::nullopt;
    if (lo < 1 || lo > hi || hi > 65535) return std::nullopt;
    return std::pair<uint16_t, uint16_t>{static_cast<uint16_t>(lo), static_cast<uint16_t>(hi)};
}

}  // namespace hostd

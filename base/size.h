// Human sizes: "512M", "1G", "1.5GiB", "1048576" (bytes). Binary units: K = 1024.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hostd {

std::optional<uint64_t> parse_size(std::string_view text);
std::string format_size(uint64_t bytes);  // "1G", "512M", "1.5G", "123"

// "20000-20999" → {20000, 20999}; nullopt unless 1 <= lo <= hi <= 65535.
std::optional<std::pair<uint16_t, uint16_t>> parse_port_range(std::string_view text);

}  // namespace hostd

#include "pgconf/quote.h"

#include "base/error.h"

namespace hostd::pgconf::detail {

std::string quote(std::string_view value, const std::string& field) {
    std::string out = "'";
    for (char c : value) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f)
            throw Error(Errc::invalid, "The value of '" + field + "' contains a control character; remove it", field);
        if (c == '\'') out += "''";
        else if (c == '\\') out += "\\\\";
        else out += c;
    }
    return out + "'";
}

}  // namespace hostd::pgconf::detail

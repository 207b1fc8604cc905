#include "base/error.h"

#include <cstring>

namespace hostd {

std::string_view errc_name(Errc c) {
    switch (c) {
    case Errc::invalid: return "invalid";
    case Errc::not_found: return "not_found";
    case Errc::conflict: return "conflict";
    case Errc::refused: return "refused";
    case Errc::failed: return "failed";
    case Errc::unavailable: return "unavailable";
    }
    return "failed";
}

void throw_errno(int err, const std::string& what, Errc code) {
    throw Error(code, what + ": " + std::strerror(err));
}

}  // namespace hostd

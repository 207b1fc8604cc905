// Pure naming helpers: filesystem labels for tenants and random filesystem UUIDs.
#include <sys/random.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "base/error.h"
#include "storage/handles.h"
#include "storage/storage.h"

namespace hostd::storage {

namespace detail {

size_t label_limit(const std::string& fstype) {
    if (fstype == "ext4") return 16;  // s_volume_name[16] in the ext4 superblock
    if (fstype == "xfs") return 12;   // sb_fname[12] in the xfs superblock
    throw Error(Errc::invalid, "Unsupported filesystem type '" + fstype + "': use ext4 or xfs.");
}

bool is_uuid(const std::string& s) {
    if (s.size() != 36) return false;
    for (size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool dash_here = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash_here ? c != '-' : !std::isxdigit(static_cast<unsigned char>(c))) return false;
    }
    return true;
}

}  // namespace detail

namespace {

constexpr std::string_view kLabelPrefix = "hd-";

// FNV-1a, 32 bits. Chosen over std::hash because labels are written to disks and must come
// out the same from every build and every standard library, forever.
uint32_t fnv1a(const std::string& s) {
    uint32_t h = 2166136261u;
    for (unsigned char c : s) {
        h ^= c;
        h *= 16777619u;
    }
    return h;
}

}  // namespace

std::string label_for(const std::string& tenant, const std::string& fstype) {
    const size_t limit = detail::label_limit(fstype);
    if (tenant.empty()) throw Error(Errc::invalid, "Cannot make a filesystem label for an empty tenant name.");
    std::string label = std::string(kLabelPrefix) + tenant;
    if (label.size() <= limit) return label;

    // "hd-" + head + "-" + 4 hex digits: the hash tells apart long names that share a head.
    const size_t head = limit - kLabelPrefix.size() - 5;
    char hash[5];
    std::snprintf(hash, sizeof hash, "%04x", static_cast<unsigned>(fnv1a(tenant) & 0xffffu));
    return std::string(kLabelPrefix) + tenant.substr(0, head) + "-" + hash;
}

std::string new_uuid() {
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        // getrandom() blocks only until the kernel's pool is first initialised at boot.
        const ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(errno, "Failed to read random bytes for a filesystem UUID (getrandom)");
        }
        got += static_cast<size_t>(n);
    }
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4: random
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // variant 10: RFC 4122

    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (size_t i = 0; i < sizeof b; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += hex[b[i] >> 4];
        out += hex[b[i] & 0x0f];
    }
    return out;
}

}  // namespace hostd::storage

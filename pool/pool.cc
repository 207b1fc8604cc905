#include "pool/pool.h"

#include <sys/random.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <toml++/toml.h>

#include "base/error.h"

namespace hostd::pool {
namespace {

constexpr std::string_view kImageSuffix = ".img";

std::string_view state_name(DiskState s) { return s == DiskState::ready ? "ready" : "preparing"; }

}  // namespace

bool valid_id(std::string_view id) {
    if (id.size() != 16) return false;
    return std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string new_id(const std::set<std::string>& taken) {
    for (;;) {
        unsigned char b[8];
        size_t got = 0;
        while (got < sizeof b) {
            const ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                throw_errno(errno, "Failed to read random bytes for a pool disk's id");
            }
            got += static_cast<size_t>(n);
        }
        char hex[17];
        for (size_t i = 0; i < sizeof b; i++) std::snprintf(hex + 2 * i, 3, "%02x", b[i]);
        std::string id(hex, 16);
        if (!taken.count(id)) return id;
    }
}

std::optional<std::string> id_of_image(std::string_view filename) {
    if (!filename.ends_with(kImageSuffix)) return std::nullopt;
    std::string_view id = filename.substr(0, filename.size() - kImageSuffix.size());
    if (!valid_id(id)) return std::nullopt;
    return std::string(id);
}

std::string image_name(std::string_view id) { return std::string(id) + std::string(kImageSuffix); }
std::string bootstrap_role_of(std::string_view id) { return "hostd_pool_" + std::string(id); }
std::string handover_role_of(std::string_view id) { return "hostd_handover_" + std::string(id); }

std::string render(const State& s) {
    toml::array disks;
    for (const auto& d : s.disks)
        disks.push_back(toml::table{
            {"id", d.id},
            {"state", std::string(state_name(d.state))},
            {"filesystem", d.filesystem},
            {"size", static_cast<int64_t>(d.size)},
            {"fs_uuid", d.fs_uuid},
            {"bootstrap_role", d.bootstrap_role},
            {"bootstrap_password", d.bootstrap_password},
            {"created_at", d.created_at},
        });
    toml::table doc{{"disk", disks}};
    std::ostringstream o;
    o << "# hostd's warm pool: disks prepared for creates. Written by hostd only (root's, 0600).\n" << doc << "\n";
    return o.str();
}

State parse(std::string_view text, std::string_view path) {
    const std::string where(path);
    auto bad = [&](const std::string& why) -> Error {
        return Error(Errc::invalid, "The warm pool's state file " + where + " is damaged: " + why +
                                        ". hostd leaves the pool alone until it is fixed; to start the pool afresh, "
                                        "stop hostd, remove the file and the images next to it, and start hostd.");
    };
    toml::table doc;
    try {
        doc = toml::parse(text, where);
    } catch (const toml::parse_error& e) {
        throw bad(std::string(e.description()));
    }
    State s;
    auto* arr = doc["disk"].as_array();
    if (!arr) {
        if (doc.contains("disk")) throw bad("'disk' is not a list of tables");
        return s;
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < arr->size(); i++) {
        auto* t = (*arr)[i].as_table();
        const std::string at = "disk " + std::to_string(i + 1);
        if (!t) throw bad(at + " is not a table");
        Disk d;
        d.id = (*t)["id"].value_or(std::string{});
        if (!valid_id(d.id)) throw bad(at + " has id '" + d.id + "', not 16 lower-case hex digits");
        if (!seen.insert(d.id).second) throw bad("id " + d.id + " is listed twice");
        const std::string st = (*t)["state"].value_or(std::string{});
        if (st == "ready") d.state = DiskState::ready;
        else if (st == "preparing") d.state = DiskState::preparing;
        else throw bad(at + " (" + d.id + ") has state '" + st + "', not ready or preparing");
        d.filesystem = (*t)["filesystem"].value_or(std::string{});
        if (d.filesystem != "ext4" && d.filesystem != "xfs") throw bad(at + " (" + d.id + ") has filesystem '" + d.filesystem + "'");
        const int64_t size = (*t)["size"].value_or(int64_t{0});
        if (size <= 0) throw bad(at + " (" + d.id + ") has no size");
        d.size = static_cast<uint64_t>(size);
        d.fs_uuid = (*t)["fs_uuid"].value_or(std::string{});
        if (d.fs_uuid.empty()) throw bad(at + " (" + d.id + ") has no fs_uuid");
        d.bootstrap_role = (*t)["bootstrap_role"].value_or(std::string{});
        d.bootstrap_password = (*t)["bootstrap_password"].value_or(std::string{});
        // A ready disk is taken with these: one without them cannot be handed over.
        if (d.state == DiskState::ready && (d.bootstrap_role != bootstrap_role_of(d.id) || d.bootstrap_password.empty()))
            throw bad(at + " (" + d.id + ") is ready but lacks its bootstrap role or its password");
        d.created_at = (*t)["created_at"].value_or(std::string{});
        s.disks.push_back(std::move(d));
    }
    return s;
}

std::optional<size_t> pick(const State& s, const Shape& shape) {
    for (size_t i = 0; i < s.disks.size(); i++) {
        const Disk& d = s.disks[i];
        if (d.state == DiskState::ready && d.size == shape.size && d.filesystem == shape.filesystem) return i;
    }
    return std::nullopt;
}

size_t to_prepare(const State& s, size_t size, size_t parallel) {
    size_t ready = 0, preparing = 0;
    for (const auto& d : s.disks) (d.state == DiskState::ready ? ready : preparing)++;
    if (ready + preparing >= size || preparing >= parallel) return 0;
    return std::min(size - ready - preparing, parallel - preparing);
}

Recovery plan_recovery(const State& s, const std::set<std::string>& found) {
    Recovery r;
    std::set<std::string> listed;
    for (const auto& d : s.disks) {
        listed.insert(d.id);
        const bool there = found.count(d.id) > 0;
        if (d.state == DiskState::preparing) {
            // Cut off while it was made: whatever of it exists goes, then its entry.
            if (there) r.destroy.push_back(d.id);
            r.forget.push_back(d.id);
        } else if (!there) {
            r.forget.push_back(d.id);  // a create took it (its image is the tenant's now)
        } else {
            r.kept.disks.push_back(d);
        }
    }
    for (const auto& id : found)
        if (!listed.count(id)) r.destroy.push_back(id);  // made before its entry was written? never: left by hand
    return r;
}

std::vector<std::string> misfits(const State& s, const Shape& now) {
    std::vector<std::string> out;
    for (const auto& d : s.disks)
        if (d.state == DiskState::ready && (d.size != now.size || d.filesystem != now.filesystem)) out.push_back(d.id);
    return out;
}

uint64_t room_needed(uint64_t disk_size) { return kSpareWritten + disk_size + kRoomMargin; }

std::optional<std::string> lacks_room(uint64_t available, uint64_t disk_size) {
    const uint64_t need = room_needed(disk_size);
    if (available >= need) return std::nullopt;
    auto mib = [](uint64_t b) { return std::to_string(b >> 20) + " MiB"; };
    return mib(available) + " free under the loop directory; a spare needs " + mib(need) + " (" + mib(kSpareWritten) +
           " it writes, then room for one full-path disk of " + mib(disk_size) + " and a margin of " + mib(kRoomMargin) + ")";
}

std::vector<std::string> surplus(const State& s, size_t size) {
    std::vector<std::string> out;
    size_t n = s.disks.size();
    for (auto it = s.disks.rbegin(); it != s.disks.rend() && n > size; ++it)
        if (it->state == DiskState::ready) {
            out.push_back(it->id);
            n--;
        }
    return out;
}

}  // namespace hostd::pool

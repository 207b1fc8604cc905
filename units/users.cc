#include "units/users.h"

#include <grp.h>
#include <pwd.h>

#include <fstream>
#include <vector>

#include "base/error.h"
#include "base/exec.h"

namespace hostd::units {

std::optional<OsUser> find_user(const std::string& name) {
    passwd pw{}, *res = nullptr;
    std::vector<char> buf(16384);
    if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res) != 0 || !res) return std::nullopt;
    return OsUser{name, pw.pw_uid, pw.pw_gid, pw.pw_gecos && pw.pw_gecos == kUserMarker};
}

std::optional<gid_t> find_group(const std::string& name) {
    group gr{}, *res = nullptr;
    std::vector<char> buf(16384);
    if (::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &res) != 0 || !res) return std::nullopt;
    return gr.gr_gid;
}

OsUser create_user(const std::string& name, const std::string& home, IdRange ids) {
    if (find_user(name))
        throw Error(Errc::conflict, "OS user '" + name + "' already exists; remove it or pick another tenant name");
    const std::string lo = std::to_string(ids.first), hi = std::to_string(ids.last);
    // A system account (no password aging, no subordinate ids), but with ids from hostd's own
    // range: the system range (100-999) holds fewer tenants than one host carries. No
    // lastlog/faillog entry (-l): nobody logs in, and those files are indexed by uid.
    const auto r = exec({.argv = {"useradd", "--system", "--user-group", "--no-create-home", "--no-log-init", "-K",
                                  "SYS_UID_MIN=" + lo, "-K", "SYS_UID_MAX=" + hi, "-K", "SYS_GID_MIN=" + lo, "-K",
                                  "SYS_GID_MAX=" + hi, "--home-dir", home, "--shell", "/usr/sbin/nologin", "--comment",
                                  std::string(kUserMarker), name}});
    if (r.exit_code == 4)  // useradd: "can't get unique system UID/GID"
        throw Error(Errc::unavailable, "No free uid/gid left in " + lo + "-" + hi + " for OS user '" + name +
                                           "' (useradd: " + r.err + "); widen users.ids in hostd.toml");
    if (r.exit_code != 0)
        throw Error(Errc::failed, "Failed to create OS user '" + name + "' (useradd exited with " +
                                      std::to_string(r.exit_code) + "): " + r.err);
    auto u = find_user(name);
    if (!u) throw Error(Errc::failed, "OS user '" + name + "' was created but cannot be looked up");
    return *u;
}

std::vector<std::string> hostd_users() {
    // /etc/passwd directly: getpwent() is not thread-safe, and NSS sources other than files
    // never hold users hostd made with useradd.
    std::vector<std::string> out;
    std::ifstream in("/etc/passwd");
    std::string line;
    const std::string marker = ":" + std::string(kUserMarker) + ":";
    while (std::getline(in, line)) {
        auto name = line.substr(0, line.find(':'));
        if (name.size() > 1 && name[0] == '_' && line.find(marker) != std::string::npos) out.push_back(name);
    }
    return out;
}

Removed delete_user(const std::string& name) {
    auto u = find_user(name);
    if (!u) return Removed::missing;
    if (!u->hostd) return Removed::not_hostds;
    exec_checked({.argv = {"userdel", name}}, "Failed to remove OS user '" + name + "'");
    return Removed::removed;
}

}  // namespace hostd::units

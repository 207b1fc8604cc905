#include "units/users.h"

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
    return OsUser{name, pw.pw_uid, pw.pw_gid};
}

OsUser create_user(const std::string& name, const std::string& home) {
    if (find_user(name))
        throw Error(Errc::conflict, "OS user '" + name + "' already exists; remove it or pick another tenant name");
    exec_checked({.argv = {"useradd", "--system", "--user-group", "--no-create-home", "--home-dir", home, "--shell",
                           "/usr/sbin/nologin", "--comment", "hostd tenant", name}},
                 "Failed to create OS user '" + name + "'");
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
    while (std::getline(in, line)) {
        auto name = line.substr(0, line.find(':'));
        if (name.size() > 1 && name[0] == '_' && line.find(":hostd tenant:") != std::string::npos) out.push_back(name);
    }
    return out;
}

void delete_user(const std::string& name) {
    if (!find_user(name)) return;
    exec_checked({.argv = {"userdel", name}}, "Failed to remove OS user '" + name + "'");
}

}  // namespace hostd::units

#include "units/sockets.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "base/fd.h"

namespace hostd::units {
namespace {

// One dump request per address family: the TCP sockets in the states of the mask (listening
// ones, or established ones), with their owner's uid.
void dump(int family, uint32_t states, std::vector<Listener>& out) {
    Fd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    if (!nl) throw_errno(errno, "Failed to open a sock_diag netlink socket");
    struct {
        nlmsghdr nh;
        inet_diag_req_v2 req;
    } msg{};
    msg.nh.nlmsg_len = sizeof msg;
    msg.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.sdiag_family = static_cast<uint8_t>(family);
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = states;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(nl.get(), &msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0)
        throw_errno(errno, "Failed to ask the kernel for its listening sockets");
    alignas(nlmsghdr) char buf[32768];
    for (;;) {
        const ssize_t n = ::recv(nl.get(), buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(errno, "Failed to read the kernel's listening sockets");
        }
        int left = static_cast<int>(n);
        for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_type == NLMSG_DONE) return;
            if (h->nlmsg_type == NLMSG_ERROR) {
                const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
                // No IPv6 in this kernel: nothing can listen there.
                if (family == AF_INET6 && (e->error == -EAFNOSUPPORT || e->error == -ENOENT)) return;
                throw_errno(-e->error, "The kernel refused the listening-socket dump");
            }
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) continue;
            const auto* d = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
            char addr[INET6_ADDRSTRLEN] = {};
            ::inet_ntop(d->idiag_family, d->id.idiag_src, addr, sizeof addr);
            out.push_back({.address = addr, .port = ntohs(d->id.idiag_sport), .uid = d->idiag_uid, .inode = d->idiag_inode});
        }
    }
}

}  // namespace

std::vector<Listener> tcp_listeners() {
    std::vector<Listener> out;
    dump(AF_INET, 1u << TCP_LISTEN, out);
    dump(AF_INET6, 1u << TCP_LISTEN, out);
    return out;
}

std::vector<Listener> tcp_established() {
    std::vector<Listener> out;
    dump(AF_INET, 1u << TCP_ESTABLISHED, out);
    dump(AF_INET6, 1u << TCP_ESTABLISHED, out);
    return out;
}

std::vector<pid_t> socket_holders(uint64_t inode) {
    const std::string target = "socket:[" + std::to_string(inode) + "]";
    std::vector<pid_t> out;
    std::error_code ec;
    for (auto& p : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string name = p.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::error_code fec;
        for (auto& fd : std::filesystem::directory_iterator(p.path() / "fd", fec)) {
            std::error_code lec;
            if (std::filesystem::read_symlink(fd.path(), lec).string() != target) continue;
            out.push_back(static_cast<pid_t>(std::stol(name)));
            break;
        }
    }
    return out;
}

std::vector<pid_t> kill_socket_holders(uid_t uid, uint64_t inode) {
    const std::string target = "socket:[" + std::to_string(inode) + "]";
    std::vector<pid_t> killed;
    std::error_code ec;
    for (auto& p : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string name = p.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        struct stat st{};
        if (::stat(p.path().c_str(), &st) < 0 || st.st_uid != uid) continue;  // only that user's processes
        std::error_code fec;
        for (auto& fd : std::filesystem::directory_iterator(p.path() / "fd", fec)) {
            std::error_code lec;
            if (std::filesystem::read_symlink(fd.path(), lec).string() != target) continue;
            const pid_t pid = static_cast<pid_t>(std::stol(name));
            if (::kill(pid, SIGKILL) == 0) killed.push_back(pid);
            break;
        }
    }
    return killed;
}

}  // namespace hostd::units

// The kernel's table of listening sockets, read through sock_diag, against sockets this test
// opens itself.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "base/fd.h"
#include "units/sockets.h"

using namespace hostd;

namespace {

// A listening socket on 127.0.0.1, on a port the kernel picks; its port and inode.
struct OwnListener {
    Fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    uint16_t port = 0;
    uint64_t inode = 0;
    OwnListener() {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || ::listen(fd.get(), 1) < 0 ||
            ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) < 0)
            throw std::runtime_error("cannot listen on 127.0.0.1");
        port = ntohs(a.sin_port);
        struct stat st{};
        ::fstat(fd.get(), &st);
        inode = st.st_ino;
    }
};

}  // namespace

TEST(TcpListeners, SeesASocketListeningHereWithItsOwnerAndInode) {
    OwnListener l;
    auto all = units::tcp_listeners();
    auto it = std::find_if(all.begin(), all.end(), [&](const units::Listener& x) { return x.port == l.port; });
    ASSERT_NE(it, all.end()) << "port " << l.port << " not in the kernel's table";
    EXPECT_EQ(it->uid, ::getuid());
    EXPECT_EQ(it->inode, l.inode);
    EXPECT_EQ(it->address, "127.0.0.1");
}

TEST(TcpListeners, ASocketNoLongerListeningIsGone) {
    uint16_t port;
    {
        OwnListener l;
        port = l.port;
    }
    auto all = units::tcp_listeners();
    EXPECT_TRUE(std::none_of(all.begin(), all.end(), [&](const units::Listener& x) { return x.port == port; }));
}

TEST(KillSocketHolders, KillsTheProcessHoldingTheSocketAndNoOther) {
    OwnListener l;  // held by this process too: its children inherit it only if asked, so fork one that keeps it
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    if (child == 0) {
        // The child holds its own listener; the parent's stays the parent's.
        OwnListener mine;
        const uint64_t inode = mine.inode;
        (void)!::write(ready[1], &inode, sizeof inode);
        ::pause();
        ::_exit(0);
    }
    uint64_t inode = 0;
    ASSERT_EQ(::read(ready[0], &inode, sizeof inode), static_cast<ssize_t>(sizeof inode));
    auto killed = units::kill_socket_holders(::getuid(), inode);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    EXPECT_EQ(killed, std::vector<pid_t>{child});
    ::close(ready[0]);
    ::close(ready[1]);
}

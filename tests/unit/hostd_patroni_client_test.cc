// hostd's client of Patroni's REST API (hostd/patroni_client.h) against a one-request HTTP
// server on 127.0.0.1: what it sends (path, body, basic auth only where it must), how long it
// waits, and what each of Patroni's answers becomes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/error.h"
#include "hostd/patroni_client.h"
#include "tests/unit/error_of.h"

using namespace hostd;
using test::error_of;

namespace {

// Listens on 127.0.0.1 (a free port); serve() answers one request with `reply` (a whole HTTP
// response; "" : read the request and never answer) and keeps what was asked.
class OneShotServer {
public:
    OneShotServer() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        socklen_t n = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &n);
        port_ = ntohs(a.sin_port);
        EXPECT_EQ(::listen(fd_, 4), 0);
    }
    ~OneShotServer() {
        if (t_.joinable()) t_.join();
        ::close(fd_);
    }
    uint16_t port() const { return port_; }
    void serve(std::string reply, std::chrono::milliseconds hold = std::chrono::milliseconds(0)) {
        t_ = std::thread([this, reply, hold] {
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            char buf[4096];
            for (;;) {  // headers, then the body by Content-Length
                const ssize_t n = ::read(c, buf, sizeof buf);
                if (n <= 0) break;
                request.append(buf, static_cast<size_t>(n));
                const size_t end = request.find("\r\n\r\n");
                if (end == std::string::npos) continue;
                size_t len = 0;
                if (auto p = request.find("Content-Length: "); p != std::string::npos) len = std::stoul(request.substr(p + 16));
                if (request.size() >= end + 4 + len) break;
            }
            if (!reply.empty()) (void)!::write(c, reply.data(), reply.size());
            else std::this_thread::sleep_for(hold);
            ::close(c);
        });
    }
    std::string request;  // as it arrived (read after the client returned)

private:
    int fd_ = -1;
    uint16_t port_ = 0;
    std::thread t_;
};

std::string http(int status, const std::string& body) {
    return "HTTP/1.0 " + std::to_string(status) + " X\r\nContent-Type: text/plain\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

HaMember member_at(uint16_t port) { return {.host = "hb-2", .address = "127.0.0.1", .rest_port = port}; }

}  // namespace

TEST(PatroniClient, ClusterIsAPlainGetWithoutCredentials) {
    OneShotServer s;
    s.serve(http(200, R"({"members": []})"));
    EXPECT_EQ(patroni::cluster(member_at(s.port())), R"({"members": []})");
    EXPECT_TRUE(s.request.starts_with("GET /cluster HTTP/1.1\r\n")) << s.request;
    EXPECT_EQ(s.request.find("Authorization"), std::string::npos) << s.request;
}

TEST(PatroniClient, SwitchoverPostsLeaderAndCandidateWithBasicAuth) {
    OneShotServer s;
    s.serve(http(200, "Successfully switched over to \"hb-3\""));
    const std::string said = patroni::switchover(member_at(s.port()), {"hostd", "pa:ss"}, {.leader = "hb-2", .candidate = "hb-3"});
    EXPECT_EQ(said, "Successfully switched over to \"hb-3\"");
    EXPECT_TRUE(s.request.starts_with("POST /switchover HTTP/1.1\r\n")) << s.request;
    EXPECT_NE(s.request.find("Authorization: Basic aG9zdGQ6cGE6c3M=\r\n"), std::string::npos) << s.request;  // hostd:pa:ss
    const std::string body = s.request.substr(s.request.find("\r\n\r\n") + 4);
    EXPECT_EQ(nlohmann::json::parse(body), nlohmann::json({{"leader", "hb-2"}, {"candidate", "hb-3"}}));
}

TEST(PatroniClient, AMemberThatDoesNotAnswerIsUnavailableNamedAndQuick) {
    uint16_t closed = 0;
    {
        OneShotServer s;  // a port nothing listens on once it is closed
        closed = s.port();
    }
    Error e = error_of([&] { patroni::cluster(member_at(closed)); });
    EXPECT_EQ(e.code(), Errc::unavailable);
    EXPECT_NE(std::string(e.what()).find("member 'hb-2' (Patroni at 127.0.0.1:" + std::to_string(closed) + ")"), std::string::npos)
        << e.what();

    OneShotServer silent;
    silent.serve("", std::chrono::milliseconds(2500));
    const auto t0 = std::chrono::steady_clock::now();
    e = error_of([&] { patroni::cluster(member_at(silent.port())); });
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(e.code(), Errc::unavailable);
    EXPECT_LT(waited, std::chrono::milliseconds(3000)) << "GET /cluster waits 2 s at most";

    OneShotServer busy;
    busy.serve(http(503, "not ready"));
    e = error_of([&] { patroni::cluster(member_at(busy.port())); });
    EXPECT_EQ(e.code(), Errc::unavailable);
    EXPECT_NE(std::string(e.what()).find("answered 503 (not ready)"), std::string::npos) << e.what();
}

TEST(PatroniClient, PatronisAnswersToASwitchoverBecomeRefusalsOrFailuresNamingTheMember) {
    const HaMember m{.host = "hb-1", .address = "fd00::1", .rest_port = 23001};
    const ha::Switchover s{.leader = "hb-1", .candidate = "hb-3"};
    EXPECT_EQ(patroni::switchover_outcome(m, s, 200, "Successfully switched over to \"hb-3\"\n"),
              "Successfully switched over to \"hb-3\"");
    EXPECT_EQ(patroni::switchover_outcome(m, s, 503, "Switchover status unknown"), "Switchover status unknown");
    Error e = error_of([&] { patroni::switchover_outcome(m, s, 412, "candidate name does not match with sync_standby"); });
    EXPECT_EQ(e.code(), Errc::conflict);
    EXPECT_NE(std::string(e.what()).find("from 'hb-1' to 'hb-3' was refused by member 'hb-1' (Patroni at [fd00::1]:23001): "
                                         "candidate name does not match with sync_standby"),
              std::string::npos)
        << e.what();
    e = error_of([&] { patroni::switchover_outcome(m, s, 401, "no auth header received"); });
    EXPECT_EQ(e.code(), Errc::failed);
    EXPECT_NE(std::string(e.what()).find("credentials"), std::string::npos) << e.what();
    e = error_of([&] { patroni::switchover_outcome(m, s, 503, "Switchover failed"); });
    EXPECT_EQ(e.code(), Errc::failed);
    EXPECT_NE(std::string(e.what()).find("answered 503 (Switchover failed)"), std::string::npos) << e.what();
    EXPECT_EQ(patroni::base_url(m), "http://[fd00::1]:23001");
}

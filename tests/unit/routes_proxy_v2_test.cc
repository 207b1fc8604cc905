#include <gtest/gtest.h>

#include <random>
#include <string>

#include "routes/proxy_v2.h"

using namespace hostd::routes;

namespace {

const std::string kSig("\r\n\r\n\0\r\nQUIT\n", 12);

// A header as HAProxy sends it for TCP over IPv4: 192.0.2.7:40000 → 10.0.0.1:28001.
std::string v4(uint8_t ver_cmd = 0x21, uint8_t fam = 0x11, uint16_t len = 12) {
    std::string h = kSig;
    h += char(ver_cmd);
    h += char(fam);
    h += char(len >> 8);
    h += char(len & 0xff);
    const unsigned char block[12] = {192, 0, 2, 7, 10, 0, 0, 1, 0x9c, 0x40, 0x6d, 0x61};
    h.append(reinterpret_cast<const char*>(block), std::min<size_t>(len, 12));
    if (len > 12) h.append(len - 12, '\0');
    return h;
}

}  // namespace

TEST(ParseProxyV2, ReadsATcp4HeaderAndItsLengthLeavingTheClientsBytes) {
    const std::string h = v4();
    const ProxyV2 r = parse_proxy_v2(h + "\x00\x00\x00\x08\x04\xd2\x16\x2f");  // an SSLRequest after it
    ASSERT_EQ(r.status, ProxyV2::Status::ok) << r.error;
    EXPECT_EQ(r.length, 28u);
    EXPECT_EQ(r.source, "192.0.2.7");
    EXPECT_EQ(r.source_port, 40000);
    EXPECT_EQ(r.destination, "10.0.0.1");
    EXPECT_EQ(r.destination_port, 28001);
}

TEST(ParseProxyV2, ReadsATcp6Header) {
    std::string h = kSig + std::string("\x21\x21\x00\x24", 4);
    std::string block(36, '\0');
    block[15] = 1;   // ::1
    block[31] = 1;   // ::1
    block[32] = char(0x30), block[33] = char(0x39);  // 12345
    block[34] = char(0x6d), block[35] = char(0x62);  // 28002
    const ProxyV2 r = parse_proxy_v2(h + block);
    ASSERT_EQ(r.status, ProxyV2::Status::ok) << r.error;
    EXPECT_EQ(r.source, "::1");
    EXPECT_EQ(r.source_port, 12345);
    EXPECT_EQ(r.destination_port, 28002);
    EXPECT_EQ(r.length, 52u);
}

TEST(ParseProxyV2, SaysHowManyBytesItNeedsUntilTheHeaderIsWhole) {
    const std::string h = v4(0x21, 0x11, 20);  // TLVs after the addresses (8 bytes)
    EXPECT_EQ(parse_proxy_v2("").status, ProxyV2::Status::incomplete);
    EXPECT_EQ(parse_proxy_v2(h.substr(0, 5)).need, 16u);
    const ProxyV2 part = parse_proxy_v2(h.substr(0, 16));
    EXPECT_EQ(part.status, ProxyV2::Status::incomplete);
    EXPECT_EQ(part.need, 36u);
    EXPECT_EQ(parse_proxy_v2(h.substr(0, 35)).status, ProxyV2::Status::incomplete);
    const ProxyV2 whole = parse_proxy_v2(h);
    EXPECT_EQ(whole.status, ProxyV2::Status::ok);
    EXPECT_EQ(whole.length, 36u);
    EXPECT_EQ(whole.destination_port, 28001);
}

TEST(ParseProxyV2, RefusesAClientThatSpeaksAnythingElseAtItsFirstByte) {
    for (const std::string bad : {std::string("\x00\x00\x00\x08", 4), std::string("GET / HTTP/1.0\r\n"), std::string("PROXY TCP4 "),
                                  std::string("\r\n\r\n\0\r\nQUIX\n", 12)}) {
        const ProxyV2 r = parse_proxy_v2(bad);
        EXPECT_EQ(r.status, ProxyV2::Status::invalid);
        EXPECT_NE(r.error.find("signature"), std::string::npos) << r.error;
    }
    EXPECT_EQ(parse_proxy_v2("X").status, ProxyV2::Status::invalid);
}

TEST(ParseProxyV2, RefusesWhatNamesNoPublicPort) {
    struct Case {
        std::string header, why;
    };
    for (const Case& c : {Case{v4(0x11), "version 1"}, Case{v4(0x20), "LOCAL"}, Case{v4(0x2f), "command 15"},
                          Case{v4(0x21, 0x12), "0x12"}, Case{v4(0x21, 0x31), "0x31"}, Case{v4(0x21, 0x00), "0x00"},
                          Case{v4(0x21, 0x11, 11), "too short"}, Case{v4(0x21, 0x21, 12), "too short"},
                          Case{v4(0x21, 0x11, 600), "more than"}}) {
        const ProxyV2 r = parse_proxy_v2(c.header);
        EXPECT_EQ(r.status, ProxyV2::Status::invalid) << c.why;
        EXPECT_NE(r.error.find(c.why), std::string::npos) << r.error;
    }
    std::string zero = v4();
    zero[26] = zero[27] = 0;  // destination port 0
    EXPECT_EQ(parse_proxy_v2(zero).status, ProxyV2::Status::invalid);
}

TEST(ParseProxyV2, NeverReadsPastItsInputOrAsksForMoreThanTheLimitOnRandomBytes) {
    std::mt19937 rng(20);
    for (int i = 0; i < 20000; i++) {
        std::string s = i % 2 ? kSig : "";
        const size_t n = rng() % 80;
        for (size_t k = 0; k < n; k++) s += char(rng() & 0xff);
        const ProxyV2 r = parse_proxy_v2(s);
        if (r.status == ProxyV2::Status::incomplete) {
            EXPECT_GT(r.need, s.size());
            EXPECT_LE(r.need, kProxyV2MaxLength);
        }
        if (r.status == ProxyV2::Status::ok) {
            EXPECT_LE(r.length, s.size());
            EXPECT_GT(r.destination_port, 0);
        }
    }
}

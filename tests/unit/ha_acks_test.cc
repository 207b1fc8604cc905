// ha/acks: the acknowledged-commit log of hostd-ack-client held against the ids a new primary
// has: lost ids, when writes came back (not counting the stopped primary's own late acks), the
// longest pause, the median of several runs; malformed logs refused with the line.
#include <gtest/gtest.h>

#include "base/error.h"
#include "ha/acks.h"

namespace {

using namespace hostd;

const char* kLog =
    "# hostd-ack-client\n"
    "conn 1000 10.0.0.2\n"
    "ack 1 1010\n"
    "ack 2 1020\n"
    "ack 3 1030\n"
    "ack 4 5030\n"  // logged after the stop (5000), still by the old primary's connection
    "fail 5100 insert 5: server closed the connection unexpectedly\n"
    "fail 7000 connect: timeout expired\n"
    "conn 12000 10.0.0.3\n"
    "ack 7 12010\n"
    "ack 8 12020\n";

TEST(HaAcks, ParsesEventsAndAttributesAcksToTheirServer) {
    auto log = ha::parse_ack_log(kLog);
    ASSERT_EQ(log.acks.size(), 6u);
    EXPECT_EQ(log.failures, 2);
    EXPECT_EQ(log.connections, 2);
    EXPECT_EQ(log.acks[3].id, 4);
    EXPECT_EQ(log.acks[3].server, "10.0.0.2");
    EXPECT_EQ(log.acks[4].id, 7);
    EXPECT_EQ(log.acks[4].at_ms, 12010);
    EXPECT_EQ(log.acks[4].server, "10.0.0.3");
}

TEST(HaAcks, NothingLostWhenEveryAckedIdIsPresent) {
    auto log = ha::parse_ack_log(kLog);
    // 5 was attempted and may have committed: present or not, it is no acknowledged id.
    auto r = ha::check_acks(log, ha::parse_ids("1\n2\n3\n4\n5\n7\n8\n"), 5000, "10.0.0.2");
    EXPECT_EQ(r.acknowledged, 6u);
    EXPECT_TRUE(r.lost.empty());
    // The old primary's late ack (id 4 at 5030) does not count as writes being back.
    ASSERT_TRUE(r.back_after_s);
    EXPECT_DOUBLE_EQ(*r.back_after_s, 7.01);
    EXPECT_DOUBLE_EQ(r.longest_pause_s, 6.98);  // 5030 -> 12010
    EXPECT_EQ(r.pause_before_id, 7);
}

TEST(HaAcks, ReportsEveryLostAckedId) {
    auto log = ha::parse_ack_log(kLog);
    auto r = ha::check_acks(log, ha::parse_ids("1\n2\n7\n"), std::nullopt);
    EXPECT_EQ(r.lost, (std::vector<int64_t>{3, 4, 8}));
    EXPECT_FALSE(r.back_after_s);
    EXPECT_DOUBLE_EQ(r.longest_pause_s, 6.98);  // the whole log without --since
}

TEST(HaAcks, WritesNeverBackAfterTheStop) {
    auto log = ha::parse_ack_log("conn 1 a\nack 1 10\nack 2 20\n");
    auto r = ha::check_acks(log, {1, 2}, 15, "a");
    EXPECT_FALSE(r.back_after_s);
    auto r2 = ha::check_acks(log, {1, 2}, 15);  // any server counts without not_server
    ASSERT_TRUE(r2.back_after_s);
    EXPECT_DOUBLE_EQ(*r2.back_after_s, 0.005);
}

TEST(HaAcks, RefusesMalformedLines) {
    for (const char* bad : {"ack 1\n", "ack x 10\n", "ack 0 10\n", "ack 1 10 extra\n", "conn 10\n", "fail x\n",
                            "hello 1\n", "ack 2 20\nack 3 10\n"}) {
        try {
            ha::parse_ack_log(bad);
            ADD_FAILURE() << "accepted: " << bad;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::invalid) << bad;
            EXPECT_NE(std::string(e.what()).find("ack log line"), std::string::npos) << e.what();
        }
    }
    EXPECT_THROW(ha::parse_ids("1\nx\n"), Error);
    EXPECT_THROW(ha::parse_ids("1 2\n"), Error);
    EXPECT_EQ(ha::parse_ids("\n3\r\n\n4"), (std::vector<int64_t>{3, 4}));
}

TEST(HaAcks, Median) {
    EXPECT_DOUBLE_EQ(ha::median({12.5, 9.0, 30.0}), 12.5);
    EXPECT_DOUBLE_EQ(ha::median({4.0, 1.0, 3.0, 2.0}), 2.5);
    EXPECT_DOUBLE_EQ(ha::median({7.0}), 7.0);
    EXPECT_THROW(ha::median({}), Error);
}

}  // namespace

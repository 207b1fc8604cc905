// Acknowledged commits across a failover or switchover (issue #17), pure: what a client that
// writes ids 1, 2, 3... (one transaction each) logged, held against the ids the new primary has.
// The log is hostd-ack-client's (tests/ack_client.cc), one event a line, times in milliseconds
// since the epoch (CLOCK_REALTIME: the testbed machines share the host's clock):
//   conn MS SERVER      connected; SERVER is the member's address (inet_server_addr())
//   ack ID MS           COMMIT of ID acknowledged (logged only after the server said so)
//   fail MS TEXT...     a connection or a statement failed (the client reconnects)
// Other lines ("# ..." and empty) are skipped. Values in, numbers out; bad lines throw
// hostd::Error (Errc::invalid, with the line number).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hostd::ha {

struct Ack {
    int64_t id = 0;
    int64_t at_ms = 0;
    std::string server;  // the member that acknowledged it (the last "conn" before it; empty if none)
};

struct AckLog {
    std::vector<Ack> acks;  // in the order logged
    int failures = 0;       // "fail" lines
    int connections = 0;    // "conn" lines
};

AckLog parse_ack_log(std::string_view text);

// The ids the new primary has: one integer a line (psql -At), empty lines skipped.
std::vector<int64_t> parse_ids(std::string_view text);

struct AckReport {
    size_t acknowledged = 0;
    std::vector<int64_t> lost;  // acknowledged ids the new primary lacks, ascending
    // Seconds from `since_ms` to the first ack at or after it by a server other than
    // `not_server` (the stopped primary: an ack logged a moment after the stop may still be its
    // own); none if no such ack (writes never came back).
    std::optional<double> back_after_s;
    // The longest time between two consecutive acks (from `since_ms` on, if given), and the id
    // acknowledged right after that pause; 0 and 0 with fewer than two acks.
    double longest_pause_s = 0;
    int64_t pause_before_id = 0;
};

AckReport check_acks(const AckLog& log, const std::vector<int64_t>& present, std::optional<int64_t> since_ms = std::nullopt,
                     const std::string& not_server = {});

// The median (the mean of the two middle values for an even count); throws on none.
double median(std::vector<double> values);

}  // namespace hostd::ha

// What systemd's numbers say about how a unit's main process ended, in words (hostctl show's
// last_exit and a down tenant's reason).
#include <gtest/gtest.h>

#include <csignal>

#include "units/systemd.h"

using hostd::units::describe_exit;

TEST(DescribeExit, NamesTheExitStatusOrTheSignal) {
    EXPECT_EQ(describe_exit(1, 3), "exited with status 3");                // CLD_EXITED
    EXPECT_EQ(describe_exit(2, SIGKILL), "was killed by signal KILL");     // CLD_KILLED
    EXPECT_EQ(describe_exit(3, SIGSEGV), "dumped core on signal SEGV");    // CLD_DUMPED
    EXPECT_EQ(describe_exit(0, 0), "") << "it has not ended";
    EXPECT_EQ(describe_exit(2, 200), "was killed by signal 200") << "a number no name belongs to";
}

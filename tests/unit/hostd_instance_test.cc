// One hostd at a time, and an open-file limit that fits the listeners.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "hostd/instance.h"

using namespace hostd;

namespace {
std::string temp_path(const std::string& name) {
    auto dir = std::filesystem::temp_directory_path() / ("hostd-instance-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    return (dir / name).string();
}
}  // namespace

TEST(AnInstanceLock, RefusesASecondHolderNamingThePidOfTheFirst) {
    const std::string path = temp_path("a/hostd.lock");
    InstanceLock first(path);
    try {
        InstanceLock second(path);  // another open file description: flock says no, as to another process
        FAIL() << "a second lock was taken";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::conflict);
        EXPECT_NE(std::string(e.what()).find("PID " + std::to_string(::getpid())), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    std::ifstream in(path);
    std::string pid;
    in >> pid;
    EXPECT_EQ(pid, std::to_string(::getpid()));
    std::filesystem::remove_all(std::filesystem::path(path).parent_path().parent_path());
}

TEST(AnInstanceLock, IsFreeAgainOnceItsHolderIsGone) {
    const std::string path = temp_path("b.lock");
    { InstanceLock first(path); }
    EXPECT_NO_THROW(InstanceLock again(path));
    std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

TEST(AnInstanceLock, LivesBesideTheSocketAndInTheStateDirectory) {
    Config cfg;
    EXPECT_EQ(socket_lock_path(cfg), "/run/hostd/hostd.lock");
    EXPECT_EQ(state_lock_path(cfg), "/var/lib/hostd/hostd.lock");
}

TEST(TheFileLimit, FitsEveryConnectionsOperationAndIsRaisedToThat) {
    Config cfg;
    EXPECT_EQ(files_needed(cfg), 1024u * 16 + 64 + 256);
    rlimit saved{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
    if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 2000) GTEST_SKIP() << "hard limit too low here";
    rlimit low = saved;
    low.rlim_cur = 512;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    EXPECT_EQ(raise_file_limit(2000), "");
    rlimit now{};
    ::getrlimit(RLIMIT_NOFILE, &now);
    EXPECT_EQ(now.rlim_cur, 2000u);
    if (saved.rlim_max != RLIM_INFINITY) {
        EXPECT_NE(raise_file_limit(saved.rlim_max + 1).find("LimitNOFILE"), std::string::npos);
    }
    ::setrlimit(RLIMIT_NOFILE, &saved);
}

// Golden-file comparison for renderers: tests/data/<relpath> holds the expected output;
// HOSTD_UPDATE_GOLDEN=1 rewrites it from the actual output.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "base/error.h"
#include "base/fs.h"

namespace hostd::test {

inline void expect_golden(const std::string& relpath, const std::string& actual) {
    const std::string path = std::string(HOSTD_TEST_DATA) + "/" + relpath;
    const char* update = std::getenv("HOSTD_UPDATE_GOLDEN");
    if (update && std::string(update) == "1") {
        write_file_atomic(path, actual);
        return;
    }
    std::string expected;
    try {
        expected = read_file(path);
    } catch (const Error& e) {
        FAIL() << e.what() << " (run with HOSTD_UPDATE_GOLDEN=1 to create it)";
    }
    EXPECT_EQ(actual, expected) << "differs from " << path << " (HOSTD_UPDATE_GOLDEN=1 rewrites it)";
}

}  // namespace hostd::test

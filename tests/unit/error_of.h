// The hostd::Error a call throws, for tests that look at its code, field or text; a test failure
// (and an Errc::failed stand-in) when it throws none.
#pragma once

#include <gtest/gtest.h>

#include <functional>

#include "base/error.h"

namespace hostd::test {

inline Error error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e;
    }
    ADD_FAILURE() << "no error thrown";
    return Error(Errc::failed, "none");
}

}  // namespace hostd::test

// Who may use the API: the group hostd.toml names, looked up at start.
#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "hostd/http.h"

using namespace hostd;

TEST(ApiGroup, IsTheNamedGroupsId) { EXPECT_EQ(api_group_id("root"), 0u); }

TEST(ApiGroup, AMissingGroupIsAnErrorThatSaysWhatToDoNotRootsGroup) {
    try {
        const gid_t gid = api_group_id("hostd-no-such-group");
        ADD_FAILURE() << "a missing group gave gid " << gid;
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("'hostd-no-such-group'"), std::string::npos) << what;
        EXPECT_NE(what.find("systemd-sysusers"), std::string::npos) << what;
        EXPECT_NE(what.find("api.group"), std::string::npos) << what;
    }
}

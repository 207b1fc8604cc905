#include <gtest/gtest.h>

#include "units/systemd.h"
#include "units/users.h"

using namespace hostd::units;

TEST(TenantUnit, IsAnInstanceOfTheShippedTemplate) { EXPECT_EQ(tenant_unit("acme"), "hostd-postgres@acme.service"); }

TEST(OsUser, FitsSystemdsLimitForTheLongestTenantName) {
    std::string longest(30, 'a');
    EXPECT_LE(os_user_for(longest).size(), 31u);
    EXPECT_EQ(os_user_for("acme"), "_acme");
}

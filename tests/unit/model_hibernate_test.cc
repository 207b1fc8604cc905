#include <gtest/gtest.h>

#include "model/hibernate.h"

using namespace hostd;

namespace {
IdleFact idle(const std::string& name, uint32_t connections = 0) {
    return {.name = name, .eligible = true, .hibernated = false, .connections = connections};
}
}  // namespace

TEST(DueForHibernation, ATenantFirstSeenGetsAWholeSpell) {
    std::map<std::string, double> busy;
    EXPECT_TRUE(due_for_hibernation({idle("a")}, busy, 1000, 60).empty());
    EXPECT_TRUE(due_for_hibernation({idle("a")}, busy, 1059, 60).empty());
    EXPECT_EQ(due_for_hibernation({idle("a")}, busy, 1060, 60), std::vector<std::string>{"a"});
}

TEST(DueForHibernation, AConnectionStartsTheSpellAgain) {
    std::map<std::string, double> busy;
    due_for_hibernation({idle("a")}, busy, 0, 60);
    EXPECT_TRUE(due_for_hibernation({idle("a", 1)}, busy, 50, 60).empty());
    EXPECT_TRUE(due_for_hibernation({idle("a")}, busy, 100, 60).empty()) << "idle since 50 only";
    EXPECT_EQ(due_for_hibernation({idle("a")}, busy, 110, 60), std::vector<std::string>{"a"});
}

TEST(DueForHibernation, NeverPicksAHibernatedOrIneligibleTenantAndGivesThemAWholeSpellAfter) {
    std::map<std::string, double> busy;
    IdleFact asleep = idle("a");
    asleep.hibernated = true;
    IdleFact stopped = idle("b");
    stopped.eligible = false;
    due_for_hibernation({asleep, stopped}, busy, 0, 60);
    EXPECT_TRUE(due_for_hibernation({asleep, stopped}, busy, 500, 60).empty());
    // Woken (or started) at 500: idle from then on, so due at 560, not at once.
    EXPECT_TRUE(due_for_hibernation({idle("a"), idle("b")}, busy, 530, 60).empty());
    EXPECT_EQ(due_for_hibernation({idle("a"), idle("b")}, busy, 560, 60), (std::vector<std::string>{"a", "b"}));
}

TEST(DueForHibernation, ForgetsTenantsThatAreGoneAndAnswersInNameOrder) {
    std::map<std::string, double> busy;
    due_for_hibernation({idle("c"), idle("a"), idle("b")}, busy, 0, 10);
    EXPECT_EQ(due_for_hibernation({idle("c"), idle("a"), idle("b", 2)}, busy, 20, 10), (std::vector<std::string>{"a", "c"}));
    due_for_hibernation({idle("a")}, busy, 21, 10);
    EXPECT_EQ(busy.size(), 1u);
    EXPECT_EQ(busy.count("a"), 1u);
}

TEST(CountByPort, CountsEachLocalPort) {
    EXPECT_EQ(count_by_port({25001, 41000, 25001, 25002}),
              (std::map<uint16_t, uint32_t>{{25001, 2}, {25002, 1}, {41000, 1}}));
}

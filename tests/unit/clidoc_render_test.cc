// Man page, completion and table rendering from a small CLI11 definition.
#include <gtest/gtest.h>

#include "hostd/cli_doc.h"

namespace {

struct Tool {
    CLI::App app{"tool: does things", "tool"};
    std::string name, size, sock;
    bool yes = false;
    Tool() {
        app.add_option("--socket", sock, "The socket");
        auto* c = app.add_subcommand("create", "Create a thing");
        c->add_option("name", name, "Its name")->required();
        c->add_option("--disk-size", size, "Disk size");
        c->add_flag("-y,--yes", yes, "Do not ask");
        c->footer("Example: tool create a --disk-size 2G");
        app.add_subcommand("list", "List things");
    }
};

TEST(CliDoc, ManPageHasEverySectionAndCommand) {
    Tool t;
    hostd::ManInfo info;
    info.version = "tool 1.0";
    info.exit_status = "0 ok\n3 not found";
    auto man = hostd::man_page(t.app, info);
    EXPECT_EQ(man.rfind(".TH TOOL 1 \"\" \"tool 1.0\"\n", 0), 0u) << man;
    EXPECT_NE(man.find(".SH NAME\ntool \\- does things\n"), std::string::npos) << man;
    EXPECT_NE(man.find(".SS \"create name\"\nCreate a thing\n"), std::string::npos) << man;
    EXPECT_NE(man.find("\\fB\\-\\-disk\\-size\\fR \\fIDISK_SIZE\\fR\nDisk size\n"), std::string::npos) << man;
    EXPECT_NE(man.find("\\fB\\-y, \\-\\-yes\\fR\nDo not ask\n"), std::string::npos) << man;  // a flag: no value
    EXPECT_NE(man.find(".PP\nExample: tool create a \\-\\-disk\\-size 2G\n"), std::string::npos) << man;
    EXPECT_NE(man.find(".SS \"list\"\n"), std::string::npos) << man;
    EXPECT_NE(man.find(".SH \"EXIT STATUS\"\n0 ok\n.br\n3 not found\n"), std::string::npos) << man;
    EXPECT_EQ(man.find(".SH ENVIRONMENT"), std::string::npos) << "empty sections are left out";
}

TEST(CliDoc, RoffEscapesRequestsAndBackslashes) {
    EXPECT_EQ(hostd::roff_escape(".hidden\n'quote\na\\b"), "\\&.hidden\n\\&'quote\na\\eb");
    EXPECT_EQ(hostd::roff_escape("mid.dle"), "mid.dle");
}

TEST(CliDoc, BashCompletionOffersCommandsThenTheirOptions) {
    Tool t;
    auto s = hostd::bash_completion(t.app);
    EXPECT_NE(s.find("complete -F _tool tool\n"), std::string::npos) << s;
    EXPECT_NE(s.find("create) words=\"--help -h --disk-size --yes -y\""), std::string::npos) << s;
    EXPECT_NE(s.find("*) words=\"create list --help -h --socket\""), std::string::npos) << s;
}

TEST(CliDoc, BashCompletionOffersNamesWhereACommandTakesOne) {
    Tool t;
    auto s = hostd::bash_completion(t.app, "tool names");
    EXPECT_NE(s.find("create) words=\"--help -h --disk-size --yes -y $(tool names 2>/dev/null)\""), std::string::npos) << s;
    EXPECT_NE(s.find("list) words=\"--help -h\" ;;"), std::string::npos) << s << "list takes no name";
}

TEST(CliDoc, TableColumnsAlignWithoutTrailingSpaces) {
    EXPECT_EQ(hostd::render_table({{"NAME", "STATE", "URL"}, {"a", "ready", "postgresql://x"}, {"longer-name", "", ""}}),
              "NAME         STATE  URL\n"
              "a            ready  postgresql://x\n"
              "longer-name\n");
    EXPECT_EQ(hostd::render_table({}), "");
}

TEST(CliDoc, StepLinesAlignNamesAndMilliseconds) {
    EXPECT_EQ(hostd::step_line("disk", 12), "  disk              12 ms");
    EXPECT_EQ(hostd::step_line("check-proxy", 123456), "  check-proxy   123456 ms");
    EXPECT_EQ(hostd::step_line("a-very-long-step-name", 5), "  a-very-long-step-name      5 ms");
}

TEST(CliDoc, SpinnerTurnsAndShowsTenthsOfSeconds) {
    EXPECT_EQ(hostd::spinner_line(0, "acme: after disk", 1234), "| acme: after disk 1.2 s");
    EXPECT_EQ(hostd::spinner_line(1, "x", 0), "/ x 0.0 s");
    EXPECT_EQ(hostd::spinner_line(3, "x", 59999), "\\ x 59.9 s");
    EXPECT_EQ(hostd::spinner_line(4, "x", 100), "| x 0.1 s");
}

TEST(CliDoc, TenantRowsShowUsedOverLimitAndDashesForUnknown) {
    auto tenants = nlohmann::json::parse(R"([
      {"name": "acme", "state": "ready", "public_port": 20001, "disk_size": 1073741824, "memory": 268435456, "cpu": 0.5,
       "url": "postgresql://acme@127.0.0.1:20001/postgres?sslmode=require",
       "status": {"memory_current": 41943040, "cpu_usage_nsec": 3250000000,
                  "disk": {"bytes_used": 52428800, "bytes_total": 1000000000}}},
      {"name": "old", "state": "detached", "public_port": 0, "disk_size": 2147483648, "memory": 536870912, "cpu": 1}
    ])");
    auto rows = hostd::tenant_rows(tenants);
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0], (std::vector<std::string>{"NAME", "STATE", "PORT", "DISK", "MEMORY", "CPU", "URL"}));
    EXPECT_EQ(rows[1], (std::vector<std::string>{"acme", "ready", "20001", "50M/1G", "40M/256M", "0.5 (3.2s)",
                                                 "postgresql://acme@127.0.0.1:20001/postgres?sslmode=require"}));
    EXPECT_EQ(rows[2], (std::vector<std::string>{"old", "detached", "-", "-/2G", "-/512M", "1", "-"}));
}

}  // namespace

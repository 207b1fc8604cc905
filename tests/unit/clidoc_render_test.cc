// Man page, completion and table rendering from a small CLI11 definition.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>

#include "clidoc/clidoc.h"

namespace {

struct Tool {
    CLI::App app{"tool: does things", "tool"};
    std::string name, size, sock, fs;
    bool yes = false;
    Tool() {
        app.add_option("--socket", sock, "The socket");
        auto* c = app.add_subcommand("create", "Create a thing");
        c->add_option("name", name, "Its name")->required();
        c->add_option("--disk-size", size, "Disk size");
        c->add_flag("-y,--yes", yes, "Do not ask");
        c->add_option("-f,--filesystem", fs, "ext4 or xfs")->check(CLI::IsMember({"ext4", "xfs"}));
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
    EXPECT_NE(s.find("create) words=\"--help -h --disk-size --yes -y --filesystem -f\""), std::string::npos) << s;
    EXPECT_NE(s.find("*) words=\"create list --help -h --socket\""), std::string::npos) << s;
}

TEST(CliDoc, BashCompletionOffersNamesWhereACommandTakesOne) {
    Tool t;
    auto s = hostd::bash_completion(t.app, "tool names");
    EXPECT_NE(s.find("create) words=\"--help -h --disk-size --yes -y --filesystem -f $(tool names 2>/dev/null)\""),
              std::string::npos)
        << s;
    EXPECT_NE(s.find("list) words=\"--help -h\" ;;"), std::string::npos) << s << "list takes no name";
}

TEST(CliDoc, BashCompletionCompletesTheValuesOfAnOptionWithAFixedSet) {
    Tool t;
    auto s = hostd::bash_completion(t.app);
    EXPECT_NE(s.find("create:--filesystem|create:-f) COMPREPLY=($(compgen -W \"ext4 xfs\" -- \"$cur\")); return ;;"),
              std::string::npos)
        << s;
    // Options whose values are free (sizes, paths) offer nothing rather than option names.
    EXPECT_NE(s.find(":--socket|create:--disk-size) COMPREPLY=(); return ;;"), std::string::npos) << s;
    // And bash agrees: run the script.
    const std::string script = s + R"(
COMP_WORDS=(tool create a --filesystem x); COMP_CWORD=4; _tool; echo "${COMPREPLY[*]}"
COMP_WORDS=(tool create a --filesystem ""); COMP_CWORD=4; _tool; echo "${COMPREPLY[*]}"
COMP_WORDS=(tool create a -f e); COMP_CWORD=4; _tool; echo "${COMPREPLY[*]}"
COMP_WORDS=(tool create a --disk-size ""); COMP_CWORD=4; _tool; echo "[${COMPREPLY[*]}]"
COMP_WORDS=(tool create a --f); COMP_CWORD=3; _tool; echo "${COMPREPLY[*]}"
)";
    char path[] = "/tmp/clidoc-completion-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, script.data(), script.size()), static_cast<ssize_t>(script.size()));
    ::close(fd);
    FILE* p = ::popen(("bash " + std::string(path)).c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string got;
    char buf[256];
    while (size_t n = ::fread(buf, 1, sizeof buf, p)) got.append(buf, n);
    ::pclose(p);
    ::unlink(path);
    EXPECT_EQ(got, "xfs\next4 xfs\next4\n[]\n--filesystem\n");
}

TEST(CliDoc, TableColumnsAlignWithoutTrailingSpaces) {
    EXPECT_EQ(hostd::render_table({{"NAME", "STATE", "URL"}, {"a", "ready", "postgresql://x"}, {"longer-name", "", ""}}),
              "NAME         STATE  URL\n"
              "a            ready  postgresql://x\n"
              "longer-name\n");
    EXPECT_EQ(hostd::render_table({}), "");
}

}  // namespace

TEST(Nearest, NamesTheCandidateATypoMeantAndNothingForAnotherWord) {
    const std::vector<std::string> cmds = {"create", "delete", "list", "show", "resize", "reconcile"};
    EXPECT_EQ(hostd::nearest("lsit", cmds), "list");
    EXPECT_EQ(hostd::nearest("craete", cmds), "create");
    EXPECT_EQ(hostd::nearest("reconcle", cmds), "reconcile");
    EXPECT_EQ(hostd::nearest("backup", cmds), "");
    EXPECT_EQ(hostd::nearest("--josn", {"--json", "--socket"}), "--json");
}

TEST(Suggestion, NamesTheNearestCommandOrOptionOfTheCommandGiven) {
    Tool t;
    const char* cmd[] = {"tool", "craete", "x"};
    EXPECT_EQ(hostd::suggestion(t.app, 3, cmd), "tool: unknown command 'craete'; did you mean 'create'?");
    const char* opt[] = {"tool", "create", "x", "--disk-szie", "2G"};
    EXPECT_EQ(hostd::suggestion(t.app, 5, opt), "tool: unknown option '--disk-szie'; did you mean '--disk-size'?");
    const char* fine[] = {"tool", "create", "x", "--disk-size", "2G"};
    EXPECT_EQ(hostd::suggestion(t.app, 5, fine), "");
}

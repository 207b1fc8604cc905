#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <vector>

#include "base/error.h"
#include "base/fs.h"

using namespace hostd;
namespace fs = std::filesystem;

namespace {

// A directory of the test's own, removed whatever happens.
struct TempDir {
    TempDir() {
        char tmpl[] = "/tmp/hostd-fs-test.XXXXXX";
        if (!::mkdtemp(tmpl)) throw_errno(errno, "mkdtemp");
        path = tmpl;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    // The names in the directory, sorted.
    std::vector<std::string> entries() const {
        std::vector<std::string> out;
        for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path().filename());
        std::sort(out.begin(), out.end());
        return out;
    }
    std::string path;
};

}  // namespace

// Both writers replace the file whole by a rename (with and without the fsyncs), with the
// mode asked for, and leave no temporary file behind.
TEST(Files, WriteReplacesWholeWithModeAndNoLeftovers) {
    char tmpl[] = "/tmp/hostd-fs-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    for (auto* write : {&write_file_atomic, &write_file_replace}) {
        const std::string p = dir + "/f.conf";
        write(p, "old\n", 0644, std::nullopt, std::nullopt);
        write(p, "new content\n", 0600, std::nullopt, std::nullopt);
        EXPECT_EQ(read_file(p), "new content\n");
        struct stat st {};
        ASSERT_EQ(::stat(p.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0600u);
        size_t entries = 0;
        for (auto& e : std::filesystem::directory_iterator(dir)) entries += e.path().filename() == "f.conf" ? 1 : 100;
        EXPECT_EQ(entries, 1u) << "a temporary file was left in " << dir;
        ASSERT_TRUE(remove_file(p));
    }
    ::rmdir(dir.c_str());
}

TEST(Files, StagedFileIsCheckableBesideTheLiveFileAndReplacesItOnlyOnCommit) {
    TempDir d;
    const std::string live = d.path + "/hostd.cfg";
    write_file_atomic(live, "old\n");
    {
        StagedFile staged(live, "new\n", 0640);
        EXPECT_EQ(fs::path(staged.temp_path()).parent_path(), d.path);  // same filesystem: rename is atomic
        EXPECT_TRUE(staged.temp_path().ends_with(".tmp")) << staged.temp_path();
        EXPECT_EQ(read_file(staged.temp_path()), "new\n");
        EXPECT_EQ(read_file(live), "old\n");
        staged.commit();
        EXPECT_FALSE(path_exists(staged.temp_path()));
    }
    EXPECT_EQ(read_file(live), "new\n");
    struct stat st {};
    ASSERT_EQ(::stat(live.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    EXPECT_EQ(d.entries(), std::vector<std::string>{"hostd.cfg"});
}

TEST(Files, StagedFileNotCommittedLeavesTheLiveFileAndNothingElse) {
    TempDir d;
    const std::string live = d.path + "/hostd.cfg";
    write_file_atomic(live, "old\n");
    for (Sync sync : {Sync::fsync, Sync::none}) {
        StagedFile staged(live, "rejected\n", 0644, std::nullopt, std::nullopt, sync);
        EXPECT_EQ(d.entries().size(), 2u);
    }
    EXPECT_EQ(read_file(live), "old\n");
    EXPECT_EQ(d.entries(), std::vector<std::string>{"hostd.cfg"});
}

TEST(Files, StagedFileNamesWhatFailed) {
    try {
        StagedFile staged("/nonexistent-hostd-dir/hostd.cfg", "x");
        FAIL() << "staged a file in a missing directory";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent-hostd-dir/.hostd.cfg."), std::string::npos) << e.what();
    }
}

TEST(Files, ReplaceSymlinkRepointsALinkInPlace) {
    TempDir d;
    const std::string link = d.path + "/acme";
    replace_symlink("/dev/loop7", link);
    EXPECT_EQ(fs::read_symlink(link), "/dev/loop7");
    replace_symlink("/dev/loop9", link);
    EXPECT_EQ(fs::read_symlink(link), "/dev/loop9");
    EXPECT_EQ(d.entries(), std::vector<std::string>{"acme"});
}

// hostd removes only what it made: removing a path that is a symlink (a disk link, a record, an
// image, a file in a tenant's data directory) removes the link, never what it points at.
TEST(Files, RemovingASymlinkLeavesWhatItPointsAt) {
    TempDir d;
    const std::string target = d.path + "/not-hostds", link = d.path + "/link";
    write_file_atomic(target, "keep", 0600);
    fs::create_symlink(target, link);
    EXPECT_TRUE(remove_file(link));
    EXPECT_EQ(read_file(target), "keep");
    EXPECT_FALSE(remove_file(link));
}

// A tree handed over with its links, never what they point to.
TEST(ChownTreeRoot, HandsOverEveryEntryAndNoLinkTarget) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    char tmpl[] = "/var/tmp/hostd-chown-test.XXXXXX";
    ASSERT_TRUE(::mkdtemp(tmpl));
    const std::string dir = tmpl;
    const std::string outside = dir + "-outside";
    ASSERT_EQ(::mkdir(outside.c_str(), 0700), 0);
    ASSERT_EQ(::mkdir((dir + "/sub").c_str(), 0700), 0);
    hostd::write_file_atomic(dir + "/sub/file", "x", 0600);
    ASSERT_EQ(::symlink(outside.c_str(), (dir + "/sub/link").c_str()), 0);
    hostd::chown_tree(dir, 4242, 4243);
    struct stat st{};
    for (const std::string p : {dir, dir + "/sub", dir + "/sub/file"}) {
        ASSERT_EQ(::lstat(p.c_str(), &st), 0);
        EXPECT_EQ(st.st_uid, 4242u) << p;
        EXPECT_EQ(st.st_gid, 4243u) << p;
    }
    ASSERT_EQ(::lstat((dir + "/sub/link").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 4242u) << "the link itself";
    ASSERT_EQ(::stat(outside.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u) << "not what it points to";
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::remove_all(outside, ec);
}

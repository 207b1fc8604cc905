#include "backup/stream.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "base/error.h"

using hostd::backup::Stream;
using hostd::backup::stream_argv;

namespace {
Stream stream() {
    return {.bindir = "/usr/lib/postgresql/15/bin", .socket_dir = "/run/hostd-tenant/src", .port = 25001,
            .role = "hostd_backup", .pgdata = "/var/lib/hostd/mnt/br/pgdata", .label = "hostd branch br"};
}
bool has(const std::vector<std::string>& a, const std::string& w) { return std::find(a.begin(), a.end(), w) != a.end(); }
}  // namespace

TEST(Stream, CopiesFromTheSourcesSocketWithItsWalStreamedAndNothingToVerifyOrSync) {
    const auto a = stream_argv(stream());
    EXPECT_EQ(a.front(), "/usr/lib/postgresql/15/bin/pg_basebackup");
    for (const char* w : {"--pgdata=/var/lib/hostd/mnt/br/pgdata", "--host=/run/hostd-tenant/src", "--port=25001",
                          "--username=hostd_backup", "--no-password", "--wal-method=stream", "--checkpoint=fast",
                          "--no-manifest", "--no-sync", "--label=hostd branch br"})
        EXPECT_TRUE(has(a, w)) << w;
    // Every option is one word: no value stands alone where it could be read as an option.
    for (size_t i = 1; i < a.size(); i++) EXPECT_TRUE(a[i].starts_with("--")) << a[i];
}

TEST(Stream, RefusesWhatPgBasebackupWouldReadOtherwise) {
    for (auto bad : {+[](Stream& s) { s.pgdata = "relative"; }, +[](Stream& s) { s.socket_dir = ""; },
                     +[](Stream& s) { s.port = 0; }, +[](Stream& s) { s.role = "-W"; },
                     +[](Stream& s) { s.label = "two\nlines"; }}) {
        Stream s = stream();
        bad(s);
        EXPECT_THROW(stream_argv(s), hostd::Error);
    }
}

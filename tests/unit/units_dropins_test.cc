// The persistent drop-ins systemd writes for a unit's limits (SetUnitProperties): removed with
// the unit, and nothing else.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "units/systemd.h"

namespace fs = std::filesystem;

TEST(ControlDropins, RemovesOnlyTheUnitsOwnDirectoryNeverWhatALinkPointsAt) {
    const fs::path root = fs::temp_directory_path() / ("hostd-dropins-" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root / "hostd-postgres@acme.service.d");
    std::ofstream(root / "hostd-postgres@acme.service.d" / "50-MemoryMax.conf") << "[Service]\n";
    fs::create_directories(root / "other.service.d");
    std::ofstream(root / "other.service.d" / "50-MemoryMax.conf") << "[Service]\n";
    // A unit's drop-in directory that is a link to someone else's.
    fs::create_symlink(root / "other.service.d", root / "hostd-postgres@beta.service.d");

    hostd::units::remove_control_dropins("hostd-postgres@acme.service", root.string());
    hostd::units::remove_control_dropins("hostd-postgres@beta.service", root.string());
    EXPECT_FALSE(fs::exists(root / "hostd-postgres@acme.service.d"));
    EXPECT_FALSE(fs::is_symlink(root / "hostd-postgres@beta.service.d"));
    EXPECT_TRUE(fs::exists(root / "other.service.d" / "50-MemoryMax.conf"));
    fs::remove_all(root);
}

// Small file helpers. Writes that must survive a crash go through write_file_atomic.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace hostd {

// temp file in the same directory, write, fsync, rename over path, fsync the directory.
// A reader sees either the old or the new content, never a mix, even after a power cut.
void write_file_atomic(const std::string& path, const std::string& content, mode_t mode = 0644,
                       std::optional<uid_t> uid = std::nullopt, std::optional<gid_t> gid = std::nullopt);

// The same without the two fsyncs, for files on a filesystem the caller syncs as a whole right
// after (syncfs): on a tenant's fresh filesystem each fsync is a journal commit and a flush
// through the loop device, 4–12 ms apiece, and the one syncfs makes them all durable anyway.
void write_file_replace(const std::string& path, const std::string& content, mode_t mode = 0644,
                        std::optional<uid_t> uid = std::nullopt, std::optional<gid_t> gid = std::nullopt);

// Whole file; throws Errc::not_found if it does not exist, Errc::failed on other errors.
std::string read_file(const std::string& path);

// mkdir -p with the given mode for directories it creates.
void make_dirs(const std::string& path, mode_t mode = 0755);

// unlink; a missing file is fine. Returns whether something was removed.
bool remove_file(const std::string& path);

bool path_exists(const std::string& path);

}  // namespace hostd

// Small file helpers. Every replacement of a file is a temporary file renamed over it
// (StagedFile); writes that must survive a crash go through write_file_atomic.
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

// Whether a replacement is on the disk when the call returns: the new file fsynced before the
// rename and its directory after it; or neither, for a filesystem the caller syncs as a whole.
enum class Sync { fsync, none };

// A file's new content, written beside path under a temporary name but not yet in place: the
// caller can check it (`haproxy -c` on temp_path()) before commit() renames it over path. The
// temporary file is removed if the object goes away uncommitted. write_file_atomic and
// write_file_replace are this plus commit().
class StagedFile {
public:
    StagedFile(std::string path, const std::string& content, mode_t mode = 0644,
               std::optional<uid_t> uid = std::nullopt, std::optional<gid_t> gid = std::nullopt,
               Sync sync = Sync::fsync);
    StagedFile(const StagedFile&) = delete;
    StagedFile& operator=(const StagedFile&) = delete;
    ~StagedFile();

    // ".<name>.<random>.tmp" in path's directory: the suffix file watchers (Traefik) ignore.
    const std::string& temp_path() const { return tmp_; }
    // Renames the temporary file over path (a reader sees the old or the new content, never a
    // mix) and, with Sync::fsync, fsyncs the directory. Call it once.
    void commit();

private:
    std::string path_, tmp_;
    Sync sync_;
    bool committed_ = false;
};

// Points link at target: a symlink made beside link, renamed over it and its directory fsynced,
// so a reader of link finds the old target or the new one, never no link at all.
void replace_symlink(const std::string& target, const std::string& link);

// Whole file; throws Errc::not_found if it does not exist, Errc::failed on other errors.
std::string read_file(const std::string& path);

// The last max bytes of a file ("" when it cannot be read): the end of a log for an error message.
std::string read_tail(const std::string& path, size_t max = 1500);

// mkdir -p with the given mode for directories it creates.
void make_dirs(const std::string& path, mode_t mode = 0755);

// Hands path and everything below it to uid:gid: links themselves (lchown), never what they point
// to, and no link is followed into another directory. Throws naming the first entry it cannot.
void chown_tree(const std::string& path, uid_t uid, gid_t gid);

// unlink; a missing file is fine. Returns whether something was removed.
bool remove_file(const std::string& path);

bool path_exists(const std::string& path);

}  // namespace hostd

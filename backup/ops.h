// pgBackRest run for a tenant: always as the tenant's own OS user (never root), so what a
// tenant planted in its data directory or its repository is read with its own rights only.
// Effects; the argv come from pgbackrest.h.
#pragma once

#include <sys/types.h>

#include <ctime>
#include <string>
#include <vector>

#include "backup/pgbackrest.h"

namespace hostd::backup {

struct RunAs {
    uid_t uid = 0;
    gid_t gid = 0;
};

// The repository directory of one stanza: repo_root (root's, 0711: passable, not listable)
// and in it repo, the tenant's (0700). A directory left by an earlier owner is handed over.
void make_repository(const std::string& repo_root, const std::string& repo, RunAs owner);

// Each throws Errc::failed with pgBackRest's own message.
void stanza_create(const Stanza& s, const Options& o, RunAs as);
void run_backup(const Stanza& s, const Options& o, BackupType type, RunAs as);
Info read_info(const Stanza& s, const Options& o, RunAs as);

// Where a branch's restore and its recovering server run. hostd's: a unit of their own in the
// branch's sandbox (never hostd's own context: both read what the source tenant wrote).
class Recovery {
public:
    virtual ~Recovery() = default;
    // Runs restore to its end, then starts server; returns once the server runs. Throws with
    // what they printed when either fails.
    virtual void start(const std::vector<std::string>& restore, const std::vector<std::string>& server) = 0;
    virtual bool running() = 0;
    virtual std::string output() = 0;  // the end of what they printed
    virtual void stop() = 0;           // a fast shutdown of the server, waited for
};
// A repository directory as the disk sees it, walked without following links or crossing
// into other filesystems (a tenant owns what is inside): the bytes its files take on disk
// (st_blocks) and when the newest WAL segment arrived (the newest mtime of a segment file
// under archive/; 0: none). Metadata only: no file is opened. Throws when repo cannot be read.
struct RepoUsage {
    uint64_t bytes = 0;
    std::time_t last_wal = 0;
    // On a repository host (which runs the scheduled backups): its last scheduled backup's
    // error, "" when it succeeded.
    std::string scheduled_error;
};
RepoUsage repository_usage(const std::string& repo);

// A branch's cluster: the source's backup restored into pgdata (empty, on the branch's own
// disk), then recovered to the target by a PostgreSQL of its own, started as the source's user
// on a socket in work_dir only (no TCP), promoted, given admin_password for admin_role, and
// stopped cleanly. pgdata is left owned by the source's user: the caller hands it over.
struct Branch {
    Stanza source;        // the source's stanza (its repository)
    RunAs source_user;
    std::string pgdata;   // where the branch's cluster goes
    std::string work_dir; // the branch's: pgBackRest's locks, the socket of the recovering server
    std::string bindir;   // PostgreSQL's
    Target target;
    std::string admin_role, admin_password;
    int timeout_s = 600;  // for the recovery to reach its target
};
void restore_branch(const Branch& b, const Options& o, Recovery& run);

// The timeline history files in pgdata's pg_wal that PostgreSQL has not queued for the archive
// (the recovering server of restore_branch runs without archiving) marked ready, so the
// tenant's own archiver pushes them when it starts. A tenant restored into its own stanza
// needs its new timeline's history there: without it a later recovery from the older backups
// stays on the old timeline and misses everything since. Files owned by as.
void queue_history_files(const std::string& pgdata, RunAs as);

}  // namespace hostd::backup

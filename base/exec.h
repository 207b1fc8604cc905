// Run a program with an argv vector (never a shell), a clean environment, optional
// credentials, and captured output.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

namespace hostd {

struct ExecOptions {
    std::vector<std::string> argv;          // argv[0] is an absolute path or found in PATH
    std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8"};
    std::optional<uid_t> uid;               // drop to this user (and gid) in the child
    std::optional<gid_t> gid;
    std::string cwd;                        // empty: "/"
    std::string input;                      // written to the child's stdin (a pipe owned by uid), then closed
    std::chrono::milliseconds timeout{120000};
};

struct ExecResult {
    int exit_code = -1;      // exit status, or 128+signal when killed by a signal
    std::string out;
    std::string err;
};

// Held shared by exec() from fork until the child has exec'd (until then the child holds
// copies of every fd of this process, O_CLOEXEC ones included). Take it exclusively around
// an fd whose lifetime matters to others, such as an O_EXCL claim on a block device, so no
// child can keep it alive after it is closed.
std::shared_mutex& fd_inheritance_lock();

// Runs to completion. Throws hostd::Error only when the program cannot be started
// or times out (then it is killed).
ExecResult exec(const ExecOptions& opts);

// Like exec(), but a non-zero exit throws Errc::failed with "<what>: <last stderr line(s)>".
ExecResult exec_checked(const ExecOptions& opts, const std::string& what);

// How a library runs a program it needs (mkfs, initdb): run_checked (exec_checked) unless the
// caller passes another runner, such as hostd's warm pool, which starts the program in an
// idle-weight unit of its own (hostd/effects_real.cc). Throws as exec_checked does.
using Runner = std::function<void(const ExecOptions&, const std::string& what)>;
void run_checked(const ExecOptions& opts, const std::string& what);

}  // namespace hostd

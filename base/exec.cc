#include "base/exec.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "base/fd.h"

namespace hostd {
namespace {

struct Pipe {
    Fd read, write;
};

Pipe make_pipe() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) throw_errno(errno, "Failed to create a pipe");
    return {Fd(p[0]), Fd(p[1])};
}

std::vector<char*> c_array(const std::vector<std::string>& v) {
    std::vector<char*> out;
    out.reserve(v.size() + 1);
    for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
    out.push_back(nullptr);
    return out;
}

std::string tail_lines(const std::string& s, size_t max_chars = 600) {
    std::string t = s;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    if (t.size() > max_chars) t = "..." + t.substr(t.size() - max_chars);
    for (auto& c : t)
        if (c == '\n') c = ' ';
    return t;
}

}  // namespace

std::shared_mutex& fd_inheritance_lock() {
    static std::shared_mutex m;
    return m;
}

ExecResult exec(const ExecOptions& opts) {
    if (opts.argv.empty()) throw Error(Errc::failed, "exec: empty argv");
    // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
    auto argv = c_array(opts.argv);
    auto envp = c_array(opts.env);
    const char* cwd = opts.cwd.empty() ? "/" : opts.cwd.c_str();
    Pipe in = make_pipe(), out = make_pipe(), err = make_pipe();
    Pipe status = make_pipe();  // carries errno if exec fails; closed by a successful exec
    // A child that drops privileges may reopen its stdin by name (/dev/stdin, as initdb does
    // with --pwfile); reopening a pipe checks the pipe's owner, so hand the pipe to that user.
    if ((opts.uid || opts.gid) && ::fchown(in.read.get(), opts.uid ? *opts.uid : -1, opts.gid ? *opts.gid : -1) < 0)
        throw_errno(errno, "Failed to hand stdin to the user of '" + opts.argv[0] + "'");

    std::shared_lock inheritance(fd_inheritance_lock());
    pid_t pid = ::fork();
    if (pid < 0) throw_errno(errno, "Failed to fork for '" + opts.argv[0] + "'");
    if (pid == 0) {
        ::dup2(in.read.get(), 0);
        ::dup2(out.write.get(), 1);
        ::dup2(err.write.get(), 2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        int e = 0;
        if (opts.gid && (::setgroups(0, nullptr) < 0 || ::setresgid(*opts.gid, *opts.gid, *opts.gid) < 0)) e = errno;
        if (!e && opts.uid && ::setresuid(*opts.uid, *opts.uid, *opts.uid) < 0) e = errno;
        if (!e && ::chdir(cwd) < 0) e = errno;
        if (!e) {
            if (std::strchr(argv[0], '/'))
                ::execve(argv[0], argv.data(), envp.data());
            else
                ::execvpe(argv[0], argv.data(), envp.data());
            e = errno;
        }
        (void)!::write(status.write.get(), &e, sizeof e);
        ::_exit(127);
    }
    in.read.reset();
    out.write.reset();
    err.write.reset();
    status.write.reset();

    int child_errno = 0;
    ssize_t n = ::read(status.read.get(), &child_errno, sizeof child_errno);
    inheritance.unlock();  // the child has exec'd (or failed to): it holds none of our fds now
    if (n == sizeof child_errno) {
        ::waitpid(pid, nullptr, 0);
        throw_errno(child_errno, "Failed to run '" + opts.argv[0] + "'");
    }

    // Feed stdin and drain stdout/stderr together, so neither side blocks on a full pipe.
    ::fcntl(in.write.get(), F_SETFL, O_NONBLOCK);
    size_t written = 0;
    if (opts.input.empty()) in.write.reset();
    ExecResult r;
    auto deadline = std::chrono::steady_clock::now() + opts.timeout;
    bool timed_out = false;
    while (out.read || err.read) {
        pollfd fds[3];
        int nfds = 0;
        if (out.read) fds[nfds++] = {out.read.get(), POLLIN, 0};
        if (err.read) fds[nfds++] = {err.read.get(), POLLIN, 0};
        if (in.write) fds[nfds++] = {in.write.get(), POLLOUT, 0};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        int pr = ::poll(fds, nfds, static_cast<int>(left.count()));
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) break;
        for (int i = 0; i < nfds; i++) {
            if (!fds[i].revents) continue;
            if (in.write && fds[i].fd == in.write.get()) {
                ssize_t w = ::write(in.write.get(), opts.input.data() + written, opts.input.size() - written);
                if (w > 0) written += static_cast<size_t>(w);
                if (w < 0 && errno != EAGAIN) written = opts.input.size();
                if (written >= opts.input.size()) in.write.reset();
                continue;
            }
            Fd& src = (out.read && fds[i].fd == out.read.get()) ? out.read : err.read;
            std::string& dst = (&src == &out.read) ? r.out : r.err;
            char buf[8192];
            ssize_t got = ::read(src.get(), buf, sizeof buf);
            if (got > 0)
                dst.append(buf, static_cast<size_t>(got));
            else if (got == 0 || errno != EINTR)
                src.reset();
        }
    }
    if (timed_out) ::kill(pid, SIGKILL);
    int ws = 0;
    while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    if (timed_out)
        throw Error(Errc::unavailable, "'" + opts.argv[0] + "' did not finish within " +
                                           std::to_string(opts.timeout.count()) + " ms and was killed");
    r.exit_code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    return r;
}

ExecResult exec_checked(const ExecOptions& opts, const std::string& what) {
    ExecResult r = exec(opts);
    if (r.exit_code != 0) {
        std::string detail = tail_lines(r.err.empty() ? r.out : r.err);
        throw Error(Errc::failed, what + " ('" + opts.argv[0] + "' exited with " + std::to_string(r.exit_code) +
                                      (detail.empty() ? ")" : "): " + detail));
    }
    return r;
}

void run_checked(const ExecOptions& opts, const std::string& what) { exec_checked(opts, what); }

}  // namespace hostd

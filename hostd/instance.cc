#include "hostd/instance.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/error.h"
#include "base/fs.h"

namespace hostd {

InstanceLock::InstanceLock(const std::string& path) {
    make_dirs(path.substr(0, path.rfind('/')), 0755);
    fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd_) throw_errno(errno, "Failed to open the lock file '" + path + "'");
    if (::flock(fd_.get(), LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK) throw_errno(errno, "Failed to lock '" + path + "'");
        char buf[32] = {};
        ssize_t n = ::pread(fd_.get(), buf, sizeof buf - 1, 0);
        std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
        while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
        if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) pid = "unknown";
        throw Error(Errc::conflict, "Another hostd is running (PID " + pid + ", holding " + path +
                                        "); this one stops without touching the socket, the state or its operations. "
                                        "Stop the other first (systemctl stop hostd), or give this one other paths with -c");
    }
    const std::string me = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_.get(), 0) < 0 || ::pwrite(fd_.get(), me.data(), me.size(), 0) != static_cast<ssize_t>(me.size()))
        throw_errno(errno, "Failed to write the PID into '" + path + "'");
}

std::string socket_lock_path(const Config& cfg) {
    return cfg.socket_path.substr(0, cfg.socket_path.rfind('/') + 1) + "hostd.lock";
}

std::string state_lock_path(const Config& cfg) { return cfg.state_dir + "/hostd.lock"; }

uint64_t files_needed(const Config& cfg) {
    // The waker's relays ([hibernate]): two sockets each.
    return cfg.api_max_connections * 16 + cfg.metrics_max_connections + 256 + (hibernate_on(cfg) ? 2 * cfg.hibernate_max_relays : 0);
}

std::string raise_file_limit(uint64_t need) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) < 0) return "Failed to read the open-file limit";
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? need : std::min<rlim_t>(need, rl.rlim_max);
        if (::setrlimit(RLIMIT_NOFILE, &rl) < 0) return "Failed to raise the open-file limit";
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        return "The open-file limit (" + std::to_string(rl.rlim_cur) + ") is below the " + std::to_string(need) +
               " that api.max_connections and metrics.max_connections may need: raise LimitNOFILE= of hostd.service "
               "(or lower those settings)";
    return "";
}

}  // namespace hostd

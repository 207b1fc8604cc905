// The real machine: storage/ (libblkid, libmount, loop ioctls), units/ (sd-bus, useradd),
// pgconf/ (initdb, libpq), routes/ (haproxy -c + reload).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/curl.h"
#include "base/error.h"
#include "base/exec.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/size.h"
#include "base/strings.h"
#include "backup/ops.h"
#include "backup/stream.h"
#include "hostd/effects.h"
#include "hostd/etcd_admin.h"
#include "hostd/ha_api.h"
#include "hostd/log.h"
#include "hostd/observe.h"
#include "hostd/patroni_client.h"
#include "hostd/repoclient.h"
#include "model/layout.h"
#include "model/patroni.h"
#include "pgconf/pgconf.h"
#include "pgconf/settings.h"
#include "pgconf/tls.h"
#include "pool/pool.h"
#include "storage/storage.h"
#include "units/systemd.h"
#include "units/template.h"

namespace hostd {
namespace {

long ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count());
}

// Points the tenant's link at the device of the filesystem hostd mounted (and whose marker it
// checked); the unit mounts what the link names (MountImages= in the template), so it never
// mounts anything hostd has not checked.
void link_disk(const TenantLayout& l) {
    auto src = storage::mounted_source(l.mountpoint);
    if (!src)
        throw Error(Errc::unavailable, "Tenant '" + l.name + "' has no filesystem mounted at '" + l.mountpoint +
                                           "'; run hostctl reconcile");
    make_dirs(std::string(layout::kDiskLinks), 0700);
    replace_symlink(*src, l.disk_link);
}

// A host name's addresses, space-separated (an address stays itself); the name when it does not
// resolve (the unit then has no address wall, and pgBackRest says what failed).
std::string addresses_of(const std::string& host) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res) return host;
    std::set<std::string> out;
    for (addrinfo* a = res; a; a = a->ai_next) {
        char buf[INET6_ADDRSTRLEN] = {};
        const void* p = a->ai_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                                                : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
        if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) && ::inet_ntop(a->ai_family, p, buf, sizeof buf)) out.insert(buf);
    }
    ::freeaddrinfo(res);
    std::string joined;
    for (const auto& a : out) joined += (joined.empty() ? "" : " ") + a;
    return joined.empty() ? host : joined;
}

// A unit written for one job on a branch's new disk (its recovery, its copy), named as
// units::recovery_unit_name says so leftovers are found alike: its file under the runtime unit
// directory and its log. Gone with this object: the file and the loaded unit, and the log
// once the job succeeded (ok).
class OneOffUnit {
public:
    explicit OneOffUnit(const TenantLayout& branch) : branch_(branch) {
        char nonce[9];
        std::snprintf(nonce, sizeof nonce, "%08x", static_cast<unsigned>(std::random_device{}()));
        name = units::recovery_unit_name(branch.name, nonce);
        file = std::string(layout::kRuntimeUnitDir) + "/" + name;
        log = std::string(layout::kRecoveryLogs) + "/" + name + ".log";
    }
    OneOffUnit(const OneOffUnit&) = delete;
    OneOffUnit& operator=(const OneOffUnit&) = delete;
    ~OneOffUnit() {
        remove_file(file);
        try {
            sd.reset_failed(name);  // a failed unit would stay loaded
        } catch (const Error&) {
        }
        if (ok) remove_file(log);
    }
    // Its file; the branch's disk linked first (the unit mounts it through the link).
    void write(const std::string& text) {
        make_dirs(std::string(layout::kRecoveryLogs), 0700);
        make_dirs(std::string(layout::kRuntimeUnitDir), 0755);
        link_disk(branch_);
        write_file_atomic(file, text, 0644);
    }
    // The end of what it printed, "" when nothing.
    std::string tail() const {
        std::string t = read_tail(log);
        while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
        return t;
    }

    units::Systemd sd = units::Systemd::connect();
    std::string name, file, log;
    bool ok = false;

private:
    TenantLayout branch_;
};

// A branch's restore and recovering server in a unit written for this one recovery, in the
// branch's sandbox as the source's user (units::render_recovery_unit). Removed when done; its
// log is kept if the recovery failed.
class UnitRecovery final : public backup::Recovery {
public:
    UnitRecovery(const Config& cfg, const TenantLayout& branch, const TenantLayout& source, int timeout_s)
        : cfg_(cfg), source_(source), timeout_s_(timeout_s), unit_(branch), branch_name_(branch.name) {}
    UnitRecovery(const UnitRecovery&) = delete;
    UnitRecovery& operator=(const UnitRecovery&) = delete;
    ~UnitRecovery() override {
        try {
            if (started_ && !stopped_) stop();  // before unit_'s own cleanup
        } catch (const Error& e) {
            log::error("Stopping " + unit_.name + ": " + e.what(), branch_name_);
        }
    }

    void start(const std::vector<std::string>& restore, const std::vector<std::string>& server) override {
        units::RecoveryUnit r{.user = source_.os_user,
                              .source_repo = source_.backup_remote.empty() ? source_.backup_repo : source_.backup_remote,
                              .restore = restore,
                              .server = server, .log = unit_.log, .timeout_s = static_cast<uint64_t>(timeout_s_)};
        units::TemplatePaths paths = layout::template_paths(cfg_);
        // The repository host by address: the unit may reach it and nothing else.
        if (!paths.repo_host_address.empty()) paths.repo_host_address = addresses_of(paths.repo_host_address);
        unit_.write(units::render_recovery_unit(paths, r));
        started_ = true;
        try {
            unit_.sd.start(unit_.name, std::chrono::seconds(timeout_s_ + 30));
        } catch (const Error& e) {
            throw Error(Errc::failed, "Restoring the backup of '" + source_.name + "' failed: " + output() +
                                          " (unit " + unit_.name + ": " + e.what() + ")");
        }
    }
    bool running() override { return unit_.sd.status(unit_.name).active_state == "active"; }
    std::string output() override {
        const std::string t = unit_.tail();
        return t.empty() ? "(nothing printed; journalctl -u " + unit_.name + ")" : t + " (log: " + unit_.log + ")";
    }
    void stop() override {
        stopped_ = true;
        unit_.sd.stop(unit_.name, std::chrono::seconds(150));
    }
    void succeeded() { unit_.ok = true; }

private:
    const Config& cfg_;
    TenantLayout source_;
    int timeout_s_;
    OneOffUnit unit_;
    std::string branch_name_;
    bool started_ = false, stopped_ = false;
};

// pg_basebackup of a running source (argv) into a branch's disk, in a unit of its own (the
// branch's sandbox, as the source's user: what it reads is the source tenant's). Throws with
// pg_basebackup's words when it fails.
void stream_copy(const Config& cfg, const TenantLayout& branch, const std::string& source_user,
                 const std::vector<std::string>& argv, std::chrono::seconds timeout) {
    OneOffUnit unit(branch);
    unit.write(units::render_stream_unit(layout::template_paths(cfg), {.user = source_user, .copy = argv, .log = unit.log,
                                                                       .timeout_s = static_cast<uint64_t>(timeout.count())}));
    try {
        unit.sd.start(unit.name, timeout + std::chrono::seconds(30));
    } catch (const Error& e) {
        const std::string t = unit.tail();
        throw Error(Errc::failed, (t.empty() ? std::string("pg_basebackup failed") : t) + " (unit " + unit.name + ": " + e.what() +
                                      (t.empty() ? "" : "; log: " + unit.log) + ")");
    }
    unit.ok = true;
}

// The warm pool's OS user, and where its disks are mounted while they are prepared (hostd's
// mount namespace; never below mount_root, where the reconciler reads mounts as tenants').
constexpr std::string_view kPoolUser = "hostd-pool";
constexpr std::string_view kPoolMounts = "/run/hostd/pool";
// The refill's units' stdin (initdb's password) and output: root's only, removed after each run.
constexpr std::string_view kPoolJobs = "/run/hostd/pool-jobs";
// How long a refill's program may take: at idle weight on a busy machine it waits for idle CPU.
constexpr auto kPoolJobTimeout = std::chrono::minutes(10);

// The absolute path of a program named without one (systemd's ExecStart= wants it), from
// exec's PATH.
std::string absolute_program(const std::string& name) {
    if (name.empty() || name.front() == '/') return name;
    for (const char* dir : {"/usr/sbin", "/usr/bin", "/sbin", "/bin"}) {
        const std::string p = std::string(dir) + "/" + name;
        if (::access(p.c_str(), X_OK) == 0) return p;
    }
    throw Error(Errc::unavailable, name + " is not installed (looked in /usr/sbin, /usr/bin, /sbin, /bin)");
}

// The unit files the warm pool's jobs left in systemd's runtime unit directory.
void remove_pool_job_units() {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(std::string(layout::kRuntimeUnitDir), ec)) {
        const std::string n = e.path().filename().string();
        if (n.starts_with("hostd-pool-") && n.ends_with(".service")) remove_file(e.path().string());
    }
}

// One program of the warm pool's refill (mkfs, initdb) in a unit of its own at idle weight
// (units::render_idle_job_unit), waited for; its stdin and output removed after it, its unit file
// at the next job.
// What it printed is in the error when it fails. mount_device/target: the disk mounted in the
// unit's namespace too (hostd's mounts are private to hostd).
void run_pool_job(const Config& cfg, const std::string& id, const std::string& program, const ExecOptions& o,
                  const std::string& what, const std::string& mount_device = "", const std::string& mount_target = "") {
    const std::string unit = units::idle_job_unit_name(id, program);
    const std::string dir(kPoolJobs);
    make_dirs(dir, 0700);
    const std::string file = std::string(layout::kRuntimeUnitDir) + "/" + unit;
    const std::string log = dir + "/" + unit + ".log";
    const std::string input = o.input.empty() ? "" : dir + "/" + unit + ".in";
    std::vector<std::string> argv = o.argv;
    argv.at(0) = absolute_program(argv.at(0));
    units::IdleJob j{.description = "warm pool disk " + id + ": " + program,
                     .argv = argv,
                     .env = o.env,
                     .user = o.uid ? std::to_string(*o.uid) : "",
                     .group = o.gid ? std::to_string(*o.gid) : "",
                     .input = input,
                     .log = log,
                     .mount_device = mount_device,
                     .mount_target = mount_target,
                     .mount_options = mount_device.empty() ? "" : cfg.mount_options,
                     .timeout_s = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(kPoolJobTimeout).count())};
    auto sd = units::Systemd::connect();
    bool ok = false;
    auto cleanup = [&](bool unit_file) {
        if (unit_file) remove_file(file);
        if (!input.empty()) remove_file(input);
        remove_file(log);
        try {
            sd.reset_failed(unit);  // a failed unit would stay loaded
        } catch (const Error&) {
        }
    };
    try {
        // The unit files of the jobs before this one go now, not when each ended: a unit
        // directory that changed makes systemd read every unit directory again at the next
        // load of a unit it does not know (a tenant's first start: 10 ms and more, growing with
        // the units). Changed here, just before this job's own load reads them anyway, it is
        // read again on the refill's time, not on a create's.
        remove_pool_job_units();
        remove_file(log);
        // initdb's password: in a 0400 file on /run (memory) in root's 0700 directory, opened by
        // systemd as stdin, removed after. It is the job's user's: initdb reopens /dev/stdin,
        // which checks the file's own permissions (no one else can reach it through the directory).
        if (!input.empty())
            write_file_atomic(input, o.input, 0400, o.uid, o.gid);
        write_file_atomic(file, units::render_idle_job_unit(j), 0644);
        sd.start(unit, kPoolJobTimeout + std::chrono::seconds(30));
        ok = true;
    } catch (const Error& e) {
        std::string out = read_tail(log);
        while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
        try {
            sd.stop(unit, std::chrono::seconds(30));  // one that hostd stopped waiting for
        } catch (const Error&) {
        }
        cleanup(true);
        throw Error(Errc::failed, what + ": " + (out.empty() ? "(nothing printed)" : out) + " (unit " + unit + ": " + e.what() + ")");
    }
    if (ok) cleanup(false);  // its unit file stays until the next job (or hostd's next start)
}

bool can_bind(int family, uint16_t port) {
    Fd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return family == AF_INET6;  // no IPv6 on this host: nothing can listen there
    if (family == AF_INET6) {
        int one = 1;
        ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(port);
        a.sin6_addr = in6addr_any;
        return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 || errno == EADDRNOTAVAIL;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

std::string marker_text(const TenantRecord& t) { return layout::marker_text(t.name, t.fs_uuid); }

std::string read_marker(const TenantLayout& l) {
    try {
        return read_file(l.marker);
    } catch (const Error&) {
        return "";
    }
}

class RealEffects final : public Effects {
public:
    explicit RealEffects(const Config& cfg)
        : cfg_(cfg),
          ca_{.cert = cfg.state_dir + "/ca/ca.crt", .key = cfg.state_dir + "/ca/ca.key"},
          route_writer_(make_route_writer(cfg)) {}

    bool port_free(uint16_t port) override { return can_bind(AF_INET, port) && can_bind(AF_INET6, port); }

    void create_image(const std::string& path, uint64_t size) override {
        make_dirs(std::filesystem::path(path).parent_path().string(), 0700);
        storage::create_sparse_file(path, size);
    }
    void remove_image(const std::string& path) override { remove_file(path); }
    std::string attach_image(const std::string& path) override {
        // One attach at a time in this process: concurrent creates would otherwise race for
        // the same free device.
        std::lock_guard g(attach_mu_);
        if (auto dev = storage::loop_find(path)) return *dev;
        return storage::loop_attach(path);
    }
    void detach_image(const std::string& path) override {
        // Only a loop device backed by the image file itself: loop_find follows a symlink, and
        // whatever one in loop_dir points at is not hostd's image.
        struct stat st {};
        if (::lstat(path.c_str(), &st) < 0) return;  // no image: loop_find would find nothing either
        if (!S_ISREG(st.st_mode)) {
            log::warning("'" + path + "' is not a regular file (not an image hostd made): its loop device is left alone");
            return;
        }
        if (auto dev = storage::loop_find(path)) storage::loop_detach(*dev);
    }
    storage::DeviceCheck check_device(const std::string& device, bool force) override {
        return storage::check_device(device, force);
    }
    void erase_signatures(const std::string& device) override { storage::erase_signatures(device); }
    void wipe_device(const std::string& device, const std::string& fs_uuid) override {
        if (fs_uuid.empty() || storage::probe(device).uuid != fs_uuid) return;
        storage::wipe_device(device);
    }
    Located locate_device(const TenantRecord& t) override {
        std::string dev = t.device;
        bool there = false;
        try {
            there = !t.fs_uuid.empty() && lower(storage::probe(t.device).uuid) == lower(t.fs_uuid);
        } catch (const Error&) {  // no such device any more: look for the filesystem
        }
        if (!there && !t.fs_uuid.empty())
            if (auto found = storage::find_filesystem(t.fs_uuid)) dev = *found;
        const std::string id = storage::stable_id(dev);
        if (!t.device_id.empty() && !id.empty() && id != t.device_id)
            log::warning("The disk " + dev + " carries the filesystem (UUID " + t.fs_uuid + ") but is " + id +
                             ", not " + t.device_id + " as recorded: a copy on another disk?",
                         t.name);
        return {.device = dev, .device_id = id};
    }
    DiskFacts disk_facts(const TenantRecord& t, const TenantLayout& l) override {
        DiskFacts f;
        f.mounted = storage::mounted_source(l.mountpoint).has_value();
        try {
            const std::string a = units::Systemd::connect().status(l.unit).active_state;
            f.unit_running = a == "active" || a == "activating" || a == "reloading" || a == "deactivating";
        } catch (const Error& e) {
            // Cannot tell: not a disk that is gone for sure.
            throw Error(Errc::unavailable, "Cannot ask systemd whether " + l.unit + " runs: " + e.what());
        }
        if (!t.fs_uuid.empty())
            if (auto dev = storage::find_filesystem(t.fs_uuid)) f.found_at = *dev;
        auto describe = [&](const storage::ProbeResult& p) {
            if (p.has_partition_table) return "a " + p.partition_table_type + " partition table";
            return "a " + (p.type.empty() ? std::string("signature") : p.type + " signature") +
                   (p.uuid.empty() ? "" : " (UUID " + p.uuid + ")");
        };
        if (t.spec.backend == "loop") {
            const std::string& image = t.image.empty() ? l.image : t.image;
            struct stat st {};
            if (::lstat(image.c_str(), &st) < 0) {
                if (errno != ENOENT) throw_errno(errno, "Failed to look at " + image);
                return f;  // absent
            }
            if (!S_ISREG(st.st_mode)) {
                f.media = DiskFacts::Media::data;
                f.detail = "not a regular file";
                return f;
            }
            const storage::ProbeResult p = storage::probe(image);
            if (p.has_signature && !t.fs_uuid.empty() && lower(p.uuid) == lower(t.fs_uuid)) {
                f.found_at = image;  // its filesystem, on an image no loop device backs
                return f;
            }
            f.media = p.has_signature || p.has_partition_table ? DiskFacts::Media::data
                      : st.st_blocks == 0                      ? DiskFacts::Media::blank
                                                               : DiskFacts::Media::data;
            f.detail = p.has_signature || p.has_partition_table ? describe(p)
                       : st.st_blocks == 0                      ? ""
                                                                : "no signature, " + std::to_string(st.st_blocks * 512) + " bytes written";
            return f;
        }
        const std::string& dev = t.device.empty() ? t.spec.device : t.device;
        struct stat st {};
        if (dev.empty() || ::stat(dev.c_str(), &st) < 0) {
            f.detail = dev.empty() ? "none recorded" : "no such device";
            return f;  // absent
        }
        const std::string id = storage::stable_id(dev);
        if (!t.device_id.empty() && !id.empty() && id != t.device_id) {
            f.other_disk = true;
            f.detail = id;
        }
        try {
            storage::check_device(dev, /*force=*/false);
            f.media = DiskFacts::Media::blank;
        } catch (const Error& e) {
            f.media = DiskFacts::Media::data;
            f.detail = f.other_disk ? f.detail : e.what();
        }
        return f;
    }
    LoopSpace loop_space(const std::vector<std::string>& images) override {
        LoopSpace s;
        // loop_dir is made with the first image: until then, the filesystem it will be on.
        std::filesystem::path dir = cfg_.loop_dir;
        struct statvfs v {};
        while (::statvfs(dir.c_str(), &v) < 0) {
            if (errno != ENOENT || !dir.has_relative_path()) throw_errno(errno, "Failed to read the free space under " + cfg_.loop_dir);
            dir = dir.parent_path();
        }
        s.available = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
        for (const auto& image : images) {
            struct stat st {};
            if (::stat(image.c_str(), &st) == 0) s.written += static_cast<uint64_t>(st.st_blocks) * 512;
        }
        return s;
    }
    void format(const std::string& device, const std::string& fs, const std::string& label, const std::string& uuid) override {
        storage::make_filesystem(device, fs, label, uuid);
    }

    void mount(const TenantRecord& t, const TenantLayout& l, bool fresh) override {
        const std::string& target = l.mountpoint;
        make_dirs(cfg_.mount_root, 0755);
        if (auto src = storage::mounted_source(target)) {
            // Already mounted (a retry): only fine if it is this tenant's filesystem.
            check_marker(t, l);
            return;
        }
        if (::mkdir(target.c_str(), 0755) < 0 && errno != EEXIST) throw_errno(errno, "Failed to create '" + target + "'");
        storage::mount_by_uuid(t.fs_uuid, target, cfg_.mount_options, t.device);
        try {
            if (fresh) {
                // Root-owned 0711: the tenant can reach its pgdata but not replace the marker.
                if (::chmod(target.c_str(), 0711) < 0) throw_errno(errno, "Failed to chmod '" + target + "'");
                write_file_atomic(l.marker, marker_text(t), 0644);
            } else {
                check_marker(t, l);
            }
        } catch (...) {
            storage::unmount(target);
            throw;
        }
    }

    void unmount(const TenantLayout& l) override {
        const std::string& target = l.mountpoint;
        // Only the tenant's own filesystem: whatever else is mounted there stays.
        if (storage::mounted_source(target) && !layout::marker_names(read_marker(l), l.name))
            throw Error(Errc::refused, "The filesystem at '" + target + "' is not tenant '" + l.name +
                                           "''s (its marker file " + std::string(layout::kMarkerName) +
                                           " is missing or names another tenant); hostd leaves it mounted");
        remove_file(l.disk_link);
        remove_file(l.env_file);
        storage::unmount(target);
        if (::rmdir(target.c_str()) < 0 && errno != ENOENT && errno != ENOTEMPTY)
            throw_errno(errno, "Failed to remove mount point '" + target + "'");
    }

    void grow_image(const std::string& path, uint64_t size) override { storage::grow_image(path, size); }
    uint64_t device_size(const std::string& device) override { return storage::device_size(device); }
    void grow_filesystem(const TenantRecord& t, const TenantLayout& l) override {
        storage::grow_filesystem(t.device, l.mountpoint, t.spec.filesystem);
    }
    void grow_offline(const TenantRecord& t) override { storage::grow_filesystem_offline(t.device, t.spec.filesystem); }
    bool grows_online(const TenantRecord& t) override {
        if (t.spec.filesystem != "ext4") return true;
        // The kernel grows a mounted ext4 only for a caller with CAP_SYS_RESOURCE (effective).
        try {
            const std::string status = read_file("/proc/self/status");
            const auto at = status.find("CapEff:");
            if (at == std::string::npos) return true;  // cannot tell: try online, fall back as before
            const uint64_t eff = std::stoull(status.substr(at + 7, status.find('\n', at) - at - 7), nullptr, 16);
            return (eff >> 24) & 1;  // CAP_SYS_RESOURCE
        } catch (const std::exception&) {
            return true;
        }
    }
    std::optional<storage::DiskStats> disk_usage(const TenantLayout& l) override {
        const std::string& mp = l.mountpoint;
        // A mount point has another device than the directory it is in: two stats instead of a
        // parse of the mount table (the guard asks this for every tenant twice a second).
        struct stat here {}, parent {};
        if (::stat(mp.c_str(), &here) < 0 || ::stat(cfg_.mount_root.c_str(), &parent) < 0 || here.st_dev == parent.st_dev)
            return std::nullopt;
        return storage::disk_stats(mp);
    }
    void ensure_reserve(const TenantLayout& l, uint64_t bytes) override { storage::ensure_reserve(l.reserve, bytes); }
    uint64_t release_reserve(const TenantLayout& l) override { return storage::release_reserve(l.reserve); }
    void set_read_only(const TenantRecord& t, const TenantLayout& l, bool on) override {
        const std::string& path = l.guard_conf;
        if (on) {
            auto u = units::find_user(t.os_user);
            if (!u) throw Error(Errc::failed, "OS user '" + t.os_user + "' of tenant '" + t.name + "' is missing; run hostctl reconcile");
            write_file_atomic(path, pgconf::render_guard_conf(), 0600, u->uid, u->gid);
        } else {
            remove_file(path);
        }
        if (unit_active(l)) units::Systemd::connect().reload(l.unit);
    }

    units::OsUser create_user(const std::string& name, const std::string& home) override {
        return units::create_user(name, home, {cfg_.user_ids.first, cfg_.user_ids.second});
    }
    void delete_user(const std::string& name) override {
        if (units::delete_user(name) == units::Removed::not_hostds)
            log::warning("OS user '" + name + "' was not made by hostd (its comment is not '" +
                         std::string(units::kUserMarker) + "'): left alone");
    }
    std::optional<units::OsUser> find_user(const std::string& name) override { return units::find_user(name); }

    Inventory inventory() override {
        using namespace layout;
        Inventory inv;
        for (auto& [unit, active] : units::Systemd::connect().list_units(unit_patterns()))
            if (active != "inactive")
                if (auto name = tenant_of_unit(unit); !name.empty())
                    (kind_of_unit(unit) == UnitKind::patroni ? inv.patroni_units : inv.units).insert(name);
        for (auto& m : storage::mounts_below(cfg_.mount_root))
            if (auto name = tenant_of_mount(m); !name.empty()) inv.mounts.insert(name);
        std::error_code ec;
        for (auto& e : std::filesystem::directory_iterator(cfg_.loop_dir, ec))
            if (auto name = tenant_of_image(e.path().filename().string());
                !name.empty() && e.is_regular_file(ec) && !e.is_symlink(ec) && storage::loop_find(e.path().string()))
                inv.images.insert(name);
        // SetUnitProperties' drop-ins: <control>/<unit>.d
        for (auto& e : std::filesystem::directory_iterator(std::string(kControlDir), ec)) {
            const std::string n = e.path().filename().string();
            if (n.ends_with(".d"))
                if (auto name = tenant_of_unit(n.substr(0, n.size() - 2)); !name.empty())
                    (kind_of_unit(n) == UnitKind::patroni ? inv.patroni_dropins : inv.dropins).insert(name);
        }
        for (auto& user : units::hostd_users())
            if (auto name = tenant_of_user(user); !name.empty()) inv.users.insert(name);
        return inv;
    }

    void init_cluster(const TenantRecord& t, const TenantLayout& l, const units::OsUser& u) override {
        const std::string& pgdata = l.pgdata;
        if (::mkdir(pgdata.c_str(), 0700) < 0 && errno != EEXIST) throw_errno(errno, "Failed to create '" + pgdata + "'");
        if (::chown(pgdata.c_str(), u.uid, u.gid) < 0) throw_errno(errno, "Failed to chown '" + pgdata + "'");
        pgconf::initdb({.bindir = cfg_.pg_bindir, .pgdata = pgdata, .uid = u.uid, .gid = u.gid,
                        .superuser = t.admin_user, .wal_segsize_mb = cfg_.pg_wal_segsize, .password = t.password},
                       cluster_spec(t));
        write_tenant_files(t, pgdata, u, /*certificate=*/true, /*synced_after=*/true);
        // initdb ran with --no-sync; one syncfs of the tenant's own filesystem is much cheaper.
        pgconf::sync_filesystem(pgdata);
    }

    void adopt_cluster(const TenantRecord& t, const TenantLayout& l, const units::OsUser& u) override {
        const std::string& pgdata = l.pgdata;
        if (!path_exists(pgdata + "/PG_VERSION"))
            throw Error(Errc::failed, "The kept disk of tenant '" + t.name + "' has no PostgreSQL data directory at '" + pgdata + "'");
        struct stat st{};
        if (::stat(pgdata.c_str(), &st) == 0 && (st.st_uid != u.uid || st.st_gid != u.gid)) {
            // The OS user was re-created with another uid: hand the files to it.
            for (auto& e : std::filesystem::recursive_directory_iterator(pgdata))
                ::lchown(e.path().c_str(), u.uid, u.gid);
            ::lchown(pgdata.c_str(), u.uid, u.gid);
        }
        auto spec = cluster_spec(t);
        // The new owners and files made durable by one syncfs of the tenant's filesystem.
        write_file_replace(pgdata + "/postgresql.conf", pgconf::render_postgresql_conf(spec), 0600, u.uid, u.gid);
        write_file_replace(pgdata + "/pg_hba.conf", pgconf::render_pg_hba(spec), 0600, u.uid, u.gid);
        write_file_replace(pgdata + "/pg_ident.conf", pgconf::render_pg_ident(spec), 0600, u.uid, u.gid);
        write_tenant_files(t, pgdata, u, /*certificate=*/true, /*synced_after=*/true);
        pgconf::sync_filesystem(pgdata);
    }

    backup::RunAs run_as(const TenantRecord& t) const {
        auto u = units::find_user(t.os_user);
        if (!u) throw Error(Errc::failed, "OS user '" + t.os_user + "' of tenant '" + t.name + "' is missing; run hostctl reconcile");
        return {u->uid, u->gid};
    }

    // --- A repository host (backup.repo_host) ------------------------------------------------
    std::string server_address() const {
        return cfg_.backup_server_address.empty() ? cfg_.public_host : cfg_.backup_server_address;
    }
    static std::string host_name() {
        char buf[256] = {};
        if (::gethostname(buf, sizeof buf - 1) < 0) throw_errno(errno, "Failed to read the host name");
        return buf;
    }
    // This host's certificate for the repository host's API (CN hostd@<host>), made once.
    RepoHostClient repo_host() {
        pgconf::ensure_ca(ca_);
        const std::string cert = cfg_.state_dir + "/ca/host.crt", key = cfg_.state_dir + "/ca/host.key";
        if (!path_exists(cert) || !path_exists(key)) {
            auto pair = pgconf::issue_cert(ca_, {.cn = "hostd@" + host_name(), .names = {server_address()}, .server = true,
                                                 .client = true});
            write_file_atomic(key, pair.key_pem, 0600);
            write_file_atomic(cert, pair.cert_pem, 0644);
        }
        return RepoHostClient(cfg_.backup_repo_host, {.cert = cert, .key = key, .ca = ca_.cert});
    }
    // The tenant's directory of files for the repository host: root's, its group may read.
    void make_remote_dir(const TenantLayout& l, gid_t gid) {
        make_dirs(std::string(layout::kBackupRemoteDir), 0755);
        if (::mkdir(l.backup_remote.c_str(), 0750) < 0 && errno != EEXIST)
            throw_errno(errno, "Failed to make '" + l.backup_remote + "'");
        struct stat st{};
        if (::lstat(l.backup_remote.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
            throw Error(Errc::failed, "'" + l.backup_remote + "' is not a directory; move it away");
        if (::chown(l.backup_remote.c_str(), 0, gid) < 0 || ::chmod(l.backup_remote.c_str(), 0750) < 0)
            throw_errno(errno, "Failed to hand '" + l.backup_remote + "' to gid " + std::to_string(gid));
    }
    // Its server for the repository host (which lets in only that host's certificate), its own
    // client certificate for its repository there, and the repository made there.
    void prepare_remote(const TenantRecord& t, const TenantLayout& l, const backup::RunAs& as) {
        if (!t.backup_port)
            throw Error(Errc::failed, "Tenant '" + t.name + "' has no port for its pgBackRest server: it was made before "
                                      "backup.repo_host was set; make a branch of it (hostctl create NEW --from " + t.name + ")");
        RepoHostClient client = repo_host();
        // Its backups reach this host with a certificate of the tenant's repository there, named
        // backup.<tenant>.<this host>@<repository host> (the same for every PUT of it).
        const std::string peer = client.peer_name();
        if (!peer.starts_with("hostd@") || peer.size() == 6)
            throw Error(Errc::failed, "The repository host's certificate is '" + peer + "', not a hostd@<host> of hostd's CA");
        const std::string backup_client = "backup." + t.name + "." + host_name() + "@" + peer.substr(6);
        make_remote_dir(l, as.gid);
        const std::string me = t.name + "@" + host_name(), d = l.backup_remote;
        auto client_pair = pgconf::issue_cert(ca_, {.cn = me, .server = false, .client = true});
        auto server_pair = pgconf::issue_cert(ca_, {.cn = me, .names = {server_address()}, .server = true, .client = false});
        write_file_atomic(d + "/client.key", client_pair.key_pem, 0640, 0, as.gid);
        write_file_atomic(d + "/client.crt", client_pair.cert_pem, 0640, 0, as.gid);
        write_file_atomic(d + "/server.key", server_pair.key_pem, 0640, 0, as.gid);
        write_file_atomic(d + "/server.crt", server_pair.cert_pem, 0640, 0, as.gid);
        write_file_atomic(d + "/ca.crt", pgconf::ca_certificate_pem(ca_), 0644);
        write_file_atomic(d + "/server.env",
                          "HOSTD_BACKUP_PORT=" + std::to_string(t.backup_port) + "\nHOSTD_BACKUP_CLIENT=" + backup_client + "\n", 0640, 0,
                          as.gid);
        auto sd = units::Systemd::connect();
        sd.reset_failed(l.backup_server_unit);
        sd.restart(l.backup_server_unit);
        // The repository host's stanza-create reaches the cluster through it at once.
        for (int i = 0; i < 100 && can_bind(AF_INET, t.backup_port); i++) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        const repohost::RepoView b = client.put(t.name, {.host = server_address(), .server_port = t.backup_port,
                                                         .path = l.pgdata, .socket_path = l.socket_dir, .port = t.port,
                                                         .user = std::string(kBackupRole)});
        if (b.backup_client != backup_client)
            throw Error(Errc::failed, "The repository host's backups connect as '" + b.backup_client + "', not as '" +
                                      backup_client + "' which this host's pgBackRest server for '" + t.name + "' lets in");
        write_file_atomic(d + "/pgbackrest.conf",
                          backup::remote_config({.host = repo_host_address(cfg_), .port = b.port,
                                                 .path = b.path, .cert = d + "/client.crt", .key = d + "/client.key",
                                                 .ca = d + "/ca.crt"}),
                          0640, 0, as.gid);
    }

    void stop_backup_server(const TenantLayout& l) {
        try {
            units::Systemd::connect().stop(l.backup_server_unit);
        } catch (const Error& e) {
            if (e.code() != Errc::not_found) throw;
        }
    }

    void forget_remote_backups(const TenantLayout& l, bool best_effort) override {
        if (l.backup_remote.empty()) return;
        stop_backup_server(l);
        try {
            repo_host().remove(l.name);
        } catch (const Error& e) {
            if (!best_effort) throw;
            log::error("The repository of '" + l.name + "' on the repository host " + cfg_.backup_repo_host +
                           " may be left there (" + e.what() + "); remove it there when it is reachable",
                       l.name);
        }
        // Last: while these files are here, the repository there may still be (a retry drops it).
        std::error_code ec;
        std::filesystem::remove_all(l.backup_remote, ec);
        if (ec) throw Error(Errc::failed, "Failed to remove '" + l.backup_remote + "': " + ec.message());
    }

    void retire_remote_backups(const TenantLayout& l) override {
        if (l.backup_remote.empty()) return;
        stop_backup_server(l);
        repo_host().retire(l.name);
    }

    void prepare_backups(const TenantRecord& t, const TenantLayout& l, bool files_current) override {
        if (!l.backups) return;
        const backup::RunAs as = run_as(t);
        // pgBackRest's login: the role, and the peer lines for the tenant's user (a cluster
        // made before backups were on has neither).
        if (!files_current) {
            const auto spec = cluster_spec(t);
            write_file_atomic(l.pgdata + "/pg_hba.conf", pgconf::render_pg_hba(spec), 0600, as.uid, as.gid);
            write_file_atomic(l.pgdata + "/pg_ident.conf", pgconf::render_pg_ident(spec), 0600, as.uid, as.gid);
        }
        pgconf::exec_sql({.host = l.socket_dir, .port = t.port, .user = t.admin_user, .password = t.password,
                          .connect_timeout_s = 2, .sslmode = "disable", .query_timeout_ms = 10000},
                         pgconf::backup_role_sql(std::string(kBackupRole)));
        if (!files_current) units::Systemd::connect().reload(l.unit);
        if (!l.backup_remote.empty()) {
            if (!files_current) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the reload is a signal
            return prepare_remote(t, l, as);
        }
        // stanza-create reads pg_control, no login: the reload need not have landed yet. It
        // takes the stanza's archive lock, which the server's async archive-push holds while it
        // pushes (a restored cluster pushes its new timeline's files at once): waited for.
        for (int i = 0;; i++) {
            try {
                return backup::stanza_create(stanza_of(l, t.port), backup_options(cfg_), as);
            } catch (const Error& e) {
                if (i == 200 || std::string_view(e.what()).find("unable to acquire lock") == std::string_view::npos) throw;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

    void run_backup(const TenantRecord& t, const TenantLayout& l, backup::BackupType type) override {
        if (!l.backup_remote.empty()) return repo_host().backup(t.name, type);
        backup::run_backup(stanza_of(l, t.port), backup_options(cfg_), type, run_as(t));
    }

    backup::Info backup_info(const TenantRecord& t, const TenantLayout& l) override {
        return backup::read_info(stanza_of(l, t.port), backup_options(cfg_), run_as(t));
    }

    backup::RepoUsage repository_usage(const TenantLayout& l) override {
        if (!l.backup_remote.empty()) {
            const repohost::RepoView s = repo_host().state(l.name);
            return {.bytes = s.bytes, .last_wal = static_cast<std::time_t>(s.last_wal), .scheduled_error = s.last_backup_error};
        }
        return backup::repository_usage(l.backup_repo);
    }

    void arm_backup_timers(const TenantRecord& t, const TenantLayout& l) override {
        const std::vector<std::string> timers = backup_timers(cfg_, l.name);
        if (timers.empty()) return;
        auto sd = units::Systemd::connect();
        // Every reconcile comes here for every hibernated tenant: when its timers run, so do the
        // files below (hostd starts the timers, none is enabled: after a reboot none runs).
        size_t active = 0;
        for (const auto& [unit, state] : sd.list_units("hostd-backup-*@" + l.name + ".timer"))
            if (state == "active" && std::find(timers.begin(), timers.end(), unit) != timers.end()) active++;
        if (active == timers.size()) return;
        write_env(l, t.port);  // the backup unit's (its pgBackRest finds the socket by the port)
        link_disk(l);          // its MountImages= source
        for (const auto& timer : timers) sd.start(timer);
    }

    bool backup_running(const TenantLayout& l) override {
        if (cfg_.backup_repo.empty()) return false;
        // Loaded units only (a name holds no glob character: validate_name).
        for (const auto& [unit, active] : units::Systemd::connect().list_units("hostd-backup-*@" + l.name + ".service"))
            if (active == "activating" || active == "active" || active == "reloading") return true;
        return false;
    }

    std::vector<FailedBackupUnit> failed_backup_units() override {
        std::vector<FailedBackupUnit> out;
        if (cfg_.backup_repo.empty()) return out;
        auto sd = units::Systemd::connect();
        for (const auto& u : sd.list_unit_states("hostd-backup-*@*.service")) {
            if (u.active_state != "failed") continue;
            auto [tenant, type] = layout::tenant_of_backup_unit(u.name);
            if (tenant.empty()) continue;
            FailedBackupUnit f{.unit = u.name, .tenant = tenant, .type = type};
            std::string how;
            try {
                const units::UnitStatus st = sd.status(u.name);
                f.at = static_cast<std::time_t>(st.inactive_since_usec / 1000000);
                how = "the unit failed (" + (st.result.empty() ? std::string("failed") : st.result) +
                      (st.last_exit.empty() ? "" : ", " + st.last_exit) + ")";
            } catch (const Error& e) {
                how = "the unit failed";
            }
            // pgBackRest's words went to the unit's journal (its stderr).
            const ExecResult j = exec({.argv = {"journalctl", "--no-pager", "-q", "-o", "cat", "-n", "12", "-u", u.name}});
            const std::string said = j.exit_code == 0 ? backup::error_of(j.out) : "";
            f.message = said.find("ERROR: [") != std::string::npos ? said + " (" + how + ")" : how;
            out.push_back(std::move(f));
        }
        return out;
    }

    BranchCopy restore_cluster(const TenantRecord& src, const TenantRecord& t, const TenantLayout& l, const units::OsUser& u,
                               const backup::Target& target) override {
        const TenantLayout sl = layout_of(cfg_, src);
        if (src.name != t.name && target.kind == backup::Target::Kind::latest && streamable(src, sl)) {
            try {
                const auto t0 = std::chrono::steady_clock::now();
                stream_cluster(src, sl, l);
                log::info("Copied from the running server of '" + src.name + "' in " +
                              std::to_string(ms_between(t0, std::chrono::steady_clock::now())) + " ms",
                          t.name);
                // Not synced here: the copy's first start is a crash recovery, which syncs the
                // filesystem before it replays (recovery_init_sync_method).
                finish_branch(t, l, u, /*first_login=*/true, /*sync=*/false);
                return BranchCopy::streamed;
            } catch (const Error& e) {
                log::warning("Copying '" + src.name + "' from its running server failed (" + e.what() +
                                 "); restoring its backup from the repository instead",
                             t.name);
                std::error_code ec;
                std::filesystem::remove_all(l.pgdata, ec);  // links removed, never followed
                if (ec) throw Error(Errc::failed, "Failed to clear '" + l.pgdata + "' after the failed copy: " + ec.message());
            }
        }
        const std::string work = l.mountpoint + "/.hostd-restore";
        const backup::Branch b{.source = stanza_of(sl, src.port), .source_user = run_as(src), .pgdata = l.pgdata,
                               .work_dir = work, .bindir = cfg_.pg_bindir, .target = target,
                               .admin_role = t.admin_user, .admin_password = t.password};
        {
            UnitRecovery unit(cfg_, l, sl, b.timeout_s);
            backup::restore_branch(b, backup_options(cfg_), unit);
            unit.succeeded();
        }
        std::error_code ec;
        std::filesystem::remove_all(work, ec);
        // Restored into its own stanza (hostctl restore): its new timeline's history goes there too.
        if (src.name == t.name) backup::queue_history_files(l.pgdata, run_as(src));
        finish_branch(t, l, u, /*first_login=*/false, /*sync=*/true);
        return BranchCopy::restored;
    }

    void hand_over_branch(const TenantRecord& t, const TenantLayout& l) override {
        auto u = units::find_user(t.os_user);
        if (!u) throw Error(Errc::failed, "OS user '" + t.os_user + "' of tenant '" + t.name + "' is missing; run hostctl reconcile");
        // Root's login as the admin (pg_ident), over the socket only.
        const pgconf::ConnParams p{.host = l.socket_dir, .port = t.port, .user = t.admin_user, .connect_timeout_s = 3,
                                   .sslmode = "disable", .query_timeout_ms = 10000};
        pgconf::set_role_password(p, t.admin_user, t.password);
        const auto spec = cluster_spec(t);
        write_file_atomic(l.pgdata + "/pg_hba.conf", pgconf::render_pg_hba(spec), 0600, u->uid, u->gid);
        write_file_atomic(l.pgdata + "/pg_ident.conf", pgconf::render_pg_ident(spec), 0600, u->uid, u->gid);
        pgconf::query_column(p, "SELECT pg_catalog.pg_reload_conf()");
    }

    // A source whose server runs and answers (a frozen or stopped one is read from its
    // repository), with pgBackRest's login (backups on) to copy it with.
    bool streamable(const TenantRecord& src, const TenantLayout& sl) {
        if (src.state != TenantState::ready || !sl.backups || !unit_active(sl)) return false;
        auto p = pgconf::monitor_params(sl.socket_dir, src.port);
        p.connect_timeout_s = 2;
        return pgconf::ping(p);
    }

    // The running source copied into l.pgdata (new, the source user's, as a restore leaves it).
    void stream_cluster(const TenantRecord& src, const TenantLayout& sl, const TenantLayout& l) {
        const backup::RunAs as = run_as(src);
        auto copy = [&] {
            make_dirs(l.pgdata, 0700);
            if (::chown(l.pgdata.c_str(), as.uid, as.gid) < 0) throw_errno(errno, "Failed to hand '" + l.pgdata + "' to the copy");
            stream_copy(cfg_, l, sl.os_user,
                        backup::stream_argv({.bindir = cfg_.pg_bindir, .socket_dir = sl.socket_dir, .port = src.port,
                                             .role = std::string(kBackupRole), .pgdata = l.pgdata,
                                             .label = "hostd branch " + l.name}),
                        std::chrono::seconds(600));
        };
        try {
            return copy();
        } catch (const Error& e) {
            // PostgreSQL's words for a login its pg_hba.conf has no line for: a cluster made
            // before hostd's file had the replication line, or one whose tenant rewrote it.
            if (std::string_view(e.what()).find("no pg_hba.conf entry for replication connection") == std::string_view::npos) throw;
            log::info("The copy's login is not in the pg_hba.conf of '" + src.name + "': hostd's written again", l.name);
        }
        std::error_code ec;
        std::filesystem::remove_all(l.pgdata, ec);
        const auto spec = cluster_spec(src);
        const auto mp = pgconf::monitor_params(sl.socket_dir, src.port);
        const std::string loaded = pgconf::query_column(mp, "SELECT pg_catalog.pg_conf_load_time()").at(0);
        write_file_atomic(sl.pgdata + "/pg_hba.conf", pgconf::render_pg_hba(spec), 0600, as.uid, as.gid);
        write_file_atomic(sl.pgdata + "/pg_ident.conf", pgconf::render_pg_ident(spec), 0600, as.uid, as.gid);
        units::Systemd::connect().reload(sl.unit);
        for (int i = 0; pgconf::query_column(mp, "SELECT pg_catalog.pg_conf_load_time()").at(0) == loaded; i++) {
            if (i == 200) throw Error(Errc::unavailable, "The server of '" + src.name + "' did not reload its pg_hba.conf");
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        copy();
    }

    // A branch's files handed to u (written as the source's user: links themselves, never what
    // they point to), then hostd's files for t, made durable by one syncfs (sync). first_login:
    // root may log in as its admin until hand_over_branch.
    void finish_branch(const TenantRecord& t, const TenantLayout& l, const units::OsUser& u, bool first_login, bool sync) {
        const auto t0 = std::chrono::steady_clock::now();
        chown_tree(l.pgdata, u.uid, u.gid);
        auto spec = cluster_spec(t);
        write_file_atomic(l.pgdata + "/postgresql.conf", pgconf::render_postgresql_conf(spec), 0600, u.uid, u.gid);
        if (first_login) spec.root_login = t.admin_user;
        write_file_atomic(l.pgdata + "/pg_hba.conf", pgconf::render_pg_hba(spec), 0600, u.uid, u.gid);
        write_file_atomic(l.pgdata + "/pg_ident.conf", pgconf::render_pg_ident(spec), 0600, u.uid, u.gid);
        write_tenant_files(t, l.pgdata, u, /*certificate=*/true, /*synced_after=*/true);
        const auto t1 = std::chrono::steady_clock::now();
        if (sync) pgconf::sync_filesystem(l.pgdata);
        log::info("The branch's files handed over in " + std::to_string(ms_between(t0, t1)) + " ms, synced in " +
                      std::to_string(ms_between(t1, std::chrono::steady_clock::now())) + " ms",
                  t.name);
    }

    bool has_repository(const std::string& repo) override { return !repo.empty() && path_exists(repo); }
    void hand_repository(const TenantLayout& l, const units::OsUser& u) override {
        if (l.backup_remote.empty()) return backup::make_repository(cfg_.backup_repo, l.backup_repo, {u.uid, u.gid});
        // root's files its group reads (write_file_atomic's owner and mode in prepare_remote).
        make_remote_dir(l, u.gid);
        for (const auto& e : std::filesystem::directory_iterator(l.backup_remote))
            if (e.is_regular_file() && !e.is_symlink() && e.path().filename() != "ca.crt" &&
                ::lchown(e.path().c_str(), 0, u.gid) < 0)
                throw_errno(errno, "Failed to hand '" + e.path().string() + "' to gid " + std::to_string(u.gid));
    }
    void remove_repository(const std::string& repo) override {
        // Links are removed, never followed; no process of its owner runs (its unit is stopped).
        std::error_code ec;
        std::filesystem::remove_all(repo, ec);
        if (ec) throw Error(Errc::failed, "Failed to remove the repository '" + repo + "': " + ec.message());
    }

    void start_unit(const TenantLayout& l, uint16_t port, const units::Limits& limits) override {
        link_disk(l);
        if (!l.backup_remote.empty()) {
            // The unit binds the directory in at start (its files come with prepare_backups).
            auto u = units::find_user(l.os_user);
            if (!u) throw Error(Errc::failed, "OS user '" + l.os_user + "' of tenant '" + l.name + "' is missing; run hostctl reconcile");
            make_remote_dir(l, u->gid);
        }
        if (!l.backup_repo.empty()) {
            // The unit binds its repository in at start: it must exist by then.
            auto u = units::find_user(l.os_user);
            if (!u) throw Error(Errc::failed, "OS user '" + l.os_user + "' of tenant '" + l.name + "' is missing; run hostctl reconcile");
            backup::make_repository(cfg_.backup_repo, l.backup_repo, {u->uid, u->gid});
        }
        write_env(l, port);
        auto sd = units::Systemd::connect();
        sd.reset_failed(l.unit);
        // The limits while systemd sets the unit's sandbox up (tens of ms before PostgreSQL
        // runs): applied to its cgroup live, and persisted, off the start's path.
        sd.start(l.unit, [&] { sd.set_limits(l.unit, limits, /*runtime=*/false); });
        for (const auto& timer : backup_timers(cfg_, l.name)) sd.start(timer);
    }

    void set_unit_limits(const TenantRecord& t, const TenantLayout& l) override {
        units::Systemd::connect().set_limits(l.unit, {.memory_max = t.spec.memory, .cpus = t.spec.cpu, .tasks_max = t.spec.tasks,
                                                      .io_weight = t.spec.io_weight});
    }

    std::vector<std::string> apply_limits(const TenantRecord& t, const TenantLayout& l) override {
        auto sd = units::Systemd::connect();
        const std::string& unit = l.unit;
        sd.set_limits(unit, {.memory_max = t.spec.memory, .cpus = t.spec.cpu, .tasks_max = t.spec.tasks,
                             .io_weight = t.spec.io_weight});
        auto u = units::find_user(t.os_user);
        if (!u) throw Error(Errc::failed, "OS user '" + t.os_user + "' of tenant '" + t.name + "' is missing; run hostctl reconcile");
        write_file_atomic(l.pgdata + "/postgresql.conf", pgconf::render_postgresql_conf(cluster_spec(t)), 0600, u->uid, u->gid);
        write_tenant_files(t, l.pgdata, *u, /*certificate=*/false);
        if (!unit_active(l)) return {};  // stopped: PostgreSQL reads all of it when it starts
        sd.reload(unit);
        // The reload is a signal: give the postmaster a moment before asking what is pending.
        // Asked with hostd's own login: a tenant that changed its admin password, or refuses
        // hostd's login, still gets its limits (the catalog's answer stands in, Manager side).
        std::vector<std::string> pending;
        const auto p = pgconf::monitor_params(l.socket_dir, t.port);
        try {
            for (int i = 0; i < 10; i++) {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
                pending = pgconf::query_column(
                    p, "SELECT name FROM pg_catalog.pg_settings WHERE pending_restart ORDER BY name");
                if (!pending.empty()) break;
            }
        } catch (const Error& e) {
            log::warning(std::string("Cannot ask PostgreSQL which settings wait for a restart: ") + e.what(), t.name);
        }
        return pending;
    }

    std::optional<std::vector<std::string>> pending_restart(const TenantRecord& t, const TenantLayout& l) override {
        try {
            return pgconf::query_column(pgconf::monitor_params(l.socket_dir, t.port),
                                        "SELECT name FROM pg_catalog.pg_settings WHERE pending_restart ORDER BY name");
        } catch (const Error& e) {
            log::warning(std::string("Cannot ask PostgreSQL which settings wait for a restart: ") + e.what(), t.name);
            return std::nullopt;
        }
    }

    void set_password(const TenantRecord& t, const TenantLayout& l, const std::string& new_password) override {
        pgconf::ConnParams p{.host = l.socket_dir, .port = t.port, .user = t.admin_user, .password = t.password,
                             .connect_timeout_s = 3, .sslmode = "disable", .query_timeout_ms = 10000};
        try {
            pgconf::set_role_password(p, t.admin_user, new_password);
        } catch (const Error& e) {
            // An earlier change cut off after PostgreSQL took it: the role has that password.
            if (e.code() != Errc::unavailable || t.password_pending.empty() || t.password_pending == t.password) throw;
            p.password = t.password_pending;
            pgconf::set_role_password(p, t.admin_user, new_password);
        }
    }

    void set_ha_password(const TenantRecord& t, const HaMember& primary, const std::string& new_password) override {
        if (!t.ha) throw Error(Errc::invalid, "Tenant '" + t.name + "' is not an HA tenant");
        const pgconf::ConnParams p{.host = primary.address, .port = primary.pg_port, .user = kPatroniSuperuser,
                                   .password = t.ha->secrets.patroni, .connect_timeout_s = 3, .sslmode = "require",
                                   .query_timeout_ms = 10000};
        pgconf::set_role_password(p, t.admin_user, new_password);
    }

    void stop_unit(const TenantLayout& l) override {
        auto sd = units::Systemd::connect();
        const std::string& unit = l.unit;
        for (const auto& timer : backup_timers(cfg_, l.name)) {
            try {
                sd.stop(timer);
            } catch (const Error& e) {
                if (e.code() != Errc::not_found) throw;
            }
        }
        try {
            sd.stop(unit);
        } catch (const Error& e) {
            if (e.code() != Errc::not_found) throw;
        }
        sd.reset_failed(unit);
        units::remove_control_dropins(unit, std::string(layout::kControlDir));
    }

    void restart_unit(const TenantLayout& l, uint16_t port, const units::Limits& limits) override {
        link_disk(l);
        write_env(l, port);
        auto sd = units::Systemd::connect();
        sd.reset_failed(l.unit);
        sd.set_limits(l.unit, limits, /*runtime=*/false);
        sd.restart(l.unit);
    }

    std::map<std::string, LiveStatus> unit_states() override {
        using namespace layout;
        std::map<std::string, LiveStatus> out;
        auto sd = units::Systemd::connect();
        for (auto& u : sd.list_unit_states(unit_patterns())) {
            const std::string name = tenant_of_unit(u.name);
            if (name.empty()) continue;
            // Both kinds of unit of one name (an orphan beside the tenant's): the one that runs tells.
            if (out.count(name) && u.active_state == "inactive") continue;
            LiveStatus s{.active_state = u.active_state, .sub_state = u.sub_state};
            if (u.active_state == "failed" || u.sub_state == "auto-restart") {
                // Rare: worth a second call for the reason.
                try {
                    auto st = sd.status(u.name);
                    s.result = st.result;
                    s.last_exit = st.last_exit;
                    s.restarts = st.n_restarts;
                } catch (const Error&) {
                }
            }
            out[name] = std::move(s);
        }
        return out;
    }

    std::string ping(const TenantRecord& t, const TenantLayout& l) override {
        auto p = pgconf::monitor_params(l.socket_dir, t.port);
        p.connect_timeout_s = 2;
        return pgconf::ping_problem(p);
    }

    void reload_unit(const TenantLayout& l) override { units::Systemd::connect().reload(l.unit); }
    bool unit_active(const TenantLayout& l) override {
        try {
            return units::Systemd::connect().status(l.unit).active_state == "active";
        } catch (const Error&) {
            return false;
        }
    }

    void wait_ready(const TenantRecord& t, const TenantLayout& l, int timeout_ms) override {
        pgconf::wait_ping(pgconf::monitor_params(l.socket_dir, t.port), std::chrono::milliseconds(timeout_ms));
    }

    void wait_routed(const std::string& host, uint16_t port, const std::string& hostaddr, int timeout_ms) override {
        // A ping needs no login: TLS through the proxy (an SNI route is chosen by it), then the
        // server's request for a password is an answer.
        pgconf::wait_ping({.host = host, .hostaddr = hostaddr, .port = port, .user = pgconf::kMonitorRole,
                           .connect_timeout_s = 2, .sslmode = "require"},
                          std::chrono::milliseconds(timeout_ms));
    }

    void ensure_monitor_login(const TenantRecord& t, const TenantLayout& l) override {
        const auto mon = pgconf::monitor_params(l.socket_dir, t.port);
        try {
            pgconf::check_select1(mon);
            return;
        } catch (const Error&) {
        }
        // A tenant made before hostd had its own login, or one that broke it: hostd's lines
        // back in pg_hba/pg_ident (read again on reload), the role made as the tenant's admin.
        auto u = units::find_user(t.os_user);
        if (!u) throw Error(Errc::failed, "OS user '" + t.os_user + "' of tenant '" + t.name + "' is missing; run hostctl reconcile");
        const auto spec = cluster_spec(t);
        write_file_atomic(l.pgdata + "/pg_hba.conf", pgconf::render_pg_hba(spec), 0600, u->uid, u->gid);
        write_file_atomic(l.pgdata + "/pg_ident.conf", pgconf::render_pg_ident(spec), 0600, u->uid, u->gid);
        units::Systemd::connect().reload(l.unit);
        pgconf::exec_sql({.host = l.socket_dir, .port = t.port, .user = t.admin_user, .password = t.password,
                          .connect_timeout_s = 2, .sslmode = "disable"},
                         pgconf::monitor_role_sql());
        // The reload is a signal: the postmaster reads pg_hba.conf when it gets to it.
        for (int i = 0;; i++) {
            try {
                pgconf::check_select1(mon);
                return;
            } catch (const Error& e) {
                if (i == 20) throw Error(Errc::failed, std::string("hostd's own login does not work: ") + e.what());
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

    void create_monitor_role(const TenantRecord& t, const TenantLayout& l, int timeout_ms) override {
        pgconf::wait_exec_sql({.host = l.socket_dir, .port = t.port, .user = t.admin_user, .password = t.password,
                               .connect_timeout_s = 2, .sslmode = "disable", .query_timeout_ms = 10000},
                              pgconf::monitor_role_sql(), std::chrono::milliseconds(timeout_ms));
    }

    // ---- an HA member ----

    void write_member_files(const TenantRecord& t, const TenantLayout& l, const units::OsUser& u,
                            const std::string& patroni_yml) override {
        if (!t.ha) throw Error(Errc::invalid, "Tenant '" + t.name + "' is not an HA tenant");
        // Patroni's initdb or pg_basebackup fills it.
        if (::mkdir(l.pgdata.c_str(), 0700) < 0 && errno != EEXIST) throw_errno(errno, "Failed to create '" + l.pgdata + "'");
        if (::chown(l.pgdata.c_str(), u.uid, u.gid) < 0) throw_errno(errno, "Failed to chown '" + l.pgdata + "'");
        // Root's: the tenant reads its configuration and cannot change it (nor its REST port, etcd, roles).
        if (::mkdir(l.ha_dir.c_str(), 0750) < 0 && errno != EEXIST) throw_errno(errno, "Failed to create '" + l.ha_dir + "'");
        if (::chown(l.ha_dir.c_str(), 0, u.gid) < 0 || ::chmod(l.ha_dir.c_str(), 0750) < 0)
            throw_errno(errno, "Failed to hand '" + l.ha_dir + "' to group " + std::to_string(u.gid));
        auto file = [&](const char* name) { return l.ha_dir + "/" + name; };
        if (!t.spec.settings.empty())
            pgconf::check_overrides_with_server({.bindir = cfg_.pg_bindir, .uid = u.uid, .gid = u.gid}, t.spec.settings);
        pgconf::ClusterSpec spec = cluster_spec(t);
        spec.ssl = false;  // Patroni's own parameters turn TLS on with the files below
        write_file_atomic(file(ha_files::kBaseConf), pgconf::render_postgresql_conf(spec), 0640, 0, u.gid);
        write_file_atomic(file(ha_files::kOverrides), pgconf::render_overrides(t.spec.settings), 0640, 0, u.gid);
        pgconf::ensure_ca(ca_);
        std::vector<std::string> names = {"localhost", "127.0.0.1"};
        for (const auto& m : t.ha->members)
            for (const auto& n : {m.address, m.public_host})
                if (!n.empty() && std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
        auto pair = pgconf::issue_server_cert(ca_, {.tenant = t.name, .names = names});
        write_file_atomic(file(ha_files::kKey), pair.key_pem, 0600, u.uid, u.gid);
        write_file_atomic(file(ha_files::kCert), pair.cert_pem, 0644, 0, u.gid);
        write_file_atomic(file(ha_files::kCa), pgconf::ca_certificate_pem(ca_), 0644, 0, u.gid);
        // Patroni's client certificate for etcd: its CN is the tenant's etcd user, whose role
        // reaches the tenant's scope only (hostd/etcd_admin.h).
        const pgconf::PemPair etcd_pair = issue_etcd_tenant_cert(ca_, t.name);
        write_file_atomic(file(ha_files::kEtcdKey), etcd_pair.key_pem, 0600, u.uid, u.gid);
        write_file_atomic(file(ha_files::kEtcdCert), etcd_pair.cert_pem, 0644, 0, u.gid);
        write_file_atomic(file(ha_files::kPatroniYml), patroni_yml, 0640, 0, u.gid);
    }

    void create_ha_admin(const TenantRecord& t, const TenantLayout& l, int timeout_ms) override {
        if (!t.ha) throw Error(Errc::invalid, "Tenant '" + t.name + "' is not an HA tenant");
        const pgconf::ConnParams p{.host = l.socket_dir, .port = t.port, .user = kPatroniSuperuser,
                                   .password = t.ha->secrets.patroni, .connect_timeout_s = 2, .sslmode = "disable",
                                   .query_timeout_ms = 10000};
        // The name is a validated tenant name ([a-z0-9_-]): quoted as an identifier and a literal as it stands.
        const std::string& a = t.admin_user;
        pgconf::wait_exec_sql(p, "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '" + a +
                                     "') THEN CREATE ROLE \"" + a + "\" LOGIN SUPERUSER; END IF; END$$",
                              std::chrono::milliseconds(timeout_ms));
        pgconf::set_role_password(p, a, t.password);
        pgconf::exec_sql(p, pgconf::monitor_role_sql());  // hostd's own login (patroni.yml has its pg_hba line)
    }

    // hostd's client of the fleet's etcd (TLS, root by its certificate), made at first use.
    EtcdAdmin& etcd() {
        std::lock_guard g(etcd_mu_);
        if (!etcd_) etcd_ = make_real_etcd_admin(etcd_admin_options(cfg_, ha_self(cfg_, host_name())));
        return *etcd_;
    }
    bool ha_scope_in_use(const std::string& tenant) override { return etcd().scope_in_use(tenant); }
    void grant_ha_scope(const std::string& tenant) override { etcd().grant_tenant(tenant); }
    void forget_ha_scope(const std::string& tenant) override {
        etcd().remove_scope(tenant);
        etcd().revoke_tenant(tenant);
    }

    // ---- the warm pool ----

    std::set<std::string> pool_images(const std::string& dir) override {
        std::set<std::string> ids;
        std::error_code ec;
        std::filesystem::directory_iterator it(dir, ec);
        if (ec == std::errc::no_such_file_or_directory) return ids;
        if (ec) throw Error(Errc::failed, "Failed to list the warm pool's directory " + dir + ": " + ec.message());
        for (const auto& e : it) {
            auto id = pool::id_of_image(e.path().filename().string());
            std::error_code ec2;
            if (id && e.is_regular_file(ec2) && !e.is_symlink(ec2)) ids.insert(*id);
        }
        return ids;
    }

    void prepare_pool_cluster(const pool::Disk& d, const std::string& device) override {
        const units::OsUser u = pool_user();
        const std::string mnt = std::string(kPoolMounts) + "/" + d.id;
        // 0711 all the way, as a tenant's mount point: the pool user's initdb reaches its pgdata.
        make_dirs(std::string(kPoolMounts), 0711);
        ::chmod(std::string(kPoolMounts).c_str(), 0711);  // one made before, by another mode
        if (::mkdir(mnt.c_str(), 0711) < 0 && errno != EEXIST) throw_errno(errno, "Failed to create '" + mnt + "'");
        storage::mount_by_uuid(d.fs_uuid, mnt, cfg_.mount_options, device);
        try {
            if (::chmod(mnt.c_str(), 0711) < 0) throw_errno(errno, "Failed to chmod '" + mnt + "'");
            const std::string pgdata = mnt + "/" + std::string(layout::kPgdataName);
            if (::mkdir(pgdata.c_str(), 0700) < 0 && errno != EEXIST) throw_errno(errno, "Failed to create '" + pgdata + "'");
            if (::chown(pgdata.c_str(), u.uid, u.gid) < 0) throw_errno(errno, "Failed to chown '" + pgdata + "'");
            // Its configuration files are a stand-in: a create writes the tenant's (adopt_cluster).
            const pgconf::ClusterSpec spec{.tenant = "pool", .port = 5432, .socket_dir = mnt, .memory_bytes = cfg_.memory,
                                           .cpus = cfg_.cpu, .disk_bytes = d.size, .ssl = false};
            // initdb in a unit of its own at idle weight, the disk mounted there too.
            pgconf::initdb({.bindir = cfg_.pg_bindir, .pgdata = pgdata, .uid = u.uid, .gid = u.gid,
                            .superuser = d.bootstrap_role, .wal_segsize_mb = cfg_.pg_wal_segsize,
                            .password = pgconf::scram_verifier(d.bootstrap_password, pool::kBootstrapScramIterations)},
                           spec, [&](const ExecOptions& o, const std::string& what) {
                               run_pool_job(cfg_, d.id, "initdb", o, what, device, mnt);
                           });
            pgconf::sync_filesystem(pgdata);
        } catch (...) {
            try {
                storage::unmount(mnt);
            } catch (const Error&) {
            }
            ::rmdir(mnt.c_str());
            throw;
        }
        storage::unmount(mnt);
        ::rmdir(mnt.c_str());
    }

    void format_pool_disk(const pool::Disk& d, const std::string& device) override {
        storage::make_filesystem(device, d.filesystem, "hostd-pool", d.fs_uuid,
                                 [&](const ExecOptions& o, const std::string& what) { run_pool_job(cfg_, d.id, "mkfs", o, what); });
    }

    void stop_pool_jobs() override {
        auto sd = units::Systemd::connect();
        for (const auto& [unit, active] : sd.list_units(std::string(units::idle_job_pattern))) {
            log::info("Warm pool: stopping " + unit + " (" + active + "), left by a refill that was cut off");
            sd.stop(unit, std::chrono::seconds(60));
            sd.reset_failed(unit);
        }
        remove_pool_job_units();
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(std::string(kPoolJobs), ec)) remove_file(e.path().string());
        // Mount points of disks cut off while prepared (empty: hostd's mounts went with it).
        for (const auto& e : std::filesystem::directory_iterator(std::string(kPoolMounts), ec))
            if (pool::valid_id(e.path().filename().string())) ::rmdir(e.path().c_str());
    }

    void rename_image(const std::string& from, const std::string& to) override {
        // Never over an existing file: a tenant's image is never replaced.
        if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) < 0)
            throw_errno(errno, "Failed to move the warm pool's image " + from + " to " + to);
    }

    void relabel(const TenantRecord& t) override { storage::set_label(t.device, t.spec.filesystem, t.label, t.fs_uuid); }

    void hand_over_cluster(const TenantRecord& t, const TenantLayout& l, const pool::Disk& d,
                           const std::string& admin_secret) override {
        pgconf::hand_over_cluster({.host = l.socket_dir, .port = t.port, .connect_timeout_s = 3, .sslmode = "disable",
                                   .query_timeout_ms = 10000},
                                  d.bootstrap_role, d.bootstrap_password, pool::handover_role_of(d.id), t.admin_user,
                                  admin_secret);
    }

    std::vector<units::Listener> tcp_listeners() override { return units::tcp_listeners(); }
    std::vector<pid_t> kill_socket_holders(uid_t uid, uint64_t inode) override { return units::kill_socket_holders(uid, inode); }

    void wait_sql(const std::string& host, uint16_t port, const std::string& user, const std::string& password,
                  int timeout_ms, const std::string& hostaddr) override {
        // TCP logins need TLS (the tenant's pg_hba); a socket directory needs none.
        pgconf::wait_select1({.host = host, .hostaddr = hostaddr, .port = port, .user = user, .password = password,
                              .sslmode = host.front() == '/' ? "disable" : "require"},
                             std::chrono::milliseconds(timeout_ms));
    }

    void apply_routes(const std::vector<routes::Route>& rs, bool force_reload) override {
        route_writer_->apply(rs, force_reload);
        if (force_reload && !retired_other_) retire_other_proxy();
    }

    std::set<uint16_t> idle_route_ports() override { return route_writer_->idle_ports(); }

    LiveStatus live_status(const TenantRecord&, const TenantLayout& l) override {
        // I/O from the cgroup's own files: systemd reports IOReadBytes only on cgroup v2.
        const CgroupUsage cg = read_cgroup_usage(l.cgroup);
        LiveStatus s;
        try {
            // One connection kept for these reads (a list asks it of every tenant: a connection
            // each was most of a list's time), guarded because API threads share it.
            std::lock_guard g(status_bus_mu_);
            units::UnitStatus st;
            try {
                if (!status_bus_) status_bus_.emplace(units::Systemd::connect());
                st = status_bus_->status(l.unit);
            } catch (const Error&) {
                status_bus_.reset();  // systemd restarted, or the unit vanished: a fresh connection next time
                throw;
            }
            s.active_state = st.active_state;
            s.sub_state = st.sub_state;
            s.main_pid = st.main_pid;
            s.restarts = st.n_restarts;
            s.result = st.result;
            s.last_exit = st.last_exit;
            s.memory_current = st.memory_current;
            s.memory_max = st.memory_max;
            s.tasks_current = st.tasks_current;
            s.cpu_usage_nsec = st.cpu_usage_nsec;
        } catch (const Error& e) {
            s.unit_error = e.what();
        }
        if (!s.cpu_usage_nsec && cg.cpu_seconds) s.cpu_usage_nsec = static_cast<uint64_t>(*cg.cpu_seconds * 1e9);
        s.io_read_bytes = cg.io_read_bytes;
        s.io_write_bytes = cg.io_write_bytes;
        s.disk = disk_usage(l);
        return s;
    }

    std::string patroni_cluster(const HaMember& m) override { return patroni::cluster(m); }
    std::string patroni_switchover(const HaMember& m, const ha::Credentials& rest, const ha::Switchover& s) override {
        return patroni::switchover(m, rest, s);
    }
    void patroni_patch_parameters(const HaMember& m, const ha::Credentials& rest,
                                  const std::map<std::string, std::string>& parameters) override {
        patroni::patch_parameters(m, rest, parameters);
    }

    // The scheduled backups' units, runtime files written from hostd.toml at each start (gone
    // when backups are off); the caller reloads systemd when they changed.
    bool ensure_backup_units() {
        bool changed = false;
        std::set<std::string> want;
        for (const auto& [name, content] : backup_unit_files(cfg_)) {
            const std::string path = "/run/systemd/system/" + name;
            want.insert(path);
            std::string have;
            try {
                have = read_file(path);
            } catch (const Error&) {
            }
            if (have == content) continue;
            make_dirs("/run/systemd/system", 0755);
            write_file_atomic(path, content, 0644);
            changed = true;
        }
        for (const char* type : {"full", "incr"})
            for (const char* suffix : {"service", "timer"}) {
                const std::string path = "/run/systemd/system/" + units::backup_unit_name(type, suffix);
                if (!want.count(path) && path_exists(path)) {
                    remove_file(path);
                    changed = true;
                }
            }
        if (const std::string path = "/run/systemd/system/" + units::backup_server_unit_name();
            !want.count(path) && path_exists(path)) {
            remove_file(path);
            changed = true;
        }
        return changed;
    }

    void ensure_unit_template() override {
        const bool backup_units_changed = ensure_backup_units();
        bool changed = false;
        // The tenant template (installed for the default paths) and, on an HA host, the HA
        // member's (hostd-patroni@: a runtime copy, rendered for this configuration at each start).
        std::vector<std::pair<std::string, std::string>> templates = {
            {units::tenant_template_name(), units::render_tenant_template(layout::template_paths(cfg_))}};
        if (ha_on(cfg_)) templates.emplace_back(units::patroni_template_name(), units::render_patroni_template(layout::template_paths(cfg_)));
        for (const auto& [name, want] : templates) changed = ensure_template(name, want) || changed;
        if (changed || backup_units_changed) units::Systemd::connect().daemon_reload();
    }

    // One unit template where systemd finds it: the installed file when it says the same, else a
    // runtime copy under /run/systemd/system. Whether systemd must reload.
    bool ensure_template(const std::string& name, const std::string& want) {
        const std::string installed = std::string(HOSTD_UNITDIR) + "/" + name, runtime = "/run/systemd/system/" + name;
        auto content = [](const std::string& path) {
            try {
                return read_file(path);
            } catch (const Error&) {
                return std::string();
            }
        };
        const bool have_runtime = path_exists(runtime);
        if (want == content(installed)) {
            if (!have_runtime) return false;
            remove_file(runtime);  // the configuration is back to what the installed file says
            return true;
        }
        if (have_runtime && content(runtime) == want) return false;
        make_dirs("/run/systemd/system", 0755);
        write_file_atomic(runtime, want, 0644);
        log::info("The unit template " + name + " follows hostd.toml's paths: " + runtime +
                  (path_exists(installed) ? " (the installed " + installed + " is for the default paths)" : ""));
        return true;
    }

    std::string ca_certificate() override {
        pgconf::ensure_ca(ca_);
        return pgconf::ca_certificate_pem(ca_);
    }

private:
    // The instance's environment file, read by its unit and its backups' units (HOSTD_PORT).
    static void write_env(const TenantLayout& l, uint16_t port) {
        make_dirs(std::string(layout::kEnvDir), 0755);
        write_file_atomic(l.env_file, "HOSTD_PORT=" + std::to_string(port) + "\n", 0644);
    }

    std::mutex etcd_mu_;
    std::unique_ptr<EtcdAdmin> etcd_;

    pgconf::ClusterSpec cluster_spec(const TenantRecord& t) const {
        const TenantLayout l = layout_of(cfg_, t);
        pgconf::ClusterSpec spec{.tenant = t.name, .port = t.port, .listen_address = "127.0.0.1", .socket_dir = l.socket_dir,
                                 .memory_bytes = t.spec.memory, .cpus = t.spec.cpu, .disk_bytes = t.spec.disk_size, .ssl = true,
                                 .preload_libraries = pgconf::preload_libraries(t.spec.extensions)};
        if (l.backups) {
            spec.backup_peer = l.os_user;
            spec.backup_role = std::string(kBackupRole);
        }
        return spec;
    }

    // The tenant's own files next to postgresql.conf: its setting overrides (checked by the
    // server itself, as the tenant, before they can stop it from starting) and its TLS pair.
    // synced_after: the caller syncs the whole filesystem next, so no fsync per file.
    void write_tenant_files(const TenantRecord& t, const std::string& pgdata, const units::OsUser& u, bool certificate,
                            bool synced_after = false) {
        auto write = synced_after ? write_file_replace : write_file_atomic;
        if (!t.spec.settings.empty())
            pgconf::check_overrides_with_server({.bindir = cfg_.pg_bindir, .uid = u.uid, .gid = u.gid}, t.spec.settings);
        write(pgdata + "/hostd.override.conf", pgconf::render_overrides(t.spec.settings), 0600, u.uid, u.gid);
        if (!certificate) return;
        pgconf::ensure_ca(ca_);
        // The names clients may verify (verify-full): the URL's host, also the SNI route's name.
        std::vector<std::string> names = {cfg_.public_host, "localhost", "127.0.0.1"};
        if (auto ep = public_endpoint(cfg_, t); ep.host != cfg_.public_host) names.insert(names.begin(), ep.host);
        auto pair = pgconf::issue_server_cert(ca_, {.tenant = t.name, .names = names});
        write(pgdata + "/server.key", pair.key_pem, 0600, u.uid, u.gid);
        write(pgdata + "/server.crt", pair.cert_pem, 0644, u.uid, u.gid);
    }

    // After a switch of proxy.kind, the routes hostd wrote for the other proxy would keep
    // holding the public ports (and answering for tenants): they are emptied at start-up.
    // Only where hostd's own file of that proxy exists; nothing else of the other proxy is touched.
    void retire_other_proxy() {
        retired_other_ = true;
        Config other = cfg_;
        other.proxy = cfg_.proxy == "traefik" ? "haproxy" : "traefik";
        const std::string& where = other.proxy == "haproxy" ? cfg_.haproxy_config : cfg_.traefik_dir;
        try {
            if (path_exists(where) && make_route_writer(other, /*retired=*/true)->apply({}, false))
                log::info("Removed hostd's " + other.proxy + " routes (" + where + "): proxy.kind is " + cfg_.proxy);
        } catch (const Error& e) {
            log::error(std::string("Failed to remove the routes of the proxy no longer used: ") + e.what());
        }
    }

    // hostd's own OS user that runs the warm pool's initdb (made on first use, with hostd's
    // marker; its name is no tenant's: those start with '_'). A user of that name that is not
    // hostd's is refused: it could change a cluster before a tenant gets it.
    units::OsUser pool_user() {
        if (auto u = units::find_user(std::string(kPoolUser))) {
            if (!u->hostd)
                throw Error(Errc::refused, "OS user '" + std::string(kPoolUser) + "' exists and was not made by hostd; the warm "
                                           "pool runs its initdb as that user, so it stays off: remove or rename that user, "
                                           "or set pool.size = 0");
            return *u;
        }
        return units::create_user(std::string(kPoolUser), "/nonexistent", {cfg_.user_ids.first, cfg_.user_ids.second});
    }

    void check_marker(const TenantRecord& t, const TenantLayout& l) {
        const std::string& target = l.mountpoint;
        if (read_marker(l) != marker_text(t))
            throw Error(Errc::refused, "The filesystem at '" + target + "' is not tenant '" + t.name +
                                           "''s (its marker file is missing or names another tenant); refusing to use it");
    }

    Config cfg_;
    pgconf::CaPaths ca_;
    std::unique_ptr<routes::RouteWriter> route_writer_;
    bool retired_other_ = false;
    std::mutex attach_mu_;
    std::mutex status_bus_mu_;
    std::optional<units::Systemd> status_bus_;
};

}  // namespace

std::unique_ptr<routes::RouteWriter> make_route_writer(const Config& cfg, bool retired) {
    if (cfg.proxy == "traefik")
        return routes::traefik_writer({.directory = cfg.traefik_dir, .entry_point = cfg.traefik_entry_point});
    std::string unit = cfg.haproxy_unit;
    // Idle listeners (ports HAProxy listens on for a tenant to come): a create takes one and is
    // routed over the runtime socket; a reload happens once they are used up, every 32 creates
    // at most, and costs about what one listener more does (a socket and a few KB each).
    routes::HaproxySettings s{.haproxy_bin = cfg.haproxy_bin,
                              .main_config = cfg.haproxy_main_config,
                              .hostd_config = cfg.haproxy_config,
                              .waker_port = hibernate_on(cfg) && !retired ? cfg.hibernate_waker_port : uint16_t(0),
                              .bind_address = cfg.bind_address,
                              .first_port = cfg.public_ports.first,
                              .last_port = cfg.public_ports.second,
                              .idle_listeners = retired ? 0u : 32u};  // retired: the other proxy takes the ports
    const std::string socket = s.runtime_socket;
    return routes::haproxy_writer(
        std::move(s), [unit] { units::Systemd::connect().reload_or_restart(unit); },
        {.send = [socket](const std::string& c) { return routes::haproxy_runtime_command(socket, c); },
         .port_free = [](uint16_t p) { return can_bind(AF_INET, p) && can_bind(AF_INET6, p); },
         .note = [](const std::string& m) { log::info(m); }});
}

std::unique_ptr<Effects> make_real_effects(const Config& cfg) { return std::make_unique<RealEffects>(cfg); }

}  // namespace hostd

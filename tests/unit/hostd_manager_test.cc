// The Manager's plans against a fake machine: what is done, in which order, and that a
// failure at any step undoes exactly what was done before it.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <fstream>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "base/error.h"
#include "base/fs.h"
#include "hostd/manager.h"
#include "model/capacity.h"
#include "model/kept.h"
#include "model/record.h"
#include "pgconf/pgconf.h"
#include "wire/wire.h"
#include "tests/unit/error_of.h"

using namespace hostd;
using nlohmann::json;
using hostd::test::error_of;

namespace {

// hostd killed (SIGKILL) at a fault point, in-process: not an Error, so no rollback runs.
struct Killed {};

struct FakeMachine {
    std::mutex mu;  // the Manager calls in from several threads
    std::vector<std::string> calls;
    std::string fail_at;              // verb that throws
    std::string crash_at;             // verb at which this machine's hostd dies (throws Killed: no rollback runs)
    std::set<std::string> images, attached, mounts, users, units;
    std::set<std::string> patroni_units;  // HA members' units (hostd-patroni@<t>) loaded, by tenant
    std::vector<std::string> stopped;     // the unit each stop_unit stopped
    std::set<std::string> foreign_users;  // OS users without hostd's marker (the system's own)
    std::set<uint16_t> busy_ports;
    std::set<uint16_t> idle_route_ports;  // the proxy's idle listeners (busy for port_free, free for a tenant)
    std::vector<routes::Route> routes;
    uint64_t applied_memory = 0;
    std::map<std::string, std::string> refused;    // device → why check_device refuses it
    std::map<std::string, std::string> signature;  // device → what is on it (force may pass it)
    std::map<std::string, std::string> data;       // device → non-zero data without a signature (force may pass it)
    std::map<std::string, std::string> fs;         // device → UUID of the filesystem on it (what survives a rename)
    std::map<std::string, std::string> ids;        // device → its stable id (by-id link, WWN, serial)
    uint64_t loop_free = 1ull << 50;                // free under loop_dir
    std::map<std::string, uint64_t> written;        // image → bytes it holds
    std::set<std::string> erased, reserves, read_only;
    std::map<std::string, storage::DiskStats> disks;  // mount point → usage
    std::map<std::string, uint64_t> grown;            // mount point → new size
    bool online_grow_impossible = false;
    std::map<std::string, std::string> failed;  // tenant → the Result of its failed unit (not in units)
    std::string ping_problem;                   // what a PQping answers ("" : it accepts connections)
    std::function<void()> during_restart;       // called as a restart begins (outside the machine's lock)
    std::vector<std::string> sql_targets;     // "host port hostaddr" of each wait_sql
    std::string patroni_yml;                  // the last patroni.yml an HA member got
    std::set<std::string> scopes_in_use;      // tenants whose Patroni scope has live members in etcd
    std::vector<std::string> scopes_forgotten, scopes_granted;
    std::vector<std::string> routed_targets;  // the same of each wait_routed (a ping through the proxy)
    uint64_t image_size = 0;               // the last size an image or device was grown to
    std::vector<units::Listener> listeners;              // the host's listening TCP sockets
    std::vector<std::pair<uid_t, uint64_t>> killed;      // (uid, socket inode) of each kill
    std::map<std::string, std::string> role_password;    // tenant → its admin role's password in PostgreSQL
    std::map<std::string, std::string> handed_secret;    // tenant → the SCRAM secret its pool cluster's admin got
    std::map<std::string, uid_t> repos;                  // repository directory → its owner's uid
    std::map<std::string, bool> remote;                  // the repository host's, by tenant: retired?
    std::map<std::string, uid_t> uids;                   // OS user → uid (next_uid on)
    uid_t next_uid = 1000;                               // the lowest free one is given, as useradd may
    size_t backups = 0;                                  // what backup_info lists (each tenant alike)
    std::set<std::string> gone;                          // devices not there at all
    std::string backup_error;                            // run_backup throws this ("" : it succeeds)
    backup::Info info;                                   // what backup_info answers (run_backup adds to it)
    backup::RepoUsage repo;                              // what repository_usage answers
    std::vector<FailedBackupUnit> failed_units;          // failed_backup_units
    std::set<std::string> armed;                         // tenants whose backup timers run (arm_backup_timers; stop_unit stops them)
    std::set<std::string> backups_running;               // tenants with a scheduled backup's unit under way
    std::function<void()> during_backup;                 // called as run_backup begins (outside the machine's lock)
    std::map<std::string, std::string> pool_clusters;    // warm pool disk id → its bootstrap role
    std::map<std::string, std::string> handed_over;      // tenant → the pool disk it took
    BranchCopy branch_copy = BranchCopy::restored;       // how restore_cluster made a branch
    // HA members' Patroni, by member host: its GET /cluster body (absent: it does not answer).
    std::map<std::string, std::string> patroni;
    std::vector<std::string> patroni_asked;             // the member host of each GET /cluster, in order
    std::vector<std::string> switchovers;               // "host user password leader candidate" of each POST /switchover
    std::vector<std::string> patched;                   // "host user k=v,k=v" of each PATCH /config
    std::map<std::string, uint64_t> unit_memory;        // unit → MemoryMax set on it (set_unit_limits)
    std::map<std::string, std::string> after_switchover;  // what `patroni` becomes once a switchover is taken
};
const std::string cfg_mount_root = Config{}.mount_root;

class FakeEffects final : public Effects {
public:
    explicit FakeEffects(FakeMachine& m) : m_(m) {}
    void hit(const std::string& verb) {
        m_.calls.push_back(verb);
        if (m_.fail_at == verb) throw Error(Errc::failed, "injected failure in " + verb);
        if (m_.crash_at == verb) throw Killed{};
    }
    bool port_free(uint16_t p) override { std::lock_guard g(m_.mu); return !m_.busy_ports.count(p); }
    void create_image(const std::string& path, uint64_t) override { std::lock_guard g(m_.mu); hit("create_image"); m_.images.insert(path); }
    void remove_image(const std::string& path) override { std::lock_guard g(m_.mu); hit("remove_image"); m_.images.erase(path); }
    std::string attach_image(const std::string& path) override { std::lock_guard g(m_.mu); hit("attach_image"); m_.attached.insert(path); return "/dev/loop9"; }
    void detach_image(const std::string& path) override { std::lock_guard g(m_.mu); hit("detach_image"); m_.attached.erase(path); }
    storage::DeviceCheck check_device(const std::string& d, bool force) override {
        std::lock_guard g(m_.mu);
        hit("check_device");
        if (auto it = m_.refused.find(d); it != m_.refused.end()) throw Error(Errc::refused, d + ": " + it->second);
        auto sig = m_.signature.count(d) ? m_.signature[d] : "";
        const std::string uuid = m_.fs.count(d) ? m_.fs[d] : "";
        if (sig.empty() && !uuid.empty()) sig = "an ext4 signature (UUID " + uuid + ")";
        if (!sig.empty() && !force) throw Error(Errc::refused, d + " has " + sig);
        const std::string data = sig.empty() && m_.data.count(d) ? m_.data[d] : "";
        if (!data.empty() && !force) throw Error(Errc::refused, d + ": " + data);
        return {.path = d, .signature = sig, .data = data, .fs_uuid = uuid, .device_id = m_.ids.count(d) ? m_.ids[d] : ""};
    }
    Located locate_device(const TenantRecord& t) override {
        std::lock_guard g(m_.mu);
        hit("locate_device");
        std::string dev = t.device;
        if (m_.fs.count(dev) == 0 || m_.fs[dev] != t.fs_uuid)
            for (auto& [d, uuid] : m_.fs)
                if (uuid == t.fs_uuid) dev = d;
        return {.device = dev, .device_id = m_.ids.count(dev) ? m_.ids[dev] : ""};
    }
    // A loop image the machine has holds the tenant's filesystem; a device holds what the maps say.
    DiskFacts disk_facts(const TenantRecord& t, const TenantLayout& l) override {
        std::lock_guard g(m_.mu);
        hit("disk_facts");
        DiskFacts f{.mounted = m_.mounts.count(l.mountpoint) > 0, .unit_running = m_.units.count(l.name) > 0};
        for (auto& [d, uuid] : m_.fs)
            if (!t.fs_uuid.empty() && uuid == t.fs_uuid) f.found_at = d;
        if (t.spec.backend == "loop") {
            if (m_.images.count(t.image)) f.found_at = t.image;
            return f;
        }
        if (m_.gone.count(t.device)) return f;
        if (m_.ids.count(t.device) && !t.device_id.empty() && m_.ids[t.device] != t.device_id) {
            f.other_disk = true;
            f.detail = m_.ids[t.device];
        }
        f.media = m_.signature.count(t.device) || m_.data.count(t.device) || m_.refused.count(t.device) ? DiskFacts::Media::data
                                                                                                       : DiskFacts::Media::blank;
        return f;
    }
    LoopSpace loop_space(const std::vector<std::string>& images) override {
        std::lock_guard g(m_.mu);
        LoopSpace s{.available = m_.loop_free};
        for (auto& i : images) s.written += m_.written.count(i) ? m_.written[i] : 0;
        return s;
    }
    void erase_signatures(const std::string& d) override { std::lock_guard g(m_.mu); hit("erase_signatures"); m_.erased.insert(d); }
    void grow_image(const std::string&, uint64_t size) override { std::lock_guard g(m_.mu); hit("grow_image"); m_.image_size = size; }
    uint64_t device_size(const std::string&) override { std::lock_guard g(m_.mu); return m_.image_size; }
    void grow_filesystem(const TenantRecord&, const TenantLayout& l) override {
        std::lock_guard g(m_.mu);
        hit("grow_disk");
        if (m_.online_grow_impossible) throw Error(Errc::unavailable, "needs CAP_SYS_RESOURCE");
        m_.grown[l.mountpoint] = m_.image_size;
    }
    void grow_offline(const TenantRecord& t) override {
        std::lock_guard g(m_.mu);
        hit("grow_offline");
        if (m_.mounts.count(cfg_mount_root + "/" + t.name)) throw Error(Errc::refused, "mounted");
        m_.grown[cfg_mount_root + "/" + t.name] = m_.image_size;  // the filesystem fills its grown device
    }
    std::optional<storage::DiskStats> disk_usage(const TenantLayout& l) override {
        std::lock_guard g(m_.mu);
        if (auto it = m_.disks.find(l.mountpoint); it != m_.disks.end()) return it->second;
        if (m_.mounts.count(l.mountpoint)) return storage::DiskStats{};  // mounted, usage not staged
        return std::nullopt;
    }
    void ensure_reserve(const TenantLayout& l, uint64_t) override { std::lock_guard g(m_.mu); hit("ensure_reserve"); m_.reserves.insert(l.mountpoint); }
    uint64_t release_reserve(const TenantLayout& l) override { std::lock_guard g(m_.mu); hit("release_reserve"); return m_.reserves.erase(l.mountpoint) ? 1 : 0; }
    void set_read_only(const TenantRecord& t, const TenantLayout&, bool on) override {
        std::lock_guard g(m_.mu);
        hit(on ? "read_only" : "read_write");
        if (on) m_.read_only.insert(t.name);
        else m_.read_only.erase(t.name);
    }
    bool unit_active(const TenantLayout& l) override {
        std::lock_guard g(m_.mu);
        return (l.kind == UnitKind::patroni ? m_.patroni_units : m_.units).count(l.name) > 0;
    }
    void reload_unit(const TenantLayout&) override { std::lock_guard g(m_.mu); hit("reload_unit"); }
    void restart_unit(const TenantLayout& l, uint16_t, const units::Limits&) override {
        if (m_.during_restart) m_.during_restart();
        std::lock_guard g(m_.mu); hit("restart_unit"); m_.failed.erase(l.name); m_.units.insert(l.name);
    }
    std::map<std::string, LiveStatus> unit_states() override {
        std::lock_guard g(m_.mu);
        std::map<std::string, LiveStatus> out;
        for (auto& u : m_.units) out[u] = {.active_state = "active", .sub_state = "running"};
        for (auto& [u, result] : m_.failed) out[u] = {.active_state = "failed", .sub_state = "failed", .result = result};
        return out;
    }
    std::string ping(const TenantRecord&, const TenantLayout&) override { std::lock_guard g(m_.mu); return m_.ping_problem; }
    bool grows_online(const TenantRecord& t) override { std::lock_guard g(m_.mu); return t.spec.filesystem == "xfs" || !m_.online_grow_impossible; }
    void wipe_device(const std::string&, const std::string&) override { std::lock_guard g(m_.mu); hit("wipe_device"); }
    void format(const std::string&, const std::string&, const std::string&, const std::string&) override { std::lock_guard g(m_.mu); hit("format"); }
    void mount(const TenantRecord&, const TenantLayout& l, bool) override { std::lock_guard g(m_.mu); hit("mount"); m_.mounts.insert(l.mountpoint); }
    void unmount(const TenantLayout& l) override { std::lock_guard g(m_.mu); hit("unmount"); m_.mounts.erase(l.mountpoint); }
    units::OsUser create_user(const std::string& name, const std::string&) override { std::lock_guard g(m_.mu);
        hit("create_user");
        if (m_.users.count(name) || m_.foreign_users.count(name)) throw Error(Errc::conflict, name + " exists");
        m_.users.insert(name);
        uid_t uid = 1000;  // the lowest uid no user has: a freed one is given again
        for (bool taken = true; taken; uid += taken ? 1 : 0) {
            taken = false;
            for (auto& [_, u] : m_.uids) taken = taken || u == uid;
        }
        m_.uids[name] = uid;
        return {name, uid, uid, true};
    }
    // userdel: removes whatever user it is given, as the machine would.
    void delete_user(const std::string& name) override { std::lock_guard g(m_.mu); hit("delete_user"); m_.users.erase(name); m_.foreign_users.erase(name); m_.uids.erase(name); }
    std::optional<units::OsUser> find_user(const std::string& name) override { std::lock_guard g(m_.mu);
        if (m_.foreign_users.count(name)) return units::OsUser{name, 42, 65534, false};
        if (!m_.users.count(name)) return std::nullopt;
        const uid_t uid = m_.uids.count(name) ? m_.uids[name] : 1000;
        return units::OsUser{name, uid, uid, true};
    }
    bool has_repository(const std::string& repo) override { std::lock_guard g(m_.mu); return m_.repos.count(repo) > 0; }
    void hand_repository(const TenantLayout& l, const units::OsUser& u) override { std::lock_guard g(m_.mu); hit("hand_repository"); m_.repos[l.backup_dir] = u.uid; }
    void remove_repository(const std::string& repo) override { std::lock_guard g(m_.mu); hit("remove_repository"); m_.repos.erase(repo); }
    // The repository host's repositories: m_.remote (by tenant; true while retired).
    void forget_remote_backups(const TenantLayout& l, bool) override {
        std::lock_guard g(m_.mu); hit("forget_remote_backups"); m_.remote.erase(l.name); m_.repos.erase(l.backup_remote);
    }
    void retire_remote_backups(const TenantLayout& l) override { std::lock_guard g(m_.mu); hit("retire_remote_backups"); m_.remote[l.name] = true; }
    Inventory inventory() override { std::lock_guard g(m_.mu);
        Inventory inv;
        auto base = [](const std::string& path) {
            auto b = path.substr(path.rfind('/') + 1);
            return b.size() > 4 && b.ends_with(".img") ? b.substr(0, b.size() - 4) : b;
        };
        inv.units = m_.units;
        inv.patroni_units = m_.patroni_units;
        for (auto& mnt : m_.mounts) inv.mounts.insert(base(mnt));
        for (auto& img : m_.attached) inv.images.insert(base(img));
        for (auto& u : m_.users) inv.users.insert(u.substr(1));
        return inv;
    }
    void init_cluster(const TenantRecord& t, const TenantLayout&, const units::OsUser&) override {
        std::lock_guard g(m_.mu);
        hit("init_cluster");
        m_.role_password[t.name] = t.password;
    }
    std::optional<std::vector<std::string>> pending_restart(const TenantRecord&, const TenantLayout&) override { return std::nullopt; }
    // Logs in as PostgreSQL would: with the recorded password, or the one a cut-off change left pending.
    void set_password(const TenantRecord& t, const TenantLayout&, const std::string& pw) override {
        std::lock_guard g(m_.mu);
        hit("set_password");
        const std::string& now = m_.role_password[t.name];
        if (now != t.password && (t.password_pending.empty() || now != t.password_pending))
            throw Error(Errc::unavailable, "password authentication failed");
        m_.role_password[t.name] = pw;
    }
    void set_ha_password(const TenantRecord& t, const HaMember& primary, const std::string& pw) override {
        std::lock_guard g(m_.mu);
        hit("set_ha_password " + primary.host);
        m_.role_password[t.name] = pw;
    }
    void adopt_cluster(const TenantRecord&, const TenantLayout&, const units::OsUser&) override { std::lock_guard g(m_.mu); hit("adopt_cluster"); }
    void prepare_backups(const TenantRecord&, const TenantLayout& l, bool) override {
        std::lock_guard g(m_.mu);
        if (!l.backup_repo.empty()) hit("prepare_backups");
    }
    void run_backup(const TenantRecord&, const TenantLayout& l, backup::BackupType) override {
        if (m_.during_backup) m_.during_backup();
        std::lock_guard g(m_.mu);
        hit("run_backup");
        if (!m_.units.count(l.name)) throw Error(Errc::failed, "pgBackRest: unable to connect: its PostgreSQL does not run");
        if (!m_.backup_error.empty()) throw Error(Errc::failed, m_.backup_error);
        m_.info.backups.push_back({.label = "20261130-0" + std::to_string(10000 + m_.info.backups.size()) + "F",
                                   .type = backup::BackupType::full, .stop = std::time(nullptr) + 1});
    }
    backup::Info backup_info(const TenantRecord&, const TenantLayout&) override {
        std::lock_guard g(m_.mu);
        hit("backup_info");
        if (!m_.info.backups.empty() || m_.backups == 0) return m_.info;
        backup::Info i;  // m_.backups alike backups of every tenant
        i.backups.resize(m_.backups);
        i.wal_max = "000000010000000000000007";
        return i;
    }
    backup::RepoUsage repository_usage(const TenantLayout&) override { std::lock_guard g(m_.mu); return m_.repo; }
    std::vector<FailedBackupUnit> failed_backup_units() override { std::lock_guard g(m_.mu); return m_.failed_units; }
    void arm_backup_timers(const TenantRecord&, const TenantLayout& l) override { std::lock_guard g(m_.mu); m_.armed.insert(l.name); }
    bool backup_running(const TenantLayout& l) override { std::lock_guard g(m_.mu); return m_.backups_running.count(l.name) > 0; }
    BranchCopy restore_cluster(const TenantRecord&, const TenantRecord&, const TenantLayout&, const units::OsUser&,
                               const backup::Target&) override {
        std::lock_guard g(m_.mu);
        hit("restore_cluster");
        return m_.branch_copy;
    }
    void hand_over_branch(const TenantRecord&, const TenantLayout&) override {
        std::lock_guard g(m_.mu);
        hit("hand_over_branch");
    }
    void start_unit(const TenantLayout& l, uint16_t, const units::Limits&) override {
        std::lock_guard g(m_.mu); hit("start_unit"); m_.failed.erase(l.name);
        (l.kind == UnitKind::patroni ? m_.patroni_units : m_.units).insert(l.name);
        if (!l.backup_repo.empty()) m_.repos[l.backup_repo] = m_.uids.count(l.os_user) ? m_.uids[l.os_user] : 1000;  // as make_repository
        if (!l.backup_remote.empty()) m_.repos[l.backup_remote] = m_.uids.count(l.os_user) ? m_.uids[l.os_user] : 1000;  // as make_remote_dir
    }
    std::vector<std::string> apply_limits(const TenantRecord& t, const TenantLayout&) override {
        std::lock_guard g(m_.mu);
        hit("apply_limits");
        m_.applied_memory = t.spec.memory;
        return {};
    }
    void set_unit_limits(const TenantRecord& t, const TenantLayout& l) override {
        std::lock_guard g(m_.mu);
        hit("set_unit_limits");
        m_.unit_memory[l.unit] = t.spec.memory;
    }
    void stop_unit(const TenantLayout& l) override {
        std::lock_guard g(m_.mu); hit("stop_unit"); m_.stopped.push_back(l.unit); m_.armed.erase(l.name);
        if (l.kind == UnitKind::patroni) m_.patroni_units.erase(l.name);
        else m_.units.erase(l.name), m_.failed.erase(l.name);
    }
    void wait_sql(const std::string& host, uint16_t port, const std::string&, const std::string&, int,
                  const std::string& hostaddr) override {
        std::lock_guard g(m_.mu);
        hit("wait_sql");
        m_.sql_targets.push_back(host + " " + std::to_string(port) + " " + hostaddr);
    }
    void apply_routes(const std::vector<routes::Route>& rs, bool) override { std::lock_guard g(m_.mu); hit("apply_routes"); m_.routes = rs; }
    std::set<uint16_t> idle_route_ports() override { std::lock_guard g(m_.mu); return m_.idle_route_ports; }
    std::string ca_certificate() override { return "-----BEGIN CERTIFICATE-----\n"; }
    void wait_ready(const TenantRecord&, const TenantLayout&, int) override { std::lock_guard g(m_.mu); hit("wait_sql"); }
    void wait_routed(const std::string& host, uint16_t port, const std::string& hostaddr, int) override {
        std::lock_guard g(m_.mu);
        hit("wait_routed");
        m_.routed_targets.push_back(host + " " + std::to_string(port) + " " + hostaddr);
    }
    void ensure_monitor_login(const TenantRecord&, const TenantLayout&) override { std::lock_guard g(m_.mu); hit("ensure_monitor_login"); }
    void create_monitor_role(const TenantRecord&, const TenantLayout&, int) override { std::lock_guard g(m_.mu); hit("create_monitor_role"); }
    void write_member_files(const TenantRecord&, const TenantLayout&, const units::OsUser&, const std::string& yml) override {
        std::lock_guard g(m_.mu);
        hit("write_member_files");
        m_.patroni_yml = yml;
    }
    void create_ha_admin(const TenantRecord&, const TenantLayout&, int) override { std::lock_guard g(m_.mu); hit("create_ha_admin"); }
    bool ha_scope_in_use(const std::string& t) override {
        std::lock_guard g(m_.mu);
        hit("ha_scope_in_use");
        return m_.scopes_in_use.count(t) > 0;
    }
    void grant_ha_scope(const std::string& t) override {
        std::lock_guard g(m_.mu);
        hit("grant_ha_scope");
        m_.scopes_granted.push_back(t);
    }
    void forget_ha_scope(const std::string& t) override {
        std::lock_guard g(m_.mu);
        hit("forget_ha_scope");
        m_.scopes_forgotten.push_back(t);
    }
    // The warm pool's images are files of the fake machine like any other.
    std::set<std::string> pool_images(const std::string& dir) override {
        std::lock_guard g(m_.mu);
        std::set<std::string> ids;
        for (auto& i : m_.images)
            if (i.starts_with(dir + "/"))
                if (auto id = pool::id_of_image(i.substr(dir.size() + 1))) ids.insert(*id);
        return ids;
    }
    void prepare_pool_cluster(const pool::Disk& d, const std::string&) override {
        std::lock_guard g(m_.mu);
        hit("prepare_pool_cluster");
        m_.pool_clusters[d.id] = d.bootstrap_role;
    }
    void format_pool_disk(const pool::Disk&, const std::string&) override { std::lock_guard g(m_.mu); hit("format_pool_disk"); }
    void stop_pool_jobs() override { std::lock_guard g(m_.mu); hit("stop_pool_jobs"); }
    void rename_image(const std::string& from, const std::string& to) override {
        std::lock_guard g(m_.mu);
        hit("rename_image");
        if (!m_.images.count(from)) throw Error(Errc::failed, "no image " + from);
        if (m_.images.count(to)) throw Error(Errc::failed, to + " exists");
        m_.images.erase(from);
        m_.images.insert(to);
    }
    void relabel(const TenantRecord&) override { std::lock_guard g(m_.mu); hit("relabel"); }
    void hand_over_cluster(const TenantRecord& t, const TenantLayout&, const pool::Disk& d, const std::string& secret) override {
        std::lock_guard g(m_.mu);
        hit("hand_over_cluster");
        m_.handed_over[t.name] = d.id;
        m_.handed_secret[t.name] = secret;
    }
    std::vector<units::Listener> tcp_listeners() override { std::lock_guard g(m_.mu); return m_.listeners; }
    std::vector<pid_t> kill_socket_holders(uid_t uid, uint64_t inode) override {
        std::lock_guard g(m_.mu);
        hit("kill_socket_holders");
        m_.killed.push_back({uid, inode});
        return {4242};
    }
    void ensure_unit_template() override { std::lock_guard g(m_.mu); hit("ensure_unit_template"); }
    LiveStatus live_status(const TenantRecord&, const TenantLayout& l) override {
        std::lock_guard g(m_.mu);
        if (m_.units.count(l.name)) return {.active_state = "active", .sub_state = "running"};
        if (auto it = m_.failed.find(l.name); it != m_.failed.end())
            return {.active_state = "failed", .sub_state = "failed", .result = it->second, .last_exit = "was killed by signal KILL"};
        return {.active_state = "inactive", .sub_state = "dead"};
    }
    std::string patroni_cluster(const HaMember& mb) override {
        std::lock_guard g(m_.mu);
        m_.patroni_asked.push_back(mb.host);
        auto it = m_.patroni.find(mb.host);
        if (it == m_.patroni.end()) throw Error(Errc::unavailable, "GET /cluster failed: member '" + mb.host + "' did not answer");
        return it->second;
    }
    std::string patroni_switchover(const HaMember& mb, const ha::Credentials& rest, const ha::Switchover& s) override {
        std::lock_guard g(m_.mu);
        hit("patroni_switchover");
        m_.switchovers.push_back(mb.host + " " + rest.username + " " + rest.password + " " + s.leader + " " + s.candidate);
        if (!m_.after_switchover.empty()) m_.patroni = m_.after_switchover;
        return "Successfully switched over to \"" + s.candidate + "\"";
    }
    void patroni_patch_parameters(const HaMember& mb, const ha::Credentials& rest,
                                  const std::map<std::string, std::string>& params) override {
        std::lock_guard g(m_.mu);
        hit("patroni_patch_parameters");
        if (!m_.patroni.count(mb.host)) throw Error(Errc::unavailable, "PATCH /config failed: member '" + mb.host + "' did not answer");
        std::string kv;
        for (const auto& [k, v] : params) kv += (kv.empty() ? "" : ",") + k + "=" + v;
        m_.patched.push_back(mb.host + " " + rest.username + " " + kv);
    }

private:
    FakeMachine& m_;
};

// The Manager as the API drives it: request bodies parsed and replies rendered by wire/, so
// these tests read like the API's callers.
struct JsonApi {
    Manager& m;
    json create(const std::string& name, const json& body, const Manager::Progress& progress = {}) {
        return wire::render(m.create(name, wire::parse_create(body), progress))["tenant"];
    }
    json remove(const std::string& name, bool purge) { return wire::render(m.remove(name, purge))["tenant"]; }
    json get(const std::string& name) { return wire::render(m.get(name)); }
    json set_limits(const std::string& name, const json& body) {
        return wire::render(m.set_limits(name, wire::parse_limits(body)))["tenant"];
    }
    json set_password(const std::string& name, const json& body) {
        return wire::render_one(m.set_password(name, wire::parse_password(body)))["tenant"];
    }
    json resize(const std::string& name, const json& body) { return wire::render(m.resize(name, wire::parse_resize(body)))["tenant"]; }
    json list() { return wire::render(m.list())["tenants"]; }
    json reconcile() { return wire::render(m.reconcile())["reconcile"]; }
};

class AManager : public ::testing::Test {
protected:
    void SetUp() override {
        dir = std::filesystem::temp_directory_path() / ("hostd-mgr-" + std::to_string(::getpid()) + "-" +
                                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir);
        cfg.state_dir = dir.string();
        cfg.loop_dir = (dir / "loop").string();
        mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
        mgr->load();
    }
    void TearDown() override { std::filesystem::remove_all(dir); }
    bool machine_is_clean() const {
        return m.images.empty() && m.attached.empty() && m.mounts.empty() && m.users.empty() && m.units.empty() && m.routes.empty();
    }
    std::filesystem::path dir;
    Config cfg;
    FakeMachine m;
    std::unique_ptr<Manager> mgr;
    JsonApi api() { return {*mgr}; }
};

Errc code_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.code();
    }
    ADD_FAILURE() << "no error thrown";
    return Errc::failed;
}

}  // namespace

TEST_F(AManager, CreatesATenantFromAnEmptyRequestWithConfiguredDefaults) {
    auto t = api().create("acme", json::object());
    EXPECT_EQ(t["state"], "ready");
    EXPECT_EQ(t["disk_size"], cfg.disk_size);
    EXPECT_EQ(t["memory"], cfg.memory);
    EXPECT_EQ(m.calls, (std::vector<std::string>{"create_image", "attach_image", "format", "mount", "ensure_reserve", "create_user",
                                                 "init_cluster", "start_unit", "create_monitor_role", "ensure_monitor_login",
                                                 "apply_routes", "wait_routed"}));
    ASSERT_EQ(m.routes.size(), 1u);
    EXPECT_EQ(m.routes[0].public_port, t["public_port"]);
    EXPECT_TRUE(std::filesystem::exists(dir / "tenants" / "acme.toml"));
    EXPECT_NE(t["url"].get<std::string>().find(t["password"].get<std::string>()), std::string::npos);
}

TEST_F(AManager, UndoesEveryStepTakenWhenAnyStepFails) {
    for (std::string verb : {"create_image", "attach_image", "format", "mount", "create_user", "init_cluster",
                             "start_unit", "create_monitor_role", "apply_routes", "wait_routed"}) {
        m.calls.clear();
        m.images.clear(), m.attached.clear(), m.mounts.clear(), m.users.clear(), m.units.clear(), m.routes.clear();
        m.fail_at = verb;
        EXPECT_EQ(code_of([&] { api().create("acme", json::object()); }), Errc::failed) << verb;
        EXPECT_TRUE(m.images.empty() && m.attached.empty() && m.mounts.empty() && m.users.empty() && m.units.empty())
            << "leftovers after a failure in " << verb;
        EXPECT_TRUE(m.routes.empty()) << verb;
        EXPECT_FALSE(std::filesystem::exists(dir / "tenants" / "acme.toml")) << verb;
        EXPECT_EQ(api().list().size(), 0u) << verb;
    }
}

TEST_F(AManager, RefusesBadNamesBeforeTouchingAnything) {
    for (std::string bad : std::vector<std::string>{"", "Acme", "1acme", "-acme", "a/b", "..", "a@b", "a b", "a\nb", "a'b", "a\"b", "acme-", "hostd",
                            std::string(31, 'a')}) {
        EXPECT_EQ(code_of([&] { api().create(bad, json::object()); }), Errc::invalid) << bad;
    }
    EXPECT_TRUE(m.calls.empty());
    EXPECT_NO_THROW(api().create(std::string(30, 'a'), json::object()));
}

TEST_F(AManager, RefusesBadSizesNamingTheField) {
    for (auto [body, field] : std::vector<std::pair<json, std::string>>{
             {{{"disk_size", "0"}}, "disk_size"},
             {{{"disk_size", "100P"}}, "disk_size"},
             {{{"disk_size", "lots"}}, "disk_size"},
             {{{"memory", "1M"}}, "memory"},
             {{{"memory", "100T"}}, "memory"},
             {{{"cpu", 0}}, "cpu"},
             {{{"cpu", 10000}}, "cpu"},
             {{{"cpu", "fast"}}, "cpu"},
             {{{"tasks", 1}}, "tasks"},
             {{{"colour", "blue"}}, "colour"},
             {{{"device", "relative/path"}}, "device"}}) {
        try {
            api().create("acme", body);
            ADD_FAILURE() << body.dump();
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::invalid) << body.dump();
            EXPECT_EQ(e.field(), field) << body.dump();
        }
    }
    EXPECT_TRUE(m.calls.empty());
}

TEST_F(AManager, AnswersConflictForADuplicateAndNotFoundForAnUnknownTenant) {
    api().create("acme", json::object());
    try {
        api().create("acme", json::object());
        ADD_FAILURE() << "created twice";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::conflict);
        EXPECT_STREQ(e.what(), "Tenant 'acme' already exists");
    }
    EXPECT_EQ(code_of([&] { api().get("nobody"); }), Errc::not_found);
    EXPECT_EQ(code_of([&] { api().remove("nobody", false); }), Errc::not_found);
}

TEST_F(AManager, DeleteWithoutPurgeKeepsTheDataForReuse) {
    auto first = api().create("acme", json::object());
    api().remove("acme", false);
    EXPECT_EQ(m.images.size(), 1u);  // the image stays
    EXPECT_TRUE(m.attached.empty() && m.mounts.empty() && m.users.empty() && m.units.empty() && m.routes.empty());
    EXPECT_EQ(code_of([&] { api().create("acme", json::object()); }), Errc::conflict);
    m.calls.clear();
    auto back = api().create("acme", {{"reuse", true}});
    EXPECT_EQ(back["password"], first["password"]);
    EXPECT_EQ(back["fs_uuid"], first["fs_uuid"]);
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "format"), 0);
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "adopt_cluster"), 1);
}

TEST_F(AManager, PurgeDestroysTheData) {
    api().create("acme", json::object());
    api().remove("acme", true);
    EXPECT_TRUE(machine_is_clean());
    EXPECT_EQ(code_of([&] { api().get("acme"); }), Errc::not_found);
    EXPECT_EQ(code_of([&] { api().create("acme", {{"reuse", true}}); }), Errc::not_found);
}

TEST_F(AManager, AFailedReuseKeepsTheDataAndTheRecord) {
    api().create("acme", json::object());
    api().remove("acme", false);
    m.fail_at = "start_unit";
    EXPECT_EQ(code_of([&] { api().create("acme", {{"reuse", true}}); }), Errc::failed);
    EXPECT_EQ(m.images.size(), 1u);
    EXPECT_EQ(api().get("acme")["state"], "detached");
}

TEST_F(AManager, ReportsThePortsDetachedTenantsHoldAndFreesThemOnPurge) {
    cfg.public_ports = {28000, 28009};
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    api().create("acme", json::object());
    api().create("beta", json::object());
    api().remove("beta", false);
    HostInfo h = mgr->host();
    EXPECT_EQ(h.ports_free, 8u);
    EXPECT_EQ(h.ports_detached, 1u);
    api().remove("beta", true);
    h = mgr->host();
    EXPECT_EQ(h.ports_free, 9u);
    EXPECT_EQ(h.ports_detached, 0u);
}

TEST_F(AManager, AReuseTakesANewPortWhenItsOldOneIsTakenMeanwhile) {
    auto first = api().create("acme", json::object());
    api().remove("acme", false);
    const uint16_t old_port = first["public_port"];
    m.busy_ports = {old_port};  // another program took it while acme was detached
    auto back = api().create("acme", {{"reuse", true}});
    EXPECT_NE(back["public_port"], old_port);
    EXPECT_EQ(back["state"], "ready");
}

TEST_F(AManager, NeverHandsOutAPortInUseOnTheHostOrByAnotherTenant) {
    cfg.pg_ports = {25000, 25002};
    cfg.public_ports = {28000, 28002};
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    m.busy_ports = {25000, 28001};
    auto a = api().create("a", json::object());
    auto b = api().create("b", json::object());
    std::set<int> ports{a["port"].get<int>(), b["port"].get<int>(), a["public_port"].get<int>(), b["public_port"].get<int>()};
    EXPECT_EQ(ports, (std::set<int>{25001, 25002, 28000, 28002}));
    EXPECT_EQ(code_of([&] { api().create("c", json::object()); }), Errc::unavailable);
}

TEST_F(AManager, GivesAPortTheProxyListensOnIdleFirstSoItsRouteNeedsNoReload) {
    cfg.public_ports = {28000, 28009};
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    m.idle_route_ports = {28005, 28007, 28030};  // 28030: outside the range
    m.busy_ports = {28005, 28007, 28030};         // HAProxy holds them
    auto a = api().create("a", json::object());
    auto b = api().create("b", json::object());
    EXPECT_EQ((std::set<int>{a["public_port"].get<int>(), b["public_port"].get<int>()}), (std::set<int>{28005, 28007}));
    auto c = api().create("c", json::object());  // none left idle: a free one, as before
    EXPECT_FALSE(m.busy_ports.count(c["public_port"].get<int>()));
    EXPECT_GE(c["public_port"].get<int>(), 28000);
    EXPECT_LE(c["public_port"].get<int>(), 28009);
    // A detached tenant's kept port is its own even when idle: a reuse gets it back, no one else does.
    api().remove("a", false);
    auto d = api().create("d", json::object());
    EXPECT_NE(d["public_port"], a["public_port"]);
    auto back = api().create("a", {{"reuse", true}});
    EXPECT_EQ(back["public_port"], a["public_port"]);
}

TEST_F(AManager, ChecksThePortRouteThroughTheProxyAsAClientWould) {
    cfg.bind_address = "127.0.0.2";
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    auto t = api().create("a", json::object());
    EXPECT_TRUE(m.sql_targets.empty());  // the admin's first login over the socket is create_monitor_role's
    ASSERT_EQ(m.routed_targets.size(), 1u);
    EXPECT_EQ(m.routed_targets[0], "127.0.0.2 " + std::to_string(t["public_port"].get<int>()) + " ");
    EXPECT_EQ(m.routes.at(0).sni_host, "");
}

TEST_F(AManager, RoutesByHostNameOnOneSharedPortWhenADomainIsSet) {
    cfg.proxy = "traefik";
    cfg.domain = "db.example.com";
    cfg.sni_port = 5432;
    cfg.public_ports = {28000, 28000};
    m.busy_ports = {28000};  // port routes would find none free; host-name routes need none
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    auto a = api().create("a", json::object());
    auto b = api().create("b", json::object());
    EXPECT_EQ(a["public_port"], 5432);
    EXPECT_EQ(b["public_port"], 5432);
    ASSERT_EQ(m.routes.size(), 2u);
    for (auto& r : m.routes) {
        EXPECT_EQ(r.sni_host, r.tenant + ".db.example.com");
        EXPECT_EQ(r.public_port, 5432);
    }
    EXPECT_EQ(a["url"], "postgresql://a:" + a["password"].get<std::string>() + "@a.db.example.com:5432/postgres?sslmode=require");
    // The check through the proxy connects to the proxy's address with the tenant's host name as SNI.
    EXPECT_EQ(m.routed_targets.back(), "b.db.example.com 5432 127.0.0.1");
}

TEST_F(AManager, ReloadsItsTenantsFromTheStateDirectory) {
    api().create("acme", json::object());
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.load();
    EXPECT_EQ(JsonApi{again}.get("acme")["state"], "ready");
}

// ---- reconcile: what a crash leaves behind is finished, rolled back or removed ----

namespace {
void write_record(const std::filesystem::path& dir, TenantRecord t) {
    std::filesystem::create_directories(dir / "tenants");
    std::ofstream(dir / "tenants" / (t.name + ".toml")) << to_toml(t);
}
TenantRecord half_made(const Config& cfg, const std::string& name, TenantState st, const std::string& step) {
    TenantRecord t;
    t.name = name;
    t.state = st;
    t.step = step;
    t.spec = {.backend = "loop", .filesystem = "ext4", .disk_size = 1ull << 30, .memory = 256ull << 20, .cpu = 1, .tasks = 512};
    t.image = cfg.loop_dir + "/" + name + ".img";
    t.os_user = "_" + name;
    t.fs_uuid = "11111111-1111-4111-8111-111111111111";
    t.port = 25001;
    t.public_port = 28001;
    return t;
}
}  // namespace

TEST_F(AManager, RollsBackACreateThatACrashCutOffMidway) {
    write_record(dir, half_made(cfg, "acme", TenantState::creating, "initdb"));
    m.images = {cfg.loop_dir + "/acme.img"};
    m.attached = m.images;
    m.mounts = {cfg.mount_root + "/acme"};
    m.users = {"_acme"};
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.start();
    EXPECT_TRUE(machine_is_clean());
    EXPECT_EQ(code_of([&] { JsonApi{again}.get("acme"); }), Errc::not_found);
    EXPECT_FALSE(std::filesystem::exists(dir / "tenants" / "acme.toml"));
}

TEST_F(AManager, FinishesADeleteThatACrashCutOffMidway) {
    auto t = half_made(cfg, "acme", TenantState::deleting, "unmount");
    t.purge = false;
    write_record(dir, t);
    m.images = {cfg.loop_dir + "/acme.img"};
    m.attached = m.images;
    m.users = {"_acme"};
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.start();
    EXPECT_TRUE(m.attached.empty() && m.users.empty() && m.mounts.empty());
    EXPECT_EQ(m.images.size(), 1u);  // kept: the delete was without purge
    EXPECT_EQ(JsonApi{again}.get("acme")["state"], "detached");
}

TEST_F(AManager, BringsBackEveryReadyTenantAfterAReboot) {
    api().create("acme", json::object());
    // A reboot: nothing is attached, mounted or running any more; files and users remain.
    m.attached.clear();
    m.mounts.clear();
    m.units.clear();
    m.routes.clear();
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.start();
    EXPECT_EQ(m.attached.size(), 1u);
    EXPECT_EQ(m.mounts.size(), 1u);
    EXPECT_EQ(m.units, (std::set<std::string>{"acme"}));
    EXPECT_EQ(m.routes.size(), 1u);
}

TEST_F(AManager, LeavesATenantDownAndSaysWhyWhenItsDiskIsMissing) {
    api().create("acme", json::object());
    m.attached.clear();
    m.mounts.clear();
    m.units.clear();
    m.fail_at = "mount";
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.start();
    EXPECT_TRUE(m.units.empty());   // never started on an unmounted directory
    EXPECT_TRUE(m.routes.empty());  // never routed while down
    EXPECT_NE(JsonApi{again}.get("acme").value("problem", ""), "");
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "init_cluster"), 1);  // only the original create
}

TEST_F(AManager, DropsTheRouteOfATenantWhoseUnitFailsToStartAfterAReboot) {
    api().create("acme", json::object());
    api().create("beta", json::object());
    ASSERT_EQ(m.routes.size(), 2u);
    // A reboot; the route file is still there (m.routes kept), acme's unit will not start.
    m.attached.clear();
    m.mounts.clear();
    m.units.clear();
    m.fail_at = "start_unit";
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.start();
    EXPECT_TRUE(m.units.empty());
    EXPECT_TRUE(m.routes.empty()) << "a route points at a tenant that is not running";
    EXPECT_NE(JsonApi{again}.get("acme").value("problem", ""), "");
}

TEST_F(AManager, RemovesWhatNoTenantOwns) {
    m.units = {"ghost"};
    m.mounts = {cfg.mount_root + "/ghost"};
    m.attached = {cfg.loop_dir + "/ghost.img"};
    m.users = {"_ghost"};
    api().reconcile();
    EXPECT_TRUE(m.units.empty() && m.mounts.empty() && m.attached.empty() && m.users.empty());
}

// ---- hostd removes only what it made ----

TEST_F(AManager, RefusesATenantWhoseOsUserNameIsTakenBeforeTouchingAnything) {
    m.foreign_users = {"_apt"};  // Debian's own
    try {
        api().create("apt", json::object());
        ADD_FAILURE() << "created";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::conflict);
        EXPECT_NE(std::string(e.what()).find("'_apt' already exists and is not hostd's"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(m.calls.empty());
    EXPECT_EQ(m.foreign_users, (std::set<std::string>{"_apt"}));
    EXPECT_EQ(code_of([&] { api().get("apt"); }), Errc::not_found);
}

TEST_F(AManager, NeverRemovesAnOsUserItDidNotMakeWhenRollingBackACreateACrashCutOff) {
    // hostd died at the "user" step of tenant "apt", whose OS user name is Debian's "_apt".
    for (std::string step : {"user", "initdb", "start"}) {
        SCOPED_TRACE(step);
        write_record(dir, half_made(cfg, "apt", TenantState::creating, step));
        m.images = {cfg.loop_dir + "/apt.img"};
        m.attached = m.images;
        m.mounts = {cfg.mount_root + "/apt"};
        m.foreign_users = {"_apt"};
        Manager again(cfg, std::make_unique<FakeEffects>(m));
        again.start();
        EXPECT_EQ(m.foreign_users, (std::set<std::string>{"_apt"}));
        EXPECT_TRUE(m.attached.empty() && m.mounts.empty());  // what hostd made is gone
        EXPECT_EQ(code_of([&] { JsonApi{again}.get("apt"); }), Errc::not_found);
    }
}

TEST_F(AManager, NeverRemovesAnOsUserItDidNotMakeWhenDeletingATenant) {
    api().create("acme", json::object());
    // Someone replaced the tenant's account with one of their own.
    m.users.erase("_acme");
    m.foreign_users = {"_acme"};
    api().remove("acme", true);
    EXPECT_EQ(m.foreign_users, (std::set<std::string>{"_acme"}));
    EXPECT_EQ(code_of([&] { api().get("acme"); }), Errc::not_found);
}

TEST_F(AManager, LeavesATenantDownWhenItsOsUserIsNotHostds) {
    api().create("acme", json::object());
    m.units.clear();
    m.users.erase("_acme");
    m.foreign_users = {"_acme"};
    m.calls.clear();
    api().reconcile();
    EXPECT_TRUE(m.units.empty()) << "would run as someone else's account";
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "adopt_cluster"), 0);
    EXPECT_NE(api().get("acme").value("problem", "").find("not made by hostd"), std::string::npos);
    EXPECT_EQ(m.foreign_users, (std::set<std::string>{"_acme"}));
}

TEST_F(AManager, ReconcileIsIdempotent) {
    api().create("acme", json::object());
    api().create("beta", json::object());
    api().remove("beta", false);
    auto first = api().reconcile();
    auto second = api().reconcile();
    EXPECT_TRUE(second["actions"].empty()) << second.dump();
    EXPECT_EQ(m.units, (std::set<std::string>{"acme"}));
    EXPECT_EQ(m.routes.size(), 1u);
}

TEST_F(AManager, TwentyParallelCreatesOfDistinctNamesAllSucceed) {
    std::vector<std::thread> ts;
    std::atomic<int> ok{0};
    for (int i = 0; i < 20; i++)
        ts.emplace_back([&, i] {
            try {
                api().create("t" + std::to_string(i), json::object());
                ok++;
            } catch (const Error&) {
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(ok, 20);
    EXPECT_EQ(api().list().size(), 20u);
}

TEST_F(AManager, ChangesLimitsLiveAndRemembersThem) {
    api().create("acme", json::object());
    auto t = api().set_limits("acme", {{"memory", "512M"}, {"cpu", 0.5}});
    EXPECT_EQ(t["memory"], 512ull << 20);
    EXPECT_EQ(m.applied_memory, 512ull << 20);
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.load();
    EXPECT_EQ(JsonApi{again}.get("acme")["memory"], 512ull << 20);
    EXPECT_DOUBLE_EQ(JsonApi{again}.get("acme")["cpu"].get<double>(), 0.5);
}

TEST_F(AManager, RefusesALimitsChangeItCannotMakeLive) {
    api().create("acme", json::object());
    EXPECT_EQ(code_of([&] { api().set_limits("acme", {{"disk_size", "2G"}}); }), Errc::invalid);
    EXPECT_EQ(code_of([&] { api().set_limits("acme", {{"memory", "1M"}}); }), Errc::invalid);
    EXPECT_EQ(code_of([&] { api().set_limits("nobody", {{"memory", "512M"}}); }), Errc::not_found);
}

TEST_F(AManager, KeepsTheOldLimitsWhenApplyingNewOnesFails) {
    api().create("acme", json::object());
    m.fail_at = "apply_limits";
    EXPECT_EQ(code_of([&] { api().set_limits("acme", {{"memory", "512M"}}); }), Errc::failed);
    EXPECT_EQ(api().get("acme")["memory"], cfg.memory);
}

TEST_F(AManager, ValidatesPostgresqlSettingsBeforeTouchingAnything) {
    try {
        api().create("acme", {{"settings", {{"port", 5433}}}});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid);
        EXPECT_EQ(e.field(), "settings.port");
    }
    EXPECT_EQ(code_of([&] { api().create("acme", {{"settings", {{"work_mem", "lots"}}}}); }), Errc::invalid);
    EXPECT_EQ(code_of([&] { api().create("acme", {{"settings", {{"wrok_mem", "4MB"}}}}); }), Errc::invalid);
    EXPECT_TRUE(m.calls.empty());
    auto t = api().create("acme", {{"settings", {{"work_mem", "4MB"}, {"jit", false}}}});
    EXPECT_EQ(t["settings"]["work_mem"], "4MB");
    EXPECT_EQ(t["settings"]["jit"], "off");
}

TEST_F(AManager, EditsSettingOverridesKeepingTheOnesItDoesNotName) {
    api().create("acme", {{"settings", {{"work_mem", "5MB"}}}});
    auto t = api().set_limits("acme", {{"set_settings", {{"statement_timeout", "5s"}}}});
    EXPECT_EQ(t["settings"], json({{"work_mem", "5MB"}, {"statement_timeout", "5s"}}));
    t = api().set_limits("acme", {{"set_settings", {{"WORK_MEM", "6MB"}}}});
    EXPECT_EQ(t["settings"], json({{"work_mem", "6MB"}, {"statement_timeout", "5s"}}));
    t = api().set_limits("acme", {{"unset_settings", {"work_mem"}}});
    EXPECT_EQ(t["settings"], json({{"statement_timeout", "5s"}}));
    // A bad value is refused naming it, and the overrides stay as they were.
    EXPECT_EQ(code_of([&] { api().set_limits("acme", {{"set_settings", {{"work_mem", "lots"}}}}); }), Errc::invalid);
    EXPECT_EQ(api().get("acme")["settings"], json({{"statement_timeout", "5s"}}));
    t = api().set_limits("acme", {{"reset_settings", true}});
    EXPECT_EQ(t["settings"], json::object());
    // The replacing form of before still replaces.
    api().set_limits("acme", {{"set_settings", {{"jit", "off"}}}});
    t = api().set_limits("acme", {{"settings", {{"work_mem", "4MB"}}}});
    EXPECT_EQ(t["settings"], json({{"work_mem", "4MB"}}));
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.load();
    EXPECT_EQ(JsonApi{again}.get("acme")["settings"], json({{"work_mem", "4MB"}}));
}

TEST_F(AManager, ChecksTheOverridesAnEditLeavesAsAWhole) {
    // wal_level=minimal needs max_wal_senders = 0: dropping that override would stop the server.
    api().create("acme", {{"settings", {{"wal_level", "minimal"}, {"max_wal_senders", 0}}}});
    try {
        api().set_limits("acme", {{"unset_settings", {"max_wal_senders"}}});
        ADD_FAILURE() << "an edit that breaks a combination was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid);
        EXPECT_EQ(e.field(), "settings.wal_level");
    }
    EXPECT_EQ(api().get("acme")["settings"]["max_wal_senders"], "0");
}

TEST_F(AManager, AReuseBringsBackTheRecordedLimitsAndSettings) {
    api().create("acme", {{"memory", "300M"}, {"tasks", 300}, {"settings", {{"work_mem", "5MB"}}}});
    api().remove("acme", false);
    auto back = api().create("acme", {{"reuse", true}});
    EXPECT_EQ(back["memory"], 300ull << 20);
    EXPECT_EQ(back["tasks"], 300);
    EXPECT_EQ(back["settings"], json({{"work_mem", "5MB"}}));
    EXPECT_EQ(m.applied_memory, 0u) << "no live change was needed";
    api().remove("acme", false);
    back = api().create("acme", {{"reuse", true}, {"memory", "400M"}, {"settings", {{"jit", false}}}});
    EXPECT_EQ(back["memory"], 400ull << 20);
    EXPECT_EQ(back["tasks"], 300);
    EXPECT_EQ(back["settings"], json({{"work_mem", "5MB"}, {"jit", "off"}}));
}

TEST_F(AManager, RefusesAReuseWithOptionsThatCannotApplyAndKeepsTheTenantDetached) {
    api().create("acme", json::object());
    api().remove("acme", false);
    m.calls.clear();
    for (auto [body, field] : std::vector<std::pair<json, std::string>>{
             {{{"reuse", true}, {"disk_size", "2G"}}, "disk_size"},
             {{{"reuse", true}, {"filesystem", "xfs"}}, "filesystem"},
             {{{"reuse", true}, {"settings", {{"port", 1}}}}, "settings.port"}}) {
        try {
            api().create("acme", body);
            ADD_FAILURE() << body.dump();
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::invalid) << body.dump();
            EXPECT_EQ(e.field(), field);
        }
    }
    EXPECT_TRUE(m.calls.empty());
    EXPECT_EQ(api().get("acme")["state"], "detached");
}

TEST_F(AManager, ChangesTheAdminPasswordInPostgresqlThenInTheRecord) {
    auto first = api().create("acme", json::object());
    auto t = api().set_password("acme", json::object());
    const std::string generated = t["password"];
    EXPECT_NE(generated, first["password"]);
    EXPECT_EQ(generated.size(), 24u);
    EXPECT_EQ(m.role_password["acme"], generated);
    EXPECT_NE(t["url"].get<std::string>().find(generated), std::string::npos);
    t = api().set_password("acme", {{"password", "given pass phrase"}});
    EXPECT_EQ(m.role_password["acme"], "given pass phrase");
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.load();
    EXPECT_EQ(JsonApi{again}.get("acme")["password"], "given pass phrase");
    // Refused before anything is touched.
    m.calls.clear();
    EXPECT_EQ(code_of([&] { api().set_password("acme", {{"password", "short"}}); }), Errc::invalid);
    EXPECT_EQ(code_of([&] { api().set_password("acme", {{"password", "line\nbreak-pass"}}); }), Errc::invalid);
    EXPECT_EQ(code_of([&] { api().set_password("nobody", json::object()); }), Errc::not_found);
    EXPECT_TRUE(m.calls.empty());
    // A tenant that changed its password itself: hostd cannot log in, and keeps its record.
    m.role_password["acme"] = "changed by the tenant";
    EXPECT_EQ(code_of([&] { api().set_password("acme", json::object()); }), Errc::unavailable);
    EXPECT_EQ(api().get("acme")["password"], "given pass phrase");
}

TEST_F(AManager, APasswordChangeCutOffAfterPostgresqlTookItCanBeMadeAgain) {
    api().create("acme", json::object());
    // As a crash leaves it: the record has the old password and the new one pending, the role the new one.
    auto path = dir / "tenants" / "acme.toml";
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    TenantRecord r = from_toml(text, path.string());
    r.password_pending = "the new one, taken";
    std::ofstream(path) << to_toml(r);
    m.role_password["acme"] = "the new one, taken";
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.load();
    auto t = JsonApi{again}.set_password("acme", {{"password", "and another one"}});
    EXPECT_EQ(t["password"], "and another one");
    EXPECT_EQ(m.role_password["acme"], "and another one");
}

// ---- device backend: claims, pool, force ----

TEST_F(AManager, NeverGivesOneDeviceToTwoTenants) {
    api().create("a", {{"device", "/dev/vdb"}});
    // Even if the device checked out blank (a detached tenant's disk would not; this is the
    // record speaking, not the probe).
    auto e = code_of([&] { api().create("b", {{"device", "/dev/vdb"}, {"force", true}}); });
    EXPECT_EQ(e, Errc::conflict);
    EXPECT_FALSE(std::count(m.calls.begin(), m.calls.end(), "erase_signatures"));
    api().remove("a", /*purge=*/false);  // detached: the data is kept, so the claim stays
    EXPECT_EQ(code_of([&] { api().create("b", {{"device", "/dev/vdb"}}); }), Errc::conflict);
}

TEST_F(AManager, ForceErasesOnlyASignatureAndSaysWhat) {
    m.signature["/dev/vdc"] = "an ext4 signature (UUID 1234)";
    EXPECT_EQ(code_of([&] { api().create("a", {{"device", "/dev/vdc"}}); }), Errc::refused);
    EXPECT_EQ(code_of([&] { api().create("a", {{"force", true}}); }), Errc::invalid);  // loop backend: no force
    auto t = api().create("a", {{"device", "/dev/vdc"}, {"force", true}});
    EXPECT_EQ(t["destroyed"], "an ext4 signature (UUID 1234) on /dev/vdc");
    EXPECT_TRUE(m.erased.count("/dev/vdc"));
    // Anything else the check refuses (mounted, partitioned, held...) stays refused with force.
    m.refused["/dev/vdd"] = "is mounted at /mnt";
    EXPECT_EQ(code_of([&] { api().create("b", {{"device", "/dev/vdd"}, {"force", true}}); }), Errc::refused);
    EXPECT_FALSE(m.erased.count("/dev/vdd"));
}

TEST_F(AManager, PicksTheFirstUsableDeviceOfThePool) {
    cfg.devices = {"/dev/vdb", "/dev/vdc", "/dev/vdd", "/dev/vde"};
    cfg.backend = "device";
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    m.refused["/dev/vdb"] = "has a partition table (gpt)";
    m.signature["/dev/vdc"] = "a swap signature";  // never forced from the pool
    EXPECT_EQ(api().create("a", json::object())["device"], "/dev/vdd");
    EXPECT_EQ(api().create("b", json::object())["device"], "/dev/vde");  // vdd is a's now
    try {
        api().create("c", json::object());
        FAIL() << "a full pool must refuse";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::unavailable);
        EXPECT_NE(std::string(e.what()).find("partition table"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("claimed by tenant 'a'"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(dir / "tenants" / "c.toml"));
}

TEST_F(AManager, ForceFormatsOverDataWithoutASignatureAndSaysWhatItWas) {
    m.data["/dev/vdc"] = "non-zero data at offset 12M (no signature libblkid knows)";
    EXPECT_EQ(code_of([&] { api().create("a", {{"device", "/dev/vdc"}}); }), Errc::refused);
    EXPECT_FALSE(std::filesystem::exists(dir / "tenants" / "a.toml"));
    auto t = api().create("a", {{"device", "/dev/vdc"}, {"force", true}});
    EXPECT_EQ(t["destroyed"], "non-zero data at offset 12M (no signature libblkid knows) on /dev/vdc");
    EXPECT_FALSE(m.erased.count("/dev/vdc")) << "no signature to erase: mkfs writes over the data";
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "format"), 1);
}

// ---- device backend: a disk is known by what survives a reboot that renames it ----

namespace {
// A reboot that gives the disk at `from` the kernel name `to` (and nothing is mounted or runs).
void rename_disk(FakeMachine& m, const std::string& from, const std::string& to) {
    m.fs[to] = m.fs[from];
    m.fs.erase(from);
    if (m.ids.count(from)) {
        m.ids[to] = m.ids[from];
        m.ids.erase(from);
    }
    m.mounts.clear();
    m.units.clear();
}
}  // namespace

TEST_F(AManager, RecordsAndShowsTheStableIdOfATenantsDisk) {
    m.ids["/dev/vdb"] = "/dev/disk/by-id/virtio-DISK-A";
    EXPECT_EQ(api().create("a", {{"device", "/dev/vdb"}})["device_id"], "/dev/disk/by-id/virtio-DISK-A");
    EXPECT_EQ(api().create("l", json::object())["device_id"], "") << "a loop device has no stable id";
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.load();
    EXPECT_EQ(JsonApi{again}.get("a")["device_id"], "/dev/disk/by-id/virtio-DISK-A");
}

TEST_F(AManager, RefusesAnotherTenantsDiskOfferedAgainUnderAnotherName) {
    m.ids["/dev/vdb"] = "serial:DISK-A";
    auto a = api().create("a", {{"device", "/dev/vdb"}});
    m.fs["/dev/vdb"] = a["fs_uuid"];  // what the format wrote
    api().remove("a", /*purge=*/false);  // kept: its data waits for a reuse
    rename_disk(m, "/dev/vdb", "/dev/vdc");
    m.calls.clear();
    // Even with force: the filesystem on it is a's.
    try {
        api().create("b", {{"device", "/dev/vdc"}, {"force", true}});
        FAIL() << "a's disk was handed to b under its new name";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::conflict);
        EXPECT_NE(std::string(e.what()).find("claimed by tenant 'a' (detached): it carries that tenant's filesystem"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_FALSE(std::count(m.calls.begin(), m.calls.end(), "erase_signatures"));
    EXPECT_FALSE(std::count(m.calls.begin(), m.calls.end(), "format"));
    // Its filesystem gone (wiped by hand, say) but the disk the same one: still a's.
    m.fs.erase("/dev/vdc");
    try {
        api().create("b", {{"device", "/dev/vdc"}, {"force", true}});
        FAIL() << "a's disk was handed to b";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::conflict);
        EXPECT_NE(std::string(e.what()).find("it is that tenant's disk (serial:DISK-A)"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(dir / "tenants" / "b.toml"));
}

TEST_F(AManager, FollowsADeviceTenantsDiskToItsNewNameAfterAReboot) {
    auto a = api().create("a", {{"device", "/dev/vdb"}});
    m.fs["/dev/vdb"] = a["fs_uuid"];
    rename_disk(m, "/dev/vdb", "/dev/vdc");
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.start();
    auto back = JsonApi{again}.get("a");
    EXPECT_EQ(back["device"], "/dev/vdc");
    EXPECT_EQ(back.value("problem", ""), "");
    EXPECT_EQ(m.units, (std::set<std::string>{"a"}));
    // Under its new name it is a's; its old name is free for a new disk.
    EXPECT_EQ(code_of([&] { JsonApi{again}.create("b", {{"device", "/dev/vdc"}, {"force", true}}); }), Errc::conflict);
    EXPECT_EQ(JsonApi{again}.create("b", {{"device", "/dev/vdb"}})["device"], "/dev/vdb");
}

TEST_F(AManager, BringsBackAKeptDiskUnderItsNewName) {
    auto a = api().create("a", {{"device", "/dev/vdb"}});
    m.fs["/dev/vdb"] = a["fs_uuid"];
    api().remove("a", /*purge=*/false);
    rename_disk(m, "/dev/vdb", "/dev/vdd");
    m.ids["/dev/vdd"] = "serial:DISK-A";  // a record written before stable ids were: filled in now
    auto back = api().create("a", {{"reuse", true}});
    EXPECT_EQ(back["device"], "/dev/vdd");
    EXPECT_EQ(back["device_id"], "serial:DISK-A");
    EXPECT_EQ(back["fs_uuid"], a["fs_uuid"]);
}

// ---- loop backend: images are sparse, their room is not ----

TEST_F(AManager, RefusesALoopImageThatWouldOutgrowLoopDirSayingWhatIsFreeCommittedAndAsked) {
    m.loop_free = 3ull << 30;
    api().create("a", {{"disk_size", "1G"}});
    api().create("b", {{"disk_size", "1G"}});
    m.calls.clear();
    try {
        api().create("c", {{"disk_size", "2G"}});
        FAIL() << "4G of images on 3G";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::refused);
        EXPECT_EQ(e.field(), "disk_size");
        const std::string msg = e.what();
        for (const char* part : {"loop image of 2G", "3G free", "images are 2G", "loop_overcommit = 1", "at most 1G"})
            EXPECT_NE(msg.find(part), std::string::npos) << part << " not in: " << msg;
    }
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "create_image"), 0);
    EXPECT_FALSE(std::filesystem::exists(dir / "tenants" / "c.toml"));
    EXPECT_EQ(api().list().size(), 2u);
    EXPECT_EQ(api().create("c", {{"disk_size", "1G"}})["state"], "ready");  // exactly the room left
    EXPECT_EQ(mgr->host().loop_dir_available, 3ull << 30);
}

TEST_F(AManager, CountsKeptImagesAndWhatImagesHoldButNotDevices) {
    m.loop_free = 2ull << 30;
    api().create("a", {{"disk_size", "1G"}});
    api().remove("a", /*purge=*/false);  // its image stays, and so does its claim on the room
    EXPECT_EQ(code_of([&] { api().create("b", {{"disk_size", "2G"}}); }), Errc::refused);
    api().create("d", {{"device", "/dev/vdb"}, {"disk_size", "100G"}});  // not under loop_dir
    // What a's image holds already is space it had; the room is free plus that.
    m.written[cfg.loop_dir + "/a.img"] = 1ull << 30;
    EXPECT_EQ(api().create("b", {{"disk_size", "2G"}})["state"], "ready");
}

TEST_F(AManager, TheOvercommitRatioScalesTheRoomAndZeroTurnsTheLimitOff) {
    m.loop_free = 1ull << 30;
    cfg.loop_overcommit = 2;
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    api().create("a", {{"disk_size", "1G"}});
    api().create("b", {{"disk_size", "1G"}});
    EXPECT_EQ(code_of([&] { api().create("c", {{"disk_size", "1G"}}); }), Errc::refused);
    cfg.loop_overcommit = 0;
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    EXPECT_EQ(api().create("c", {{"disk_size", "100G"}})["state"], "ready");
}

TEST_F(AManager, RefusesToGrowALoopImageBeyondItsRoom) {
    m.loop_free = 3ull << 30;
    api().create("a", {{"disk_size", "1G"}});
    api().create("b", {{"disk_size", "1G"}});
    m.calls.clear();
    try {
        api().resize("a", {{"size", "3G"}});
        FAIL() << "4G of images on 3G";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::refused);
        EXPECT_EQ(e.field(), "size");
        EXPECT_NE(std::string(e.what()).find("at most 2G"), std::string::npos) << e.what();
    }
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "grow_image"), 0);
    EXPECT_EQ(api().get("a")["disk_size"], 1ull << 30);
    EXPECT_EQ(api().resize("a", {{"size", "2G"}})["disk_size"], 2ull << 30);
}

// ---- resize ----

TEST_F(AManager, GrowsADiskAndRefusesToShrinkIt) {
    api().create("acme", {{"disk_size", "1G"}});
    EXPECT_EQ(code_of([&] { api().resize("acme", {{"size", "512M"}}); }), Errc::refused);
    EXPECT_EQ(code_of([&] { api().resize("acme", json::object()); }), Errc::invalid);
    EXPECT_EQ(code_of([&] { api().resize("acme", {{"size", "0"}}); }), Errc::invalid);
    EXPECT_EQ(code_of([&] { api().resize("nobody", {{"size", "2G"}}); }), Errc::not_found);
    EXPECT_TRUE(m.grown.empty());
    auto t = api().resize("acme", {{"size", "2G"}});
    EXPECT_EQ(t["disk_size"], 2ull << 30);
    EXPECT_EQ(m.grown.at(cfg.mount_root + "/acme"), 2ull << 30);
    // The record keeps the new size across a restart of hostd.
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.load();
    EXPECT_EQ(JsonApi{again}.get("acme")["disk_size"], 2ull << 30);
}

TEST_F(AManager, StartsATenantThatWentDownOnAFullDiskAfterGrowingIt) {
    api().create("acme", {{"disk_size", "1G"}});
    m.units.erase("acme");  // PostgreSQL stopped: no space for WAL
    m.calls.clear();
    api().resize("acme", {{"size", "2G"}});
    EXPECT_TRUE(m.units.count("acme"));
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "start_unit"), 1);
}

TEST_F(AManager, GrowsOfflineWithAShortRestartWhenTheKernelWillNotGrowOnline) {
    api().create("acme", {{"disk_size", "1G"}});
    m.online_grow_impossible = true;
    m.calls.clear();
    auto t = api().resize("acme", {{"size", "2G"}});
    EXPECT_EQ(t["online"], false);
    EXPECT_EQ(m.calls, (std::vector<std::string>{"grow_image", "grow_disk", "stop_unit", "unmount", "grow_offline", "mount",
                                                 "start_unit", "wait_sql", "wait_routed"}));
    EXPECT_EQ(m.grown.at(cfg.mount_root + "/acme"), 2ull << 30);
    EXPECT_TRUE(m.units.count("acme"));
    EXPECT_TRUE(m.mounts.count(cfg.mount_root + "/acme"));
}

// ---- disk-full guard ----

TEST(GuardDecide, EngagesBelowTheLowMarkAndReleasesAboveTheHighMarkWithoutTheReserve) {
    Config c;  // 5 % / 10 %
    constexpr uint64_t MiB = 1ull << 20;
    auto disk = [](uint64_t total, uint64_t avail) { return storage::DiskStats{.bytes_total = total, .bytes_available = avail}; };
    // A 1000 MiB disk: the percentages rule (50 MiB / 100 MiB).
    EXPECT_EQ(guard_decide(disk(1000 * MiB, 60 * MiB), false, 30 * MiB, c), GuardAction::none);
    EXPECT_EQ(guard_decide(disk(1000 * MiB, 49 * MiB), false, 30 * MiB, c), GuardAction::engage);
    EXPECT_EQ(guard_decide(disk(1000 * MiB, 120 * MiB), true, 30 * MiB, c), GuardAction::none);  // 90 MiB without the reserve
    EXPECT_EQ(guard_decide(disk(1000 * MiB, 131 * MiB), true, 30 * MiB, c), GuardAction::release);
    // A 160 MiB disk: 5 % is less than one WAL segment; the floor (two segments, 32 MiB) rules.
    EXPECT_EQ(guard_decide(disk(160 * MiB, 31 * MiB), false, 16 * MiB, c), GuardAction::engage);
    EXPECT_EQ(guard_decide(disk(160 * MiB, 33 * MiB), false, 16 * MiB, c), GuardAction::none);
    EXPECT_EQ(guard_decide(disk(160 * MiB, 60 * MiB), true, 16 * MiB, c), GuardAction::none);  // 44 < 48 MiB
    EXPECT_EQ(guard_decide(disk(160 * MiB, 65 * MiB), true, 16 * MiB, c), GuardAction::release);
    EXPECT_EQ(reserve_bytes(c, 1ull << 30), 32ull << 20);
    EXPECT_EQ(reserve_bytes(c, 100ull << 20), 10ull << 20);  // at most a tenth of a small disk
}

TEST_F(AManager, GuardMakesANearlyFullTenantReadOnlyAndBackWhenSpaceReturns) {
    api().create("acme", {{"disk_size", "1G"}});
    const std::string mp = cfg.mount_root + "/acme";
    EXPECT_TRUE(m.reserves.count(mp));
    m.disks[mp] = {.bytes_total = 1000 << 20, .bytes_available = 500 << 20};
    mgr->guard_tick();
    EXPECT_FALSE(m.read_only.count("acme"));
    m.disks[mp].bytes_available = 20 << 20;  // 2 %
    mgr->guard_tick();
    EXPECT_TRUE(m.read_only.count("acme"));
    EXPECT_FALSE(m.reserves.count(mp));  // handed to the tenant
    EXPECT_EQ(api().get("acme")["read_only"], true);
    mgr->guard_tick();  // still full: nothing new
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "read_only"), 1);
    m.disks[mp].bytes_available = 400 << 20;  // a DROP TABLE, or a resize
    mgr->guard_tick();
    EXPECT_FALSE(m.read_only.count("acme"));
    EXPECT_TRUE(m.reserves.count(mp));
    EXPECT_EQ(api().get("acme")["read_only"], false);
}

TEST_F(AManager, GuardSkipsStoppedAndHibernatedTenants) {
    cfg.hibernate_after = 60;
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    for (const char* n : {"acme", "beta", "gamma"}) {
        api().create(n, {{"disk_size", "1G"}});
        m.disks[cfg.mount_root + "/" + n] = {.bytes_total = 1000 << 20, .bytes_available = 20 << 20};  // 2 %: engage
    }
    ASSERT_TRUE(mgr->hibernate("acme", [] { return true; }));
    mgr->stop("beta");
    mgr->guard_tick();
    EXPECT_FALSE(m.read_only.count("acme")) << "hibernated: nothing runs to fill it";
    EXPECT_FALSE(m.read_only.count("beta")) << "stopped: likewise";
    EXPECT_TRUE(m.read_only.count("gamma"));
    mgr->start("beta");
    mgr->guard_tick();
    EXPECT_TRUE(m.read_only.count("beta")) << "checked again once it runs";
}

TEST_F(AManager, GuardLeavesATenantBusyWithAnOperationAlone) {
    api().create("acme", json::object());
    const std::string mp = cfg.mount_root + "/acme";
    m.disks[mp] = {.bytes_total = 1000, .bytes_available = 1};
    std::thread slow([&] {
        std::lock_guard g(m.mu);  // holds the fake machine: set_limits waits inside its operation
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::thread op([&] { api().set_limits("acme", {{"memory", "512M"}}); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    mgr->guard_tick();  // must not wait for, or interleave with, the operation
    slow.join();
    op.join();
    EXPECT_FALSE(m.read_only.count("acme"));
    mgr->guard_tick();
    EXPECT_TRUE(m.read_only.count("acme"));
}

TEST_F(AManager, AnOperationWaitsForTheGuardInsteadOfFailing) {
    api().create("acme", json::object());
    m.disks[cfg.mount_root + "/acme"] = {.bytes_total = 1000ull << 20, .bytes_available = 900ull << 20};
    std::unique_lock hold(m.mu);  // the guard will stall inside disk_usage
    std::thread guard([&] { mgr->guard_tick(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::atomic<bool> done{false};
    std::thread op([&] {
        try {
            api().remove("acme", false);
            done = true;
        } catch (const Error& e) {
            ADD_FAILURE() << "the operation failed instead of waiting: " << e.what();
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    hold.unlock();
    guard.join();
    op.join();
    EXPECT_TRUE(done);
}

TEST_F(AManager, ReportsEachCreateStepToTheProgressCallbackUpToAFailure) {
    std::vector<std::string> steps, started;
    auto record = [&](std::string_view step, long ms) {
        if (ms < 0) {
            EXPECT_TRUE(started.size() == steps.size()) << "a step starts after the one before ended: " << step;
            started.emplace_back(step);
            return;
        }
        ASSERT_FALSE(started.empty());
        EXPECT_EQ(started.back(), step) << "the step that ends is the one that started";
        steps.emplace_back(step);
    };
    api().create("acme", json::object(), record);
    EXPECT_EQ(steps, (std::vector<std::string>{"disk", "format", "mount", "user", "initdb", "start", "check", "route",
                                               "check-proxy"}));
    EXPECT_EQ(started, steps);
    steps.clear();
    started.clear();
    m.fail_at = "init_cluster";
    EXPECT_EQ(code_of([&] { api().create("beta", json::object(), record); }), Errc::failed);
    EXPECT_EQ(steps, (std::vector<std::string>{"disk", "format", "mount", "user"})) << "only finished steps are reported";
    EXPECT_EQ(started, (std::vector<std::string>{"disk", "format", "mount", "user", "initdb"}))
        << "the step that failed was reported as started";
}

// ---- port watch: a tenant listens on its own port only ----

TEST(FindSquatters, NamesATenantsListenerOnAnyPortButItsOwn) {
    TenantRecord a{.name = "a", .state = TenantState::ready, .uid = 1001, .port = 25001};
    TenantRecord b{.name = "b", .state = TenantState::ready, .uid = 1002, .port = 25002};
    TenantRecord gone{.name = "gone", .state = TenantState::detached, .uid = 1003, .port = 25003};
    const std::vector<units::Listener> ls = {
        {"127.0.0.1", 25001, 1001, 11},  // a's PostgreSQL
        {"127.0.0.1", 25002, 1002, 12},  // b's PostgreSQL
        {"127.0.0.1", 29999, 1001, 13},  // a's listener on a free port
        {"0.0.0.0", 25002, 1001, 14},    // a squatting on b's port
        {"127.0.0.1", 25003, 1003, 15},  // a detached tenant's uid (may belong to someone else now)
        {"0.0.0.0", 22, 0, 16},          // not a tenant
    };
    auto s = find_squatters({a, b, gone}, ls);
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0].tenant, "a");
    EXPECT_EQ(s[0].listener.port, 29999);
    EXPECT_EQ(s[1].listener.port, 25002);
    EXPECT_EQ(s[1].own_port, 25001);
    EXPECT_TRUE(find_squatters({a, b}, {ls[0], ls[1], ls[5]}).empty());
    // With a repository host, its pgBackRest server's port is its own too; not another's.
    TenantRecord ra = a, rb = b;
    ra.backup_port = 24001;
    rb.backup_port = 24002;
    auto r = find_squatters({ra, rb}, {{"10.0.0.4", 24001, 1001, 21}, {"10.0.0.4", 24002, 1001, 22}});
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].listener.port, 24002);
    // An HA member: Patroni's REST port on this host (h1) is its own too (the port watch killed
    // Patroni before); the other member's ports are that host's, not this tenant's here.
    TenantRecord ha = a;
    ha.port = 25001;
    ha.ha = HaSpec{.members = {{.host = "h1", .pg_port = 25001, .rest_port = 23001}, {.host = "h2", .pg_port = 25007, .rest_port = 23004}}};
    auto h = find_squatters({ha, b},
                            {{"10.0.0.1", 23001, 1001, 31}, {"10.0.0.1", 25001, 1001, 32}, {"10.0.0.1", 23002, 1001, 33},
                             {"10.0.0.1", 23004, 1001, 34}, {"10.0.0.1", 25007, 1001, 35}},
                            "h1");
    ASSERT_EQ(h.size(), 3u);
    EXPECT_EQ(h[0].listener.port, 23002);
    EXPECT_EQ(h[1].listener.port, 23004);
    EXPECT_EQ(h[2].listener.port, 25007);
    EXPECT_EQ(find_squatters({ha}, {{"10.0.0.1", 23001, 1001, 31}}, "h2").size(), 1u);  // h2's REST port is 23004
    EXPECT_EQ(find_squatters({a, b}, {{"10.0.0.1", 23001, 1001, 31}}).size(), 1u);  // not for a plain tenant
}

TEST_F(AManager, KillsWhatATenantListensOnBesideItsOwnPort) {
    auto t = api().create("acme", json::object());
    const uid_t uid = 1000;  // what the fake's create_user gives
    m.listeners = {{"127.0.0.1", static_cast<uint16_t>(t["port"].get<int>()), uid, 1},
                   {"127.0.0.1", 29999, uid, 77}};
    mgr->port_watch_tick();
    ASSERT_EQ(m.killed.size(), 1u);
    EXPECT_EQ(m.killed[0], (std::pair<uid_t, uint64_t>{uid, 77}));
    m.listeners.pop_back();
    m.killed.clear();
    mgr->port_watch_tick();
    EXPECT_TRUE(m.killed.empty()) << "its own port is its own";
}

// ---- failure paths leave a working tenant ----

TEST_F(AManager, AFailedOfflineResizeBringsTheTenantBackOnItsOldSize) {
    api().create("acme", {{"disk_size", "1G"}});
    m.online_grow_impossible = true;
    m.fail_at = "grow_offline";
    try {
        api().resize("acme", {{"size", "2G"}});
        ADD_FAILURE() << "the resize did not fail";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("runs again on its old size 1G"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(m.units.count("acme")) << "the tenant runs again";
    EXPECT_TRUE(m.mounts.count(cfg.mount_root + "/acme"));
    auto t = api().get("acme");
    EXPECT_EQ(t["disk_size"], 1ull << 30);
    EXPECT_EQ(t["state"], "ready");
}

TEST_F(AManager, AReconcileRacingCreatesAndDeletesActsOnEachTenantsCurrentRecord) {
    // A reconcile that took its list of tenants before a create finished must not roll back the
    // finished create (it did, acting on the copy that said "creating").
    for (int round = 0; round < 30; round++) {
        std::atomic<bool> stop{false};
        std::thread rec([&] {
            while (!stop) mgr->reconcile();
        });
        const std::string name = "race" + std::to_string(round);
        try {
            api().create(name, json::object());
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::conflict) << e.what();  // the reconcile held it a moment: busy
        }
        stop = true;
        rec.join();
        mgr->reconcile();
        // What the record says is what the machine has.
        bool ready = false;
        try {
            ready = api().get(name)["state"] == "ready";
        } catch (const Error&) {
        }
        std::lock_guard g(m.mu);
        if (ready) {
            EXPECT_TRUE(m.units.count(name)) << name << " is ready on record but its unit is gone";
            EXPECT_TRUE(m.mounts.count(cfg.mount_root + "/" + name)) << name;
        } else {
            EXPECT_FALSE(m.units.count(name)) << name;
        }
    }
}

// ---- capacity: settings against limits, memory against the host, extensions ----

TEST_F(AManager, RefusesSettingsThatCannotFitTheLimitsAtCreateAndOnAChange) {
    try {
        api().create("acme", {{"memory", "256M"}, {"settings", {{"shared_buffers", "512MB"}}}});
        FAIL() << "created";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid);
        EXPECT_EQ(e.field(), "settings.shared_buffers");
        EXPECT_NE(std::string(e.what()).find("shared_buffers 512M exceeds the tenant's memory 256M"), std::string::npos);
    }
    EXPECT_TRUE(machine_is_clean());
    EXPECT_EQ(api().list().size(), 0u) << "no record left";

    api().create("acme", {{"memory", "1G"}, {"settings", {{"shared_buffers", "512MB"}}}});
    m.calls.clear();
    EXPECT_EQ(code_of([&] { api().set_limits("acme", {{"memory", "512M"}}); }), Errc::invalid);
    EXPECT_EQ(code_of([&] { api().set_limits("acme", {{"settings", {{"work_mem", "64MB"}}}}); }), Errc::invalid);
    EXPECT_EQ(code_of([&] { api().set_limits("acme", {{"tasks", 30}}); }), Errc::invalid);
    EXPECT_TRUE(m.calls.empty()) << "nothing applied";
    EXPECT_EQ(api().get("acme")["memory"], 1ull << 30);
    EXPECT_EQ(api().set_limits("acme", {{"memory", "768M"}})["memory"], 768ull << 20);
}

TEST_F(AManager, RefusesMemoryBeyondTheHostsAtCreateReuseAndAChange) {
    // What hostd may commit: two and a half tenants of 256M.
    cfg.memory_overcommit = static_cast<double>(640ull << 20) / static_cast<double>(host_memory_bytes());
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    api().create("a", {{"memory", "256M"}});
    api().create("b", {{"memory", "256M"}});
    EXPECT_EQ(mgr->host().memory_free, 128ull << 20);
    try {
        api().create("c", {{"memory", "256M"}});
        FAIL() << "created";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::refused);
        EXPECT_EQ(e.field(), "memory");
        EXPECT_NE(std::string(e.what()).find(": 128M is free (the other 2 tenants have 512M"), std::string::npos) << e.what();
    }
    EXPECT_EQ(api().list().size(), 2u);
    EXPECT_EQ(api().create("c", {{"memory", "128M"}})["state"], "ready");  // exactly what is free
    EXPECT_EQ(code_of([&] { api().set_limits("a", {{"memory", "257M"}}); }), Errc::refused);
    EXPECT_EQ(api().set_limits("a", {{"memory", "128M"}})["memory"], 128ull << 20) << "less is always allowed";
    api().remove("b", false);  // a detached tenant holds no memory...
    api().create("d", {{"memory", "384M"}});
    EXPECT_EQ(code_of([&] { api().create("b", {{"reuse", true}}); }), Errc::refused) << "...until it comes back";
    EXPECT_EQ(mgr->host().memory_free, 0u);
}

TEST_F(AManager, EnablesExtensionsFromTheAllowListOnly) {
    auto t = api().create("acme", {{"extensions", {"pg_trgm", "pg_stat_statements"}}});
    EXPECT_EQ(t["extensions"], json({"pg_stat_statements", "pg_trgm"}));
    EXPECT_EQ(code_of([&] { api().create("beta", {{"extensions", {"plpython3u"}}}); }), Errc::invalid);
    EXPECT_EQ(code_of([&] { api().set_limits("acme", {{"extensions", {"no_such_thing"}}}); }), Errc::invalid);
    auto changed = wire::render(mgr->set_limits("acme", wire::parse_limits({{"extensions", json::array()}})));
    EXPECT_EQ(changed["tenant"]["extensions"], json::array());
    EXPECT_EQ(changed["tenant"]["pending_restart"], json({"shared_preload_libraries"})) << "the preload goes at the next restart";
}

// ---- lifecycle: stop, start, restart; what GET says the tenant does ----

TEST_F(AManager, AStoppedTenantStaysStoppedAndUnroutedAcrossReconcileAndReboot) {
    api().create("acme", json::object());
    api().create("beta", json::object());
    auto v = mgr->stop("acme");
    EXPECT_EQ(v.live.state, "stopped");
    EXPECT_TRUE(v.stopped);
    EXPECT_FALSE(m.units.count("acme"));
    ASSERT_EQ(m.routes.size(), 1u);
    EXPECT_EQ(m.routes[0].tenant, "beta");
    EXPECT_NE(read_file((dir / "tenants" / "acme.toml").string()).find("stopped = true"), std::string::npos);
    // A reconcile leaves it stopped, and has nothing to report about it.
    m.calls.clear();
    auto rec = api().reconcile();
    EXPECT_EQ(rec["actions"].size(), 0u) << rec.dump();
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "start_unit"), 1) << "beta's only";
    EXPECT_FALSE(m.units.count("acme"));
    // A reboot: hostd starts again from the records; acme stays stopped, its disk mounted.
    m.attached.clear(), m.mounts.clear(), m.units.clear(), m.routes.clear();
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.start();
    EXPECT_EQ(m.units, (std::set<std::string>{"beta"}));
    EXPECT_TRUE(m.mounts.count(cfg.mount_root + "/acme")) << "mounted for the guard, disk stats and a start";
    ASSERT_EQ(m.routes.size(), 1u);
    EXPECT_EQ(again.get("acme").live.state, "stopped");
    auto listed = again.list(/*with_status=*/true);
    EXPECT_EQ(listed[0].live.state, "stopped");
    EXPECT_EQ(listed[1].live.state, "running");
    // Started: runs, routed, and the intent is gone from the record.
    auto s = again.start("acme");
    EXPECT_EQ(s.live.state, "running");
    EXPECT_FALSE(s.stopped);
    EXPECT_TRUE(m.units.count("acme"));
    EXPECT_EQ(m.routes.size(), 2u);
    EXPECT_NE(read_file((dir / "tenants" / "acme.toml").string()).find("stopped = false"), std::string::npos);
}

TEST_F(AManager, AReconcileStopsAStoppedTenantsUnitStartedBehindItsBackAndSaysSo) {
    api().create("acme", json::object());
    mgr->stop("acme");
    m.units.insert("acme");  // systemctl start by hand
    EXPECT_EQ(mgr->get("acme").live.state, "running");  // the truth, with the reason
    EXPECT_NE(mgr->get("acme").live.reason.find("started outside hostd"), std::string::npos);
    auto rec = api().reconcile();
    ASSERT_EQ(rec["actions"].size(), 1u) << rec.dump();
    EXPECT_NE(rec["actions"][0]["action"].get<std::string>().find("stopped its unit"), std::string::npos);
    EXPECT_FALSE(m.units.count("acme"));
}

TEST_F(AManager, ADownTenantSaysWhyAndAReconcileStartsItReportingTheAction) {
    api().create("acme", json::object());
    m.units.erase("acme");
    m.failed["acme"] = "start-limit-hit";  // killed until systemd gave up
    auto v = mgr->get("acme");
    EXPECT_EQ(v.live.state, "down");
    EXPECT_NE(v.live.reason.find("start-limit-hit"), std::string::npos) << v.live.reason;
    EXPECT_NE(v.live.reason.find("killed by signal KILL"), std::string::npos) << v.live.reason;
    EXPECT_EQ(mgr->list(true)[0].live.state, "down");
    EXPECT_EQ(mgr->list()[0].live.state, "") << "the plain list asks systemd nothing";
    auto rec = api().reconcile();
    ASSERT_EQ(rec["actions"].size(), 1u) << rec.dump();
    EXPECT_EQ(rec["actions"][0]["tenant"], "acme");
    EXPECT_NE(rec["actions"][0]["action"].get<std::string>().find("started its unit; it was down"), std::string::npos);
    EXPECT_EQ(mgr->get("acme").live.state, "running");
    EXPECT_EQ(api().reconcile()["actions"].size(), 0u) << "nothing more to do";
}

TEST_F(AManager, ARunningUnitWhosePostgresRefusesConnectionsIsDownWithThePingsReason) {
    api().create("acme", json::object());
    m.ping_problem = "PostgreSQL runs but refuses connections (starting up, shutting down or in crash recovery)";
    auto v = mgr->get("acme");
    EXPECT_EQ(v.live.state, "down");
    EXPECT_EQ(v.live.reason, m.ping_problem);
    m.ping_problem = "";
    EXPECT_EQ(mgr->get("acme").live.state, "running");
}

TEST_F(AManager, RestartsARunningTenantAndRefusesAStoppedOneOrOneNotReady) {
    api().create("acme", json::object());
    m.calls.clear();
    EXPECT_EQ(mgr->restart("acme").live.state, "running");
    EXPECT_EQ(m.calls, (std::vector<std::string>{"restart_unit", "wait_sql", "ensure_monitor_login", "apply_routes", "wait_routed"}));
    mgr->stop("acme");
    EXPECT_EQ(code_of([&] { mgr->restart("acme"); }), Errc::conflict);
    EXPECT_EQ(code_of([&] { mgr->start("nobody"); }), Errc::not_found);
    api().remove("acme", false);
    for (auto verb : {&Manager::start, &Manager::stop, &Manager::restart})
        EXPECT_EQ(code_of([&] { ((*mgr).*verb)("acme"); }), Errc::conflict);
}

TEST_F(AManager, GetSaysRestartingWhileARestartRuns) {
    api().create("acme", json::object());
    std::string seen;
    m.during_restart = [&] { seen = mgr->get("acme").live.state; };
    mgr->restart("acme");
    EXPECT_EQ(seen, "restarting");
    EXPECT_EQ(mgr->get("acme").live.state, "running");
}

TEST_F(AManager, AFailedStartLeavesTheTenantDownWithTheReasonAndUnrouted) {
    api().create("acme", json::object());
    mgr->stop("acme");
    m.fail_at = "start_unit";
    EXPECT_EQ(code_of([&] { mgr->start("acme"); }), Errc::failed);
    m.fail_at = "";
    auto v = mgr->get("acme");
    EXPECT_EQ(v.live.state, "down");
    EXPECT_NE(v.live.reason.find("failed to start"), std::string::npos) << v.live.reason;
    EXPECT_TRUE(m.routes.empty());
    api().reconcile();  // the intent is to run: a reconcile tries again
    EXPECT_EQ(mgr->get("acme").live.state, "running");
}

TEST_F(AManager, AResizeThatMustStopPostgresIsRefusedUnlessAllowedBeforeAnythingChanges) {
    api().create("acme", {{"disk_size", "1G"}});
    m.online_grow_impossible = true;
    m.calls.clear();
    try {
        api().resize("acme", {{"size", "2G"}, {"allow_offline", false}});
        ADD_FAILURE() << "not refused";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::refused);
        EXPECT_EQ(e.field(), "allow_offline");
        EXPECT_NE(std::string(e.what()).find("stops its PostgreSQL"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(m.calls.empty());
    EXPECT_EQ(api().get("acme")["disk_size"], 1ull << 30);
    // A stopped tenant has nothing to stop: it grows, and stays stopped.
    mgr->stop("acme");
    auto t = api().resize("acme", {{"size", "2G"}, {"allow_offline", false}});
    EXPECT_EQ(t["disk_size"], 2ull << 30);
    EXPECT_FALSE(m.units.count("acme"));
    EXPECT_EQ(mgr->get("acme").live.state, "stopped");
}

TEST_F(AManager, AReuseBringsBackAStoppedTenantRunning) {
    api().create("acme", json::object());
    mgr->stop("acme");
    api().remove("acme", false);
    api().create("acme", {{"reuse", true}});
    EXPECT_EQ(mgr->get("acme").live.state, "running");
    EXPECT_FALSE(mgr->get("acme").stopped);
}

TEST_F(AManager, AReconcileAfterARebootReportsWhatItMountedAndStarted) {
    api().create("acme", json::object());
    m.attached.clear(), m.mounts.clear(), m.units.clear(), m.routes.clear();
    auto rec = api().reconcile();
    ASSERT_EQ(rec["actions"].size(), 2u) << rec.dump();
    EXPECT_NE(rec["actions"][0]["action"].get<std::string>().find("mounted its filesystem"), std::string::npos);
    EXPECT_EQ(rec["actions"][1]["action"], "started its unit; it was down: its unit is not running (not loaded)");
    EXPECT_EQ(api().reconcile()["actions"].size(), 0u);
}

// A purged tenant's backups stay with the OS user that owns them: its uid is given to no one
// else, its name to no new tenant; a branch can be made from them until they are purged.
TEST_F(AManager, KeepsAPurgedTenantsBackupsAndItsUidUntilTheyArePurged) {
    cfg.backup_repo = "/backups";
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    api().create("src", json::object());
    const uid_t src_uid = m.uids.at("_src");
    ASSERT_EQ(m.repos.at("/backups/src"), src_uid);
    const Deleted d = mgr->remove("src", /*purge=*/true);
    EXPECT_EQ(d.backups, "kept");
    EXPECT_FALSE(d.kept_until.empty());
    EXPECT_TRUE(m.users.count("_src")) << "the owner of the kept repository went: its uid is free for another tenant";
    EXPECT_TRUE(m.repos.count("/backups/src"));
    EXPECT_FALSE(std::filesystem::exists(dir / "tenants" / "src.toml"));
    EXPECT_TRUE(std::filesystem::exists(dir / "deleted" / "src.toml"));

    // A new tenant gets a uid of its own: src's repository is not its to read.
    api().create("other", json::object());
    EXPECT_NE(m.uids.at("_other"), src_uid);
    EXPECT_NE(m.repos.at("/backups/other"), src_uid);
    // The name stays the kept backups'.
    EXPECT_EQ(code_of([&] { api().create("src", json::object()); }), Errc::conflict);
    // A branch from them, and a reconcile and a restart of hostd keep them (and their user).
    m.calls.clear();
    api().create("br", {{"from", {{"tenant", "src"}}}});
    EXPECT_NE(std::find(m.calls.begin(), m.calls.end(), "restore_cluster"), m.calls.end());
    api().reconcile();
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    api().reconcile();
    EXPECT_TRUE(m.users.count("_src"));
    ASSERT_EQ(mgr->deleted().size(), 1u);
    EXPECT_EQ(mgr->deleted()[0].uid, src_uid);
    EXPECT_EQ(mgr->backups("src").deleted, "purged");

    // Purged on request: the repository, then its owner, then the record; the name is free.
    EXPECT_EQ(code_of([&] { mgr->remove("src", false, true); }), Errc::invalid);
    EXPECT_EQ(mgr->remove("src", true, true).backups, "purged");
    EXPECT_FALSE(m.repos.count("/backups/src"));
    EXPECT_FALSE(m.users.count("_src"));
    EXPECT_TRUE(mgr->deleted().empty());
    EXPECT_EQ(code_of([&] { api().create("br2", {{"from", {{"tenant", "src"}}}}); }), Errc::not_found);
    EXPECT_EQ(api().create("src", json::object())["state"], "ready");
}

// With a repository host the same holds: the tenant's files here (the client certificate that
// reaches its repository there, its group's to read) stay with its OS user, and its repository
// there is retired, not dropped, until a purge of the backups says so.
TEST_F(AManager, KeepsAPurgedTenantsBackupsOnARepositoryHost) {
    cfg.backup_repo_host = "repos.example:8443";
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    api().create("src", json::object());
    const std::string files = layout_of(cfg, "src").backup_remote;
    ASSERT_FALSE(files.empty());
    const uid_t src_uid = m.uids.at("_src");
    ASSERT_EQ(m.repos.at(files), src_uid);
    m.remote["src"] = false;  // made there by prepare_backups
    m.calls.clear();
    const Deleted d = mgr->remove("src", /*purge=*/true);
    EXPECT_EQ(d.backups, "kept");
    EXPECT_TRUE(m.users.count("_src")) << "the group that reads src's client key went: its gid is free for another tenant";
    EXPECT_TRUE(m.repos.count(files));
    EXPECT_EQ(m.remote.at("src"), true) << "not retired: the repository host goes on backing up a tenant that is gone";
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "forget_remote_backups"), 0);
    ASSERT_EQ(mgr->deleted().size(), 1u);
    EXPECT_EQ(mgr->deleted()[0].repository_host, "repos.example:8443");
    EXPECT_EQ(mgr->backups("src").deleted, "purged");
    // A branch from them; a restart keeps them.
    api().create("br", {{"from", {{"tenant", "src"}}}});
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    api().reconcile();
    EXPECT_TRUE(m.users.count("_src"));
    // Not purged through a repository host hostd.toml no longer names.
    cfg.backup_repo_host = "elsewhere.example:8443";
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    EXPECT_EQ(code_of([&] { mgr->remove("src", true, true); }), Errc::failed);
    EXPECT_TRUE(m.remote.count("src"));
    cfg.backup_repo_host = "repos.example:8443";
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    EXPECT_EQ(mgr->remove("src", true, true).backups, "purged");
    EXPECT_FALSE(m.remote.count("src"));
    EXPECT_FALSE(m.repos.count(files));
    EXPECT_FALSE(m.users.count("_src"));
    EXPECT_TRUE(mgr->deleted().empty());

    // A detached tenant's files stay with its user too (retired there); a purge with its backups drops both.
    api().create("acme", json::object());
    mgr->remove("acme", false);
    EXPECT_TRUE(m.users.count("_acme"));
    EXPECT_EQ(m.remote.at("acme"), true);
    api().reconcile();
    EXPECT_TRUE(m.users.count("_acme"));
    EXPECT_EQ(mgr->remove("acme", true, true).backups, "purged");
    EXPECT_FALSE(m.users.count("_acme"));
    EXPECT_FALSE(m.remote.count("acme"));
}

TEST_F(AManager, PurgesBackupsWithTheTenantWhenTold) {
    cfg.backup_repo = "/backups";
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    api().create("acme", json::object());
    mgr->remove("acme", false);  // detached: its user stays with its backups
    EXPECT_TRUE(m.users.count("_acme"));
    api().reconcile();
    EXPECT_TRUE(m.users.count("_acme")) << "the reconcile swept the owner of a detached tenant's backups";
    EXPECT_EQ(mgr->backups("acme").deleted, "detached");
    EXPECT_EQ(api().create("acme", {{"reuse", true}})["state"], "ready");  // takes its user back
    EXPECT_EQ(mgr->remove("acme", true, true).backups, "purged");
    EXPECT_TRUE(machine_is_clean());
    EXPECT_TRUE(m.repos.empty());
    EXPECT_TRUE(mgr->deleted().empty());
}

TEST_F(AManager, ExpiresKeptBackupsPastTheRetention) {
    cfg.backup_repo = "/backups";
    cfg.backup_deleted_retention = 7;
    TenantRecord t;
    t.name = "old";
    t.os_user = "_old";
    t.uid = 1000;
    std::filesystem::create_directories(dir / "deleted");
    std::ofstream(dir / "deleted" / "old.toml") << to_toml(kept_of(t, "2020-01-01T00:00:00Z", "/backups/old", 1000));
    t.name = "new";
    t.os_user = "_new";
    t.uid = 1001;
    std::ofstream(dir / "deleted" / "new.toml") << to_toml(kept_of(t, format_rfc3339(std::time(nullptr)), "/backups/new", 1001));
    m.users = {"_old", "_new"};
    m.uids = {{"_old", 1000}, {"_new", 1001}};
    m.repos = {{"/backups/old", 1000}, {"/backups/new", 1001}};
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->start();  // loads, reconciles, expires
    EXPECT_EQ(m.users, std::set<std::string>{"_new"});
    EXPECT_EQ(m.repos.size(), 1u);
    ASSERT_EQ(mgr->deleted().size(), 1u);
    EXPECT_EQ(mgr->deleted()[0].name, "new");
}

// ---- disaster recovery: hostctl restore ----

namespace {
// The disk of a loop tenant destroyed: its unit stopped, unmounted, the loop device detached and
// the image deleted (the OS user and the record remain).
void destroy_loop_disk(FakeMachine& m, const std::string& name) {
    m.units.erase(name);
    m.mounts.erase(cfg_mount_root + "/" + name);
    m.attached.clear();
    m.images.clear();
    m.routes.clear();
}
}  // namespace

class ARestore : public AManager {
protected:
    void SetUp() override {
        AManager::SetUp();
        cfg.backup_repo = (dir / "repo").string();
        mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
        mgr->load();
    }
    size_t count(const std::string& verb) const { return std::count(m.calls.begin(), m.calls.end(), verb); }
};

TEST_F(ARestore, ABranchCopiedFromItsRunningSourceGetsItsOwnAdminPasswordOnceStartedBeforeAnyLogin) {
    api().create("src", json::object());
    m.backups = 1;
    m.branch_copy = BranchCopy::streamed;
    m.calls.clear();
    api().create("br", {{"from", {{"tenant", "src"}}}});
    auto at = [&](const char* verb) { return std::find(m.calls.begin(), m.calls.end(), verb) - m.calls.begin(); };
    ASSERT_EQ(count("hand_over_branch"), 1);
    EXPECT_LT(at("start_unit"), at("hand_over_branch"));
    // The fake's wait_ready (a ping, no login) and the admin's login both say "wait_sql".
    EXPECT_EQ(m.calls.at(at("hand_over_branch") - 1), "wait_sql") << "ready first";
    EXPECT_EQ(m.calls.at(at("hand_over_branch") + 1), "wait_sql") << "the admin's first login has the branch's password";
    // Restored from the repository: its recovery set the password.
    m.branch_copy = BranchCopy::restored;
    api().create("br2", {{"from", {{"tenant", "src"}}}});
    EXPECT_EQ(count("hand_over_branch"), 1);
}

TEST_F(ARestore, BringsBackTheSameTenantOnANewDiskFromItsOwnBackups) {
    const json before = api().create("acme", {{"memory", "300M"}, {"settings", {{"work_mem", "4MB"}}}});
    m.backups = 1;
    destroy_loop_disk(m, "acme");
    m.calls.clear();
    std::vector<std::string> steps;
    const Restored r = mgr->restore("acme", {.time = "latest"}, [&](std::string_view s, long ms) {
        if (ms >= 0) steps.push_back(std::string(s));
    });
    EXPECT_EQ(steps, (std::vector<std::string>{"disk", "format", "mount", "restore", "start", "check", "backups", "route",
                                               "check-proxy"}));
    EXPECT_EQ(count("create_image"), 1);
    EXPECT_EQ(count("restore_cluster"), 1);
    EXPECT_EQ(count("init_cluster"), 0);  // never a fresh cluster
    EXPECT_EQ(count("create_user"), 0);   // its OS user is still there
    const json after = wire::render(r)["tenant"];
    for (const char* k : {"port", "public_port", "os_user", "admin_user", "password", "url", "memory", "settings"})
        EXPECT_EQ(after[k], before[k]) << k;
    EXPECT_NE(after["fs_uuid"], before["fs_uuid"]);  // a new filesystem: the lost one is never taken for it
    EXPECT_EQ(after["wal_max"], "000000010000000000000007");
    EXPECT_EQ(m.units, (std::set<std::string>{"acme"}));
    EXPECT_EQ(m.routes.size(), 1u);
    EXPECT_EQ(api().get("acme").value("step", ""), "");
}

TEST_F(ARestore, RefusesWhileTheDataIsThereAndChangesNothing) {
    api().create("acme", json::object());
    m.backups = 1;
    m.calls.clear();
    // Running, mounted.
    EXPECT_EQ(code_of([&] { mgr->restore("acme", {}, {}); }), Errc::conflict);
    // Stopped and unmounted, its loop device detached: the image still holds its filesystem.
    m.units.clear();
    m.mounts.clear();
    m.attached.clear();
    try {
        mgr->restore("acme", {}, {});
        FAIL() << "a disk that is only unmounted must not be restored over";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::conflict);
        EXPECT_NE(std::string(e.what()).find("hostctl reconcile"), std::string::npos) << e.what();
    }
    for (const char* verb : {"create_image", "remove_image", "format", "mount", "restore_cluster", "start_unit", "create_user"})
        EXPECT_EQ(count(verb), 0) << verb;
}

TEST_F(ARestore, RefusesWithBackupsOffOrNoBackupOrAnUnknownTenantOrABadTime) {
    api().create("acme", json::object());
    destroy_loop_disk(m, "acme");
    m.calls.clear();
    EXPECT_EQ(code_of([&] { mgr->restore("acme", {}, {}); }), Errc::refused);  // no backup yet
    EXPECT_EQ(code_of([&] { mgr->restore("nosuch", {}, {}); }), Errc::not_found);
    EXPECT_EQ(code_of([&] { mgr->restore("acme", {.time = "yesterday"}, {}); }), Errc::invalid);
    EXPECT_EQ(code_of([&] { wire::parse_restore({{"time", 3}}); }), Errc::invalid);
    EXPECT_EQ(code_of([&] { wire::parse_restore({{"when", "latest"}}); }), Errc::invalid);
    EXPECT_EQ(wire::parse_restore(json()).time, "latest");
    Config off = cfg;
    off.backup_repo.clear();
    Manager no_backups(off, std::make_unique<FakeEffects>(m));
    no_backups.load();
    m.backups = 1;
    EXPECT_EQ(code_of([&] { no_backups.restore("acme", {}, {}); }), Errc::invalid);
    EXPECT_EQ(count("create_image"), 0);
    EXPECT_EQ(count("restore_cluster"), 0);
}

TEST_F(ARestore, UndoesEveryStepWhenTheRestoreFailsAndTheTenantStaysAsItWas) {
    const json before = api().create("acme", json::object());
    m.backups = 1;
    destroy_loop_disk(m, "acme");
    for (std::string verb : {"create_image", "attach_image", "format", "mount", "restore_cluster", "start_unit", "wait_sql",
                             "prepare_backups", "apply_routes"}) {
        m.fail_at = verb;
        EXPECT_EQ(code_of([&] { mgr->restore("acme", {}, {}); }), Errc::failed) << verb;
        EXPECT_TRUE(m.images.empty() && m.attached.empty() && m.mounts.empty() && m.units.empty() && m.routes.empty()) << verb;
        const json t = api().get("acme");
        EXPECT_EQ(t["fs_uuid"], before["fs_uuid"]) << verb;
        EXPECT_EQ(t.value("step", ""), "") << verb;
        EXPECT_NE(t.value("problem", "").find("a restore failed"), std::string::npos) << verb;
    }
    m.fail_at.clear();
    mgr->restore("acme", {}, {});
    EXPECT_EQ(m.units, (std::set<std::string>{"acme"}));
}

TEST_F(ARestore, KeepsATenantStoppedOnPurposeStopped) {
    api().create("acme", json::object());
    mgr->stop("acme");
    m.backups = 1;
    destroy_loop_disk(m, "acme");
    m.calls.clear();
    const Restored r = mgr->restore("acme", {}, {});
    EXPECT_TRUE(r.tenant.stopped);
    EXPECT_EQ(count("restore_cluster"), 1);
    EXPECT_EQ(count("start_unit"), 0);
    EXPECT_TRUE(m.units.empty() && m.routes.empty());
    EXPECT_EQ(m.mounts.size(), 1u);  // its disk is there for a start
}

TEST_F(ARestore, ReconcileSaysTheDiskIsGoneAndHowToBringItBack) {
    api().create("acme", json::object());
    destroy_loop_disk(m, "acme");
    m.fail_at = "attach_image";  // the image is gone: the loop device cannot be made
    const json rep = api().reconcile();
    m.fail_at.clear();
    const std::string problem = api().get("acme").value("problem", "");
    EXPECT_NE(problem.find("disk missing: its image"), std::string::npos) << problem;
    EXPECT_NE(problem.find("hostctl restore acme"), std::string::npos) << problem;
    EXPECT_NE(api().get("acme")["live_reason"].get<std::string>().find("hostctl restore acme"), std::string::npos);
    EXPECT_TRUE(m.units.empty() && m.routes.empty());
    EXPECT_EQ(count("create_image"), 1);  // only the create's: reconcile makes no disk
}

TEST_F(ARestore, AReconcileLeavesARestoreCutOffByACrashDownAndTheNextRestoreRedoesIt) {
    api().create("acme", json::object());
    m.backups = 1;
    destroy_loop_disk(m, "acme");
    // A crash after the new disk was made and mounted, during the restore.
    TenantRecord t = half_made(cfg, "acme", TenantState::ready, std::string(kRestoreStep) + "restore");
    t.admin_user = "acme";
    write_record(dir, t);
    m.images = {t.image};
    m.users = {"_acme"};
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.start();
    EXPECT_TRUE(m.units.empty() && m.routes.empty() && m.mounts.empty());  // never started half-restored
    EXPECT_NE(JsonApi{again}.get("acme").value("problem", "").find("a restore was cut off"), std::string::npos);
    m.calls.clear();
    again.restore("acme", {}, {});
    EXPECT_EQ(count("remove_image"), 1);  // what the cut-off restore made
    EXPECT_EQ(count("create_image"), 1);
    EXPECT_EQ(m.units, (std::set<std::string>{"acme"}));
}

TEST_F(ARestore, RestoresADeviceTenantOnlyOntoItsOwnDeviceFoundBlank) {
    cfg.backend = "device";
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    m.ids["/dev/vdb"] = "wwn-0x5000c500a1b2c3d4";
    api().create("acme", {{"device", "/dev/vdb"}});
    m.backups = 1;
    m.units.clear();
    m.mounts.clear();
    m.routes.clear();
    // Wiped, but not blank: never formatted.
    m.data["/dev/vdb"] = "non-zero data at offset 12M";
    EXPECT_EQ(code_of([&] { mgr->restore("acme", {}, {}); }), Errc::refused);
    m.data.clear();
    // Another disk under its name now.
    m.ids["/dev/vdb"] = "wwn-0x5000c500ffffffff";
    EXPECT_EQ(code_of([&] { mgr->restore("acme", {}, {}); }), Errc::refused);
    m.ids["/dev/vdb"] = "wwn-0x5000c500a1b2c3d4";
    m.gone = {"/dev/vdb"};
    EXPECT_EQ(code_of([&] { mgr->restore("acme", {}, {}); }), Errc::refused);
    EXPECT_EQ(count("format"), 1);  // the create's only
    m.gone.clear();
    mgr->restore("acme", {}, {});
    EXPECT_EQ(count("format"), 2);
    EXPECT_EQ(api().get("acme")["device"], "/dev/vdb");
}

// Backups on: a failed backup is kept as the tenant's last failure (API, /metrics) until one
// succeeds; a failed scheduled unit is noticed once per failure.
class AManagerWithBackups : public AManager {
protected:
    void SetUp() override {
        cfg.backup_repo = "/var/lib/hostd-backup";
        AManager::SetUp();
        api().create("acme", json::object());
    }
};

TEST_F(AManagerWithBackups, ReportsAFailedBackupOnRequestUntilOneSucceeds) {
    m.backup_error = "The full backup of 'acme' failed (pgbackrest exited with 41): ERROR: [041]: unable to open '/x'";
    EXPECT_EQ(code_of([&] { mgr->backup("acme", "full"); }), Errc::failed);
    TenantView v = mgr->get("acme");
    ASSERT_TRUE(v.backup && v.backup->last_failure);
    EXPECT_EQ(v.backup->last_failure->by, "request");
    EXPECT_EQ(v.backup->last_failure->type, "full");
    EXPECT_NE(v.backup->last_failure->message.find("unable to open"), std::string::npos);
    EXPECT_TRUE(v.backup->failing());
    EXPECT_EQ(mgr->backup_health().at("acme").failures, 1u);
    EXPECT_TRUE(mgr->backups("acme").failing);

    m.backup_error.clear();
    m.repo = {.bytes = 4096 * 3, .last_wal = std::time(nullptr) - 5};
    mgr->backup("acme", "full");
    v = mgr->get("acme");
    ASSERT_TRUE(v.backup);
    EXPECT_FALSE(v.backup->failing());
    EXPECT_TRUE(v.backup->last_failure);  // kept, superseded
    EXPECT_EQ(v.backup->last_type, "full");
    EXPECT_EQ(v.backup->repo_bytes, 4096u * 3);
    EXPECT_EQ(v.backup->last_wal, m.repo.last_wal);
    const BackupList list = mgr->backups("acme");
    EXPECT_FALSE(list.failing);
    EXPECT_TRUE(list.last_failure);
}

TEST_F(AManagerWithBackups, NoticesAFailedScheduledBackupOncePerFailure) {
    m.failed_units = {{.unit = "hostd-backup-incr@acme.service", .tenant = "acme", .type = "incr", .at = 1796000000,
                       .message = "ERROR: [041]: unable to open"},
                      {.unit = "hostd-backup-full@gone.service", .tenant = "gone", .type = "full", .at = 1796000000}};
    mgr->backup_watch_tick();
    mgr->backup_watch_tick();
    auto all = mgr->backup_health();
    EXPECT_FALSE(all.count("gone"));
    ASSERT_TRUE(all.count("acme"));
    EXPECT_EQ(all["acme"].failures, 1u);
    EXPECT_EQ(all["acme"].last_failure->by, "schedule");
    EXPECT_TRUE(all["acme"].failing());
    // The tick also looked at acme's repository (never looked at before).
    EXPECT_NE(all["acme"].checked, 0);
    m.failed_units[0].at = 1796086400;  // it failed again the next day
    mgr->backup_watch_tick();
    EXPECT_EQ(mgr->backup_health()["acme"].failures, 2u);
}

TEST_F(AManagerWithBackups, NoticesTheRepositoryHostsFailedScheduledBackupOncePerError) {
    m.repo.scheduled_error = "ERROR: [056]: unable to find primary cluster - cannot proceed";
    mgr->backup_watch_tick();
    auto h = mgr->backup_health()["acme"];
    EXPECT_EQ(h.failures, 1u);
    ASSERT_TRUE(h.last_failure);
    EXPECT_EQ(h.last_failure->by, "schedule");
    EXPECT_EQ(h.last_failure->message, m.repo.scheduled_error);
}

// ---- the warm pool

class AManagerWithAPool : public AManager {
protected:
    void SetUp() override {
        cfg.pool_size = 1;
        AManager::SetUp();
        mgr->start();
    }
    std::string pool_dir() const { return (dir / "loop" / ".pool").string(); }
    size_t pool_images() const {
        size_t n = 0;
        for (auto& i : m.images) n += i.starts_with(pool_dir() + "/");
        return n;
    }
    std::string state() const { return read_file((dir / "pool.toml").string()); }
};

TEST_F(AManagerWithAPool, PreparesADiskThenACreateTakesItAndTheNextCreateTakesTheFullPath) {
    mgr->pool_tick();
    EXPECT_EQ(pool_images(), 1u);
    EXPECT_TRUE(m.attached.empty());  // at rest a pool disk is only a file
    ASSERT_EQ(m.pool_clusters.size(), 1u);
    const std::string id = m.pool_clusters.begin()->first;
    const std::string uuid = pool::parse(state(), "pool.toml").disks.at(0).fs_uuid;
    EXPECT_NE(state().find("state = 'ready'"), std::string::npos) << state();
    mgr->pool_tick();  // full: nothing more
    EXPECT_EQ(pool_images(), 1u);

    m.calls.clear();
    auto t = api().create("acme", json::object());
    EXPECT_EQ(t["state"], "ready");
    // Its OS user is made on another thread while the disk is moved and mounted: before the take.
    const auto user_at = std::find(m.calls.begin(), m.calls.end(), "create_user");
    ASSERT_NE(user_at, m.calls.end());
    EXPECT_LT(user_at, std::find(m.calls.begin(), m.calls.end(), "adopt_cluster"));
    m.calls.erase(user_at);
    EXPECT_EQ(m.calls, (std::vector<std::string>{"rename_image", "attach_image", "relabel", "mount", "ensure_reserve",
                                                 "adopt_cluster", "start_unit", "hand_over_cluster",
                                                 "ensure_monitor_login", "apply_routes", "wait_routed"}));
    EXPECT_EQ(m.handed_over["acme"], id);
    // The admin's secret is the SCRAM secret of the password the reply gives (made from its salt again).
    const std::string secret = m.handed_secret["acme"];
    ASSERT_TRUE(secret.starts_with("SCRAM-SHA-256$4096:")) << secret;
    const std::string salt64 = secret.substr(19, secret.find('$', 19) - 19);
    std::string salt(salt64.size(), '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(salt.data()),
                                  reinterpret_cast<const unsigned char*>(salt64.data()), static_cast<int>(salt64.size()));
    salt.resize(static_cast<size_t>(n) - std::count(salt64.begin(), salt64.end(), '='));
    EXPECT_EQ(pgconf::scram_verifier(t["password"].get<std::string>(), 4096, salt), secret);
    EXPECT_TRUE(m.images.count(layout_of(cfg, "acme").image));
    EXPECT_EQ(pool_images(), 0u);
    EXPECT_EQ(state().find(id), std::string::npos) << "the taken disk is still listed: " << state();
    // Its record names the pool disk's filesystem.
    EXPECT_NE(read_file((dir / "tenants" / "acme.toml").string()).find("fs_uuid = '" + uuid + "'"), std::string::npos);

    m.calls.clear();
    api().create("beta", json::object());  // the pool is empty until it refills: the full path
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "init_cluster"), 1);
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "rename_image"), 0);
    // Another size than the pool's: the full path even with a ready disk.
    mgr->pool_tick();
    m.calls.clear();
    api().create("gamma", json{{"disk_size", "2G"}});
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "init_cluster"), 1);
    EXPECT_EQ(pool_images(), 1u);
}

TEST_F(AManagerWithAPool, UndoesEveryStepOfAPoolCreateWhereverItFailsTheUserMadeBesideTheDiskToo) {
    for (std::string verb : {"rename_image", "attach_image", "relabel", "mount", "create_user", "adopt_cluster", "start_unit",
                             "hand_over_cluster", "ensure_monitor_login", "apply_routes", "wait_routed"}) {
        mgr->pool_tick();
        m.fail_at = verb;
        EXPECT_EQ(code_of([&] { api().create("acme", json::object()); }), Errc::failed) << verb;
        m.fail_at = "";
        EXPECT_TRUE(m.users.empty()) << "the OS user made beside the disk is left after a failure in " << verb;
        EXPECT_TRUE(m.units.empty() && m.routes.empty() && m.mounts.empty()) << verb;
        EXPECT_FALSE(m.images.count(layout_of(cfg, "acme").image)) << verb;
        EXPECT_EQ(api().list().size(), 0u) << verb;
    }
    // An OS user that was there before (not this create's) stays whatever fails.
    m.users.insert("_acme");
    mgr->pool_tick();
    EXPECT_EQ(code_of([&] { api().create("acme", json::object()); }), Errc::conflict);
    EXPECT_TRUE(m.users.count("_acme"));
}

TEST_F(AManagerWithAPool, ACreateThatFailsOnAPoolDiskUndoesItAndTheDiskIsNeverGivenToAnother) {
    mgr->pool_tick();
    m.fail_at = "start_unit";
    EXPECT_EQ(code_of([&] { api().create("acme", json::object()); }), Errc::failed);
    EXPECT_TRUE(machine_is_clean()) << "leftovers";  // its image (the pool disk's) removed with the tenant
    EXPECT_EQ(state().find("[[disk]]"), std::string::npos) << state();
    // Failed before the image moved: the disk stays in the pool for the next create.
    m.fail_at = "";
    mgr->pool_tick();
    m.fail_at = "rename_image";
    EXPECT_EQ(code_of([&] { api().create("beta", json::object()); }), Errc::failed);
    EXPECT_EQ(pool_images(), 1u);
    m.fail_at = "";
    m.calls.clear();
    api().create("beta", json::object());
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "hand_over_cluster"), 1);
    EXPECT_EQ(pool_images(), 0u);
}

TEST_F(AManagerWithAPool, AFailedRefillLeavesNothingAndBacksOff) {
    m.fail_at = "prepare_pool_cluster";
    EXPECT_GE(mgr->pool_tick(), std::chrono::seconds(10));
    EXPECT_EQ(pool_images(), 0u);
    EXPECT_TRUE(m.attached.empty());
    EXPECT_EQ(state().find("[[disk]]"), std::string::npos) << state();
}

TEST_F(AManagerWithAPool, AStartAfterACrashCleansOnlyThePoolsOwnDirectory) {
    mgr->pool_tick();
    const std::string kept = m.pool_clusters.begin()->first;
    // Left by a crash: a disk cut off while prepared, an entry whose image a create took, an
    // image no entry lists; and a tenant's image beside them, which is no pool disk.
    pool::State st = pool::parse(state(), "pool.toml");
    pool::Disk cut = st.disks[0], taken = st.disks[0];
    cut.id = "00000000000000c0", cut.state = pool::DiskState::preparing;
    taken.id = "00000000000000d0", taken.bootstrap_role = pool::bootstrap_role_of(taken.id);
    st.disks.push_back(cut);
    st.disks.push_back(taken);
    write_file_atomic((dir / "pool.toml").string(), pool::render(st), 0600);
    m.images.insert(pool_dir() + "/00000000000000c0.img");
    m.images.insert(pool_dir() + "/00000000000000e0.img");
    m.images.insert(layout_of(cfg, "acme").image);
    m.images.insert(pool_dir() + "/notes.img");  // not a name the pool makes: left alone
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->start();
    EXPECT_EQ(m.images, (std::set<std::string>{pool_dir() + "/" + kept + ".img", layout_of(cfg, "acme").image,
                                               pool_dir() + "/notes.img"}));
    const pool::State after = pool::parse(state(), "pool.toml");
    ASSERT_EQ(after.disks.size(), 1u);
    EXPECT_EQ(after.disks[0].id, kept);
}

TEST_F(AManagerWithAPool, ADamagedStateFileTurnsThePoolOffAndCreatesTakeTheFullPath) {
    write_file_atomic((dir / "pool.toml").string(), "disk = 3\n", 0600);
    m.images.insert(pool_dir() + "/00000000000000c0.img");
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->start();
    mgr->pool_tick();
    EXPECT_EQ(m.pool_clusters.size(), 0u);
    EXPECT_TRUE(m.images.count(pool_dir() + "/00000000000000c0.img"));  // nothing removed on a file it cannot read
    m.calls.clear();
    api().create("acme", json::object());
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "init_cluster"), 1);
}

TEST_F(AManagerWithAPool, TheRefillWaitsWhileTheLoopDirectoryIsShortOfRoomAndACreateIsNeverBlocked) {
    // Room for the spare but not for a full-path disk of disk_size besides: no refill.
    m.loop_free = pool::room_needed(cfg.disk_size) - 1;
    EXPECT_GE(mgr->pool_tick(), std::chrono::seconds(10));
    EXPECT_GE(mgr->pool_tick(), std::chrono::seconds(10));  // again later, still nothing made
    EXPECT_EQ(pool_images(), 0u);
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "create_image"), 0);
    EXPECT_EQ(state().find("[[disk]]"), std::string::npos) << state();
    m.calls.clear();
    auto t = api().create("acme", json::object());  // the full path, not held up by the pool
    EXPECT_EQ(t["state"], "ready");
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "init_cluster"), 1);
    // Room again: the next round refills.
    m.loop_free = pool::room_needed(cfg.disk_size);
    mgr->pool_tick();
    EXPECT_EQ(pool_images(), 1u);
    EXPECT_NE(state().find("state = 'ready'"), std::string::npos) << state();
}

TEST_F(AManagerWithAPool, TheRefillFormatsThroughThePoolsOwnEffectAndAStartStopsLeftJobsBeforeCleaning) {
    mgr->pool_tick();
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "format_pool_disk"), 1);
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "format"), 0);  // never the tenants' format
    // A disk cut off while prepared: at the next start, the jobs a crash left are stopped
    // before anything of the disk is removed (a running initdb holds it).
    pool::State st = pool::parse(state(), "pool.toml");
    pool::Disk cut = st.disks[0];
    cut.id = "00000000000000c0", cut.state = pool::DiskState::preparing;
    st.disks.push_back(cut);
    write_file_atomic((dir / "pool.toml").string(), pool::render(st), 0600);
    m.images.insert(pool_dir() + "/00000000000000c0.img");
    m.calls.clear();
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->start();
    const auto stop = std::find(m.calls.begin(), m.calls.end(), "stop_pool_jobs");
    const auto removed = std::find(m.calls.begin(), m.calls.end(), "remove_image");
    ASSERT_NE(stop, m.calls.end());
    ASSERT_NE(removed, m.calls.end());
    EXPECT_LT(stop - m.calls.begin(), removed - m.calls.begin());
    EXPECT_FALSE(m.images.count(pool_dir() + "/00000000000000c0.img"));
}

// ---- HA tenants (#17): refused until the create exists; their units are told apart ----

TEST_F(AManager, RefusesAnHaCreateOnFieldHaBeforeTouchingAnything) {
    for (const char* body : {R"({"ha": {"replicas": ["hb-2"], "synchronous": true}})",
                             R"({"ha": {"replicas": ["hb-2"]}, "from": {"tenant": "src"}})",
                             R"({"ha": {"replicas": ["hb-2"]}, "reuse": true})"}) {
        try {
            api().create("hat", json::parse(body));
            ADD_FAILURE() << "created: " << body;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::invalid) << body;
            EXPECT_EQ(e.field(), "ha") << body << ": " << e.what();
        }
    }
    try {
        api().create("hat", json::parse(R"({"ha": {"replicas": []}})"));
        ADD_FAILURE() << "created with no replica";
    } catch (const Error& e) {
        EXPECT_EQ(e.field(), "ha.replicas") << e.what();
    }
    EXPECT_TRUE(m.calls.empty());
    EXPECT_TRUE(machine_is_clean());
    EXPECT_EQ(code_of([&] { api().get("hat"); }), Errc::not_found);
}

TEST_F(AManager, ShowsAnHaRecordsMembersAndItsPatroniUnitAndListsItBesidePlainOnes) {
    api().create("acme", json::object());
    TenantRecord t = half_made(cfg, "hat", TenantState::detached, "");
    t.ha = HaSpec{.create_id = "c1", .initiator = "hb-1",
                  .members = {{.host = "hb-1", .address = "10.0.0.1", .public_host = "db1", .public_port = 28001},
                              {.host = "hb-2", .address = "10.0.0.2", .public_host = "db2", .public_port = 28001}},
                  .synchronous = true};
    write_record(dir, t);
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.load();
    const json hat = JsonApi{again}.get("hat");
    EXPECT_EQ(hat["unit"], "hostd-patroni@hat.service");
    ASSERT_EQ(hat["members"].size(), 2u) << hat.dump();
    EXPECT_EQ(hat["members"][1]["host"], "hb-2");
    EXPECT_TRUE(hat["members"][1]["lag"].is_null());
    EXPECT_EQ(hat["ha"]["synchronous"], true);
    const json list = JsonApi{again}.list();
    ASSERT_EQ(list.size(), 2u);
    EXPECT_FALSE(list[0].contains("members")) << list[0].dump();
    EXPECT_EQ(list[1]["members"].size(), 2u);
}

TEST_F(AManager, RemovesAnOrphanPatroniUnitByItsOwnNameAndOnlyReportsOneBesideAPlainTenant) {
    api().create("acme", json::object());
    m.patroni_units = {"ghost", "acme"};  // no HA tenant owns either: acme is a plain tenant
    m.stopped.clear();
    const json r = api().reconcile();
    EXPECT_EQ(m.stopped, std::vector<std::string>{"hostd-patroni@ghost.service"});
    EXPECT_EQ(m.patroni_units, std::set<std::string>{"acme"}) << "not stopped: its stop would stop acme's timers";
    EXPECT_EQ(m.units, std::set<std::string>{"acme"}) << "the plain tenant's own unit stays";
    std::map<std::string, std::string> acts;
    for (const auto& a : r["actions"]) acts[a.value("tenant", "") + " " + a["action"].get<std::string>()] = a.value("problem", "");
    EXPECT_TRUE(acts.count("ghost removed orphan Patroni unit")) << r.dump();
    ASSERT_TRUE(acts.count("acme stray unit left running")) << r.dump();
    EXPECT_NE(acts["acme stray unit left running"].find("systemctl stop hostd-patroni@acme.service"), std::string::npos);
    EXPECT_NE(acts["acme stray unit left running"].find("runs in hostd-postgres@acme.service"), std::string::npos);
}

// ---- HA tenants (#17): the create across three hosts, each a Manager with its own fake
// machine, the peer API's calls made in-process through the wire's JSON ----

namespace {

struct Fleet;

class LoopbackPeers final : public Peers {
public:
    explicit LoopbackPeers(Fleet& f) : f_(f) {}
    std::optional<PeerMember> status(const std::string& host, const std::string& t) override;
    void hello(const std::string&) override {}
    HaMember prepare(const std::string& host, const std::string& t, const HaPrepare& p) override;
    void start(const std::string& host, const std::string& t, const HaSpec& ha) override;
    void abort(const std::string& host, const std::string& t, const std::string& id) override;
    void remove(const std::string& host, const std::string& t, bool purge) override;
    void update(const std::string& host, const std::string& t, const HaSpec& ha) override {
        at(host).ha_update(t, wire::parse_ha_spec(wire::render(ha)));
    }
    void password(const std::string& host, const std::string& t, const std::string& pw) override { at(host).ha_password(t, pw); }
    void limits(const std::string& host, const std::string& t, const std::string& id, const LimitsUpdate& u) override {
        at(host).ha_limits(t, id, wire::parse_limits(wire::render(u)));
    }

private:
    PeerHandler& at(const std::string& host);
    Fleet& f_;
};

struct Fleet {
    std::map<std::string, PeerHandler*> hosts;
    std::set<std::string> down;
    std::string fail_start_on;
    // The calling host dies (SIGKILL) just before or just after this call ("start hb-3").
    std::string crash_before, crash_after;
};

// What a crash point does to the calling host, in-process: nothing of it runs further.
using Crash = Killed;
void crash_if(const std::string& at, const std::string& call) {
    if (at == call) throw Crash{};
}

PeerHandler& LoopbackPeers::at(const std::string& host) {
    if (f_.down.count(host)) throw Error(Errc::unavailable, "HA host '" + host + "' cannot be reached");
    return *f_.hosts.at(host);
}
std::optional<PeerMember> LoopbackPeers::status(const std::string& host, const std::string& t) { return at(host).ha_member(t); }
HaMember LoopbackPeers::prepare(const std::string& host, const std::string& t, const HaPrepare& p) {
    crash_if(f_.crash_before, "prepare " + host);
    HaMember m = wire::parse_ha_member(wire::render(at(host).ha_prepare(t, wire::parse_ha_prepare(wire::render(p)))));
    crash_if(f_.crash_after, "prepare " + host);
    return m;
}
void LoopbackPeers::start(const std::string& host, const std::string& t, const HaSpec& ha) {
    crash_if(f_.crash_before, "start " + host);
    if (host == f_.fail_start_on) throw Error(Errc::failed, "injected: the clone on " + host + " failed");
    at(host).ha_start(t, wire::parse_ha_spec(wire::render(ha)));
    crash_if(f_.crash_after, "start " + host);
}
void LoopbackPeers::abort(const std::string& host, const std::string& t, const std::string& id) { at(host).ha_abort(t, id); }
void LoopbackPeers::remove(const std::string& host, const std::string& t, bool purge) {
    crash_if(f_.crash_before, "remove " + host);
    try {
        at(host).ha_remove(t, purge);
    } catch (const Error& e) {
        if (e.code() != Errc::not_found) throw;
    }
    crash_if(f_.crash_after, "remove " + host);
}

class AnHaFleet : public ::testing::Test {
protected:
    static constexpr int kHosts = 3;
    void SetUp() override {
        root = std::filesystem::temp_directory_path() / ("hostd-fleet-" + std::to_string(::getpid()) + "-" +
                                                          ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(root);
        for (int i = 0; i < kHosts; i++) {
            Config c;
            c.state_dir = (root / ("h" + std::to_string(i + 1))).string();
            c.loop_dir = c.state_dir + "/loop";
            c.public_host = "db" + std::to_string(i + 1);
            c.ha_address = "10.0.0." + std::to_string(i + 1);
            c.ha_hosts = {"hb-1=10.0.0.1", "hb-2=10.0.0.2", "hb-3=10.0.0.3"};
            cfg[i] = c;
            mgr[i] = std::make_unique<Manager>(c, std::make_unique<FakeEffects>(m[i]), std::make_unique<LoopbackPeers>(fleet),
                                               "hb-" + std::to_string(i + 1));
            mgr[i]->load();
            fleet.hosts["hb-" + std::to_string(i + 1)] = mgr[i].get();
        }
    }
    void TearDown() override { std::filesystem::remove_all(root); }
    // Host i's hostd started again (after a crash): a new Manager on the same state and machine,
    // with the start's reconcile (which finishes what the crash cut off) unless told not to.
    void restart(int i, bool reconcile = true) {
        const std::string name = "hb-" + std::to_string(i + 1);
        mgr[i] = std::make_unique<Manager>(cfg[i], std::make_unique<FakeEffects>(m[i]), std::make_unique<LoopbackPeers>(fleet), name);
        mgr[i]->load();
        fleet.hosts[name] = mgr[i].get();
        if (reconcile) mgr[i]->reconcile();
    }
    CreateRequest ha_request(std::vector<std::string> replicas, bool sync = true) {
        CreateRequest r;
        r.memory = 256ull << 20;
        r.ha = HaRequest{.replicas = std::move(replicas), .synchronous = sync};
        return r;
    }
    bool clean(int i) const {
        const FakeMachine& x = m[i];
        return x.images.empty() && x.attached.empty() && x.mounts.empty() && x.users.empty() && x.units.empty() &&
               x.patroni_units.empty() && mgr[i]->snapshot().empty();
    }
    std::filesystem::path root;
    Config cfg[kHosts];
    FakeMachine m[kHosts];
    Fleet fleet;
    std::unique_ptr<Manager> mgr[kHosts];
};

}  // namespace

TEST_F(AnHaFleet, CreatesOneMemberOnEachHostAndTheFirstBootstrapsTheScope) {
    const Created c = mgr[0]->create("hat", ha_request({"hb-2", "hb-3"}));
    EXPECT_EQ(c.tenant.state, TenantState::ready);
    // The URL names every member host's proxy, this host's first; libpq keeps the primary.
    EXPECT_EQ(c.tenant.url.rfind("postgresql://hat:", 0), 0u) << c.tenant.url;
    for (const char* h : {"@db1:", ",db2:", ",db3:", "target_session_attrs=read-write"})
        EXPECT_NE(c.tenant.url.find(h), std::string::npos) << h << " in " << c.tenant.url;
    // The read-only URL: every member host's replica port, a standby wanted.
    for (const char* h : {"@db1:", ",db2:", ",db3:", "target_session_attrs=standby"})
        EXPECT_NE(c.tenant.read_only_url.find(h), std::string::npos) << h << " in " << c.tenant.read_only_url;
    EXPECT_NE(c.tenant.read_only_url, c.tenant.url);
    const TenantRecord first = mgr[0]->snapshot().at(0);
    ASSERT_TRUE(first.ha);
    EXPECT_EQ(first.ha->initiator, "hb-1");
    for (int i = 0; i < kHosts; i++) {
        const auto recs = mgr[i]->snapshot();
        ASSERT_EQ(recs.size(), 1u) << i;
        const TenantRecord& t = recs[0];
        EXPECT_EQ(t.state, TenantState::ready) << i;
        ASSERT_TRUE(t.ha) << i;
        // One spec: the same create, members, secrets and admin password on every host.
        EXPECT_EQ(t.ha->create_id, first.ha->create_id);
        EXPECT_EQ(t.ha->secrets, first.ha->secrets);
        EXPECT_EQ(t.password, first.password);
        ASSERT_EQ(t.ha->members.size(), 3u);
        const HaMember* me = t.ha->member("hb-" + std::to_string(i + 1));
        ASSERT_TRUE(me);
        EXPECT_EQ(me->address, cfg[i].ha_address);
        EXPECT_EQ(me->public_host, cfg[i].public_host);
        EXPECT_EQ(me->pg_port, t.port);
        EXPECT_EQ(me->public_port, t.public_port);
        EXPECT_EQ(me->phase, MemberPhase::started);
        EXPECT_TRUE(me->rest_port >= cfg[i].ha_rest_ports.first && me->rest_port <= cfg[i].ha_rest_ports.second);
        // Its own disk, user and Patroni unit (never hostd-postgres@), and a route to all three.
        EXPECT_EQ(m[i].patroni_units, std::set<std::string>{"hat"});
        EXPECT_TRUE(m[i].units.empty());
        EXPECT_EQ(m[i].users.size(), 1u);
        // Two routes: to the primary, and to the replicas on a port of their own (the read-only URL).
        ASSERT_EQ(m[i].routes.size(), 2u);
        EXPECT_EQ(m[i].routes[0].members.size(), 3u);
        EXPECT_EQ(m[i].routes[0].check_path, "/primary");
        EXPECT_EQ(m[i].routes[0].public_port, t.public_port);
        EXPECT_EQ(m[i].routes[1].tenant, "hat.ro");
        EXPECT_EQ(m[i].routes[1].check_path, "/replica");
        EXPECT_EQ(m[i].routes[1].members.size(), 3u);
        EXPECT_EQ(m[i].routes[1].public_port, me->replica_port);
        EXPECT_NE(me->replica_port, t.public_port);
        EXPECT_TRUE(me->replica_port >= cfg[i].public_ports.first && me->replica_port <= cfg[i].public_ports.second);
        // Patroni's file names this host's member, the scope, and synchronous mode.
        const json yml = json::parse(m[i].patroni_yml.substr(m[i].patroni_yml.find('{')));
        EXPECT_EQ(yml["scope"], "hat");
        EXPECT_EQ(yml["name"], "hb-" + std::to_string(i + 1));
        EXPECT_EQ(yml["restapi"]["listen"], cfg[i].ha_address + ":" + std::to_string(me->rest_port));
        EXPECT_EQ(yml["bootstrap"]["dcs"]["synchronous_mode"], true);
        EXPECT_EQ(yml["postgresql"]["authentication"]["replication"]["password"], first.ha->secrets.replication);
        // Only the scope's first member makes the tenant's admin (the others are its copies).
        EXPECT_EQ(std::count(m[i].calls.begin(), m[i].calls.end(), "create_ha_admin"), i == 0 ? 1 : 0) << i;
    }
    // The scope's leftovers were cleared before the bootstrap, and its etcd user granted it, on
    // the first host (etcd is the fleet's: once is enough).
    EXPECT_EQ(m[0].scopes_forgotten, std::vector<std::string>{"hat"});
    EXPECT_EQ(m[0].scopes_granted, std::vector<std::string>{"hat"});
    EXPECT_TRUE(m[1].scopes_granted.empty());
    // Every host's view has the three members.
    EXPECT_EQ(mgr[2]->get("hat", false).members.size(), 3u);
}

// Patroni's own wal_keep_size (128MB) beside max_wal_size filled a 256M member's disk in the
// e2e suite (tests/e2e/ha): a share of the disk instead, Patroni's default from 2G on.
TEST_F(AnHaFleet, KeepsWalAShareOfTheDiskForPatroni) {
    int n = 0;
    // disk, wal_keep_size, max_slot_wal_keep_size (a replica that stays away cannot fill the primary's disk)
    for (const auto& [disk, keep, slot] : std::vector<std::tuple<uint64_t, std::string, std::string>>{
             {256ull << 20, "16MB", "64MB"}, {1ull << 30, "64MB", "256MB"}, {4ull << 30, "128MB", "1024MB"}}) {
        CreateRequest r = ha_request({"hb-2"});
        r.disk_size = disk;
        mgr[0]->create("hat" + std::to_string(++n), r);
        for (int i : {0, 1}) {
            const json yml = json::parse(m[i].patroni_yml.substr(m[i].patroni_yml.find('{')));
            EXPECT_EQ(yml["bootstrap"]["dcs"]["postgresql"]["parameters"]["wal_keep_size"], keep) << disk << " on hb-" << i + 1;
            EXPECT_EQ(yml["bootstrap"]["dcs"]["postgresql"]["parameters"]["max_slot_wal_keep_size"], slot) << disk << " on hb-" << i + 1;
        }
    }
}

TEST_F(AnHaFleet, AReplicaThatFailsToStartUndoesEveryMemberOnEveryHost) {
    fleet.fail_start_on = "hb-3";
    try {
        mgr[0]->create("hat", ha_request({"hb-2", "hb-3"}));
        ADD_FAILURE() << "created";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("hb-3"), std::string::npos) << e.what();
    }
    for (int i = 0; i < kHosts; i++) EXPECT_TRUE(clean(i)) << "host " << i + 1;
    EXPECT_EQ(m[0].scopes_forgotten.size(), 2u);  // before the bootstrap, and after the failure
}

TEST_F(AnHaFleet, AHostThatCannotBeReachedAtPrepareFailsTheCreateNamingItAndLeavesNothing) {
    fleet.down = {"hb-3"};
    const Error e = error_of([&] { mgr[0]->create("hat", ha_request({"hb-2", "hb-3"})); });
    EXPECT_EQ(e.code(), Errc::unavailable);
    EXPECT_NE(std::string(e.what()).find("'hb-3' cannot be reached"), std::string::npos) << e.what();
    EXPECT_TRUE(clean(0));
    EXPECT_TRUE(clean(1));
}

TEST_F(AnHaFleet, RefusesThisHostAsAReplicaTooLittleMemoryAndALiveScopeOfTheName) {
    EXPECT_EQ(error_of([&] { mgr[0]->create("hat", ha_request({"hb-1"})); }).field(), "ha.replicas");
    EXPECT_EQ(error_of([&] { mgr[0]->create("hat", ha_request({"hb-9"})); }).field(), "ha.replicas");
    CreateRequest small = ha_request({"hb-2"});
    small.memory = 64ull << 20;
    EXPECT_EQ(error_of([&] { mgr[0]->create("hat", small); }).field(), "memory");
    m[0].scopes_in_use.insert("hat");
    EXPECT_EQ(error_of([&] { mgr[0]->create("hat", ha_request({"hb-2"})); }).code(), Errc::conflict);
    for (int i = 0; i < kHosts; i++) EXPECT_TRUE(clean(i)) << "host " << i + 1;
}

TEST_F(AnHaFleet, DeletesEveryMemberFromAnyHostButNotWhileOneCannotBeReached) {
    mgr[0]->create("hat", ha_request({"hb-2", "hb-3"}, false));
    EXPECT_EQ(error_of([&] { mgr[1]->remove("hat", false); }).field(), "purge");
    fleet.down = {"hb-3"};
    const Error e = error_of([&] { mgr[1]->remove("hat", true); });
    EXPECT_EQ(e.code(), Errc::unavailable);
    EXPECT_EQ(mgr[1]->snapshot().size(), 1u);  // this host's member stays while another's cannot go
    EXPECT_EQ(mgr[0]->snapshot().size(), 1u) << "nor does a member asked before the unreachable one";
    fleet.down.clear();
    mgr[1]->remove("hat", true);
    for (int i = 0; i < kHosts; i++) EXPECT_TRUE(clean(i)) << "host " << i + 1;
    EXPECT_EQ(m[1].scopes_forgotten, std::vector<std::string>{"hat"});
}

TEST_F(AnHaFleet, ThePeerApiRefusesAStartForAnotherCreateOrUnpreparedHost) {
    EXPECT_EQ(error_of([&] { mgr[1]->ha_start("hat", HaSpec{.create_id = "x"}); }).code(), Errc::not_found);
    mgr[0]->create("hat", ha_request({"hb-2"}));
    HaSpec other = mgr[1]->snapshot().at(0).ha.value();
    other.create_id = "another";
    EXPECT_EQ(error_of([&] { mgr[1]->ha_start("hat", other); }).code(), Errc::conflict);
    mgr[1]->ha_abort("hat", "another");  // not its create: nothing happens
    EXPECT_EQ(mgr[1]->snapshot().at(0).state, TenantState::ready);
}

// ---- HA tenants: Patroni's view in GET, and switchover (records fabricated: no create flow yet) ----

namespace {

// One member as Patroni 3.0.2's GET /cluster lists it (cluster_as_json).
json patroni_member(const std::string& name, const std::string& role, const std::string& state, std::optional<uint64_t> lag,
                    uint64_t timeline) {
    json j = {{"name", name}, {"role", role}, {"state", state}, {"api_url", "http://x/patroni"}, {"host", "10.0.0.9"},
              {"port", 25001}, {"timeline", timeline}};
    if (lag) j["lag"] = *lag;
    return j;
}
std::string cluster_of(const std::vector<json>& members) { return json{{"members", members}, {"scope", "hat"}}.dump(); }

// A ready HA tenant's record as the member on hb-2 keeps it (three members, started).
TenantRecord ha_record(const Config& cfg, bool synchronous) {
    TenantRecord t = half_made(cfg, "hat", TenantState::ready, "");
    t.password = "pw-tenant-0123";
    t.ha = HaSpec{.create_id = "c1", .initiator = "hb-1",
                  .members = {{.host = "hb-1", .address = "10.0.0.1", .public_host = "db1", .pg_port = 25001, .rest_port = 23001,
                               .public_port = 28001, .phase = MemberPhase::started},
                              {.host = "hb-2", .address = "10.0.0.2", .public_host = "db2", .pg_port = 25001, .rest_port = 23001,
                               .public_port = 28001, .phase = MemberPhase::started},
                              {.host = "hb-3", .address = "10.0.0.3", .public_host = "db3", .pg_port = 25001, .rest_port = 23002,
                               .public_port = 28001, .phase = MemberPhase::started}},
                  .synchronous = synchronous,
                  .secrets = {.patroni = "p-secret", .replication = "r-secret", .rewind = "w-secret", .rest_password = "rest: s3cret"}};
    return t;
}

class AnHaManager : public AManager {
protected:
    // This host is hb-2 ([ha] address 10.0.0.2); the tenant's unit runs here.
    Manager& with(const TenantRecord& t) {
        write_record(dir, t);
        ha_cfg = cfg;
        ha_cfg.ha_address = "10.0.0.2";
        m.units.insert(t.name);
        ha_mgr = std::make_unique<Manager>(ha_cfg, std::make_unique<FakeEffects>(m));
        ha_mgr->load();
        return *ha_mgr;
    }
    const std::string sync_cluster = cluster_of({patroni_member("hb-1", "leader", "running", std::nullopt, 3),
                                                 patroni_member("hb-2", "replica", "streaming", 4096, 3),
                                                 patroni_member("hb-3", "sync_standby", "streaming", 0, 3)});
    Config ha_cfg;
    std::unique_ptr<Manager> ha_mgr;
};

}  // namespace

TEST_F(AnHaManager, ShowsEachMembersRoleFromThisHostsPatroniFirst) {
    Manager& mgr = with(ha_record(cfg, true));
    m.patroni["hb-2"] = cluster_of({patroni_member("hb-1", "leader", "running", std::nullopt, 3),
                                    patroni_member("hb-2", "sync_standby", "streaming", 0, 3)});  // hb-3 missing: down
    m.patroni["hb-1"] = "never asked: hb-2 is this host";
    const json t = JsonApi{mgr}.get("hat");
    EXPECT_EQ(m.patroni_asked, std::vector<std::string>{"hb-2"});
    ASSERT_EQ(t["members"].size(), 3u) << t.dump();
    EXPECT_EQ(t["members"][0], json({{"host", "hb-1"}, {"role", "primary"}, {"state", "running"}, {"lag", nullptr}, {"timeline", 3},
                                     {"sync", false}, {"address", "10.0.0.1"}, {"public_host", "db1"}, {"public_port", 28001}}))
        << t.dump();
    EXPECT_EQ(t["members"][1]["role"], "replica");
    EXPECT_EQ(t["members"][1]["state"], "streaming");
    EXPECT_EQ(t["members"][1]["lag"], 0);
    EXPECT_EQ(t["members"][1]["sync"], true);
    EXPECT_EQ(t["members"][2]["role"], "down");
    EXPECT_EQ(t["members"][2]["state"], "down");
    EXPECT_TRUE(t["members"][2]["timeline"].is_null());
    EXPECT_EQ(t["ha"]["leader"], "hb-1");
    EXPECT_EQ(t["ha"]["timeline"], 3);
    EXPECT_EQ(t["ha"]["source"], "hb-2");
    EXPECT_EQ(t["ha"]["synchronous"], true);
    EXPECT_EQ(t.value("problem", ""), "");
}

TEST_F(AnHaManager, AsksTheOtherMembersWhenThisHostsPatroniIsSilentAndSaysWhenNoneAnswers) {
    Manager& mgr = with(ha_record(cfg, false));
    m.patroni["hb-3"] = cluster_of({patroni_member("hb-3", "leader", "running", std::nullopt, 5)});
    m.patroni["hb-1"] = "<html>not Patroni</html>";  // an answer that is no /cluster counts as none
    json t = JsonApi{mgr}.get("hat");
    EXPECT_EQ(m.patroni_asked, (std::vector<std::string>{"hb-2", "hb-1", "hb-3"}));
    EXPECT_EQ(t["ha"]["source"], "hb-3");
    EXPECT_EQ(t["ha"]["leader"], "hb-3");
    EXPECT_EQ(t["ha"]["timeline"], 5);
    EXPECT_EQ(t["members"][0]["role"], "down");

    m.patroni.clear();
    m.patroni_asked.clear();
    t = JsonApi{mgr}.get("hat");
    EXPECT_EQ(m.patroni_asked, (std::vector<std::string>{"hb-2", "hb-1", "hb-3"}));
    for (const auto& mv : t["members"]) {
        EXPECT_EQ(mv["role"], "unknown") << t.dump();
        EXPECT_EQ(mv["state"], "unknown") << t.dump();
        EXPECT_TRUE(mv["lag"].is_null());
    }
    EXPECT_EQ(t["ha"]["source"], "");
    EXPECT_EQ(t["ha"]["leader"], "");
    const std::string problem = t.value("problem", "");
    EXPECT_NE(problem.find("no member's Patroni answered"), std::string::npos) << t.dump();
    EXPECT_NE(problem.find("member 'hb-3' did not answer"), std::string::npos) << problem;
}

TEST_F(AnHaManager, ListAsksNoPatroni) {
    Manager& mgr = with(ha_record(cfg, false));
    m.patroni["hb-2"] = sync_cluster;
    EXPECT_EQ(mgr.list(false).at(0).members.at(0).role, "unknown");
    EXPECT_EQ(mgr.list(true).at(0).members.size(), 3u);
    EXPECT_TRUE(m.patroni_asked.empty());
}

TEST_F(AnHaManager, SwitchoverRefusesAPlainTenantNoLeaderAnUnknownHostAndThePrimary) {
    api().create("acme", json::object());
    Manager& mgr = with(ha_record(cfg, false));
    try {
        mgr.switchover("acme", {});
        ADD_FAILURE() << "switched a plain tenant over";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::conflict);
        EXPECT_NE(std::string(e.what()).find("not an HA tenant"), std::string::npos) << e.what();
    }
    EXPECT_EQ(code_of([&] { mgr.switchover("nope", {}); }), Errc::not_found);
    EXPECT_EQ(code_of([&] { mgr.switchover("hat", {.to = "Not A Host"}); }), Errc::invalid);

    m.patroni["hb-2"] = cluster_of({patroni_member("hb-1", "replica", "running", 0, 3),
                                    patroni_member("hb-2", "replica", "streaming", 0, 3)});
    EXPECT_EQ(code_of([&] { mgr.switchover("hat", {}); }), Errc::conflict);  // no leader

    m.patroni["hb-2"] = sync_cluster;
    try {
        mgr.switchover("hat", {.to = "hb-9"});
        ADD_FAILURE() << "switched over to a host that is no member";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::not_found);
        EXPECT_EQ(e.field(), "to");
    }
    EXPECT_EQ(code_of([&] { mgr.switchover("hat", {.to = "hb-1"}); }), Errc::conflict);  // the primary already
    m.patroni.clear();
    EXPECT_EQ(code_of([&] { mgr.switchover("hat", {}); }), Errc::unavailable);  // no Patroni answers
    EXPECT_TRUE(m.switchovers.empty());
}

TEST_F(AnHaManager, SwitchoverAsksTheLeadersPatroniWithHostdsCredentialsAndWaitsForTheCandidate) {
    Manager& mgr = with(ha_record(cfg, true));
    m.patroni["hb-2"] = sync_cluster;
    m.after_switchover["hb-2"] = cluster_of({patroni_member("hb-1", "replica", "streaming", 0, 4),
                                             patroni_member("hb-2", "replica", "streaming", 0, 4),
                                             patroni_member("hb-3", "leader", "running", std::nullopt, 4)});
    // Synchronous: only the synchronous standby (hb-3) can take over, so it is picked.
    const TenantView v = mgr.switchover("hat", {});
    EXPECT_EQ(m.switchovers, std::vector<std::string>{"hb-1 hostd rest: s3cret hb-1 hb-3"});
    ASSERT_EQ(v.members.size(), 3u);
    EXPECT_EQ(v.members[2].role, "primary");
    EXPECT_EQ(v.members[0].role, "replica");
    ASSERT_TRUE(v.ha);
    EXPECT_EQ(v.ha->leader, "hb-3");
    EXPECT_EQ(v.ha->timeline, 4u);
    EXPECT_EQ(mgr.op_stats().ops.count({"switchover", "ok"}), 1u);
    // In synchronous mode a replica that is not the synchronous standby is refused before Patroni is asked.
    m.patroni = {{"hb-2", sync_cluster}};
    EXPECT_EQ(code_of([&] { mgr.switchover("hat", {.to = "hb-2"}); }), Errc::conflict);
    EXPECT_EQ(m.switchovers.size(), 1u);
}

TEST_F(AnHaManager, SwitchoverToANamedReplica) {
    Manager& mgr = with(ha_record(cfg, false));
    m.patroni["hb-2"] = sync_cluster;
    m.after_switchover["hb-1"] = cluster_of({patroni_member("hb-1", "replica", "streaming", 0, 4),
                                             patroni_member("hb-2", "leader", "running", std::nullopt, 4),
                                             patroni_member("hb-3", "replica", "streaming", 0, 4)});
    const TenantView v = mgr.switchover("hat", {.to = "hb-2"});  // hb-2's own Patroni is silent afterwards: hb-1 tells
    EXPECT_EQ(m.switchovers, std::vector<std::string>{"hb-1 hostd rest: s3cret hb-1 hb-2"});
    EXPECT_EQ(v.members[1].role, "primary");
    EXPECT_EQ(v.ha->source, "hb-1");
}

TEST_F(AnHaFleet, AMemberWhoseStartNeverComesIsUndoneAfterThePrepareTimeout) {
    CreateRequest plain;
    plain.memory = 256ull << 20;
    HaSpec ha{.create_id = "c-lost", .initiator = "hb-1",
              .secrets = {.patroni = "p", .replication = "r", .rewind = "w", .rest_password = "x"}};
    mgr[1]->ha_prepare("hat", {.ha = ha, .password = "pw", .request = plain});
    ASSERT_EQ(mgr[1]->snapshot().size(), 1u);
    const std::time_t prepared = parse_rfc3339(mgr[1]->snapshot()[0].created_at);
    ASSERT_NE(prepared, 0);
    EXPECT_TRUE(mgr[1]->ha_expire_prepared(prepared + static_cast<std::time_t>(cfg[1].ha_prepare_timeout)).empty());
    EXPECT_EQ(mgr[1]->snapshot().size(), 1u);
    EXPECT_EQ(mgr[1]->ha_expire_prepared(prepared + static_cast<std::time_t>(cfg[1].ha_prepare_timeout) + 1),
              std::vector<std::string>{"hat"});
    EXPECT_TRUE(clean(1));
    // A ready member is never touched, however old.
    mgr[0]->create("hat", ha_request({"hb-2"}));
    EXPECT_TRUE(mgr[1]->ha_expire_prepared(std::time(nullptr) + 100000).empty());
    EXPECT_EQ(mgr[1]->snapshot().at(0).state, TenantState::ready);
}

// ---- HA tenants: a member replaced ----

namespace {

// The hosts each host's record of hat names, in order.
std::vector<std::string> member_hosts(Manager& mgr) {
    std::vector<std::string> out;
    const TenantRecord t = mgr.snapshot().at(0);
    for (const auto& m : t.ha->members) out.push_back(m.host);
    return out;
}

}  // namespace

TEST_F(AnHaFleet, AMemberMovesToAnotherHostAddedBeforeTheOldOneGoes) {
    mgr[0]->create("hat", ha_request({"hb-2"}));
    m[0].patroni["hb-1"] = cluster_of({patroni_member("hb-1", "leader", "running", std::nullopt, 1),
                                       patroni_member("hb-2", "replica", "streaming", 0, 1)});
    const std::string id = mgr[0]->snapshot().at(0).ha->create_id;
    std::vector<std::string> steps;
    const TenantView v = mgr[0]->replace_member("hat", {.member = "hb-2", .with = "hb-3"},
                                                [&](std::string_view s, long ms) { if (ms < 0) steps.emplace_back(s); });
    // The new member is made and started while the old one still runs, then the old one goes.
    EXPECT_EQ(steps, (std::vector<std::string>{"prepare hb-3", "update hb-1", "start hb-3", "remove hb-2", "update hb-1",
                                               "update hb-3"}));
    EXPECT_TRUE(clean(1));
    for (int i : {0, 2}) {
        ASSERT_EQ(mgr[i]->snapshot().size(), 1u) << i;
        const TenantRecord t = mgr[i]->snapshot().at(0);
        EXPECT_EQ(t.state, TenantState::ready) << i;
        EXPECT_EQ(t.ha->create_id, id) << i;
        EXPECT_EQ(member_hosts(*mgr[i]), (std::vector<std::string>{"hb-1", "hb-3"})) << i;
        ASSERT_EQ(m[i].routes.size(), 2u);
        EXPECT_EQ(m[i].routes[0].members.size(), 2u) << i;
        EXPECT_EQ(m[i].routes[1].members.size(), 2u) << i;
    }
    EXPECT_EQ(mgr[2]->snapshot().at(0).password, mgr[0]->snapshot().at(0).password);
    // The member left rereads its files: its pg_hba admits the new member's address, not the old one's.
    EXPECT_GE(std::count(m[0].calls.begin(), m[0].calls.end(), "reload_unit"), 2);
    EXPECT_NE(m[0].patroni_yml.find("10.0.0.3/32"), std::string::npos) << m[0].patroni_yml;
    EXPECT_EQ(m[0].patroni_yml.find("10.0.0.2/32"), std::string::npos) << m[0].patroni_yml;
    EXPECT_NE(v.url.find(",db3:"), std::string::npos) << v.url;
    EXPECT_NE(v.read_only_url.find(",db3:"), std::string::npos) << v.read_only_url;
    EXPECT_NE(v.read_only_url.find("target_session_attrs=standby"), std::string::npos) << v.read_only_url;
    EXPECT_EQ(v.url.find("db2"), std::string::npos) << v.url;
}

TEST_F(AnHaFleet, AMemberIsRebuiltOnItsOwnHost) {
    mgr[0]->create("hat", ha_request({"hb-2", "hb-3"}));
    m[1].patroni["hb-2"] = cluster_of({patroni_member("hb-1", "leader", "running", std::nullopt, 1),
                                       patroni_member("hb-2", "replica", "streaming", 0, 1),
                                       patroni_member("hb-3", "replica", "streaming", 0, 1)});
    const uint32_t uid_before = mgr[2]->snapshot().at(0).uid;
    mgr[1]->replace_member("hat", {.member = "hb-3"});
    for (int i = 0; i < kHosts; i++) {
        EXPECT_EQ(mgr[i]->snapshot().at(0).state, TenantState::ready) << i;
        EXPECT_EQ(member_hosts(*mgr[i]).size(), 3u) << i;
    }
    // Made anew: its disk formatted again, its files written, its unit started.
    EXPECT_EQ(std::count(m[2].calls.begin(), m[2].calls.end(), "format"), 2);
    EXPECT_EQ(m[2].patroni_units, std::set<std::string>{"hat"});
    EXPECT_EQ(mgr[2]->snapshot().at(0).uid, uid_before);  // the uid freed is given again
}

TEST_F(AnHaFleet, ReplaceRefusesThePrimaryThisHostAPlainTenantAndHostsThatAreNoMembers) {
    mgr[0]->create("hat", ha_request({"hb-2"}));
    m[1].patroni["hb-2"] = cluster_of({patroni_member("hb-1", "leader", "running", std::nullopt, 1),
                                       patroni_member("hb-2", "replica", "streaming", 0, 1)});
    const Error primary = error_of([&] { mgr[1]->replace_member("hat", {.member = "hb-1", .with = "hb-3"}); });
    EXPECT_EQ(primary.code(), Errc::conflict);
    EXPECT_NE(std::string(primary.what()).find("switchover"), std::string::npos) << primary.what();
    EXPECT_EQ(error_of([&] { mgr[1]->replace_member("hat", {.member = "hb-2", .with = "hb-3"}); }).field(), "member");
    EXPECT_EQ(error_of([&] { mgr[1]->replace_member("hat", {.member = "hb-3"}); }).code(), Errc::not_found);
    EXPECT_EQ(error_of([&] { mgr[1]->replace_member("hat", {.member = "hb-1", .with = "hb-2"}); }).code(), Errc::conflict);
    EXPECT_EQ(error_of([&] { mgr[1]->replace_member("hat", {.member = "hb-1", .with = "hb-9"}); }).field(), "with");
    EXPECT_EQ(error_of([&] { mgr[1]->replace_member("hat", {.member = "b/../x"}); }).field(), "member");
    // No Patroni answers: nothing is changed.
    m[1].patroni.clear();
    EXPECT_EQ(error_of([&] { mgr[1]->replace_member("hat", {.member = "hb-1", .with = "hb-3"}); }).code(), Errc::unavailable);
    EXPECT_TRUE(clean(2));
    EXPECT_EQ(member_hosts(*mgr[0]), (std::vector<std::string>{"hb-1", "hb-2"}));
    EXPECT_EQ(error_of([&] { mgr[0]->replace_member("nope", {.member = "hb-2"}); }).code(), Errc::not_found);
}

TEST_F(AnHaFleet, ANewMemberThatFailsToStartIsUndoneAndTheTenantKeepsItsMembers) {
    mgr[0]->create("hat", ha_request({"hb-2"}));
    m[0].patroni["hb-1"] = cluster_of({patroni_member("hb-1", "leader", "running", std::nullopt, 1),
                                       patroni_member("hb-2", "replica", "streaming", 0, 1)});
    fleet.fail_start_on = "hb-3";
    const Error e = error_of([&] { mgr[0]->replace_member("hat", {.member = "hb-2", .with = "hb-3"}); });
    EXPECT_NE(std::string(e.what()).find("runs on with the members on hb-1, hb-2"), std::string::npos) << e.what();
    EXPECT_TRUE(clean(2));
    for (int i : {0, 1}) EXPECT_EQ(member_hosts(*mgr[i]), (std::vector<std::string>{"hb-1", "hb-2"})) << i;
    EXPECT_NE(m[0].patroni_yml.find("10.0.0.2/32"), std::string::npos);
    EXPECT_EQ(m[0].patroni_yml.find("10.0.0.3/32"), std::string::npos);
}

// ---- HA tenants: crashes of the coordinating host (tests/e2e/ha-crash kills the real one) ----

TEST_F(AnHaFleet, ACreateCutOffByACrashOfItsHostIsUndoneOnEveryHostAtItsRestart) {
    for (const auto& [before, after] : std::vector<std::pair<std::string, std::string>>{
             {"prepare hb-3", ""}, {"start hb-2", ""}, {"start hb-3", ""}, {"", "start hb-3"}}) {
        const std::string at = before.empty() ? "after " + after : "before " + before;
        fleet.crash_before = before;
        fleet.crash_after = after;
        EXPECT_THROW(mgr[0]->create("hat", ha_request({"hb-2", "hb-3"})), Crash) << at;
        fleet.crash_before.clear();
        fleet.crash_after.clear();
        // Until every replica has started, the coordinator's own member is not ready.
        ASSERT_EQ(mgr[0]->snapshot().size(), 1u) << at;
        EXPECT_EQ(mgr[0]->snapshot().at(0).state, TenantState::creating) << at;
        m[0].scopes_forgotten.clear();
        restart(0);
        for (int i = 0; i < kHosts; i++) EXPECT_TRUE(clean(i)) << at << ": host " << i + 1;
        EXPECT_EQ(m[0].scopes_forgotten, std::vector<std::string>{"hat"}) << at;
    }
    // And the create, asked again, works.
    EXPECT_EQ(mgr[0]->create("hat", ha_request({"hb-2", "hb-3"})).tenant.state, TenantState::ready);
    for (int i = 0; i < kHosts; i++) EXPECT_EQ(mgr[i]->snapshot().at(0).state, TenantState::ready) << i;
}

TEST_F(AnHaFleet, ACreateCutOffWhileAHostIsDownIsLeftUntilItAnswersNotHalfUndone) {
    fleet.crash_before = "start hb-3";
    EXPECT_THROW(mgr[0]->create("hat", ha_request({"hb-2", "hb-3"})), Crash);
    fleet.crash_before.clear();
    fleet.down = {"hb-2"};
    restart(0, /*reconcile=*/false);
    EXPECT_EQ(mgr[0]->ha_recover(std::chrono::seconds(0)), std::set<std::string>{"hat"});
    EXPECT_FALSE(clean(0)) << "this host's record says which create to undo: kept until every host has undone it";
    EXPECT_FALSE(clean(1));
    fleet.down.clear();
    EXPECT_TRUE(mgr[0]->ha_recover(std::chrono::seconds(0)).empty());
    for (int i = 0; i < kHosts; i++) EXPECT_TRUE(clean(i)) << "host " << i + 1;
}

TEST_F(AnHaFleet, ADeleteCutOffByACrashOfItsHostIsFinishedOnEveryHostAtItsRestart) {
    for (const auto& [before, after] : std::vector<std::pair<std::string, std::string>>{
             {"remove hb-2", ""}, {"", "remove hb-2"}, {"", "remove hb-3"}}) {
        const std::string at = before.empty() ? "after " + after : "before " + before;
        mgr[0]->create("hat", ha_request({"hb-2", "hb-3"}));
        fleet.crash_before = before;
        fleet.crash_after = after;
        EXPECT_THROW(mgr[0]->remove("hat", true), Crash) << at;
        fleet.crash_before.clear();
        fleet.crash_after.clear();
        EXPECT_EQ(mgr[0]->snapshot().at(0).state, TenantState::deleting) << at;
        m[0].scopes_forgotten.clear();
        restart(0);
        for (int i = 0; i < kHosts; i++) EXPECT_TRUE(clean(i)) << at << ": host " << i + 1;
        EXPECT_EQ(m[0].scopes_forgotten, std::vector<std::string>{"hat"}) << at;
    }
}

TEST_F(AnHaFleet, ADeleteWhoseMemberHostFailedMidwayIsFinishedByTheDeleteAskedAgain) {
    mgr[0]->create("hat", ha_request({"hb-2", "hb-3"}));
    fleet.crash_after = "remove hb-2";  // as if the answer were lost: hb-2's member is gone, hb-1 goes on
    EXPECT_THROW(mgr[0]->remove("hat", true), Crash);
    fleet.crash_after.clear();
    restart(0, /*reconcile=*/false);
    mgr[0]->remove("hat", true);
    for (int i = 0; i < kHosts; i++) EXPECT_TRUE(clean(i)) << "host " << i + 1;
}

// A replace's new member is made for the replace's host: a crash of the new member's host,
// which is the create's first host here, undoes that member alone, never the whole tenant.
TEST_F(AnHaFleet, AReplacesNewMemberCutOffUndoesItselfAloneEvenOnTheCreatesFirstHost) {
    mgr[0]->create("hat", ha_request({"hb-2", "hb-3"}));
    const std::string id = mgr[0]->snapshot().at(0).ha->create_id;
    m[1].patroni["hb-2"] = cluster_of({patroni_member("hb-1", "replica", "streaming", 0, 2),
                                       patroni_member("hb-2", "leader", "running", std::nullopt, 2),
                                       patroni_member("hb-3", "replica", "streaming", 0, 2)});
    m[0].crash_at = "wait_sql";  // hb-2 rebuilds hb-1, whose hostd dies while Patroni clones it
    EXPECT_THROW(mgr[1]->replace_member("hat", {.member = "hb-1"}), Killed);
    m[0].crash_at.clear();
    ASSERT_EQ(mgr[0]->snapshot().size(), 1u);
    EXPECT_EQ(mgr[0]->snapshot().at(0).state, TenantState::creating);
    EXPECT_EQ(mgr[0]->snapshot().at(0).ha->initiator, "hb-2");
    restart(0);
    EXPECT_TRUE(clean(0));
    for (int i : {1, 2}) {
        ASSERT_EQ(mgr[i]->snapshot().size(), 1u) << i;
        EXPECT_EQ(mgr[i]->snapshot().at(0).state, TenantState::ready) << i;
        EXPECT_EQ(mgr[i]->snapshot().at(0).ha->create_id, id) << i;
    }
}

TEST_F(AnHaFleet, AMoveCutOffByACrashOfItsHostIsFinishedByTheReplaceAskedAgain) {
    for (const auto& [before, after] : std::vector<std::pair<std::string, std::string>>{
             {"", "prepare hb-3"}, {"start hb-3", ""}, {"remove hb-2", ""}, {"", "remove hb-2"}}) {
        const std::string at = before.empty() ? "after " + after : "before " + before;
        mgr[0]->create("hat", ha_request({"hb-2"}));
        m[0].patroni["hb-1"] = cluster_of({patroni_member("hb-1", "leader", "running", std::nullopt, 1),
                                           patroni_member("hb-2", "replica", "streaming", 0, 1)});
        fleet.crash_before = before;
        fleet.crash_after = after;
        EXPECT_THROW(mgr[0]->replace_member("hat", {.member = "hb-2", .with = "hb-3"}), Crash) << at;
        fleet.crash_before.clear();
        fleet.crash_after.clear();
        restart(0);
        EXPECT_EQ(mgr[0]->snapshot().at(0).state, TenantState::ready) << at;
        mgr[0]->replace_member("hat", {.member = "hb-2", .with = "hb-3"});
        EXPECT_TRUE(clean(1)) << at;
        for (int i : {0, 2}) {
            EXPECT_EQ(mgr[i]->snapshot().at(0).state, TenantState::ready) << at << ": " << i;
            EXPECT_EQ(member_hosts(*mgr[i]), (std::vector<std::string>{"hb-1", "hb-3"})) << at << ": " << i;
        }
        mgr[0]->remove("hat", true);
        for (int i = 0; i < kHosts; i++) EXPECT_TRUE(clean(i)) << at << ": host " << i + 1;
    }
}

// The old member of a move cut off before its removal lists the members without the new one (it
// was never told): that is no word against the new member, whose list is newer. Found by
// tests/e2e/ha-crash: the new member's host deleted it in its 30-second round.
TEST_F(AnHaFleet, TheNewMemberOfAMoveCutOffBeforeTheOldOnesRemovalIsNotFencedByTheOldOne) {
    mgr[0]->create("hat", ha_request({"hb-2"}));
    m[0].patroni["hb-1"] = cluster_of({patroni_member("hb-1", "leader", "running", std::nullopt, 1),
                                       patroni_member("hb-2", "replica", "streaming", 0, 1)});
    fleet.crash_before = "remove hb-2";
    EXPECT_THROW(mgr[0]->replace_member("hat", {.member = "hb-2", .with = "hb-3"}), Crash);
    fleet.crash_before.clear();
    restart(0);
    for (int i = 0; i < kHosts; i++) EXPECT_TRUE(mgr[i]->ha_fence_replaced().empty()) << "host " << i + 1;
    ASSERT_EQ(mgr[2]->snapshot().size(), 1u);
    EXPECT_EQ(mgr[2]->snapshot().at(0).state, TenantState::ready);
    // The replace asked again finishes the move; then the old member, were it back with its
    // record, would be fenced (the others list hb-3, which it does not know).
    mgr[0]->replace_member("hat", {.member = "hb-2", .with = "hb-3"});
    EXPECT_TRUE(clean(1));
    for (int i : {0, 2}) EXPECT_EQ(member_hosts(*mgr[i]), (std::vector<std::string>{"hb-1", "hb-3"})) << i;
    mgr[0]->remove("hat", true);
}

TEST_F(AnHaFleet, AMemberReplacedWhileItsHostWasDownIsDeletedByItsHostOnceBack) {
    mgr[0]->create("hat", ha_request({"hb-2"}));
    m[0].patroni["hb-1"] = cluster_of({patroni_member("hb-1", "leader", "running", std::nullopt, 2),
                                       patroni_member("hb-2", "replica", "stopped", std::nullopt, 1)});
    fleet.down = {"hb-2"};
    mgr[0]->replace_member("hat", {.member = "hb-2", .with = "hb-3"});
    EXPECT_EQ(member_hosts(*mgr[0]), (std::vector<std::string>{"hb-1", "hb-3"}));
    EXPECT_EQ(mgr[1]->snapshot().size(), 1u);  // it could not be told
    // A rebuild in place needs its host.
    EXPECT_EQ(error_of([&] { mgr[0]->replace_member("hat", {.member = "hb-2"}); }).code(), Errc::not_found);
    fleet.down.clear();
    EXPECT_TRUE(mgr[0]->ha_fence_replaced().empty());
    EXPECT_TRUE(mgr[2]->ha_fence_replaced().empty());
    EXPECT_EQ(mgr[1]->ha_fence_replaced(), std::vector<std::string>{"hat"});
    EXPECT_TRUE(clean(1));
    EXPECT_TRUE(mgr[1]->ha_fence_replaced().empty());
}

TEST_F(AnHaFleet, ANewPasswordIsSetOnThePrimaryAndRecordedOnEveryMemberHost) {
    mgr[0]->create("hat", ha_request({"hb-2", "hb-3"}));
    // hb-2 is primary now (a switchover happened): the change goes there, from any member host.
    m[2].patroni["hb-3"] = cluster_of({patroni_member("hb-1", "replica", "streaming", 0, 2),
                                       patroni_member("hb-2", "leader", "running", std::nullopt, 2),
                                       patroni_member("hb-3", "replica", "streaming", 0, 2)});
    const TenantView v = mgr[2]->set_password("hat", {.password = "a new pass phrase"});
    EXPECT_NE(v.url.find("a%20new%20pass%20phrase@"), std::string::npos) << v.url;
    EXPECT_EQ(std::count(m[2].calls.begin(), m[2].calls.end(), "set_ha_password hb-2"), 1);
    for (int i = 0; i < kHosts; i++) {
        EXPECT_EQ(mgr[i]->snapshot().at(0).password, "a new pass phrase") << i;
        EXPECT_TRUE(mgr[i]->snapshot().at(0).password_pending.empty()) << i;
    }
    // A member host that cannot be told: the change stands, the error names it.
    fleet.down = {"hb-1"};
    const Error e = error_of([&] { mgr[2]->set_password("hat", {}); });
    EXPECT_EQ(e.code(), Errc::unavailable);
    EXPECT_NE(std::string(e.what()).find("hb-1 could not record it"), std::string::npos) << e.what();
    EXPECT_NE(mgr[2]->snapshot().at(0).password, "a new pass phrase");
    EXPECT_EQ(mgr[1]->snapshot().at(0).password, mgr[2]->snapshot().at(0).password);
    EXPECT_EQ(mgr[0]->snapshot().at(0).password, "a new pass phrase");
    // No primary: nothing changes.
    fleet.down.clear();
    m[2].patroni["hb-3"] = cluster_of({patroni_member("hb-3", "replica", "streaming", 0, 2)});
    const std::string before = mgr[2]->snapshot().at(0).password;
    EXPECT_EQ(error_of([&] { mgr[2]->set_password("hat", {}); }).code(), Errc::unavailable);
    EXPECT_EQ(mgr[2]->snapshot().at(0).password, before);
    EXPECT_EQ(error_of([&] { mgr[1]->ha_password("hat", "short"); }).code(), Errc::invalid);
}

TEST_F(AnHaFleet, NewLimitsAndSettingsReachEveryMemberAndTheScopesSharedSettingsGoToPatroni) {
    mgr[0]->create("hat", ha_request({"hb-2", "hb-3"}));
    for (int i = 0; i < kHosts; i++)  // every member's Patroni answers, from every host
        for (int j = 1; j <= kHosts; j++) m[i].patroni["hb-" + std::to_string(j)] = "{}";
    LimitsUpdate u{.memory = 300ull << 20};
    u.settings_edit.set = {{"work_mem", "4MB"}, {"max_connections", "40"}};
    const LimitsChanged c = mgr[1]->set_limits("hat", u);
    for (int i = 0; i < kHosts; i++) {
        const TenantRecord r = mgr[i]->snapshot().at(0);
        EXPECT_EQ(r.spec.memory, 300ull << 20) << i;
        EXPECT_EQ(r.spec.settings, (Settings{{"max_connections", "40"}, {"work_mem", "4MB"}})) << i;
        EXPECT_EQ(m[i].unit_memory["hostd-patroni@hat.service"], 300ull << 20) << i;
        EXPECT_GE(std::count(m[i].calls.begin(), m[i].calls.end(), "reload_unit"), 1) << i;
    }
    // max_connections is the scope's: patched once, through the first member that answers.
    ASSERT_EQ(m[1].patched.size(), 1u);
    EXPECT_EQ(m[1].patched[0].substr(0, 5), "hb-1 ");
    EXPECT_NE(m[1].patched[0].find("max_connections=40"), std::string::npos) << m[1].patched[0];
    EXPECT_EQ(m[1].patched[0].find("work_mem"), std::string::npos) << "a member's own setting stays in its files";
    EXPECT_EQ(c.pending_restart, std::vector<std::string>{"max_connections"});
    // Only a member's own setting: no PATCH.
    LimitsUpdate w;
    w.settings_edit.set = {{"work_mem", "2MB"}};
    mgr[0]->set_limits("hat", w);
    EXPECT_EQ(m[0].patched.size(), 0u);
    EXPECT_EQ(mgr[2]->snapshot().at(0).spec.settings.at("work_mem"), "2MB");
}

TEST_F(AnHaFleet, NewLimitsAreRefusedWholeWhileAMemberHostIsDownOrForASettingPatroniWouldDrop) {
    mgr[0]->create("hat", ha_request({"hb-2", "hb-3"}));
    fleet.down = {"hb-3"};
    const Error e = error_of([&] { mgr[0]->set_limits("hat", {.memory = 300ull << 20}); });
    EXPECT_EQ(e.code(), Errc::unavailable);
    EXPECT_NE(std::string(e.what()).find("hb-3"), std::string::npos) << e.what();
    fleet.down.clear();
    for (int i = 0; i < kHosts; i++) EXPECT_EQ(mgr[i]->snapshot().at(0).spec.memory, 256ull << 20) << i;
    LimitsUpdate u;
    u.settings_edit.set = {{"max_locks_per_transaction", "128"}};
    const Error d = error_of([&] { mgr[0]->set_limits("hat", u); });
    EXPECT_EQ(d.code(), Errc::invalid);
    EXPECT_NE(std::string(d.what()).find("max_locks_per_transaction"), std::string::npos) << d.what();
    // The scope's shared settings need a Patroni that answers: none does here.
    u.settings_edit.set = {{"max_connections", "50"}};
    EXPECT_EQ(error_of([&] { mgr[0]->set_limits("hat", u); }).code(), Errc::unavailable);
    for (int i = 0; i < kHosts; i++) EXPECT_FALSE(mgr[i]->snapshot().at(0).spec.settings.count("max_connections")) << i;
    // And at create.
    CreateRequest r = ha_request({"hb-2"});
    r.settings = Settings{{"max_locks_per_transaction", "128"}};
    EXPECT_EQ(error_of([&] { mgr[0]->create("hbt", r); }).code(), Errc::invalid);
}

// ---- hibernation ([hibernate]) ----

namespace {
const routes::Route* route_for(const FakeMachine& m, const std::string& tenant) {
    for (const auto& r : m.routes)
        if (r.tenant == tenant) return &r;
    return nullptr;
}
}  // namespace

TEST_F(AManager, HibernatesAnIdleTenantRoutedToTheWakerAcrossReconcileAndRebootThenWakesIt) {
    cfg.hibernate_after = 60;
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    api().create("acme", json::object());
    api().create("beta", json::object());
    bool idle = true;
    EXPECT_TRUE(mgr->hibernate("acme", [&] { return idle; }));
    EXPECT_FALSE(m.units.count("acme"));
    ASSERT_TRUE(route_for(m, "acme")) << "still routed: its port leads to the waker";
    EXPECT_TRUE(route_for(m, "acme")->hibernated);
    EXPECT_EQ(route_for(m, "acme")->waker_port, cfg.hibernate_waker_port);
    EXPECT_FALSE(route_for(m, "beta")->hibernated);
    EXPECT_EQ(mgr->get("acme").live.state, "hibernated");
    EXPECT_NE(read_file((dir / "tenants" / "acme.toml").string()).find("hibernated = true"), std::string::npos);
    EXPECT_FALSE(mgr->hibernate("acme", [&] { return idle; })) << "once";
    // A reconcile leaves it so, with nothing to report; so does a reboot.
    auto rec = api().reconcile();
    EXPECT_EQ(rec["actions"].size(), 0u) << rec.dump();
    EXPECT_FALSE(m.units.count("acme"));
    m.attached.clear(), m.mounts.clear(), m.units.clear(), m.routes.clear();
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.start();
    EXPECT_EQ(m.units, (std::set<std::string>{"beta"}));
    ASSERT_TRUE(route_for(m, "acme"));
    EXPECT_TRUE(route_for(m, "acme")->hibernated);
    EXPECT_TRUE(m.mounts.count(cfg.mount_root + "/acme"));
    EXPECT_EQ(again.list(true)[0].live.state, "hibernated");
    // Its next connection wakes it: started, accepting, its own server back.
    m.calls.clear();
    again.wake("acme", std::chrono::steady_clock::now() + std::chrono::seconds(5));
    EXPECT_TRUE(m.units.count("acme"));
    EXPECT_FALSE(route_for(m, "acme")->hibernated);
    EXPECT_EQ(again.get("acme").live.state, "running");
    EXPECT_EQ(read_file((dir / "tenants" / "acme.toml").string()).find("hibernated"), std::string::npos);
    again.wake("acme", std::chrono::steady_clock::now());  // awake already: nothing
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "start_unit"), 1);
    // A client that came between the look and the switch keeps it awake.
    idle = false;
    EXPECT_FALSE(again.hibernate("acme", [&] { return idle; }));
    EXPECT_TRUE(m.units.count("acme"));
    EXPECT_FALSE(route_for(m, "acme")->hibernated);
    EXPECT_EQ(read_file((dir / "tenants" / "acme.toml").string()).find("hibernated"), std::string::npos);
    // hostctl start wakes a hibernated tenant; hostctl stop makes one plainly stopped (unrouted).
    idle = true;
    EXPECT_TRUE(again.hibernate("acme", [&] { return idle; }));
    EXPECT_EQ(again.start("acme").live.state, "running");
    EXPECT_FALSE(route_for(m, "acme")->hibernated);
    EXPECT_TRUE(again.hibernate("acme", [&] { return idle; }));
    auto v = again.stop("acme");
    EXPECT_EQ(v.live.state, "stopped");
    EXPECT_FALSE(route_for(m, "acme"));
    EXPECT_FALSE(again.hibernate("acme", [&] { return idle; })) << "a stopped tenant does not hibernate";
    // Nor does one that is down: it stays down, and alerted on.
    m.units.erase("beta");
    EXPECT_FALSE(again.hibernate("beta", [&] { return idle; }));
    EXPECT_EQ(again.get("beta").live.state, "down");
}

TEST_F(AManager, KeepsAHibernatedTenantsBackupTimersAndWakesItForABackup) {
    cfg.hibernate_after = 60;
    cfg.backup_repo = "/backups";
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    api().create("acme", json::object());
    // A scheduled backup under way: it stays awake.
    m.backups_running.insert("acme");
    EXPECT_FALSE(mgr->hibernate("acme", [] { return true; }));
    EXPECT_TRUE(m.units.count("acme"));
    m.backups_running.clear();
    ASSERT_TRUE(mgr->hibernate("acme", [] { return true; }));
    EXPECT_FALSE(m.units.count("acme"));
    EXPECT_TRUE(m.armed.count("acme")) << "its timers run on: their units wake it";
    // After a reboot too (the reconcile starts them; the tenant stays hibernated).
    m.armed.clear(), m.attached.clear(), m.mounts.clear(), m.units.clear(), m.routes.clear();
    Manager again(cfg, std::make_unique<FakeEffects>(m));
    again.start();
    EXPECT_TRUE(m.armed.count("acme"));
    EXPECT_EQ(again.get("acme").live.state, "hibernated");
    // What a scheduled backup's unit runs first: hostctl wake.
    m.calls.clear();
    EXPECT_EQ(again.wake_now("acme").live.state, "running");
    EXPECT_TRUE(m.units.count("acme"));
    EXPECT_EQ(again.wake_now("acme").live.state, "running") << "awake already: nothing";
    EXPECT_EQ(std::count(m.calls.begin(), m.calls.end(), "start_unit"), 1);
    // A backup on request wakes it too, and none hibernates it while it runs.
    ASSERT_TRUE(again.hibernate("acme", [] { return true; }));
    bool slept = true;
    m.during_backup = [&] { slept = again.hibernate("acme", [] { return true; }); };
    EXPECT_NO_THROW(again.backup("acme", "full"));
    EXPECT_FALSE(slept);
    EXPECT_TRUE(m.units.count("acme"));
    m.during_backup = nullptr;
    EXPECT_TRUE(again.hibernate("acme", [] { return true; })) << "after it, it may";
    // One stopped on purpose is not woken (nor started): hostctl start runs it.
    again.stop("acme");
    EXPECT_EQ(error_of([&] { again.wake_now("acme"); }).code(), Errc::conflict);
    EXPECT_FALSE(m.units.count("acme"));
    EXPECT_EQ(error_of([&] { again.wake_now("nosuch"); }).code(), Errc::not_found);
}

TEST_F(AManager, WakesAHibernatedTenantForAVerbThatNeedsItsPostgresAndWhenHibernationIsTurnedOff) {
    cfg.hibernate_after = 60;
    mgr = std::make_unique<Manager>(cfg, std::make_unique<FakeEffects>(m));
    mgr->load();
    api().create("acme", json::object());
    ASSERT_TRUE(mgr->hibernate("acme", [] { return true; }));
    mgr->set_password("acme", {.password = std::string("a-new-password-1")});
    EXPECT_TRUE(m.units.count("acme"));
    EXPECT_EQ(mgr->get("acme").live.state, "running");
    ASSERT_TRUE(mgr->hibernate("acme", [] { return true; }));
    // hostd.toml without [hibernate]: nothing would wake it, so hostd runs it again at start.
    Config off = cfg;
    off.hibernate_after = 0;
    m.units.clear(), m.routes.clear();
    Manager again(off, std::make_unique<FakeEffects>(m));
    again.start();
    EXPECT_TRUE(m.units.count("acme"));
    EXPECT_EQ(again.get("acme").live.state, "running");
}

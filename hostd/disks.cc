#include "hostd/disks.h"

#include <filesystem>

#include "base/error.h"
#include "base/size.h"
#include "base/strings.h"
#include "hostd/log.h"
#include "model/layout.h"

namespace hostd {
namespace {

// A sparse file under loop_dir attached as a loop device.
class LoopDisk final : public Disk {
public:
    LoopDisk(const Config& cfg, Effects& fx, Store& store) : cfg_(cfg), fx_(fx), store_(store) {}

    std::string acquire(TenantRecord& t, bool kept, bool, Rollback& rb) override {
        t.image = layout_of(cfg_, t.name).image;
        store_.save(t);  // recorded before the file exists
        if (!kept) {
            check_room(t.name, t.spec.disk_size, "disk_size");
            fx_.create_image(t.image, t.spec.disk_size);
            rb.add("disk image", [this, image = t.image] { fx_.remove_image(image); });
        }
        t.device = fx_.attach_image(t.image);
        rb.add("loop device", [this, image = t.image] { fx_.detach_image(image); });
        return "";
    }
    void undo_format(const TenantRecord&) override {}  // the image itself goes with "disk image"
    bool reattach(TenantRecord& t) override {
        if (t.image.empty()) return false;
        const std::string dev = fx_.attach_image(t.image);
        if (dev == t.device) return false;
        t.device = dev;
        return true;
    }
    void release(const TenantRecord& t) override {
        if (!t.image.empty()) fx_.detach_image(t.image);
    }
    void destroy(const TenantRecord& t) override {
        if (!t.image.empty()) fx_.remove_image(t.image);
    }
    std::string kept_device(const TenantRecord&) override { return ""; }
    void grow(const TenantRecord& t, uint64_t new_size) override {
        check_room(t.name, new_size, "size");
        fx_.grow_image(t.image, new_size);
    }
    void check_grow(const TenantRecord& t, uint64_t new_size) override { check_room(t.name, new_size, "size"); }

private:
    // Images are sparse, so nothing stops them from being promised more space than loop_dir
    // has; then a tenant filling its disk takes the space another tenant's image was counting
    // on, and that tenant gets I/O errors. Refuses (Errc::refused, naming field) an image of
    // size for tenant name when all tenants' images (detached ones keep theirs; creating ones
    // are counted from the moment their record is reserved, so parallel creates see each
    // other) would total more than loop_overcommit times the space they can have.
    void check_room(const std::string& name, uint64_t size, const char* field) {
        if (cfg_.loop_overcommit <= 0) return;
        uint64_t committed = 0;
        size_t others = 0;
        std::vector<std::string> images;
        for (const auto& r : store_.snapshot()) {
            if (r.spec.backend != "loop") continue;
            images.push_back(r.image.empty() ? layout_of(cfg_, r.name).image : r.image);
            if (r.name == name) continue;  // its own image counts at the size asked
            committed += r.spec.disk_size;
            others++;
        }
        const Effects::LoopSpace space = fx_.loop_space(images);
        const long double room = static_cast<long double>(space.available + space.written) * cfg_.loop_overcommit;
        if (static_cast<long double>(committed) + size <= room) return;
        const uint64_t left = room > committed ? static_cast<uint64_t>(room - committed) : 0;
        throw Error(Errc::refused,
                    "Not enough room for a loop image of " + format_size(size) + " under " + cfg_.loop_dir + ": " +
                        format_size(space.available) + " free there, the other " + std::to_string(others) +
                        " tenants' images are " + format_size(committed) + " (" + format_size(space.written) +
                        " of all images written), and storage.loop_overcommit = " + format_number(cfg_.loop_overcommit) +
                        " lets images total " + format_size(static_cast<uint64_t>(room)) + "; ask for at most " +
                        format_size(left) + ", delete tenants with purge, or free space under " + cfg_.loop_dir + ".",
                    field);
    }

    const Config& cfg_;
    Effects& fx_;
    Store& store_;
};

// A block device given to one tenant: named in the create, or the first usable one of the pool
// (storage.devices).
class DeviceDisk final : public Disk {
public:
    DeviceDisk(const Config& cfg, Effects& fx, Store& store) : cfg_(cfg), fx_(fx), store_(store) {}

    std::string acquire(TenantRecord& t, bool kept, bool force, Rollback&) override {
        if (kept) {
            relocate(t);  // the kept disk may have another name since it was let go
            return "";
        }
        const storage::DeviceCheck c = claim(t.name, t.spec.device, force);
        t.device = c.path;
        t.spec.device = c.path;
        t.device_id = c.device_id;
        store_.save(t);  // the claim is on record before anything is written to the device
        if (c.destroys().empty()) return "";
        log::warning("Forced: formatting over " + c.destroys() + " on " + c.path + " (create with force)", t.name);
        // Data without a signature needs no erasing: mkfs writes over it.
        if (!c.signature.empty()) fx_.erase_signatures(c.path);
        return c.destroys() + " on " + c.path;
    }
    void undo_format(const TenantRecord& t) override { fx_.wipe_device(t.device, t.fs_uuid); }
    bool reattach(TenantRecord& t) override { return relocate(t); }
    void release(const TenantRecord&) override {}
    void destroy(const TenantRecord& t) override {
        if (!t.device.empty()) fx_.wipe_device(t.device, t.fs_uuid);
    }
    std::string kept_device(const TenantRecord& t) override { return t.spec.device; }
    void grow(const TenantRecord& t, uint64_t new_size) override { check_grow(t, new_size); }
    void check_grow(const TenantRecord& t, uint64_t new_size) override {
        const uint64_t have = fx_.device_size(t.device);
        if (have < new_size)
            throw Error(Errc::refused, t.device + " is " + format_size(have) + "; grow the volume to at least " +
                                           format_size(new_size) + " first, then resize again.");
    }

private:
    // Follows the disk to the name the kernel gave it this time (found by its filesystem UUID),
    // and records its stable id where an older record lacks it. Returns whether t changed.
    bool relocate(TenantRecord& t) {
        const Effects::Located at = fx_.locate_device(t);
        bool changed = false;
        if (!at.device.empty() && at.device != t.device) {
            log::warning("The disk with filesystem UUID " + t.fs_uuid + " was " + t.device + " and is " + at.device +
                             " now; following it",
                         t.name);
            t.device = t.spec.device = at.device;
            changed = true;
        }
        if (t.device_id.empty() && !at.device_id.empty()) {
            t.device_id = at.device_id;
            changed = true;
        }
        return changed;
    }

    // The device named, checked and not another tenant's; or the first usable one of the pool.
    // Reserved in the store under its lock before it returns, so a concurrent create sees it.
    storage::DeviceCheck claim(const std::string& name, const std::string& requested, bool force) {
        const bool from_pool = requested.empty();
        std::vector<std::string> candidates = from_pool ? cfg_.devices : std::vector<std::string>{requested};
        std::string reasons;
        for (const auto& cand : candidates) {
            try {
                // Never force a device picked from the pool: force is an operator's word about one device.
                storage::DeviceCheck c = fx_.check_device(cand, force && !from_pool);
                store_.locked([&](auto& records) {
                    for (auto& [other, r] : records) {
                        if (other == name) continue;
                        std::error_code ec;
                        auto spec_dev = r.spec.device.empty() ? std::string()
                                                              : std::filesystem::weakly_canonical(r.spec.device, ec).string();
                        // By name, and by what survives a rename: a reboot may have given another
                        // tenant's disk (kept ones too) the name asked for.
                        std::string why;
                        if (r.device != c.path && spec_dev != c.path) {
                            if (!c.fs_uuid.empty() && lower(c.fs_uuid) == lower(r.fs_uuid))
                                why = ": it carries that tenant's filesystem (UUID " + r.fs_uuid + ")";
                            else if (!c.device_id.empty() && c.device_id == r.device_id)
                                why = ": it is that tenant's disk (" + r.device_id + ")";
                            else
                                continue;
                        }
                        throw Error(Errc::conflict, c.path + " is already claimed by tenant '" + other + "' (" +
                                                        std::string(to_string(r.state)) + ")" + why +
                                                        "; hostd gives a device to one tenant only.");
                    }
                    records[name].device = c.path;
                    records[name].device_id = c.device_id;
                });
                return c;
            } catch (const Error& e) {
                if (!from_pool) throw;
                reasons += std::string(reasons.empty() ? "" : "; ") + e.what();
            }
        }
        if (candidates.empty())
            throw Error(Errc::invalid, "The create names no device and hostd.toml has no pool (storage.devices)", "device");
        throw Error(Errc::unavailable, "No free device in the pool (storage.devices): " + reasons);
    }

    const Config& cfg_;
    Effects& fx_;
    Store& store_;
};

}  // namespace

Disks::Disks(const Config& cfg, Effects& fx, Store& store) {
    kinds_["loop"] = std::make_unique<LoopDisk>(cfg, fx, store);
    kinds_["device"] = std::make_unique<DeviceDisk>(cfg, fx, store);
}

Disk& Disks::of(const TenantSpec& spec) {
    auto it = kinds_.find(spec.backend);
    if (it == kinds_.end()) throw Error(Errc::invalid, "Unknown disk backend '" + spec.backend + "'", "backend");
    return *it->second;
}

}  // namespace hostd

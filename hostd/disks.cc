#include "hostd/disks.h"

#include <filesystem>

#include "base/error.h"
#include "base/size.h"
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
            fx_.create_image(t.image, t.spec.disk_size);
            rb.add("disk image", [this, image = t.image] { fx_.remove_image(image); });
        }
        t.device = fx_.attach_image(t.image);
        rb.add("loop device", [this, image = t.image] { fx_.detach_image(image); });
        return "";
    }
    void undo_format(const TenantRecord&) override {}  // the image itself goes with "disk image"
    std::string reattach(const TenantRecord& t) override { return t.image.empty() ? t.device : fx_.attach_image(t.image); }
    void release(const TenantRecord& t) override {
        if (!t.image.empty()) fx_.detach_image(t.image);
    }
    void destroy(const TenantRecord& t) override {
        if (!t.image.empty()) fx_.remove_image(t.image);
    }
    std::string kept_device(const TenantRecord&) override { return ""; }
    void grow(const TenantRecord& t, uint64_t new_size) override { fx_.grow_image(t.image, new_size); }

private:
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
            t.device = t.spec.device;
            return "";
        }
        const storage::DeviceCheck c = claim(t.name, t.spec.device, force);
        t.device = c.path;
        t.spec.device = c.path;
        store_.save(t);  // the claim is on record before anything is written to the device
        if (c.signature.empty()) return "";
        log::warning("Forced: erasing " + c.signature + " on " + c.path + " (create with force)", t.name);
        fx_.erase_signatures(c.path);
        return c.signature + " on " + c.path;
    }
    void undo_format(const TenantRecord& t) override { fx_.wipe_device(t.device, t.fs_uuid); }
    std::string reattach(const TenantRecord& t) override { return t.device; }
    void release(const TenantRecord&) override {}
    void destroy(const TenantRecord& t) override {
        if (!t.device.empty()) fx_.wipe_device(t.device, t.fs_uuid);
    }
    std::string kept_device(const TenantRecord& t) override { return t.spec.device; }
    void grow(const TenantRecord& t, uint64_t new_size) override {
        const uint64_t have = fx_.device_size(t.device);
        if (have < new_size)
            throw Error(Errc::refused, t.device + " is " + format_size(have) + "; grow the volume to at least " +
                                           format_size(new_size) + " first, then resize again.");
    }

private:
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
                        if (r.device == c.path || spec_dev == c.path)
                            throw Error(Errc::conflict, c.path + " is already claimed by tenant '" + other + "' (" +
                                                            std::string(to_string(r.state)) +
                                                            "); hostd gives a device to one tenant only.");
                    }
                    records[name].device = c.path;
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

// The kinds of disk a tenant can have, behind one interface: a loop image (laptops, CI, the
// demo) or a block device of its own (production). The kind is chosen once per tenant from
// its spec (Disks::of); the provisioner and the reconciler never branch on it, so a new kind
// (a pool of prepared disks) is one more class here.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/rollback.h"
#include "hostd/effects.h"
#include "hostd/store.h"
#include "model/config.h"
#include "model/tenant.h"

namespace hostd {

class Disk {
public:
    virtual ~Disk() = default;

    // Create, step "disk": the block device the tenant's filesystem goes on — a new one, or on
    // reuse (kept) the one it had. Sets t.device (and what names the disk, e.g. t.image) and
    // saves t before anything exists on the machine; registers on rb how to undo what it made.
    // Returns what a forced create erased on the device ("" if nothing).
    virtual std::string acquire(TenantRecord& t, bool kept, bool force, Rollback& rb) = 0;
    // Create, after the format, on failure: erases what the format wrote where the disk outlives
    // the tenant's other undo steps (a device); nothing where they remove the disk (an image).
    virtual void undo_format(const TenantRecord& t) = 0;
    // After a restart: the disk attached again, found by its identity if the kernel renamed it;
    // updates t.device (and what else the record says about it). Returns whether t changed.
    virtual bool reattach(TenantRecord& t) = 0;
    // Delete: lets go of the disk (data kept).
    virtual void release(const TenantRecord& t) = 0;
    // Purge: destroys the data.
    virtual void destroy(const TenantRecord& t) = 0;
    // The device a detached tenant keeps on record ("" when it has none until reattached).
    virtual std::string kept_device(const TenantRecord& t) = 0;
    // Resize: the disk grown to new_size (the filesystem follows separately); Errc::refused when
    // hostd cannot grow it and it is too small, or (loop) the images would outgrow their room.
    virtual void grow(const TenantRecord& t, uint64_t new_size) = 0;
    // The refusals of grow, without growing anything: a resize says them before it asks
    // whether PostgreSQL may be stopped.
    virtual void check_grow(const TenantRecord& t, uint64_t new_size) = 0;
};

class Disks {
public:
    Disks(const Config& cfg, Effects& fx, Store& store);
    Disk& of(const TenantSpec& spec);  // by spec.backend

private:
    std::map<std::string, std::unique_ptr<Disk>> kinds_;
};

}  // namespace hostd

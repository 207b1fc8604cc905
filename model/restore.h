// Disaster recovery of a tenant in place (hostctl restore): when its disk is really gone, and
// what a restore makes in its place. Pure: the facts about the disk come from the effects
// (Effects::disk_facts), the decision is taken here, so every refusal is unit-tested.
//
// The rule ("the data is really gone"): a tenant is restored only when none of these holds:
//  - a filesystem is mounted at its mount point (hostd's namespace), or its unit runs (the unit
//    mounts the disk in its own namespace);
//  - a block device carries its filesystem (the UUID it recorded), under any name;
//  - loop: an image file is at its recorded path, whatever it holds (hostd never writes over
//    a file it did not make now: a blank or foreign one must be moved away by the operator);
//  - device: the recorded device is missing, is now another disk (its stable id differs), or
//    is not blank as a create checks it (storage::check_device without force: a signature,
//    non-zero data, partitions, mounted, held).
// A tenant merely stopped, or whose disk is only unmounted or detached, still has its
// filesystem somewhere: refused, with what brings it back (hostctl start / reconcile).
#pragma once

#include <string>

#include "model/tenant.h"

namespace hostd {

struct DiskFacts {
    bool mounted = false;       // a filesystem at the tenant's mount point in hostd's namespace
    bool unit_running = false;  // its unit is active, activating, reloading or deactivating
    std::string found_at;       // a block device carrying the tenant's filesystem UUID ("" none)
    // loop: the image file at t.image; device: the recorded device.
    enum class Media { absent, blank, data } media = Media::absent;
    std::string detail;         // what is there, or why the device cannot be used
    bool other_disk = false;    // device: the recorded name is another disk now (stable id differs)
};

// How a restore gets its disk.
enum class RestoreDisk {
    new_image,     // loop: a new sparse image of the recorded size at the recorded path
    blank_device,  // device: the recorded device, found blank
};

// The disk a restore of t may use given what is on the machine; throws Errc::conflict (the
// data is there: what to run instead) or Errc::refused (something hostd must not write over)
// with the reason and what to do. t must be ready (the caller checks its state).
RestoreDisk plan_restore_disk(const TenantRecord& t, const DiskFacts& f);

// Why a ready tenant cannot run because its disk is gone, for status and reconcile ("" when
// the facts show its disk is there, only not mounted yet). backups_on: say hostctl restore.
std::string disk_missing_reason(const TenantRecord& t, const DiskFacts& f, bool backups_on);

}  // namespace hostd

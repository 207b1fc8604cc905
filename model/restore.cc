#include "model/restore.h"

#include "base/error.h"

namespace hostd {

RestoreDisk plan_restore_disk(const TenantRecord& t, const DiskFacts& f) {
    const std::string who = "Tenant '" + t.name + "'";
    const std::string nothing = "; nothing was changed.";
    if (f.mounted)
        throw Error(Errc::conflict, who + " has its filesystem mounted: its data is there, a restore would replace it. "
                                          "To bring back data lost inside the cluster (a DROP TABLE), make a branch "
                                          "instead: hostctl create " + t.name + "-restored --from " + t.name +
                                          " --time T" + nothing);
    if (f.unit_running)
        throw Error(Errc::conflict, who + "'s unit runs (with its disk mounted in its own namespace): its data is there; "
                                          "stop it (hostctl stop " + t.name + ") and look before restoring" + nothing);
    if (!f.found_at.empty())
        throw Error(Errc::conflict, who + "'s filesystem (UUID " + t.fs_uuid + ") is on " + f.found_at +
                                          ": its disk is there, only not mounted. hostctl reconcile (or hostctl start " +
                                          t.name + " for a tenant stopped on purpose) mounts it and starts the tenant" +
                                          nothing);
    if (t.spec.backend == "loop") {
        if (f.media == DiskFacts::Media::absent) return RestoreDisk::new_image;
        throw Error(Errc::refused, who + "'s image " + t.image + " exists but holds no filesystem of the tenant's (" +
                                       (f.detail.empty() ? std::string("blank") : f.detail) +
                                       "); hostd does not write over a file it did not make. If its data is really "
                                       "gone, move the file away, then restore again" + nothing);
    }
    if (f.other_disk)
        throw Error(Errc::refused, who + "'s device " + t.device + " is another disk now (" + f.detail +
                                       ", recorded " + t.device_id + "); hostd restores onto the tenant's own disk only" +
                                       nothing);
    if (f.media == DiskFacts::Media::absent)
        throw Error(Errc::refused, who + "'s device " + t.device + " is not there (" + f.detail +
                                       "); put a blank disk in its place under that name, then restore again" + nothing);
    if (f.media == DiskFacts::Media::data)
        throw Error(Errc::refused, who + "'s device " + t.device + " holds no filesystem of the tenant's but is not blank (" +
                                       f.detail + "); hostd never formats a disk that may hold data: if it really holds "
                                       "nothing of value, zero it first (wipefs --all, blkdiscard -z), then restore again" +
                                       nothing);
    return RestoreDisk::blank_device;
}

std::string disk_missing_reason(const TenantRecord& t, const DiskFacts& f, bool backups_on) {
    if (f.mounted || !f.found_at.empty()) return "";
    std::string what;
    if (t.spec.backend == "loop") {
        what = f.media == DiskFacts::Media::absent ? "its image " + t.image + " is gone"
                                                   : "its image " + t.image + " holds no filesystem of the tenant's (" +
                                                         (f.detail.empty() ? std::string("blank") : f.detail) + ")";
    } else {
        what = "no device carries its filesystem (UUID " + t.fs_uuid + "); " + t.device +
               (f.media == DiskFacts::Media::absent ? " is not there"
                : f.media == DiskFacts::Media::blank ? " is blank"
                                                      : ": " + f.detail);
    }
    return "disk missing: " + what +
           (backups_on ? "; hostctl restore " + t.name + " brings it back from backups"
                       : "; backups are off on this host (backup.repo), so only the disk itself can bring it back");
}

}  // namespace hostd

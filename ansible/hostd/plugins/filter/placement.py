# Placement of a fleet's tenants on hostd hosts, as an Ansible filter (playbooks/fleet.yml):
#   {{ fleet_tenants | hostd.hostd.placement(capacity, names) }}
# capacity: host -> its GET /v1/host object; names: host -> names of the tenants it has.
#   {{ existing | hostd.hostd.replacements(capacity, lost) }}      (playbooks/replace_host.yml)
# existing: host -> its GET /v1/tenants list. Every host of the play computes the same answer
# from the same facts.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.formatters import human_to_bytes


# hostd's own limit (model/ha.h kMaxReplicas): a create naming more replicas is refused.
MAX_REPLICAS = 2


def _bytes(value):
    return human_to_bytes(str(value)) if value not in (None, "") else 0


def placement(tenants, capacity, names):
    """Returns {tenant: [host, ...]}. The first host is where the tenant's task runs; an HA
    tenant (replicas: N) gets N more hosts, all distinct and all with hostd's HA role (ha_host).
    A tenant that exists somewhere stays where it is (every host that has it, sorted). A new one
    goes to the hosts with the most free memory (memory_total - memory_committed, less what
    this run placed before it) among those with a free public port and room for its loop image;
    [] when not enough hosts qualify. A tenant with state: absent is never placed: the hosts
    that have it, or [] (nothing to delete)."""
    free, disk, ports = {}, {}, {}
    for h, c in capacity.items():
        free[h] = int(c.get("memory_total", 0)) - int(c.get("memory_committed", 0))
        disk[h] = int(c.get("loop_dir_available", 0))
        ports[h] = int(c.get("ports_free", 0))
    out = {}
    for t in tenants:
        name = t["name"]
        have = sorted(h for h in capacity if name in names.get(h, []))
        if have or t.get("state") == "absent":
            out[name] = have
            continue
        replicas = int(t.get("replicas", 0) or 0)
        if replicas < 0 or replicas > MAX_REPLICAS:
            raise AnsibleFilterError("tenant %s: replicas must be 0, 1 or %d (hostd runs an HA tenant on at most %d hosts), "
                                     "not %s" % (name, MAX_REPLICAS, MAX_REPLICAS + 1, replicas))
        mem, size = _bytes(t.get("memory")), _bytes(t.get("size"))
        fits = [h for h in sorted(capacity)
                if ports[h] > 0 and disk[h] >= size and (replicas == 0 or capacity[h].get("ha_host"))]
        # Most free memory first; ties by name (sorted above, and sort is stable).
        chosen = sorted(fits, key=lambda h: -free[h])[:replicas + 1]
        if len(chosen) < replicas + 1:
            out[name] = []
            continue
        for h in chosen:
            free[h] -= mem
            disk[h] -= size
            ports[h] -= 1
        out[name] = chosen
    return out


def replacements(existing, capacity, lost, rebuild=False):
    """The HA tenants with a member on `lost` (a host's [ha] name) and what replaces each member:
    a list, by tenant name, of {name, member: lost, run_on, with}. run_on is the inventory host
    where the task runs: one of the tenant's other member hosts that answered (the first by
    name). with is the [ha] name of the new member's host: among the HA hosts that answered,
    have no member of the tenant, a free public port and room for its disk, the one with the
    most free memory (less what this run moved there before); None when none qualifies. With
    rebuild, with is None for every tenant: the member is rebuilt on `lost` itself (a host back
    with an empty disk). A tenant none of whose other members answered gets run_on None."""
    ha_name = dict((h, c.get("ha_host")) for h, c in capacity.items() if c.get("ha_host"))
    by_ha = dict((n, h) for h, n in ha_name.items())
    free, disk, ports = {}, {}, {}
    for h, c in capacity.items():
        free[h] = int(c.get("memory_total", 0)) - int(c.get("memory_committed", 0))
        disk[h] = int(c.get("loop_dir_available", 0))
        ports[h] = int(c.get("ports_free", 0))
    tenants = {}
    for h in sorted(existing):
        for t in existing[h] or []:
            if t.get("members") and t.get("name") not in tenants:
                tenants[t["name"]] = t
    out = []
    for name in sorted(tenants):
        t = tenants[name]
        members = sorted(m.get("host") for m in t["members"])
        if lost not in members:
            continue
        others = [by_ha[m] for m in members if m != lost and m in by_ha]
        entry = {"name": name, "member": lost, "run_on": sorted(others)[0] if others else None, "with": None}
        if not rebuild:
            mem, size = _bytes(t.get("memory")), _bytes(t.get("disk_size"))
            fits = [h for h in sorted(ha_name)
                    if ha_name[h] not in members and ha_name[h] != lost and ports[h] > 0 and disk[h] >= size]
            if fits:
                h = sorted(fits, key=lambda x: -free[x])[0]
                free[h] -= mem
                disk[h] -= size
                ports[h] -= 1
                entry["with"] = ha_name[h]
        out.append(entry)
    return out


class FilterModule(object):
    def filters(self):
        return {"placement": placement, "replacements": replacements}

# Placement of a fleet's tenants on hostd hosts, as an Ansible filter (playbooks/fleet.yml):
#   {{ fleet_tenants | hostd.hostd.placement(capacity, names) }}
# capacity: host -> its GET /v1/host object; names: host -> names of the tenants it has.
# Every host of the play computes the same answer from the same facts.
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


class FilterModule(object):
    def filters(self):
        return {"placement": placement}

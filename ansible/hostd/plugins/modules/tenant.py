#!/usr/bin/python
# A hostd tenant as an Ansible resource: compares what hostd has with what the task asks and
# sends only the difference (PUT to create, PATCH for limits/settings, POST .../resize to grow).
# Talks HTTP/JSON to hostd's Unix socket with the standard library: nothing to install.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: tenant
short_description: Create, change or delete a hostd PostgreSQL tenant
description:
  - Manages one tenant of hostd (a PostgreSQL 15 cluster with its own disk, user, systemd unit and proxy route)
    through hostd's API socket.
  - Idempotent. An existing tenant whose limits or settings differ is changed live (PATCH); a larger I(size)
    grows its disk (resize); a smaller one is refused.
  - Every secret hostd returns (the tenant's password, and the URL that carries it) is added to the
    module's C(no_log_values), so it shows as C(********) wherever Ansible prints or logs the result
    (verbose output, failure messages, diffs, callbacks), also without C(no_log) on the task.
  - With I(return_secrets=true) the password is returned in the clear when the tenant is created, in
    I(password) and I(url); set C(no_log) on such tasks, as the example playbook does, and register the
    result to hand the URL on.
version_added: "0.1.0"
options:
  name:
    description: Tenant name (a-z, 0-9, '-'; at most 30 characters).
    type: str
    required: true
  state:
    description:
      - C(present) creates or updates the tenant and leaves it running or stopped as it is (a new one runs);
        C(absent) deletes it.
      - C(started) and C(stopped) are C(present) that also starts or stops its PostgreSQL (C(POST .../start),
        C(.../stop)); hostd keeps a stopped tenant stopped across reconciles and reboots, and unrouted.
      - C(restarted) is C(present) that restarts it (its sessions are cut), every run, unless the run just
        created it.
    type: str
    choices: [present, absent, started, stopped, restarted]
    default: present
  size:
    description: Disk size, e.g. C(2G). Default from hostd.toml on creation. Growing is done online where possible.
    type: str
  memory:
    description: Memory limit, e.g. C(512M).
    type: str
  cpu:
    description: CPU quota in CPUs, e.g. C(0.5).
    type: float
  tasks:
    description: Most processes/threads.
    type: int
  io_weight:
    description: IO weight 1..10000.
    type: int
  settings:
    description: PostgreSQL settings (name to value). When given, they replace the tenant's overrides.
    type: dict
  extensions:
    description:
      - Extensions hostd enables for the tenant, from C(extensions.allowed) in hostd.toml (e.g. C(pg_stat_statements),
        whose library hostd preloads; that takes a restart of the tenant). When given, they replace the tenant's list.
      - The tenant's superuser then runs C(CREATE EXTENSION).
    type: list
    elements: str
  backend:
    description: C(loop) or C(device) (creation only).
    type: str
  device:
    description: Block device for the device backend (creation only).
    type: str
  filesystem:
    description: C(ext4) or C(xfs) (creation only).
    type: str
  reuse:
    description: Bring back a tenant deleted without purge, with its data, limits and settings as hostd recorded
      them; I(memory), I(cpu), I(tasks), I(io_weight), a larger I(size) and I(settings) given apply (the creation-only
      options are not sent, the kept disk stays what it is).
    type: bool
    default: false
  replicas:
    description:
      - An HA tenant, at creation only. The other hostd hosts (their host names, as in C([ha] hosts)) that each run
        a replica; one or two. Sent as C(ha) of the create; playbooks/fleet.yml chooses them by free memory.
      - An existing tenant whose members are other hosts fails; members change with I(replace).
    type: list
    elements: str
  replace:
    description:
      - An HA tenant's member to replace, by its host (a name as in C([ha] hosts)), as C(hostctl replace) does
        (C(POST .../replace)). A new member is made on I(replace_with) and cloned from the others, then the old
        one is deleted; a host that cannot be reached deletes its old member once it is back. Without
        I(replace_with) the member is rebuilt on the same host from the others, on every run (like C(restarted)).
      - Run the task on another member's host. hostd never replaces the primary (switch over first).
      - With I(replace_with), a tenant that has a member there and none on I(replace) is left as it is; a tenant
        with neither fails.
    type: str
  replace_with:
    description: With I(replace), the host of the new member (in C([ha] hosts), without a member of the tenant).
    type: str
  synchronous:
    description: With I(replicas), Patroni's synchronous mode (no acknowledged commit is lost at a failover).
    type: bool
    default: false
  synchronous_strict:
    description: With I(synchronous), writes stop rather than go on without a synchronous replica.
    type: bool
    default: false
  purge:
    description: With I(state=absent), also destroy the tenant's data (cannot be undone).
    type: bool
    default: false
  return_secrets:
    description:
      - Return the new tenant's password (in I(password) and I(url)) in the clear, only on creation. Without it
        the module masks every secret it sees and returns I(url) without the password.
      - Ansible masks values the module hides in the registered result too, so a playbook that needs the
        password must ask for it here, and should set C(no_log) on the task.
    type: bool
    default: false
  socket:
    description: hostd's API socket. The user running the module must be root or in group C(hostd).
    type: path
    default: /run/hostd/hostd.sock
  timeout:
    description: Seconds to wait for hostd (creation formats a disk and runs initdb).
    type: int
    default: 600
author:
  - hostd maintainers
"""

EXAMPLES = r"""
- name: A tenant with limits and a setting (its password is returned once, on creation)
  hostd.hostd.tenant:
    name: acme
    size: 2G
    memory: 512M
    cpu: 0.5
    settings:
      work_mem: 4MB
    return_secrets: true
  register: acme
  no_log: true

- name: Show the URL (with the password) once, on creation
  ansible.builtin.debug:
    msg: "{{ acme.url }}"
  when: acme.password is defined

- name: Keep it stopped (the data stays; no route, no memory used)
  hostd.hostd.tenant:
    name: acme
    state: stopped

- name: Delete it and its data
  hostd.hostd.tenant:
    name: acme
    state: absent
    purge: true
"""

RETURN = r"""
tenant:
  description: The tenant as hostd reports it (no password).
  returned: success, unless absent
  type: dict
url:
  description: Connection URL; with the password only with I(return_secrets=true).
  returned: when the tenant was created
  type: str
password:
  description: The tenant admin's password.
  returned: when the tenant was created with I(return_secrets=true)
  type: str
actions:
  description: The API calls made (or that would be made in check mode), e.g. C(PATCH memory,cpu).
  returned: always
  type: list
  elements: str
"""

import json
import re
import socket as socketlib

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves import http_client
from ansible.module_utils.six.moves.urllib.parse import quote

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text):
    """hostd's size syntax ("512M", "1.5GiB", "1048576"; K = 1024) to bytes; None if not a size."""
    if text is None:
        return None
    m = re.match(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:i?B)?\s*$", str(text), re.IGNORECASE)
    if not m:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


class UnixHTTPConnection(http_client.HTTPConnection):
    def __init__(self, path, timeout):
        http_client.HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class Api(object):
    def __init__(self, module):
        self.module = module
        self.path = module.params["socket"]
        self.timeout = module.params["timeout"]

    def hide_secrets(self, doc):
        """A tenant's password and the URL that carries it are masked wherever Ansible prints or logs
        what this module returns (unless the task asked for them with return_secrets)."""
        if self.module.params["return_secrets"]:
            return
        t = doc.get("tenant") if isinstance(doc, dict) else None
        if isinstance(t, dict) and t.get("password"):
            self.module.no_log_values.add(t["password"])
            if t.get("url"):
                self.module.no_log_values.add(t["url"])

    def call(self, method, path, body=None, ok=(200, 201)):
        """Returns (status, json). Fails the module on a transport error or an unexpected status."""
        conn = UnixHTTPConnection(self.path, self.timeout)
        try:
            data = json.dumps(body) if body is not None else None
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            status = resp.status
        except (OSError, IOError, socketlib.error) as e:
            self.module.fail_json(msg="Cannot reach hostd at %s: %s (is hostd.socket enabled, and is the user root "
                                      "or in group hostd?)" % (self.path, e))
        finally:
            conn.close()
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            doc = {"raw": raw.decode("utf-8", "replace")}
        self.hide_secrets(doc)
        if status not in ok:
            err = doc.get("error", {}) if isinstance(doc, dict) else {}
            self.module.fail_json(msg="hostd: %s %s failed (HTTP %d): %s" % (method, path, status,
                                                                            err.get("message", doc)),
                                  status=status, error=err)
        return status, doc


def url_without_password(url):
    """postgresql://user:password@host... without ':password' (the password is percent-encoded)."""
    if not url:
        return url
    return re.sub(r"^([a-z]+://[^:@/?]*):[^@/?]*@", r"\1@", url)


def wanted_limits(p):
    """The limit fields the task sets, in hostd's JSON form (sizes as bytes for comparing)."""
    out = {}
    if p["memory"] is not None:
        out["memory"] = parse_size(p["memory"])
    if p["cpu"] is not None:
        out["cpu"] = float(p["cpu"])
    if p["tasks"] is not None:
        out["tasks"] = p["tasks"]
    if p["io_weight"] is not None:
        out["io_weight"] = p["io_weight"]
    if p["settings"] is not None:
        out["settings"] = dict((k, str(v)) for k, v in p["settings"].items())
    if p["extensions"] is not None:
        out["extensions"] = sorted(set(p["extensions"]))
    return out


def differences(tenant, want):
    """Fields of `want` whose value differs from the tenant's (settings compared as strings)."""
    diff = []
    for k, v in want.items():
        have = tenant.get(k)
        if k == "cpu":
            if abs(float(have or 0) - v) > 1e-9:
                diff.append(k)
        elif k == "settings":
            if dict((a, str(b)) for a, b in (have or {}).items()) != v:
                diff.append(k)
        elif k == "extensions":
            if sorted(have or []) != v:
                diff.append(k)
        elif have != v:
            diff.append(k)
    return diff


def run_state_action(state, tenant):
    """The lifecycle call (start, stop, restart) that brings an existing tenant to `state`; None if none."""
    stopped = bool(tenant.get("stopped"))
    if state == "started" and stopped:
        return "start"
    if state == "stopped" and not stopped:
        return "stop"
    if state == "restarted":
        return "start" if stopped else "restart"
    return None


def view(t):
    """What the diff shows: the managed fields, never the password."""
    if not t:
        return {}
    keys = ("name", "state", "stopped", "disk_size", "memory", "cpu", "tasks", "io_weight", "settings", "extensions")
    return dict((k, t.get(k)) for k in keys if k in t)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent", "started", "stopped", "restarted"]),
            size=dict(type="str"),
            memory=dict(type="str"),
            cpu=dict(type="float"),
            tasks=dict(type="int"),
            io_weight=dict(type="int"),
            settings=dict(type="dict"),
            extensions=dict(type="list", elements="str"),
            backend=dict(type="str"),
            device=dict(type="str"),
            filesystem=dict(type="str"),
            reuse=dict(type="bool", default=False),
            return_secrets=dict(type="bool", default=False),
            replicas=dict(type="list", elements="str"),
            replace=dict(type="str"),
            replace_with=dict(type="str"),
            synchronous=dict(type="bool", default=False),
            synchronous_strict=dict(type="bool", default=False),
            purge=dict(type="bool", default=False),
            socket=dict(type="path", default="/run/hostd/hostd.sock"),
            timeout=dict(type="int", default=600),
        ),
        supports_check_mode=True,
        required_by=dict(replace_with="replace"),
    )
    p = module.params
    for k in ("size", "memory"):
        if p[k] is not None and parse_size(p[k]) is None:
            module.fail_json(msg="%s: '%s' is not a size (e.g. 512M, 2G)" % (k, p[k]))
    api = Api(module)
    path = "/v1/tenants/" + quote(p["name"], safe="")
    status, doc = api.call("GET", path, ok=(200, 404))
    tenant = doc.get("tenant") if status == 200 else None
    detached = tenant is not None and tenant.get("state") == "detached"
    result = dict(changed=False, actions=[])
    before = view(tenant)

    if p["state"] == "absent":
        # A tenant deleted without purge stays as a detached record (its data is kept): it is
        # absent unless purge asks to destroy that data too.
        if tenant is None or (detached and not p["purge"]):
            module.exit_json(**result)
        result["actions"].append("DELETE" + (" purge" if p["purge"] else ""))
        result["changed"] = True
        if module._diff:
            result["diff"] = dict(before=before, after={})
        if not module.check_mode:
            api.call("DELETE", path + ("?purge=true" if p["purge"] else ""))
        module.exit_json(**result)

    if tenant is None or detached:
        if detached and not p["reuse"]:
            module.fail_json(msg="Tenant '%s' was deleted without purge and its data is kept; set reuse: true to bring "
                                 "it back, or delete it with state: absent, purge: true first" % p["name"])
        reusing = detached
        if reusing and p["size"] is not None and parse_size(p["size"]) < tenant.get("disk_size", 0):
            module.fail_json(msg="Tenant '%s' has a %d-byte disk; size %s is smaller and hostd does not shrink disks"
                                 % (p["name"], tenant.get("disk_size", 0), p["size"]))
        body = {}
        # A reuse brings the tenant back as hostd recorded it (its disk as it is: hostd refuses
        # disk_size, filesystem, backend and device then); a larger size and other settings are
        # applied after it, as for any existing tenant.
        for k in ("memory", "cpu", "tasks", "io_weight") + (() if reusing else ("backend", "device", "filesystem")):
            if p[k] is not None:
                body[k] = p[k]
        if p["size"] is not None and not reusing:
            body["disk_size"] = p["size"]
        if p["settings"] is not None and not reusing:
            body["settings"] = dict((k, str(v)) for k, v in p["settings"].items())
        if p["extensions"] is not None:
            body["extensions"] = p["extensions"]
        if p["reuse"]:
            body["reuse"] = True
        if p["replicas"]:
            body["ha"] = dict(replicas=p["replicas"], synchronous=p["synchronous"],
                              synchronous_strict=p["synchronous_strict"])
        result["actions"].append("PUT")
        if p["state"] == "stopped" and not reusing:
            result["actions"].append("POST stop")
        result["changed"] = True
        if module.check_mode:
            if module._diff:
                result["diff"] = dict(before=before, after=dict(name=p["name"], state="ready", **wanted_limits(p)))
            module.exit_json(**result)
        _, doc = api.call("PUT", path, body)
        t = doc.get("tenant", {})
        password = t.pop("password", None)
        if p["return_secrets"]:
            result["password"] = password
            result["url"] = t.get("url")
        else:
            result["url"] = url_without_password(t.get("url"))
        # The returned tenant carries no secret: the URL with the password is only in `url`.
        t.pop("url", None)
        result["tenant"] = t
        if not reusing:
            if p["state"] == "stopped":  # a new tenant runs: stop it as asked
                _, doc = api.call("POST", path + "/stop")
                t = dict(doc.get("tenant", t))
                t.pop("password", None)
                t.pop("url", None)
                result["tenant"] = t
            if module._diff:
                result["diff"] = dict(before=before, after=view(t))
            module.exit_json(**result)
        tenant = t  # brought back: grow and change settings below, as for any existing tenant

    # Present and exists: grow, then change limits. Its members are not this module's to change.
    if p["replicas"] is not None:
        here = set(m.get("host") for m in tenant.get("members") or [])
        if here and not set(p["replicas"]) <= here:
            module.fail_json(msg="Tenant '%s' has members on %s, not on %s; replace a member with replace, replace_with"
                                 % (p["name"], ", ".join(sorted(here)), ", ".join(sorted(set(p["replicas"]) - here))))
        if not here and p["replicas"]:
            module.fail_json(msg="Tenant '%s' exists as a single-host tenant; replicas are given only at its creation"
                                 % p["name"])
    after = dict(tenant)
    if p["replace"] is not None:
        here = sorted(m.get("host") for m in tenant.get("members") or [])
        if not here:
            module.fail_json(msg="Tenant '%s' is not an HA tenant: it has no member to replace" % p["name"])
        if p["replace"] in here:
            body = {"member": p["replace"]}
            if p["replace_with"]:
                body["with"] = p["replace_with"]
            result["actions"].append("POST replace %s%s" % (p["replace"], " with " + p["replace_with"] if p["replace_with"] else ""))
            if not module.check_mode:
                api.call("POST", path + "/replace", body)
        elif not (p["replace_with"] and p["replace_with"] in here):
            module.fail_json(msg="Tenant '%s' has no member on %s (its members: %s)"
                                 % (p["name"], p["replace"], ", ".join(here)))
    if p["size"] is not None:
        want = parse_size(p["size"])
        have = tenant.get("disk_size", 0)
        if want < have:
            module.fail_json(msg="Tenant '%s' has a %d-byte disk; size %s is smaller and hostd does not shrink disks"
                                 % (p["name"], have, p["size"]))
        if want > have:
            result["actions"].append("POST resize")
            after["disk_size"] = want
            if not module.check_mode:
                api.call("POST", path + "/resize", {"size": p["size"]})
    want = wanted_limits(p)
    changed_fields = differences(tenant, want)
    if changed_fields:
        body = {}
        for k in changed_fields:
            body[k] = p[k] if k in ("memory", "cpu", "tasks", "io_weight") else want[k]
            after[k] = want[k]
        result["actions"].append("PATCH " + ",".join(changed_fields))
        if not module.check_mode:
            api.call("PATCH", path, body)
    verb = run_state_action(p["state"], tenant)
    if verb:
        result["actions"].append("POST " + verb)
        after["stopped"] = verb == "stop"
        if not module.check_mode:
            api.call("POST", path + "/" + verb)
    result["changed"] = bool(result["actions"])
    if result["changed"] and not module.check_mode and result["actions"] != ["PUT"]:
        _, doc = api.call("GET", path)
        after = doc.get("tenant", after)
    after.pop("password", None)
    after.pop("url", None)
    result["tenant"] = after
    if module._diff and result["changed"]:
        result["diff"] = dict(before=before, after=view(after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

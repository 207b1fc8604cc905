#!/usr/bin/python3
# The fleet playbook's placement (ansible/hostd/plugins/filter/placement.py), without hosts.
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ansible", "hostd", "plugins", "filter"))
from placement import placement, replacements  # noqa: E402
from ansible.errors import AnsibleFilterError  # noqa: E402

G = 1 << 30


def host(free_gib, ha=False, ports=10, disk_gib=100):
    return {"memory_total": 64 * G, "memory_committed": (64 - free_gib) * G,
            "loop_dir_available": disk_gib * G, "ports_free": ports, "ha_host": ha}


def ha_tenant(name, *hosts, memory=G, disk=G):
    return {"name": name, "memory": memory, "disk_size": disk, "members": [{"host": h} for h in hosts]}


class Placement(unittest.TestCase):
    def test_most_free_memory_first_counting_this_runs_tenants(self):
        cap = {"a": host(10), "b": host(8)}
        got = placement([{"name": "t1", "memory": "4G"}, {"name": "t2", "memory": "4G"}, {"name": "t3", "memory": "1G"}],
                        cap, {})
        # t1 -> a (10 free, 6 left); t2 -> b (8 free, 4 left); t3 -> a (6 > 4)
        self.assertEqual(got, {"t1": ["a"], "t2": ["b"], "t3": ["a"]})

    def test_ties_go_to_the_first_name(self):
        self.assertEqual(placement([{"name": "t"}], {"b": host(5), "a": host(5)}, {}), {"t": ["a"]})

    def test_an_existing_tenant_stays_where_it_is(self):
        got = placement([{"name": "t", "replicas": 1}], {"a": host(1, ha=True), "b": host(9, ha=True), "c": host(9, ha=True)},
                        {"a": ["t"], "c": ["t", "u"]})
        self.assertEqual(got, {"t": ["a", "c"]})

    def test_ha_members_go_to_distinct_ha_hosts_by_free_memory(self):
        cap = {"a": host(20), "b": host(9, ha=True), "c": host(7, ha=True), "d": host(8, ha=True)}
        got = placement([{"name": "h", "replicas": 2, "memory": "1G"}, {"name": "p", "memory": "1G"}], cap, {})
        # a has the most memory but no HA role: not an HA member; the plain tenant goes there.
        self.assertEqual(got["h"], ["b", "d", "c"])
        self.assertEqual(got["p"], ["a"])

    def test_each_member_counts_against_its_host(self):
        cap = {"a": host(10, ha=True), "b": host(9, ha=True), "c": host(2, ha=True)}
        got = placement([{"name": "h1", "replicas": 1, "memory": "8G"}, {"name": "h2", "replicas": 1, "memory": "1G"}], cap, {})
        self.assertEqual(got["h1"], ["a", "b"])
        self.assertEqual(got["h2"], ["a", "c"])  # left: a 2, b 1, c 2: a and c, a first by name

    def test_too_few_hosts_with_room_places_nothing(self):
        cap = {"a": host(9, ha=True), "b": host(9, ha=True, ports=0), "c": host(9, ha=True, disk_gib=0)}
        got = placement([{"name": "h", "replicas": 1, "size": "1G"}, {"name": "p", "size": "1G"}], cap, {})
        self.assertEqual(got["h"], [])
        self.assertEqual(got["p"], ["a"])  # nothing was taken for h

    def test_replicas_out_of_range_are_refused(self):
        # hostd's limit (2 replicas), whatever the hosts: three HA hosts and replicas: 3 is refused
        # as such, not as a lack of room.
        cap = {h: host(9, ha=True) for h in "abcd"}
        with self.assertRaisesRegex(AnsibleFilterError, "tenant h: replicas must be 0, 1 or 2 .*at most 3 hosts.*not 3"):
            placement([{"name": "h", "replicas": 3}], cap, {})
        with self.assertRaises(AnsibleFilterError):
            placement([{"name": "h", "replicas": -1}], cap, {})

    def test_an_absent_tenant_is_never_placed_and_takes_no_room(self):
        cap = {"a": host(9, ha=True, ports=1), "b": host(8, ha=True)}
        got = placement([{"name": "gone", "state": "absent", "replicas": 1, "memory": "8G"},
                         {"name": "old", "state": "absent", "purge": True},
                         {"name": "new", "memory": "1G"}],
                        cap, {"b": ["old"], "a": ["x"]})
        self.assertEqual(got["gone"], [])  # nowhere: nothing to delete
        self.assertEqual(got["old"], ["b"])  # where it is, to be deleted there
        self.assertEqual(got["new"], ["a"])  # a's one port and memory were not taken by 'gone'

    def test_a_placed_ha_tenant_with_as_many_ha_hosts_as_members(self):
        # Three HA hosts, two replicas: all three, most free memory first; a second such tenant
        # fits only while each host has a port and disk left.
        cap = {"a": host(8, ha=True, ports=1), "b": host(9, ha=True), "c": host(7, ha=True, disk_gib=2)}
        got = placement([{"name": "h1", "replicas": 2, "size": "1G"}, {"name": "h2", "replicas": 2, "size": "1G"}], cap, {})
        self.assertEqual(got["h1"], ["b", "a", "c"])
        self.assertEqual(got["h2"], [])  # a has no port left



class Replacements(unittest.TestCase):
    # Inventory names (x.fleet) differ from the [ha] names (hx), as in a real fleet.
    def cap(self, **free):
        return {"%s.fleet" % h: host(f, ha="h" + h) for h, f in free.items()}

    def test_each_tenant_on_the_lost_host_moves_to_the_free_ha_host_with_most_memory(self):
        cap = self.cap(b=9, c=5, d=7)  # a is lost: it did not answer
        t1, t2 = ha_tenant("t1", "ha", "hb", memory=3 * G), ha_tenant("t2", "hb", "ha", memory=3 * G)
        existing = {"b.fleet": [t2, t1, {"name": "plain"}], "c.fleet": [], "d.fleet": []}
        got = replacements(existing, cap, "ha")
        # t1 -> d (7 free: b is a member), then t2 -> d again? d has 4 left, c 5: c.
        self.assertEqual(got, [{"name": "t1", "member": "ha", "run_on": "b.fleet", "with": "hd"},
                               {"name": "t2", "member": "ha", "run_on": "b.fleet", "with": "hc"}])

    def test_tenants_without_a_member_there_and_plain_tenants_are_left(self):
        cap = self.cap(a=9, b=9, c=9)
        existing = {"a.fleet": [ha_tenant("t", "ha", "hb"), {"name": "p"}], "b.fleet": [ha_tenant("t", "ha", "hb")]}
        self.assertEqual(replacements(existing, cap, "hc"), [])

    def test_no_room_anywhere_gives_with_none(self):
        cap = {"b.fleet": host(9, ha="hb"), "c.fleet": host(9, ha="hc", ports=0), "d.fleet": host(9, ha="hd", disk_gib=0),
               "e.fleet": host(9)}  # not an HA host
        got = replacements({"b.fleet": [ha_tenant("t", "ha", "hb")]}, cap, "ha")
        self.assertEqual(got, [{"name": "t", "member": "ha", "run_on": "b.fleet", "with": None}])

    def test_rebuild_keeps_the_member_on_its_host(self):
        cap = self.cap(a=9, b=9, c=9)
        got = replacements({"b.fleet": [ha_tenant("t", "ha", "hb")]}, cap, "ha", rebuild=True)
        self.assertEqual(got, [{"name": "t", "member": "ha", "run_on": "b.fleet", "with": None}])

    def test_a_tenant_whose_other_members_did_not_answer_has_nowhere_to_run(self):
        cap = self.cap(c=9)
        got = replacements({"c.fleet": [ha_tenant("t", "ha", "hb", "hc")]}, cap, "ha")
        self.assertEqual(got, [{"name": "t", "member": "ha", "run_on": "c.fleet", "with": None}])
        got = replacements({"x.fleet": [ha_tenant("u", "ha", "hb")]}, cap, "ha")
        self.assertEqual(got[0]["run_on"], None)


if __name__ == "__main__":
    unittest.main()

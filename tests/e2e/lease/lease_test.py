#!/usr/bin/python3
"""End-to-end lease test with the real etcdctl 3.4 and python etcd3 0.12.

Runs against any etcd v3 compatible server binary (the expectations are
etcd 3.4's; `--server /usr/bin/etcd` passes too):

    /usr/bin/python3 lease_test.py --server build/bin/etcdpp

One single-member cluster with a short election timeout (500 ms, so etcd's
minimum TTL is 1 s) is shared by all tests; each test uses its own keys.
Waits for expiry are bounded polls, never fixed sleeps that must be "long
enough"; the only sleeps pace keep-alives.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

import grpc  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402

SERVER = None
CLUSTER = None


def setUpModule():
    global CLUSTER
    CLUSTER = cluster.Cluster(SERVER, size=1, extra_flags=[
        "--heartbeat-interval", "100", "--election-timeout", "500"]).start()


def tearDownModule():
    if CLUSTER is not None:
        CLUSTER.close()


def ctl(*args, check=True):
    r = CLUSTER.etcdctl(*args)
    if check and r.returncode != 0:
        raise AssertionError(f"etcdctl {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    return r


def grant(ttl):
    out = ctl("lease", "grant", str(ttl)).stdout
    m = re.fullmatch(r"lease ([0-9a-f]+) granted with TTL\((\d+)s\)\n", out)
    if not m:
        raise AssertionError(f"unexpected grant output {out!r}")
    return m.group(1), int(m.group(2))


def get_value(key):
    """The key's value through etcdctl, or None."""
    out = ctl("get", key, "--print-value-only").stdout
    return out[:-1] if out else None


class EtcdctlLeaseTest(unittest.TestCase):
    def test_grant_put_timetolive_list_keepalive_revoke(self):
        lid, ttl = grant(60)
        self.assertEqual(ttl, 60)
        self.assertEqual(ctl("put", "ctl/a", "1", f"--lease={lid}").stdout, "OK\n")
        self.assertEqual(ctl("put", "ctl/b", "2", f"--lease={lid}").stdout, "OK\n")
        out = ctl("lease", "timetolive", lid, "--keys").stdout
        m = re.fullmatch(rf"lease {lid} granted with TTL\(60s\), remaining\((\d+)s\), "
                         r"attached keys\(\[ctl/a ctl/b\]\)\n", out)
        self.assertIsNotNone(m, out)
        self.assertTrue(55 <= int(m.group(1)) <= 60, out)
        listed = ctl("lease", "list").stdout.splitlines()
        self.assertRegex(listed[0], r"^found \d+ leases$")
        self.assertIn(lid, listed[1:])
        self.assertEqual(ctl("lease", "keep-alive", "--once", lid).stdout,
                         f"lease {lid} keepalived with TTL(60)\n")
        self.assertEqual(ctl("lease", "revoke", lid).stdout, f"lease {lid} revoked\n")
        self.assertIsNone(get_value("ctl/a"))
        self.assertIsNone(get_value("ctl/b"))
        self.assertEqual(ctl("lease", "timetolive", lid).stdout, f"lease {lid} already expired\n")
        self.assertNotIn(lid, ctl("lease", "list").stdout.splitlines()[1:])

    def test_json_output(self):
        grant_json = json.loads(ctl("lease", "grant", "90", "-w", "json").stdout)
        self.assertEqual(grant_json["TTL"], 90)
        lid = grant_json["ID"]
        self.assertGreater(lid, 0)
        self.assertGreater(grant_json["revision"], 0)
        ctl("put", "ctl/json", "v", "--lease=%x" % lid)
        ttl_json = json.loads(ctl("lease", "timetolive", "%x" % lid, "--keys", "-w", "json").stdout)
        self.assertEqual(ttl_json["id"], lid)
        self.assertEqual(ttl_json["granted-ttl"], 90)
        self.assertEqual(ttl_json["keys"], ["Y3RsL2pzb24="])  # base64 of ctl/json
        get_json = json.loads(ctl("get", "ctl/json", "-w", "json").stdout)
        self.assertEqual(get_json["kvs"][0]["lease"], lid)
        ctl("lease", "revoke", "%x" % lid)

    def test_errors(self):
        r = ctl("lease", "revoke", "123", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("etcdserver: requested lease not found", r.stderr)
        r = ctl("put", "ctl/err", "v", "--lease=123", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("etcdserver: requested lease not found", r.stderr)
        self.assertEqual(ctl("lease", "timetolive", "123").stdout, "lease 0000000000000123 already expired\n")

    def test_key_with_short_lease_disappears(self):
        lid, ttl = grant(1)
        self.assertEqual(ttl, 1)
        ctl("put", "ctl/short", "v", f"--lease={lid}")
        self.assertEqual(get_value("ctl/short"), "v")
        cluster.wait_until(lambda: get_value("ctl/short") is None, timeout=10, interval=0.2,
                           what="the leased key to expire")
        self.assertEqual(ctl("lease", "timetolive", lid).stdout, f"lease {lid} already expired\n")

    def test_keep_alive_keeps_the_key(self):
        lid, _ = grant(1)
        ctl("put", "ctl/kept", "v", f"--lease={lid}")
        proc = subprocess.Popen(
            [cluster.ETCDCTL, "--endpoints", CLUSTER.members[0].endpoint, "lease", "keep-alive",
             lid], env=cluster.etcdctl_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True)
        try:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                self.assertEqual(get_value("ctl/kept"), "v")
                time.sleep(0.25)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                out, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
        self.assertIn(f"lease {lid} keepalived with TTL(1)", out)
        cluster.wait_until(lambda: get_value("ctl/kept") is None, timeout=10, interval=0.2,
                           what="the key to expire once keep-alives stopped")


class Etcd3LeaseTest(unittest.TestCase):
    def setUp(self):
        self.c = CLUSTER.client()

    def test_lease_attributes_and_keys(self):
        lease = self.c.lease(30)
        self.c.put("py/a", "1", lease=lease)
        self.c.put("py/b", "2", lease=lease)
        self.assertEqual(lease.granted_ttl, 30)
        self.assertTrue(25 <= lease.remaining_ttl <= 30)
        self.assertEqual(sorted(lease.keys), [b"py/a", b"py/b"])
        _, meta = self.c.get("py/a")
        self.assertEqual(meta.lease_id, lease.id)
        lease.revoke()
        self.assertEqual(self.c.get("py/a"), (None, None))
        self.assertEqual(lease.remaining_ttl, -1)

    def test_refresh(self):
        lease = self.c.lease(20)
        responses = lease.refresh()
        self.assertEqual(len(responses), 1)
        self.assertEqual(responses[0].ID, lease.id)
        self.assertEqual(responses[0].TTL, 20)
        lease.revoke()
        # A revoked lease refreshes to TTL 0.
        self.assertEqual(lease.refresh()[0].TTL, 0)

    def test_refresh_keeps_key_and_expiry_removes_it(self):
        kept = self.c.lease(1)
        dropped = self.c.lease(1)
        self.c.put("py/kept", "v", lease=kept)
        self.c.put("py/dropped", "v", lease=dropped)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            kept.refresh()
            time.sleep(0.3)
        self.assertEqual(self.c.get("py/kept")[0], b"v")
        self.assertEqual(self.c.get("py/dropped"), (None, None))
        cluster.wait_until(lambda: self.c.get("py/kept") == (None, None), timeout=10,
                           interval=0.2, what="the unrefreshed key to expire")

    def test_grant_with_id_and_duplicate(self):
        lease = self.c.lease(60, lease_id=0x5eed)
        self.assertEqual(lease.id, 0x5eed)
        with self.assertRaises(grpc.RpcError) as e:
            self.c.leasestub.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=60, ID=0x5eed), 5)
        self.assertEqual(e.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(e.exception.details(), "etcdserver: lease already exists")
        lease.revoke()


def main():
    global SERVER
    parser = cluster.server_arg_parser(__doc__.splitlines()[0])
    args, _ = parser.parse_known_args()
    SERVER = os.path.abspath(args.server)
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    skipped = len(result.skipped)
    print(f"{result.testsRun - failed - skipped} passed, {failed} failed"
          + (f", {skipped} skipped" if skipped else ""))
    # A skipped case counts as a failure: CI must not pass on fewer checks.
    return 0 if result.wasSuccessful() and not skipped and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

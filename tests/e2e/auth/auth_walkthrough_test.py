#!/usr/bin/python3
"""Auth end to end: etcd's RBAC walkthrough, etcd 3.4 as the oracle.

The same transcript of etcdctl commands (root user, a role with a prefix
grant and a single-key read grant, a user limited to it, auth enable, every
allowed and denied get/put/del/txn/watch, wrong passwords, revocations,
auth disable) runs with the real etcdctl 3.4 against the reference etcd and
with the ctl under test (etcdctl by default, or --ctl etcdppctl) against the
server under test; stdout, stderr and exit codes must be equal, after
masking cluster_id, member_id and raft_term in json output and dropping the
client library's timestamped warning lines. Then python etcd3 logs in with a
user and password and meets the same grants.

    /usr/bin/python3 auth_walkthrough_test.py --server build/bin/etcdpp \\
        --reference /usr/bin/etcd [--ctl build/bin/etcdppctl]
"""

import base64
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

import grpc  # noqa: E402

SERVER = None
REFERENCE = None
CTL = None
KEEP = False

ROOT = ["--user", "root:rootpw"]
ALICE = ["--user", "alice:alicepw"]

# (ctl arguments, stdin). Each line is one etcdctl invocation.
TRANSCRIPT = [
    (["user", "add", "root:rootpw"], None),
    (["role", "add", "app"], None),
    (["role", "grant-permission", "app", "readwrite", "--prefix", "app/"], None),
    (["role", "grant-permission", "app", "read", "cfg"], None),
    (["role", "grant-permission", "app", "write", "w1", "w3"], None),
    (["role", "grant-permission", "app", "read", "--from-key", "zz"], None),
    (["role", "add", "app"], None),
    (["role", "get", "app"], None),
    (["role", "get", "app", "-w", "json"], None),
    (["user", "add", "alice", "--interactive=false"], "alicepw\n"),
    (["user", "add", "alice", "--new-user-password", "x"], None),
    (["user", "grant-role", "alice", "app"], None),
    (["user", "grant-role", "alice", "nosuchrole"], None),
    (["user", "grant-role", "nosuchuser", "app"], None),
    (["user", "get", "alice"], None),
    (["user", "get", "alice", "-w", "json"], None),
    (["user", "get", "alice", "--detail"], None),
    (["user", "list"], None),
    (["role", "list"], None),
    (["role", "list", "-w", "json"], None),
    (["put", "cfg", "v0"], None),
    (["put", "secret", "s0"], None),
    (["auth", "enable"], None),
    (["role", "list"], None),
    (["user", "get", "root"], None),
    # Without credentials once auth is on.
    (["get", "app/a"], None),
    (["put", "app/a", "1"], None),
    (["user", "list"], None),
    # Wrong passwords and unknown users.
    (["--user", "alice:wrong", "get", "app/a"], None),
    (["--user", "nobody:pw", "get", "app/a"], None),
    # Inside the grant.
    (ALICE + ["put", "app/a", "1"], None),
    (ALICE + ["put", "app/b", "2", "--prev-kv"], None),
    (ALICE + ["get", "app/a"], None),
    (ALICE + ["get", "app/", "--prefix"], None),
    (ALICE + ["get", "app/", "--prefix", "-w", "json"], None),
    (ALICE + ["get", "cfg"], None),
    (ALICE + ["put", "w2", "x"], None),
    (ALICE + ["get", "zzz"], None),
    (ALICE + ["del", "app/b"], None),
    (ALICE + ["txn"], "value(\"app/a\") = \"1\"\n\nput app/t yes\n\nget app/a\n\n"),
    # Outside the grant, or the wrong kind of access.
    (ALICE + ["get", "secret"], None),
    (ALICE + ["put", "secret", "x"], None),
    (ALICE + ["del", "secret"], None),
    (ALICE + ["put", "cfg", "x"], None),
    (ALICE + ["get", "w2"], None),
    (ALICE + ["put", "w3", "x"], None),
    (ALICE + ["get", "app/", "--from-key"], None),
    (ALICE + ["get", "", "--prefix"], None),
    (ALICE + ["del", "app/", "--prefix", "--prev-kv"], None),
    (ALICE + ["txn"], "value(\"secret\") = \"s0\"\n\nput app/t no\n\n\n"),
    (ALICE + ["txn"], "value(\"app/a\") = \"1\"\n\nput app/t yes\n\nput secret x\n\n"),
    (ALICE + ["txn"], "\nget secret\n\n\n"),
    (ALICE + ["compaction", "1"], None),
    # Administration needs the root role.
    (ALICE + ["user", "list"], None),
    (ALICE + ["role", "add", "evil"], None),
    (ALICE + ["user", "get", "alice"], None),
    (ALICE + ["user", "get", "root"], None),
    (ALICE + ["role", "get", "app"], None),
    (ALICE + ["role", "get", "root"], None),
    (ALICE + ["auth", "disable"], None),
    (ALICE + ["member", "list"], None),
    (ALICE + ["member", "add", "m9", "--peer-urls", "http://127.0.0.1:1"], None),
    (ALICE + ["member", "remove", "1"], None),
    (ALICE + ["endpoint", "hashkv"], None),
    (["endpoint", "hashkv"], None),
    # Root sees everything.
    (ROOT + ["get", "", "--prefix"], None),
    (ROOT + ["user", "list"], None),
    (ROOT + ["user", "delete", "root"], None),
    (ROOT + ["user", "revoke-role", "root", "root"], None),
    (ROOT + ["role", "delete", "root"], None),
    # Permission changes reach the user at once.
    (ROOT + ["role", "revoke-permission", "app", "cfg"], None),
    (ROOT + ["role", "revoke-permission", "app", "cfg"], None),
    (ROOT + ["role", "revoke-permission", "app", "app/", "--prefix"], None),
    (ROOT + ["role", "get", "app"], None),
    (ALICE + ["get", "cfg"], None),
    (ALICE + ["get", "app/a"], None),
    (ROOT + ["role", "grant-permission", "app", "readwrite", "app/", "app0"], None),
    (ALICE + ["get", "app/a"], None),
    (ROOT + ["user", "revoke-role", "alice", "app"], None),
    (ROOT + ["user", "revoke-role", "alice", "app"], None),
    (ALICE + ["get", "app/a"], None),
    (ROOT + ["user", "passwd", "alice", "--interactive=false"], "newpw\n"),
    (ALICE + ["get", "app/a"], None),
    (["--user", "alice:newpw", "get", "app/a"], None),
    (ROOT + ["user", "delete", "alice"], None),
    (["--user", "alice:newpw", "get", "app/a"], None),
    (ROOT + ["role", "delete", "app"], None),
    (ROOT + ["role", "list"], None),
    (ROOT + ["auth", "disable"], None),
    (["get", "app/a"], None),
    (["user", "list"], None),
    (["auth", "disable"], None),
]

WARN_LINE = re.compile(r'^\{"level":"warn".*\}$')
IDS = re.compile(r'"(cluster_id|member_id|raft_term)":\d+')
# etcdctl prints ids in hex without leading zeros (one id in 16 has fewer than 16
# digits); fewer than 8 digits would take a 1 in 2^32 id.
MEMBER_ID = re.compile(r'\b[0-9a-f]{8,16}\b')
PORT = re.compile(r'127\.0\.0\.1:\d+')


def normalize(text):
    """Drops the client library's timestamped warnings; masks what differs
    between any two clusters (ids, terms, ports)."""
    lines = [l for l in text.splitlines() if not WARN_LINE.match(l)]
    text = IDS.sub(lambda m: f'"{m.group(1)}":0', "\n".join(lines))
    return PORT.sub("127.0.0.1:PORT", MEMBER_ID.sub("MEMBERID", text))


def run_transcript(server, ctl):
    """The transcript's outcomes against a fresh single member of `server`."""
    outcomes = []
    with cluster.Cluster(server, size=1, keep=KEEP) as c:
        endpoint = c.members[0].endpoint
        for args, stdin in TRANSCRIPT:
            r = subprocess.run([ctl, "--endpoints", endpoint] + args, input=stdin,
                               env=cluster.etcdctl_env(), capture_output=True, text=True,
                               timeout=20)
            outcomes.append((args, r.returncode, normalize(r.stdout), normalize(r.stderr)))
    return outcomes


class WalkthroughTest(unittest.TestCase):
    def test_transcript_matches_etcd(self):
        expected = run_transcript(REFERENCE, cluster.ETCDCTL)
        actual = run_transcript(SERVER, CTL)
        mismatches = []
        for want, got in zip(expected, actual):
            if want != got:
                mismatches.append(f"{' '.join(want[0])}\n  etcd:  rc={want[1]} out={want[2]!r} "
                                  f"err={want[3]!r}\n  under test: rc={got[1]} out={got[2]!r} "
                                  f"err={got[3]!r}")
        self.assertEqual(mismatches, [], "\n".join(mismatches))
        # The oracle itself must have refused what the walkthrough says.
        denied = [w for w in expected if "permission denied" in w[3]]
        self.assertGreaterEqual(len(denied), 15)


def watch_outcome(c, ctl, user, key):
    """etcdctl watch of `key` from revision 1 as `user` (its put came
    before): an allowed watch replays the put at once (its three lines), a
    refused one ends by itself with the server's reason."""
    p = subprocess.Popen([ctl, "--endpoints", c.members[0].endpoint] + user +
                         ["watch", key, "--rev", "1"], env=cluster.etcdctl_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(l.rstrip("\n")) for l in p.stdout],
                              daemon=True)
    reader.start()
    try:
        seen = []
        deadline = time.monotonic() + 10
        while len(seen) < 3 and time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=0.2))
            except queue.Empty:
                if p.poll() is not None and not reader.is_alive():
                    return ("ended", p.returncode, seen, normalize(p.stderr.read()))
        return ("events", seen)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(5)


def walkthrough_setup(c):
    for args in (["user", "add", "root:rootpw"], ["role", "add", "app"],
                 ["role", "grant-permission", "app", "readwrite", "--prefix", "app/"],
                 ["user", "add", "alice:alicepw"], ["user", "grant-role", "alice", "app"],
                 ["auth", "enable"]):
        c.etcdctl(*args, check=True)


class WatchTest(unittest.TestCase):
    def outcomes(self, server, ctl):
        with cluster.Cluster(server, size=1, keep=KEEP) as c:
            walkthrough_setup(c)
            for key in ("app/w", "secret"):
                c.etcdctl(*ROOT, "put", key, "v", check=True)
            return [
                watch_outcome(c, ctl, ALICE, "app/w"),
                watch_outcome(c, ctl, ALICE, "secret"),
                watch_outcome(c, ctl, [], "app/w"),
                watch_outcome(c, ctl, ["--user", "alice:wrong"], "app/w"),
            ]

    def test_watch_inside_allowed_outside_refused_like_etcd(self):
        expected = self.outcomes(REFERENCE, cluster.ETCDCTL)
        actual = self.outcomes(SERVER, CTL)
        self.assertEqual(expected[0], ("events", ["PUT", "app/w", "v"]))
        self.assertEqual(actual, expected)


def login(etcd3, port, user, password):
    """python etcd3 logged in as `user`. It sends the token both as call
    credentials and as plain metadata; gRPC refuses call credentials on a
    channel without TLS (TLS is tested with the TLS work), so they are
    dropped and the token travels as metadata, as etcd's own clients send it."""
    client = etcd3.client(host="127.0.0.1", port=port, user=user, password=password, timeout=5)
    client.call_credentials = None
    return client


class PythonClientTest(unittest.TestCase):
    def check(self, server):
        import etcd3
        with cluster.Cluster(server, size=1, keep=KEEP) as c:
            walkthrough_setup(c)
            port = c.members[0].client_port
            alice = login(etcd3, port, "alice", "alicepw")
            alice.put("app/py", "1")
            self.assertEqual(alice.get("app/py")[0], b"1")
            self.assertEqual([v for v, _ in alice.get_prefix("app/")], [b"1"])
            ok, _ = alice.transaction(compare=[alice.transactions.value("app/py") == "1"],
                                      success=[alice.transactions.put("app/py", "2")],
                                      failure=[])
            self.assertTrue(ok)
            for action in (lambda: alice.put("secret", "x"), lambda: alice.get("secret"),
                           lambda: alice.delete("secret"),
                           lambda: alice.transaction(
                               compare=[alice.transactions.value("secret") == "1"],
                               success=[], failure=[])):
                with self.assertRaises(grpc.RpcError) as e:
                    action()
                self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
                self.assertEqual(e.exception.details(), "etcdserver: permission denied")
            alice.close()
            with self.assertRaises(Exception) as e:
                login(etcd3, port, "alice", "wrong")
            self.assertIn("authentication failed, invalid user ID or password", str(e.exception))
            anonymous = etcd3.client(host="127.0.0.1", port=port, timeout=5)
            with self.assertRaises(grpc.RpcError) as e:
                anonymous.get("app/py")
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(e.exception.details(), "etcdserver: user name is empty")
            anonymous.close()
            self.check_gateway(port)
            self.check_leases(etcd3, port)

    def check_leases(self, etcd3, port):
        """A lease with a key alice may not write cannot be revoked by her,
        nor attached to her own keys; it still expires (the member revokes
        it with the root role)."""
        alice = login(etcd3, port, "alice", "alicepw")
        root = login(etcd3, port, "root", "rootpw")
        lease = alice.lease(60)
        root.put("secret/leased", "v", lease=lease)
        for action in (lambda: alice.revoke_lease(lease.id),
                       lambda: alice.put("app/leased", "v", lease=lease)):
            with self.assertRaises(grpc.RpcError) as e:
                action()
            self.assertEqual(e.exception.details(), "etcdserver: permission denied")
        root.revoke_lease(lease.id)
        self.assertEqual(root.get("secret/leased"), (None, None))
        short = alice.lease(2)
        alice.put("app/short", "v", lease=short)
        root.put("secret/short", "v", lease=short)
        cluster.wait_until(lambda: root.get("secret/short") == (None, None), timeout=20,
                           interval=0.2, what="the expired lease's keys to go")
        self.assertEqual(root.get("app/short"), (None, None))
        alice.close()
        root.close()

    def check_gateway(self, port):
        """The JSON gateway: /v3/auth/authenticate, then the token in the
        Authorization header (what etcd's gateway forwards)."""
        def post(path, body, token=None):
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = token
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                         data=json.dumps(body).encode(), headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        def b64(text):
            return base64.b64encode(text.encode()).decode()

        status, body = post("/v3/auth/authenticate", {"name": "alice", "password": "wrong"})
        self.assertEqual((status, body.get("message")),
                         (400, "etcdserver: authentication failed, invalid user ID or password"))
        status, body = post("/v3/auth/authenticate", {"name": "alice", "password": "alicepw"})
        self.assertEqual(status, 200, body)
        token = body["token"]
        status, body = post("/v3/kv/range", {"key": b64("app/py")}, token)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["kvs"][0]["value"], b64("2"))
        status, body = post("/v3/kv/put", {"key": b64("secret"), "value": b64("x")}, token)
        self.assertEqual((status, body.get("message"), body.get("code")),
                         (403, "etcdserver: permission denied", 7))
        status, body = post("/v3/kv/range", {"key": b64("app/py")}, "not-a-token")
        self.assertEqual((status, body.get("message")), (401, "etcdserver: invalid auth token"))

    def test_reference(self):
        self.check(REFERENCE)

    def test_server(self):
        self.check(SERVER)


def main():
    global SERVER, REFERENCE, CTL, KEEP
    parser = cluster.server_arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="etcd 3.4 binary (the oracle)")
    parser.add_argument("--ctl", default=None, help="ctl under test (default: etcdctl)")
    args, _ = parser.parse_known_args()
    SERVER = os.path.abspath(args.server)
    REFERENCE = args.reference
    CTL = os.path.abspath(args.ctl) if args.ctl else cluster.ETCDCTL
    KEEP = args.keep
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    skipped = len(result.skipped)
    print(f"{result.testsRun - failed - skipped} passed, {failed} failed"
          + (f", {skipped} skipped" if skipped else ""))
    return 0 if result.wasSuccessful() and not skipped and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

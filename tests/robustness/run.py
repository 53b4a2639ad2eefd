#!/usr/bin/python3
"""Robustness harness: a cluster under faults and concurrent traffic, then checks.

  tests/robustness/run.py --profile short --target etcdpp --server build/bin/etcdpp --seed 1
  tests/robustness/run.py --profile long --target etcd --duration 600
  tests/robustness/run.py --profile secure --target etcdpp --duration 15 --seed 1

One round: start a cluster (3 or 5 members on loopback, a fault proxy on every
peer link, see faultproxy.py), run clients on every member (get, prefix range,
put, delete, txn CAS on mod_revision; put with lease and lease revoke,
short leases left to expire, leases kept alive, and watches opened from past
revisions, when the target has Lease and Watch), compact every few hundred
ms, and inject faults while traffic runs (SIGKILL and restart of a member,
SIGSTOP/SIGCONT, partition of the leader, one-way blackhole, dropped or
delayed links, leader transfer, removal and re-add of a member with a wiped
data dir). Then heal, kill -9 every member and restart them all, read
everything back, and check:
  * the history is linearizable (checker.py; a failure writes the shrunk
    history and a readable report into the output directory);
  * every watch: revisions increase, no gaps (every revision of the cluster
    is a write under the test prefix, so a watch from S must report S, S+1,
    ... without holes), no duplicates, and its events are those of the write
    the checker put at that revision; every watch reaches the final revision;
  * no acknowledged write lost (the final reads are part of the history);
  * all members' HashKV equal at the same revision;
  * no key of a revoked or expired lease remains (expired: every member
    reports it gone after the restart); kept-alive leases never expired and
    their keys are there.
Exit status: 0 all checks passed, 1 a check failed, 2 the harness could not
decide (cluster did not come up, checker ran out of time).
The secure profile runs the same round over TLS on every client and peer
link (client certificates required on both) with auth enabled: the workload
is a user granted only the test prefix, authenticated with a JWT.
Run with /usr/bin/python3 (Debian's python3-etcd3 and grpc).
"""

import argparse
import collections
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e", "lib"))
import cluster as e2e  # noqa: E402  (sets GRPC_ENABLE_FORK_SUPPORT before grpc loads)
import grpc  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402

import checker  # noqa: E402
import read_rounds  # noqa: E402
from checker import Op  # noqa: E402

PREFIX = "/rob/"
REQUEST_TIMEOUT = 2.0

PROFILES = {
    # One 3-member round; what CI runs on every change.
    "short": {"sizes": [3], "round_seconds": 30},
    # Rounds alternating 3 and 5 members, each with its own seed, until
    # --duration is used up.
    "long": {"sizes": [3, 5], "round_seconds": 60},
    # One 3-member round with TLS on every client and peer link and auth on:
    # the workload runs as a user granted only PREFIX (with a JWT, which
    # every member verifies by itself and which outlives restarts); the
    # harness's admin calls (HashKV, member changes, leader moves) go as
    # root, named by its client certificate.
    "secure": {"sizes": [3], "round_seconds": 20, "secure": True},
}

# Set by run_round when the profile is secure: a Security, else None.
SECURITY = None


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def prefix_end(p):
    b = bytearray(p.encode())
    b[-1] += 1
    return bytes(b)


# ---- TLS and auth (the secure profile) ------------------------------------------

WORKLOAD_USER = "rob"


class Security:
    """Certificates (made with openssl), the JWT key pair, and the workload's token."""

    def __init__(self, d):
        self.dir = d
        self.token = None

        def run(cmd):
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError(f"{cmd[0]} failed: {r.stderr}")
        if shutil.which("openssl") is None:
            raise RuntimeError("the openssl command is missing: apt-get install openssl")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt", "-days", "2",
             "-subj", "/CN=robustness-ca"])
        # server: client and peer ports; root: the harness's admin calls;
        # workload: any name that is no user (its token names the user).
        for name in ("server", "root", "workload"):
            run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr", "-subj", f"/CN={name}"])
            with open(f"{d}/{name}.ext", "w") as f:
                f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
            run(["openssl", "x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.crt",
                 "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-out", f"{d}/{name}.crt",
                 "-days", "2", "-extfile", f"{d}/{name}.ext"])
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", f"{d}/jwt.key"])
        run(["openssl", "pkey", "-in", f"{d}/jwt.key", "-pubout", "-out", f"{d}/jwt.pub"])
        self.ca = self._read("ca.crt")

    def _read(self, name):
        with open(os.path.join(self.dir, name), "rb") as f:
            return f.read()

    def server_flags(self, target):
        d = self.dir
        flags = ["--cert-file", f"{d}/server.crt", "--key-file", f"{d}/server.key",
                 "--trusted-ca-file", f"{d}/ca.crt", "--client-cert-auth",
                 "--peer-cert-file", f"{d}/server.crt", "--peer-key-file", f"{d}/server.key",
                 "--peer-trusted-ca-file", f"{d}/ca.crt", "--peer-client-cert-auth",
                 "--auth-token",
                 f"jwt,pub-key={d}/jwt.pub,priv-key={d}/jwt.key,sign-method=ES256,ttl=30m"]
        if target == "etcdpp":
            flags += ["--bcrypt-cost", "4"]
        return flags

    def channel(self, member, admin=False):
        who = "root" if admin else "workload"
        creds = grpc.ssl_channel_credentials(root_certificates=self.ca,
                                             private_key=self._read(f"{who}.key"),
                                             certificate_chain=self._read(f"{who}.crt"))
        channel = grpc.secure_channel(member.endpoint, creds)
        if admin or self.token is None:
            return channel
        return grpc.intercept_channel(channel, TokenInterceptor(self.token))

    def enable_auth(self, cl):
        """Root, a role granted PREFIX, the workload user in it; auth on; its token."""
        ch = self.channel(cl.members[0], admin=True)
        try:
            auth = etcdrpc.AuthStub(ch)
            auth.UserAdd(etcdrpc.AuthUserAddRequest(name="root", password="rootpw"), timeout=10)
            auth.UserGrantRole(etcdrpc.AuthUserGrantRoleRequest(user="root", role="root"),
                               timeout=10)
            auth.RoleAdd(etcdrpc.AuthRoleAddRequest(name="workload"), timeout=10)
            auth.RoleGrantPermission(etcdrpc.AuthRoleGrantPermissionRequest(
                name="workload", perm=etcdrpc.auth_pb2.Permission(
                    permType=etcdrpc.auth_pb2.Permission.READWRITE, key=PREFIX.encode(),
                    range_end=prefix_end(PREFIX))), timeout=10)
            auth.UserAdd(etcdrpc.AuthUserAddRequest(name=WORKLOAD_USER, password="robpw"),
                         timeout=10)
            auth.UserGrantRole(etcdrpc.AuthUserGrantRoleRequest(user=WORKLOAD_USER,
                                                                role="workload"), timeout=10)
            auth.AuthEnable(etcdrpc.AuthEnableRequest(), timeout=10)
            self.token = auth.Authenticate(etcdrpc.AuthenticateRequest(
                name=WORKLOAD_USER, password="robpw"), timeout=10).token
        finally:
            ch.close()

    def check_confined(self, cl):
        """The workload's credentials reach PREFIX only (a sanity check of the setup)."""
        ch = self.channel(cl.members[0])
        try:
            etcdrpc.KVStub(ch).Range(etcdrpc.RangeRequest(key=b"/outside"), timeout=10)
        except grpc.RpcError as e:
            if "permission denied" in (e.details() or ""):
                return
            raise
        finally:
            ch.close()
        raise RuntimeError("the workload user read a key outside its grant")


class TokenInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                       grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the auth token to every call, as etcd's clients do."""

    def __init__(self, token):
        self.token = token

    def _with_token(self, details):
        metadata = list(details.metadata or []) + [("token", self.token)]
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else \
            _CallDetails(details.method, details.timeout, metadata, details.credentials,
                         details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)


class _CallDetails(collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                         "compression")), grpc.ClientCallDetails):
    pass


def advertised_peer_url(member):
    """The peer URL the member advertises (https in the secure profile)."""
    url = member.peer_url
    return url.replace("http://", "https://") if SECURITY is not None else url


def open_channel(member, admin=False):
    """A channel to member's client port: plain, or TLS (and a token) in the secure profile."""
    if SECURITY is None:
        return grpc.insecure_channel(member.endpoint)
    return SECURITY.channel(member, admin)


# ---- cluster with a fault proxy on every peer link -----------------------------

class FaultProxy:
    def __init__(self, specs):
        self.proc = subprocess.Popen(
            e2e.die_with_parent([sys.executable, os.path.join(HERE, "faultproxy.py")] + specs),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lock = threading.Lock()
        first = json.loads(self.proc.stdout.readline())
        if not first.get("ok"):
            raise RuntimeError(f"fault proxy failed: {first}")

    def cmd(self, **c):
        with self.lock:
            self.proc.stdin.write(json.dumps(c) + "\n")
            self.proc.stdin.flush()
            r = json.loads(self.proc.stdout.readline())
        if not r.get("ok"):
            raise RuntimeError(f"fault proxy: {c}: {r}")
        return r

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()


class ProxiedCluster(e2e.Cluster):
    """Members advertise the proxy's port (member.peer_port) and listen behind it."""

    def __init__(self, server, size, base_dir, extra_flags=(), log_level="warn"):
        super().__init__(server, size=size, base_dir=base_dir, extra_flags=extra_flags,
                         start_timeout=60.0, keep=True, log_level=log_level)
        for m in self.members:
            m.listen_peer_port = e2e.free_port()
        self._spawn_requests = queue.Queue()
        self._spawn_thread = threading.Thread(target=self._spawner, daemon=True)
        self._spawn_thread.start()
        self.proxy = FaultProxy([f"{m.name}:{m.peer_port}:{m.listen_peer_port}"
                                 for m in self.members])
        # Members re-added after a removal: they start empty and join the
        # running cluster (the flag is ignored once the data dir exists).
        self.joining = set()

    def command(self, i, state="new"):
        cmd = super().command(i, "existing" if i in self.joining else state)
        j = cmd.index("--listen-peer-urls")
        cmd[j + 1] = f"http://127.0.0.1:{self.members[i].listen_peer_port}"
        if SECURITY is not None:
            cmd = [a.replace("http://", "https://") for a in cmd]
        return cmd

    def _probe(self, m):
        if SECURITY is None:
            return super()._probe(m)
        ch = SECURITY.channel(m, admin=True)
        try:
            etcdrpc.KVStub(ch).Range(etcdrpc.RangeRequest(key=b"__ready_probe__"), timeout=1)
            return True
        finally:
            ch.close()

    def spawn(self, i):
        # PR_SET_PDEATHSIG (cluster.py) kills a server when the THREAD that
        # forked it ends, so every spawn runs on one thread that lives as long
        # as the cluster (the fault injector's thread ends before the checks).
        done = queue.Queue()
        self._spawn_requests.put((i, done))
        ok, value = done.get()
        if not ok:
            raise value
        self.tell_pids()
        return value

    def _spawner(self):
        while True:
            req = self._spawn_requests.get()
            if req is None:
                return
            i, done = req
            try:
                done.put((True, e2e.Cluster.spawn(self, i)))
            except Exception as e:
                done.put((False, e))

    def tell_pids(self):
        self.proxy.cmd(cmd="pids", pids={m.name: m.pid for m in self.members if m.running()})

    def close(self):
        super().close()
        self._spawn_requests.put(None)
        self.proxy.close()


# ---- history -------------------------------------------------------------------

class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []
        self.next_id = 0
        self.failed_definitely = 0

    def add(self, op):
        with self.lock:
            op.id = self.next_id
            self.next_id += 1
            self.ops.append(op)


def kvs_of(resp_kvs):
    return [(kv.key.decode(), kv.value.decode(), kv.create_revision, kv.mod_revision,
             kv.version, kv.lease) for kv in resp_kvs]


def not_sent(e):
    """True when the call provably never reached a server, or changed nothing
    (a put on a lease that expired is refused: etcd checks the lease when it
    applies the put, which then makes no revision)."""
    d = (e.details() or "").lower()
    if e.code() == grpc.StatusCode.NOT_FOUND:
        return "requested lease not found" in d
    if e.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    return "failed to connect" in d or "connection refused" in d


class Client:
    """One client thread's connection to one member."""

    def __init__(self, member, admin=False):
        self.member = member
        self.channel = open_channel(member, admin)
        self.kv = etcdrpc.KVStub(self.channel)
        self.lease = etcdrpc.LeaseStub(self.channel)
        self.maint = etcdrpc.MaintenanceStub(self.channel)
        self.cluster = etcdrpc.ClusterStub(self.channel)

    def close(self):
        self.channel.close()


def run_op(client, history, op, call):
    """Runs call() (an RPC returning the response) and records op with its outcome."""
    op.invoke = time.monotonic()
    try:
        resp = call()
    except grpc.RpcError as e:
        if op.kind in checker.READS:
            return None  # a read without an answer tells nothing
        if not_sent(e):
            history.failed_definitely += 1
            return None
        op.error = f"{e.code().name}: {e.details()}"
        history.add(op)
        return None
    op.complete = time.monotonic()
    op.rev = resp.header.revision
    history.add(op)
    return resp


def kv_client(cid, cl, member_index, history, stop, rng, keys):
    c = Client(cl.members[member_index])
    last_mod = {}
    n = 0
    try:
        while not stop.is_set():
            n += 1
            key = rng.choice(keys)
            r = rng.random()
            value = f"c{cid}-{n}"
            if r < 0.15:
                op = Op(checker.GET, client=cid, key=key)
                resp = run_op(c, history, op, lambda: c.kv.Range(
                    etcdrpc.RangeRequest(key=key.encode()), REQUEST_TIMEOUT))
                if resp is not None:
                    op.kvs = kvs_of(resp.kvs)
                    last_mod[key] = resp.kvs[0].mod_revision if resp.kvs else 0
            elif r < 0.25:
                op = Op(checker.RANGE, client=cid, key=PREFIX)
                resp = run_op(c, history, op, lambda: c.kv.Range(etcdrpc.RangeRequest(
                    key=PREFIX.encode(), range_end=prefix_end(PREFIX)), REQUEST_TIMEOUT))
                if resp is not None:
                    op.kvs = kvs_of(resp.kvs)
            elif r < 0.6:
                op = Op(checker.PUT, client=cid, key=key, value=value)
                resp = run_op(c, history, op, lambda: c.kv.Put(
                    etcdrpc.PutRequest(key=key.encode(), value=value.encode()), REQUEST_TIMEOUT))
                if resp is not None:
                    last_mod[key] = resp.header.revision
            elif r < 0.7:
                op = Op(checker.DELETE, client=cid, key=key)
                resp = run_op(c, history, op, lambda: c.kv.DeleteRange(
                    etcdrpc.DeleteRangeRequest(key=key.encode()), REQUEST_TIMEOUT))
                if resp is not None:
                    op.deleted = resp.deleted
            else:
                expect = last_mod.get(key, 0)
                op = Op(checker.CAS, client=cid, key=key, expect_mod=expect, value=value)
                req = etcdrpc.TxnRequest(
                    compare=[etcdrpc.Compare(result=etcdrpc.Compare.EQUAL,
                                             target=etcdrpc.Compare.MOD,
                                             key=key.encode(), mod_revision=expect)],
                    success=[etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(
                        key=key.encode(), value=value.encode()))],
                    failure=[etcdrpc.RequestOp(request_range=etcdrpc.RangeRequest(
                        key=key.encode()))])
                resp = run_op(c, history, op, lambda: c.kv.Txn(req, REQUEST_TIMEOUT))
                if resp is not None:
                    op.succeeded = resp.succeeded
                    if resp.succeeded:
                        last_mod[key] = resp.header.revision
                    else:
                        kvs = resp.responses[0].response_range.kvs
                        op.kvs = kvs_of(kvs)
                        last_mod[key] = kvs[0].mod_revision if kvs else 0
            if op.complete is None:
                time.sleep(0.05)  # the member is down or cut off: do not spin
    finally:
        c.close()


def lease_client(cid, cl, history, stop, rng, stats):
    n = 0
    member_index = 0
    while not stop.is_set():
        member_index = (member_index + 1) % len(cl.members)
        c = Client(cl.members[member_index])
        try:
            try:
                g = c.lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=600), REQUEST_TIMEOUT)
            except grpc.RpcError:
                time.sleep(0.1)
                continue
            stats["granted"] += 1
            lid = g.ID
            for j in range(rng.randint(1, 3)):
                n += 1
                key = f"{PREFIX}lease/{cid}-{n}"
                value = f"c{cid}-L{n}"
                op = Op(checker.PUT, client=cid, key=key, value=value, lease=lid)
                run_op(c, history, op, lambda: c.kv.Put(etcdrpc.PutRequest(
                    key=key.encode(), value=value.encode(), lease=lid), REQUEST_TIMEOUT))
            time.sleep(rng.uniform(0.05, 0.4))
            op = Op(checker.REVOKE, client=cid, lease=lid)
            if run_op(c, history, op, lambda: c.lease.LeaseRevoke(
                    etcdrpc.LeaseRevokeRequest(ID=lid), REQUEST_TIMEOUT)) is not None:
                stats["revoked"].add(lid)
        finally:
            c.close()


EXPIRING_TTL = 3   # etcd's minimum TTL here is 2 s (3/2 election timeout)
KEPT_TTL = 15


def expiring_lease_client(cid, cl, history, stop, rng, expiring):
    """Grants short leases, puts keys with them, and lets them expire.

    The expiry is a revoke nobody asked for, recorded as one of unknown
    outcome invoked when the grant was (checker.Op): it may take effect at
    any later point. Once every member reports the lease gone (end of the
    round) it gets that moment as its completion."""
    n = 0
    member_index = cid
    while not stop.is_set():
        member_index = (member_index + 1) % len(cl.members)
        c = Client(cl.members[member_index])
        try:
            t = time.monotonic()
            try:
                g = c.lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=EXPIRING_TTL), REQUEST_TIMEOUT)
            except grpc.RpcError:
                time.sleep(0.1)
                continue
            exp = Op(checker.REVOKE, client=cid, lease=g.ID, error="lease expiry")
            exp.invoke = t
            history.add(exp)
            expiring.append({"id": g.ID, "ttl": g.TTL, "op": exp})
            for _ in range(rng.randint(1, 2)):
                n += 1
                key = f"{PREFIX}exp/{cid}-{n}"
                value = f"c{cid}-E{n}"
                op = Op(checker.PUT, client=cid, key=key, value=value, lease=g.ID)
                run_op(c, history, op, lambda: c.kv.Put(etcdrpc.PutRequest(
                    key=key.encode(), value=value.encode(), lease=g.ID), REQUEST_TIMEOUT))
        finally:
            c.close()
        stop.wait(rng.uniform(0.3, 1.0))


def lease_keeper(cid, cl, history, stop, rng, kept, problems):
    """Holds two leases of KEPT_TTL for the whole round, keys attached, and
    keeps them alive (a keep-alive every second on a LeaseKeepAlive stream,
    moving to another member when one does not answer). A keep-alive answered
    with TTL 0 means the lease expired: a problem."""
    member_index = rng.randrange(len(cl.members))
    c = None
    n = 0

    def rotate():
        nonlocal c, member_index
        if c is not None:
            c.close()
        member_index = (member_index + 1) % len(cl.members)
        c = Client(cl.members[member_index])
    rotate()
    try:
        while len(kept) < 2 and not stop.is_set():
            try:
                g = c.lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=KEPT_TTL), REQUEST_TIMEOUT)
                kept[g.ID] = {"ttl": g.TTL, "keys": [], "renewals": 0}
            except grpc.RpcError:
                rotate()
                stop.wait(0.1)
        for lid, info in kept.items():
            # Until one put is acknowledged (each try writes a new value).
            for _ in range(20):
                if stop.is_set():
                    break
                n += 1
                key, value = f"{PREFIX}kept/{cid}-{n}", f"c{cid}-K{n}"
                op = Op(checker.PUT, client=cid, key=key, value=value, lease=lid)
                if run_op(c, history, op, lambda: c.kv.Put(etcdrpc.PutRequest(
                        key=key.encode(), value=value.encode(), lease=lid), REQUEST_TIMEOUT)):
                    info["keys"].append((key, value))
                    break
                rotate()
        while not stop.wait(1.0):
            for lid in kept:
                try:
                    call = c.lease.LeaseKeepAlive(iter([etcdrpc.LeaseKeepAliveRequest(ID=lid)]),
                                                  REQUEST_TIMEOUT)
                    resp = next(iter(call))
                    call.cancel()
                    kept[lid]["renewals"] += 1
                    if resp.TTL <= 0:
                        problems.append(f"kept-alive lease {lid:x} expired (keep-alive answered"
                                        f" TTL {resp.TTL} on {cl.members[member_index].name})")
                        return
                except (grpc.RpcError, StopIteration):
                    rotate()
    finally:
        if c is not None:
            c.close()


def lease_ttl(m, lid, timeout=2.0):
    c = Client(m)
    try:
        return c.lease.LeaseTimeToLive(etcdrpc.LeaseTimeToLiveRequest(ID=lid), timeout).TTL
    finally:
        c.close()


def wait_expired(cl, expiring, timeout):
    """Completes the expiry ops of leases every member reports gone (TTL -1).

    Every member served a linearizable read after the restart, so each has
    applied the grants; a -1 then means the revoke was applied. Returns the
    leases still alive at the deadline: {id: ttl seen}."""
    pending = {e["id"]: e for e in expiring}
    alive = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for lid in list(pending):
            ttls = []
            for m in cl.members:
                try:
                    ttls.append(lease_ttl(m, lid))
                except grpc.RpcError:
                    ttls.append(None)
            if all(t == -1 for t in ttls):
                pending.pop(lid)["op"].complete = time.monotonic()
                alive.pop(lid, None)
            else:
                alive[lid] = ttls
        if pending:
            time.sleep(0.3)
    return {lid: alive.get(lid) for lid in pending}


class Watcher:
    """Watches the whole test prefix from past revisions on one member.

    Each stream is a segment: (start revision, events in arrival order, how it
    ended). A broken stream is reopened from the revision after the last one
    seen; a compacted start is reopened near the current revision."""

    def __init__(self, cl, member_index, stop, rng, first_rev):
        self.cl, self.member_index, self.stop, self.rng = cl, member_index, stop, rng
        self.segments = []
        self.first_rev = first_rev
        self.last_rev = first_rev - 1
        self.current_call = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        channel = None
        while not self.stop.is_set():
            member = self.cl.members[self.member_index]
            if channel is None:
                channel = open_channel(member)
            stub = etcdrpc.WatchStub(channel)
            # From the past: resume after what we saw, or go back further.
            start = self.last_rev + 1
            if self.segments and self.rng.random() < 0.3:
                start = max(self.first_rev, start - self.rng.randint(1, 50))
            seg = {"start": start, "events": [], "end": None}
            self.segments.append(seg)
            reqs = queue.Queue()
            reqs.put(etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
                key=PREFIX.encode(), range_end=prefix_end(PREFIX), start_revision=start)))

            def gen():
                while True:
                    r = reqs.get()
                    if r is None:
                        return
                    yield r
            try:
                call = stub.Watch(gen())
                self.current_call = call
                for resp in call:
                    if resp.compact_revision:
                        seg["end"] = f"compacted at {resp.compact_revision}"
                        self.last_rev = max(self.last_rev, resp.compact_revision - 1)
                        break
                    if resp.canceled:
                        seg["end"] = f"canceled: {resp.cancel_reason}"
                        break
                    for ev in resp.events:
                        kind = "delete" if ev.type == 1 else "put"
                        seg["events"].append((ev.kv.mod_revision, kind, ev.kv.key.decode(),
                                              ev.kv.value.decode() if kind == "put" else None))
                        self.last_rev = max(self.last_rev, ev.kv.mod_revision)
                    if self.stop.is_set():
                        break
            except grpc.RpcError as e:
                seg["end"] = f"{e.code().name}"
            except Exception as e:  # the harness's own bug: make it visible
                seg["end"] = f"harness error {e!r}"
            finally:
                reqs.put(None)
                self.current_call = None
            if seg["end"] is None:
                seg["end"] = "stopped"
            if not self.stop.is_set():
                time.sleep(0.1)
            if seg["end"] not in ("stopped",):
                channel.close()
                channel = None
        if channel is not None:
            channel.close()

    def cancel(self):
        c = self.current_call
        if c is not None:
            c.cancel()


def compactor(cl, stop, rng, stats):
    last = 0
    while not stop.wait(rng.uniform(0.2, 0.5)):
        m = rng.choice([m for m in cl.members])
        # As root in the secure profile: the workload user may read only the
        # harness prefix, so its range of "/" here was refused and no
        # compaction ever ran there.
        c = Client(m, admin=True)
        try:
            r = c.kv.Range(etcdrpc.RangeRequest(key=b"/", limit=1), 1.0)
            target = r.header.revision - 100
            if target > last:
                c.kv.Compact(etcdrpc.CompactionRequest(revision=target), 1.0)
                last = target
                stats["compactions"] += 1
        except grpc.RpcError:
            pass
        finally:
            c.close()


# ---- faults --------------------------------------------------------------------

def member_status(cl, i, timeout=1.0):
    c = Client(cl.members[i], admin=True)
    try:
        return c.maint.Status(etcdrpc.StatusRequest(), timeout)
    finally:
        c.close()


def find_leader(cl):
    ids = {}
    leader = None
    for i, m in enumerate(cl.members):
        if not m.running():
            continue
        try:
            s = member_status(cl, i)
        except grpc.RpcError:
            continue
        ids[s.header.member_id] = i
        if s.leader:
            leader = s.leader
    return ids.get(leader)


FAULTS = ["kill", "pause", "partition_leader", "blackhole_link", "drop_link", "delay_links",
          "leader_transfer", "member_replace"]


def member_ids(cl):
    """{member index: ID} of the running members that answer Status (IDs
    change when a member is replaced: never cache them)."""
    ids = {}
    for i, m in enumerate(cl.members):
        if m.running():
            try:
                ids[i] = member_status(cl, i).header.member_id
            except grpc.RpcError:
                pass
    return ids


def leader_transfer(cl, rng, rec):
    """Maintenance.MoveLeader on the leader, to a random other member."""
    deadline = time.monotonic() + 10
    while True:
        li = find_leader(cl)
        ids = member_ids(cl)
        others = [j for j in ids if j != li]
        if li is not None and others:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("no leader to move")
        time.sleep(0.2)
    j = rng.choice(others)
    rec["member"], rec["to"] = cl.members[li].name, cl.members[j].name
    c = Client(cl.members[li], admin=True)
    try:
        c.maint.MoveLeader(etcdrpc.MoveLeaderRequest(targetID=ids[j]), 5)
        rec["result"] = "moved"
    except grpc.RpcError as e:
        # The leader may have changed meanwhile ("not leader"), or the
        # transfer timed out: a fault all the same, the traffic ran through it.
        rec["result"] = f"{e.code().name}: {e.details()}"
    finally:
        c.close()


def _member_call(cl, avoid, fn, deadline, what):
    """fn(Client) on any running member but `avoid`, until it answers or the
    deadline passes. etcd refuses a membership change while a member was
    unreachable in the last 5 s (strict reconfiguration check): retried."""
    last = None
    while time.monotonic() < deadline:
        for j, m in enumerate(cl.members):
            if j == avoid or not m.running():
                continue
            c = Client(m, admin=True)
            try:
                return fn(c)
            except grpc.RpcError as e:
                last = f"{e.code().name}: {e.details()}"
            finally:
                c.close()
        time.sleep(0.3)
    raise RuntimeError(f"{what}: no member did it before the deadline (last: {last})")


def member_replace(cl, i, rec):
    """Cluster.MemberRemove of member i (asked to another member), wait until
    it exits (killed if it does not), wipe its data dir, Cluster.MemberAdd of
    the same peer URL (its proxy port), start it empty with
    --initial-cluster-state existing, wait until it serves."""
    m = cl.members[i]
    rec["member"] = m.name
    deadline = time.monotonic() + 30

    def find_id(c):
        for mem in c.cluster.MemberList(etcdrpc.MemberListRequest(), REQUEST_TIMEOUT).members:
            if advertised_peer_url(m) in mem.peerURLs:
                return mem.ID
        return None

    old_id = _member_call(cl, i, find_id, deadline, "MemberList")
    if old_id is None:
        raise RuntimeError(f"{m.name} ({advertised_peer_url(m)}) not in the member list")
    rec["old_id"] = f"{old_id:x}"

    def remove(c):
        try:
            c.cluster.MemberRemove(etcdrpc.MemberRemoveRequest(ID=old_id), 5)
        except grpc.RpcError as e:
            # An earlier try that timed out may have done it.
            if find_id(c) != old_id:
                return True
            raise e
        return True
    t0 = time.monotonic()
    _member_call(cl, i, remove, deadline, "MemberRemove")
    t = time.monotonic()
    rec["removed_after"] = round(t - t0, 2)
    try:
        m.proc.wait(timeout=15)
        rec["exited_after"] = round(time.monotonic() - t, 2)
        rec["exit_code"] = m.proc.returncode
    except subprocess.TimeoutExpired:
        rec["killed"] = "did not exit 15 s after its removal"
    cl.kill(i)
    shutil.rmtree(m.data_dir, ignore_errors=True)
    deadline = time.monotonic() + 60

    def add(c):
        try:
            return c.cluster.MemberAdd(etcdrpc.MemberAddRequest(peerURLs=[advertised_peer_url(m)]), 5).member.ID
        except grpc.RpcError as e:
            # An earlier try that timed out may have added it. A member that
            # has not applied the removal yet still lists the old id under
            # the same URL (and refuses the add: the URL exists): that is
            # not the new member, so try again.
            new = find_id(c)
            if new is not None and new != old_id:
                return new
            raise e
    new_id = _member_call(cl, i, add, deadline, "MemberAdd")
    rec["new_id"] = f"{new_id:x}"
    cl.joining.add(i)
    try:
        cl.spawn(i)
        cl.wait_ready(i, timeout=60)
    finally:
        cl.joining.discard(i)
    rec["replaced_after"] = round(time.monotonic() - t0, 2)


def fault_injector(cl, stop, rng, faults, t0):
    n = len(cl.members)
    names = [m.name for m in cl.members]
    # Every kind once (in a random order, even if that takes longer than the
    # round), then at random until stopped.
    plan = list(FAULTS)
    rng.shuffle(plan)
    while True:
        pause = rng.uniform(0.5, 2.0)
        if plan:
            time.sleep(pause)
        elif stop.wait(pause):
            break
        kind = plan.pop(0) if plan else rng.choice(FAULTS)
        dur = rng.uniform(1.0, 3.0)
        rec = {"t": round(time.monotonic() - t0, 2), "fault": kind, "seconds": round(dur, 2)}
        try:
            if kind == "kill":
                i = rng.randrange(n)
                rec["member"] = names[i]
                cl.kill(i)
                time.sleep(dur)
                cl.spawn(i)
                cl.wait_ready(i, timeout=30)
            elif kind == "pause":
                i = rng.randrange(n)
                rec["member"] = names[i]
                os.kill(cl.members[i].pid, signal.SIGSTOP)
                time.sleep(dur)
                os.kill(cl.members[i].pid, signal.SIGCONT)
            elif kind == "partition_leader":
                li = find_leader(cl)
                li = rng.randrange(n) if li is None else li
                rec["member"] = names[li]
                for j in range(n):
                    if j != li:
                        cl.proxy.cmd(cmd="set", src=names[li], dst=names[j], mode="blackhole")
                        cl.proxy.cmd(cmd="set", src=names[j], dst=names[li], mode="blackhole")
                time.sleep(dur)
                cl.proxy.cmd(cmd="heal")
            elif kind == "blackhole_link":
                a, b = rng.sample(range(n), 2)
                rec["link"] = f"{names[a]}->{names[b]}"
                cl.proxy.cmd(cmd="set", src=names[a], dst=names[b], mode="blackhole")
                time.sleep(dur)
                cl.proxy.cmd(cmd="heal")
            elif kind == "drop_link":
                a, b = rng.sample(range(n), 2)
                rec["link"] = f"{names[a]}<->{names[b]}"
                cl.proxy.cmd(cmd="set", src=names[a], dst=names[b], mode="drop")
                time.sleep(dur)
                cl.proxy.cmd(cmd="heal")
            elif kind == "delay_links":
                ms = rng.randint(20, 200)
                i = rng.randrange(n)
                rec["member"], rec["delay_ms"] = names[i], ms
                for j in range(n):
                    if j != i:
                        cl.proxy.cmd(cmd="set", src=names[i], dst=names[j], mode=f"delay:{ms}")
                        cl.proxy.cmd(cmd="set", src=names[j], dst=names[i], mode=f"delay:{ms}")
                time.sleep(dur)
                cl.proxy.cmd(cmd="heal")
            elif kind == "leader_transfer":
                leader_transfer(cl, rng, rec)
                time.sleep(dur)
            elif kind == "member_replace":
                # Half the time the leader: it must step down once it has
                # committed its own removal.
                li = find_leader(cl) if rng.random() < 0.5 else None
                rec["was_leader"] = li is not None
                member_replace(cl, rng.randrange(n) if li is None else li, rec)
        except Exception as e:
            rec["error"] = repr(e)
        faults.append(rec)


def heal_all(cl):
    cl.proxy.cmd(cmd="heal")
    for i, m in enumerate(cl.members):
        if m.running():
            try:
                os.kill(m.pid, signal.SIGCONT)
            except OSError:
                pass
    for i, m in enumerate(cl.members):
        if not m.running():
            cl.spawn(i)
    for i in range(len(cl.members)):
        cl.wait_ready(i, timeout=60)


# ---- features --------------------------------------------------------------------

def probe_features(cl):
    """What the target serves: {feature: (on, why)}."""
    feats = {"kv": (True, "always")}
    c = Client(cl.members[0])
    try:
        try:
            g = c.lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=60), 5)
            c.lease.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=g.ID), 5)
            feats["lease"] = (True, "LeaseGrant/LeaseRevoke answered")
        except grpc.RpcError as e:
            feats["lease"] = (False, f"LeaseGrant: {e.code().name}")
        reqs = queue.Queue()
        reqs.put(etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(key=(PREFIX + "probe").encode())))

        def gen():
            while True:
                r = reqs.get()
                if r is None:
                    return
                yield r
        call = etcdrpc.WatchStub(c.channel).Watch(gen(), timeout=5)
        try:
            first = next(iter(call))
            feats["watch"] = (bool(first.created), "Watch created" if first.created
                              else "Watch answered without created")
        except grpc.RpcError as e:
            feats["watch"] = (False, f"Watch: {e.code().name}")
        finally:
            reqs.put(None)
            call.cancel()
    finally:
        c.close()
    return feats


# ---- checks --------------------------------------------------------------------

def check_watches(watchers, final_rev, ops=()):
    """Returns (problems, observed {rev: frozenset(events)})."""
    problems = []
    observed = {}
    tombstone_only = []
    for w in watchers:
        for si, seg in enumerate(w.segments):
            name = f"watcher m{w.member_index} segment {si} (from {seg['start']}, ended {seg['end']})"
            evs = seg["events"]
            by_rev = {}
            prev = None
            for rev, kind, key, value in evs:
                if prev is not None and rev < prev:
                    problems.append(f"{name}: revision {rev} after {prev}")
                prev = rev
                if (key) in {e[1] for e in by_rev.get(rev, set())}:
                    problems.append(f"{name}: duplicate event for {key!r} at {rev}")
                by_rev.setdefault(rev, set()).add((kind, key, value))
            if evs:
                if evs[0][0] < seg["start"]:
                    problems.append(f"{name}: first event at {evs[0][0]} before start")
                want = set(range(seg["start"], evs[-1][0] + 1))
                missing = sorted(want - set(by_rev))
                if missing == [seg["start"]]:
                    # etcd 3.4 too: compaction at C removes tombstones at C, and a
                    # watch from exactly C (what a compacted watch is told to
                    # use) does not get them. Allowed if C's events were deletes.
                    tombstone_only.append((name, seg["start"]))
                elif missing:
                    problems.append(f"{name}: no events for revisions {missing[:10]}"
                                    f"{'...' if len(missing) > 10 else ''} (gap)")
            for rev, s in by_rev.items():
                s = frozenset(s)
                if rev in observed and observed[rev] != s:
                    problems.append(f"{name}: revision {rev} has {sorted(s, key=str)}, another"
                                    f" watcher saw {sorted(observed[rev], key=str)}")
                observed.setdefault(rev, s)
        if w.last_rev < final_rev:
            problems.append(f"watcher m{w.member_index}: stuck at revision {w.last_rev},"
                            f" final revision is {final_rev}")
    deletes_at = {op.rev for op in ops if op.known and (
        (op.kind == checker.DELETE and op.deleted) or op.kind == checker.REVOKE)}
    for name, rev in tombstone_only:
        evs = observed.get(rev)
        if evs is None and rev in deletes_at:
            continue
        if evs is None or any(kind != "delete" for kind, _, _ in evs):
            problems.append(f"{name}: no events for its start revision {rev}, which "
                            f"{'nobody saw' if evs is None else 'was not only deletes'} (gap)")
    return problems, observed


def plant_violations(ops, rng):
    """Copies of the history with one violation each: (what, ops)."""
    out = []
    known_writes = {op.rev: op for op in ops if op.known and op.kind in (checker.PUT, checker.CAS)
                    and (op.kind == checker.PUT or op.succeeded)}
    gets = [op for op in ops if op.known and op.kind == checker.GET and op.kvs]
    # A stale read: a get whose key was last written by an acknowledged write
    # at m answers what an earlier get saw at a mod revision below m.
    rng.shuffle(gets)
    for g in gets:
        m = g.kvs[0][3]
        w = known_writes.get(m)
        if w is None or w.key != g.key:
            continue
        older = [o for o in gets if o.key == g.key and o.complete < g.invoke and o.kvs[0][3] < m]
        if older:
            bad = [op.copy() for op in ops]
            bad[ops.index(g)].kvs = list(older[0].kvs)
            out.append(("stale read", bad))
            break
    if gets:
        bad = [op.copy() for op in ops]
        g = gets[0]
        k, v, c, m, ver, le = g.kvs[0]
        bad[ops.index(g)].kvs = [(k, v + "-never-written", c, m, ver, le)]
        out.append(("read of a never-written value", bad))
    # A lost write: an acknowledged put whose value nobody else saw, gone
    # from the final reads (they read the state at the same revision).
    finals = [op for op in ops if op.client >= 1000 and op.known]
    if finals:
        f = finals[0]
        last = {kv[0]: kv for kv in f.kvs}
        cands = [kv for kv in f.kvs if kv[3] in known_writes and known_writes[kv[3]].key == kv[0]]
        if cands:
            gone = rng.choice(cands)[0]
            bad = [op.copy() for op in ops]
            for b in bad:
                if b.client >= 1000 and b.known:
                    b.kvs = [kv for kv in b.kvs if kv[0] != gone]
            del last
            out.append(("lost write", bad))
    # A key of an expired lease still there after every member reported the
    # lease gone: the final reads show it as its put wrote it.
    expired = {op.lease for op in ops if op.kind == checker.REVOKE and op.known and op.rev is None}
    lease_puts = [op for op in ops if op.known and op.kind == checker.PUT and op.lease in expired]
    if finals and lease_puts:
        p = rng.choice(lease_puts)
        item = (p.key, p.value, p.rev, p.rev, 1, p.lease)
        bad = [op.copy() for op in ops]
        for b in bad:
            if b.client >= 1000 and b.known:
                b.kvs = sorted(b.kvs + [item])
        out.append(("key of an expired lease read after it was gone", bad))
    if not out:
        raise RuntimeError("history too small to plant violations")
    return out


def hashkv_all(cl, rev, timeout=30):
    deadline = time.monotonic() + timeout
    out = {}
    while time.monotonic() < deadline and len(out) < len(cl.members):
        for i, m in enumerate(cl.members):
            if i in out:
                continue
            c = Client(m, admin=True)
            try:
                r = c.maint.HashKV(etcdrpc.HashKVRequest(revision=rev), 2)
                out[i] = (r.hash, r.compact_revision)
            except grpc.RpcError:
                pass
            finally:
                c.close()
        time.sleep(0.2)
    return out


# ---- one round -------------------------------------------------------------------

def run_round(args, size, seed, seconds, out_dir):
    rng = random.Random(seed)
    base = tempfile.mkdtemp(prefix=f"rob-{args.target}-{size}-", dir=args.work_dir)
    result = {"target": args.target, "members": size, "seed": seed, "seconds": seconds,
              "dir": base, "ok": False, "problems": []}
    global SECURITY
    extra_flags = []
    if PROFILES[args.profile].get("secure"):
        os.makedirs(os.path.join(base, "certs"))
        SECURITY = Security(os.path.join(base, "certs"))
        extra_flags = SECURITY.server_flags(args.target)
    extra_flags = extra_flags + args.server_flag
    cl = ProxiedCluster(args.server, size, base, extra_flags=extra_flags,
                        log_level=args.log_level)
    try:
        log(f"round: {args.target}, {size} members, seed {seed}, {seconds} s; data in {base}")
        cl.start()
        if SECURITY is not None:
            SECURITY.enable_auth(cl)
            SECURITY.check_confined(cl)
            log(f"TLS on client and peer links; auth on, workload as {WORKLOAD_USER!r} "
                f"limited to {PREFIX}")
        feats = probe_features(cl)
        for f in ("lease", "watch"):
            if args.require and f in args.require and not feats[f][0]:
                raise RuntimeError(f"{f} required but {feats[f][1]}")
        log("features: " + ", ".join(f"{k}={'on' if v[0] else 'OFF'} ({v[1]})"
                                     for k, v in feats.items()))
        result["features"] = {k: v[0] for k, v in feats.items()}
        c0 = Client(cl.members[0])
        r0 = c0.kv.Range(etcdrpc.RangeRequest(key=PREFIX.encode(), range_end=prefix_end(PREFIX)), 5)
        c0.close()
        if r0.kvs:
            raise RuntimeError("test prefix not empty at start")
        initial = (r0.header.revision, ())
        history = History()
        stop = threading.Event()
        stop_faults = threading.Event()
        t0 = time.monotonic()
        stats = {"compactions": 0, "granted": 0, "revoked": set()}
        keys = [f"{PREFIX}k/{i}" for i in range(8)]
        threads = []
        cid = 0
        for i in range(size):
            for _ in range(2):
                threads.append(threading.Thread(target=kv_client, daemon=True, args=(
                    cid, cl, i, history, stop, random.Random(rng.random()), keys)))
                cid += 1
        expiring, kept = [], {}
        stop_keep = threading.Event()  # the keeper runs until the checks are done
        keeper = None
        if feats["lease"][0]:
            threads.append(threading.Thread(target=lease_client, daemon=True, args=(
                cid, cl, history, stop, random.Random(rng.random()), stats)))
            cid += 1
            threads.append(threading.Thread(target=expiring_lease_client, daemon=True, args=(
                cid, cl, history, stop, random.Random(rng.random()), expiring)))
            cid += 1
            keeper = threading.Thread(target=lease_keeper, daemon=True, args=(
                cid, cl, history, stop_keep, random.Random(rng.random()), kept,
                result["problems"]))
            cid += 1
        threads.append(threading.Thread(target=compactor, daemon=True,
                                        args=(cl, stop, random.Random(rng.random()), stats)))
        watchers = []
        if feats["watch"][0]:
            for i in range(size):
                w = Watcher(cl, i, stop, random.Random(rng.random()), initial[0] + 1)
                watchers.append(w)
                threads.append(w.thread)
        faults = []
        fthread = threading.Thread(target=fault_injector, daemon=True,
                                   args=(cl, stop_faults, random.Random(rng.random()), faults, t0))
        for t in threads:
            t.start()
        if keeper is not None:
            keeper.start()
        fthread.start()
        time.sleep(seconds)
        stop_faults.set()
        fthread.join(120)
        if fthread.is_alive():
            raise RuntimeError("fault injector stuck")
        log(f"faults done ({len(faults)}); healing")
        # Kept in the summary even if healing fails: the last fault is
        # usually what left a member unable to come back.
        result["faults"] = faults
        heal_all(cl)
        time.sleep(1.0)  # traffic on the healed cluster
        stop.set()
        for w in watchers:
            w.cancel()
        for t in threads:
            t.join(30)
        log("kill -9 of every member, then restart all")
        for i in range(size):
            cl.kill(i)
        for i in range(size):
            cl.spawn(i)
        for i in range(size):
            cl.wait_ready(i, timeout=60)
        if keeper is not None and len(kept) < 2:
            result["problems"].append(f"the lease keeper granted {len(kept)} of 2 leases")
        # A kept-alive lease survives the restart with its full TTL (etcd 3.4:
        # the new leader renews every lease), on every member.
        for lid in kept:
            for m in cl.members:
                try:
                    ttl = lease_ttl(m, lid, timeout=5)
                except grpc.RpcError as e:
                    ttl = f"{e.code().name}"
                if not isinstance(ttl, int) or ttl <= 0:
                    result["problems"].append(f"kept-alive lease {lid:x}: TTL {ttl} on {m.name}"
                                              " after the restart")
        # Short leases: every member must report them gone (their keys deleted
        # with them) before the final reads, which then must not show them.
        t_exp = time.monotonic()
        alive = wait_expired(cl, expiring, timeout=3 * EXPIRING_TTL + 20)
        for lid, ttls in alive.items():
            result["problems"].append(f"lease {lid:x} (TTL {EXPIRING_TTL}, never kept alive) not gone"
                                      f" {time.monotonic() - t_exp:.0f} s after the restart: TTLs {ttls}")
        expired = {e["id"] for e in expiring if e["op"].known}
        # Final reads on every member: every acknowledged write must be there.
        final_rev = 0
        for i in range(size):
            c = Client(cl.members[i])
            op = Op(checker.RANGE, client=1000 + i, key=PREFIX)
            resp = run_op(c, history, op, lambda: c.kv.Range(etcdrpc.RangeRequest(
                key=PREFIX.encode(), range_end=prefix_end(PREFIX)), 10))
            c.close()
            if resp is None:
                result["problems"].append(f"final read on m{i} failed")
                continue
            op.kvs = kvs_of(resp.kvs)
            final_rev = max(final_rev, resp.header.revision)
            for kv in op.kvs:
                if kv[5] and kv[5] in stats["revoked"]:
                    result["problems"].append(f"key {kv[0]!r} of revoked lease {kv[5]:x} still there")
                if kv[5] and kv[5] in expired:
                    result["problems"].append(f"m{i}: key {kv[0]!r} of expired lease {kv[5]:x} still there")
            have = {(kv[0], kv[1]) for kv in op.kvs}
            for lid, info in kept.items():
                for key, value in info["keys"]:
                    if (key, value) not in have:
                        result["problems"].append(f"m{i}: key {key!r} of kept-alive lease {lid:x} missing")
        hashes = hashkv_all(cl, final_rev)
        if len(hashes) < size:
            result["problems"].append(f"HashKV at {final_rev} answered by {len(hashes)}/{size} members")
        elif len(set(hashes.values())) != 1:
            result["problems"].append(f"HashKV at {final_rev} differs: "
                                      + ", ".join(f"m{i}={h}" for i, h in sorted(hashes.items())))
        # Watches: reopen on the restarted members and catch up to final_rev.
        if watchers:
            stop2 = threading.Event()
            for w in watchers:
                w.stop = stop2
                w.thread = threading.Thread(target=w.run, daemon=True)
                w.thread.start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and any(w.last_rev < final_rev for w in watchers):
                time.sleep(0.2)
            stop2.set()
            for w in watchers:
                w.cancel()
            for w in watchers:
                w.thread.join(10)
        stop_keep.set()
        if keeper is not None:
            keeper.join(10)
        wproblems, observed = check_watches(watchers, final_rev, history.ops)
        if watchers:
            with open(os.path.join(out_dir, f"watches-{args.target}-{size}-{seed}.json"), "w") as f:
                json.dump([{"member": w.member_index, "segments": w.segments} for w in watchers], f)
        result["problems"] += wproblems
        ops = history.ops
        counts = {}
        for op in ops:
            k = ("expiry" if op.error == "lease expiry" else op.kind) + ("?" if not op.known else "")
            counts[k] = counts.get(k, 0) + 1
        result.update(ops=len(ops), op_counts=counts, unknown=sum(1 for o in ops if not o.known),
                      not_sent=history.failed_definitely, faults=faults,
                      compactions=stats["compactions"], leases_revoked=len(stats["revoked"]),
                      leases_expired=len(expired), leases_kept=len(kept),
                      watch_segments=sum(len(w.segments) for w in watchers),
                      watch_events=sum(len(s["events"]) for w in watchers for s in w.segments),
                      final_revision=final_rev)
        fault_counts = {}
        for f in faults:
            fault_counts[f["fault"]] = fault_counts.get(f["fault"], 0) + 1
            if f["fault"] == "member_replace" and "error" in f:
                result["problems"].append(f"member_replace of {f.get('member')} failed: {f['error']}")
        missing = [k for k in FAULTS if k not in fault_counts]
        if missing:
            result["problems"].append(f"fault kinds not injected: {missing}")
        log(f"history: {len(ops)} ops {counts}, {result['not_sent']} not sent; faults {fault_counts};"
            f" {stats['compactions']} compactions; leases: {len(stats['revoked'])} revoked,"
            f" {len(expired)}/{len(expiring)} expired, {len(kept)} kept alive"
            f" ({sum(k['renewals'] for k in kept.values())} keep-alives); watch events {result['watch_events']}"
            f" in {result['watch_segments']} streams; final revision {final_rev}")
        hist_path = os.path.join(out_dir, f"history-{args.target}-{size}-{seed}.json")
        checker.dump(hist_path, ops, observed)
        tc = time.monotonic()
        r = checker.check([op.copy() for op in ops], observed=observed, initial=initial,
                          time_limit=args.check_seconds)
        log(f"linearizability: {'OK' if r.ok else ('UNDECIDED (time limit)' if r.timed_out else 'VIOLATION')}"
            f" ({r.explored} steps, {time.monotonic() - tc:.1f} s)")
        result["linearizable"] = r.ok
        if r.ok:
            # The checker must reject this same history with a violation planted.
            for what, bad in plant_violations(ops, random.Random(seed)):
                rb = checker.check(bad, observed=observed, initial=initial,
                                   time_limit=args.check_seconds)
                verdict = "rejected" if not rb.ok and not rb.timed_out else (
                    "undecided" if rb.timed_out else "ACCEPTED")
                log(f"self-test: planted {what}: {verdict}")
                if verdict != "rejected":
                    result["problems"].append(f"checker did not reject a planted {what}")
        if not r.ok and r.timed_out:
            result["undecided"] = f"checker gave up after {args.check_seconds} s"
        elif not r.ok:
            text, small = checker.report(ops, r, initial=initial, observed=observed)
            rpath = os.path.join(out_dir, f"violation-{args.target}-{size}-{seed}.txt")
            with open(rpath, "w") as f:
                f.write(text + "\n")
            checker.dump(rpath.replace(".txt", ".json"), small, text=text)
            result["problems"].append(f"not linearizable: report {rpath}")
            print(text[:4000])
        if args.target == "etcdpp" and args.log_level == "debug":
            # The members logged their read rounds (read_rounds.py).
            rounds, stale = read_rounds.check({m.name: m.log_path for m in cl.members})
            log(f"read rounds: {rounds} checked, {len(stale)} stale")
            result["read_rounds"] = rounds
            result["problems"] += [f"stale read round: {p}" for p in stale[:10]]
            if len(stale) > 10:
                result["problems"].append(f"... and {len(stale) - 10} more stale read rounds")
        result["ok"] = r.ok and not result["problems"]
        for p in result["problems"]:
            log("PROBLEM: " + p)
        return result
    except Exception as e:
        result["problems"].append(f"harness: {e!r}")
        result["undecided"] = traceback.format_exc()
        log(traceback.format_exc())
        for m in cl.members:
            log(f"--- {m.name} log tail ---\n{m.log_tail(15)}")
        return result
    finally:
        cl.close()
        if result.get("ok") and not args.keep:
            import shutil
            shutil.rmtree(base, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--profile", choices=sorted(PROFILES), default="short")
    p.add_argument("--target", choices=["etcdpp", "etcd"], default="etcdpp")
    p.add_argument("--server", help="server binary (default: build/bin/etcdpp or /usr/bin/etcd)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of faults per round (short) or in total (long)")
    p.add_argument("--out", default=None, help="where histories and reports go")
    p.add_argument("--work-dir", default=None, help="where data dirs go")
    p.add_argument("--check-seconds", type=float, default=180.0)
    p.add_argument("--require", default="", help="comma list of features that must be on (lease,watch)")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--log-level", default="warn",
                   help="the members' --log-level; at debug etcdpp also logs every change"
                        " of Raft role and term, which tells who led when, and its read"
                        " rounds, which the round then checks (read_rounds.py)")
    p.add_argument("--server-flag", action="append", default=[],
                   help="a flag for every member (repeatable), e.g. "
                        "--server-flag=--h2-front=false")
    args = p.parse_args()
    args.require = [x for x in args.require.split(",") if x]
    if args.server is None:
        args.server = "/usr/bin/etcd" if args.target == "etcd" else os.path.join(
            HERE, "..", "..", "build", "bin", "etcdpp")
    seed = args.seed if args.seed is not None else int(time.time()) % 100000
    prof = PROFILES[args.profile]
    out_dir = args.out or tempfile.mkdtemp(prefix="robustness-")
    os.makedirs(out_dir, exist_ok=True)
    log(f"profile {args.profile}, target {args.target} ({args.server}), seed {seed}, output {out_dir}")
    results = []
    if args.profile in ("short", "secure"):
        results.append(run_round(args, prof["sizes"][0], seed,
                                 args.duration or prof["round_seconds"], out_dir))
    else:
        total = args.duration or 600
        t_end = time.monotonic() + total
        k = 0
        while time.monotonic() < t_end:
            size = prof["sizes"][k % len(prof["sizes"])]
            results.append(run_round(args, size, seed + k, prof["round_seconds"], out_dir))
            k += 1
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    ops = sum(r.get("ops", 0) for r in results)
    nf = sum(len(r.get("faults", [])) for r in results)
    bad = [r for r in results if not r["ok"]]
    log(f"{len(results)} round(s), seeds {[r['seed'] for r in results]}, {ops} ops, {nf} faults:"
        f" {'ALL PASSED' if not bad else f'{len(bad)} FAILED'} (summary {out_dir}/summary.json)")
    if not bad:
        return 0
    return 1 if any(not r.get("undecided") for r in bad) else 2


if __name__ == "__main__":
    sys.exit(main())

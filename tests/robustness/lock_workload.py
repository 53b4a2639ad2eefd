#!/usr/bin/python3
"""Lock workload: contenders increment a counter under the Lock service, under faults.

  tests/robustness/lock_workload.py --server build/bin/etcdpp --seconds 20 --seed 1
  tests/robustness/lock_workload.py --server /usr/bin/etcd --variant unfenced

A 3-member cluster behind the fault proxy (run.py's ProxiedCluster). Each of
--clients contenders loops: grant a lease (kept alive by a thread of its
own), Lock("counter") through v3lockpb.Lock on some member, read the lock
key's create revision (its fencing token) and the counter, write counter+1,
Unlock. The value written is "<n>:<token>".

  * fenced: the write is a Txn that puts only if the lock key still has
    the token's create revision (docs/recipes.md, "Fencing");
  * server-fenced: a plain Put carrying the token as gRPC metadata, checked
    by the member (etcdpp only; src/api/write_fence.h);
  * unfenced: a plain Put, as a client that trusts "Lock returned" would.

Now and then a contender freezes after reading the counter, as a process
in a long GC pause or a stopped VM would: its keep-alives stop too, for
longer than the lease's TTL, so its key expires and the next contender is
granted the lock meanwhile; then it wakes and writes. The harness (not the
frozen contender, which does nothing while frozen) stretches each pause
until another contender's increment has taken effect, up to FREEZE_MAX:
under faults the lease may outlive a fixed pause (a new leader renews every
lease), and a freeze that no later holder overlaps proves nothing.
Meanwhile the fault injector kills (-9), pauses (SIGSTOP) and partitions
members.

At the end every member is killed and restarted, and the counter's whole
history is read back (a watch from revision 1; nothing is compacted). The
checks:
  * mutual exclusion of the writes that took effect: the counter's values,
    in revision order, are 1, 2, 3, ... with no value written twice (a value
    written twice is a lost update: two contenders read the same value while
    both believed they held the lock), and their tokens never decrease;
  * no acknowledged write lost, none invented: acknowledged <= writes in
    the counter's history <= acknowledged + writes whose outcome is unknown.
The fenced variant must pass everywhere; the unfenced one is expected to
break mutual exclusion once a frozen contender wakes (on etcd 3.4 as on
etcdpp: no lock service can prevent it), which --expect-violations asserts.
Exit status 0 when the verdict is the expected one.
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e", "lock"))
import run  # noqa: E402  (imports the e2e cluster lib first: fork-safe grpc)
from run import e2e, etcdrpc, grpc  # noqa: E402
import lock_stubs  # noqa: E402

LOCK_NAME = b"counter-lock"
COUNTER = b"/lockrob/counter"
LEASE_TTL = 3          # seconds; a frozen contender sleeps past it
FREEZE_CHANCE = 0.15   # per increment
FREEZE_MAX = 15.0      # seconds a freeze may be stretched waiting for a later holder
RPC_TIMEOUT = 3.0
LOCK_TIMEOUT = 10.0
# The faults of run.py that a lock must survive; membership changes are
# covered by the main harness.
LOCK_FAULTS = ["kill", "pause", "partition_leader", "delay_links", "drop_link"]


class Outcomes:
    """What the contenders saw; guarded by its lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acknowledged = 0      # increments the server confirmed
        self.unknown = 0           # increments whose answer was lost
        self.refused = 0           # fenced writes refused: the token was stale
        self.frozen = 0            # contenders that froze past their lease
        self.overtaken = 0         # freezes during which another increment took effect
        self.granted = 0
        self.errors = {}           # gRPC code -> count (retried)

    def count_error(self, e):
        with self.lock:
            name = e.code().name if isinstance(e, grpc.RpcError) else type(e).__name__
            self.errors[name] = self.errors.get(name, 0) + 1


class KeepAlive:
    """Renews a lease every second until stopped (or frozen)."""

    def __init__(self, lease_stub, lease_id):
        self.stub, self.id = lease_stub, lease_id
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stop.wait(1.0):
            try:
                for _ in self.stub.LeaseKeepAlive(
                        iter([etcdrpc.LeaseKeepAliveRequest(ID=self.id)]), RPC_TIMEOUT):
                    break
            except grpc.RpcError:
                pass  # the next renewal may reach a healthier member


def counter_revision(cl):
    """The counter's mod revision by a linearizable read on any member that
    answers (0: not written yet); None if none answered."""
    for m in cl.members:
        channel = grpc.insecure_channel(m.endpoint)
        try:
            r = etcdrpc.KVStub(channel).Range(etcdrpc.RangeRequest(key=COUNTER), 1.0)
            return r.kvs[0].mod_revision if r.kvs else 0
        except grpc.RpcError:
            continue
        finally:
            channel.close()
    return None


def freeze(cl, read_revision):
    """Sleeps past the lease's TTL, then until the counter has moved past
    read_revision or FREEZE_MAX has gone by. True if it moved."""
    time.sleep(LEASE_TTL + 1.5)
    deadline = time.monotonic() + FREEZE_MAX
    while True:
        now = counter_revision(cl)
        if now is not None and now > read_revision:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def contender(cid, cl, variant, stop, rng, out, lockgrpc, lockpb):
    member = cid % len(cl.members)
    # Contender 0 freezes on its first increment, so every run has a stale
    # holder (the unfenced verdict would be inconclusive without one).
    increments = 0
    while not stop.is_set():
        channel = grpc.insecure_channel(cl.members[member].endpoint)
        kv, lease = etcdrpc.KVStub(channel), etcdrpc.LeaseStub(channel)
        locks = lockgrpc.LockStub(channel)
        keeper = None
        try:
            grant = lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=LEASE_TTL), RPC_TIMEOUT)
            keeper = KeepAlive(lease, grant.ID)
            held = locks.Lock(lockpb.LockRequest(name=LOCK_NAME, lease=grant.ID), LOCK_TIMEOUT)
            with out.lock:
                out.granted += 1
            own = kv.Range(etcdrpc.RangeRequest(key=held.key), RPC_TIMEOUT)
            if not own.kvs:
                continue  # expired before we looked: not ours any more
            token = own.kvs[0].create_revision
            now = kv.Range(etcdrpc.RangeRequest(key=COUNTER), RPC_TIMEOUT)
            value = int(now.kvs[0].value.split(b":")[0]) if now.kvs else 0
            read_revision = now.kvs[0].mod_revision if now.kvs else 0
            increments += 1
            if (cid == 0 and increments == 1) or rng.random() < FREEZE_CHANCE:
                keeper.stop.set()
                with out.lock:
                    out.frozen += 1
                if freeze(cl, read_revision):
                    with out.lock:
                        out.overtaken += 1
            write = etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(
                key=COUNTER, value=f"{value + 1}:{token}".encode()))
            try:
                if variant == "fenced":
                    # create_revision compare: target CREATE (1), result EQUAL (0).
                    fence = etcdrpc.Compare(key=held.key, target=etcdrpc.Compare.CREATE,
                                            result=etcdrpc.Compare.EQUAL, create_revision=token)
                    r = kv.Txn(etcdrpc.TxnRequest(compare=[fence], success=[write]), RPC_TIMEOUT)
                    with out.lock:
                        if r.succeeded:
                            out.acknowledged += 1
                        else:
                            out.refused += 1
                elif variant == "server-fenced":
                    try:
                        kv.Put(write.request_put, RPC_TIMEOUT, metadata=[
                            ("etcdpp-fence-key-bin", held.key),
                            ("etcdpp-fence-revision", str(token))])
                        with out.lock:
                            out.acknowledged += 1
                    except grpc.RpcError as e:
                        if e.code() != grpc.StatusCode.FAILED_PRECONDITION:
                            raise
                        with out.lock:
                            out.refused += 1
                else:
                    kv.Put(write.request_put, RPC_TIMEOUT)
                    with out.lock:
                        out.acknowledged += 1
            except grpc.RpcError as e:
                with out.lock:
                    out.unknown += 1
                out.count_error(e)
            try:
                locks.Unlock(lockpb.UnlockRequest(key=held.key), RPC_TIMEOUT)
            except grpc.RpcError as e:
                out.count_error(e)  # the lease's expiry releases it anyway
        except grpc.RpcError as e:
            out.count_error(e)
            member = (member + 1) % len(cl.members)  # try another member
            stop.wait(0.1)
        finally:
            if keeper:
                keeper.stop.set()
                try:
                    lease.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=keeper.id), RPC_TIMEOUT)
                except grpc.RpcError:
                    pass
            channel.close()


def counter_history(cl):
    """[(revision, value, token)] of every write to the counter, oldest first."""
    channel = grpc.insecure_channel(cl.members[0].endpoint)
    try:
        kv = etcdrpc.KVStub(channel)
        last = kv.Range(etcdrpc.RangeRequest(key=COUNTER), 10)
        if not last.kvs:
            return []
        # Every version of the key, each read at its own revision, walking
        # back from the newest: version n was written at mod_revision, and
        # the one before it is visible at mod_revision - 1.
        history = []
        rev = last.kvs[0].mod_revision
        while rev > 0:
            r = kv.Range(etcdrpc.RangeRequest(key=COUNTER, revision=rev), 10)
            if not r.kvs:
                break
            v, token = r.kvs[0].value.split(b":")
            history.append((r.kvs[0].mod_revision, int(v), int(token)))
            rev = r.kvs[0].mod_revision - 1
        return list(reversed(history))
    finally:
        channel.close()


def check(history, out):
    problems = []
    values = [v for _, v, _ in history]
    expected = list(range(1, len(values) + 1))
    if values != expected:
        seen, lost = set(), []
        for rev, v, token in history:
            if v in seen:
                lost.append({"revision": rev, "value": v, "token": token})
            seen.add(v)
        problems.append({"check": "mutual exclusion", "writes": len(values),
                         "lost_updates": len(lost), "first": lost[:5]})
    tokens = [t for _, _, t in history]
    drops = [(history[i][0], tokens[i - 1], tokens[i])
             for i in range(1, len(tokens)) if tokens[i] < tokens[i - 1]]
    if drops:
        problems.append({"check": "tokens never decrease", "decreases": len(drops),
                         "first": drops[:5]})
    # Every write to the counter is one revision of it, whatever it wrote.
    if not out.acknowledged <= len(history) <= out.acknowledged + out.unknown:
        problems.append({"check": "acknowledged writes", "writes": len(history),
                         "acknowledged": out.acknowledged, "unknown": out.unknown})
    return problems


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", required=True)
    p.add_argument("--variant", choices=["fenced", "server-fenced", "unfenced"], default="fenced")
    p.add_argument("--expect-violations", action="store_true",
                   help="pass only if mutual exclusion is broken (the unfenced variant)")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="write the report (JSON) here")
    args = p.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    lockpb, lockgrpc, _, _ = lock_stubs.load()
    run.FAULTS[:] = LOCK_FAULTS
    base = tempfile.mkdtemp(prefix="rob-lock-")
    cl = run.ProxiedCluster(args.server, 3, base)
    report = {"server": args.server, "variant": args.variant, "seed": seed,
              "seconds": args.seconds, "clients": args.clients}
    try:
        run.log(f"lock workload: {args.variant}, {args.clients} contenders, seed {seed}, "
                f"{args.seconds} s, data in {base}")
        cl.start()
        out = Outcomes()
        stop, stop_faults = threading.Event(), threading.Event()
        faults = []
        t0 = time.monotonic()
        threads = [threading.Thread(target=contender, daemon=True, args=(
            cid, cl, args.variant, stop, random.Random(rng.random()), out, lockgrpc, lockpb))
            for cid in range(args.clients)]
        injector = threading.Thread(target=run.fault_injector, daemon=True,
                                    args=(cl, stop_faults, random.Random(rng.random()),
                                          faults, t0))
        for t in threads + [injector]:
            t.start()
        time.sleep(args.seconds)
        stop_faults.set()
        injector.join(120)
        stop.set()
        for t in threads:
            t.join(LOCK_TIMEOUT + LEASE_TTL + FREEZE_MAX + 10)
        run.heal_all(cl)
        # Everything acknowledged must survive every member's kill -9.
        for i in range(len(cl.members)):
            cl.kill(i)
        for i in range(len(cl.members)):
            cl.spawn(i)
        for i in range(len(cl.members)):
            cl.wait_ready(i, timeout=60)
        history = counter_history(cl)
        problems = check(history, out)
        report.update({"faults": faults, "granted": out.granted, "acknowledged": out.acknowledged,
                       "unknown": out.unknown, "refused": out.refused, "frozen": out.frozen,
                       "overtaken": out.overtaken,
                       "errors": out.errors, "writes": len(history), "problems": problems})
        violated = any(pr["check"] == "mutual exclusion" for pr in problems)
        lost = any(pr["check"] == "acknowledged writes" for pr in problems)
        # Unfenced, decreasing tokens come with the lost updates; losing an
        # acknowledged write is a failure in either variant.
        ok = (violated and not lost) if args.expect_violations else not problems
        report["ok"] = ok
        run.log(json.dumps({k: v for k, v in report.items() if k != "faults"}, indent=1))
        run.log(f"faults: {len(faults)} ({', '.join(sorted({f['fault'] for f in faults}))})")
        if args.out:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as f:
                json.dump(report, f, indent=1)
        if out.granted == 0 or (out.overtaken == 0 and args.expect_violations):
            run.log("inconclusive: no lock granted, or no freeze overlapped a later holder")
            sys.exit(2)
        run.log("PASS" if ok else "FAIL")
        sys.exit(0 if ok else 1)
    finally:
        cl.close()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Lock and Election services on a 3-member cluster, across members and a leader failover.

    /usr/bin/python3 lock_cluster_test.py --server build/bin/etcdpp

Every member serves Lock and Election (as clients of its own KV, Lease and
Watch), so a lock held through one member queues a waiter on another, and
an unlock through a third hands it over. Killing the leader (-9) while a
Lock waits must not grant it: the holder's key is still there. Passes
against /usr/bin/etcd too.
"""

import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
import lock_stubs  # noqa: E402

import grpc  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402

lockpb, lockgrpc, electionpb, electiongrpc = lock_stubs.load()

SERVER = None
CLUSTER = None
TIMEOUT = 10


def setUpModule():
    global CLUSTER
    CLUSTER = cluster.Cluster(SERVER, size=3, extra_flags=[
        "--heartbeat-interval", "100", "--election-timeout", "1000"]).start()


def tearDownModule():
    if CLUSTER is not None:
        CLUSTER.close()


class Stubs:
    def __init__(self, i):
        self.channel = grpc.insecure_channel(CLUSTER.members[i].endpoint)
        self.lock = lockgrpc.LockStub(self.channel)
        self.election = electiongrpc.ElectionStub(self.channel)
        self.kv = etcdrpc.KVStub(self.channel)
        self.leases = etcdrpc.LeaseStub(self.channel)

    def grant(self, ttl=60):
        return self.leases.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=ttl), timeout=TIMEOUT).ID

    def keys(self, prefix):
        r = self.kv.Range(etcdrpc.RangeRequest(key=prefix.encode(),
                                               range_end=prefix[:-1].encode() + b"0"),
                          timeout=TIMEOUT)
        return [kv.key for kv in r.kvs]


class Background:
    def __init__(self, fn):
        self.value = None
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.value = fn()
        except Exception as e:
            self.error = e

    def done(self):
        return not self.thread.is_alive()

    def result(self, timeout=60):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(f"call still blocked after {timeout}s")
        if self.error:
            raise self.error
        return self.value


def wait_keys(stubs, prefix, n):
    cluster.wait_until(lambda: len(stubs.keys(prefix)) == n, timeout=20,
                       what=f"{n} keys under {prefix}")


class LockClusterTest(unittest.TestCase):
    def test_lock_handed_over_across_members(self):
        a, b, c = Stubs(0), Stubs(1), Stubs(2)
        held = a.lock.Lock(lockpb.LockRequest(name=b"x", lease=a.grant()), timeout=TIMEOUT)
        waiter_lease = b.grant()
        waiter = Background(lambda: b.lock.Lock(
            lockpb.LockRequest(name=b"x", lease=waiter_lease), timeout=60))
        wait_keys(c, "x/", 2)
        self.assertFalse(waiter.done(), "granted while the lock was held through another member")
        unlocked = c.lock.Unlock(lockpb.UnlockRequest(key=held.key), timeout=TIMEOUT)
        got = waiter.result()
        self.assertEqual(got.key, f"x/{waiter_lease:x}".encode())
        self.assertGreaterEqual(got.header.revision, unlocked.header.revision)
        self.assertEqual(a.keys("x/"), [got.key])
        b.lock.Unlock(lockpb.UnlockRequest(key=got.key), timeout=TIMEOUT)

    def test_leader_failover_while_waiting_grants_no_second_holder(self):
        leader = CLUSTER.leader()
        followers = [i for i in range(3) if i != leader]
        holder_side, waiter_side = Stubs(followers[0]), Stubs(followers[1])
        held = holder_side.lock.Lock(
            lockpb.LockRequest(name=b"f", lease=holder_side.grant()), timeout=TIMEOUT)
        waiter_lease = waiter_side.grant()
        waiter = Background(lambda: waiter_side.lock.Lock(
            lockpb.LockRequest(name=b"f", lease=waiter_lease), timeout=90))
        wait_keys(waiter_side, "f/", 2)
        CLUSTER.kill(leader)
        try:
            new_leader = CLUSTER.leader(timeout=30)
            self.assertNotEqual(new_leader, leader)
            # The holder's key survives the failover, so the waiter still waits.
            self.assertIn(held.key, holder_side.keys("f/"))
            self.assertFalse(waiter.done(),
                             f"granted during failover: {waiter.value or waiter.error}")
        finally:
            CLUSTER.restart(leader)
        self.assertFalse(waiter.done())
        holder_side.lock.Unlock(lockpb.UnlockRequest(key=held.key), timeout=TIMEOUT)
        got = waiter.result()
        self.assertEqual(got.key, f"f/{waiter_lease:x}".encode())
        self.assertEqual(Stubs(leader).keys("f/"), [got.key])
        waiter_side.lock.Unlock(lockpb.UnlockRequest(key=got.key), timeout=TIMEOUT)

    def test_election_across_members(self):
        a, b, c = Stubs(0), Stubs(1), Stubs(2)
        first = a.election.Campaign(electionpb.CampaignRequest(
            name=b"el", lease=a.grant(), value=b"a"), timeout=TIMEOUT)
        stream = b.election.Observe(electionpb.LeaderRequest(name=b"el"), timeout=60)
        seen = []
        arrived = threading.Condition()

        def read():
            try:
                for message in stream:
                    with arrived:
                        seen.append(message.kv.value)
                        arrived.notify_all()
            except grpc.RpcError:
                pass

        threading.Thread(target=read, daemon=True).start()

        def wait_seen(n):
            with arrived:
                self.assertTrue(arrived.wait_for(lambda: len(seen) >= n, timeout=20), seen)

        wait_seen(1)
        second_lease = c.grant()
        second = Background(lambda: c.election.Campaign(electionpb.CampaignRequest(
            name=b"el", lease=second_lease, value=b"c"), timeout=60))
        wait_keys(a, "el/", 2)
        self.assertFalse(second.done())
        a.election.Proclaim(electionpb.ProclaimRequest(leader=first.leader, value=b"a2"),
                            timeout=TIMEOUT)
        wait_seen(2)
        b.election.Resign(electionpb.ResignRequest(leader=first.leader), timeout=TIMEOUT)
        won = second.result()
        self.assertEqual(won.leader.lease, second_lease)
        wait_seen(3)
        stream.cancel()
        self.assertEqual(seen, [b"a", b"a2", b"c"])
        current = a.election.Leader(electionpb.LeaderRequest(name=b"el"), timeout=TIMEOUT)
        self.assertEqual(current.kv.key, won.leader.key)
        c.election.Resign(electionpb.ResignRequest(leader=won.leader), timeout=TIMEOUT)


def main():
    global SERVER
    parser = cluster.server_arg_parser(__doc__.splitlines()[0])
    args, _ = parser.parse_known_args()
    SERVER = os.path.abspath(args.server)
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    if not result.wasSuccessful() and CLUSTER is not None:
        CLUSTER.print_log_tails()
    print(f"{result.testsRun - failed} passed, {failed} failed")
    return 0 if result.wasSuccessful() and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

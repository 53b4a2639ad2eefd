#!/usr/bin/python3
"""A member cut off from its cluster answers as etcd 3.4 does.

3 members; on one follower a client opens a watch stream and a lease
keep-alive stream with the metadata "hasleader: true" (what
clientv3.WithRequireLeader sends; etcdctl watch does). Then the two other
members are killed (kill -9), so the survivor has no quorum and soon no
leader:
  * a unary call with "hasleader: true" fails with UNAVAILABLE
    "etcdserver: no leader" (checked against the same call before the kill,
    which succeeds);
  * both streams end with UNAVAILABLE "etcdserver: no leader" (etcd waits 3
    election timeouts without a leader before ending streams);
  * a serializable Range without the metadata is still served locally;
  * a Put and a linearizable Range fail with UNAVAILABLE "etcdserver: request
    timed out" once the server's request timeout passes (etcd 3.4 answers
    the linearizable Range so; its Put fails with UNKNOWN "context deadline
    exceeded", because raft's Propose blocks until the request's context
    expires: we give the error etcd documents for this case instead);
  * once the two members are back, a leader is elected and the same calls
    succeed again, including a new "hasleader" watch that sees a new put.
Bounded: about 30 s.

    /usr/bin/python3 no_leader_test.py --server build/bin/etcdpp
"""

import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402  (sets GRPC_ENABLE_FORK_SUPPORT before grpc loads)
import grpc  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402

REQUIRE_LEADER = [("hasleader", "true")]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Stream:
    """A bidi stream on its own thread; `events` gets every response, then
    ("end", code, details) when the stream ends."""

    def __init__(self, call, first_request, metadata):
        self.events = queue.Queue()
        self._stop = threading.Event()

        def requests():
            yield first_request
            self._stop.wait(120)

        def run():
            try:
                for resp in call(requests(), metadata=metadata):
                    self.events.put(("resp", resp))
                self.events.put(("end", grpc.StatusCode.OK, ""))
            except grpc.RpcError as e:
                self.events.put(("end", e.code(), e.details()))
        threading.Thread(target=run, daemon=True).start()

    def next(self, timeout):
        return self.events.get(timeout=timeout)

    def close(self):
        self._stop.set()


def expect_end(stream, what, timeout):
    deadline = time.monotonic() + timeout
    while True:
        kind, *rest = stream.next(max(0.1, deadline - time.monotonic()))
        if kind == "end":
            code, details = rest
            check(code == grpc.StatusCode.UNAVAILABLE and details == "etcdserver: no leader",
                  f"{what} ended with {code} {details!r}")
            return


def main():
    args = cluster.server_arg_parser(__doc__).parse_args()
    c = cluster.Cluster(args.server, size=3, keep=args.keep)
    streams = []
    try:
        c.start()
        leader = c.leader()
        survivor = next(i for i in range(3) if i != leader)
        others = [i for i in range(3) if i != survivor]
        ch = grpc.insecure_channel(c.members[survivor].endpoint)
        kv, watch, lease = etcdrpc.KVStub(ch), etcdrpc.WatchStub(ch), etcdrpc.LeaseStub(ch)

        # While there is a leader, "hasleader" calls and streams work.
        kv.Put(etcdrpc.PutRequest(key=b"k", value=b"v1"), timeout=10)
        r = kv.Range(etcdrpc.RangeRequest(key=b"k"), metadata=REQUIRE_LEADER, timeout=10)
        check([kv.value for kv in r.kvs] == [b"v1"], f"hasleader range with a leader: {r}")
        w = Stream(watch.Watch, etcdrpc.WatchRequest(
            create_request=etcdrpc.WatchCreateRequest(key=b"k")), REQUIRE_LEADER)
        streams.append(w)
        kind, created = w.next(10)
        check(kind == "resp" and created.created, f"watch created: {created}")
        granted = lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=60), timeout=10)
        ka = Stream(lease.LeaseKeepAlive, etcdrpc.LeaseKeepAliveRequest(ID=granted.ID),
                    REQUIRE_LEADER)
        streams.append(ka)
        kind, renewed = ka.next(10)
        check(kind == "resp" and renewed.TTL > 0, f"keep-alive answered: {renewed}")

        # Quorum lost: the survivor soon knows no leader.
        killed_at = time.monotonic()
        for i in others:
            c.kill(i)

        def unary_refused():
            try:
                kv.Range(etcdrpc.RangeRequest(key=b"k", serializable=True),
                         metadata=REQUIRE_LEADER, timeout=2)
                return False
            except grpc.RpcError as e:
                check(e.code() == grpc.StatusCode.UNAVAILABLE and
                      e.details() == "etcdserver: no leader", f"hasleader range: {e}")
                return True
        cluster.wait_until(unary_refused, 15, interval=0.2, what="etcdserver: no leader")
        # Streams get 3 election timeouts (3 s by default) without a leader.
        expect_end(w, "hasleader watch", timeout=20 - (time.monotonic() - killed_at))
        expect_end(ka, "hasleader keep-alive", timeout=20 - (time.monotonic() - killed_at))
        # A hasleader stream opened now is refused at once.
        late = Stream(watch.Watch, etcdrpc.WatchRequest(
            create_request=etcdrpc.WatchCreateRequest(key=b"k")), REQUIRE_LEADER)
        streams.append(late)
        expect_end(late, "hasleader watch opened without a leader", timeout=10)

        # Without the metadata, local reads are served; writes and
        # linearizable reads time out.
        r = kv.Range(etcdrpc.RangeRequest(key=b"k", serializable=True), timeout=5)
        check([kv.value for kv in r.kvs] == [b"v1"], f"serializable range: {r}")
        for what, call in (("put", lambda: kv.Put(etcdrpc.PutRequest(key=b"k", value=b"v2"),
                                                   timeout=30)),
                           ("linearizable range",
                            lambda: kv.Range(etcdrpc.RangeRequest(key=b"k"), timeout=30))):
            try:
                call()
                raise AssertionError(f"{what} succeeded without a quorum")
            except grpc.RpcError as e:
                check(e.code() == grpc.StatusCode.UNAVAILABLE and
                      e.details() == "etcdserver: request timed out", f"{what}: {e}")

        # Quorum back: a leader, and the same calls work again.
        for i in others:
            c.spawn(i)
        c.leader(timeout=30)
        cluster.wait_until(lambda: served_with_leader(kv), 20, interval=0.2,
                           what="hasleader range served again")
        w2 = Stream(watch.Watch, etcdrpc.WatchRequest(
            create_request=etcdrpc.WatchCreateRequest(key=b"k")), REQUIRE_LEADER)
        streams.append(w2)
        kind, created = w2.next(10)
        check(kind == "resp" and created.created, f"watch created again: {created}")
        kv.Put(etcdrpc.PutRequest(key=b"k", value=b"v3"), timeout=10)
        kind, got = w2.next(10)
        check(kind == "resp" and [e.kv.value for e in got.events] == [b"v3"],
              f"watch event after recovery: {got}")
        print("no-leader e2e: OK")
        return 0
    except Exception:
        c.print_log_tails()
        raise
    finally:
        for s in streams:
            s.close()
        c.close()


def served_with_leader(kv):
    try:
        kv.Range(etcdrpc.RangeRequest(key=b"k"), metadata=REQUIRE_LEADER, timeout=2)
        return True
    except grpc.RpcError:
        return False


if __name__ == "__main__":
    sys.exit(main())

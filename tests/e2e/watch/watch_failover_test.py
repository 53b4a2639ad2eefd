#!/usr/bin/python3
"""A watcher on a follower across a leader failover (3 members).

A python etcd3 watcher on a follower watches a prefix while a writer puts
keys through the other follower; the leader is killed with SIGKILL mid-way
and restarted later. The watcher must have seen every acknowledged put, in
revision order, no duplicates, and exactly what a fresh watch from the same
start revision replays from the follower's store afterwards (no gaps).
Bounded: well under 60 s.

    /usr/bin/python3 watch_failover_test.py --server build/bin/etcdpp
"""

import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

import etcd3  # noqa: E402



def _ignore_watcher_after_close(args, default=threading.excepthook):
    """python-etcd3 0.12's watcher thread dies with "Channel closed" once its
    client is closed at the end: not a failure."""
    if (args.thread is not None and args.thread.name.startswith("etcd3_watch_")
            and isinstance(args.exc_value, ValueError)):
        return
    default(args)


threading.excepthook = _ignore_watcher_after_close

PREFIX = "/failover-watch/"
WRITES = 300


def collect(c, start, count, timeout=30):
    """Events of a fresh watch on PREFIX from `start` (replayed history)."""
    got = queue.Queue()
    watch_id = c.add_watch_callback(PREFIX, got.put, range_end=etcd3.utils.increment_last_byte(
        PREFIX.encode()), start_revision=start)
    events = []
    deadline = time.monotonic() + timeout
    try:
        while len(events) < count and time.monotonic() < deadline:
            try:
                resp = got.get(timeout=0.5)
            except queue.Empty:
                continue
            if isinstance(resp, Exception):
                raise resp
            events += [(e.key, e.value, e.mod_revision) for e in resp.events]
    finally:
        c.cancel_watch(watch_id)
    return events


def main():
    args = cluster.server_arg_parser(__doc__.splitlines()[0]).parse_args()
    with cluster.Cluster(os.path.abspath(args.server), size=3) as cl:
        leader = cl.leader()
        followers = [i for i in range(3) if i != leader]
        watch_member, write_member = followers
        watcher = cl.client(watch_member)
        start = watcher.get_response("__probe__").header.revision + 1
        seen = queue.Queue()
        watch_id = watcher.add_watch_callback(
            PREFIX, seen.put, range_end=etcd3.utils.increment_last_byte(PREFIX.encode()),
            start_revision=start)

        acked = []  # (key, revision) of acknowledged puts
        writer = cl.client(write_member)
        for i in range(WRITES):
            if i == WRITES // 3:
                cl.kill(leader)
            if i == 2 * WRITES // 3:
                cl.restart(leader)
            key = f"{PREFIX}{i:05d}"
            deadline = time.monotonic() + 20
            while True:
                try:
                    acked.append((key.encode(), writer.put(key, str(i)).header.revision))
                    break
                except Exception:
                    # No leader for a moment: retry the same put (it may have
                    # been applied already; then the watcher sees it twice
                    # as two revisions, which is still history).
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

        last = max(r for _, r in acked)
        events = []
        deadline = time.monotonic() + 30
        while (not events or events[-1][2] < last) and time.monotonic() < deadline:
            try:
                resp = seen.get(timeout=0.5)
            except queue.Empty:
                continue
            if isinstance(resp, Exception):
                print(f"FAIL: watcher error {resp!r}")
                return 1
            events += [(e.key, e.value, e.mod_revision) for e in resp.events]
        watcher.cancel_watch(watch_id)

        revs = [r for _, _, r in events]
        failures = []
        if revs != sorted(set(revs)):
            failures.append("events out of order or duplicated")
        seen_set = {(k, r) for k, _, r in events}
        missing = [a for a in acked if a not in seen_set]
        if missing:
            failures.append(f"{len(missing)} acknowledged puts not seen, e.g. {missing[:3]}")
        replay = collect(cl.client(watch_member), start, len(events))
        if replay != events:
            failures.append(f"live events differ from the replayed history "
                            f"({len(events)} live, {len(replay)} replayed)")
        if failures:
            for f in failures:
                print("FAIL:", f)
            return 1
        print(f"ok: {len(events)} events seen on member {watch_member} across the failover "
              f"of member {leader}")
        return 0


if __name__ == "__main__":
    sys.exit(main())

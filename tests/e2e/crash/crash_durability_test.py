#!/usr/bin/python3
"""Crash durability: no acknowledged write is lost across kill -9.

Each round:
  1. W writer threads, each with its own python etcd3 client, write unique
     keys (crash/r<round>/w<writer>/<seq>) one request at a time and record
     every acknowledged write with its revision; half the writers use single
     puts, half 3-key transactions (<seq>/a, /b, /c);
  2. half-way through, a compaction at the current revision is requested;
     after a random short delay the server is killed with SIGKILL while the
     writers are mid-stream;
  3. the server restarts on the same data dir and the test checks that
       * every acknowledged put of every round so far is present with its
         value and with mod_revision == the acknowledged revision,
       * every transaction (acknowledged or not) is all-or-nothing,
       * each writer's acknowledged revisions were strictly increasing, and
         no two acknowledged requests share a revision,
       * an acknowledged compaction is still in force (reads below it fail),
       * the store's revision is >= every acknowledged revision, and a new
         write gets a revision greater than all of them.
Unacknowledged puts (in flight at the kill) may or may not survive: both are
correct. The whole run is bounded (default 3 rounds, well under 60 s).

    /usr/bin/python3 crash_durability_test.py --server build/bin/etcdpp [--seed N]
"""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

import etcd3  # noqa: E402

PUT_TIMEOUT_S = 3  # per put; a put still blocked at the kill fails within this


class Writer(threading.Thread):
    """Writes unique keys until stopped or until the first error (the kill).

    A put writer puts one key per request; a txn writer commits one
    transaction per request that puts three keys (<seq>/a, /b, /c) with one
    value, so a crash must leave either all three or none of them.
    """

    TXN_KEYS = ("a", "b", "c")

    def __init__(self, port, round_no, writer_no, stop, deadline, use_txn):
        super().__init__(daemon=True)
        self.port = port
        self.prefix = f"crash/r{round_no}/w{writer_no}/"
        self.stop = stop
        self.deadline = deadline
        self.use_txn = use_txn
        self.acked = []  # [(key, value, revision)] in acknowledgement order
        self.request_revisions = []  # one per acknowledged request
        self.error = None

    def run(self):
        client = etcd3.client(host="127.0.0.1", port=self.port, timeout=PUT_TIMEOUT_S)
        try:
            seq = 0
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                key = f"{self.prefix}{seq:06d}"
                value = f"{key}={random.getrandbits(64):016x}"
                if self.use_txn:
                    keys = [f"{key}/{k}" for k in self.TXN_KEYS]
                    t = client.transactions
                    ok, _ = client.transaction(compare=[],
                                               success=[t.put(k, value) for k in keys],
                                               failure=[])
                    # The txn's revision: its header's, read back for certainty.
                    rev = client.get(keys[0])[1].mod_revision
                    self.acked += [(k, value.encode(), rev) for k in keys]
                    self.request_revisions.append(rev)
                else:
                    resp = client.put(key, value)
                    self.acked.append((key, value.encode(), resp.header.revision))
                    self.request_revisions.append(resp.header.revision)
                seq += 1
        except Exception as e:  # expected once the server is killed
            self.error = e
        finally:
            client.close()


def check_txn_atomicity(stored, txn_prefixes):
    """Every transaction's three keys are all present with one revision, or none."""
    problems = []
    groups = {}
    for key, (value, rev) in stored.items():
        for prefix in txn_prefixes:
            if key.startswith(prefix):
                groups.setdefault(key.rsplit("/", 1)[0], []).append((value, rev))
    for group, members in groups.items():
        if len(members) != len(Writer.TXN_KEYS) or len(set(members)) != 1:
            problems.append(f"transaction {group} partially applied: {members}")
    return problems


def verify(c, acked_by_round, writers, compacted_rev):
    """Returns a list of human-readable violations (empty when durable)."""
    problems = []
    client = c.client()
    for round_no, acked in acked_by_round.items():
        stored = {m.key.decode(): (v, m.mod_revision)
                  for v, m in client.get_prefix(f"crash/r{round_no}/")}
        problems += check_txn_atomicity(stored, [w.prefix for w in writers if w.use_txn])
        for key, value, rev in acked:
            if key not in stored:
                problems.append(f"acknowledged put lost: {key} (revision {rev})")
            elif stored[key] != (value, rev):
                problems.append(f"{key}: stored {stored[key]}, acknowledged {(value, rev)}")
    for w in writers:
        revs = w.request_revisions
        if any(b <= a for a, b in zip(revs, revs[1:])):
            problems.append(f"{w.prefix}: acknowledged revisions not increasing: {revs[:20]}...")
    all_revs = [r for acked in acked_by_round.values() for _, _, r in acked]
    max_acked = max(all_revs, default=0)
    current = client.get_response("crash/probe").header.revision
    if current < max_acked:
        problems.append(f"store revision {current} < acknowledged revision {max_acked}")
    new_rev = client.put("crash/after-restart", "x").header.revision
    if new_rev <= max_acked:
        problems.append(f"new write got revision {new_rev} <= acknowledged {max_acked}")
    # A txn's keys share its revision; distinct requests never do.
    request_revs = [r for w in writers for r in w.request_revisions]
    if len(set(request_revs)) != len(request_revs):
        problems.append("two acknowledged requests share a revision")
    if compacted_rev:
        problems += verify_compaction(client, compacted_rev)
    return problems


def verify_compaction(client, compacted_rev):
    """An acknowledged compaction survives the crash."""
    from etcd3 import etcdrpc
    import grpc
    try:
        client.kvstub.Range(etcdrpc.RangeRequest(key=b"crash/", revision=compacted_rev - 1), 5)
        return [f"read at {compacted_rev - 1} succeeded after acknowledged "
                f"compaction at {compacted_rev}"]
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.OUT_OF_RANGE or "compacted" not in e.details():
            return [f"read below acknowledged compaction: {e.code()} {e.details()}"]
    client.kvstub.Range(etcdrpc.RangeRequest(key=b"crash/", revision=compacted_rev), 5)
    return []


def main():
    parser = cluster.server_arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-delay", type=float, default=1.5,
                        help="kill after a random delay in [0.2, max-delay] seconds")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"seed={seed} rounds={args.rounds} writers={args.writers}", flush=True)

    started = time.monotonic()
    acked_by_round = {}
    all_writers = []
    compacted_rev = 0
    failures = 0
    passed = 0
    with cluster.Cluster(args.server, size=1, keep=args.keep) as c:
        port = c.members[0].client_port
        for round_no in range(args.rounds):
            stop = threading.Event()
            deadline = time.monotonic() + 20
            # Odd writers commit 3-key transactions, even ones single puts.
            writers = [Writer(port, round_no, w, stop, deadline, use_txn=w % 2 == 1)
                       for w in range(args.writers)]
            for w in writers:
                w.start()
            delay = rng.uniform(0.2, args.max_delay)
            time.sleep(delay / 2)
            # An acknowledged compaction in the middle of the writes must survive too.
            try:
                rev = c.client().get_response("crash/probe").header.revision
                c.client().compact(rev)
                compacted_rev = rev
            except Exception as e:
                print(f"  note: compaction at {rev} not acknowledged: {e!r}", flush=True)
            time.sleep(delay / 2)
            c.kill(0)
            stop.set()
            for w in writers:
                w.join(timeout=PUT_TIMEOUT_S + 5)
                if w.is_alive():
                    print(f"FAIL writer {w.prefix} did not stop", flush=True)
                    return 1
            acked = [a for w in writers for a in w.acked]
            acked_by_round[round_no] = acked
            all_writers += writers

            t0 = time.monotonic()
            c.restart(0)
            restart_s = time.monotonic() - t0
            problems = verify(c, acked_by_round, all_writers, compacted_rev)
            total = sum(len(a) for a in acked_by_round.values())
            requests = sum(len(w.request_revisions) for w in writers)
            print(f"round {round_no}: killed after {delay:.2f}s, {requests} acked requests "
                  f"({len(acked)} keys) this round, {total} keys verified in all, compacted "
                  f"at {compacted_rev}, restart {restart_s:.2f}s, {len(problems)} problems",
                  flush=True)
            for p in problems[:20]:
                print("  FAIL " + p, flush=True)
            if problems:
                failures += 1
            else:
                passed += 1
            if not acked:
                print("  note: no write was acknowledged before the kill this round", flush=True)
    print(f"crash durability: {time.monotonic() - started:.1f}s")
    print(f"{passed} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

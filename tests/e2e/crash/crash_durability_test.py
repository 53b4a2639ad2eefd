#!/usr/bin/python3
"""Crash durability: no acknowledged write is lost across kill -9.

Each round:
  1. W writer threads, each with its own python etcd3 client, put unique keys
     (crash/r<round>/w<writer>/<seq>) one at a time and record every
     acknowledged put with the revision from its response header;
  2. after a random short delay the server is killed with SIGKILL while the
     writers are mid-stream;
  3. the server restarts on the same data dir and the test checks that
       * every acknowledged put of every round so far is present with its
         value and with mod_revision == the acknowledged revision,
       * each writer's acknowledged revisions were strictly increasing,
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
    """Puts unique keys until stopped or until the first error (the kill)."""

    def __init__(self, port, round_no, writer_no, stop, deadline):
        super().__init__(daemon=True)
        self.port = port
        self.prefix = f"crash/r{round_no}/w{writer_no}/"
        self.stop = stop
        self.deadline = deadline
        self.acked = []  # [(key, value, revision)] in acknowledgement order
        self.error = None

    def run(self):
        client = etcd3.client(host="127.0.0.1", port=self.port, timeout=PUT_TIMEOUT_S)
        try:
            seq = 0
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                key = f"{self.prefix}{seq:06d}"
                value = f"{key}={random.getrandbits(64):016x}"
                resp = client.put(key, value)
                self.acked.append((key, value.encode(), resp.header.revision))
                seq += 1
        except Exception as e:  # expected once the server is killed
            self.error = e
        finally:
            client.close()


def verify(c, acked_by_round, writers_acked):
    """Returns a list of human-readable violations (empty when durable)."""
    problems = []
    client = c.client()
    for round_no, acked in acked_by_round.items():
        stored = {m.key.decode(): (v, m.mod_revision)
                  for v, m in client.get_prefix(f"crash/r{round_no}/")}
        for key, value, rev in acked:
            if key not in stored:
                problems.append(f"acknowledged put lost: {key} (revision {rev})")
            elif stored[key] != (value, rev):
                problems.append(f"{key}: stored {stored[key]}, acknowledged {(value, rev)}")
    for name, acked in writers_acked:
        revs = [r for _, _, r in acked]
        if any(b <= a for a, b in zip(revs, revs[1:])):
            problems.append(f"{name}: acknowledged revisions not increasing: {revs[:20]}...")
    all_revs = [r for acked in acked_by_round.values() for _, _, r in acked]
    max_acked = max(all_revs, default=0)
    current = client.get_response("crash/probe").header.revision
    if current < max_acked:
        problems.append(f"store revision {current} < acknowledged revision {max_acked}")
    new_rev = client.put("crash/after-restart", "x").header.revision
    if new_rev <= max_acked:
        problems.append(f"new write got revision {new_rev} <= acknowledged {max_acked}")
    if len(set(all_revs)) != len(all_revs):
        problems.append("two acknowledged puts share a revision")
    return problems


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
    writers_acked = []
    failures = 0
    passed = 0
    with cluster.Cluster(args.server, size=1, keep=args.keep) as c:
        port = c.members[0].client_port
        for round_no in range(args.rounds):
            stop = threading.Event()
            deadline = time.monotonic() + 20
            writers = [Writer(port, round_no, w, stop, deadline) for w in range(args.writers)]
            for w in writers:
                w.start()
            delay = rng.uniform(0.2, args.max_delay)
            time.sleep(delay)
            c.kill(0)
            stop.set()
            for w in writers:
                w.join(timeout=PUT_TIMEOUT_S + 5)
                if w.is_alive():
                    print(f"FAIL writer {w.prefix} did not stop", flush=True)
                    return 1
            acked = [a for w in writers for a in w.acked]
            acked_by_round[round_no] = acked
            writers_acked += [(w.prefix, w.acked) for w in writers]

            t0 = time.monotonic()
            c.restart(0)
            restart_s = time.monotonic() - t0
            problems = verify(c, acked_by_round, writers_acked)
            total = sum(len(a) for a in acked_by_round.values())
            print(f"round {round_no}: killed after {delay:.2f}s, {len(acked)} acked puts "
                  f"this round, {total} verified in all, restart {restart_s:.2f}s, "
                  f"{len(problems)} problems", flush=True)
            for p in problems[:20]:
                print("  FAIL " + p, flush=True)
            if problems:
                failures += 1
            else:
                passed += 1
            if not acked:
                print("  note: no put was acknowledged before the kill this round", flush=True)
    print(f"crash durability: {time.monotonic() - started:.1f}s")
    print(f"{passed} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

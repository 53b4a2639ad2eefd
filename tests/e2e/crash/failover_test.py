#!/usr/bin/python3
"""Leader failover on a 3-member cluster: no acknowledged write is lost.

Each round:
  1. one writer thread per member puts unique keys through that member and
     records every acknowledged put with its header revision;
  2. after a random short delay the current leader is killed with SIGKILL;
     writers talking to it stop, the others keep writing;
  3. the survivors must elect a new leader and keep accepting writes;
  4. the killed member restarts on its data dir and catches up;
  5. every member must then serve (serializable, i.e. from its own state)
     every acknowledged put with its value and revision, and all members must
     hold identical contents under the test prefix.
Bounded: 2 rounds by default, well under 90 s.

    /usr/bin/python3 failover_test.py --server build/bin/etcdpp [--seed N]
"""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

import etcd3  # noqa: E402

PUT_TIMEOUT_S = 3


class Writer(threading.Thread):
    """Puts unique keys through one member until stopped or its first error."""

    def __init__(self, port, prefix, stop, deadline):
        super().__init__(daemon=True)
        self.port = port
        self.prefix = prefix
        self.stop = stop
        self.deadline = deadline
        self.acked = []  # [(key, value, revision)]
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
        except Exception as e:  # expected for the writer of the killed member
            self.error = e
        finally:
            client.close()


def member_contents(c, i):
    """{key: (value, mod_revision)} under failover/ as member i alone sees it."""
    return {m.key.decode(): (v, m.mod_revision)
            for v, m in c.client(i).get_prefix("failover/", serializable=True)}


def wait_caught_up(c, i, key, timeout=30):
    """Waits until member i serves `key` from its own state (serializable)."""
    cluster.wait_until(lambda: c.client(i).get(key, serializable=True)[0] is not None,
                       timeout, what=f"m{i} to catch up")


def main():
    parser = cluster.server_arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"seed={seed} rounds={args.rounds}", flush=True)

    started = time.monotonic()
    acked = []
    passed = failed = 0
    with cluster.Cluster(args.server, size=3, keep=args.keep) as c:
        for round_no in range(args.rounds):
            problems = []
            leader = c.leader()
            stop = threading.Event()
            deadline = time.monotonic() + 30
            writers = [Writer(m.client_port, f"failover/r{round_no}/m{i}/", stop, deadline)
                       for i, m in enumerate(c.members)]
            for w in writers:
                w.start()
            time.sleep(rng.uniform(0.3, 1.0))
            c.kill(leader)
            t0 = time.monotonic()
            try:
                new_leader = c.leader(timeout=20)
                election_s = time.monotonic() - t0
                if new_leader == leader:
                    problems.append("killed member still reported as leader")
            except TimeoutError as e:
                problems.append(f"no new leader: {e}")
                election_s = float("nan")
            # Survivors keep accepting writes after the election.
            survivor = next(i for i in range(3) if i != leader)
            try:
                after = c.client(survivor).put(f"failover/r{round_no}/after-kill", "x")
                acked.append((f"failover/r{round_no}/after-kill", b"x", after.header.revision))
            except Exception as e:
                problems.append(f"write through survivor m{survivor} failed: {e!r}")
            stop.set()
            for w in writers:
                w.join(timeout=PUT_TIMEOUT_S + 5)
                if w.is_alive():
                    problems.append(f"writer {w.prefix} did not stop")
            for w in writers:
                acked += w.acked
                revs = [r for _, _, r in w.acked]
                if any(b <= a for a, b in zip(revs, revs[1:])):
                    problems.append(f"{w.prefix}: acknowledged revisions not increasing")

            c.restart(leader)
            last_key = max(acked, key=lambda a: a[2])[0] if acked else None
            contents = []
            for i in range(3):
                if last_key:
                    wait_caught_up(c, i, last_key)
                contents.append(member_contents(c, i))
            for key, value, rev in acked:
                for i in range(3):
                    if contents[i].get(key) != (value, rev):
                        problems.append(f"m{i}: {key} is {contents[i].get(key)}, "
                                        f"acknowledged {(value, rev)}")
            if not (contents[0] == contents[1] == contents[2]):
                problems.append("members disagree on the contents of failover/")
            all_revs = [r for _, _, r in acked]
            if len(set(all_revs)) != len(all_revs):
                problems.append("two acknowledged puts share a revision")

            print(f"round {round_no}: killed leader m{leader}, new leader after "
                  f"{election_s:.2f}s, {len(acked)} acked puts verified on 3 members, "
                  f"{len(problems)} problems", flush=True)
            for p in problems[:20]:
                print("  FAIL " + p, flush=True)
            if problems:
                failed += 1
            else:
                passed += 1
    print(f"failover: {time.monotonic() - started:.1f}s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

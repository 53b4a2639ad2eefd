#!/usr/bin/python3
"""etcd's backend batch flags on etcdpp, end to end.

    /usr/bin/python3 backend_batch_test.py --server build/bin/etcdpp

What an operator relies on:
  * --backend-batch-interval holds answered writes in the open backend
    transaction: with an interval of an hour, puts are answered at once and
    the backend commit counter does not move for them, yet a get on the same
    member sees every one of them at once (a reader commits what it needs),
    and so does a watcher from an older revision; a watcher already there
    gets them at once, still without a commit; after a kill -9 the puts are
    all there (the WAL has them);
  * --backend-batch-limit commits the held transaction once that many
    entries wait in it;
  * --experimental-backend-commit-delay=0s still commits every batch;
  * giving both interval flags is refused at start, naming both.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

SERVER = None
KEEP = False
COMMITS = "etcd_disk_backend_commit_duration_seconds_count"


def metric(member, name):
    url = f"http://127.0.0.1:{member.client_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} is missing from /metrics")


class BackendBatchTest(unittest.TestCase):
    def test_an_hour_long_interval_holds_commits_but_not_reads(self):
        with cluster.Cluster(SERVER, size=1, keep=KEEP,
                             extra_flags=["--backend-batch-interval=1h"]) as c:
            m = c.members[0]
            client = c.client(0)
            client.put("held/warmup", "w")
            client.get("held/warmup")  # commits the warm-up and the election's entries
            before = metric(m, COMMITS)
            for i in range(20):
                client.put(f"held/{i}", f"v{i}")
            # Answered, yet no commit: they wait for the interval or a reader.
            self.assertEqual(metric(m, COMMITS), before)
            value, meta = client.get("held/19")
            self.assertEqual(value, b"v19")
            self.assertEqual(metric(m, COMMITS), before + 1)
            got = {kv.key.decode(): v.decode() for v, kv in client.get_prefix("held/")}
            self.assertEqual(len(got), 21)
            # A watcher from an old revision sees the held put too (etcdctl
            # 3.4 watches until its timeout ends it).
            client.put("held/w", "1")
            w = subprocess.run(["timeout", "3", "etcdctl", f"--endpoints={m.endpoint}",
                                "watch", "held/w", f"--rev={meta.mod_revision}"],
                               capture_output=True, text=True, timeout=30,
                               env=dict(os.environ, ETCDCTL_API="3"))
            self.assertEqual(w.stdout, "PUT\nheld/w\n1\n", w.stderr[-300:])
            # Held, answered puts survive kill -9: the WAL has them.
            for i in range(20, 30):
                client.put(f"held/{i}", f"v{i}")
            c.kill(0)
            c.restart(0)
            client = c.client(0)
            got = {kv.key.decode(): v.decode() for v, kv in client.get_prefix("held/")}
            self.assertEqual(len(got), 32)
            self.assertEqual(got["held/29"], "v29")

    def test_a_live_watcher_gets_held_puts_without_their_commit(self):
        with cluster.Cluster(SERVER, size=1, keep=KEEP,
                             extra_flags=["--backend-batch-interval=1h"]) as c:
            m = c.members[0]
            client = c.client(0)
            got = []
            lock = threading.Lock()
            arrived = threading.Condition(lock)

            def on_response(response):
                with lock:
                    got.extend((e.key.decode(), e.value.decode()) for e in response.events)
                    arrived.notify_all()

            # Creating the watch commits what was held before it.
            watch_id = client.add_watch_prefix_callback("live/", on_response)
            try:
                before = metric(m, COMMITS)
                for i in range(10):
                    client.put(f"live/{i}", f"v{i}")
                with lock:
                    self.assertTrue(arrived.wait_for(lambda: len(got) >= 10, timeout=10),
                                    f"events so far: {got}")
                    self.assertEqual(got, [(f"live/{i}", f"v{i}") for i in range(10)])
                # The watcher did not need the commit, so none happened.
                self.assertEqual(metric(m, COMMITS), before)
            finally:
                client.cancel_watch(watch_id)

    def test_the_limit_commits_a_full_batch(self):
        with cluster.Cluster(SERVER, size=1, keep=KEEP,
                             extra_flags=["--backend-batch-interval=1h",
                                          "--backend-batch-limit=5"]) as c:
            m = c.members[0]
            client = c.client(0)
            client.put("lim/warmup", "w")
            client.get("lim/warmup")
            before = metric(m, COMMITS)
            for i in range(12):
                client.put(f"lim/{i}", "v")
            # One sequential put per batch: the 5th and the 10th fill it.
            self.assertEqual(metric(m, COMMITS), before + 2)

    def test_zero_commit_delay_commits_every_batch(self):
        with cluster.Cluster(SERVER, size=1, keep=KEEP,
                             extra_flags=["--experimental-backend-commit-delay=0s"]) as c:
            m = c.members[0]
            client = c.client(0)
            client.put("zero/warmup", "w")
            before = metric(m, COMMITS)
            for i in range(5):
                client.put(f"zero/{i}", "v")
            # The commit follows each answer closely, not before it.
            cluster.wait_until(lambda: metric(m, COMMITS) >= before + 5, timeout=10,
                               what="a commit per put")

    def test_both_interval_flags_are_refused(self):
        port, peer = cluster.free_port(), cluster.free_port()
        data_dir = tempfile.mkdtemp(prefix="etcdpp-batch-flags-")
        try:
            r = subprocess.run([SERVER, "--data-dir", data_dir,
                                "--listen-client-urls", f"http://127.0.0.1:{port}",
                                "--advertise-client-urls", f"http://127.0.0.1:{port}",
                                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                                "--initial-cluster", f"default=http://127.0.0.1:{peer}",
                                "--backend-batch-interval=10ms",
                                "--experimental-backend-commit-delay=0s"],
                               capture_output=True, text=True, timeout=30)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
        out = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0, out[-500:])
        self.assertIn("--backend-batch-interval and --experimental-backend-commit-delay", out)


if __name__ == "__main__":
    p = cluster.server_arg_parser(__doc__)
    args, rest = p.parse_known_args()
    SERVER, KEEP = args.server, args.keep
    start = time.monotonic()
    try:
        unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
    finally:
        print(f"({time.monotonic() - start:.0f} s)")

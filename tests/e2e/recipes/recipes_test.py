#!/usr/bin/python3
"""The coordination recipes of docs/recipes.md, run as written there.

    /usr/bin/python3 recipes_test.py --server build/bin/etcdpp --ctl build/bin/etcdppctl \
        [--reference /usr/bin/etcd]

Every ```python block of the page that starts with "# recipe:" is executed,
in page order, into one namespace, and every ```sh block so headed is saved
as a script; the tests below then use those functions and scripts as a
service would, against a single member of --server (and, with --reference,
the same tests against etcd 3.4: the recipes are etcd's patterns, so they
must hold on both). `etcdppctl` in the scripts is --ctl.

Waits are bounded and wait on conditions (a Condition notified by the watch
callback, or cluster.wait_until), never on fixed sleeps, except where time
itself is the subject (a lease that must lapse).
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

RECIPES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "docs",
                       "recipes.md")
SERVERS = []  # (label, binary)
CTL = None


def load_recipes():
    """(namespace with the python recipes, {name: sh script text})."""
    with open(RECIPES) as f:
        page = f.read()
    namespace = {}
    python = [b for b in re.findall(r"```python\n(.*?)```", page, flags=re.S)
              if b.startswith("# recipe:")]
    if len(python) < 6:
        raise AssertionError(f"expected the six python recipes in {RECIPES}, found {len(python)}")
    for block in python:
        exec(compile(block, f"{RECIPES}: {block.splitlines()[0]}", "exec"), namespace)
    scripts = {}
    for block in re.findall(r"```sh\n(.*?)```", page, flags=re.S):
        m = re.match(r"# recipe: (.*)\n", block)
        if m:
            scripts[m.group(1)] = block
    return namespace, scripts


class Waiter:
    """A value updated by callbacks on other threads, with a bounded wait."""

    def __init__(self, initial):
        self.cond = threading.Condition()
        self.value = initial

    def set(self, value):
        with self.cond:
            self.value = value
            self.cond.notify_all()

    def update(self, fn):
        with self.cond:
            fn(self.value)
            self.cond.notify_all()

    def wait(self, predicate, timeout, what):
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self.value), timeout):
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                     f"last value: {self.value!r}")
            return self.value


class RecipesTest(unittest.TestCase):
    server = None

    @classmethod
    def setUpClass(cls):
        cls.r, cls.scripts = load_recipes()
        cls.cluster = cluster.Cluster(cls.server, size=1).__enter__()
        cls.client = cls.cluster.client(0)
        cls.bin_dir = tempfile.mkdtemp(prefix="recipes-bin-")
        # The scripts call `etcdppctl`; it is --ctl, aimed at the member.
        os.symlink(os.path.abspath(CTL), os.path.join(cls.bin_dir, "etcdppctl"))
        cls.env = dict(os.environ, PATH=cls.bin_dir + os.pathsep + os.environ["PATH"],
                       ETCDCTL_ENDPOINTS=cls.cluster.members[0].endpoint)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    def sh(self, name, *args, background=False):
        path = os.path.join(self.bin_dir, name.replace(" ", "-") + ".sh")
        with open(path, "w") as f:
            f.write(self.scripts[name])
        cmd = ["sh", path] + list(args)
        if background:
            return subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, start_new_session=True)
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, f"{name}: {r.stderr}")
        return r.stdout

    def test_registration_and_discovery(self):
        view = Waiter({})
        watch = self.r["discover"](self.client, "api", view.set)
        try:
            stop_a = self.r["register"](self.client, "api", "a", "10.0.0.1:80", ttl=2)
            # "b" registers from a process that is then killed: nobody renews its lease.
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD_REGISTRATION, RECIPES,
                 self.cluster.members[0].endpoint], stdout=subprocess.PIPE, text=True)
            try:
                self.assertEqual(child.stdout.readline().strip(), "registered")
                view.wait(lambda v: v == {"a": "10.0.0.1:80", "b": "10.0.0.2:80"}, 10,
                          "both instances discovered")
                # "a" outlives several TTLs through its renewals meanwhile.
                child.send_signal(signal.SIGKILL)
                child.wait(10)
                lapsed_at = time.monotonic()
                view.wait(lambda v: v == {"a": "10.0.0.1:80"}, 15, "the killed instance gone")
                # Gone within its TTL (2 s), with room for the leader's expiry
                # pass and a loaded machine; what matters is that it goes.
                self.assertLess(time.monotonic() - lapsed_at, 2 + 6)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            stop_a.set()
            view.wait(lambda v: v == {}, 10, "the stopped instance withdrawn at once")
        finally:
            self.client.cancel_watch(watch)

    def test_register_from_a_shell(self):
        proc = self.sh("register from a shell", background=True)
        try:
            cluster.wait_until(
                lambda: self.client.get("/services/web/shell-1")[0] == b"127.0.0.1:8081",
                timeout=10, what="the shell registration")
            # The keep-alive runs in the background of the script's process group.
            lease = self.client.get("/services/web/shell-1")[1].lease_id
            self.assertNotEqual(lease, 0)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        self.client.revoke_lease(lease)
        self.assertEqual(self.client.get("/services/web/shell-1")[0], None)

    def test_configuration_follows_across_a_reconnect(self):
        self.client.put("/config/app/mode", "blue")
        follower = self.r["ConfigFollower"](self.client, "/config/app/")
        self.assertEqual(follower.values, {"/config/app/mode": "blue"})
        follower.connect()
        self.client.put("/config/app/mode", "green")
        with follower.lock:
            self.assertTrue(follower.lock.wait_for(
                lambda: follower.values.get("/config/app/mode") == "green", 10))
        follower.disconnect()
        # Changes while it is away, then it comes back: all of them, in order.
        self.client.put("/config/app/limit", "10")
        self.client.put("/config/app/mode", "red")
        self.client.delete("/config/app/limit")
        last = self.client.put("/config/app/size", "3").header.revision
        follower.connect()
        try:
            with follower.lock:
                self.assertTrue(follower.lock.wait_for(lambda: follower.revision == last, 10),
                                follower.revision)
                self.assertEqual(follower.values,
                                 {"/config/app/mode": "red", "/config/app/size": "3"})
        finally:
            follower.disconnect()

    def test_pub_sub_every_subscriber_sees_every_message_in_order(self):
        inboxes = [Waiter([]) for _ in range(3)]
        watches = [self.r["subscribe"](self.client, "news",
                                       lambda pub, msg, box=box: box.update(
                                           lambda v: v.append((pub, msg))))
                   for box in inboxes]
        try:
            sent = []
            for i in range(20):
                publisher = f"p{i % 2}"
                self.r["publish"](self.client, "news", publisher, f"m{i}")
                sent.append((publisher, f"m{i}"))
            for box in inboxes:
                self.assertEqual(box.wait(lambda v: len(v) >= 20, 10, "20 messages"), sent)
        finally:
            for w in watches:
                self.client.cancel_watch(w)

    def test_work_queue_claims_each_item_exactly_once(self):
        items = [f"job-{i}" for i in range(40)]
        for item in items:
            self.r["enqueue"](self.client, "jobs", item)
        claimed = [[] for _ in range(4)]
        errors = []

        def worker(mine):
            try:
                client = self.cluster.client(0)
                while True:
                    item = self.r["claim"](client, "jobs")
                    if item is None:
                        return
                    mine.append(item)
            except Exception as e:  # reported below, on the test's thread
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(c,)) for c in claimed]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        every = [item for mine in claimed for item in mine]
        self.assertEqual(sorted(every), sorted(items), "each item claimed exactly once")
        # One worker alone takes items in the order they were queued.
        for item in ("x", "y", "z"):
            self.r["enqueue"](self.client, "order", item)
        self.assertEqual([self.r["claim"](self.client, "order") for _ in range(4)],
                         ["x", "y", "z", None])

    def test_barrier(self):
        self.r["hold"](self.client, "deploy")
        self.assertFalse(self.r["wait_for_release"](self.client, "deploy", 0.5))
        result = Waiter(None)
        waiter = threading.Thread(target=lambda: result.set(
            self.r["wait_for_release"](self.client, "deploy", 20)))
        waiter.start()
        # Rewriting the barrier does not release it.
        self.r["hold"](self.client, "deploy")
        self.r["release"](self.client, "deploy")
        self.assertTrue(result.wait(lambda v: v is not None, 25, "the waiter released"))
        waiter.join(5)
        self.assertTrue(self.r["wait_for_release"](self.client, "deploy", 0.1))

    def read_lines(self, proc, n, timeout, what):
        """The next n lines proc prints, or a failure after timeout seconds."""
        lines = Waiter([])

        def reader():
            for _ in range(n):
                line = proc.stdout.readline()
                if not line:
                    return
                lines.update(lambda v: v.append(line.rstrip("\n")))
        threading.Thread(target=reader, daemon=True).start()
        return lines.wait(lambda v: len(v) >= n, timeout, what)

    def stop_script(self, proc):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def test_sh_pub_sub_every_subscriber_sees_every_message_in_order(self):
        first = self.client.get_response("/topics/").header.revision + 1
        subscribers = [self.sh("subscribe from a shell", "shnews", str(first), background=True)
                       for _ in range(2)]
        try:
            sent = []
            for i in range(12):
                publisher = f"p{i % 3}"
                self.sh("publish from a shell", "shnews", publisher, f"message {i}")
                sent.append(f"{publisher} message {i}")
            for proc in subscribers:
                self.assertEqual(self.read_lines(proc, len(sent), 15, "12 messages"), sent)
        finally:
            for proc in subscribers:
                self.stop_script(proc)

    def test_sh_configuration_follows_across_a_restart(self):
        bookmark = os.path.join(self.bin_dir, "config.bookmark")
        self.client.put("/config/sh/mode", "blue")
        follower = self.sh("follow configuration from a shell", "/config/sh/", bookmark,
                           background=True)
        try:
            # It follows from the revision it read first (its bookmark).
            cluster.wait_until(lambda: open(bookmark).read().endswith("\n"), timeout=10,
                               what="the first bookmark")
            rev = self.client.put("/config/sh/mode", "green").header.revision
            self.assertEqual(self.read_lines(follower, 1, 15, "the first change"),
                             [f'{rev} PUT "/config/sh/mode" "green"'])
            # Recorded after it is printed: a change killed in between is
            # printed again (the page says so); this test kills it after.
            cluster.wait_until(lambda: open(bookmark).read().strip() == str(rev), timeout=10,
                               what="the bookmark at the first change")
        finally:
            self.stop_script(follower)
        # Changes while it is gone, then it starts again from its bookmark.
        expected = [
            f'{self.client.put("/config/sh/limit", "10").header.revision} '
            'PUT "/config/sh/limit" "10"',
            f'{self.client.put("/config/sh/mode", "red").header.revision} '
            'PUT "/config/sh/mode" "red"',
            f'{self.client.delete("/config/sh/limit", return_response=True).header.revision} '
            'DELETE "/config/sh/limit" ""',
        ]
        follower = self.sh("follow configuration from a shell", "/config/sh/", bookmark,
                           background=True)
        try:
            got = self.read_lines(follower, 3, 15, "the changes made while it was gone")
            self.assertEqual(got, expected)
            last = self.client.put("/config/sh/size", "3").header.revision
            self.assertEqual(self.read_lines(follower, 1, 15, "a change after the restart"),
                             [f'{last} PUT "/config/sh/size" "3"'])
            cluster.wait_until(lambda: open(bookmark).read().strip() == str(last), timeout=10,
                               what="the bookmark at the last change")
        finally:
            self.stop_script(follower)

    def test_sh_work_queue_claims_each_item_exactly_once(self):
        items = [f"job-{i}" for i in range(24)]
        for item in items:
            self.sh("work queue from a shell", "add", "shjobs", item)
        path = os.path.join(self.bin_dir, "work-queue-from-a-shell.sh")
        loop = f'while item=$(sh "{path}" claim shjobs) && [ -n "$item" ]; do echo "$item"; done'
        workers = [subprocess.Popen(["sh", "-c", loop], env=self.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(3)]
        claimed = []
        for w in workers:
            out, err = w.communicate(timeout=120)
            self.assertEqual(w.returncode, 0, err)
            claimed += out.split()
        self.assertEqual(sorted(claimed), sorted(items), "each item claimed exactly once")
        for item in ("x", "y", "z"):
            self.sh("work queue from a shell", "add", "shorder", item)
        self.assertEqual([self.sh("work queue from a shell", "claim", "shorder").strip()
                          for _ in range(4)], ["x", "y", "z", ""])

    def test_sh_barrier(self):
        self.assertEqual(self.sh("wait at a barrier from a shell", "shdeploy"), "")
        self.client.put("/barriers/shdeploy", "held")
        waiter = self.sh("wait at a barrier from a shell", "shdeploy", background=True)
        try:
            # Rewriting the barrier does not release it; deleting it does.
            self.client.put("/barriers/shdeploy", "held")
            self.assertIsNone(waiter.poll())
            self.client.delete("/barriers/shdeploy")
            self.assertEqual(waiter.wait(15), 0, waiter.stderr.read())
        finally:
            self.stop_script(waiter)

    def test_leader_writes_only_while_it_leads(self):
        elect = subprocess.Popen([CTL, "elect", "svc", "node-a"], env=self.env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            key = elect.stdout.readline().strip()
            self.assertRegex(key, r"^svc/[0-9a-f]+$")
            self.assertEqual(elect.stdout.readline().strip(), "node-a")
            token = self.sh("leader token", key).strip()
            self.assertRegex(token, r"^\d+$")
            out = self.sh("fenced write as leader", key, token, "first")
            self.assertEqual(out.splitlines()[0], "SUCCESS")
            self.assertEqual(self.client.get("/config/leader-wrote")[0], b"first")
            elect.send_signal(signal.SIGINT)  # resigns: the key is deleted
            elect.wait(15)
            cluster.wait_until(lambda: self.client.get(key)[0] is None, timeout=10,
                               what="the election key gone")
            out = self.sh("fenced write as leader", key, token, "late")
            self.assertEqual(out.splitlines()[0], "FAILURE")
            self.assertEqual(self.client.get("/config/leader-wrote")[0], b"first")
        finally:
            if elect.poll() is None:
                elect.kill()
                elect.wait()


# A separate process registers instance "b" with the recipe and keeps it
# alive until killed.
CHILD_REGISTRATION = r'''
import os, re, sys, threading
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
import etcd3
page = open(sys.argv[1]).read()
ns = {}
block = next(b for b in re.findall(r"```python\n(.*?)```", page, flags=re.S)
             if b.startswith("# recipe: service registration"))
exec(block, ns)
host, port = sys.argv[2].rsplit(":", 1)
client = etcd3.client(host=host, port=int(port))
ns["register"](client, "api", "b", "10.0.0.2:80", ttl=2)
print("registered", flush=True)
threading.Event().wait()
'''


def quiet_closed_watchers(args):
    """python etcd3's watcher thread may try to reopen its stream after the
    test closed the client; that is the client's teardown, not a failure."""
    if isinstance(args.exc_value, ValueError) and "Channel closed" in str(args.exc_value):
        return
    threading.__excepthook__(args)


def main():
    global CTL
    threading.excepthook = quiet_closed_watchers
    p = cluster.server_arg_parser(__doc__)
    p.add_argument("--ctl", required=True, help="etcdppctl binary the sh recipes call")
    p.add_argument("--reference", help="also run every recipe against this etcd binary")
    args, rest = p.parse_known_args()
    CTL = args.ctl
    if cluster.try_import_etcd3() is None:
        sys.exit("python etcd3 is required (Debian: python3-etcd3, under /usr/bin/python3)")
    servers = [("server", args.server)]
    if args.reference:
        servers.append(("reference", args.reference))
    ok = True
    for label, binary in servers:
        print(f"== recipes against {label}: {binary}", flush=True)
        RecipesTest.server = binary
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(RecipesTest)
        ok &= unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

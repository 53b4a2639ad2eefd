#!/usr/bin/python3
"""etcdctl 3.4 `lock` and `elect` against a server, transcripts compared with etcd 3.4.

    /usr/bin/python3 etcdctl_lock_test.py --server build/bin/etcdpp [--reference /usr/bin/etcd]

etcdctl's lock and elect run etcd's client-side recipes (KV, Lease, Watch),
so this checks what they rely on: a waiter queues behind the holder and gets
the lock when the holder unlocks or dies (its lease expires); the command
run under the lock sees ETCD_LOCK_KEY / ETCD_LOCK_REV; an observer sees each
new leader. With --reference the same scenarios run against etcd 3.4 and the
transcripts must be equal once lease IDs are masked (revisions are not:
the same sequence of requests must produce the same revisions).

Every wait is bounded; a process's output is read line by line from a
thread, and "still waiting" is checked as "its key is queued and it has not
exited", never by sleeping.
"""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

SERVER = None
REFERENCE = None
RECIPES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "docs",
                       "recipes.md")
LEASE_HEX = re.compile(r"/[0-9a-f]{1,16}\b")


def mask(text):
    return LEASE_HEX.sub("/<lease>", text)


class Ctl:
    """A long-running etcdctl whose stdout lines are read as they come."""

    def __init__(self, endpoint, *args):
        self.proc = subprocess.Popen([cluster.ETCDCTL, "--endpoints", endpoint] + list(args),
                                     env=cluster.etcdctl_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self, timeout=20):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from etcdctl in {timeout}s") from None
        if line is None:
            raise AssertionError(f"etcdctl exited ({self.proc.wait()}): {self.proc.stderr.read()}")
        return line

    def running(self):
        return self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def finish(self, timeout=20):
        """Exit code and the rest of stdout and stderr."""
        rc = self.proc.wait(timeout=timeout)
        rest = []
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                break
            rest.append(line)
        return rc, rest, self.proc.stderr.read()

    def kill(self):
        if self.running():
            self.proc.kill()
        self.proc.wait(timeout=10)


def fenced_write_script():
    """The fenced-write.sh example of docs/recipes.md, as written there."""
    with open(RECIPES) as f:
        blocks = re.findall(r"```sh\n(.*?)```", f.read(), flags=re.S)
    return next(b for b in blocks if b.startswith("# fenced-write.sh"))


def run_scenarios(server, check):
    """Runs every scenario on a fresh single-member cluster of `server`;
    returns the transcript. `check` is the TestCase that asserts semantics."""
    out = []
    with cluster.Cluster(server, size=1, extra_flags=[
            "--heartbeat-interval", "100", "--election-timeout", "500"]) as c:
        ep = c.members[0].endpoint

        def ctl(*args):
            r = c.etcdctl(*args, timeout=30)
            out.append(f"$ etcdctl {' '.join(args)}")
            out.extend(mask(r.stdout).splitlines())
            out.extend("stderr: " + line for line in mask(r.stderr).splitlines())
            out.append(f"exit {r.returncode}")
            return r

        def queued(prefix):
            r = c.etcdctl("get", "--prefix", prefix + "/", "--keys-only", check=True)
            return [k for k in r.stdout.splitlines() if k]

        def wait_queued(prefix, n):
            cluster.wait_until(lambda: len(queued(prefix)) == n, timeout=20,
                               what=f"{n} contenders queued under {prefix}/")

        # 1. A command under the lock: it sees the key and its revision; the
        #    lock is released when it exits, with its exit status reported.
        r = ctl("lock", "cmdlock", "--", "sh", "-c", "echo hi $ETCD_LOCK_KEY $ETCD_LOCK_REV")
        check.assertEqual(r.returncode, 0, r.stderr)
        m = re.fullmatch(r"hi (cmdlock/[0-9a-f]+) (\d+)\n", r.stdout)
        check.assertIsNotNone(m, r.stdout)
        check.assertEqual(queued("cmdlock"), [])
        r = ctl("lock", "cmdlock", "--", "sh", "-c", "exit 3")
        check.assertEqual((r.returncode, r.stderr), (1, "Error: exit status 3\n"))

        # 2. Two contenders: the second waits until the first unlocks.
        holder = Ctl(ep, "lock", "--ttl", "5", "pair")
        try:
            held = holder.line()
            check.assertRegex(held, r"^pair/[0-9a-f]+$")
            out.append("holder: " + mask(held))
            waiter = Ctl(ep, "lock", "--ttl", "5", "pair", "--", "sh", "-c",
                         "echo got $ETCD_LOCK_KEY")
            wait_queued("pair", 2)
            check.assertTrue(waiter.running(), "the waiter got the lock while it was held")
            holder.signal(signal.SIGTERM)
            rc, rest, err = holder.finish()
            out.append(f"holder exit {rc} {rest} {err!r}")
            rc, rest, err = waiter.finish()
            out.append(f"waiter exit {rc} {mask(str(rest))} {err!r}")
            check.assertEqual(rc, 0, err)
            check.assertEqual(len(rest), 1)
            check.assertNotEqual(rest[0], "got " + held)
            check.assertRegex(rest[0], r"^got pair/[0-9a-f]+$")
            check.assertEqual(queued("pair"), [])
        finally:
            holder.kill()

        # 3. The holder is killed (-9): its lease expires and the waiter gets the lock.
        holder = Ctl(ep, "lock", "--ttl", "2", "crash")
        waiter = None
        try:
            held = holder.line()
            out.append("holder: " + mask(held))
            waiter = Ctl(ep, "lock", "--ttl", "2", "crash", "--", "sh", "-c",
                         "echo got $ETCD_LOCK_KEY")
            wait_queued("crash", 2)
            check.assertTrue(waiter.running())
            holder.kill()
            rc, rest, err = waiter.finish(timeout=30)
            out.append(f"waiter exit {rc} {mask(str(rest))} {err!r}")
            check.assertEqual(rc, 0, err)
            check.assertRegex(rest[0], r"^got crash/[0-9a-f]+$")
            check.assertNotEqual(rest[0], "got " + held)
        finally:
            holder.kill()
            if waiter:
                waiter.kill()

        # 4. Election: a leader with a proposal, an observer, a second
        #    candidate that leads once the first resigns (SIGINT).
        leader = Ctl(ep, "elect", "vote", "p1")
        observer = candidate = None
        try:
            first = [leader.line(), leader.line()]
            check.assertRegex(first[0], r"^vote/[0-9a-f]+$")
            check.assertEqual(first[1], "p1")
            out.append("leader: " + mask(str(first)))
            observer = Ctl(ep, "elect", "-l", "vote")
            check.assertEqual([observer.line(), observer.line()], first)
            candidate = Ctl(ep, "elect", "vote", "p2")
            wait_queued("vote", 2)
            check.assertTrue(candidate.running())
            leader.signal(signal.SIGINT)
            rc, rest, err = leader.finish()
            out.append(f"leader exit {rc} {rest} {err!r}")
            second = [candidate.line(), candidate.line()]
            check.assertEqual(second[1], "p2")
            check.assertNotEqual(second[0], first[0])
            out.append("candidate: " + mask(str(second)))
            check.assertEqual([observer.line(), observer.line()], second)
            out.append("observer saw both leaders")
            candidate.signal(signal.SIGINT)
            out.append(f"candidate exit {candidate.finish()[0]}")
            observer.signal(signal.SIGINT)
            out.append(f"observer exit {observer.finish()[0]}")
            check.assertEqual(queued("vote"), [])
        finally:
            for p in (leader, observer, candidate):
                if p:
                    p.kill()

        # 5. The fenced write of docs/recipes.md: it succeeds while the lock is
        #    held; the same compare from a holder whose key is gone fails.
        script = os.path.join(c.base_dir, "fenced-write.sh")
        with open(script, "w") as f:
            f.write(fenced_write_script())
        r = subprocess.run([cluster.ETCDCTL, "lock", "--ttl", "10", "jobs", "--", "sh", script],
                           env=dict(cluster.etcdctl_env(), ETCDCTL_ENDPOINTS=ep),
                           capture_output=True, text=True, timeout=30)
        out.append(f"fenced-write.sh under the lock: exit {r.returncode} {r.stdout!r} {r.stderr!r}")
        check.assertEqual((r.returncode, r.stdout), (0, "SUCCESS\n\nOK\n"), r.stderr)
        check.assertEqual(c.etcdctl("get", "counter", "--print-value-only").stdout, "42\n")
        stale = 'create("jobs/694d1b2c3d4e5f60") = "5"\n\nput counter 13\n\n\n'
        r = c.etcdctl("txn", stdin=stale)
        out.append(f"stale fenced write: exit {r.returncode} {r.stdout!r}")
        check.assertEqual(r.stdout, "FAILURE\n")
        check.assertEqual(c.etcdctl("get", "counter", "--print-value-only").stdout, "42\n")

        # 6. Client-side usage error, same exit code and message.
        ctl("elect", "vote")
        ctl("get", "--prefix", "", "--keys-only")
    return out


class EtcdctlLockTest(unittest.TestCase):
    maxDiff = None

    def test_lock_and_elect_transcripts(self):
        ours = run_scenarios(SERVER, self)
        if REFERENCE:
            theirs = run_scenarios(REFERENCE, self)
            self.assertEqual(ours, theirs)
        print("\n".join(ours))


def main():
    global SERVER, REFERENCE
    parser = cluster.server_arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--reference", help="etcd 3.4 binary whose transcript must match")
    args, _ = parser.parse_known_args()
    SERVER = os.path.abspath(args.server)
    REFERENCE = os.path.abspath(args.reference) if args.reference else None
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed} passed, {failed} failed")
    return 0 if result.wasSuccessful() and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

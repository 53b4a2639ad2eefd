#!/usr/bin/python3
"""etcdppctl make-mirror and check perf against etcdpp, in seconds.

make-mirror runs between two single-member etcdpp servers: the initial copy
and live updates (a put, a delete, a two-key transaction) must reach the
destination with the keys named as --prefix/--dest-prefix/--no-dest-prefix
say, and the running total lines must count them. check perf runs for two
seconds (ETCDPPCTL_CHECK_PERF_SECONDS) and its verdict lines must have
etcdctl 3.4's shape, and so must those of a check datascale --load s
(10000 puts). Argument errors are compared byte for byte with etcdctl
against the reference etcd.

    /usr/bin/python3 ctl_mirror_perf_test.py --etcdppctl build/bin/etcdppctl \
        --server build/bin/etcdpp --etcdctl /usr/bin/etcdctl --server-cmd /usr/bin/etcd
"""

import argparse
import base64
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etcd_launcher  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(tool, endpoint, *args, env=None, timeout=60):
    full_env = dict(os.environ, ETCDCTL_API="3")
    full_env.update(env or {})
    p = subprocess.run([tool, "--endpoints", endpoint] + list(args), capture_output=True,
                       env=full_env, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def dump(tool, endpoint, prefix):
    """{key: value} of every key under prefix."""
    rc, out, err = run(tool, endpoint, "get", prefix, "--prefix", "-w", "json")
    assert rc == 0, err
    kvs = json.loads(out).get("kvs", [])
    return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
            for kv in kvs}


def wait_for(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


class Mirror:
    """A running make-mirror whose stdout lines are read as they come."""

    def __init__(self, tool, source, dest, *flags):
        env = dict(os.environ, ETCDCTL_API="3", ETCDPPCTL_MIRROR_REPORT_INTERVAL="1")
        self.proc = subprocess.Popen([tool, "--endpoints", source, "make-mirror"] + list(flags) +
                                     [dest], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env)
        self.buffer = b""

    def wait_total(self, total, timeout=20):
        """Reads report lines until one says `total`; every line must be a number."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                self.buffer += chunk
            *lines, self.buffer = self.buffer.split(b"\n")
            for line in lines:
                if not re.fullmatch(rb"\d+", line):
                    check(False, "make-mirror report line is a number: %r" % line)
                    return False
                if int(line) == total:
                    return True
        check(False, "make-mirror reported a total of %d" % total)
        return False

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        return self.proc.stderr.read().decode()


def test_mirror(tool, src, dst, flags, dest_name):
    """Mirrors a/ with `flags`; dest_name maps a source key to its copy."""
    label = "make-mirror " + " ".join(flags)
    expected = {dest_name(k): v for k, v in dump(tool, src, "a/").items()}
    m = Mirror(tool, src, dst, "--prefix", "a/", *flags)
    try:
        # The total counts every copy and every later put or delete.
        check(m.wait_total(len(expected)), label + ": initial copy counted")
        check(wait_for(lambda: all(dump(tool, dst, k).get(k) == v for k, v in expected.items())),
              label + ": initial copy arrived")
        run(tool, src, "put", "a/live", "new")
        run(tool, src, "put", "b/outside", "ignored")
        run(tool, src, "del", "a/1")
        # One source revision with two puts.
        subprocess.run([tool, "--endpoints", src, "txn"], capture_output=True, text=True,
                       input="\nput a/t1 one\nput a/t2 two\n\n\n", check=True)
        check(m.wait_total(len(expected) + 4), label + ": live updates counted")
        live = dest_name("a/live")
        check(wait_for(lambda: dump(tool, dst, live).get(live) == "new"),
              label + ": live put arrived")
        gone = dest_name("a/1")
        check(wait_for(lambda: gone not in dump(tool, dst, gone)),
              label + ": live delete arrived")
        t2 = dest_name("a/t2")
        check(wait_for(lambda: dump(tool, dst, t2).get(t2) == "two"),
              label + ": txn arrived")
        check(dest_name("b/outside") not in dump(tool, dst, ""), label + ": keys outside --prefix stay")
    finally:
        err = m.stop()
    check(err == "", label + ": nothing on stderr (%r)" % err)
    # Put the source back as the next case expects it.
    run(tool, src, "put", "a/1", "one")
    for k in ("a/live", "a/t1", "a/t2", "b/outside"):
        run(tool, src, "del", k)


def test_mirror_errors(tool, etcdctl, ours, theirs):
    for args in (["make-mirror"], ["make-mirror", "x", "y"],
                 ["make-mirror", "--dest-prefix", "x", "--no-dest-prefix", "127.0.0.1:1"]):
        mine = run(tool, ours, *args)
        ref = run(etcdctl, theirs, *args)
        check(mine == ref, "%s: %r == etcdctl's %r" % (" ".join(args), mine, ref))


PERF_LINES = [r"PASS: Throughput is \d+ writes/s", r"FAIL: Throughput too low: \d+ writes/s",
              r"PASS: Slowest request took \d+\.\d{6}s", r"Slowest request took too long: \d+\.\d{6}s",
              r"PASS: Stddev is \d+\.\d{6}s", r"Stddev too high: \d+\.\d{6}s",
              r"FAIL: too many errors", r"FAIL: ERROR\(.*\) -> \d+"]


def test_perf(tool, etcdctl, ours, theirs):
    rc, out, err = run(tool, ours, "check", "perf", "--auto-compact", "--auto-defrag",
                       env={"ETCDPPCTL_CHECK_PERF_SECONDS": "2"})
    check(err == "", "check perf: nothing on stderr (%r)" % err)
    lines = out.split("\n")
    progress = lines[0].split("\r")
    check(progress[0] == "" and progress[-1] == " 2 / 2  100.00% 2s",
          "check perf: progress line %r" % lines[0])
    check(all(re.fullmatch(r" \d / 2 +\d+\.\d\d%( \d\dm\d\ds)?", p) for p in progress[1:-1]),
          "check perf: progress steps %r" % progress)
    check(re.fullmatch(r"Compacting with revision (\d+)", lines[1]) is not None and
          lines[2] == lines[1].replace("Compacting", "Compacted"), "check perf: compaction lines")
    check(lines[3:5] == ['Defragmenting "%s"' % ours, 'Defragmented "%s"' % ours],
          "check perf: defragmentation lines %r" % lines[3:5])
    verdict = lines[5:-2]
    check(len(verdict) >= 3 and all(any(re.fullmatch(p, v) for p in PERF_LINES) for v in verdict),
          "check perf: verdict lines %r" % verdict)
    failed = any(not v.startswith("PASS") for v in verdict)
    check(lines[-2:] == ["FAIL" if failed else "PASS", ""] and rc == (1 if failed else 0),
          "check perf: closing line and exit code (%d)" % rc)
    check(dump(tool, ours, "/etcdctl-check-perf/") == {}, "check perf: test keys deleted")

    # Refusals: byte for byte with etcdctl against the reference etcd.
    refused_like_etcdctl(tool, etcdctl, ours, theirs,
                         ((["check", "perf", "--load", "huge"], None),
                          (["check", "perf"], "/etcdctl-check-perf/x"),
                          (["check", "perf", "--prefix", "p/"], "p/1")))


def refused_like_etcdctl(tool, etcdctl, ours, theirs, cases):
    """Each (args, key) case: with `key` present (None: nothing planted) on
    both servers, the tool's outcome of args equals etcdctl's."""
    for args, setup in cases:
        if setup:
            run(tool, ours, "put", setup, "v")
            run(etcdctl, theirs, "put", setup, "v")
        mine = run(tool, ours, *args)
        ref = run(etcdctl, theirs, *args)
        check(mine == ref, "%s: %r == etcdctl's %r" % (" ".join(args), mine, ref))
        if setup:
            run(tool, ours, "del", setup)
            run(etcdctl, theirs, "del", setup)


def test_datascale(tool, etcdctl, ours, theirs):
    rc, out, err = run(tool, ours, "check", "datascale")
    check(err == "" and rc == 0, "check datascale: exit 0, nothing on stderr (%d, %r)" % (rc, err))
    lines = out.split("\n")
    check(lines[0] == "Start data scale check for work load [10000 key-value pairs, "
                      "1024 bytes per key-value, 50 concurrent clients].",
          "check datascale: first line %r" % lines[0])
    check(re.fullmatch(r" 10000 / 10000  100\.00% \d+s", lines[1].split("\r")[-1]) is not None,
          "check datascale: progress ends at 10000 (%r)" % lines[1][-40:])
    check(re.fullmatch(r"PASS: Approximate system memory used : -?\d+\.\d\d MB\.", lines[2])
          is not None and lines[3:] == [""], "check datascale: verdict %r" % lines[2:])
    check(dump(tool, ours, "/etcdctl-check-datascale/") == {}, "check datascale: test keys deleted")
    refused_like_etcdctl(tool, etcdctl, ours, theirs,
                         ((["check", "datascale", "--load", "huge"], None),
                          (["check", "datascale"], "/etcdctl-check-datascale/x")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--etcdppctl", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--etcdctl", required=True)
    ap.add_argument("--server-cmd", required=True)
    a = ap.parse_args()
    for program, package in ((a.etcdctl, "etcd-client"), (a.server_cmd, "etcd-server")):
        if not os.access(program, os.X_OK):
            print("FAIL: %s is missing (Debian package %s)" % (program, package))
            return 1
    with etcd_launcher.Server(a.server, "src") as src, etcd_launcher.Server(a.server, "dst") as dst, \
            etcd_launcher.Server(a.server_cmd, "ref") as ref:
        for k, v in (("a/1", "one"), ("a/2", "two"), ("a/3", "three"), ("b/1", "other")):
            run(a.etcdppctl, src.endpoint, "put", k, v)
        test_mirror(a.etcdppctl, src.endpoint, dst.endpoint, [], lambda k: k)
        test_mirror(a.etcdppctl, src.endpoint, dst.endpoint, ["--dest-prefix", "copy/"],
                    lambda k: "copy/" + k[len("a/"):])
        test_mirror(a.etcdppctl, src.endpoint, dst.endpoint, ["--no-dest-prefix"],
                    lambda k: k[len("a/"):])
        test_mirror_errors(a.etcdppctl, a.etcdctl, src.endpoint, ref.endpoint)
        test_perf(a.etcdppctl, a.etcdctl, src.endpoint, ref.endpoint)
        test_datascale(a.etcdppctl, a.etcdctl, src.endpoint, ref.endpoint)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

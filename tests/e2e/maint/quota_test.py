#!/usr/bin/python3
"""The space-quota recovery walkthrough of etcd's maintenance guide, run with
the real etcdctl 3.4 against the reference etcd 3.4 and against etcdpp, both
with a 16 MiB --quota-backend-bytes, and the two transcripts compared:

  1. `put key` with 1 MiB values until it fails with
     "etcdserver: mvcc: database space exceeded";
  2. `alarm list` shows NOSPACE, `endpoint status` lists it under errors;
     reads and deletes are served, writes refused (also a lease grant);
  3. the alarm survives kill -9 and a restart;
  4. compact at the current revision, defrag, `alarm disarm`: writes resume,
     `alarm list` is empty, and the member's size is back under the quota.

Member IDs, revisions, sizes and endpoints are masked; everything else
etcdctl prints must be equal. Bounded: about 20 s.

    /usr/bin/python3 quota_test.py --server build/bin/etcdpp --reference /usr/bin/etcd
"""

import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

QUOTA = 16 * 1024 * 1024
VALUE = 1024 * 1024


def revision(c):
    r = c.etcdctl("endpoint", "status", "-w", "json", check=True)
    return json.loads(r.stdout)[0]["Status"]["header"]["revision"]


def db_size(c):
    r = c.etcdctl("endpoint", "status", "-w", "json", check=True)
    return json.loads(r.stdout)[0]["Status"]["dbSize"]


def walkthrough(server):
    """The transcript of the walkthrough against `server`, and the problems
    that do not depend on the other server."""
    lines, problems = [], []

    def run(c, *args, stdin=None):
        r = c.etcdctl(*args, stdin=stdin, timeout=30)
        # etcdctl's client logs a retry warning on stderr first; its
        # "Error:" line is what users read.
        err = [ln for ln in r.stderr.splitlines() if not ln.startswith("{")]
        lines.append("$ etcdctl %s -> %d" % (" ".join(args), r.returncode))
        lines.extend(r.stdout.splitlines() + err)
        return r

    with cluster.Cluster(server, extra_flags=["--quota-backend-bytes", str(QUOTA)]) as c:
        run(c, "put", "small", "before")
        for i in range(64):
            r = c.etcdctl("put", "key", stdin=os.urandom(VALUE // 2).hex()[:VALUE], timeout=30)
            if r.returncode != 0:
                lines.append("fill stopped with: " + r.stderr.strip().splitlines()[-1])
                break
        else:
            problems.append("64 puts of 1 MiB never hit the 16 MiB quota")
        run(c, "alarm", "list")
        status = c.etcdctl("endpoint", "status", "-w", "json", check=True)
        errors = json.loads(status.stdout)[0]["Status"].get("errors", [])
        lines.append("status errors: %s" % errors)
        run(c, "get", "small")
        run(c, "put", "other", "v")
        run(c, "lease", "grant", "60")
        run(c, "del", "small")
        run(c, "txn", stdin="\n\ndel nothing\n\n")

        c.kill(0)
        c.restart(0)
        run(c, "alarm", "list")
        run(c, "put", "other", "v")

        run(c, "compact", str(revision(c)))
        run(c, "defrag")
        size = db_size(c)
        if size >= QUOTA:
            problems.append("after compact and defrag the db is still %d bytes" % size)
        run(c, "put", "other", "v")
        run(c, "alarm", "disarm")
        run(c, "alarm", "list")
        run(c, "put", "newkey", "123")
        run(c, "get", "newkey")
    return lines, problems


def normalize(lines):
    text = "\n".join(lines)
    text = re.sub(r"memberID:\d+", "memberID:ID", text)
    text = re.sub(r"compacted revision \d+", "compacted revision REV", text)
    text = re.sub(r"compact \d+", "compact REV", text)
    text = re.sub(r"member\[127\.0\.0\.1:\d+\]", "member[EP]", text)
    text = re.sub(r"lease [0-9a-f]+ granted", "lease ID granted", text)
    text = re.sub(r'"target":"[^"]*"', '"target":T', text)
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="the etcdpp binary")
    ap.add_argument("--reference", default="/usr/bin/etcd", help="etcd 3.4")
    opts = ap.parse_args()
    want, want_problems = walkthrough(opts.reference)
    got, got_problems = walkthrough(opts.server)
    failed = False
    for label, problems in (("etcd", want_problems), ("etcdpp", got_problems)):
        for p in problems:
            print("FAIL (%s): %s" % (label, p))
            failed = True
    w, g = normalize(want), normalize(got)
    if w != g:
        import difflib
        print("FAIL: the transcripts differ (- etcd, + etcdpp):")
        print("\n".join(difflib.unified_diff(w.splitlines(), g.splitlines(), lineterm="")))
        failed = True
    for required in ("alarm:NOSPACE", "etcdserver: mvcc: database space exceeded"):
        if required not in g:
            print("FAIL: etcdpp's transcript never shows %r" % required)
            failed = True
    if not failed:
        print("ok: the quota walkthrough reads the same on etcd and etcdpp")
        print(g)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

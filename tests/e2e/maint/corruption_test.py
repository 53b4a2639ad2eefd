#!/usr/bin/python3
"""The CORRUPT alarm on a 3-member cluster, with the real etcdctl 3.4:

  1. every member runs with --experimental-corrupt-check-time 1s; a value is
     written and every member's HashKV agrees;
  2. a follower is stopped and bytes inside that value are flipped in its
     backend file (the B-tree stays valid, so the store still opens and
     passes the open-time integrity walk: only the content differs);
  3. started with --experimental-initial-corrupt-check, the follower refuses
     to start (its hash differs from its peers');
  4. started without it, it serves, and the leader's periodic check raises
     CORRUPT for it: `alarm list` shows `memberID:<its id> alarm:CORRUPT`,
     every member refuses writes with "etcdserver: corrupt cluster", reads
     are served;
  5. after kill -9 of every member and a restart, the alarm is still raised
     and writes still refused.

Runs against etcdpp or, for comparison, etcd 3.4 itself (--server
/usr/bin/etcd: the bbolt file member/snap/db is patched instead of LMDB's
data.mdb). Bounded: about 15 s.

    /usr/bin/python3 corruption_test.py --server build/bin/etcdpp
"""

import json
import mmap
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

# A value no other byte string in the backend contains, long enough that a
# match is this value and nothing else.
CANARY = b"corruption-canary-" + b"v" * 200
# Small, so the backend file (sized to the quota with MDB_WRITEMAP) is
# quick to scan.
QUOTA = 64 * 1024 * 1024


def backend_file(member):
    snap = os.path.join(member.data_dir, "member", "snap", "db")
    return os.path.join(snap, "data.mdb") if os.path.isdir(snap) else snap


def flip_canary(path):
    """Changes one byte in the middle of every stored copy of CANARY; returns
    how many copies were changed."""
    flipped = 0
    with open(path, "r+b") as f:
        with mmap.mmap(f.fileno(), 0) as m:
            at = m.find(CANARY)
            while at >= 0:
                middle = at + len(CANARY) // 2
                m[middle:middle + 1] = b"w"
                flipped += 1
                at = m.find(CANARY, at + 1)
            m.flush()
        os.fsync(f.fileno())
    return flipped


def hashes(c):
    """(revision, hash) of every member."""
    out = []
    for i in range(len(c.members)):
        r = c.etcdctl("endpoint", "hashkv", "-w", "json", i=i, check=True)
        e = json.loads(r.stdout)[0]["HashKV"]
        out.append((e["header"]["revision"], e["hash"]))
    return out


def member_ids(c):
    return [c.endpoint_status(i)["header"]["member_id"] for i in range(len(c.members))]


def main():
    opts = cluster.server_arg_parser(__doc__).parse_args()
    check = cluster.Checks()
    flags = ["--experimental-corrupt-check-time", "1s", "--quota-backend-bytes", str(QUOTA)]
    with cluster.Cluster(opts.server, size=3, extra_flags=flags, keep=opts.keep) as c:
        c.client(0).put("canary", CANARY)
        for i in range(20):
            c.client(0).put("key%d" % i, "value%d" % i)
        ids = member_ids(c)
        # Every member applied the canary once their hashes agree.
        cluster.wait_until(lambda: len(set(hashes(c))) == 1, 15, what="equal hashes")
        check(c.alarm_list() == "", "an alarm before any damage")

        leader = c.leader()
        victim = (leader + 1) % 3
        c.stop(victim)
        copies = flip_canary(backend_file(c.members[victim]))
        check(copies >= 1, "the canary value was not found in the stopped member's backend")
        print("flipped a byte in %d stored cop%s of the value" % (copies, "y" if copies == 1 else "ies"))

        # With the start-up check, the damaged member refuses to start.
        c.extra_flags = flags + ["--experimental-initial-corrupt-check"]
        c.spawn(victim)
        try:
            code = c.members[victim].proc.wait(timeout=30)
        except Exception:
            code = None
        check(code not in (None, 0),
              "the damaged member started despite --experimental-initial-corrupt-check "
              "(exit %r)" % code)
        print("start-up check: exit %r; log tail:\n%s" % (code, c.members[victim].log_tail(3)))
        c.stop(victim)

        # Without it, it serves, and the leader's periodic check flags it.
        c.extra_flags = flags
        c.restart(victim)
        want = "memberID:%d alarm:CORRUPT" % ids[victim]

        cluster.wait_until(lambda: want in c.alarm_list(), 30, interval=0.2,
                           what="CORRUPT raised")
        listed = c.alarm_list()
        check(listed == want, "alarm list shows %r, want %r" % (listed, want))

        def writes_refused_and_reads_served(label):
            for i in range(3):
                r = c.etcdctl("put", "after", "x", i=i, timeout=30)
                check(r.returncode != 0 and "etcdserver: corrupt cluster" in r.stderr,
                      "%s: a put on member %d was not refused as corrupt: %r %r"
                      % (label, i, r.stdout, r.stderr.strip()[-200:]))
                r = c.etcdctl("get", "key3", "--print-value-only", i=i, timeout=30)
                check(r.returncode == 0 and r.stdout.strip() == "value3",
                      "%s: a read on member %d was not served: %r %r"
                      % (label, i, r.stdout, r.stderr.strip()[-200:]))
            print("%s: writes refused with 'etcdserver: corrupt cluster', reads served" % label)
        writes_refused_and_reads_served("raised")

        c.kill_all_and_restart()
        listed = c.alarm_list()
        check(listed == want, "after kill -9 of every member, alarm list shows %r" % listed)
        writes_refused_and_reads_served("after kill -9")
        return check.exit_code(c, "CORRUPT raised for the damaged member, writes refused, "
                               "reads served, alarm kept across kill -9")


if __name__ == "__main__":
    sys.exit(main())

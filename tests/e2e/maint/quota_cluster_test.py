#!/usr/bin/python3
"""The NOSPACE alarm on a 3-member cluster, with the real etcdctl 3.4:

  1. three members with a 16 MiB --quota-backend-bytes are filled through
     one member until a put fails with "etcdserver: mvcc: database space
     exceeded";
  2. every member lists NOSPACE (`alarm list`, and `endpoint status`
     errors), refuses puts and lease grants with that error, and serves
     reads and deletes;
  3. the alarm survives kill -9 of every member;
  4. compaction at the current revision, defrag on each member and `alarm
     disarm` bring writes back on every member.

Bounded: about 20 s.

    /usr/bin/python3 quota_cluster_test.py --server build/bin/etcdpp
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

QUOTA = 16 * 1024 * 1024
VALUE = 1024 * 1024
NOSPACE = "etcdserver: mvcc: database space exceeded"


def main():
    opts = cluster.server_arg_parser(__doc__).parse_args()
    check = cluster.Checks()
    flags = ["--quota-backend-bytes", str(QUOTA)]
    with cluster.Cluster(opts.server, size=3, extra_flags=flags, keep=opts.keep) as c:
        c.etcdctl("put", "small", "before", check=True)
        refused = None
        for n in range(64):
            r = c.etcdctl("put", "key%d" % (n % 4), stdin=os.urandom(VALUE // 2).hex(), timeout=30)
            if r.returncode != 0:
                refused = r.stderr
                break
        check(refused is not None and NOSPACE in refused,
              "64 puts of 1 MiB never hit the quota with %r: %r" % (NOSPACE, refused))

        def alarm_everywhere(label):
            for i in range(3):
                listed = c.alarm_list(i)
                check(listed.endswith("alarm:NOSPACE") and listed.startswith("memberID:")
                      and "\n" not in listed,
                      "%s: member %d lists %r" % (label, i, listed))
                errors = c.endpoint_status(i).get("errors", [])
                check(any("alarm:NOSPACE" in e for e in errors),
                      "%s: member %d's status errors are %r" % (label, i, errors))
                r = c.etcdctl("put", "more", "v", i=i, timeout=30)
                check(r.returncode != 0 and NOSPACE in r.stderr,
                      "%s: a put on member %d was not refused: %r" % (label, i, r.stderr[-200:]))
                r = c.etcdctl("lease", "grant", "60", i=i, timeout=30)
                check(r.returncode != 0 and NOSPACE in r.stderr,
                      "%s: a lease grant on member %d was not refused: %r"
                      % (label, i, r.stderr[-200:]))
                r = c.etcdctl("get", "small", "--print-value-only", i=i, timeout=30)
                check(r.returncode == 0 and r.stdout.strip() == "before",
                      "%s: a read on member %d was not served: %r" % (label, i, r.stderr[-200:]))
            r = c.etcdctl("del", "key3", timeout=30)
            check(r.returncode == 0, "%s: a delete was refused: %r" % (label, r.stderr[-200:]))
            print("%s: NOSPACE on every member, writes refused, reads and deletes served" % label)

        alarm_everywhere("filled")
        c.kill_all_and_restart()
        alarm_everywhere("after kill -9")

        revision = c.endpoint_status()["header"]["revision"]
        c.etcdctl("compact", str(revision), "--physical", check=True, timeout=30)
        for i in range(3):
            c.etcdctl("defrag", i=i, check=True, timeout=60)
        sizes = [c.endpoint_status(i)["dbSize"] for i in range(3)]
        check(all(s < QUOTA for s in sizes), "after compact and defrag the sizes are %r" % sizes)
        c.etcdctl("alarm", "disarm", check=True)
        for i in range(3):
            listed = c.alarm_list(i)
            check(listed == "", "after disarm member %d lists %r" % (i, listed))
            r = c.etcdctl("put", "after%d" % i, "v", i=i, timeout=30)
            check(r.returncode == 0, "after disarm a put on member %d failed: %r"
                  % (i, r.stderr[-200:]))
        print("compact + defrag on each member (sizes %r) + disarm: writes back on every member"
              % sizes)
        return check.exit_code(
            c, "NOSPACE across the cluster, kept across kill -9, cleared by compact+defrag+disarm")


if __name__ == "__main__":
    sys.exit(main())

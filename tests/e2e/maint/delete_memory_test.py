#!/usr/bin/python3
"""Memory over a delete of every key in one request, on two members in turn:

  * etcdpp-bench writes 150,000 keys of 256 bytes with 1 KiB values, then
    one etcdctl `del --from-key ""` deletes them all;
  * on a member with its defaults the delete commits in parts
    (--experimental-delete-keys-per-part), so its anonymous RSS grows by less
    than 12 MiB (measured: 1 MiB): LMDB holds copies of one part's pages at a
    time;
  * on a member told to delete in one commit (0), it grows by at least 24
    MiB (the copies of every page that commit dirtied, measured 47 MiB,
    which LMDB keeps while the store is open), and `etcdctl defrag`, which
    replaces the store, hands at least half of that back to the system;
  * on both every key is gone, and a put afterwards is read back.

Run against the release binary (it links jemalloc, whose freed pages are
what goes back). Bounded: about a minute.

    /usr/bin/python3 delete_memory_test.py --server build/bin/etcdpp \\
        --bench build/bin/etcdpp-bench
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

KEYS = 150000
MIB = 1024 * 1024


def anon_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon in /proc/%d/status" % pid)


def key_count(c):
    """The number of keys (a Range's count ignores its limit)."""
    r = c.etcdctl("get", "", "--from-key", "--limit", "1", "-w", "json", check=True)
    return json.loads(r.stdout).get("count", 0)


def delete_all(c, opts, check):
    """Loads c's one member, deletes every key in one request, and returns
    how much the delete grew the member's anonymous RSS and that RSS after
    it, in KiB."""
    m = c.members[0]
    subprocess.run([opts.bench, "--endpoints", m.endpoint, "--conns", "10", "--clients",
                    "100", "--total", str(KEYS), "put", "--key-size", "256", "--val-size",
                    "1024", "--key-space-size", str(KEYS), "--sequential-keys"],
                   check=True, capture_output=True, timeout=120)
    count = key_count(c)
    check(count == KEYS, "%d keys after the load, expected %d" % (count, KEYS))
    before = anon_kib(m.pid)
    deleted = c.etcdctl("del", "", "--from-key", check=True, timeout=60).stdout.strip()
    check(deleted == str(KEYS), "del reported %r keys deleted" % deleted)
    after_delete = anon_kib(m.pid)
    print("%s: anonymous RSS %d MiB before the delete, %d MiB after it" %
          (" ".join(c.extra_flags) or "defaults", before // 1024, after_delete // 1024))
    left = key_count(c)
    check(left == 0, "%d keys left after the delete" % left)
    return after_delete - before, after_delete


def main():
    p = cluster.server_arg_parser(__doc__)
    p.add_argument("--bench", required=True, help="etcdpp-bench binary")
    opts = p.parse_args()
    check = cluster.Checks()

    with cluster.Cluster(opts.server, keep=opts.keep) as c:
        grown, _ = delete_all(c, opts, check)
        check(grown < 12 * 1024, "a delete in parts grew anonymous RSS by %d KiB" % grown)
        client = c.client(0)
        client.put("after", "delete")
        check(client.get("after")[0] == b"delete", "a put after the delete is not read back")
        code = check.exit_code(c, "a delete in parts keeps the member's memory small")
    if code != 0:
        return code

    with cluster.Cluster(opts.server, keep=opts.keep,
                         extra_flags=["--experimental-delete-keys-per-part=0"]) as c:
        grown, after_delete = delete_all(c, opts, check)
        pid = c.members[0].pid
        # The 150,000 tombstones dirty some 47 MiB of pages in one commit;
        # the defrag check below means little on a smaller growth.
        check(grown >= 24 * 1024,
              "a delete in one commit grew anonymous RSS by %d KiB only" % grown)
        c.etcdctl("defrag", check=True, timeout=60)
        try:
            cluster.wait_until(lambda: anon_kib(pid) <= after_delete - grown // 2, timeout=10,
                               what="the delete's page copies to be handed back")
        except TimeoutError:
            pass  # the check below reports it
        after_defrag = anon_kib(pid)
        print("anonymous RSS after defrag: %d MiB" % (after_defrag // 1024))
        check(after_defrag <= after_delete - grown // 2,
              "defrag gave back %d of the %d KiB the delete added" %
              (after_delete - after_defrag, grown))
        client = c.client(0)
        client.put("after", "defrag")
        check(client.get("after")[0] == b"defrag", "a put after defrag is not read back")
        return check.exit_code(c, "a delete in one commit keeps its page copies until a "
                               "defrag hands them back")


if __name__ == "__main__":
    sys.exit(main())

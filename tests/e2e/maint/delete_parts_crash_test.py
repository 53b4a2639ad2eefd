#!/usr/bin/python3
"""A member killed (kill -9) while it applies a delete of many keys in parts
finishes the delete when it restarts, and nobody sees half of it:

  * etcdpp-bench writes 100,000 keys; the member commits deletes in parts of
    1,000 keys (--experimental-delete-keys-per-part);
  * `etcdctl del --from-key ""` runs, and the member is killed while the
    delete's parts commit (its restart logs that it finishes the delete; the
    kill comes later on each attempt until it lands there);
  * after the restart every key is gone at one revision, the one after the
    load's; the revision before it still reads every key; a put goes on at
    the next revision.

Bounded: about a minute.

    /usr/bin/python3 delete_parts_crash_test.py --server build/bin/etcdpp \\
        --bench build/bin/etcdpp-bench
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

KEYS = 100000
RESUMED = "stopped after"  # the member's warning when it finishes a delete


def count_at(c, rev=0):
    """(count of all keys, header revision) at `rev` (0: the latest)."""
    args = ["get", "", "--from-key", "--limit", "1", "-w", "json"]
    if rev:
        args.append("--rev=%d" % rev)
    out = json.loads(c.etcdctl(*args, check=True).stdout)
    return out.get("count", 0), out["header"]["revision"]


def main():
    p = cluster.server_arg_parser(__doc__)
    p.add_argument("--bench", required=True, help="etcdpp-bench binary")
    opts = p.parse_args()
    check = cluster.Checks()
    with cluster.Cluster(opts.server, keep=opts.keep,
                         extra_flags=["--experimental-delete-keys-per-part=1000"]) as c:
        m = c.members[0]
        resumed = False
        for attempt in range(6):
            subprocess.run([opts.bench, "--endpoints", m.endpoint, "--conns", "10", "--clients",
                            "100", "--total", str(KEYS), "put", "--key-size", "64",
                            "--val-size", "256", "--key-space-size", str(KEYS),
                            "--sequential-keys"],
                           check=True, capture_output=True, timeout=120)
            count, loaded_rev = count_at(c)
            check(count == KEYS, "%d keys after the load, expected %d" % (count, KEYS))
            deleting = subprocess.Popen(
                ["etcdctl", "--endpoints", m.endpoint, "del", "", "--from-key"],
                env=cluster.etcdctl_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.05 * (attempt + 1))
            c.kill(0)
            deleting.wait(timeout=30)
            c.restart(0)
            with open(m.log_path, errors="replace") as log:
                resumed = RESUMED in log.read()
            count, rev = count_at(c)
            if count == KEYS:
                # The kill came before the delete reached the log: never applied.
                check(rev == loaded_rev, "revision %d without the delete, expected %d" %
                      (rev, loaded_rev))
                continue
            check(count == 0, "%d keys left after the restart" % count)
            check(rev == loaded_rev + 1,
                  "revision %d after the delete, expected %d" % (rev, loaded_rev + 1))
            before, _ = count_at(c, loaded_rev)
            check(before == KEYS, "%d keys at the revision before the delete" % before)
            if resumed:
                print("attempt %d: the restart finished the delete" % (attempt + 1))
                break
        check(resumed, "no kill landed between the delete's parts")
        client = c.client(0)
        client.put("after", "restart")
        check(client.get("after")[0] == b"restart", "a put after the restart is not read back")
        _, rev = count_at(c)
        check(rev == loaded_rev + 2, "a put after the delete at revision %d, expected %d" %
              (rev, loaded_rev + 2))
        return check.exit_code(c, "a delete killed between its parts finishes on restart")


if __name__ == "__main__":
    sys.exit(main())

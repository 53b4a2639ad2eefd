#!/usr/bin/python3
"""How long a member takes to start on a data dir written by another build.

One fresh member of the --old build is loaded with --keys keys (scale.py's
load, written once), killed with SIGKILL and restarted on the same data dir:
first with --old (the baseline), then with --new (which upgrades the data
dir, if it has to), then with --new again. Each restart is timed from spawn
to the first linearizable read; after the upgrade, a count_only of every
key must find all of them.

    /usr/bin/python3 bench/upgrade_restart.py --old /tmp/old/etcdpp \\
        --new build/bin/etcdpp --bench build/bin/etcdpp-bench --keys 1000000
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402
from scale import cluster  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="etcdpp binary that writes the data dir")
    p.add_argument("--new", required=True, help="etcdpp binary that opens it next")
    p.add_argument("--bench", required=True, help="etcdpp-bench binary")
    p.add_argument("--keys", type=int, default=1000000)
    p.add_argument("--val-size", type=int, default=256)
    a = p.parse_args()
    args = argparse.Namespace(bench=a.bench, keys=a.keys, val_size=a.val_size, passes=1,
                              txn_ops=64, conns=4, clients=16, load_timeout=3600)

    def log(message):
        print(message, flush=True)

    rpc = scale.rpc_module()
    flags = ["--snapshot-count", "10000", "--quota-backend-bytes", str(8 << 30)]
    with cluster.Cluster(a.old, size=1, extra_flags=flags, log_level="error",
                         start_timeout=120) as c:
        scale.run_load(args, c.members[0], log)
        scale.measure_restart(args, c, log, "with --old")
        c.server = a.new
        scale.measure_restart(args, c, log, "with --new (upgrade)")
        channel, stub = scale.kv_stub(c.members[0].client_port)
        reply = stub.Range(rpc.RangeRequest(key=b"\0", range_end=b"\0", count_only=True),
                           timeout=60)
        channel.close()
        log(f"count_only of every key after the upgrade: {reply.count}")
        if reply.count != a.keys:
            sys.exit(f"expected {a.keys} keys")
        scale.measure_restart(args, c, log, "with --new again")


if __name__ == "__main__":
    main()

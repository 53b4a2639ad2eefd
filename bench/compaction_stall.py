#!/usr/bin/python3
"""Only bench/scale.py's compaction step, on one server, for iterating.

Loads --keys keys twice (as scale.py does) into a fresh member, keeps a copy
of the loaded data dir (reused by later runs with the same --keys), then runs
scale.py's probe (a put, then a linearizable get, again and again) around
Compact(current revision) and prints its result. --no-wait-idle stops after
the --after-compact-s window instead of waiting for the history removal.

    /usr/bin/python3 bench/compaction_stall.py --etcdpp build/bin/etcdpp \\
        --bench build/bin/etcdpp-bench --keys 1000000 --after-compact-s 15 \\
        --no-wait-idle [--strace]     # or --etcd /usr/bin/etcd

--strace records pwrite64/pwritev/fdatasync/madvise of every server thread
(strace -f -T -tt) into --work/strace.txt while the probe runs.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402
import cluster  # noqa: E402  (scale put tests/e2e/lib on the path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--etcdpp", help="etcdpp binary")
    p.add_argument("--etcd", help="etcd binary instead")
    p.add_argument("--bench", required=True, help="etcdpp-bench binary")
    p.add_argument("--keys", type=int, default=200000)
    p.add_argument("--after-compact-s", type=float, default=15.0)
    p.add_argument("--no-wait-idle", action="store_true")
    p.add_argument("--strace", action="store_true")
    p.add_argument("--work", default="/tmp/compaction-stall")
    a = p.parse_args()
    name, binary = ("etcd", a.etcd) if a.etcd else ("etcdpp", a.etcdpp)
    saved = os.path.join(a.work, f"loaded-{name}-{a.keys}")
    base = os.path.join(a.work, f"run-{name}")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    args = types.SimpleNamespace(keys=a.keys, val_size=256, passes=2, txn_ops=64, conns=4,
                                 clients=16, bench=a.bench, load_timeout=3600, baseline_s=2.0,
                                 after_compact_s=a.after_compact_s, slow_ms=100.0)
    flags = ["--snapshot-count", "10000", "--quota-backend-bytes", str(8 * 1024 ** 3)]

    def log(message):
        print(f"  {name}: {message}", flush=True)

    c = cluster.Cluster(binary, size=1, base_dir=base, extra_flags=flags, log_level="error",
                        start_timeout=120, keep=True)
    m = c.members[0]
    try:
        if os.path.exists(saved):
            shutil.copytree(saved, m.data_dir)  # a restart on the loaded data dir
            c.start()
        else:
            c.start()
            scale.run_load(args, m, log)
            c.stop(0)
            shutil.copytree(m.data_dir, saved)
            c.restart(0)
        rpc = scale.rpc_module()
        channel, stub = scale.kv_stub(m.client_port)
        stub.Put(rpc.PutRequest(key=b"scale-probe", value=b"x"), timeout=10)
        tracer = None
        if a.strace:
            tracer = subprocess.Popen(
                ["strace", "-f", "-T", "-tt", "-e", "trace=pwrite64,pwritev,fdatasync,madvise",
                 "-o", os.path.join(a.work, "strace.txt"), "-p", str(m.pid)])
        if a.no_wait_idle:
            scale.wait_until_idle = lambda pid, timeout: time.monotonic()
        result = scale.measure_compaction(args, stub, rpc, m, log)
        if tracer:
            tracer.terminate()
            tracer.wait()
        channel.close()
    finally:
        c.close()
    print(result, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

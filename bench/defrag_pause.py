#!/usr/bin/python3
"""How long writes pause while a member defragments its backend, etcd 3.4
and etcdpp side by side on the same data.

For each server, one fresh member on loopback:
  1. fill: --size-mb of 1 MiB values under distinct keys (python etcd3);
  2. delete every second key and compact at the current revision, so about
     half of the backend is free pages;
  3. a writer thread puts a small value in a loop (one client, one request
     at a time) and records each put's latency (a put that fails, e.g.
     "etcdserver: request timed out", counts with the time it took);
  4. `etcdctl defrag` runs once the writer has run for a second; the writer
     goes on for a second after it returns.
Reported per server: backend size before and after (dbSize from `endpoint
status`), how long the defrag call took, the writer's longest put latency
while the defrag ran and its median outside it, the number of puts during
the defrag (and how many failed), the server's CPU seconds for the defrag
window (utime+stime from /proc/<pid>/stat), and the 1-minute load average
at the start and end.

    /usr/bin/python3 bench/defrag_pause.py --etcdpp build/bin/etcdpp \\
        [--etcd /usr/bin/etcd] [--size-mb 1024]

Writes about 1.5x --size-mb to disk per server; on a shared machine the
latencies are noisy: the load average is printed beside them.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "e2e", "lib"))
import cluster  # noqa: E402

VALUE_BYTES = 1024 * 1024


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


cpu_seconds = cluster.cpu_seconds


def db_size(c):
    r = c.etcdctl("endpoint", "status", "-w", "json", check=True, timeout=60)
    s = json.loads(r.stdout)[0]["Status"]
    return s["dbSize"], s.get("dbSizeInUse", 0), s["header"]["revision"]


def run(server, size_mb):
    flags = ["--quota-backend-bytes", str(8 * 1024 * 1024 * 1024),
             "--snapshot-count", "10000"]
    with cluster.Cluster(server, extra_flags=flags) as c:
        client = c.client(0, timeout=120)
        value = os.urandom(VALUE_BYTES // 2).hex().encode()
        keys = size_mb
        t0 = time.monotonic()
        for i in range(keys):
            client.put("fill/%06d" % i, value)
        fill_s = time.monotonic() - t0
        for i in range(0, keys, 2):
            client.delete("fill/%06d" % i)
        before_compact, _, revision = db_size(c)
        c.etcdctl("--command-timeout=300s", "compact", str(revision), "--physical", check=True,
                  timeout=330)
        before, before_in_use, _ = db_size(c)

        latencies = []  # (start, seconds, failed)
        stop = threading.Event()

        def writer():
            w = c.client(0, timeout=120)
            n = 0
            while not stop.is_set():
                start = time.monotonic()
                failed = False
                try:
                    w.put("writer/key", "v%d" % n)
                except Exception:
                    failed = True  # e.g. "etcdserver: request timed out": counted, not fatal
                latencies.append((start, time.monotonic() - start, failed))
                n += 1

        thread = threading.Thread(target=writer)
        thread.start()
        while not latencies or latencies[-1][0] - latencies[0][0] < 1.0:
            time.sleep(0.05)
        pid = c.members[0].pid
        load_start = load1()
        cpu0 = cpu_seconds(pid)
        d0 = time.monotonic()
        r = c.etcdctl("--command-timeout=600s", "defrag", check=True, timeout=630)
        d1 = time.monotonic()
        cpu1 = cpu_seconds(pid)
        time.sleep(1.0)  # the writer's tail after the defrag (measured, not synchronization)
        stop.set()
        thread.join()
        after, after_in_use, _ = db_size(c)
        during = [lat for start, lat, _ in latencies if start + lat >= d0 and start <= d1]
        failed = sum(1 for start, lat, f in latencies if f and start + lat >= d0 and start <= d1)
        outside = [lat for start, lat, f in latencies if (start + lat < d0 or start > d1) and not f]
        return {
            "server": os.path.basename(server),
            "fill_s": round(fill_s, 1),
            "db_before_compact_mb": round(before_compact / 2**20, 1),
            "db_before_defrag_mb": round(before / 2**20, 1),
            "in_use_before_defrag_mb": round(before_in_use / 2**20, 1),
            "db_after_defrag_mb": round(after / 2**20, 1),
            "in_use_after_defrag_mb": round(after_in_use / 2**20, 1),
            "defrag_s": round(d1 - d0, 3),
            "max_put_latency_during_defrag_s": round(max(during), 3) if during else None,
            "puts_during_defrag": len(during),
            "failed_puts_during_defrag": failed,
            "median_put_latency_outside_ms": round(statistics.median(outside) * 1000, 2)
            if outside else None,
            "server_cpu_s_during_defrag": round(cpu1 - cpu0, 2),
            "load1_start": load_start,
            "load1_end": load1(),
            "defrag_output": r.stdout.strip(),
        }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--etcdpp", required=True)
    ap.add_argument("--etcd", default="/usr/bin/etcd")
    ap.add_argument("--size-mb", type=int, default=1024,
                    help="MiB written before half is deleted (1 MiB values)")
    opts = ap.parse_args()
    results = []
    for server in (opts.etcd, opts.etcdpp):
        result = run(server, opts.size_mb)
        print(json.dumps(result), flush=True)
        results.append(result)
    print("\n| server | db before defrag (in use) MiB | after MiB | defrag s | max put "
          "latency during defrag s | puts during (failed) | median put outside ms | "
          "server CPU s | load1 start/end |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print("| %s | %s (%s) | %s | %s | %s | %s (%s) | %s | %s | %.2f/%.2f |" % (
            r["server"], r["db_before_defrag_mb"], r["in_use_before_defrag_mb"],
            r["db_after_defrag_mb"], r["defrag_s"], r["max_put_latency_during_defrag_s"],
            r["puts_during_defrag"], r["failed_puts_during_defrag"],
            r["median_put_latency_outside_ms"],
            r["server_cpu_s_during_defrag"], r["load1_start"], r["load1_end"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

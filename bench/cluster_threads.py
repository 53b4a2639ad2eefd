#!/usr/bin/python3
"""Where a cluster's CPU goes per request, thread by thread.

Starts a fresh etcdpp cluster of --members, warms it up, runs one
etcdpp-bench load spread over every member (1000 clients over 100
connections, as bench/compare.py), and prints for each member its CPU per
request (utime+stime of /proc/<pid>/task/* over the load, divided by the
requests of the whole cluster) and its context switches per request, per
thread name, and the sum over members. With --perf, `perf record -g` of
every member during the load goes to --perf-out.

    /usr/bin/python3 bench/cluster_threads.py --etcdpp build/bin/etcdpp \\
        --bench build/bin/etcdpp-bench --members 3 --load range-l [--perf]

docs/performance.md ("Linearizable reads on three members") used it.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "e2e", "lib"))
import cluster  # noqa: E402

LOADS = {
    "range-l": ["range", "foo", "--consistency", "l"],
    "range-s": ["range", "foo", "--consistency", "s"],
    "put": ["put", "--key-size", "8", "--val-size", "256", "--key-space-size", "50000"],
}


def thread_counters(pid):
    """thread id -> (name, CPU ticks, context switches)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = f.read()
        except OSError:
            continue  # the thread ended meanwhile
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        switches = sum(int(line.split()[1]) for line in status.splitlines()
                       if line.startswith(("voluntary_ctxt", "nonvoluntary_ctxt")))
        out[tid] = (name, int(fields[11]) + int(fields[12]), switches)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--etcdpp", required=True)
    p.add_argument("--bench", required=True)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--load", choices=sorted(LOADS), default="range-l")
    p.add_argument("--total", type=int, default=50000)
    p.add_argument("--perf", action="store_true")
    p.add_argument("--perf-out", default="cluster_threads.perf.data")
    p.add_argument("--etcdpp-flag", action="append", default=[],
                   help="extra server flag, repeatable (e.g. "
                        "--etcdpp-flag=--experimental-peer-batch-stream=false)")
    a = p.parse_args()
    tick = os.sysconf("SC_CLK_TCK")
    with cluster.Cluster(a.etcdpp, size=a.members, extra_flags=a.etcdpp_flag,
                         log_level="error") as c:
        endpoints = ",".join(m.client_url for m in c.members)
        pids = [m.pid for m in c.members]
        bench = [a.bench, "--endpoints", endpoints, "--request-timeout", "10"]
        subprocess.run(bench + ["--conns", "30", "--clients", "300", "--total", "5000"] +
                       LOADS[a.load], capture_output=True, timeout=120)
        before = {pid: thread_counters(pid) for pid in pids}
        perf = None
        if a.perf:
            perf = subprocess.Popen(["perf", "record", "-g", "-F", "999", "-o", a.perf_out, "-p",
                                     ",".join(map(str, pids))], stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        load1 = os.getloadavg()[0]
        r = subprocess.run(bench + ["--json", "--conns", "100", "--clients", "1000", "--total",
                                    str(a.total)] + LOADS[a.load],
                           capture_output=True, text=True, timeout=600)
        if perf:
            perf.send_signal(2)
            perf.wait()
        after = {pid: thread_counters(pid) for pid in pids}
        summaries = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
        if r.returncode != 0 or not summaries:
            sys.exit(f"etcdpp-bench failed ({r.returncode}): {r.stderr[-300:]}")
        n = summaries[-1]["succeeded"]
        print(f"{a.load} on {a.members} members: {summaries[-1]['requests_per_s']:.0f} "
              f"requests/s, {n} succeeded, load average {load1:.2f}")
        total = 0.0
        for i, pid in enumerate(pids):
            by_name = collections.defaultdict(lambda: [0, 0])
            for tid, (name, cpu, switches) in after[pid].items():
                _, cpu0, switches0 = before[pid].get(tid, (name, 0, 0))
                by_name[name][0] += cpu - cpu0
                by_name[name][1] += switches - switches0
            member_us = sum(v[0] for v in by_name.values()) / tick * 1e6 / n
            total += member_us
            parts = [f"{name} {cpu / tick * 1e6 / n:.1f} us {sw / n:.2f} cs"
                     for name, (cpu, sw) in sorted(by_name.items(), key=lambda kv: -kv[1][0])
                     if cpu > 0 or sw > n / 100]
            print(f"  member {i}: {member_us:.1f} us/request: " + ", ".join(parts))
        print(f"  all members: {total:.1f} us/request")


if __name__ == "__main__":
    main()

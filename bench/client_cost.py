#!/usr/bin/python3
"""Measures what the load generator itself costs: CPU and context switches
per request of one or more etcdpp-bench binaries, against the same server.

One fresh single member of --server; then, --rounds times, each binary in
turn runs each load (so the binaries alternate and share the machine's
noise). Each run is wrapped in `perf stat -e task-clock,context-switches,
cpu-migrations` (the benchmark process and all its threads); the server's
utime+stime during the run is read from /proc/<pid>/stat. Printed per run:
requests/s, the benchmark's CPU µs and context switches per request, the
server's CPU µs per request, and the 1-minute load average.

    /usr/bin/python3 bench/client_cost.py --server build/bin/etcdpp \\
        --bench before=/path/to/old/etcdpp-bench --bench after=build/bin/etcdpp-bench \\
        [--pin] [--rounds 2] [--extra-args=--threads=2]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "e2e", "lib"))
import cluster  # noqa: E402
from compare import cpu_seconds, loadavg_1m  # noqa: E402

LOADS = {
    "put": ["put", "--key-size", "8", "--val-size", "256", "--key-space-size", "50000"],
    "range-s": ["range", "foo", "--consistency", "s"],
}


def perf_counters(path):
    """task-clock (ms), context-switches, cpu-migrations from perf stat -x, output."""
    out = {}
    with open(path) as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) > 2 and fields[2] in ("task-clock", "context-switches",
                                                  "cpu-migrations"):
                out[fields[2]] = float(fields[0])
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True)
    p.add_argument("--bench", action="append", required=True, help="label=path")
    p.add_argument("--loads", default="put,range-s")
    p.add_argument("--conns", type=int, default=100)
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--total", type=int, default=50000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--pin", action="store_true", help="server on core 0, benchmark on core 1")
    p.add_argument("--extra-args", default="", help="more etcdpp-bench global flags, comma-separated")
    args = p.parse_args()
    benches = [b.split("=", 1) for b in args.bench]
    extra = [a for a in args.extra_args.split(",") if a]
    rows = []
    with cluster.Cluster(args.server, size=1, log_level="error") as c, \
            tempfile.TemporaryDirectory() as tmp:
        pid = c.members[0].pid
        if args.pin:
            subprocess.run(["taskset", "-a", "-p", "-c", "0", str(pid)], check=True,
                           capture_output=True)
        c.client().put("foo", "v" * 256)
        for round_index in range(args.rounds):
            for load in args.loads.split(","):
                for label, binary in benches:
                    perf_out = os.path.join(tmp, "perf.csv")
                    cmd = ["perf", "stat", "-x,", "-o", perf_out, "-e",
                           "task-clock,context-switches,cpu-migrations"]
                    if args.pin:
                        cmd += ["taskset", "-c", "1"]
                    cmd += [binary, "--endpoints", c.members[0].endpoint, "--json",
                            "--conns", str(args.conns), "--clients", str(args.clients),
                            "--total", str(args.total)] + extra + LOADS[load]
                    load1 = loadavg_1m()
                    before = cpu_seconds(pid)
                    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
                    server_cpu = cpu_seconds(pid) - before
                    summary = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
                    if r.returncode != 0 or not summary:
                        print(f"{label} {load}: exit {r.returncode} {r.stderr[-500:]}")
                        return 1
                    s = summary[0]
                    counters = perf_counters(perf_out)
                    n = s["succeeded"]
                    row = {"round": round_index + 1, "load": load, "bench": label,
                           "threads": s.get("threads"), "requests_per_s": s["requests_per_s"],
                           "p99_ms": s["p99_ms"],
                           "bench_cpu_us_per_req": round(counters["task-clock"] * 1e3 / n, 1),
                           "bench_ctx_switches_per_req": round(
                               counters["context-switches"] / n, 2),
                           "server_cpu_us_per_req": round(server_cpu * 1e6 / n, 1),
                           "loadavg_1m": load1}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print(f"\n{'round':>5} {'load':<8} {'bench':<8} {'thr':>3} {'req/s':>8} {'p99 ms':>8} "
          f"{'bench us/req':>12} {'bench cs/req':>12} {'srv us/req':>10} {'load1':>6}")
    for r in rows:
        print(f"{r['round']:>5} {r['load']:<8} {r['bench']:<8} {r['threads']:>3} "
              f"{r['requests_per_s']:>8.0f} {r['p99_ms']:>8.1f} {r['bench_cpu_us_per_req']:>12} "
              f"{r['bench_ctx_switches_per_req']:>12} {r['server_cpu_us_per_req']:>10} "
              f"{r['loadavg_1m']:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Two etcdpp builds on one etcdpp-bench load, alternating, a fresh member each run.

For changes whose cost is smaller than the spread between runs on a shared
machine: each round runs build A, then build B, on a fresh single member
with the same flags, and prints requests/s, p99 and the member's CPU per
request (from /proc, so the generator's own CPU is left out).

    /usr/bin/python3 bench/ab_load.py --bench build/bin/etcdpp-bench \\
        --a before=/tmp/old/etcdpp --b after=build/bin/etcdpp --runs 4 -- \\
        --conns 100 --clients 1000 --total 50000 put --key-size 8 \\
        --val-size 256 --key-space-size 50000

Everything after `--` is passed to etcdpp-bench after --endpoints and --json.
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "e2e", "lib"))
import cluster  # noqa: E402


def named_binary(text):
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError("expected NAME=PATH")
    return name, path


def run_once(binary, bench, load_args, timeout):
    with cluster.Cluster(binary, size=1, log_level="error") as c:
        member = c.members[0]
        cpu_before = cluster.cpu_seconds(member.pid)
        r = subprocess.run([bench, "--endpoints", member.endpoint, "--json"] + load_args,
                           capture_output=True, text=True, timeout=timeout)
        cpu = cluster.cpu_seconds(member.pid) - cpu_before
    if r.returncode != 0:
        raise RuntimeError(f"etcdpp-bench failed: {r.stderr.strip()[-500:]}")
    summaries = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    if not summaries:
        raise RuntimeError(f"no JSON summary from etcdpp-bench: {r.stdout[-500:]}")
    s = summaries[-1]
    done = max(1, s.get("succeeded", 0))
    return {"requests_per_s": round(s.get("requests_per_s", 0)), "p99_ms": s.get("p99_ms"),
            "server_cpu_s": round(cpu, 2), "server_us_per_request": round(cpu / done * 1e6, 1),
            "failed": s.get("failed"), "loadavg": round(os.getloadavg()[0], 2)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", required=True, help="etcdpp-bench binary (the same for both)")
    p.add_argument("--a", required=True, type=named_binary, help="NAME=etcdpp binary, run first")
    p.add_argument("--b", required=True, type=named_binary, help="NAME=etcdpp binary, run second")
    p.add_argument("--runs", type=int, default=3, help="rounds of A then B")
    p.add_argument("--timeout", type=float, default=300, help="seconds per load")
    p.add_argument("load", nargs=argparse.REMAINDER, help="-- then etcdpp-bench arguments")
    args = p.parse_args()
    load_args = args.load[1:] if args.load[:1] == ["--"] else args.load
    if not load_args:
        p.error("give the etcdpp-bench load after --")
    for round_no in range(1, args.runs + 1):
        for name, binary in (args.a, args.b):
            r = run_once(binary, args.bench, load_args, args.timeout)
            print(f"round {round_no} {name}: {r['requests_per_s']} req/s, p99 {r['p99_ms']} ms, "
                  f"server {r['server_us_per_request']} us/request ({r['server_cpu_s']} s), "
                  f"failed {r['failed']}, load {r['loadavg']}", flush=True)


if __name__ == "__main__":
    main()

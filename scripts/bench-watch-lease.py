#!/usr/bin/python3
"""Watch fan-out and lease keep-alive loads against etcd and etcdpp, one run.

For each server (a fresh single member, same flags as bench/compare.py) runs
etcdpp-bench's `watch` and `lease-keepalive` modes and prints, per load, the
bench's result, the server's CPU time (utime+stime from /proc/<pid>/stat)
per event or keep-alive, its peak RSS (VmHWM) and the 1-minute load average
before and after. Numbers on a shared machine are noisy: compare CPU per
operation first.

  /usr/bin/python3 scripts/bench-watch-lease.py --bench build/bin/etcdpp-bench \
      --etcd /usr/bin/etcd --etcdpp build/bin/etcdpp
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "e2e", "lib"))
import cluster  # noqa: E402


cpu_seconds = cluster.cpu_seconds


def loadavg():
    return round(os.getloadavg()[0], 2)


def run(name, binary, args):
    flags = ["--snapshot-count", "100000", "--quota-backend-bytes", "2147483648"]
    out = {}
    loads = []
    if "watch" in args.loads:
        loads.append(("watch", ["watch", "--streams", str(args.streams), "--watchers",
                                str(args.watchers), "--puts", str(args.puts)],
                      lambda r: r.get("events", 0)))
    if "lease" in args.loads:
        loads.append(("lease-keepalive", ["--clients", str(args.lease_clients), "--total",
                                          str(args.lease_total), "lease-keepalive"],
                      lambda r: r.get("keepalives", 0)))
    for load, load_args, count in loads:
        # A fresh member per load, so peak RSS belongs to that load.
        with cluster.Cluster(binary, size=1, extra_flags=flags, log_level="error") as c:
            pid = c.members[0].pid
            cmd = [args.bench, "--endpoints", c.members[0].endpoint, "--json"] + load_args
            la_before = loadavg()
            cpu_before = cpu_seconds(pid)
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            cpu = cpu_seconds(pid) - cpu_before
            entry = {"error": r.stderr.strip()[-300:]}
            for line in r.stdout.splitlines():
                if line.startswith("{"):
                    entry = json.loads(line)
            n = count(entry)
            entry["server_cpu_s"] = round(cpu, 2)
            entry["server_cpu_us_per_op"] = round(cpu * 1e6 / n, 2) if n else None
            entry["rss_peak_mib"] = round(c.members[0].vm_hwm_kib() / 1024, 1)
            entry["loadavg"] = [la_before, loadavg()]
            out[load] = entry
            print(f"{name} {load}: {json.dumps(entry)}", flush=True)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bench", required=True)
    p.add_argument("--etcd", default="/usr/bin/etcd")
    p.add_argument("--etcdpp", required=True)
    p.add_argument("--baseline", help="another etcdpp binary (e.g. before a change), "
                   "run as server 'baseline'")
    p.add_argument("--servers", default="etcd,etcdpp",
                   help="comma-separated, run in this order: etcd, etcdpp, baseline")
    p.add_argument("--loads", default="watch,lease")
    p.add_argument("--streams", type=int, default=10)
    p.add_argument("--watchers", type=int, default=10000)
    p.add_argument("--puts", type=int, default=100)
    p.add_argument("--lease-clients", type=int, default=10)
    p.add_argument("--lease-total", type=int, default=20000)
    args = p.parse_args()
    for name in args.servers.split(","):
        binary = {"etcd": args.etcd, "etcdpp": args.etcdpp, "baseline": args.baseline}[name]
        run(name, binary, args)


if __name__ == "__main__":
    main()

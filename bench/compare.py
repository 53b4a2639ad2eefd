#!/usr/bin/python3
"""Runs the same etcdpp-bench loads against etcd and etcdpp, one after the other.

Each server gets a fresh cluster of --members members on loopback (same
flags, fresh data dirs, free ports; default 1), then these loads run in order,
the benchmark connecting to every member as etcd's performance docs do:

  put          --conns C --clients N --total T put --key-size 8 --val-size V
               --key-space-size T
  range-l      same conns/clients/total, range foo --consistency l
  range-s      same conns/clients/total, range foo --consistency s

("foo" holds a V-byte value, written before the range loads.) Reported per
server and load: requests/s, average/p50/p99 latency, failed requests, and the
servers' CPU seconds during the load (utime+stime from /proc/<pid>/stat, summed
over members) and the benchmark client's own CPU seconds (getrusage of
children); per server: peak RSS (VmHWM from /proc/<pid>/status; the largest
member's and the sum over members) and data dir disk usage (du, summed) at the
end.

    /usr/bin/python3 bench/compare.py --bench build/bin/etcdpp-bench \\
        --etcd /usr/bin/etcd [--etcdpp build/bin/etcdpp] [--members 3] \\
        [--json-out results.json]

Every load is bounded (--load-timeout, default 60 s). On a shared 2-core
machine the benchmark client and the server compete for CPU: numbers are noisy.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "e2e", "lib"))
import cluster  # noqa: E402


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dir_bytes(path):
    """Bytes allocated on disk (like du), not apparent sizes: LMDB with
    MDB_WRITEMAP and etcd's preallocated WAL files are sparse or padded."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def loads(args):
    common = ["--conns", str(args.conns), "--clients", str(args.clients),
              "--total", str(args.total)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    return [
        ("put", common + ["put", "--key-size", "8", "--val-size", str(args.val_size),
                          "--key-space-size", str(args.total)]),
        ("range-l", common + ["range", "foo", "--consistency", "l"]),
        ("range-s", common + ["range", "foo", "--consistency", "s"]),
    ]


def run_server(name, binary, args):
    """Runs every load against a fresh cluster of binary; returns a result dict."""
    result = {"server": name, "binary": binary, "members": args.members, "loads": {},
              "loadavg_before": round(os.getloadavg()[0], 2)}
    flags = ["--snapshot-count", str(args.snapshot_count),
             "--quota-backend-bytes", str(args.quota_backend_bytes)]
    with cluster.Cluster(binary, size=args.members, extra_flags=flags,
                         log_level="error") as c:
        if args.members > 1:
            c.leader()
        client = c.client()
        client.put("foo", "v" * args.val_size)
        endpoints = ",".join(m.endpoint for m in c.members)

        def servers_cpu():
            return sum(cpu_seconds(m.pid) for m in c.members)

        for load_name, load_args in loads(args):
            cmd = [args.bench, "--endpoints", endpoints, "--json",
                   "--request-timeout", "10"] + load_args
            cpu_before = servers_cpu()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            try:
                r = subprocess.run(cmd, capture_output=True, text=True,
                                   timeout=args.load_timeout)
            except subprocess.TimeoutExpired:
                result["loads"][load_name] = {"error": f"timed out after {args.load_timeout}s"}
                continue
            wall = time.monotonic() - started
            entry = {"error": f"exit {r.returncode}: {r.stderr.strip()[-300:]}"}
            for line in r.stdout.splitlines():
                if line.startswith("{"):
                    entry = json.loads(line)
            entry["server_cpu_s"] = round(servers_cpu() - cpu_before, 2)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            entry["bench_cpu_s"] = round(after.ru_utime + after.ru_stime
                                         - children.ru_utime - children.ru_stime, 2)
            entry["wall_s"] = round(wall, 2)
            entry["command"] = " ".join(["etcdpp-bench"] + cmd[1:])
            result["loads"][load_name] = entry
            print(f"  {name} {load_name}: {entry.get('requests_per_s', '-')} req/s, "
                  f"server cpu {entry['server_cpu_s']} s", flush=True)
        peaks = [m.vm_hwm_kib() / 1024 for m in c.members]
        result["rss_peak_mib"] = round(max(peaks), 1)
        result["rss_peak_sum_mib"] = round(sum(peaks), 1)
        result["data_dir_mib"] = round(
            sum(dir_bytes(m.data_dir) for m in c.members) / (1 << 20), 1)
    result["loadavg_after"] = round(os.getloadavg()[0], 2)
    return result


def print_table(results):
    header = (f"{'load':<8} {'server':<7} {'req/s':>9} {'avg ms':>8} {'p50 ms':>8} "
              f"{'p99 ms':>8} {'failed':>7} {'srv cpu s':>9} {'bench cpu s':>11}")
    print("\n" + header)
    print("-" * len(header))
    load_names = list(results[0]["loads"].keys())
    for load in load_names:
        for res in results:
            e = res["loads"].get(load, {})
            if "requests_per_s" not in e:
                print(f"{load:<8} {res['server']:<7} {e.get('error', 'n/a')}")
                continue
            print(f"{load:<8} {res['server']:<7} {e['requests_per_s']:>9.0f} "
                  f"{e['average_ms']:>8.2f} {e['p50_ms']:>8.2f} {e['p99_ms']:>8.2f} "
                  f"{e['failed']:>7} {e['server_cpu_s']:>9.2f} {e['bench_cpu_s']:>11.2f}")
    print()
    print(f"load average before/after: {results[0]['loadavg_before']} / "
          f"{results[-1]['loadavg_after']}")
    for res in results:
        print(f"{res['server']}: peak RSS {res['rss_peak_mib']} MiB (largest member), "
              f"{res['rss_peak_sum_mib']} MiB (all members), "
              f"data dir {res['data_dir_mib']} MiB")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", required=True, help="etcdpp-bench binary")
    p.add_argument("--etcd", default="/usr/bin/etcd", help="reference etcd binary")
    p.add_argument("--etcdpp", help="etcdpp binary (omitted: etcd only)")
    p.add_argument("--members", type=int, default=1, help="cluster size for both servers")
    p.add_argument("--conns", type=int, default=100)
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--total", type=int, default=50000)
    p.add_argument("--val-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=0, help="etcdpp-bench --threads (0: default)")
    p.add_argument("--snapshot-count", type=int, default=100000)
    p.add_argument("--quota-backend-bytes", type=int, default=2 * 1024 ** 3)
    p.add_argument("--load-timeout", type=float, default=60)
    p.add_argument("--json-out", help="also write all results as JSON here")
    args = p.parse_args()

    servers = [("etcd", args.etcd)]
    if args.etcdpp:
        servers.append(("etcdpp", args.etcdpp))
    results = []
    for name, binary in servers:
        print(f"{name}: {binary}", flush=True)
        results.append(run_server(name, binary, args))
    print_table(results)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=1)
    failed = any("requests_per_s" not in e for r in results for e in r["loads"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

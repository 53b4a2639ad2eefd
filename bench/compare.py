#!/usr/bin/python3
"""Runs the same etcdpp-bench loads against etcd and etcdpp, one after the other.

Each server gets a fresh cluster of --members members on loopback (same
flags, fresh data dirs, free ports; default 1). Optionally --keys N keys
(16-byte keys, 256-byte values, written by txns of 128 puts) are loaded
first; then "foo" gets a --val-size value and the chosen loads (--loads,
default all) run in this order, the benchmark connecting to every member:

  put            --conns C --clients N --total T put --key-size 8 --val-size V
                 --key-space-size T
  range-l        same conns/clients/total, range foo --consistency l
  range-s        same conns/clients/total, range foo --consistency s
  txn-put        same, txn-put --txn-ops 1 (--txn-ops) --key-size 8 --val-size V
                 --key-space-size T
  txn-mixed      same, txn-mixed --rw-ratio 1 --key-size 8 --val-size V
                 --key-space-size T: txns of one linearizable range or one put,
                 1 read per write, keys uniform over the keys the put load wrote
  watch          watch --streams S --watchers W --puts P: fan-out, events/s
                 delivered to W watchers of one key while P puts hit it
  watch-latency  watch-latency --streams 10 --watchers-per-stream 10
                 --put-total 1000 --put-rate 500: put-to-event latency
  lease-keepalive  --clients 10 --total T lease-keepalive
  seq-put        --conns 1 --clients 1 --total Q put (one client, sequential
                 puts), beside a bare loop of 256-byte writes + fdatasync on
                 the same file system (the members' base dir), measured in the
                 same run just before it, and the round trip without a disk:
                 --conns 1 --clients 1 --total Q range foo --consistency s on
                 the same server; seq-put is reported against the fdatasync
                 and against the two added up (the floor of a durable put)

--pin selects where processes run: "shared" (default: every process may use
every core), "pinned" (bare --pin: the servers on core 0, etcdpp-bench on
core 1, with taskset) or "both" (each setup in turn).

Reported per setup, server and load: throughput (requests/s; events/s for the
watch loads; keep-alives/s), average and p99 latency, server CPU time per
request (utime+stime from /proc/<pid>/stat during the load, summed over
members, divided by the requests or events completed), etcdpp-bench's own
CPU per request (its getrusage, in its JSON) and the 1-minute load average
when the load started; then the etcdpp/etcd ratio of throughput, p99 and
server CPU per request. Per server: peak RSS (VmHWM) and data dir size.

    /usr/bin/python3 bench/compare.py --bench build/bin/etcdpp-bench \\
        --etcd /usr/bin/etcd --etcdpp build/bin/etcdpp [--pin both] \\
        [--members 3] [--keys 1000000] [--loads put,range-l] \\
        [--json-out results.json]   # and results.png, the plot, beside it

Every load is bounded (--load-timeout, default 120 s). On a shared 2-core
machine numbers are noisy; CPU per request moves least with the load.
"""

import argparse
import datetime
import json
import math
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "e2e", "lib"))
import cluster  # noqa: E402

ALL_LOADS = ["put", "range-l", "range-s", "txn-put", "txn-mixed", "watch",
             "watch-latency", "lease-keepalive", "seq-put"]
PRELOAD_TXN_OPS = 128  # the default --max-txn-ops of both servers
PRELOAD_KEY_SIZE = 16  # distinct from the loads' 8-byte keys
PRELOAD_VAL_SIZE = 256
SERVER_CORE, BENCH_CORE = 0, 1


cpu_seconds = cluster.cpu_seconds


def loadavg_1m():
    return round(os.getloadavg()[0], 2)


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


def percentile(sorted_values, percent):
    rank = max(1, math.ceil(percent / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def fdatasync_loop(directory, count, size=256):
    """Appends `count` records of `size` bytes to a file written and synced
    beforehand (so only data, not allocation, reaches the disk), fdatasync
    after each: the floor for a durable one-client write on this disk."""
    path = os.path.join(directory, "fdatasync-probe")
    block = b"\0" * size
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"\0" * (size * count))
        os.fsync(fd)
        latencies = []
        for i in range(count):
            started = time.perf_counter()
            os.pwrite(fd, block, i * size)
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        os.unlink(path)
    latencies.sort()
    total = sum(latencies)
    return {"count": count, "record_bytes": size, "per_s": round(count / total, 1),
            "average_ms": round(total / count * 1e3, 3),
            "p50_ms": round(percentile(latencies, 50) * 1e3, 3),
            "p99_ms": round(percentile(latencies, 99) * 1e3, 3)}


def load_specs(args):
    """name -> (etcdpp-bench arguments, JSON field of the throughput, of the
    number of requests or events completed)."""
    common = ["--conns", str(args.conns), "--clients", str(args.clients),
              "--total", str(args.total)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    keys = ["--key-size", "8", "--val-size", str(args.val_size),
            "--key-space-size", str(args.total)]
    rate = ("requests_per_s", "succeeded")
    events = ("events_per_s", "events")
    return {
        "put": (common + ["put"] + keys, *rate),
        "range-l": (common + ["range", "foo", "--consistency", "l"], *rate),
        "range-s": (common + ["range", "foo", "--consistency", "s"], *rate),
        "txn-put": (common + ["txn-put", "--txn-ops", str(args.txn_ops)] + keys, *rate),
        "txn-mixed": (common + ["txn-mixed", "--rw-ratio", str(args.rw_ratio)] + keys, *rate),
        "watch": (["watch", "--streams", str(args.watch_streams), "--watchers",
                   str(args.watchers), "--puts", str(args.watch_puts)], *events),
        "watch-latency": (["watch-latency", "--streams", "10", "--watchers-per-stream", "10",
                           "--put-total", str(args.latency_puts), "--put-rate",
                           str(args.latency_put_rate)], *events),
        # A connection per stream: the load of every earlier run (the tool
        # spreads its streams over --conns, one by default).
        "lease-keepalive": (["--clients", "10", "--conns", "10", "--total", str(args.total),
                             "lease-keepalive"], "per_s", "keepalives"),
        "seq-put": (["--conns", "1", "--clients", "1", "--total", str(args.seq_total), "put",
                     "--key-size", "8", "--val-size", str(args.val_size),
                     "--key-space-size", str(args.seq_total)], *rate),
    }


def run_bench(args, pinned, endpoints, bench_args, timeout):
    """Runs etcdpp-bench once; returns (its JSON summary or None, error, command)."""
    cmd = [args.bench, "--endpoints", endpoints, "--json", "--request-timeout", "10"]
    if args.client:
        cmd += ["--client", args.client]
    cmd += bench_args
    if pinned:
        cmd = ["taskset", "-c", str(BENCH_CORE)] + cmd
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout}s", cmd
    summary = None
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            summary = json.loads(line)
    if r.returncode != 0 or summary is None:
        return summary, f"exit {r.returncode}: {r.stderr.strip()[-300:]}", cmd
    return summary, None, cmd


def printable(cmd, bench):
    return " ".join("etcdpp-bench" if c == bench else c for c in cmd)


def preload(args, pinned, endpoints):
    """Writes --keys keys quickly: txns of up to 128 puts, many in flight."""
    ops = min(PRELOAD_TXN_OPS, args.keys)
    txns = -(-args.keys // ops)
    clients = min(txns, 64)
    bench_args = ["--conns", str(min(clients, 8)), "--clients", str(clients),
                  "--total", str(txns), "txn-put", "--txn-ops", str(ops),
                  "--key-size", str(PRELOAD_KEY_SIZE), "--val-size", str(PRELOAD_VAL_SIZE),
                  "--key-space-size", str(args.keys), "--sequential-keys"]
    started = time.monotonic()
    summary, error, cmd = run_bench(args, pinned, endpoints, bench_args,
                                    max(args.load_timeout, args.keys / 1000))
    if error:
        raise RuntimeError(f"preload of {args.keys} keys failed: {error}")
    return {"keys": args.keys, "txns": txns, "txn_ops": ops,
            "seconds": round(time.monotonic() - started, 2), "command": printable(cmd, args.bench)}


def round_trip(args, pinned, endpoints):
    """One client's sequential serializable reads of "foo" on the server
    about to take seq-put: the request's way there and back through the
    network stack and the server's front, with no disk on it. A sequential
    put cannot be answered faster than this plus one fdatasync."""
    bench_args = ["--conns", "1", "--clients", "1", "--total", str(args.seq_total),
                  "range", "foo", "--consistency", "s"]
    summary, error, cmd = run_bench(args, pinned, endpoints, bench_args, args.load_timeout)
    out = {"command": printable(cmd, args.bench)}
    if error or not summary:
        out["error"] = error or "no summary"
        return out
    out["average_ms"] = summary.get("average_ms", 0)
    out["p99_ms"] = summary.get("p99_ms", 0)
    return out


def watch_detail(summary):
    """For the watch loads: how the server packed events into messages and
    how long the puts took meanwhile (a put slowed by the fan-out keeps the
    streams from falling behind, so they pack fewer events per message)."""
    if not summary or not summary.get("event_responses"):
        return ""
    per_response = summary.get("events", 0) / summary["event_responses"]
    detail = f", {per_response:.1f} events per response"
    if "put_p50_ms" in summary:
        detail += f", put median {summary['put_p50_ms']:.1f} ms"
    return detail


def run_server(name, binary, setup, args, server_flags=()):
    """Runs every chosen load against a fresh cluster of binary; returns a result dict."""
    pinned = setup == "pinned"
    result = {"setup": setup, "server": name, "binary": binary, "members": args.members,
              "loads": {}, "loadavg_before": loadavg_1m()}
    flags = ["--snapshot-count", str(args.snapshot_count),
             "--quota-backend-bytes", str(args.quota_backend_bytes)] + list(server_flags)
    result["flags"] = list(server_flags)
    specs = load_specs(args)
    with cluster.Cluster(binary, size=args.members, extra_flags=flags,
                         log_level="error") as c:
        if pinned:
            for m in c.members:  # every thread now, and those they start later
                subprocess.run(["taskset", "-a", "-p", "-c", str(SERVER_CORE), str(m.pid)],
                               check=True, capture_output=True)
        if args.members > 1:
            c.leader()
        endpoints = ",".join(m.endpoint for m in c.members)
        if args.keys:
            result["preload"] = preload(args, pinned, endpoints)
            print(f"  {setup} {name}: preloaded {args.keys} keys in "
                  f"{result['preload']['seconds']} s", flush=True)
        c.client().put("foo", "v" * args.val_size)

        def servers_cpu():
            return sum(cpu_seconds(m.pid) for m in c.members)

        for load in args.loads:
            bench_args, rate_field, count_field = specs[load]
            entry = {"loadavg_1m": loadavg_1m()}
            if load == "seq-put":
                entry["fdatasync"] = fdatasync_loop(c.base_dir,
                                                    args.fsync_count or args.seq_total)
                entry["round_trip"] = round_trip(args, pinned, endpoints)
            cpu_before = servers_cpu()
            started = time.monotonic()
            summary, error, cmd = run_bench(args, pinned, endpoints, bench_args,
                                            args.load_timeout)
            entry["server_cpu_s"] = round(servers_cpu() - cpu_before, 3)
            entry["wall_s"] = round(time.monotonic() - started, 2)
            entry["command"] = printable(cmd, args.bench)
            if error:
                entry["error"] = error
            if summary:
                count = summary.get(count_field, 0)
                entry.update({
                    "throughput": summary.get(rate_field, 0),
                    "count": count,
                    "failed": summary.get("failed", 0),
                    "average_ms": summary.get("average_ms", summary.get("avg_s", 0) * 1e3),
                    "p99_ms": summary.get("p99_ms", summary.get("p99_s", 0) * 1e3),
                    "bench_cpu_s": summary.get("bench_cpu_s"),
                    "bench": summary,
                })
                if count:
                    entry["server_cpu_us_per_req"] = round(entry["server_cpu_s"] / count * 1e6, 2)
                    entry["bench_cpu_us_per_req"] = round(entry["bench_cpu_s"] / count * 1e6, 2)
                if "fdatasync" in entry and entry["fdatasync"]["average_ms"] > 0:
                    entry["vs_fdatasync"] = round(
                        entry["average_ms"] / entry["fdatasync"]["average_ms"], 2)
                    if entry["round_trip"].get("average_ms"):
                        floor = entry["fdatasync"]["average_ms"] + entry["round_trip"]["average_ms"]
                        entry["vs_floor"] = round(entry["average_ms"] / floor, 2)
            result["loads"][load] = entry
            print(f"  {setup} {name} {load}: {entry.get('throughput', '-')} /s, "
                  f"server {entry.get('server_cpu_us_per_req', '-')} us/req, "
                  f"load avg {entry['loadavg_1m']}" + watch_detail(summary)
                  + (f", error {error}" if error else ""), flush=True)
        peaks = [m.vm_hwm_kib() / 1024 for m in c.members]
        result["rss_peak_mib"] = round(max(peaks), 1)
        result["rss_peak_sum_mib"] = round(sum(peaks), 1)
        result["data_dir_mib"] = round(
            sum(dir_bytes(m.data_dir) for m in c.members) / (1 << 20), 1)
    result["loadavg_after"] = loadavg_1m()
    return result


def ratios(runs):
    """setup -> load -> etcdpp/etcd ratios of throughput, p99, server CPU per request."""
    out = {}
    for setup in sorted({r["setup"] for r in runs}):
        by_server = {r["server"]: r for r in runs if r["setup"] == setup}
        if not {"etcd", "etcdpp"} <= by_server.keys():
            continue
        out[setup] = {}
        for load, ours in by_server["etcdpp"]["loads"].items():
            theirs = by_server["etcd"]["loads"].get(load, {})
            row = {}
            for key in ("throughput", "p99_ms", "server_cpu_us_per_req"):
                if ours.get(key) and theirs.get(key):
                    row[key] = round(ours[key] / theirs[key], 2)
            out[setup][load] = row
    return out


def fmt(value, digits=0):
    return "-" if value is None else f"{value:,.{digits}f}"


def print_table(report):
    runs = report["runs"]
    header = (f"{'setup':<7} {'load':<16} {'server':<7} {'per s':>10} {'avg ms':>8} "
              f"{'p99 ms':>8} {'srv us/req':>10} {'bench us/req':>12} {'load1':>6}")
    print("\n" + header)
    print("-" * len(header))
    for r in runs:
        for load, e in r["loads"].items():
            if "throughput" not in e:
                print(f"{r['setup']:<7} {load:<16} {r['server']:<7} {e.get('error')}")
                continue
            print(f"{r['setup']:<7} {load:<16} {r['server']:<7} {fmt(e['throughput']):>10} "
                  f"{fmt(e['average_ms'], 2):>8} {fmt(e['p99_ms'], 2):>8} "
                  f"{fmt(e.get('server_cpu_us_per_req'), 1):>10} "
                  f"{fmt(e.get('bench_cpu_us_per_req'), 1):>12} {e['loadavg_1m']:>6}")
            if "fdatasync" in e:
                f = e["fdatasync"]
                print(f"{'':<7} {'  fdatasync':<16} {'':<7} {fmt(f['per_s']):>10} "
                      f"{fmt(f['average_ms'], 2):>8} {fmt(f['p99_ms'], 2):>8}   "
                      f"(seq-put avg / fdatasync avg = {e.get('vs_fdatasync')})")
            if e.get("round_trip", {}).get("average_ms"):
                t = e["round_trip"]
                print(f"{'':<7} {'  round trip':<16} {'':<7} {'':>10} "
                      f"{fmt(t['average_ms'], 3):>8} {fmt(t['p99_ms'], 2):>8}   "
                      f"(seq-put avg / (fdatasync + round trip) = {e.get('vs_floor')})")
    for setup, loads in report["ratios"].items():
        print(f"\netcdpp/etcd, {setup}: per s (higher is better), p99 and server CPU "
              f"per request (lower is better)")
        for load, row in loads.items():
            print(f"  {load:<16} {fmt(row.get('throughput'), 2):>6}x "
                  f"{fmt(row.get('p99_ms'), 2):>6}x {fmt(row.get('server_cpu_us_per_req'), 2):>6}x")
    print()
    for r in runs:
        print(f"{r['setup']} {r['server']}: peak RSS {r['rss_peak_mib']} MiB (largest member), "
              f"{r['rss_peak_sum_mib']} MiB (all members), data dir {r['data_dir_mib']} MiB, "
              f"load average {r['loadavg_before']} -> {r['loadavg_after']}")


def markdown_table(report):
    """The results as a Markdown table (for BENCHMARKS.md), one row per setup
    and load, etcd and etcdpp side by side with their ratio."""
    lines = ["| setup | load | etcd per s | etcdpp per s | ratio | etcd p99 ms | etcdpp p99 ms "
             "| ratio | etcd srv µs/req | etcdpp srv µs/req | ratio | bench µs/req (etcd run, "
             "etcdpp run) | load avg (etcd, etcdpp) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    runs = {(r["setup"], r["server"]): r for r in report["runs"]}
    for setup in ("shared", "pinned"):
        theirs_run, ours_run = runs.get((setup, "etcd")), runs.get((setup, "etcdpp"))
        if not theirs_run or not ours_run:
            continue
        for load, ours in ours_run["loads"].items():
            theirs = theirs_run["loads"].get(load, {})
            ratio = report["ratios"].get(setup, {}).get(load, {})
            lines.append(
                f"| {setup} | {load} | {fmt(theirs.get('throughput'))} "
                f"| {fmt(ours.get('throughput'))} | {fmt(ratio.get('throughput'), 2)} "
                f"| {fmt(theirs.get('p99_ms'), 1)} | {fmt(ours.get('p99_ms'), 1)} "
                f"| {fmt(ratio.get('p99_ms'), 2)} | {fmt(theirs.get('server_cpu_us_per_req'), 1)} "
                f"| {fmt(ours.get('server_cpu_us_per_req'), 1)} "
                f"| {fmt(ratio.get('server_cpu_us_per_req'), 2)} "
                f"| {fmt(theirs.get('bench_cpu_us_per_req'), 1)}, "
                f"{fmt(ours.get('bench_cpu_us_per_req'), 1)} "
                f"| {theirs.get('loadavg_1m')}, {ours.get('loadavg_1m')} |")
    return "\n".join(lines)


def plot(report, path):
    """Throughput and p99 per load, one bar per server and setup (log scales:
    the loads differ by orders of magnitude)."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("the plot needs matplotlib: install the Debian package "
                         "python3-matplotlib (scripts/install-deps.sh)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report["runs"]
    loads = [load for load in ALL_LOADS if any(load in r["loads"] for r in runs)]
    width = 0.8 / max(1, len(runs))
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 1.3 * len(loads) + 2), 8), sharex=True)
    colors = {("etcd", "shared"): "#9ecae1", ("etcd", "pinned"): "#3182bd",
              ("etcdpp", "shared"): "#fdae6b", ("etcdpp", "pinned"): "#e6550d"}
    for i, r in enumerate(runs):
        xs = [j + (i - (len(runs) - 1) / 2) * width for j in range(len(loads))]
        label = f"{r['server']} ({r['setup']}, {r['members']} member{'s' if r['members'] > 1 else ''})"
        color = colors.get((r["server"], r["setup"]))
        for ax, key in zip(axes, ("throughput", "p99_ms")):
            values = [r["loads"].get(load, {}).get(key) or 0 for load in loads]
            ax.bar(xs, values, width, label=label, color=color)
    axes[0].set_ylabel("per second (requests; events for watch loads)")
    axes[1].set_ylabel("p99 latency, ms")
    for ax in axes:
        ax.set_yscale("log")
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[1].set_xticks(range(len(loads)))
    axes[1].set_xticklabels(loads, rotation=20)
    axes[0].legend(fontsize="small")
    meta = report["meta"]
    fig.suptitle(f"etcdpp vs etcd, {meta['started_utc']}, {meta['cores']} cores, "
                 f"load avg {meta['loadavg_start']} at start (shared machine: noisy)",
                 fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", help="etcdpp-bench binary (required unless --markdown-from)")
    p.add_argument("--etcd", default="/usr/bin/etcd", help="reference etcd binary")
    p.add_argument("--etcdpp", help="etcdpp binary (omitted: etcd only)")
    p.add_argument("--members", type=int, default=1, help="cluster size for both servers")
    p.add_argument("--etcdpp-flag", action="append", default=[],
                   help="also run etcdpp with this flag (repeatable), as server 'etcdpp+' "
                        "(e.g. --etcdpp-flag=--h2-front=false)")
    p.add_argument("--pin", nargs="?", const="pinned", default="shared",
                   choices=["shared", "pinned", "both"],
                   help="bare --pin: server on core 0, etcdpp-bench on core 1")
    p.add_argument("--loads", default=",".join(ALL_LOADS),
                   help=f"comma-separated, from {','.join(ALL_LOADS)}")
    p.add_argument("--keys", type=int, default=0, help="preload this many keys first")
    p.add_argument("--conns", type=int, default=100)
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--total", type=int, default=50000)
    p.add_argument("--val-size", type=int, default=256)
    p.add_argument("--txn-ops", type=int, default=1, help="puts per txn-put transaction")
    p.add_argument("--rw-ratio", type=float, default=1, help="txn-mixed reads per write")
    p.add_argument("--watch-streams", type=int, default=10)
    p.add_argument("--watchers", type=int, default=10000, help="watch fan-out watchers in all")
    p.add_argument("--watch-puts", type=int, default=100)
    p.add_argument("--latency-puts", type=int, default=1000)
    p.add_argument("--latency-put-rate", type=float, default=500)
    p.add_argument("--seq-total", type=int, default=1000, help="seq-put requests")
    p.add_argument("--fsync-count", type=int, default=0,
                   help="fdatasync probe records beside seq-put (0: as many as --seq-total)")
    p.add_argument("--threads", type=int, default=0, help="etcdpp-bench --threads (0: default)")
    p.add_argument("--client", choices=("h2", "grpc"),
                   help="etcdpp-bench --client for the unary loads (default: the tool's, h2 "
                        "on plaintext)")
    p.add_argument("--snapshot-count", type=int, default=100000)
    p.add_argument("--quota-backend-bytes", type=int, default=4 * 1024 ** 3)
    p.add_argument("--load-timeout", type=float, default=120)
    p.add_argument("--json-out", help="write all results as JSON here (and the plot beside)")
    p.add_argument("--plot-out", help="PNG path (default: the JSON path with .png)")
    p.add_argument("--markdown-from", metavar="JSON",
                   help="only print the results of an earlier --json-out as a Markdown table")
    args = p.parse_args()
    if args.markdown_from:
        with open(args.markdown_from) as f:
            print(markdown_table(json.load(f)))
        return 0
    if not args.bench:
        p.error("--bench is required")
    args.loads = [load.strip() for load in args.loads.split(",") if load.strip()]
    unknown = [load for load in args.loads if load not in ALL_LOADS]
    if unknown:
        p.error(f"unknown loads {unknown}; known: {ALL_LOADS}")
    if args.pin != "shared" and (os.cpu_count() or 1) < 2:
        p.error("--pin needs at least 2 cores")
    if args.pin != "shared" and shutil.which("taskset") is None:
        p.error("--pin needs taskset (Debian package util-linux)")

    servers = [("etcd", args.etcd, [])]
    if args.etcdpp:
        servers.append(("etcdpp", args.etcdpp, []))
        if args.etcdpp_flag:
            # The same binary again with the flags, in the same run.
            servers.append(("etcdpp+", args.etcdpp, args.etcdpp_flag))
    setups = ["shared", "pinned"] if args.pin == "both" else [args.pin]
    report = {"meta": {"command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
                       "started_utc": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
                       "cores": os.cpu_count(), "loadavg_start": loadavg_1m(),
                       "loads": args.loads, "members": args.members, "keys": args.keys},
              "runs": []}
    for setup in setups:
        for name, binary, flags in servers:
            print(f"{setup} {name}: {binary} {' '.join(flags)}", flush=True)
            report["runs"].append(run_server(name, binary, setup, args, flags))
    report["meta"]["loadavg_end"] = loadavg_1m()
    report["ratios"] = ratios(report["runs"])
    print_table(report)
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=1)
    plot_path = args.plot_out or (os.path.splitext(args.json_out)[0] + ".png"
                                  if args.json_out else None)
    if plot_path:
        plot(report, plot_path)
        print(f"plot: {plot_path}")
    failed = any(not e.get("throughput") or e.get("error")
                 for r in report["runs"] for e in r["loads"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

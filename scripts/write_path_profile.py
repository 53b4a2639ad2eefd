#!/usr/bin/python3
"""Write-path profile of etcd and etcdpp, side by side, in one run (issue 16).

For each server, on a fresh single member (or --members 3) started with the
same flags, in the same data directory's file system:

  fdatasync    a bare 4 KiB pwrite + fdatasync loop over a preallocated file
               in the leader's data dir (the floor for one sequential put)
  seq-put      one client, one connection, --seq-total sequential puts
  put          --conns/--clients/--total puts (concurrent load)
  txn-put      the same, as single-put txns
  range-miss   the same, serializable ranges of an absent key: about the
               server's cost of one unary gRPC call (the floor under a put)

Per load: requests/s, average and p99 latency, server CPU per request
(utime+stime from /proc/<pid>/stat, summed over members), and, with
--strace, syscalls and futex calls per request (strace -c -f attached to
the leader for a separate --strace-total requests), with --perf-stat the
context switches and CPU migrations per request. The 1-minute load average
is printed beside every row.

    /usr/bin/python3 scripts/write_path_profile.py --bench build/bin/etcdpp-bench \\
        --etcdpp build/bin/etcdpp [--etcd /usr/bin/etcd] [--before OLD_ETCDPP] \\
        [--strace] [--perf-stat] [--loads seq-put,put,txn-put,range-miss]
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "e2e", "lib"))
import cluster  # noqa: E402


cpu_seconds = cluster.cpu_seconds


def thread_cpu_seconds(pid):
    """{thread name: utime+stime seconds} summed over the threads of that name."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, tail = f.read().rsplit(")", 1)
        except OSError:
            continue  # the thread ended meanwhile
        name = head.split("(", 1)[1]
        fields = tail.split()
        out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / os.sysconf(
            "SC_CLK_TCK")
    return out


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def load1():
    return round(os.getloadavg()[0], 2)


def fdatasync_ms(directory, count):
    path = os.path.join(directory, "fdatasync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        block = b"x" * 4096
        # Preallocated and synced first, as both servers' WAL segments are:
        # each fdatasync then flushes data only, not the file's size.
        os.posix_fallocate(fd, 0, 4096 * count)
        os.fsync(fd)
        started = time.monotonic()
        for i in range(count):
            os.pwrite(fd, block, i * 4096)
            os.fdatasync(fd)
        return (time.monotonic() - started) * 1000 / count
    finally:
        os.close(fd)
        os.unlink(path)


def disk_histograms(client_url):
    """(sum s, count) of the WAL fsync and backend commit histograms."""
    import urllib.request
    text = urllib.request.urlopen(client_url + "/metrics", timeout=5).read().decode()
    out = {}
    for name in ("etcd_disk_wal_fsync_duration_seconds",
                 "etcd_disk_backend_commit_duration_seconds"):
        total = re.search(name + r"_sum(?:\{[^}]*\})? (\S+)", text)
        count = re.search(name + r"_count(?:\{[^}]*\})? (\S+)", text)
        out[name] = (float(total.group(1)), float(count.group(1))) if total and count else (0, 0)
    return out


def run_bench(args, endpoints, conns, clients, total, op):
    cmd = [args.bench, "--endpoints", endpoints, "--json", "--request-timeout", "10",
           "--conns", str(conns), "--clients", str(clients), "--total", str(total)]
    if op == "range-miss":
        # A serializable read of an absent key: next to no server work, so
        # its CPU is about what one unary gRPC call costs the server.
        cmd += ["range", "no-such-key", "--consistency", "s"]
    else:
        cmd += [op, "--key-size", "8", "--val-size", str(args.val_size),
                "--key-space-size", str(total)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.load_timeout)
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"bench failed: {r.stderr[-400:]}")


def attached(tracer_argv, settle_s, run):
    """Runs run() while tracer_argv (a tracer writing to a file) is attached;
    the tracer gets SIGINT afterwards so that it writes its summary."""
    tracer = subprocess.Popen(tracer_argv, stderr=subprocess.DEVNULL)
    time.sleep(settle_s)  # the tracer attaches to every thread before the load
    try:
        run()
    finally:
        tracer.send_signal(2)
        tracer.wait(timeout=30)


def strace_counts(pid, run):
    """Runs run() with strace -c -f attached to pid; returns {syscall: calls}."""
    out = tempfile.mktemp(prefix="strace-")
    attached(["strace", "-c", "-f", "-o", out, "-p", str(pid)], 1.0, run)
    counts = {}
    with open(out) as f:
        for line in f:
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
            if m and m.group(2) != "total":
                counts[m.group(2)] = int(m.group(1))
    os.unlink(out)
    return counts


def perf_stat(pid, run):
    out = tempfile.mktemp(prefix="perfstat-")
    attached(["perf", "stat", "-x,", "-o", out, "-e", "context-switches,cpu-migrations",
              "-p", str(pid)], 0.3, run)
    counts = {}
    with open(out) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) > 2 and parts[0].isdigit():
                counts[parts[2]] = int(parts[0])
    os.unlink(out)
    return counts


def profile(name, binary, args, extra_flags=""):
    rows = []
    flags = ["--snapshot-count", "100000", "--quota-backend-bytes", str(2 * 1024 ** 3)]
    flags += shlex.split(extra_flags)
    base = tempfile.mkdtemp(prefix="wpp-", dir=args.dir)
    with cluster.Cluster(binary, size=args.members, base_dir=base, extra_flags=flags,
                         log_level="error") as c:
        leader = c.leader() if args.members > 1 else 0
        endpoints = ",".join(m.endpoint for m in c.members)
        pids = [m.pid for m in c.members]
        sync_ms = fdatasync_ms(c.members[leader].data_dir, args.fsync_count)
        rows.append({"server": name, "load": "fdatasync", "avg_ms": round(sync_ms, 3),
                     "load1": load1()})
        loads = [("seq-put", 1, 1, args.seq_total, "put"),
                 ("put", args.conns, args.clients, args.total, "put"),
                 ("txn-put", args.conns, args.clients, args.total, "txn-put"),
                 ("range-miss", args.conns, args.clients, args.total, "range-miss")]
        loads = [l for l in loads if l[0] in args.loads.split(",")]
        for load_name, conns, clients, total, op in loads:
            before = sum(cpu_seconds(p) for p in pids)
            by_thread_before = thread_cpu_seconds(pids[leader])
            disk_before = disk_histograms(c.members[leader].client_url)
            res = run_bench(args, endpoints, conns, clients, total, op)
            cpu = sum(cpu_seconds(p) for p in pids) - before
            by_thread_after = thread_cpu_seconds(pids[leader])
            disk_after = disk_histograms(c.members[leader].client_url)
            disk = {}
            for metric, short in (("etcd_disk_wal_fsync_duration_seconds", "wal_fsync"),
                                ("etcd_disk_backend_commit_duration_seconds", "backend_commit")):
                dsum = disk_after[metric][0] - disk_before[metric][0]
                dcount = disk_after[metric][1] - disk_before[metric][1]
                disk[short + "_per_req"] = round(dcount / total, 2)
                disk[short + "_avg_ms"] = round(dsum * 1000 / dcount, 3) if dcount else 0
            row = {"server": name, "load": load_name, "req_s": round(res["requests_per_s"]),
                   "avg_ms": res["average_ms"], "p99_ms": res["p99_ms"],
                   "failed": res["failed"], "cpu_us_per_req": round(cpu * 1e6 / total, 1),
                   "threads": threads(pids[leader]), "load1": load1(), **disk}
            # etcdpp's own named threads (the apply thread runs the LMDB
            # commits): where a change to the commit path shows first.
            for thread in ("apply", "raft-loop"):
                if thread in by_thread_after:
                    spent = by_thread_after[thread] - by_thread_before.get(thread, 0)
                    row[thread + "_us_per_req"] = round(spent * 1e6 / total, 1)
            st_total = min(args.strace_total, total)
            if args.strace:
                counts = strace_counts(pids[leader], lambda: run_bench(
                    args, endpoints, conns, min(clients, st_total), st_total, op))
                row["syscalls_per_req"] = round(sum(counts.values()) / st_total, 1)
                row["futex_per_req"] = round(counts.get("futex", 0) / st_total, 1)
                top = sorted(counts.items(), key=lambda kv: -kv[1])[:6]
                row["top_syscalls_per_req"] = {k: round(v / st_total, 2) for k, v in top}
            if args.perf_stat:
                counts = perf_stat(pids[leader], lambda: run_bench(
                    args, endpoints, conns, min(clients, st_total), st_total, op))
                row["cs_per_req"] = round(counts.get("context-switches", 0) / st_total, 2)
                row["migrations_per_req"] = round(counts.get("cpu-migrations", 0) / st_total, 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", required=True)
    p.add_argument("--etcd", default="/usr/bin/etcd")
    p.add_argument("--etcdpp", required=True)
    p.add_argument("--skip-etcd", action="store_true")
    p.add_argument("--before", help="an older etcdpp binary, profiled too (rows 'before')")
    p.add_argument("--before-flags", default="",
                   help="extra server flags for 'before' (e.g. the same binary with a knob off)")
    p.add_argument("--etcdpp-flags", default="", help="extra server flags for 'etcdpp'")
    p.add_argument("--members", type=int, default=1)
    p.add_argument("--conns", type=int, default=100)
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--total", type=int, default=50000)
    p.add_argument("--seq-total", type=int, default=1000)
    p.add_argument("--val-size", type=int, default=256)
    p.add_argument("--fsync-count", type=int, default=300)
    p.add_argument("--loads", default="seq-put,put,txn-put,range-miss",
                   help="comma-separated subset of the loads to run")
    p.add_argument("--strace", action="store_true")
    p.add_argument("--perf-stat", action="store_true")
    p.add_argument("--strace-total", type=int, default=10000)
    p.add_argument("--dir", default=None, help="where the data dirs go (default: $TMPDIR)")
    p.add_argument("--load-timeout", type=float, default=120)
    args = p.parse_args()
    rows = []
    if not args.skip_etcd:
        rows += profile("etcd", args.etcd, args)
    if args.before:
        rows += profile("before", args.before, args, args.before_flags)
    rows += profile("etcdpp", args.etcdpp, args, args.etcdpp_flags)
    print("\nper load: WAL fsyncs and backend commits per request and their average ms "
          "(the servers' own histograms, same moment)")
    for r in rows:
        if "wal_fsync_per_req" in r:
            print(f"{r['server']:<7} {r['load']:<10} wal fsync {r['wal_fsync_per_req']}/req "
                  f"{r['wal_fsync_avg_ms']} ms, backend commit {r['backend_commit_per_req']}/req "
                  f"{r['backend_commit_avg_ms']} ms, latency/wal fsync "
                  f"{round(r['avg_ms'] / r['wal_fsync_avg_ms'], 2) if r['wal_fsync_avg_ms'] else '-'}")
    print(f"\n{'server':<7} {'load':<9} {'req/s':>7} {'avg ms':>7} {'p99 ms':>7} "
          f"{'cpu us/req':>10} {'sys/req':>7} {'futex/req':>9} {'cs/req':>6} {'thr':>4} "
          f"{'load1':>5}")
    for r in rows:
        print(f"{r['server']:<7} {r['load']:<9} {r.get('req_s', '-'):>7} {r['avg_ms']:>7} "
              f"{r.get('p99_ms', '-'):>7} {r.get('cpu_us_per_req', '-'):>10} "
              f"{r.get('syscalls_per_req', '-'):>7} {r.get('futex_per_req', '-'):>9} "
              f"{r.get('cs_per_req', '-'):>6} {r.get('threads', '-'):>4} {r['load1']:>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

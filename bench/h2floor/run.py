#!/usr/bin/python3
"""Measures the per-call floor of a unary gRPC Range, four servers side by side.

  h2         h2floor_server: gRPC over HTTP/2 on nghttp2, trivial Range handler
  grpc-twin  h2floor_grpc_twin: the same handler on gRPC C++'s callback API
  etcdpp     the real etcdpp, one member, Range of the absent key "foo",
             with --h2-front=false (gRPC C++ alone, as before the front)
  etcdpp-front  the same with its nghttp2 front, the default since
             2026-12-05 (only when named in --servers)
  etcd       etcd 3.4, one member, the same request

All four run at once on loopback (fresh data dirs, free ports); each load
then runs against each server in turn (each round starting with the next
server), with the unchanged etcdpp-bench:

  conc  --conns 100 --clients 1000 --total T range foo --consistency s
  seq   --conns 1 --clients 1 --total S range foo --consistency s
  put   (optional, etcdpp and etcd only, for scale) as conc, but
        put --key-size 8 --val-size 256 --key-space-size T

Per server and load, from a plain run: calls/s and p99 (etcdpp-bench's
JSON), server CPU µs per call (utime+stime of the server process from
/proc/<pid>/stat across the run, divided by the calls that succeeded),
context switches per call (voluntary+involuntary summed over the server's
threads, /proc/<pid>/task/*/status; threads that exit meanwhile are
missed) and the server's thread count. Then a second, shorter run (--strace-total
calls) under `strace -c -f -p <pid>` gives syscalls and futex calls per call;
strace slows the server, which changes how many calls share a syscall, so
these counts are an upper bound for the plain run's. The 1-minute load
average is printed on every row.

    /usr/bin/python3 bench/h2floor/run.py --bench build/bin/etcdpp-bench \\
        --h2 build/bin/h2floor_server --twin build/bin/h2floor_grpc_twin \\
        --etcdpp build/bin/etcdpp [--etcd /usr/bin/etcd] [--total 50000] \\
        [--rounds 2] [--json-out h2floor.json]
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import compare  # noqa: E402  (cpu_seconds, loadavg_1m, run_bench)
from compare import cluster  # noqa: E402

LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


class Standalone:
    """h2floor_server or its twin: a process that prints its port when serving."""

    def __init__(self, binary, threads):
        self.proc = subprocess.Popen([binary, "--port", "0", "--threads", str(threads)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        line = self.proc.stdout.readline()  # returns at the first line or at exit
        match = LISTENING.search(line)
        if not match:
            self.close()
            raise RuntimeError(f"{binary} did not start: {line!r}")
        self.endpoint = f"127.0.0.1:{match.group(1)}"
        self.pid = self.proc.pid

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def task_ids(pid):
    return os.listdir(f"/proc/{pid}/task")


def context_switches(pid):
    total = 0
    for tid in task_ids(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches",
                                        "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            pass  # the thread exited
    return total


def traced_by(pid, tracer):
    """True once every thread of pid has tracer as its tracer."""
    for tid in task_ids(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                fields = dict(line.split(":\t", 1) for line in f if ":\t" in line)
        except OSError:
            continue
        if int(fields.get("TracerPid", "0")) != tracer:
            return False
    return True


def strace_counts(path):
    """syscall name -> calls, from `strace -c` output."""
    counts = {}
    with open(path) as f:
        for line in f:
            tokens = line.split()
            # % time, seconds, usecs/call, calls, [errors,] name
            if len(tokens) >= 5 and tokens[-1] != "total" and tokens[0][0].isdigit():
                counts[tokens[-1]] = int(tokens[3])
    return counts


def measure(args, name, pid, endpoint, load, bench_args, calls_field="succeeded"):
    row = {"server": name, "load": load, "threads": len(task_ids(pid)),
           "loadavg_1m": compare.loadavg_1m()}
    cpu_before, switches_before = compare.cpu_seconds(pid), context_switches(pid)
    summary, error, cmd = compare.run_bench(args, False, endpoint, bench_args,
                                            args.load_timeout)
    cpu = compare.cpu_seconds(pid) - cpu_before
    switches = context_switches(pid) - switches_before
    row["command"] = compare.printable(cmd, args.bench)
    if error or not summary:
        row["error"] = error
        return row
    calls = summary[calls_field]
    row.update({"calls": calls, "calls_per_s": summary["requests_per_s"],
                "p50_ms": summary["p50_ms"], "p99_ms": summary["p99_ms"], "server_cpu_s": round(cpu, 3),
                "cpu_us_per_call": round(cpu / calls * 1e6, 1),
                "ctxsw_per_call": round(switches / calls, 2),
                "bench_cpu_us_per_call": round(summary["bench_cpu_s"] / calls * 1e6, 1)})
    if args.strace_total:
        row.update(strace_run(args, pid, endpoint, bench_args))
    return row


def strace_run(args, pid, endpoint, bench_args):
    traced_args = list(bench_args)
    traced_args[traced_args.index("--total") + 1] = str(args.strace_total)
    with tempfile.NamedTemporaryFile(prefix="h2floor-strace-", delete=False) as out:
        out_path = out.name
    tracer = subprocess.Popen(["strace", "-c", "-f", "-qq", "-o", out_path, "-p", str(pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cluster.wait_until(lambda: traced_by(pid, tracer.pid), 20, what="strace attached")
        summary, error, _ = compare.run_bench(args, False, endpoint, traced_args,
                                              args.load_timeout)
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
    counts = strace_counts(out_path)
    os.unlink(out_path)
    if error or not summary or not summary["succeeded"]:
        return {"strace_error": error or "no calls"}
    calls = summary["succeeded"]
    return {"strace_calls": calls,
            "syscalls_per_call": round(sum(counts.values()) / calls, 2),
            "futex_per_call": round(counts.get("futex", 0) / calls, 2),
            "top_syscalls": sorted(counts.items(), key=lambda kv: -kv[1])[:6]}


def fmt(row, key, digits=1):
    value = row.get(key)
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_table(rows):
    head = ("round", "server", "load", "calls/s", "p50 ms", "p99 ms", "CPU µs/call",
            "syscalls/call", "futex/call", "ctxsw/call", "threads", "bench µs/call", "load avg")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        if "error" in r:
            print(f"| {r.get('round', '-')} | {r['server']} | {r['load']} | error: {r['error']} |")
            continue
        cells = (fmt(r, "round"), r["server"], r["load"], fmt(r, "calls_per_s", 0),
                 fmt(r, "p50_ms", 3), fmt(r, "p99_ms", 2),
                 fmt(r, "cpu_us_per_call"), fmt(r, "syscalls_per_call", 2),
                 fmt(r, "futex_per_call", 2), fmt(r, "ctxsw_per_call", 2),
                 fmt(r, "threads"), fmt(r, "bench_cpu_us_per_call"), fmt(r, "loadavg_1m", 2))
        print("| " + " | ".join(cells) + " |")


def medians(rows):
    """One row per server and load: the median of each number over the rounds."""
    merged = {}
    for r in rows:
        if "error" not in r:
            merged.setdefault((r["server"], r["load"]), []).append(r)
    out = []
    for (server, load), group in merged.items():
        row = {"server": server, "load": load, "round": f"median of {len(group)}"}
        for key in ("calls_per_s", "p50_ms", "p99_ms", "cpu_us_per_call", "syscalls_per_call",
                    "futex_per_call", "ctxsw_per_call", "threads", "bench_cpu_us_per_call",
                    "loadavg_1m"):
            values = sorted(r[key] for r in group if key in r)
            if values:
                row[key] = values[len(values) // 2]
        out.append(row)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bench", required=True, help="etcdpp-bench binary")
    p.add_argument("--h2", required=True, help="h2floor_server binary")
    p.add_argument("--twin", required=True, help="h2floor_grpc_twin binary")
    p.add_argument("--etcdpp", required=True, help="etcdpp binary")
    p.add_argument("--etcd", default="/usr/bin/etcd")
    p.add_argument("--servers", default="h2,grpc-twin,etcdpp,etcd",
                   help="any of h2, grpc-twin, etcdpp, etcdpp-front, etcd")
    p.add_argument("--loads", default="conc,seq", help="conc, seq, put (comma-separated)")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="threads of h2floor_server and of the twin's gRPC pool")
    p.add_argument("--total", type=int, default=50000, help="calls in the concurrent load")
    p.add_argument("--seq-total", type=int, default=5000, help="calls in the sequential load")
    p.add_argument("--strace-total", type=int, default=5000,
                   help="calls in each strace run (0: no strace)")
    p.add_argument("--rounds", type=int, default=1, help="every load on every server, N times")
    p.add_argument("--load-timeout", type=float, default=180)
    p.add_argument("--json-out")
    args = p.parse_args()

    specs = {
        "conc": ["--conns", "100", "--clients", "1000", "--total", str(args.total),
                 "range", "foo", "--consistency", "s"],
        "seq": ["--conns", "1", "--clients", "1", "--total", str(args.seq_total),
                "range", "foo", "--consistency", "s"],
        # For scale only: what a write costs the real servers (h2 and the
        # twin serve Range alone).
        "put": ["--conns", "100", "--clients", "1000", "--total", str(args.total),
                "put", "--key-size", "8", "--val-size", "256",
                "--key-space-size", str(args.total)],
    }
    servers = {}
    clusters = []
    try:
        for name in args.servers.split(","):
            if name == "h2":
                s = Standalone(args.h2, args.threads)
                servers[name] = (s.pid, s.endpoint, s)
            elif name == "grpc-twin":
                s = Standalone(args.twin, args.threads)
                servers[name] = (s.pid, s.endpoint, s)
            else:
                flags = ["--h2-front=false"] if name == "etcdpp" else []
                c = cluster.Cluster(args.etcd if name == "etcd" else args.etcdpp,
                                    log_level="error", extra_flags=flags).start()
                clusters.append(c)
                servers[name] = (c.members[0].pid, c.members[0].endpoint, None)
        for name, (pid, endpoint, _) in servers.items():  # connections, caches, lazy init
            warm = ["--conns", "10", "--clients", "100", "--total", "2000",
                    "range", "foo", "--consistency", "s"]
            _, error, _ = compare.run_bench(args, False, endpoint, warm, args.load_timeout)
            if error:
                raise RuntimeError(f"{name} warm-up failed: {error}")
        rows = []
        names = list(servers)
        for round_index in range(args.rounds):
            # Each round starts with another server, so none always runs
            # right after the heaviest one (etcd's garbage collector, a
            # neighbour's burst) and its numbers are not the only ones hit.
            shift = round_index % len(names)
            order = names[shift:] + names[:shift]
            for load in args.loads.split(","):
                for name in order:
                    if load == "put" and name in ("h2", "grpc-twin"):
                        continue
                    pid, endpoint, _ = servers[name]
                    row = measure(args, name, pid, endpoint, load, specs[load])
                    row["round"] = round_index + 1
                    rows.append(row)
                    print(f"  {name} {load}: {fmt(row, 'calls_per_s', 0)}/s, "
                          f"{fmt(row, 'cpu_us_per_call')} µs/call, "
                          f"{fmt(row, 'syscalls_per_call', 2)} syscalls/call, "
                          f"load avg {row['loadavg_1m']}", file=sys.stderr, flush=True)
    finally:
        for _, _, s in servers.values():
            if s:
                s.close()
        for c in clusters:
            c.close()
    print_table(rows)
    print()
    if args.rounds > 1:
        print_table(medians(rows))
        print()
    for load in args.loads.split(","):
        print(f"{load}: etcdpp-bench --endpoints <server> --json --request-timeout 10 "
              + " ".join(specs[load]))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

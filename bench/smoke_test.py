#!/usr/bin/python3
"""Smoke test of etcdpp-bench against a server: small put and range loads.

The unary loads run with both of the tool's clients (--client h2, its own
HTTP/2 client, and --client grpc, gRPC C++). Checks that every request
succeeds, that the JSON summary is well formed,
that the put load wrote exactly the key space it was asked to (sequential
keys modulo --key-space-size), read back with the python etcd3 client, and
that txn-put makes one revision per transaction, that txn-mixed writes in
the ratio asked (--rw-ratio), and that watch-latency delivers every event
to every watcher with a latency for each (with both clients), that
lease-keepalive (with both clients) has every keep-alive answered, that
put --rate paces the load (with both clients); and that the HTTP/2 client's calls
held past their deadline (the server stopped with SIGSTOP for longer than
--request-timeout) fail as DeadlineExceeded while the load goes on and ends.

    /usr/bin/python3 bench/smoke_test.py --bench build/bin/etcdpp-bench --server /usr/bin/etcd
"""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "e2e", "lib"))
import cluster  # noqa: E402

TOTAL = 2000
KEY_SPACE = 100


CLIENTS = ("h2", "grpc")


def run_bench(bench, endpoint, client, *load):
    cmd = [bench, "--endpoints", endpoint, "--client", client, "--conns", "4", "--clients", "32",
           "--total", str(TOTAL), "--json"] + list(load)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    if r.returncode != 0 or len(lines) != 1:
        return None, f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout}\n{r.stderr[-2000:]}"
    summary = json.loads(lines[0])
    if summary.get("client") != client:
        return None, f"{' '.join(cmd)}: ran with client {summary.get('client')}"
    return summary, None


def check_deadlines(bench, member):
    """The tool's HTTP/2 client under 1 s deadlines, the server stopped for
    its first 2.5 s: the calls sent meanwhile are reset and counted as past
    their deadline, and the load goes on and ends once the server is back.
    (gRPC C++'s client keeps its own deadlines.)"""
    cmd = [bench, "--endpoints", member.endpoint, "--client", "h2", "--conns", "2",
           "--clients", "8", "--total", "3000", "--request-timeout", "1", "--json",
           "put", "--key-space-size", str(KEY_SPACE)]
    os.kill(member.pid, signal.SIGSTOP)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.5)
    finally:
        os.kill(member.pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=60)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    summary = json.loads(lines[0]) if lines else {}
    if not (summary.get("failed", 0) >= 8 and summary.get("succeeded", 0) > 0 and
            summary["failed"] + summary["succeeded"] == 3000 and "DeadlineExceeded" in err):
        return f"deadlines: exit {proc.returncode}, {summary}, {err[-800:]}"
    return None


def check_rate(bench, endpoint, client):
    """put --rate: 200 requests at 400 per second from 32 clients all
    succeed, and the last is not sent before its turn (199/400 s after the
    first), which a load that ignored the rate would finish far sooner."""
    cmd = [bench, "--endpoints", endpoint, "--client", client, "--conns", "4", "--clients",
           "32", "--total", "200", "--json", "put", "--key-space-size", str(KEY_SPACE),
           "--rate", "400"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    summary = json.loads(lines[0]) if lines else {}
    if r.returncode != 0 or (summary.get("succeeded"), summary.get("failed")) != (200, 0) or \
            summary.get("rate") != 400 or not summary.get("total_s", 0) >= 199 / 400:
        return f"put --rate ({client}): exit {r.returncode}, {summary}, {r.stderr[-500:]}"
    return None


def main():
    parser = cluster.server_arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--bench", required=True)
    args = parser.parse_args()
    failures = []
    checks = 0
    with cluster.Cluster(args.server, size=1, keep=args.keep) as c:
        endpoint = c.members[0].endpoint
        c.client().put("foo", "bar")
        loads = [
            ("put", ["put", "--key-size", "8", "--val-size", "64",
                     "--key-space-size", str(KEY_SPACE), "--sequential-keys"]),
            ("range-linearizable", ["range", "foo", "--consistency", "l"]),
            ("range-serializable", ["range", "foo", "--consistency", "s"]),
        ]
        for client in CLIENTS:
            for op, load in loads:
                checks += 1
                summary, error = run_bench(args.bench, endpoint, client, *load)
                if error:
                    failures.append(error)
                    continue
                if (summary["op"], summary["succeeded"], summary["failed"]) != (op, TOTAL, 0):
                    failures.append(f"{op} ({client}): unexpected summary {summary}")
                elif not (0 < summary["p50_ms"] <= summary["p99_ms"] <= summary["slowest_ms"]):
                    failures.append(f"{op} ({client}): inconsistent percentiles {summary}")
        checks += 1
        # Sequential keys are varint(i % KEY_SPACE) in 8 zero-padded bytes.
        written = [m for _, m in c.client().get_all() if m.key != b"foo"]
        versions = sorted(m.version for m in written)
        # Both clients ran the put load: each key twice as often.
        expected_version = len(CLIENTS) * TOTAL // KEY_SPACE
        if len(written) != KEY_SPACE or versions != [expected_version] * KEY_SPACE:
            failures.append(f"put wrote {len(written)} keys with versions "
                            f"{versions[:5]}..., expected {KEY_SPACE} keys of version "
                            f"{expected_version}")
        # Each transaction is one revision, whatever its number of puts.
        for client in CLIENTS:
            checks += 1
            before = c.client().get_response("foo").header.revision
            summary, error = run_bench(args.bench, endpoint, client, "txn-put", "--txn-ops", "4",
                                       "--key-space-size", str(KEY_SPACE), "--sequential-keys")
            after = c.client().get_response("foo").header.revision
            if error:
                failures.append(error)
            elif (summary["succeeded"], summary["failed"], after - before) != (TOTAL, 0, TOTAL):
                failures.append(f"txn-put ({client}): summary {summary}, "
                                f"revisions {before} -> {after}")
        # txn-mixed: --rw-ratio 0 is writes only (one revision each); with
        # --rw-ratio 1 about half the txns write (binomial: 40-60 % holds
        # with overwhelming odds for 2000 requests).
        for ratio, low, high, client in (("0", TOTAL, TOTAL, "h2"),
                                         ("1", TOTAL * 2 // 5, TOTAL * 3 // 5, "h2"),
                                         ("1", TOTAL * 2 // 5, TOTAL * 3 // 5, "grpc")):
            checks += 1
            before = c.client().get_response("foo").header.revision
            summary, error = run_bench(args.bench, endpoint, client, "txn-mixed",
                                       "--rw-ratio", ratio,
                                       "--key-space-size", str(KEY_SPACE))
            writes = c.client().get_response("foo").header.revision - before
            if error:
                failures.append(error)
            elif (summary["succeeded"], summary["failed"]) != (TOTAL, 0) or \
                    not low <= writes <= high:
                failures.append(f"txn-mixed --rw-ratio {ratio}: summary {summary}, "
                                f"{writes} writes, expected {low}..{high}")
        for client in CLIENTS:
            checks += 1
            cmd = [args.bench, "--endpoints", endpoint, "--client", client, "--json",
                   "watch-latency", "--streams", "2", "--watchers-per-stream", "3",
                   "--put-total", "50", "--put-rate", "500"]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
            summary = json.loads(lines[0]) if lines else {}
            if r.returncode != 0 or summary.get("events") != 300 or \
                    summary.get("succeeded") != 300 or not summary.get("p99_ms", 0) > 0 or \
                    summary.get("client") != client:
                failures.append(f"watch-latency ({client}): exit {r.returncode}, {summary}, "
                                f"{r.stderr[-500:]}")
        for client in CLIENTS:
            checks += 1
            cmd = [args.bench, "--endpoints", endpoint, "--client", client, "--clients", "3",
                   "--total", "300", "--json", "lease-keepalive"]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
            summary = json.loads(lines[0]) if lines else {}
            if r.returncode != 0 or summary.get("keepalives") != 300 or \
                    summary.get("client") != client or not summary.get("per_s", 0) > 0:
                failures.append(f"lease-keepalive ({client}): exit {r.returncode}, {summary}, "
                                f"{r.stderr[-500:]}")
        for client in CLIENTS:
            checks += 1
            error = check_rate(args.bench, endpoint, client)
            if error:
                failures.append(error)
        checks += 1
        error = check_deadlines(args.bench, c.members[0])
        if error:
            failures.append(error)
    for f in failures:
        print("FAIL " + f)
    print(f"{checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

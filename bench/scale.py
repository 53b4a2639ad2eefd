#!/usr/bin/python3
"""A member with many keys, etcd 3.4 and etcdpp side by side in one run.

For each server (etcd first, then etcdpp), one fresh member on loopback with
the same flags, then in order:

  load       --keys keys of --val-size bytes (etcd's benchmark keys: the Go
             varint of the index, zero-padded to 8 bytes), written
             --passes times (the second pass gives compaction a whole
             history to remove) by etcdpp-bench txn-put --sequential-keys
             (--txn-ops puts per transaction). Wall time and server CPU.
  size       peak RSS so far (VmHWM), the current RSS split into anonymous
             memory and mapped file pages, the data dir's allocated bytes;
             the split again after the ranges below, after each restart and
             after the compaction (what reads and writes leave mapped).
  range      a linearizable range of --range-keys consecutive keys
             [k_i, k_{i+n}) from the middle of the key space, --range-runs
             times; min / median / max wall latency seen by python etcd3's
             stub (the same client for both servers, so its decoding cost
             is the same for both).
  counted    a limit-1 range over every key and a count_only of every key:
             small replies whose count still covers all keys.
  restart    kill -9, start again on the same data dir, time from spawn
             until the first linearizable get succeeds.
  compact    Compact(current revision, physical=true) while a prober thread
             does one small put and one linearizable get after another:
             when the compaction is answered, and the prober's longest and
             99th-percentile request and its requests over --slow-ms from
             the compaction's start until --after-compact-s after its answer
             (and before it, for the baseline); then, without load, when
             the server's CPU goes quiet (history removed).
  restart    again, after the compaction.
  send       put a marker key, MemberAdd a new member, start it (empty data
             dir, --initial-cluster-state existing), time from spawn until a
             serializable get of the marker on the new member returns it.
             --snapshot-count is low (default 10000) on both servers, so the
             leader has cut its log and must send its whole store.

    /usr/bin/python3 bench/scale.py --bench build/bin/etcdpp-bench \\
        --etcdpp build/bin/etcdpp [--etcd /usr/bin/etcd] [--keys 1000000] \\
        [--json-out scale.json] [--through counted]

The 1-minute load average is printed with every number: on a shared machine
wall times are noisy, CPU seconds less so.
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

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")


def loadavg():
    return round(os.getloadavg()[0], 2)


cpu_seconds = cluster.cpu_seconds


def dir_bytes(path):
    """Allocated bytes (like du): LMDB's map and etcd's WAL files are sparse
    or preallocated, so apparent sizes would mislead."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def benchmark_key(index, size=8):
    """etcdpp-bench's (and etcd's tools/benchmark's) key: the Go varint
    (zigzag) of the index, zero-padded to `size` bytes."""
    value = index << 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out[:size]) + bytes(max(0, size - len(out)))


def mib(n):
    return round(n / (1 << 20), 1)


def memory(pid):
    """Peak RSS (VmHWM) and the current split of RSS into anonymous memory
    and mapped file pages (an LMDB or bbolt map counts in RSS for the pages
    touched, though the kernel may drop them like page cache), in MiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                fields[name] = round(int(rest.split()[0]) / 1024, 1)
    return {"rss_peak_mib": fields.get("VmHWM"), "rss_mib": fields.get("VmRSS"),
            "rss_anon_mib": fields.get("RssAnon"), "rss_file_mib": fields.get("RssFile")}


class Prober(threading.Thread):
    """One small put then one linearizable get, again and again; records the
    start time and duration of each request."""

    def __init__(self, stub, etcdrpc):
        super().__init__(daemon=True)
        self.stub = stub
        self.rpc = etcdrpc
        self.samples = []  # (start monotonic, seconds)
        self.errors = 0
        self.stopping = threading.Event()

    def run(self):
        put = self.rpc.PutRequest(key=b"scale-probe", value=b"x" * 16)
        get = self.rpc.RangeRequest(key=b"scale-probe")
        while not self.stopping.is_set():
            for call, request in ((self.stub.Put, put), (self.stub.Range, get)):
                started = time.monotonic()
                try:
                    call(request, timeout=30)
                except Exception:
                    self.errors += 1
                self.samples.append((started, time.monotonic() - started))

    def overlapping(self, since, until):
        """Durations of the requests that were running at some point in [since, until]."""
        return [d for s, d in self.samples if s <= until and s + d >= since]


def percentile(values, fraction):
    """The smallest value at or above `fraction` of the values (nearest rank)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.999999) - 1))]


def ms(seconds):
    return round(seconds * 1000, 1) if seconds is not None else None


def rpc_module():
    from etcd3 import etcdrpc
    return etcdrpc


def kv_stub(port):
    import grpc
    channel = grpc.insecure_channel(f"127.0.0.1:{port}",
                                    options=[("grpc.max_receive_message_length", 1 << 30)])
    return channel, rpc_module().KVStub(channel)


def run_load(args, member, log):
    """Writes every key --passes times; returns the per-pass results."""
    passes = []
    txns = (args.keys + args.txn_ops - 1) // args.txn_ops
    for n in range(args.passes):
        cmd = [args.bench, "--endpoints", member.endpoint, "--json", "--request-timeout", "60",
               "--conns", str(args.conns), "--clients", str(args.clients), "--total", str(txns),
               "txn-put", "--txn-ops", str(args.txn_ops), "--sequential-keys",
               "--key-size", "8", "--val-size", str(args.val_size),
               "--key-space-size", str(args.keys)]
        cpu_before = cpu_seconds(member.pid)
        started = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.load_timeout)
        wall = time.monotonic() - started
        if r.returncode != 0:
            raise RuntimeError(f"load failed: {r.stderr.strip()[-500:]}")
        summary = {}
        for line in r.stdout.splitlines():
            if line.startswith("{"):
                summary = json.loads(line)
        entry = {"pass": n + 1, "wall_s": round(wall, 1),
                 "server_cpu_s": round(cpu_seconds(member.pid) - cpu_before, 1),
                 "failed": summary.get("failed"), "loadavg": loadavg(),
                 "command": " ".join(["etcdpp-bench"] + cmd[1:])}
        log(f"load pass {n + 1}: {entry['wall_s']} s, server cpu {entry['server_cpu_s']} s, "
            f"failed {entry['failed']}, load {entry['loadavg']}")
        passes.append(entry)
    return passes


def measure_range(args, stub, rpc, log):
    keys = sorted(benchmark_key(i) for i in range(args.keys))
    first = max(0, len(keys) // 2 - args.range_keys // 2)
    last = min(len(keys), first + args.range_keys)
    request = rpc.RangeRequest(key=keys[first],
                               range_end=keys[last] if last < len(keys) else b"\0")
    latencies = []
    count = None
    for _ in range(args.range_runs):
        started = time.monotonic()
        reply = stub.Range(request, timeout=60)
        latencies.append(time.monotonic() - started)
        count = len(reply.kvs)
    result = {"keys_returned": count, "runs": args.range_runs,
              "min_ms": round(min(latencies) * 1000, 1),
              "median_ms": round(statistics.median(latencies) * 1000, 1),
              "max_ms": round(max(latencies) * 1000, 1), "loadavg": loadavg()}
    log(f"range of {count} keys: min {result['min_ms']} ms, median {result['median_ms']} ms, "
        f"max {result['max_ms']} ms, load {result['loadavg']}")
    return result


def measure_counted_ranges(args, stub, rpc, log):
    """Ranges whose reply is small but whose count covers every key: a limit
    of 1 from the first key to the end, and count_only of everything."""
    requests = {
        "limit_1_to_end": rpc.RangeRequest(key=b"\0", range_end=b"\0", limit=1, keys_only=True),
        "count_only_all": rpc.RangeRequest(key=b"\0", range_end=b"\0", count_only=True),
    }
    result = {}
    for name, request in requests.items():
        latencies = []
        count = None
        for _ in range(args.range_runs):
            started = time.monotonic()
            reply = stub.Range(request, timeout=120)
            latencies.append(time.monotonic() - started)
            count = reply.count
        result[name] = {"count": count, "median_ms": round(statistics.median(latencies) * 1000, 1),
                        "min_ms": round(min(latencies) * 1000, 1), "loadavg": loadavg()}
        log(f"{name} (count {count}): min {result[name]['min_ms']} ms, median "
            f"{result[name]['median_ms']} ms, load {result[name]['loadavg']}")
    return result


def measure_compaction(args, stub, rpc, member, log):
    prober = Prober(stub, rpc)
    prober.start()
    time.sleep(args.baseline_s)  # a baseline of the prober's own latency
    baseline_end = time.monotonic()
    rev = stub.Range(rpc.RangeRequest(key=b"scale-probe"), timeout=10).header.revision
    cpu_before = cpu_seconds(member.pid)
    started = time.monotonic()
    stub.Compact(rpc.CompactionRequest(revision=rev, physical=True), timeout=args.load_timeout)
    finished = time.monotonic()
    # A server may go on removing history after it answered (etcdpp does:
    # the rest is spread over its next write transactions), so the window
    # watched for stalls goes on after the answer.
    time.sleep(args.after_compact_s)
    window_end = time.monotonic()
    cpu = cpu_seconds(member.pid) - cpu_before
    prober.stopping.set()
    prober.join(timeout=60)
    idle_after = wait_until_idle(member.pid, args.load_timeout) - started
    during = prober.overlapping(started, window_end)
    before = prober.overlapping(baseline_end - args.baseline_s, baseline_end - 0.001)
    in_window = [d for s, d in prober.samples if started <= s <= window_end]
    slow = sum(1 for d in in_window if d > args.slow_ms / 1000)
    result = {"revision": rev, "answer_s": round(finished - started, 2),
              "idle_after_s": round(idle_after, 1),
              "window_s": round(window_end - started, 2),
              "server_cpu_in_window_s": round(cpu, 2),
              "longest_request_during_ms": ms(max(during, default=None)),
              "p99_request_during_ms": ms(percentile(during, 0.99)),
              "longest_request_before_ms": ms(max(before, default=None)),
              "p99_request_before_ms": ms(percentile(before, 0.99)),
              "probe_requests_during": len(in_window), "slow_requests_during": slow,
              "probe_errors": prober.errors, "loadavg": loadavg()}
    log(f"compaction at {rev}: answered after {result['answer_s']} s; over "
        f"{result['window_s']} s from its start (server cpu {result['server_cpu_in_window_s']} s): "
        f"longest probe request {result['longest_request_during_ms']} ms, p99 "
        f"{result['p99_request_during_ms']} ms, {slow} of {len(in_window)} over {args.slow_ms} ms "
        f"(before: longest {result['longest_request_before_ms']} ms, p99 "
        f"{result['p99_request_before_ms']} ms); server idle (history removed) "
        f"{result['idle_after_s']} s after the compaction's start, load {result['loadavg']}")
    return result


def wait_until_idle(pid, timeout, quiet_s=2.0, busy_cpu_s=0.05):
    """Waits, with no client load, until the server used less than
    busy_cpu_s of CPU over quiet_s: a server that goes on removing compacted
    history after its answer (etcdpp) is done then. Returns the monotonic
    time the quiet stretch began."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        began, cpu = time.monotonic(), cpu_seconds(pid)
        time.sleep(quiet_s)
        if cpu_seconds(pid) - cpu < busy_cpu_s:
            return began
    raise TimeoutError(f"the server was still busy after {timeout} s")


def first_linearizable_read(port, timeout):
    """Seconds until a linearizable get on the member at port succeeds."""
    rpc = rpc_module()
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        channel, stub = kv_stub(port)
        try:
            stub.Range(rpc.RangeRequest(key=b"scale-probe"), timeout=1)
            return time.monotonic() - started
        except Exception:
            time.sleep(0.01)
        finally:
            channel.close()
    raise TimeoutError(f"no linearizable read within {timeout} s")


def measure_restart(args, c, log, when):
    c.kill(0)
    started = time.monotonic()
    c.spawn(0)
    first_linearizable_read(c.members[0].client_port, args.load_timeout)
    seconds = time.monotonic() - started
    result = {"seconds": round(seconds, 2), "loadavg": loadavg()}
    result.update(memory(c.members[0].pid))
    log(f"restart {when} after kill -9 to first linearizable read: {result['seconds']} s, "
        f"RSS then {result['rss_mib']} MiB, load {result['loadavg']}")
    return result


def measure_snapshot_send(args, c, log):
    rpc = rpc_module()
    leader = c.members[0]
    channel, stub = kv_stub(leader.client_port)
    marker = b"scale-marker"
    stub.Put(rpc.PutRequest(key=marker, value=b"caught up"), timeout=10)
    channel.close()

    new = cluster.Member("m1", c.base_dir)
    c.members.append(new)
    c.size = 2
    import grpc
    admin_channel = grpc.insecure_channel(leader.endpoint)
    rpc.ClusterStub(admin_channel).MemberAdd(rpc.MemberAddRequest(peerURLs=[new.peer_url]),
                                             timeout=10)
    admin_channel.close()
    leader_cpu_before = cpu_seconds(leader.pid)
    started = time.monotonic()
    new._log_file = open(new.log_path, "ab")
    new.proc = subprocess.Popen(cluster.die_with_parent(c.command(1, state="existing")),
                                stdout=new._log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = started + args.load_timeout
    seconds = None
    while time.monotonic() < deadline:
        if not new.running():
            raise RuntimeError(f"new member exited:\n{new.log_tail()}")
        channel, stub = kv_stub(new.client_port)
        try:
            reply = stub.Range(rpc.RangeRequest(key=marker, serializable=True), timeout=1)
            if reply.kvs:
                seconds = time.monotonic() - started
                break
        except Exception:
            pass
        finally:
            channel.close()
        time.sleep(0.05)
    if seconds is None:
        raise TimeoutError("the new member did not catch up")
    result = {"seconds": round(seconds, 2),
              "leader_cpu_s": round(cpu_seconds(leader.pid) - leader_cpu_before, 2),
              "new_member_rss_peak_mib": round(new.vm_hwm_kib() / 1024, 1),
              "new_member_data_dir_mib": mib(dir_bytes(new.data_dir)),
              "loadavg": loadavg()}
    log(f"snapshot send: new member caught up after {result['seconds']} s "
        f"(leader cpu {result['leader_cpu_s']} s), its peak RSS "
        f"{result['new_member_rss_peak_mib']} MiB, data dir {result['new_member_data_dir_mib']} "
        f"MiB, load {result['loadavg']}")
    return result


def run_server(name, binary, args):
    def log(message):
        print(f"  {name}: {message}", flush=True)

    result = {"server": name, "binary": binary, "keys": args.keys, "val_size": args.val_size}
    flags = ["--snapshot-count", str(args.snapshot_count),
             "--quota-backend-bytes", str(args.quota_backend_bytes)]
    rpc = rpc_module()
    with cluster.Cluster(binary, size=1, extra_flags=flags, log_level="error",
                         start_timeout=120) as c:
        member = c.members[0]
        result["load"] = run_load(args, member, log)
        result["after_load"] = memory(member.pid)
        result["after_load"].update(data_dir_mib=mib(dir_bytes(member.data_dir)), loadavg=loadavg())
        log(f"after load: {result['after_load']}")
        channel, stub = kv_stub(member.client_port)
        result["range"] = measure_range(args, stub, rpc, log)
        result["after_range"] = memory(member.pid)
        log(f"after the ranges of {args.range_keys} keys: {result['after_range']}")
        result["counted_ranges"] = measure_counted_ranges(args, stub, rpc, log)
        channel.close()
        result["peak_before_restart"] = memory(member.pid)
        log(f"after the counted ranges: {result['peak_before_restart']}")
        if args.through == "counted":
            return result
        result["restart_after_load"] = measure_restart(args, c, log, "after the load")
        channel, stub = kv_stub(member.client_port)
        result["compaction"] = measure_compaction(args, stub, rpc, member, log)
        channel.close()
        result["after_compaction"] = memory(member.pid)
        result["after_compaction"].update(data_dir_mib=mib(dir_bytes(member.data_dir)),
                                          loadavg=loadavg())
        log(f"after compaction: {result['after_compaction']}")
        result["restart_after_compaction"] = measure_restart(args, c, log, "after the compaction")
        result["snapshot_send"] = measure_snapshot_send(args, c, log)
        result["snapshot_send"]["leader"] = memory(member.pid)
    return result


def print_table(results):
    rows = [
        ("load, all passes (s)", lambda r: round(sum(p["wall_s"] for p in r["load"]), 1)),
        ("load server CPU (s)", lambda r: round(sum(p["server_cpu_s"] for p in r["load"]), 1)),
        ("peak RSS over load and ranges (MiB)", lambda r: r["peak_before_restart"]["rss_peak_mib"]),
        ("  RSS after load: anon (MiB)", lambda r: r["after_load"]["rss_anon_mib"]),
        ("  RSS after load: file (MiB)", lambda r: r["after_load"]["rss_file_mib"]),
        ("  RSS after 10k ranges: file (MiB)", lambda r: r["after_range"]["rss_file_mib"]),
        ("  RSS after counted ranges: anon (MiB)",
         lambda r: r["peak_before_restart"]["rss_anon_mib"]),
        ("  RSS after counted ranges: file (MiB)",
         lambda r: r["peak_before_restart"]["rss_file_mib"]),
        ("data dir after load (MiB)", lambda r: r["after_load"]["data_dir_mib"]),
        ("range of --range-keys keys, median (ms)", lambda r: r["range"]["median_ms"]),
        ("limit 1 over all keys, median (ms)",
         lambda r: r["counted_ranges"]["limit_1_to_end"]["median_ms"]),
        ("count_only of all keys, median (ms)",
         lambda r: r["counted_ranges"]["count_only_all"]["median_ms"]),
        ("restart after load (s)", lambda r: r["restart_after_load"]["seconds"]),
        ("compaction answered after (s)", lambda r: r["compaction"]["answer_s"]),
        ("server idle after compaction start (s)", lambda r: r["compaction"]["idle_after_s"]),
        ("longest probe during compaction (ms)",
         lambda r: r["compaction"]["longest_request_during_ms"]),
        ("p99 probe during compaction (ms)", lambda r: r["compaction"]["p99_request_during_ms"]),
        ("slow probes during compaction",
         lambda r: f"{r['compaction']['slow_requests_during']}/"
                   f"{r['compaction']['probe_requests_during']}"),
        ("longest probe before compaction (ms)",
         lambda r: r["compaction"]["longest_request_before_ms"]),
        ("p99 probe before compaction (ms)", lambda r: r["compaction"]["p99_request_before_ms"]),
        ("RSS after restart: anon (MiB)", lambda r: r["restart_after_load"]["rss_anon_mib"]),
        ("RSS after restart: file (MiB)", lambda r: r["restart_after_load"]["rss_file_mib"]),
        ("peak RSS, restart to compaction end (MiB)", lambda r: r["after_compaction"]["rss_peak_mib"]),
        ("  RSS after compaction: anon (MiB)", lambda r: r["after_compaction"]["rss_anon_mib"]),
        ("  RSS after compaction: file (MiB)", lambda r: r["after_compaction"]["rss_file_mib"]),
        ("data dir after compaction (MiB)", lambda r: r["after_compaction"]["data_dir_mib"]),
        ("restart after compaction (s)", lambda r: r["restart_after_compaction"]["seconds"]),
        ("snapshot send, new member caught up (s)", lambda r: r["snapshot_send"]["seconds"]),
        ("leader peak RSS since restart (MiB)", lambda r: r["snapshot_send"]["leader"]["rss_peak_mib"]),
        ("new member peak RSS (MiB)", lambda r: r["snapshot_send"]["new_member_rss_peak_mib"]),
    ]
    print()
    print(f"{'':<42}" + "".join(f"{r['server']:>12}" for r in results))
    def cell(get, r):
        try:
            return get(r)
        except KeyError:  # a phase left out with --through
            return "-"

    for label, get in rows:
        print(f"{label:<42}" + "".join(f"{cell(get, r)!s:>12}" for r in results))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", required=True, help="etcdpp-bench binary")
    p.add_argument("--etcd", default="/usr/bin/etcd", help="reference etcd binary ('' to skip)")
    p.add_argument("--etcdpp", help="etcdpp binary (omitted: etcd only)")
    p.add_argument("--keys", type=int, default=1000000)
    p.add_argument("--val-size", type=int, default=256)
    p.add_argument("--passes", type=int, default=2, help="times every key is written")
    p.add_argument("--txn-ops", type=int, default=64, help="puts per load transaction")
    p.add_argument("--conns", type=int, default=4)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--range-keys", type=int, default=10000)
    p.add_argument("--range-runs", type=int, default=10)
    p.add_argument("--baseline-s", type=float, default=2.0,
                   help="prober time before the compaction starts")
    p.add_argument("--after-compact-s", type=float, default=20.0,
                   help="prober time after the compaction's answer")
    p.add_argument("--slow-ms", type=float, default=100.0,
                   help="probe requests longer than this are counted as slow")
    p.add_argument("--snapshot-count", type=int, default=10000)
    p.add_argument("--quota-backend-bytes", type=int, default=8 * 1024 ** 3)
    p.add_argument("--load-timeout", type=float, default=3600)
    p.add_argument("--json-out", help="also write all results as JSON here")
    p.add_argument("--through", choices=["counted", "all"], default="all",
                   help="stop each server after this phase (counted: load, size, ranges)")
    args = p.parse_args()

    servers = []
    if args.etcd:
        servers.append(("etcd", args.etcd))
    if args.etcdpp:
        servers.append(("etcdpp", args.etcdpp))
    results = []
    print(f"load average at start: {loadavg()}", flush=True)
    for name, binary in servers:
        print(f"{name}: {binary}", flush=True)
        results.append(run_server(name, binary, args))
    print_table(results)
    print(f"load average at end: {loadavg()}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

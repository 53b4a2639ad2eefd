#!/usr/bin/python3
"""Keys as etcd allows them, end to end, with the real clients.

  * `etcdctl check perf --load s` and `etcdctl check datascale --load s`
    (etcdctl 3.4; check perf's keys are a prefix plus 256 mostly-zero bytes)
    run to the end with no request error. Their PASS/FAIL verdict on
    throughput and latency judges this machine's speed, so it is printed, not
    asserted.
  * A 1 MiB key round trip through etcdctl, keys with 0x00 bytes through
    python etcd3 (put, get, prefix and from-key ranges, delete), and a
    request over --max-request-bytes refused with etcd's message.

    /usr/bin/python3 long_keys_test.py --server build/bin/etcdpp [--load s]

--load m or l runs check perf at that load too (a minute or two each);
--perf-only runs only the check perf loads asked for (ctest
e2e_kv_check_perf_ml: m and l). Prints a closing "N passed, N failed" line;
exits non-zero on any failure.
"""

import os
import queue
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

RESULTS = []


def _ignore_watcher_after_close(args, default=threading.excepthook):
    """python-etcd3 0.12's watcher thread re-opens its stream forever and dies
    with "Channel closed" once the client is closed at the end: not a failure."""
    if (args.thread is not None and args.thread.name.startswith("etcd3_watch_")
            and isinstance(args.exc_value, ValueError)):
        return
    default(args)


threading.excepthook = _ignore_watcher_after_close


def check(name, ok, detail=""):
    RESULTS.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f": {detail}" if detail and not ok else ""))
    sys.stdout.flush()


VERDICT = re.compile(r"(PASS|FAIL|Start|Slowest request|Stddev)\b.*")


def report_lines(text):
    """The tool's verdict lines. Its progress bar ends without a newline, so
    the first verdict may share the bar's line: keep what follows the bar."""
    lines = []
    for line in re.split(r"[\r\n]+", text):
        m = VERDICT.search(line)
        if m:
            lines.append(m.group(0).strip())
    return lines


def run_check_perf(c, load, timeout):
    start = time.monotonic()
    r = c.etcdctl("check", "perf", "--load", load, timeout=timeout)
    elapsed = time.monotonic() - start
    out = r.stdout + r.stderr
    lines = report_lines(out)
    print(f"--- etcdctl check perf --load {load} ({elapsed:.0f} s, exit {r.returncode}) ---")
    for line in lines:
        print("   ", line)
    # check perf counts every failed request in its error distribution and
    # prints it as "FAIL: too many errors" / "FAIL: ERROR(...) -> n".
    errors = [line for line in lines if "too many errors" in line or "ERROR(" in line]
    check(f"check perf --load {load}: no request errors", not errors, "\n".join(errors) or out[-2000:])
    check(f"check perf --load {load}: ran to its throughput verdict",
          any("Throughput" in line for line in lines), out[-2000:])
    # A FAIL verdict may only be about speed.
    speed_only = all(line.startswith("PASS") or "Throughput too low" in line
                     or "Slowest request took too long" in line or "Stddev too high" in line
                     or line == "FAIL" for line in lines)
    check(f"check perf --load {load}: any FAIL is a speed verdict only", speed_only, "\n".join(lines))
    check(f"check perf --load {load}: no key errors", "key is too large" not in out, out[-2000:])


def run_check_datascale(c, timeout):
    start = time.monotonic()
    r = c.etcdctl("check", "datascale", "--load", "s", timeout=timeout)
    elapsed = time.monotonic() - start
    out = r.stdout + r.stderr
    lines = report_lines(out)
    print(f"--- etcdctl check datascale --load s ({elapsed:.0f} s, exit {r.returncode}) ---")
    for line in lines:
        print("   ", line)
    check("check datascale --load s: exit 0", r.returncode == 0, out[-2000:])
    check("check datascale --load s: memory reported",
          any("Approximate system memory used" in line for line in lines), out[-2000:])


def run_megabyte_key(c):
    # One argv string is capped at 128 KiB by Linux, so the 1 MiB key goes
    # through `etcdctl txn` on stdin (its put and get are the same requests).
    key = "mib/" + "k" * (1 << 20)
    r = c.etcdctl("txn", stdin=f"\nput {key} one-mebibyte\n\n\n", timeout=60)
    check("1 MiB key: etcdctl put (txn)", r.returncode == 0 and r.stdout == "SUCCESS\n\nOK\n",
          r.stderr[-500:])
    r = c.etcdctl("txn", stdin=f"\nget {key}\n\n\n", timeout=60)
    check("1 MiB key: etcdctl get (txn) returns key and value",
          r.returncode == 0 and f"\n{key}\none-mebibyte\n" in r.stdout, r.stderr[-500:])
    r = c.etcdctl("get", "--prefix", "mib/", "--keys-only", timeout=60)
    check("1 MiB key: etcdctl get --prefix", r.returncode == 0 and r.stdout.strip() == key,
          r.stderr[-500:])
    # Plain put/get with a key as long as one argument may be (100 KiB).
    key = "arg/" + "\u00e9" * 50000
    r = c.etcdctl("put", key, "v")
    check("100 KiB key: etcdctl put", r.returncode == 0 and r.stdout.strip() == "OK", r.stderr)
    r = c.etcdctl("get", key, "--print-value-only")
    check("100 KiB key: etcdctl get", r.returncode == 0 and r.stdout.strip() == "v", r.stderr)
    # Over --max-request-bytes (1.5 MiB by default) but under the gRPC
    # message limits of client and server (2 MiB): etcd's error.
    big = "big/" + "k" * 1600000
    r = c.etcdctl("txn", stdin=f"\nput {big} v\n\n\n", timeout=60)
    check("1.6 MB key: etcdctl refused with 'request is too large'",
          r.returncode != 0 and "etcdserver: request is too large" in r.stderr, r.stderr[-500:])


def run_zero_bytes(c):
    client = c.client(timeout=30)
    keys = [b"z\x00", b"z\x00\x00", b"z\x00a", b"z\x01", b"z", b"z" + b"\x00" * 300,
            b"z" + b"\x00" * 300 + b"\x01", b"z" + b"\xff" * 600, b"z\x00" + b"q" * 70000]
    for i, k in enumerate(keys):
        client.put(k, b"v%d" % i)
    for i, k in enumerate(keys):
        value, meta = client.get(k)
        check(f"0x00 key {k[:8]!r}...({len(k)} B): get", value == b"v%d" % i and meta.key == k)
    got = [meta.key for _, meta in client.get_prefix(b"z")]
    check("0x00 keys: prefix range in byte order", got == sorted(keys),
          f"{[g[:6] for g in got]}")
    got = [meta.key for _, meta in client.get_range(b"z\x00", b"z\x01")]
    check("0x00 keys: [z\\x00, z\\x01) range",
          got == sorted(k for k in keys if b"z\x00" <= k < b"z\x01"))
    got = [meta.key for _, meta in client.get_range(b"z" + b"\x00" * 300, b"\x00")]
    check("0x00 keys: from-key range",
          got[:3] == sorted(k for k in keys if k >= b"z" + b"\x00" * 300)[:3])
    check("0x00 keys: delete", client.delete(b"z" + b"\x00" * 300)
          and client.get(b"z" + b"\x00" * 300)[0] is None)
    # Watch: history from a revision, and a live watch, on a long 0x00 key.
    long_key = b"w\x00" * 400 + b"tail"
    rev = client.put(long_key, b"first").header.revision
    event = client.watch_once(long_key, timeout=10, start_revision=rev)
    check("0x00 long key: watch from its revision", event.key == long_key and event.value == b"first",
          repr(event))
    events = queue.Queue()
    watch_id = client.add_watch_prefix_callback(b"w\x00", events.put)
    client.put(long_key, b"second")
    try:
        got = events.get(timeout=10)
        got_events = getattr(got, "events", [got])
        check("0x00 long key: live prefix watch",
              any(e.key == long_key and e.value == b"second" for e in got_events), repr(got))
    except queue.Empty:
        check("0x00 long key: live prefix watch", False, "no event within 10 s")
    client.cancel_watch(watch_id)

    # Over the request limit through python etcd3 too (it raises the gRPC
    # error itself).
    import grpc
    try:
        client.put(b"\x00" * 1600000, b"v")
        check("1.6 MB key: python etcd3 refused", False, "accepted")
    except grpc.RpcError as e:
        check("1.6 MB key: python etcd3 refused with 'request is too large'",
              e.code() == grpc.StatusCode.INVALID_ARGUMENT
              and "etcdserver: request is too large" in e.details(), f"{e.code()} {e.details()}")


def main():
    p = cluster.server_arg_parser(__doc__)
    p.add_argument("--load", action="append", default=[],
                   help="check perf loads to run (default: s)")
    p.add_argument("--perf-only", action="store_true",
                   help="only the check perf loads: no key checks, no check datascale")
    args = p.parse_args()
    loads = args.load or ["s"]
    with cluster.Cluster(args.server, size=1, keep=args.keep) as c:
        if not args.perf_only:
            run_zero_bytes(c)
            run_megabyte_key(c)
        for load in loads:
            run_check_perf(c, load, timeout={"s": 180, "m": 300, "l": 400, "xl": 600}[load])
        if not args.perf_only:
            run_check_datascale(c, timeout=240)
        if not all(RESULTS):
            c.print_log_tails(5)
    failed = RESULTS.count(False)
    print(f"{len(RESULTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

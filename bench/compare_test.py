#!/usr/bin/python3
"""Quick check of bench/compare.py: tiny totals, every load, etcd and etcdpp,
shared and pinned, a few preloaded keys.

Checks that the script succeeds, that its JSON has every load for both
servers in both setups with a nonzero throughput, a count of completed
requests and the server's and the benchmark's CPU per request, that the
etcdpp/etcd ratios are there, that seq-put carries its fdatasync baseline
and its round-trip floor, and that the plot was written as a PNG.

    /usr/bin/python3 bench/compare_test.py --bench build/bin/etcdpp-bench \\
        --etcdpp build/bin/etcdpp [--etcd /usr/bin/etcd]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from compare import ALL_LOADS  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", required=True)
    p.add_argument("--etcdpp", required=True)
    p.add_argument("--etcd", default="/usr/bin/etcd")
    args = p.parse_args()
    if not os.access(args.etcd, os.X_OK):
        print(f"FAIL {args.etcd} missing: install the Debian package etcd-server")
        return 1
    failures = []
    with tempfile.TemporaryDirectory(prefix="etcdpp-compare-test-") as out:
        json_path = os.path.join(out, "results.json")
        cmd = ["/usr/bin/python3", os.path.join(HERE, "compare.py"), "--bench", args.bench,
               "--etcd", args.etcd, "--etcdpp", args.etcdpp, "--pin", "both",
               "--keys", "300", "--conns", "4", "--clients", "16", "--total", "200",
               "--watch-streams", "2", "--watchers", "10", "--watch-puts", "10",
               "--latency-puts", "20", "--latency-put-rate", "200", "--seq-total", "20",
               "--load-timeout", "60", "--json-out", json_path]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
        if r.returncode != 0:
            failures.append(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout[-3000:]}\n"
                            f"{r.stderr[-3000:]}")
        report = {}
        if os.path.exists(json_path):
            with open(json_path) as f:
                report = json.load(f)
        else:
            failures.append("no JSON written")
        runs = {(run["setup"], run["server"]): run for run in report.get("runs", [])}
        for setup in ("shared", "pinned"):
            for server in ("etcd", "etcdpp"):
                run = runs.get((setup, server))
                if run is None:
                    failures.append(f"{setup} {server}: no run in the JSON")
                    continue
                if run.get("preload", {}).get("keys") != 300:
                    failures.append(f"{setup} {server}: preload missing: {run.get('preload')}")
                for load in ALL_LOADS:
                    e = run["loads"].get(load, {})
                    if not (e.get("throughput", 0) > 0 and e.get("count", 0) > 0
                            and "server_cpu_us_per_req" in e and "bench_cpu_us_per_req" in e
                            and e.get("p99_ms", 0) > 0 and not e.get("error")):
                        failures.append(f"{setup} {server} {load}: incomplete entry {e}")
                seq = run["loads"].get("seq-put", {})
                if not (seq.get("fdatasync", {}).get("average_ms", 0) > 0
                        and seq.get("vs_fdatasync", 0) > 0):
                    failures.append(f"{setup} {server} seq-put: no fdatasync baseline {seq}")
                if not (seq.get("round_trip", {}).get("average_ms", 0) > 0
                        and seq.get("vs_floor", 0) > 0):
                    failures.append(f"{setup} {server} seq-put: no round-trip floor {seq}")
            ratio = report.get("ratios", {}).get(setup, {})
            missing = [load for load in ALL_LOADS if "throughput" not in ratio.get(load, {})]
            if missing:
                failures.append(f"{setup}: no etcdpp/etcd ratio for {missing}")
        png = os.path.join(out, "results.png")
        if not os.path.exists(png):
            failures.append("no plot written")
        else:
            with open(png, "rb") as f:
                if f.read(8) != PNG_MAGIC:
                    failures.append("the plot is not a PNG")
    for f in failures:
        print("FAIL " + f)
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

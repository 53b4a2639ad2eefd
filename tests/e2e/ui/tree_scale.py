#!/usr/bin/python3
"""How long the console's key tree takes on a large store, in a real browser.

    /usr/bin/python3 tests/e2e/ui/tree_scale.py --server build/bin/etcdpp \\
        [--dirs 1000] [--keys-per-dir 1000] [--val-size 256]

Writes --dirs x --keys-per-dir keys /reg/nsNNNN/podNNNN (the shape of a
Kubernetes registry) through the JSON gateway, 128 puts per transaction,
then opens /ui in headless chromium and times, from the click to the page
showing it: the root's key count, opening "/", opening "/reg/" (its first
50 sub-directories, each with its key count) and opening one directory.
Every time is printed with the 1-minute load average. Not part of ctest
(loading a million keys takes minutes on the shared machine); the numbers
are in docs/ui.md.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402
import ui_test  # noqa: E402
from ui_test import b64, gateway, tree_dir, tree_key  # noqa: E402

kPutsPerTxn = 128  # etcd's default --max-txn-ops


def load(port, dirs, per_dir, val_size):
    value = b64(b"v" * val_size)
    keys = (f"/reg/ns{d:04d}/pod{k:04d}" for d in range(dirs) for k in range(per_dir))
    batch = []
    for key in keys:
        batch.append({"request_put": {"key": b64(key), "value": value}})
        if len(batch) == kPutsPerTxn:
            status, reply = gateway(port, "/v3/kv/txn", {"success": batch})
            if status != 200:
                raise RuntimeError(f"load failed: {reply}")
            batch = []
    if batch:
        gateway(port, "/v3/kv/txn", {"success": batch})


def timed(what, action):
    started = time.monotonic()
    action()
    seconds = time.monotonic() - started
    print(f"{what}: {seconds:.2f} s (load average {os.getloadavg()[0]:.2f})", flush=True)
    return seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--dirs", type=int, default=1000)
    p.add_argument("--keys-per-dir", type=int, default=1000)
    p.add_argument("--val-size", type=int, default=256)
    p.add_argument("--data-dir", help="reuse (or keep) the member's data here instead of loading again")
    args = p.parse_args()
    total = args.dirs * args.keys_per_dir
    wait = 600  # seconds any one step may take: this measures slow cases too

    base = tempfile.mkdtemp(prefix="etcdpp-ui-scale-")
    with cluster.Cluster(args.server, size=1, base_dir=base, log_level="error",
                         extra_flags=["--quota-backend-bytes", str(8 << 30)]) as c:
        port = c.members[0].client_port
        timed(f"load {total} keys through the gateway", lambda: load(
            port, args.dirs, args.keys_per_dir, args.val_size))
        browser = ui_test.Browser(args.chromium, os.path.join(base, "chromium.log"))
        try:
            url = f"http://127.0.0.1:{port}/ui/"
            browser.navigate(url)
            timed("root count shown", lambda: browser.wait_text(
                'li[data-prefix=""] > .node .count', str(total), timeout=wait))
            browser.click(tree_dir("/"))
            timed('open "/" (one sub-directory, counted)', lambda: browser.wait_text(
                tree_dir("/reg/") + " .count", str(total), timeout=wait))
            shown = min(args.dirs, 50)
            last = f"/reg/ns{shown - 1:04d}/"
            browser.click(tree_dir("/reg/"))
            timed(f'open "/reg/" ({shown} sub-directories listed)', lambda: browser.wait_js(
                f"!!document.querySelector('{tree_dir(last)}')", "the listing", timeout=wait))
            timed(f'... and their {shown} counts', lambda: browser.wait_text(
                tree_dir(last) + " .count", str(args.keys_per_dir), timeout=wait))
            browser.click(tree_dir("/reg/ns0000/"))
            first_key = "/reg/ns0000/pod0000"
            timed("open one directory (its first 50 keys)", lambda: browser.wait_js(
                f"!!document.querySelector('{tree_key(first_key)}')", "the keys", timeout=wait))
            if browser.exceptions:
                raise RuntimeError(f"page errors: {browser.exceptions}")
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

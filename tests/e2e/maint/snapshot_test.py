#!/usr/bin/python3
"""Backups: `snapshot save` from a 1-member etcdpp while a client writes,
then `etcdppctl snapshot restore` into a new 3-member cluster.

  1. a python etcd3 client writes keys as fast as it can (several hundred a
     second) and grants a lease with a key on it; meanwhile the real
     etcdctl 3.4 and etcdppctl each run `snapshot save`;
  2. `etcdppctl snapshot status` reads both files: the same format, the
     revision of the source at least that of every write acknowledged
     before the save began;
  3. the etcdctl file is restored for three members (one `snapshot
     restore` each) and the cluster started from the data dirs: every
     member serves every key acknowledged before the save began and no key
     never written, at the same revision; HashKV agrees across members; the
     lease survived; the cluster and member IDs are new; writes go on;
  4. restore refuses an existing data dir and a file whose checksum is
     wrong.
Bounded: about 30 s.

    /usr/bin/python3 snapshot_test.py --server build/bin/etcdpp --ctl build/bin/etcdppctl
"""

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402


def run(cmd, check=True, timeout=60):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=cluster.etcdctl_env())
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(cmd), r.returncode, r.stdout,
                                                       r.stderr))
    return r


def endpoint_json(ctl, endpoint, what):
    r = run([ctl, "--endpoints", endpoint, "endpoint", what, "-w", "json"])
    return json.loads(r.stdout)[0]


class Writer(threading.Thread):
    """Puts w/<n> = <n> until stopped; remembers when each was acknowledged."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.acked = []  # (n, monotonic time of the acknowledgement)
        self.stop = threading.Event()
        self.error = None

    def run(self):
        n = 0
        try:
            while not self.stop.is_set():
                self.client.put("w/%06d" % n, str(n))
                self.acked.append((n, time.monotonic()))
                n += 1
        except Exception as e:  # reported by the test
            self.error = e


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--ctl", required=True, help="etcdppctl")
    opts = ap.parse_args()
    etcdctl = cluster.ETCDCTL
    problems = []
    scratch = tempfile.mkdtemp(prefix="etcdpp-snapshot-test-")
    try:
        with cluster.Cluster(opts.server) as src:
            ep = src.members[0].endpoint
            client = src.client(0)
            lease = client.lease(3600)
            client.put("leased", "yes", lease=lease)
            for i in range(200):
                client.put("base/%03d" % i, "v%d" % i)
            # A client of its own for the writer thread.
            etcd3 = cluster.try_import_etcd3()
            writer = Writer(etcd3.client(host="127.0.0.1", port=src.members[0].client_port,
                                         timeout=10))
            writer.start()
            cluster.wait_until(lambda: len(writer.acked) >= 200, 20, what="writes under way")
            save_started = time.monotonic()
            ours = os.path.join(scratch, "etcdppctl.db")
            theirs = os.path.join(scratch, "etcdctl.db")
            run([etcdctl, "--endpoints", ep, "snapshot", "save", theirs])
            run([opts.ctl, "--endpoints", ep, "snapshot", "save", ours])
            writer.stop.set()
            writer.join(10)
            if writer.error:
                problems.append("writer failed: %r" % writer.error)
            duration = writer.acked[-1][1] - writer.acked[0][1]
            print("writer: %d puts in %.1f s" % (len(writer.acked), duration))
            before_save = {n for n, t in writer.acked if t < save_started}
            written = {n for n, _ in writer.acked} | {len(writer.acked)}  # the last may be unacked
            source_status = endpoint_json(etcdctl, ep, "status")
            source_cluster = source_status["Status"]["header"]["cluster_id"]
            source_member = source_status["Status"]["header"]["member_id"]

        statuses = {}
        for label, path in (("etcdctl", theirs), ("etcdppctl", ours)):
            r = run([opts.ctl, "snapshot", "status", path, "-w", "json"])
            statuses[label] = json.loads(r.stdout)
            table = run([opts.ctl, "snapshot", "status", path, "-w", "table"]).stdout
            if "| HASH | REVISION | TOTAL KEYS | TOTAL SIZE |" not in table.replace("  ", " ")\
                    .replace("  ", " ").replace("  ", " "):
                problems.append("snapshot status -w table header:\n" + table)
        for label, st in statuses.items():
            if st["totalKey"] < 200 or st["totalSize"] <= 0 or st["revision"] < 200:
                problems.append("%s file: implausible status %s" % (label, st))

        target = cluster.Cluster(opts.server, size=3, base_dir=os.path.join(scratch, "new"))
        os.makedirs(target.base_dir, exist_ok=True)
        for m in target.members:
            run([opts.ctl, "snapshot", "restore", theirs, "--name", m.name,
                 "--initial-cluster", target.initial_cluster(),
                 "--initial-cluster-token", target.token,
                 "--initial-advertise-peer-urls", m.peer_url, "--data-dir", m.data_dir])
        with target:
            target.leader()
            revisions, hashes = set(), set()
            for i, m in enumerate(target.members):
                r = run([etcdctl, "--endpoints", m.endpoint, "get", "w/", "--prefix",
                         "--keys-only", "--consistency=s", "-w", "json"])
                got = json.loads(r.stdout)
                keys = {int(base64.b64decode(kv["key"]).decode()[2:]) for kv in got.get("kvs", [])}
                missing = before_save - keys
                if missing:
                    problems.append("%s lacks %d keys acknowledged before the save, e.g. %s"
                                    % (m.name, len(missing), sorted(missing)[:5]))
                if keys - written:
                    problems.append("%s has keys never written: %s" % (m.name,
                                                                      sorted(keys - written)[:5]))
                leased = run([etcdctl, "--endpoints", m.endpoint, "get", "leased",
                              "--consistency=s", "-w", "json"])
                kvs = json.loads(leased.stdout).get("kvs", [])
                if not kvs or kvs[0].get("lease") != lease.id:
                    problems.append("%s: key on lease %x: %s" % (m.name, lease.id, kvs))
                status = endpoint_json(etcdctl, m.endpoint, "status")["Status"]
                revisions.add(status["header"]["revision"])
                if status["header"]["cluster_id"] == source_cluster:
                    problems.append("the restored cluster kept the source's cluster ID")
                if status["header"]["member_id"] == source_member:
                    problems.append("%s kept the source member's ID" % m.name)
                hashes.add(endpoint_json(etcdctl, m.endpoint, "hashkv")["HashKV"]["hash"])
            if len(revisions) != 1 or len(hashes) != 1:
                problems.append("members disagree: revisions %s, hashkv %s" % (revisions, hashes))
            elif revisions.pop() != statuses["etcdctl"]["revision"]:
                problems.append("restored revision differs from the snapshot's")
            leases = run([etcdctl, "--endpoints", target.members[1].endpoint, "lease", "list"])
            if "%x" % lease.id not in leases.stdout:
                problems.append("lease %x not listed: %s" % (lease.id, leases.stdout))
            r = run([etcdctl, "--endpoints", target.members[2].endpoint, "put", "after", "1"])
            if r.stdout.strip() != "OK":
                problems.append("put after restore: " + r.stdout)

        # Refusals.
        r = run([opts.ctl, "snapshot", "restore", theirs, "--data-dir", target.members[0].data_dir],
                check=False)
        if r.returncode == 0 or "exists" not in r.stderr:
            problems.append("restore onto an existing data dir: %d %s" % (r.returncode, r.stderr))
        broken = os.path.join(scratch, "broken.db")
        with open(theirs, "rb") as f:
            data = bytearray(f.read())
        data[-1] ^= 0xff
        with open(broken, "wb") as f:
            f.write(data)
        r = run([opts.ctl, "snapshot", "restore", broken, "--data-dir",
                 os.path.join(scratch, "never")], check=False)
        if r.returncode == 0 or "sha256" not in r.stderr:
            problems.append("restore of a file with a wrong checksum: %d %s"
                            % (r.returncode, r.stderr))
        if os.path.exists(os.path.join(scratch, "never")):
            problems.append("a refused restore left its data dir behind")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for p in problems:
        print("FAIL: " + p)
    if not problems:
        print("ok: saved under writes, restored into 3 members with every acknowledged key")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

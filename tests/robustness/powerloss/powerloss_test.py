#!/usr/bin/python3
"""Power cuts under a member with writers: every acknowledged write survives.

  tests/robustness/powerloss/powerloss_test.py --server build/bin/etcdpp \
      --lossyfs build/tests/robustness/powerloss/lossyfs --cuts 12 --seed 1

The member's data dir lives on lossyfs (lossyfs.cc): a FUSE file system that,
when unmounted, loses each page written since its file's last fsync with
probability 1/2, in no order, as a disk's volatile cache does at a power
loss. One cut: writers put keys (and a compactor compacts) until a random
moment; the member is killed (-9), the file system unmounted (the cut), then
mounted again and the member restarted on what is left. After each cut:
  * the member starts (a corrupt store must never be served: it starts
    clean or refuses with an error naming the file, which fails the test);
  * every write acknowledged before the cut is there with its value;
  * the store reads whole (a range over every key) and HashKV answers;
  * the round before the cut acknowledged at least one write (a member
    that silently stops taking writes keeps every old one).
The member snapshots every 300 entries (--snapshot-count), so cuts land
during snapshots, WAL cuts and releases too. A defragmenter asks for an
online defrag and a backup thread streams `snapshot save` (the member
writes its copy to a file in its data dir first), each in a loop, so cuts
land during both; a cut that came while one was in flight is counted.
Exit 0 when every cut passed; the counts go to stdout (docs/robustness.md
records runs).
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "e2e", "lib"))
import cluster  # noqa: E402  (sets GRPC_ENABLE_FORK_SUPPORT before grpc loads)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class LossyMount:
    """lossyfs mounted at `mount` over `backing`, until cut()."""

    def __init__(self, lossyfs, backing, mount, seed):
        self.mount = mount
        self.proc = subprocess.Popen(
            cluster.die_with_parent([lossyfs, backing, mount, "--seed", str(seed), "-f"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            cluster.wait_until(lambda: os.path.ismount(mount) or self.proc.poll() is not None,
                               timeout=10, what="lossyfs mounted")
        except TimeoutError:
            self.proc.kill()
            raise
        if self.proc.poll() is not None:
            raise RuntimeError(f"lossyfs could not mount {mount} (are FUSE mounts allowed "
                               f"here?): {self.proc.stderr.read()}")

    def cut(self):
        """Unmounts: lossyfs drops unsynced pages. Returns its report."""
        for _ in range(50):
            r = subprocess.run(["fusermount3", "-u", self.mount], capture_output=True, text=True)
            if r.returncode == 0:
                break
            time.sleep(0.1)  # a file of the killed member may still be closing
        else:
            raise RuntimeError(f"cannot unmount {self.mount}: {r.stderr}")
        _, err = self.proc.communicate(timeout=60)
        return err.strip()


class Writers:
    """Threads putting unique keys; acknowledged[key] = value once the put returned."""

    def __init__(self, client, n, rng):
        self.client = client
        self.acknowledged = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(w, random.Random(rng.random())),
                                         daemon=True) for w in range(n)]
        self.threads.append(threading.Thread(target=self._compact, daemon=True))
        self.threads.append(threading.Thread(target=self._defragment, daemon=True))
        self.threads.append(threading.Thread(target=self._snapshot, daemon=True))
        self.compactions = 0
        self.defrags = 0
        self.snapshots = 0
        # Defrag or snapshot calls that failed while the member was up.
        self.call_errors = []
        # Puts that failed while the member was up (each ends its writer).
        self.put_errors = []
        # Set while a call is in flight: read at the cut.
        self.defrag_in_flight = threading.Event()
        self.snapshot_in_flight = threading.Event()

    def start(self, cut_no):
        self.cut_no = cut_no
        self.stop.clear()
        for t in self.threads:
            t.start()

    def _write(self, w, rng):
        seq = 0
        while not self.stop.is_set():
            key = f"/pl/{self.cut_no}/{w}/{seq:06d}"
            value = f"{key}:{rng.randrange(1 << 30)}" * rng.choice([1, 4, 40])
            try:
                self.client.put(key, value)
            except Exception as e:
                if not self.stop.is_set():
                    self.put_errors.append(f"put {key}: {e}")
                return  # the member is gone (the cut came), or refused the write
            with self.lock:
                self.acknowledged[key] = value
            seq += 1

    def _compact(self):
        while not self.stop.wait(0.7):
            try:
                rev = self.client.get_response("/pl/none").header.revision
                self.client.compact(max(1, rev - 50), physical=False)
                self.compactions += 1
            except Exception:
                pass  # nothing to compact yet, or the member is gone


    def _repeat(self, period, in_flight, counter, what, call):
        """call() every `period` seconds until stop, with `in_flight` set
        while it runs (a cut then counts as landing during it); successes
        are counted in self.<counter>, failures kept as call errors."""
        while not self.stop.wait(period):
            in_flight.set()
            try:
                call()
                setattr(self, counter, getattr(self, counter) + 1)
            except Exception as e:
                if self.stop.is_set():
                    return  # the member is gone
                self.call_errors.append(f"{what}: {e}")
            finally:
                in_flight.clear()

    def _defragment(self):
        from etcd3 import etcdrpc
        stub = etcdrpc.MaintenanceStub(self.client.channel)
        self._repeat(0.4, self.defrag_in_flight, "defrags", "defrag",
                     lambda: stub.Defragment(etcdrpc.DefragmentRequest(), 30))

    def _snapshot(self):
        from etcd3 import etcdrpc
        stub = etcdrpc.MaintenanceStub(self.client.channel)

        def save():
            for _ in stub.Snapshot(etcdrpc.SnapshotRequest(), 30):
                pass  # the whole stream, as a client saving it reads it

        self._repeat(0.5, self.snapshot_in_flight, "snapshots", "snapshot", save)


def verify(client, expected):
    """Problems found: missing or wrong acknowledged keys, unreadable store."""
    problems = []
    stored = {}
    # One range per cut's prefix: the whole store can pass a client's 4 MiB
    # message limit.
    for cut in sorted({k.split("/")[2] for k in expected} | {"next"}):
        for value, meta in client.get_prefix(f"/pl/{cut}/"):
            stored[meta.key.decode()] = value.decode()
    missing = [k for k in expected if k not in stored]
    # Unacknowledged writes may or may not be there; count them all.
    for value, meta in client.get_prefix("/pl/", keys_only=True):
        stored.setdefault(meta.key.decode(), None)
    wrong = [k for k in expected if k in stored and stored[k] != expected[k]]
    if missing:
        problems.append(f"{len(missing)} acknowledged keys lost, e.g. {sorted(missing)[:3]}")
    if wrong:
        problems.append(f"{len(wrong)} acknowledged keys with other values, e.g. {wrong[:3]}")
    try:
        # HashKV walks every revision of the store that is left.
        from etcd3 import etcdrpc
        etcdrpc.MaintenanceStub(client.channel).HashKV(etcdrpc.HashKVRequest(revision=0), 30)
    except Exception as e:
        problems.append(f"HashKV failed: {e}")
    return problems, len(stored)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", required=True)
    p.add_argument("--lossyfs", required=True)
    p.add_argument("--cuts", type=int, default=12)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--writers", type=int, default=3)
    p.add_argument("--max-seconds", type=float, default=3.0, help="longest run before a cut")
    args = p.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    if not os.access(args.lossyfs, os.X_OK) or not shutil.which("fusermount3"):
        sys.exit("lossyfs or fusermount3 missing (Debian: fuse3 libfuse3-dev; "
                 "scripts/install-deps.sh)")
    base = tempfile.mkdtemp(prefix="powerloss-")
    backing, mount = os.path.join(base, "backing"), os.path.join(base, "mnt")
    os.mkdir(backing)
    os.mkdir(mount)
    cl = cluster.Cluster(args.server, size=1, base_dir=base, keep=True,
                         # A small map: each defrag's new data file is
                         # sized to it, and lossyfs saves every page of it.
                         extra_flags=["--snapshot-count", "300",
                                      "--quota-backend-bytes", str(256 << 20)])
    cl.members[0].data_dir = os.path.join(mount, "m0.data")
    acknowledged = {}
    failures = []
    during = {"defrag": 0, "snapshot": 0}
    lossy = None
    log(f"power-loss test: {args.cuts} cuts, seed {seed}, in {base}")
    try:
        for cut in range(args.cuts + 1):
            lossy = LossyMount(args.lossyfs, backing, mount, seed * 1000 + cut)
            cl.spawn(0)
            try:
                cl.wait_ready(0, timeout=60)
            except Exception as e:
                failures.append(f"cut {cut - 1}: the member did not start after the cut: {e}")
                break
            client = cl.client(0)
            problems, stored = verify(client, acknowledged)
            if cut > 0:
                log(f"cut {cut - 1}: restarted with {stored} keys, {len(acknowledged)} "
                    f"acknowledged: {'OK' if not problems else problems}")
            failures += [f"cut {cut - 1}: {pr}" for pr in problems]
            if problems or cut == args.cuts:
                cl.kill(0)
                break
            writers = Writers(client, args.writers, rng)
            writers.start(cut)
            time.sleep(rng.uniform(0.3, args.max_seconds))
            # The power goes: nothing the member did not fsync may be relied on.
            in_defrag = writers.defrag_in_flight.is_set()
            in_snapshot = writers.snapshot_in_flight.is_set()
            writers.stop.set()
            cl.kill(0)
            during["defrag"] += in_defrag
            during["snapshot"] += in_snapshot
            for t in writers.threads:
                t.join(10)
            acknowledged.update(writers.acknowledged)
            # stop was set before the kill: these failed while the member ran.
            failures += [f"cut {cut}: a call failed while the member ran: {e}"
                         for e in writers.call_errors]
            # A member that takes no writes after a restart (say, one whose
            # replay left Raft's log behind the store's consistent index, so
            # new entries are skipped as already applied) keeps every old
            # write and would pass the checks above.
            if not writers.acknowledged:
                failures.append(f"cut {cut}: no write was acknowledged before the cut"
                                f"{': ' + writers.put_errors[0] if writers.put_errors else ''}")
            report = lossy.cut()
            lossy = None
            log(f"cut {cut}: {len(writers.acknowledged)} writes acknowledged, "
                f"{writers.compactions} compactions, {writers.defrags} defrags, "
                f"{writers.snapshots} snapshot saves"
                f"{', during a defrag' if in_defrag else ''}"
                f"{', during a snapshot save' if in_snapshot else ''}; "
                f"{report.splitlines()[-1] if report else ''}")
    finally:
        cl.close()
        if lossy is not None:
            lossy.cut()
        shutil.rmtree(base, ignore_errors=True)
    if failures:
        log("FAIL:\n  " + "\n  ".join(failures))
        sys.exit(1)
    log(f"PASS: {args.cuts} cuts ({during['defrag']} during a defrag, {during['snapshot']} "
        f"during a snapshot save), {len(acknowledged)} acknowledged writes, none lost")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Disk faults on a stopped member's data dir, then a restart:

  * a torn last WAL record (the write a crash interrupted: never
    acknowledged, never applied) is cut off, every acknowledged key is there,
    and the member takes writes again;
  * a flipped byte in the middle of the WAL is refused: the member exits
    with an error naming the segment file and the offset of the bad record;
  * a data dir whose snapshot files are gone (the WAL before them purged) is
    refused, not started from an empty or partial state.

Run: /usr/bin/python3 disk_faults_test.py --server build/bin/etcdpp
"""

import glob
import os
import re
import shutil
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e", "lib"))
import cluster as e2e  # noqa: E402

SERVER = None


def wal_segments(member):
    return sorted(glob.glob(os.path.join(member.data_dir, "member", "wal", "*.wal")))


def data_end(path):
    """Offset just past the last non-zero byte, rounded up to the 8-byte frame
    alignment (segments are preallocated with zeros)."""
    with open(path, "rb") as f:
        data = f.read()
    end = len(data.rstrip(b"\0"))
    return (end + 7) // 8 * 8, data


def wait_exit(member, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if member.proc.poll() is not None:
            return member.proc.returncode
        time.sleep(0.1)
    return None


class DiskFaults(unittest.TestCase):
    def setUp(self):
        self.cluster = None

    def tearDown(self):
        if self.cluster is not None:
            self.cluster.close()

    def start(self, extra=()):
        self.cluster = e2e.Cluster(SERVER, size=1, extra_flags=list(extra), log_level="info")
        self.cluster.start()
        return self.cluster

    def put_keys(self, n, value_size=16):
        c = self.cluster.client(0)
        for i in range(n):
            c.put(f"k{i:05d}", f"{i}:" + "x" * value_size)

    def assert_keys(self, n, value_size=16):
        c = self.cluster.client(0)
        for i in range(n):
            v, _ = c.get(f"k{i:05d}")
            self.assertEqual(v, (f"{i}:" + "x" * value_size).encode(), f"k{i:05d}")

    def test_torn_last_record_is_repaired(self):
        cl = self.start()
        self.put_keys(50)
        cl.kill(0)  # kill -9: every acknowledged put is in the WAL (fsynced)
        seg = wal_segments(cl.members[0])[-1]
        end, data = data_end(seg)
        # A frame whose write stopped half way: a plausible length prefix and
        # then garbage, where the next record would have started.
        torn = bytes([0x48, 0, 0, 0, 0x9a, 0x3c, 0x11, 0x07]) + bytes(range(1, 31))
        with open(seg, "r+b") as f:
            f.seek(end)
            f.write(torn)
        cl.restart(0)
        self.assert_keys(50)
        with open(cl.members[0].log_path, errors="replace") as f:
            log = f.read()
        self.assertRegex(log, r"torn tail")
        # The repaired log takes appends and survives another crash.
        cl.client(0).put("after", "repair")
        cl.kill(0)
        cl.restart(0)
        self.assertEqual(cl.client(0).get("after")[0], b"repair")
        self.assert_keys(50)

    def test_flipped_byte_in_the_middle_is_refused(self):
        cl = self.start()
        self.put_keys(60, value_size=2000)
        cl.kill(0)
        seg = wal_segments(cl.members[0])[-1]
        end, data = data_end(seg)
        # Flip a byte inside the value of an entry in the middle of the log
        # (inside a record's CRC-covered body, with valid records after it).
        marker = b"30:" + b"x" * 100
        pos = data.find(marker)
        self.assertGreater(pos, 0)
        self.assertLess(pos + 4000, end)
        pos += 50
        with open(seg, "r+b") as f:
            f.seek(pos)
            f.write(bytes([data[pos] ^ 0x01]))
        m = cl.members[0]
        log_before = os.path.getsize(m.log_path)
        cl.spawn(0)
        code = wait_exit(m)
        self.assertIsNotNone(code, "member started on a WAL with a corrupt record in the middle")
        self.assertNotEqual(code, 0)
        with open(m.log_path, errors="replace") as f:
            f.seek(log_before)
            log = f.read()
        name = os.path.basename(seg)
        found = re.search(r"corrupt record in (\S*?)" + re.escape(name) + r" at offset (\d+)", log)
        self.assertIsNotNone(found, f"error does not name {name} and an offset:\n{log[-2000:]}")
        offset = int(found.group(2))
        self.assertLessEqual(offset, pos)
        self.assertLess(pos - offset, 4096, "offset is not that of the damaged record")

    def test_missing_snapshot_is_refused(self):
        cl = self.start(["--snapshot-count", "100"])
        self.put_keys(450)
        cl.stop(0)
        m = cl.members[0]
        snaps = glob.glob(os.path.join(m.data_dir, "member", "snap", "*.snap"))
        self.assertTrue(snaps, "no snapshot was written with --snapshot-count 100")
        for s in snaps:
            os.remove(s)
        log_before = os.path.getsize(m.log_path)
        cl.spawn(0)
        code = wait_exit(m, timeout=20)
        if code is None:
            # It runs: it must at least not have lost anything.
            try:
                self.assert_keys(450)
            finally:
                self.fail("member started although its snapshot files are gone")
        self.assertNotEqual(code, 0)
        with open(m.log_path, errors="replace") as f:
            f.seek(log_before)
            log = f.read()
        self.assertRegex(log, r"snap", f"error does not say what is missing:\n{log[-2000:]}")


if __name__ == "__main__":
    p = e2e.server_arg_parser(__doc__.split("\n")[0])
    args, rest = p.parse_known_args()
    SERVER = args.server
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)

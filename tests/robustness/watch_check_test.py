#!/usr/bin/python3
"""Unit tests of run.py's watch checks on made-up streams (no cluster)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402
from checker import Op  # noqa: E402


class FakeWatcher:
    def __init__(self, member, segments, last_rev=None):
        self.member_index = member
        self.segments = segments
        evs = [e for s in segments for e in s["events"]]
        self.last_rev = last_rev if last_rev is not None else max((e[0] for e in evs), default=0)


def seg(start, events, end="stopped"):
    return {"start": start, "events": events, "end": end}


P = lambda rev, key, value: (rev, "put", key, value)  # noqa: E731
D = lambda rev, key: (rev, "delete", key, None)  # noqa: E731


class WatchChecks(unittest.TestCase):
    def problems(self, watchers, final_rev, ops=()):
        return run.check_watches(watchers, final_rev, ops)[0]

    def test_contiguous_streams_agree(self):
        a = FakeWatcher(0, [seg(2, [P(2, "k", "a"), D(3, "k")]), seg(4, [P(4, "j", "b")])])
        b = FakeWatcher(1, [seg(3, [D(3, "k"), P(4, "j", "b")])])
        problems, observed = run.check_watches([a, b], 4)
        self.assertEqual(problems, [])
        self.assertEqual(observed[3], frozenset({("delete", "k", None)}))

    def test_gap(self):
        a = FakeWatcher(0, [seg(2, [P(2, "k", "a"), P(4, "k", "b")])])
        self.assertTrue(any("gap" in p for p in self.problems([a], 4)))

    def test_duplicate_and_decreasing(self):
        a = FakeWatcher(0, [seg(2, [P(2, "k", "a"), P(2, "k", "a")])])
        self.assertTrue(any("duplicate" in p for p in self.problems([a], 2)))
        b = FakeWatcher(0, [seg(2, [P(2, "k", "a"), P(3, "k", "b"), P(2, "j", "c")])])
        self.assertTrue(any("after" in p for p in self.problems([b], 3)))

    def test_streams_disagree(self):
        a = FakeWatcher(0, [seg(2, [P(2, "k", "a")])])
        b = FakeWatcher(1, [seg(2, [P(2, "k", "other")])])
        self.assertTrue(any("another watcher" in p for p in self.problems([a, b], 2)))

    def test_stuck_watcher(self):
        a = FakeWatcher(0, [seg(2, [P(2, "k", "a")])])
        self.assertTrue(any("stuck" in p for p in self.problems([a], 5)))

    def test_tombstone_at_the_compact_revision_only(self):
        # Reopened at compact revision 3 after a compacted cancel: the delete at
        # 3 may be gone (etcd 3.4 does that), a put may not.
        other = FakeWatcher(1, [seg(2, [P(2, "k", "a"), D(3, "k"), P(4, "j", "b")])])
        ok = FakeWatcher(0, [seg(2, [], end="compacted at 3"), seg(3, [P(4, "j", "b")])])
        self.assertEqual(self.problems([ok, other], 4), [])
        other2 = FakeWatcher(1, [seg(2, [P(2, "k", "a"), P(3, "k", "x"), P(4, "j", "b")])])
        self.assertTrue(any("not only deletes" in p for p in self.problems([ok, other2], 4)))
        # Nobody saw 3: an acknowledged delete made it.
        alone = FakeWatcher(0, [seg(3, [P(4, "j", "b")])])
        self.assertTrue(any("nobody saw" in p for p in self.problems([alone], 4)))
        delete = Op("delete", key="k", invoke=0, complete=1, rev=3, deleted=1)
        self.assertEqual(self.problems([alone], 4, [delete]), [])
        # Any other missing revision is a gap.
        late = FakeWatcher(0, [seg(3, [P(5, "j", "b")])])
        self.assertTrue(any("gap" in p for p in self.problems([late], 5, [delete])))


if __name__ == "__main__":
    unittest.main()

"""Unit tests of read_rounds.py on hand-written member logs: a round that
waits for an index below one committed before it began is reported, one
that waits for a later index is not, and neither is one begun too close to
the commit to tell. Run: python3 read_rounds_test.py"""

import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import read_rounds  # noqa: E402


def line(second, msg):
    return json.dumps({"level": "debug", "ts": f"2026-12-05T10:00:{second:06.3f}Z", "msg": msg})


class ReadRounds(unittest.TestCase):
    def check(self, logs):
        with tempfile.TemporaryDirectory() as d:
            paths = {}
            for name, lines in logs.items():
                paths[name] = os.path.join(d, name + ".log")
                with open(paths[name], "w") as f:
                    f.write("\n".join(lines + ["not json: ignored"]) + "\n")
            return read_rounds.check(paths)

    # m0 has committed up to index 500 at 10:00:01; m2, the member paused
    # while it led, starts a round at 10:00:03.
    def cluster(self, m2_waits_for, m2_starts_at=3.0):
        return {
            "m0": [line(1.0, "read round a1 starts (term 6, leader b, committed 500)"),
                   line(1.001, "read round a1: 2 reads wait for index 500 (term 6, leader b)")],
            "m2": [line(0.5, "raft: c at term 5 confirms read c1 of 0 at index 300"),
                   line(m2_starts_at, "read round c2 starts (term 5, leader c, committed 320)"),
                   line(m2_starts_at + 0.001,
                        f"read round c2: 1 reads wait for index {m2_waits_for} (term 5, leader c)")],
        }

    def test_stale_round_is_reported(self):
        checked, problems = self.check(self.cluster(m2_waits_for=320))
        self.assertEqual(checked, 2)
        self.assertEqual(len(problems), 1)
        self.assertIn("m2: read round c2", problems[0])
        self.assertIn("waits for index 320", problems[0])
        self.assertIn("index 500 was committed", problems[0])

    def test_fresh_round_passes(self):
        checked, problems = self.check(self.cluster(m2_waits_for=512))
        self.assertEqual(checked, 2)
        self.assertEqual(problems, [])

    def test_commit_within_the_slack_does_not_count(self):
        checked, problems = self.check(self.cluster(m2_waits_for=320, m2_starts_at=1.001))
        self.assertEqual(checked, 2)
        self.assertEqual(problems, [])

    def test_round_without_its_start_is_not_judged(self):
        logs = self.cluster(m2_waits_for=320)
        del logs["m2"][1]
        checked, problems = self.check(logs)
        self.assertEqual(checked, 1)
        self.assertEqual(problems, [])


if __name__ == "__main__":
    unittest.main()

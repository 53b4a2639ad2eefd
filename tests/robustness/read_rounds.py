"""Checks the linearizable read rounds etcdpp members log at debug level.

Each member logs, for every ReadIndex round of its read batcher,

  read round CTX starts (term T, leader L, committed C)
  read round CTX: N reads wait for index I (term T, leader L)

A round that starts at time t must wait for an index no lower than any
commit index a member of the cluster logged before t: that entry was
committed before the reads of the round arrived, so they must see it.
(A new leader may briefly know a lower commit index than the cluster's,
which is why it answers no ReadIndex before it has committed an entry of
its own term; from then on its commit index covers every earlier one.)
All members run on one machine, so their log timestamps share a clock; a
margin of SLACK seconds absorbs the gap between taking a timestamp and
writing the line.

This catches a stale round even when no read of it happened to return a
value the linearizability checker could object to, and when a stale read
does show up in the history it tells whether a round was behind it.

Usage: read_rounds.py M0.log M1.log ...   (exit 1 when a round is stale)
"""

import bisect
import datetime
import json
import re
import sys

SLACK = 0.002

_START = re.compile(r"read round (\w+) starts \(term (\d+), leader (\w+), committed (\d+)\)")
_WAIT = re.compile(r"read round (\w+): (\d+) reads wait for index (\d+) \(term (\d+)")


def _seconds(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _lines(path):
    with open(path, errors="replace") as f:
        for raw in f:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if "ts" in line and "msg" in line:
                yield line


def check(logs):
    """logs: {member name: log path}. Returns (rounds checked, problems)."""
    commits = []  # (time, commit index) from every member's round starts
    starts = {}  # (member, ctx) -> (time, term, leader)
    waits = []  # (member, ctx, index, term)
    for name, path in logs.items():
        for line in _lines(path):
            m = _START.search(line["msg"])
            if m:
                t = _seconds(line["ts"])
                commits.append((t, int(m.group(4))))
                starts[(name, m.group(1))] = (t, int(m.group(2)), m.group(3))
                continue
            m = _WAIT.search(line["msg"])
            if m:
                waits.append((name, m.group(1), int(m.group(3)), int(m.group(4))))
    commits.sort()
    times = [t for t, _ in commits]
    highest = []
    top = 0
    for t, c in commits:
        top = max(top, c)
        highest.append(top)
    problems = []
    checked = 0
    for name, ctx, index, term in waits:
        if (name, ctx) not in starts:
            continue  # a round begun before the log's first line
        began, began_term, leader = starts[(name, ctx)]
        checked += 1
        k = bisect.bisect_left(times, began - SLACK) - 1
        if k >= 0 and index < highest[k]:
            problems.append(
                f"{name}: read round {ctx}, begun at term {began_term} (leader {leader}), waits for "
                f"index {index} (term {term}), but index {highest[k]} was committed "
                f"{began - times[k]:.3f} s before it began")
    return checked, problems


def main(paths):
    checked, problems = check({p: p for p in paths})
    for p in problems:
        print(p)
    print(f"{checked} read rounds checked, {len(problems)} stale")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

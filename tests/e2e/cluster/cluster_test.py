#!/usr/bin/python3
"""A 3-member etcdpp cluster driven by the real etcdctl 3.4 (and etcdppctl).

  1. etcdctl puts through one member; the others serve the key linearizably
     and with --consistency=s;
  2. `member list` on any member shows every member's name and client URL
     (members publish them through Raft);
  3. `etcdctl member add` a 4th member, which starts with
     --initial-cluster-state existing, joins and catches up;
  4. `etcdppctl member remove` a follower: it stops by itself, the cluster
     goes on with the other three, and the output matches etcdctl's format;
     etcdppctl with the removed member first in --endpoints fails over;
  5. move-leader with etcdppctl and etcdctl;
  6. a learner added with `etcdppctl -w json member add --learner` serves
     only what etcd's learners serve (the real etcdctl gets "etcdserver: rpc
     not supported for learner" for the rest), is promoted once in sync, and
     removed; member update -w json prints what etcdctl prints, byte for byte.
Bounded: well under 60 s.

    /usr/bin/python3 cluster_test.py --server build/bin/etcdpp --ctl build/bin/etcdppctl
"""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

# etcd refuses membership changes until every voter's peer stream has been up
# this long (HealthInterval).
HEALTH_INTERVAL_S = 5.5


class JoinableCluster(cluster.Cluster):
    """Members added after the start join with --initial-cluster-state existing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.joining = set()

    def command(self, i, state="new"):
        return super().command(i, "existing" if i in self.joining else state)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def run_ctl(ctl, endpoints, *args):
    r = subprocess.run([ctl, "--endpoints", endpoints] + list(args), env=cluster.etcdctl_env(),
                       capture_output=True, text=True, timeout=30)
    return r


def get_value(c, i, key, *flags):
    r = c.etcdctl("get", key, "--print-value-only", *flags, i=i)
    check(r.returncode == 0, f"get on m{i} failed: {r.stderr}")
    return r.stdout.strip()


def add_when_healthy(add):
    """Runs `add` (a member add) until the leader stops refusing it with
    etcd's "unhealthy cluster", which it answers until every voter's peer
    stream has been up for HealthInterval. The sleeps before the adds count
    that interval from the moment a stream could first have come up; on a
    loaded machine a member can start late and its streams connect on a
    retry, later than that. Any other outcome is returned at once."""
    deadline = time.monotonic() + 20
    while True:
        r = add()
        if r.returncode == 0 or "unhealthy cluster" not in r.stderr or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def member_list(c, i):
    """[(id_hex, status, name, peer_urls, client_urls, is_learner)] from etcdctl."""
    r = c.etcdctl("member", "list", i=i, check=True)
    return [tuple(part.strip() for part in line.split(",")) for line in r.stdout.splitlines()]


def main():
    p = cluster.server_arg_parser(__doc__)
    p.add_argument("--ctl", required=True, help="etcdppctl binary")
    args = p.parse_args()
    c = JoinableCluster(args.server, size=3, keep=args.keep)
    try:
        started = time.monotonic()
        c.start()
        leader = c.leader()

        # 1. Replication; reads on the other members, both consistencies.
        c.etcdctl("put", "greeting", "hello", i=leader, check=True)
        for i in range(3):
            check(get_value(c, i, "greeting") == "hello", f"linearizable get on m{i}")
            cluster.wait_until(lambda: get_value(c, i, "greeting", "--consistency=s") == "hello",
                               10, what=f"serializable get on m{i}")

        # 2. Every member lists every member as started, with its client URL.
        def all_published():
            rows = member_list(c, 2)
            return len(rows) == 3 and all(row[1] == "started" and row[4] for row in rows)
        cluster.wait_until(all_published, 15, what="published member attributes")
        rows = member_list(c, 2)
        check(sorted(row[2] for row in rows) == ["m0", "m1", "m2"], f"names: {rows}")
        check(sorted(row[4] for row in rows) == sorted(m.client_url for m in c.members),
              f"client urls: {rows}")

        # 3. Add a 4th member with the real etcdctl; it joins and catches up.
        time.sleep(max(0.0, started + HEALTH_INTERVAL_S - time.monotonic()))
        new = cluster.Member("m3", c.base_dir)
        c.members.append(new)
        c.joining.add(3)
        r = add_when_healthy(
            lambda: c.etcdctl("member", "add", "m3", f"--peer-urls={new.peer_url}", i=leader))
        check(r.returncode == 0, f"member add failed: {r.stderr}")
        lines = r.stdout.splitlines()
        # etcdctl prints ids with %16x: space-padded.
        check(re.fullmatch(r"Member [ 0-9a-f]{16} added to cluster [ 0-9a-f]{16}", lines[0]),
              f"member add output: {r.stdout!r}")
        check(lines[1] == "" and lines[2] == 'ETCD_NAME="m3"', f"member add output: {r.stdout!r}")
        expected_cluster = ",".join(f"{m.name}={m.peer_url}" for m in c.members)
        check(sorted(lines[3].split("=", 1)[1].strip('"').split(",")) ==
              sorted(expected_cluster.split(",")), f"ETCD_INITIAL_CLUSTER: {lines[3]}")
        check(lines[4] == f'ETCD_INITIAL_ADVERTISE_PEER_URLS="{new.peer_url}"', lines[4])
        check(lines[5] == 'ETCD_INITIAL_CLUSTER_STATE="existing"', lines[5])
        c.spawn(3)
        c.wait_ready(3, timeout=30)
        m3_ready = time.monotonic()
        check(get_value(c, 3, "greeting") == "hello", "the new member caught up")
        c.etcdctl("put", "after-add", "x", i=3, check=True)
        check(get_value(c, 0, "after-add") == "x", "write through the new member")
        cluster.wait_until(lambda: len(member_list(c, 0)) == 4 and all(
            row[1] == "started" for row in member_list(c, 0)), 15, what="4 started members")

        # 4. Remove a follower with etcdppctl; it stops by itself.
        leader = c.leader()
        victim = next(i for i in range(3) if i != leader)
        rows = member_list(c, leader)
        victim_id = next(row[0] for row in rows if row[2] == c.members[victim].name)
        r = run_ctl(args.ctl, c.members[leader].endpoint, "member", "remove", victim_id)
        check(r.returncode == 0, f"member remove failed: {r.stderr}")
        padded = f"{int(victim_id, 16):16x}"
        check(re.fullmatch(rf"Member {padded} removed from cluster [ 0-9a-f]{{16}}\n", r.stdout),
              f"member remove output: {r.stdout!r}")
        cluster.wait_until(lambda: not c.members[victim].running(), 20,
                           what="the removed member to stop")
        rest = [i for i in range(4) if i != victim]
        check(len(member_list(c, rest[0])) == 3, "three members left")
        c.etcdctl("put", "after-remove", "y", i=rest[0], check=True)
        for i in rest:
            check(get_value(c, i, "after-remove") == "y", f"m{i} after the removal")
        # etcd's error for an id that is gone, through etcdppctl.
        r = run_ctl(args.ctl, c.members[rest[0]].endpoint, "member", "remove", victim_id)
        check(r.returncode == 1 and "etcdserver: member not found" in r.stderr,
              f"second remove: {r.returncode} {r.stderr!r}")
        # etcdppctl with several endpoints fails over past the stopped member.
        eps = ",".join([c.members[victim].endpoint, c.members[rest[0]].endpoint])
        r = run_ctl(args.ctl, eps, "get", "after-remove", "--print-value-only")
        check(r.returncode == 0 and r.stdout == "y\n", f"failover get: {r}")

        # Promoting a voter: the same error line and exit code from both CLIs.
        voter_id = member_list(c, rest[0])[0][0]
        ours = run_ctl(args.ctl, c.members[rest[0]].endpoint, "member", "promote", voter_id)
        theirs = run_ctl(cluster.ETCDCTL, c.members[rest[0]].endpoint, "member", "promote",
                         voter_id)
        check(ours.returncode == theirs.returncode == 1, f"promote: {ours} {theirs}")
        check(ours.stderr.splitlines()[-1] == theirs.stderr.splitlines()[-1] ==
              "Error: etcdserver: can only promote a learner member",
              f"promote errors: {ours.stderr!r} {theirs.stderr!r}")
        # move-leader with every endpoint: etcdppctl finds the leader, then
        # etcdctl moves it back; both print the same line.
        leader = c.leader()
        ids = {row[2]: row[0] for row in member_list(c, rest[0])}
        target = next(i for i in rest if i != leader)
        eps = ",".join(c.members[i].endpoint for i in rest)
        for ctl, to, frm in ((args.ctl, target, leader), (cluster.ETCDCTL, leader, target)):
            r = run_ctl(ctl, eps, "move-leader", ids[c.members[to].name])
            check(r.returncode == 0, f"move-leader with {ctl}: {r.stderr}")
            want = (f"Leadership transferred from {ids[c.members[frm].name]} to "
                    f"{ids[c.members[to].name]}\n")
            check(r.stdout == want, f"move-leader output {r.stdout!r}, want {want!r}")
            check(c.leader() == to, f"leader after move-leader with {ctl}")

        # 6. A learner, added with `etcdppctl -w json member add --learner`
        # (once every voter, m3 included, has been connected for etcd's
        # HealthInterval).
        time.sleep(max(0.0, m3_ready + HEALTH_INTERVAL_S - time.monotonic()))
        leader = c.leader()
        new = cluster.Member("m4", c.base_dir)
        c.members.append(new)
        c.joining.add(4)
        r = add_when_healthy(lambda: run_ctl(args.ctl, c.members[leader].endpoint, "-w", "json",
                                             "member", "add", "m4", "--learner",
                                             f"--peer-urls={new.peer_url}"))
        check(r.returncode == 0, f"member add --learner failed: {r.stderr}")
        added = json.loads(r.stdout)
        learner_id = added["member"]["ID"]
        check(added["member"] == {"ID": learner_id, "peerURLs": [new.peer_url],
                                  "isLearner": True}, f"added member: {added}")
        check(added["header"]["cluster_id"] > 0 and
              added["member"] in added["members"] and len(added["members"]) == 4,
              f"member add json: {added}")
        c.spawn(4)
        # The learner serves serializable reads and Status, nothing else
        # (etcd's isRPCSupportedForLearner), so the real etcdctl moves on.
        cluster.wait_until(lambda: get_value(c, 4, "greeting", "--consistency=s") == "hello",
                           30, what="the learner caught up")
        c.etcdctl("endpoint", "status", i=4, check=True)
        for cmd in (("get", "greeting"), ("put", "k", "v"), ("member", "list")):
            r = c.etcdctl(*cmd, i=4)
            check(r.returncode == 1 and r.stderr.splitlines()[-1] ==
                  "Error: etcdserver: rpc not supported for learner", f"{cmd} on the learner: {r}")

        # Promoted (-w json) once it is in sync with the leader.
        def promoted():
            r = run_ctl(args.ctl, c.members[leader].endpoint, "-w", "json", "member", "promote",
                        f"{learner_id:x}")
            if r.returncode != 0:
                check("can only promote a learner member which is in sync with leader" in
                      r.stderr, f"promote: {r.stderr}")
                return None
            return json.loads(r.stdout)
        resp = cluster.wait_until(promoted, 20, interval=0.5, what="learner promoted")
        now = next(m for m in resp["members"] if m["ID"] == learner_id)
        check("isLearner" not in now and now["name"] == "m4", f"promoted member: {resp}")
        check(get_value(c, 4, "greeting") == "hello", "linearizable get on the promoted member")

        # -w json of the same member update from both CLIs, byte for byte.
        update = ("member", "update", f"{learner_id:x}", f"--peer-urls={new.peer_url}")
        ours = run_ctl(args.ctl, c.members[leader].endpoint, "-w", "json", *update)
        theirs = run_ctl(cluster.ETCDCTL, c.members[leader].endpoint, "-w", "json", *update)
        check(ours.returncode == theirs.returncode == 0 and ours.stdout == theirs.stdout,
              f"member update -w json:\n{ours.stdout}{ours.stderr}\n{theirs.stdout}")

        # -w fields: etcdctl removes the member, then refuses the format.
        r = run_ctl(args.ctl, c.members[leader].endpoint, "-w", "fields", "member", "remove",
                    f"{learner_id:x}")
        check(r.returncode == 4 and r.stderr == "Error: fields not supported as output format\n",
              f"member remove -w fields: {r}")
        cluster.wait_until(lambda: not new.running(), 20, what="m4 to stop after its removal")
        check(len(member_list(c, leader)) == 3, "m4 removed")
        print("cluster e2e: OK")
        return 0
    except Exception:
        c.print_log_tails()
        raise
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(main())

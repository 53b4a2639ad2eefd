#!/usr/bin/python3
"""The v2 API's cluster endpoints on 3 members, against etcd 3.4.

    /usr/bin/python3 v2_cluster_test.py --server build/bin/etcdpp [--reference /usr/bin/etcd]

POST and DELETE /v2/members (a member added and removed through the v2
API, and the refusals: a peer URL already taken, bad content type, bad URL,
unknown member; a member removed before gets 410 Gone), /v2/stats/leader on the leader (every follower with its
latency summary and probe counts) and on a follower (403),
/v2/stats/self (Raft append requests sent by the leader and received by
followers go up with writes; their rates are present while writes flow
and left out once idle) and /v2/stats/store (the counters of each
operation go up by what was done). Replies are compared with etcd 3.4's
after replacing member ids by roles and masking times and latencies (which
must still be present, of the right type).
"""

import http.client
import json
import os
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

SERVER = None
REFERENCE = None
KEEP = False
TIMEOUT = 15


def request(port, method, path, body=None, content_type=None):
    headers = {"Content-Type": content_type} if content_type else {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode()
        try:
            doc = json.loads(text) if text else None
        except ValueError:
            doc = text
        return resp.status, doc
    finally:
        conn.close()


class Roles:
    """Member ids (hex) replaced by role names, so two clusters compare."""

    def __init__(self):
        self.names = {}

    def add(self, hex_id, role):
        self.names[hex_id] = role

    def mask(self, doc):
        if isinstance(doc, dict):
            return {self.names.get(k, k): self.mask(v) for k, v in doc.items()}
        if isinstance(doc, list):
            return [self.mask(d) for d in doc]
        if isinstance(doc, str):
            return self.names.get(doc, doc)
        return doc


def poll(probe, done, timeout):
    """probe() until done(value) or timeout seconds passed: the last value."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = probe()
    return value


def rates(stats):
    """The rate fields of a /v2/stats/self reply, each checked a positive number."""
    return {k: isinstance(v, (int, float)) and v > 0 for k, v in stats.items() if k.endswith("Rate")}


def latency_shape(latency):
    """The latency summary's fields, each a number; values differ by run."""
    return {k: isinstance(v, (int, float)) for k, v in latency.items()}


def scenario(server):
    out = []
    with cluster.Cluster(server, size=3, keep=KEEP, extra_flags=["--enable-v2=true"]) as c:
        ports = [m.client_port for m in c.members]
        roles = Roles()
        _, members = request(ports[0], "GET", "/v2/members")
        by_name = {m["name"]: m["id"] for m in members["members"]}
        leader = next(i for i, m in enumerate(c.members)
                      if request(m.client_port, "GET", "/v2/stats/self")[1]["state"]
                      == "StateLeader")
        follower = (leader + 1) % 3
        # Which member leads differs between runs: ids and names by role.
        for i, role in ((leader, "leader"), (follower, "follower"), ((leader + 2) % 3, "third")):
            roles.add(by_name[c.members[i].name], role)
            roles.add(c.members[i].name, role + "-name")

        # Writes, and what they did to the counters.
        def self_stats(i):
            return request(ports[i], "GET", "/v2/stats/self")[1]
        store_before = request(ports[follower], "GET", "/v2/stats/store")[1]
        sent_before = self_stats(leader)["sendAppendRequestCnt"]
        received_before = self_stats(follower)["recvAppendRequestCnt"]
        request(ports[follower], "PUT", "/v2/keys/s/a", "value=1",
                "application/x-www-form-urlencoded")
        request(ports[follower], "PUT", "/v2/keys/s/a?prevExist=false", "value=2",
                "application/x-www-form-urlencoded")
        request(ports[follower], "GET", "/v2/keys/s/a")
        request(ports[follower], "GET", "/v2/keys/s/missing")
        request(ports[follower], "DELETE", "/v2/keys/s/a")
        store_after = request(ports[follower], "GET", "/v2/stats/store")[1]
        moved = {k: store_after[k] - store_before[k] for k in store_after}
        # etcd's own reads of its v2 store (membership) fail too: at least ours.
        moved["getsFail"] = moved["getsFail"] >= 1
        out.append(("store counters moved", moved))
        out.append(("leader sent appends", self_stats(leader)["sendAppendRequestCnt"] > sent_before))
        out.append(("follower received appends",
                    self_stats(follower)["recvAppendRequestCnt"] > received_before))

        # /v2/stats/self: shape, with times masked once checked; the rates
        # (below) come and go with the traffic.
        stats = self_stats(follower)
        out.append(("self keys", sorted(k for k in stats if not k.endswith("Rate"))))
        out.append(("self", {"name": roles.mask(stats["name"]), "id": roles.mask(stats["id"]),
                             "state": stats["state"],
                             "leader": roles.mask(stats["leaderInfo"]["leader"]),
                             "leaderInfo keys": sorted(stats["leaderInfo"]),
                             "times": all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", t) for t in
                                          (stats["startTime"], stats["leaderInfo"]["startTime"])),
                             "uptime": bool(re.fullmatch(r"[\dhm.]+(s|ms|µs|ns)",
                                                         stats["leaderInfo"]["uptime"]))}))

        # The append rates (messages and bytes per second over the last
        # appends): the leader's send rates and a follower's receive rates
        # are there while writes flow, and gone (left out, as 0) once the
        # last append is more than a second old.
        writing = threading.Event()
        writing.set()

        def write_loop():
            n = 0
            while writing.is_set():
                request(ports[leader], "PUT", "/v2/keys/rate/k", f"value={n}",
                        "application/x-www-form-urlencoded")
                n += 1
        writer = threading.Thread(target=write_loop)
        writer.start()
        try:
            both = lambda: (rates(self_stats(leader)), rates(self_stats(follower)))  # noqa: E731
            leader_rates, follower_rates = poll(both, lambda r: len(r[0]) == 2 and len(r[1]) == 2,
                                                timeout=10)
        finally:
            writing.clear()
            writer.join()
        out.append(("rates while writing", {"leader": leader_rates, "follower": follower_rates}))
        out.append(("rates when idle", poll(both, lambda r: r == ({}, {}), timeout=10)))

        # /v2/stats/leader: every follower, with its latency summary.
        status, lead = request(ports[leader], "GET", "/v2/stats/leader")
        out.append(("leader stats", status, roles.mask(lead["leader"]),
                    sorted(roles.mask(list(lead["followers"])))))
        for fid, f in sorted(lead["followers"].items()):
            out.append(("follower", roles.mask(fid) != "leader", sorted(f),
                        latency_shape(f["latency"]), sorted(f["counts"])))
        out.append(("leader stats on a follower",
                    request(ports[follower], "GET", "/v2/stats/leader")))

        # Members: add one through v2, refusals, remove it.
        spare = f"http://127.0.0.1:{cluster.free_port()}"
        roles.add(spare, "spare-url")
        body = json.dumps({"peerURLs": [spare]})
        taken = json.dumps({"peerURLs": [c.members[leader].peer_url]})
        out.append(("add a taken peer URL", cluster.wait_until(
            lambda: (lambda r: r if r[0] != 500 else None)(
                request(ports[follower], "POST", "/v2/members", taken, "application/json")),
            timeout=30, interval=0.5, what="the cluster healthy")))
        # etcd refuses (500) to change a cluster whose members have not all
        # been connected for 5 s: retried until the member is added.
        status, added = cluster.wait_until(
            lambda: (lambda r: r if r[0] != 500 else None)(
                request(ports[follower], "POST", "/v2/members", body, "application/json")),
            timeout=30, interval=0.5, what="the member added")
        roles.add(added.get("id", "?"), "added")
        out.append(("add", status, roles.mask(added)))
        # Listed by the member that answered the add: it answers once it has
        # applied the change, and another member (the leader too) applies
        # the same committed entry on its own time, in etcd as in etcdpp
        # (etcd's leader once listed 3 members here).
        _, listed = request(ports[follower], "GET", "/v2/members")
        out.append(("listed", sorted(json.dumps(roles.mask(m), sort_keys=True)
                                     for m in listed["members"]
                                     if m["name"] == "" or m["id"] == added.get("id"))))
        out.append(("count", len(listed["members"])))
        out.append(("bad content type", request(ports[leader], "POST", "/v2/members", body,
                                                "application/x-www-form-urlencoded")))
        out.append(("bad url", request(ports[leader], "POST", "/v2/members",
                                       json.dumps({"peerURLs": ["foo"]}), "application/json")))
        out.append(("bad json", request(ports[leader], "POST", "/v2/members", "{",
                                        "application/json")[0]))
        out.append(("no id", request(ports[leader], "DELETE", "/v2/members")[0]))
        out.append(("bad id", request(ports[leader], "DELETE", "/v2/members/xyz")))
        out.append(("unknown id", request(ports[leader], "DELETE", "/v2/members/abc")))
        out.append(("remove", request(ports[follower], "DELETE",
                                      "/v2/members/" + added.get("id", "?"))))
        # A member removed before: etcd answers 410 Gone to a DELETE, and
        # its update handler gives a PUT the generic 500.
        status, gone = request(ports[leader], "DELETE", "/v2/members/" + added.get("id", "?"))
        out.append(("remove again", status,
                    json.loads(json.dumps(gone).replace(added.get("id", "?"), "added"))))
        out.append(("update removed", roles.mask(request(
            ports[leader], "PUT", "/v2/members/" + added.get("id", "?"),
            json.dumps({"peerURLs": [f"http://127.0.0.1:{cluster.free_port()}"]}),
            "application/json"))))
        _, listed = request(ports[follower], "GET", "/v2/members")
        out.append(("count after", len(listed["members"])))
        out.append(("method", request(ports[leader], "PATCH", "/v2/members")[0]))
    return out


class V2ClusterTest(unittest.TestCase):
    maxDiff = None

    def test_matches_etcd(self):
        ours = scenario(SERVER)
        # What must hold whatever etcd does.
        steps = dict((s[0], s[1:]) for s in ours)
        self.assertEqual(steps["add"][0], 201)
        self.assertEqual(steps["count"], (4,))
        self.assertEqual(steps["remove"], ((204, None),))
        self.assertEqual(steps["count after"], (3,))
        self.assertEqual(steps["remove again"],
                         (410, {"message": "Member permanently removed: added"}))
        self.assertEqual(steps["rates while writing"],
                         ({"leader": {"sendPkgRate": True, "sendBandwidthRate": True},
                           "follower": {"recvPkgRate": True, "recvBandwidthRate": True}},))
        self.assertEqual(steps["leader sent appends"], (True,))
        self.assertEqual(steps["follower received appends"], (True,))
        if not REFERENCE:
            self.fail("no --reference etcd to compare with")
        theirs = scenario(REFERENCE)
        self.assertEqual([s[0] for s in ours], [s[0] for s in theirs])
        for mine, ref in zip(ours, theirs):
            with self.subTest(step=mine[0]):
                self.assertEqual(mine, ref, f"step {mine[0]!r} differs from etcd 3.4")


if __name__ == "__main__":
    p = cluster.server_arg_parser(__doc__)
    p.add_argument("--reference", help="etcd 3.4 to compare with")
    args, rest = p.parse_known_args()
    SERVER, REFERENCE, KEEP = args.server, args.reference, args.keep
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)

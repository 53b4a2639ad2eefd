#!/usr/bin/python3
"""The HTTP side of the client port, end to end, with plain HTTP requests.

    /usr/bin/python3 http_test.py --server build/bin/etcdpp [--reference /usr/bin/etcd]

Against --server: /health, /version, /metrics (parsed with Prometheus' own
parser, python3-prometheus-client), the --listen-metrics-urls listener, the
v3 JSON gateway (unary calls, watch and lease keep-alive streams), a leader
election over the gateway as HA managers run it, and gRPC and HTTP clients
interleaved on the one port. With --reference, the same gateway requests
also go to a fresh etcd 3.4 and every reply (status and JSON body) must
equal etcd's after masking what differs between any two clusters (IDs,
terms, versions, URLs, sizes); revisions are compared as they are.

Every socket has a timeout; every wait is bounded.
"""

import base64
import http.client
import json
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

SERVER = None
REFERENCE = None
KEEP = False
TIMEOUT = 10


def b64(text):
    return base64.b64encode(text.encode()).decode()


def unb64(text):
    return base64.b64decode(text).decode()


class Endpoint:
    """HTTP requests to one member's client port."""

    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read().decode()
        finally:
            conn.close()

    def post(self, path, obj=None, raw=None):
        body = raw if raw is not None else (json.dumps(obj) if obj is not None else None)
        status, _, text = self.request("POST", path, body)
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text


class Stream:
    """A streaming gateway call: the request body is sent as chunks while the
    reply is read line by line."""

    def __init__(self, port, path, requests, end=False):
        """Sends `requests`, and ends the body if `end`, before reading the
        reply's head (etcd 3.4 answers a streamed request only once its body
        has ended; etcdpp answers as requests arrive)."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        self.sock.sendall(head.encode())
        for r in requests:
            self.send(r)
        if end:
            self.end_requests()
        self.reader = self.sock.makefile("rb")
        status_line = self.reader.readline().decode()
        self.status = int(status_line.split()[1])
        self.headers = {}
        while True:
            line = self.reader.readline().decode().strip()
            if not line:
                break
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()

    def send(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    def end_requests(self):
        self.sock.sendall(b"0\r\n\r\n")

    def next(self):
        """The next JSON line of the chunked reply (None at its end)."""
        size_line = self.reader.readline()
        if not size_line:
            return None
        size = int(size_line.strip(), 16)
        if size == 0:
            return None
        data = self.reader.read(size)
        self.reader.readline()  # CRLF after the chunk
        return json.loads(data)

    def close(self):
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass


# What differs between two clusters: IDs and terms in every header, the
# member list's IDs, names and URLs, and Status's version, sizes and indexes.
HEADER_KEYS = {"cluster_id", "member_id", "raft_term"}
MEMBER_KEYS = {"ID", "name", "peerURLs", "clientURLs"}
STATUS_KEYS = {"version", "dbSize", "dbSizeInUse", "leader", "raftIndex", "raftTerm",
               "raftAppliedIndex"}


def mask(obj, context=None):
    """`obj` with what differs between two clusters replaced by a placeholder;
    revisions stay (both start from an empty store at revision 1)."""
    if isinstance(obj, list):
        return [mask(v, context) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    for k, v in obj.items():
        if (k in HEADER_KEYS or (context == "member" and k in MEMBER_KEYS)
                or (context == "top" and k in STATUS_KEYS) or k == "hash"):
            out[k] = "<masked>"
        else:
            out[k] = mask(v, "member" if k in ("members", "member") else None)
    return out


# The gateway scenario: (path, body) pairs, each run in order against a fresh
# member. Bodies use both field-name spellings and int64 as numbers and strings.
SCENARIO = [
    ("/v3/kv/put", {"key": b64("foo"), "value": b64("bar")}),
    ("/v3/kv/range", {"key": b64("foo")}),
    ("/v3/kv/range", {"key": b64("none")}),
    ("/v3beta/kv/range", {"key": b64("foo")}),
    ("/v3/kv/put", {"key": b64("foo1"), "value": b64("x"), "prev_kv": True}),
    ("/v3/kv/put", {"key": b64("foo1"), "value": b64("y"), "prevKv": True}),
    ("/v3/kv/range", {"key": b64("foo"), "range_end": b64("fop"), "keys_only": True}),
    ("/v3/kv/range", {"key": b64("foo"), "rangeEnd": b64("fop"), "countOnly": True}),
    ("/v3/kv/range", {"key": b64("foo"), "range_end": b64("fop"), "limit": 1,
                      "sort_order": "DESCEND", "sort_target": "KEY"}),
    ("/v3/kv/range", {"key": b64("foo"), "revision": "2"}),
    ("/v3/kv/range", {"key": b64("foo"), "revision": 100}),
    ("/v3/kv/txn", {"compare": [{"target": "VALUE", "key": b64("foo"), "value": b64("bar")}],
                    "success": [{"request_put": {"key": b64("foo"), "value": b64("baz")}}],
                    "failure": [{"requestRange": {"key": b64("foo")}}]}),
    ("/v3/kv/txn", {"compare": [{"target": "VALUE", "key": b64("foo"), "value": b64("bar")}],
                    "success": [{"request_put": {"key": b64("foo"), "value": b64("baz")}}],
                    "failure": [{"requestRange": {"key": b64("foo")}}]}),
    ("/v3/kv/txn", {"compare": [{"target": "CREATE", "result": "EQUAL", "key": b64("new"),
                                 "create_revision": "0"}],
                    "success": [{"request_put": {"key": b64("new"), "value": b64("1")}},
                                {"request_delete_range": {"key": b64("foo1"), "prev_kv": True}}]}),
    ("/v3/kv/deleterange", {"key": b64("foo"), "prev_kv": True}),
    ("/v3/kv/deleterange", {"key": b64("foo")}),
    ("/v3/kv/compaction", {"revision": "3"}),
    ("/v3/kv/compaction", {"revision": 3}),
    ("/v3/kv/range", {"key": b64("foo"), "revision": 2}),
    ("/v3/lease/grant", {"TTL": "60", "ID": "1234"}),
    ("/v3/lease/grant", {"TTL": 60, "ID": 1234}),
    ("/v3/kv/put", {"key": b64("leased"), "value": b64("v"), "lease": "1234"}),
    ("/v3/kv/put", {"key": b64("leased"), "value": b64("v"), "lease": "999"}),
    ("/v3/kv/lease/timetolive", {"ID": "1234", "keys": True}),
    ("/v3/lease/leases", {}),
    ("/v3/kv/lease/leases", None),
    ("/v3/lease/revoke", {"ID": "1234"}),
    ("/v3/kv/lease/revoke", {"ID": "1234"}),
    ("/v3/lease/timetolive", {"ID": 1234}),
    ("/v3/kv/range", {"key": b64("leased")}),
    ("/v3/cluster/member/list", {}),
    ("/v3/maintenance/status", {}),
    ("/v3/maintenance/alarm", {}),
    ("/v3/kv/put", {"key": b64("k"), "value": b64("v"), "unknown_field": 1}),
    ("/v3/kv/range", {"key": b64("k")}, "trailing garbage is ignored"),
]

# Requests whose error text comes from the JSON parser (Go's and protobuf's
# words differ): the status and the gRPC code must match, not the message.
DECODE_ERRORS = [
    ("/v3/kv/range", "xx"),
    ("/v3/kv/range", json.dumps({"key": 1})),
    ("/v3/kv/range", json.dumps({"key": b64("foo"), "limit": "1.5"})),
]


def run_scenario(ep):
    replies = []
    for step in SCENARIO:
        path, body = step[0], step[1]
        if len(step) > 2:
            status, reply = ep.post(path, raw=json.dumps(body) + " {garbage")
        else:
            status, reply = ep.post(path, body)
        replies.append((path, status, mask(reply, "top")))
    return replies


class HttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.metrics_port = cluster.free_port()
        cls.cluster = cluster.Cluster(SERVER, size=1, keep=KEEP, extra_flags=[
            "--listen-metrics-urls", f"http://127.0.0.1:{cls.metrics_port}",
            "--heartbeat-interval", "100", "--election-timeout", "500"]).start()
        cls.ep = Endpoint(cls.cluster.members[0].client_port)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    # ---- /health, /version, /metrics ----------------------------------

    def test_health(self):
        status, headers, body = self.ep.request("GET", "/health")
        self.assertEqual((status, body), (200, '{"health":"true"}'))
        self.assertEqual(headers["Access-Control-Allow-Origin"], "*")
        status, headers, body = self.ep.request("POST", "/health")
        self.assertEqual((status, body, headers["Allow"]), (405, "Method Not Allowed\n", "GET"))
        metrics = Endpoint(self.metrics_port)
        self.assertEqual(metrics.request("GET", "/health")[::2], (200, '{"health":"true"}'))

    def test_version(self):
        status, headers, body = self.ep.request("GET", "/version")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json")
        v = json.loads(body)
        self.assertEqual(sorted(v), ["etcdcluster", "etcdserver"])
        # Clients parse these as X.Y.Z and pick /v3 from etcdcluster 3.4.
        self.assertRegex(v["etcdserver"], r"^3\.4\.\d+$")
        self.assertEqual(v["etcdcluster"], "3.4.0")

    def test_not_found_and_options(self):
        status, _, body = self.ep.request("GET", "/nothing")
        self.assertEqual((status, body), (404, "404 page not found\n"))
        status, _, body = self.ep.request("POST", "/v3/kv/nothing", "{}")
        self.assertEqual((status, body), (404, "Not Found\n"))
        status, _, body = self.ep.request("GET", "/v3/kv/range")
        self.assertEqual((status, body), (405, "Method Not Allowed\n"))
        status, headers, body = self.ep.request("OPTIONS", "/v3/kv/range")
        self.assertEqual((status, body), (200, ""))
        self.assertEqual(headers["Access-Control-Allow-Methods"], "POST, GET, OPTIONS, PUT, DELETE")
        metrics = Endpoint(self.metrics_port)
        self.assertEqual(metrics.request("GET", "/version")[0], 404)

    def test_metrics_parse_and_count(self):
        from prometheus_client.parser import text_string_to_metric_families

        def scrape(port):
            status, headers, body = Endpoint(port).request("GET", "/metrics")
            self.assertEqual(status, 200)
            self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
            samples = {}
            for fam in text_string_to_metric_families(body):
                for s in fam.samples:
                    samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
            return samples

        def value(samples, name, **labels):
            return samples[(name, tuple(sorted(labels.items())))]

        put_ok = dict(grpc_code="OK", grpc_method="Put", grpc_service="etcdserverpb.KV",
                      grpc_type="unary")
        before = scrape(self.metrics_port)
        self.assertEqual(value(before, "etcd_server_has_leader"), 1)
        self.assertEqual(value(before, "etcd_server_is_leader"), 1)
        self.assertGreater(value(before, "etcd_mvcc_db_total_size_in_bytes"), 0)
        self.assertGreater(value(before, "process_resident_memory_bytes"), 0)
        self.assertGreaterEqual(value(before, "process_cpu_seconds_total"), 0)
        self.assertGreater(value(before, "process_open_fds"), 0)
        self.assertGreater(value(before, "process_start_time_seconds"), 1e9)
        self.assertGreater(value(before, "etcd_server_proposals_applied_total"), 0)
        client = self.cluster.client(0)
        for i in range(3):
            client.put(f"metrics-{i}", "v")
        # A gateway put is a gRPC call too (in-process), so it counts.
        self.assertEqual(self.ep.post("/v3/kv/put", {"key": b64("m"), "value": b64("v")})[0], 200)
        after = scrape(self.cluster.members[0].client_port)
        self.assertEqual(value(after, "grpc_server_handled_total", **put_ok)
                         - value(before, "grpc_server_handled_total", **put_ok), 4)
        self.assertEqual(value(after, "grpc_server_started_total", grpc_method="Put",
                               grpc_service="etcdserverpb.KV", grpc_type="unary")
                         - value(before, "grpc_server_started_total", grpc_method="Put",
                                 grpc_service="etcdserverpb.KV", grpc_type="unary"), 4)
        self.assertGreaterEqual(value(after, "etcd_server_proposals_committed_total"),
                                value(before, "etcd_server_proposals_committed_total") + 4)
        # The server's own events: every acknowledged put was fsynced in the
        # WAL before its answer, this member saw itself elected, and nothing
        # is left pending or failed after the puts returned.
        wal = "etcd_disk_wal_fsync_duration_seconds"
        self.assertGreaterEqual(value(after, wal + "_count") - value(before, wal + "_count"), 1)
        self.assertEqual(value(after, wal + "_bucket", le="+Inf"), value(after, wal + "_count"))
        # The backend commit follows the answer: etcd commits its backend on
        # a 100 ms timer, and etcdpp holds answered writes in the open
        # transaction for up to --backend-batch-interval (100 ms), so
        # that commit is counted soon after the puts, not before they return.
        # (Reads of those puts wait for it; the kv tests check that.)
        port = self.cluster.members[0].client_port

        def observed_since_before(histogram, what):
            """The first scrape whose `histogram` counted one more than
            before the puts; its +Inf bucket holds every observation."""
            grown = cluster.wait_until(
                lambda: (lambda s: s if value(s, histogram + "_count")
                         - value(before, histogram + "_count") >= 1 else None)(scrape(port)),
                timeout=10, interval=0.01, what=what)
            self.assertEqual(value(grown, histogram + "_bucket", le="+Inf"),
                             value(grown, histogram + "_count"))

        observed_since_before("etcd_disk_backend_commit_duration_seconds",
                              "the backend commit of the puts")
        # The commit's flush to disk follows it on the store's own thread.
        observed_since_before("etcdpp_disk_backend_flush_duration_seconds",
                              "the flush of the backend commit")
        self.assertGreaterEqual(value(after, "etcd_server_leader_changes_seen_total"), 1)
        self.assertEqual(value(after, "etcd_server_proposals_pending"), 0)
        self.assertEqual(value(after, "etcd_server_proposals_failed_total"), 0)

    # ---- the gateway -----------------------------------------------------

    def test_gateway_matches_reference(self):
        # A member of its own: revisions must start where etcd's do.
        with cluster.Cluster(SERVER, size=1, keep=KEEP) as c:
            got = run_scenario(Endpoint(c.members[0].client_port))
        for (path, status, reply), step in zip(got, SCENARIO):
            self.assertLess(status, 600, path)
        # Checks that hold with or without the reference.
        by_step = list(zip(SCENARIO, got))
        self.assertEqual(by_step[1][1][1:], (200, {
            "header": {"cluster_id": "<masked>", "member_id": "<masked>", "revision": "2",
                       "raft_term": "<masked>"},
            "kvs": [{"key": b64("foo"), "create_revision": "2", "mod_revision": "2",
                     "version": "1", "value": b64("bar")}], "count": "1"}))
        self.assertEqual(by_step[10][1][1:], (400, {
            "error": "etcdserver: mvcc: required revision is a future revision",
            "message": "etcdserver: mvcc: required revision is a future revision", "code": 11}))
        if REFERENCE is None:
            return
        with cluster.Cluster(REFERENCE, size=1, keep=KEEP) as c:
            want = run_scenario(Endpoint(c.members[0].client_port))
        for (path, status, reply), (_, ref_status, ref_reply) in zip(got, want):
            self.assertEqual((path, status, reply), (path, ref_status, ref_reply))

    def test_gateway_decode_errors(self):
        for path, raw in DECODE_ERRORS:
            status, reply = self.ep.post(path, raw=raw)
            self.assertEqual(status, 400, raw)
            self.assertEqual(reply["code"], 3, raw)
            self.assertEqual(reply["error"], reply["message"])

    def test_gateway_error_carries_grpc_trailer(self):
        status, headers, body = self.ep.request(
            "POST", "/v3/lease/revoke", json.dumps({"ID": "424242"}))
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(body), {"error": "etcdserver: requested lease not found",
                                            "message": "etcdserver: requested lease not found",
                                            "code": 5})
        self.assertEqual(headers.get("Trailer"), "Grpc-Trailer-Content-Type")

    def test_large_put_with_expect_continue(self):
        value = "x" * 200000
        body = json.dumps({"key": b64("big"), "value": b64(value)})
        status, _, _ = self.ep.request("POST", "/v3/kv/put", body, {"Expect": "100-continue"})
        self.assertEqual(status, 200)
        status, reply = self.ep.post("/v3/kv/range", {"key": b64("big")})
        self.assertEqual(unb64(reply["kvs"][0]["value"]), value)

    def test_keep_alive_connection_stays_http(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.cluster.members[0].client_port,
                                          timeout=TIMEOUT)
        try:
            for i in range(20):
                conn.request("POST", "/v3/kv/put",
                             json.dumps({"key": b64(f"ka{i}"), "value": b64(str(i))}))
                resp = conn.getresponse()
                self.assertEqual(resp.status, 200)
                resp.read()
                conn.request("GET", "/health")
                resp = conn.getresponse()
                self.assertEqual(resp.read(), b'{"health":"true"}')
        finally:
            conn.close()

    def test_watch_stream(self):
        port = self.cluster.members[0].client_port
        w = Stream(port, "/v3/watch", [{"create_request": {"key": b64("wk"), "prev_kv": True}},
                                       {"create_request": {"key": b64("wk2")}}], end=True)
        try:
            self.assertEqual(w.status, 200)
            created = w.next()["result"]
            self.assertTrue(created["created"])
            self.assertNotIn("watch_id", created)  # 0: left out
            self.assertEqual(w.next()["result"]["watch_id"], "1")
            # The end of the request body does not end a watch (as etcd).
            self.ep.post("/v3/kv/put", {"key": b64("wk"), "value": b64("1")})
            self.ep.post("/v3/kv/deleterange", {"key": b64("wk")})
            put = w.next()["result"]["events"]
            self.assertEqual(len(put), 1)
            self.assertNotIn("type", put[0])  # PUT is the zero value
            self.assertEqual(unb64(put[0]["kv"]["value"]), "1")
            deleted = w.next()["result"]["events"][0]
            self.assertEqual(deleted["type"], "DELETE")
            self.assertEqual(unb64(deleted["prev_kv"]["value"]), "1")
        finally:
            w.close()
        # The member cancels the call once the client is gone: it still serves.
        self.assertEqual(self.ep.request("GET", "/health")[0], 200)

    def test_watch_stream_full_duplex(self):
        """Requests sent while replies flow: a second watch and a cancel on a
        live stream."""
        if os.path.basename(SERVER) == "etcd":
            self.skipTest("etcd 3.4 answers a streamed request only after its body ends")
        port = self.cluster.members[0].client_port
        w = Stream(port, "/v3/watch", [{"create_request": {"key": b64("dk")}}])
        try:
            self.assertTrue(w.next()["result"]["created"])
            w.send({"create_request": {"key": b64("dk2")}})
            second = w.next()["result"]
            self.assertEqual((second["created"], second["watch_id"]), (True, "1"))
            w.send({"cancel_request": {"watch_id": "0"}})
            self.assertTrue(w.next()["result"]["canceled"])
            self.ep.post("/v3/kv/put", {"key": b64("dk"), "value": b64("gone")})
            self.ep.post("/v3/kv/put", {"key": b64("dk2"), "value": b64("2")})
            ev = w.next()["result"]
            self.assertEqual((ev["watch_id"], unb64(ev["events"][0]["kv"]["value"])), ("1", "2"))
            w.end_requests()
            self.ep.post("/v3/kv/put", {"key": b64("dk2"), "value": b64("3")})
            ev = w.next()["result"]
            self.assertEqual(unb64(ev["events"][0]["kv"]["value"]), "3")
        finally:
            w.close()

    def test_keepalive_stream(self):
        status, grant = self.ep.post("/v3/lease/grant", {"TTL": 30})
        lease = grant["ID"]
        port = self.cluster.members[0].client_port
        # An unknown lease's reply leaves TTL out (0).
        k = Stream(port, "/v3/lease/keepalive", [{"ID": lease}, {"ID": "98765"}], end=True)
        try:
            first = k.next()["result"]
            self.assertEqual((first["ID"], first["TTL"]), (lease, "30"))
            missing = k.next()["result"]
            self.assertEqual(missing["ID"], "98765")
            self.assertNotIn("TTL", missing)
            self.assertIsNone(k.next())  # the stream ends after the last reply
        finally:
            k.close()

    def test_leader_election_flow(self):
        """An HA manager's leader key over the gateway: a lease, a create-if-absent
        txn, keep-alives, and a watch that sees the key go when the lease is revoked."""
        ep = self.ep
        _, grant = ep.post("/v3/lease/grant", {"TTL": 5})
        lease = grant["ID"]
        take = {"compare": [{"target": "CREATE", "key": b64("/service/leader"),
                             "create_revision": 0}],
                "success": [{"request_put": {"key": b64("/service/leader"),
                                             "value": b64("node-a"), "lease": lease}}],
                "failure": [{"request_range": {"key": b64("/service/leader")}}]}
        _, first = ep.post("/v3/kv/txn", take)
        self.assertTrue(first["succeeded"])
        _, grant_b = ep.post("/v3/lease/grant", {"TTL": 5})
        other = json.loads(json.dumps(take).replace(b64("node-a"), b64("node-b"))
                           .replace(lease, grant_b["ID"]))
        _, second = ep.post("/v3/kv/txn", other)
        self.assertNotIn("succeeded", second)  # false: left out
        holder = second["responses"][0]["response_range"]["kvs"][0]
        self.assertEqual((unb64(holder["value"]), holder["lease"]), ("node-a", lease))
        port = self.cluster.members[0].client_port
        w = Stream(port, "/v3/watch", [{"create_request": {"key": b64("/service/leader")}}],
                   end=True)
        k = Stream(port, "/v3/lease/keepalive", [{"ID": lease}, {"ID": lease}], end=True)
        try:
            self.assertTrue(w.next()["result"]["created"])
            self.assertEqual(k.next()["result"]["TTL"], "5")
            self.assertEqual(k.next()["result"]["TTL"], "5")
            self.assertIsNone(k.next())
            self.assertEqual(ep.post("/v3/lease/revoke", {"ID": lease})[0], 200)
            gone = w.next()["result"]["events"][0]
            self.assertEqual((gone["type"], unb64(gone["kv"]["key"])),
                             ("DELETE", "/service/leader"))
            _, third = ep.post("/v3/kv/txn", other)
            self.assertTrue(third["succeeded"])
        finally:
            w.close()
            k.close()

    def test_grpc_and_http_interleaved(self):
        """Many gRPC and HTTP connections at once on the one port: every write
        lands and every read sees its own write, over either protocol."""
        import etcd3
        port = self.cluster.members[0].client_port
        errors = []
        n_each, ops = 100, 5

        def grpc_worker(i):
            try:
                c = etcd3.client(host="127.0.0.1", port=port, timeout=TIMEOUT)
                for j in range(ops):
                    c.put(f"mix/g{i}/{j}", f"g{i}.{j}")
                    value, _ = c.get(f"mix/g{i}/{j}")
                    if value != f"g{i}.{j}".encode():
                        errors.append(("grpc", i, j, value))
                c.close()
            except Exception as e:  # reported below
                errors.append(("grpc", i, repr(e)))

        def http_worker(i):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
                for j in range(ops):
                    conn.request("POST", "/v3/kv/put", json.dumps(
                        {"key": b64(f"mix/h{i}/{j}"), "value": b64(f"h{i}.{j}")}))
                    r = conn.getresponse()
                    r.read()
                    conn.request("POST", "/v3/kv/range", json.dumps({"key": b64(f"mix/h{i}/{j}")}))
                    r = conn.getresponse()
                    got = json.loads(r.read())
                    if unb64(got["kvs"][0]["value"]) != f"h{i}.{j}":
                        errors.append(("http", i, j, got))
                conn.close()
            except Exception as e:  # reported below
                errors.append(("http", i, repr(e)))

        threads = [threading.Thread(target=grpc_worker, args=(i,)) for i in range(n_each)]
        threads += [threading.Thread(target=http_worker, args=(i,)) for i in range(n_each)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertFalse(any(t.is_alive() for t in threads), "workers did not finish")
        self.assertEqual(errors, [])
        _, count = self.ep.post("/v3/kv/range", {"key": b64("mix/"), "range_end": b64("mix0"),
                                                 "count_only": True})
        self.assertEqual(count["count"], str(2 * n_each * ops))


if __name__ == "__main__":
    p = cluster.server_arg_parser(__doc__)
    p.add_argument("--reference", help="etcd 3.4 to compare the gateway's replies with")
    args, rest = p.parse_known_args()
    SERVER, REFERENCE, KEEP = args.server, args.reference, args.keep
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)

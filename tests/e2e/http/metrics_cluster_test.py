#!/usr/bin/python3
"""/metrics of a 3-member cluster at the default --metrics=basic.

    /usr/bin/python3 metrics_cluster_test.py --server build/bin/etcdpp [--reference /usr/bin/etcd]

Checks what operators alert on in a cluster: every member measures its
round trip to each peer (etcd_network_peer_round_trip_time_seconds{To},
etcd's buckets), and gRPC calls are counted per method and code
(grpc_server_handled_total and the other grpc_server_* counters) without
--metrics=extensive, whose latency histogram stays absent. With
--reference, the gRPC counter checks run against etcd 3.4 too (etcd
observes its round trips every 30 s, too slow for a test: those are
checked on --server only). Parsed with python3-prometheus-client.
"""

import http.client
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

SERVERS = []  # (label, binary)
KEEP = False

# etcd's buckets for the peer round trip: 0.1 ms doubling 14 times.
RTT_BOUNDS = [0.0001 * 2 ** i for i in range(14)]


def scrape(port):
    from prometheus_client.parser import text_string_to_metric_families
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = resp.read().decode()
    finally:
        conn.close()
    if resp.status != 200:
        raise AssertionError(f"/metrics answered {resp.status}")
    samples = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def member_ids_hex(c):
    client = c.client(0)
    return {m.name: format(m.id, "x") for m in client.members}


class MetricsClusterTest(unittest.TestCase):
    server = None
    label = None

    @classmethod
    def setUpClass(cls):
        cls.cluster = cluster.Cluster(cls.server, size=3, keep=KEEP).start()
        cls.ids = member_ids_hex(cls.cluster)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    def test_grpc_calls_counted_by_default(self):
        m = self.cluster.members[0]
        put_ok = (("grpc_code", "OK"), ("grpc_method", "Put"),
                  ("grpc_service", "etcdserverpb.KV"), ("grpc_type", "unary"))
        range_labels = (("grpc_method", "Range"), ("grpc_service", "etcdserverpb.KV"),
                        ("grpc_type", "unary"))
        before = scrape(m.client_port)
        client = self.cluster.client(0)
        for i in range(5):
            client.put(f"counted-{i}", "v")
        for i in range(2):
            client.get("counted-0")
        after = scrape(m.client_port)

        def delta(name, labels):
            return after.get((name, labels), 0) - before.get((name, labels), 0)

        self.assertEqual(delta("grpc_server_handled_total", put_ok), 5)
        self.assertEqual(delta("grpc_server_started_total", put_ok[1:]), 5)
        self.assertEqual(delta("grpc_server_msg_received_total", put_ok[1:]), 5)
        self.assertEqual(delta("grpc_server_msg_sent_total", put_ok[1:]), 5)
        self.assertGreaterEqual(delta("grpc_server_started_total", range_labels), 2)
        # Every method and code is there from the start, at 0 until used.
        self.assertIn(("grpc_server_handled_total",
                       (("grpc_code", "FailedPrecondition"), ("grpc_method", "Compact"),
                        ("grpc_service", "etcdserverpb.KV"), ("grpc_type", "unary"))), before)
        # The latency histogram is --metrics=extensive's, as in etcd.
        self.assertFalse([k for k in after if k[0].startswith("grpc_server_handling_seconds")])

    def test_peer_round_trip_time(self):
        if self.label != "server":
            self.skipTest("etcd observes round trips every 30 s")
        for m in self.cluster.members:
            peers = {self.ids[p.name] for p in self.cluster.members if p is not m}
            counts = {}

            def observed():
                s = scrape(m.client_port)
                for peer in peers:
                    counts[peer] = s.get(("etcd_network_peer_round_trip_time_seconds_count",
                                          (("To", peer),)), 0)
                return all(c >= 1 for c in counts.values()) and s
            samples = cluster.wait_until(observed, timeout=20, interval=0.2,
                                         what=f"{m.name} round trips to {sorted(peers)}")
            # Only peers are probed, never the member itself.
            self.assertNotIn(("etcd_network_peer_round_trip_time_seconds_count",
                              (("To", self.ids[m.name]),)), samples)
            for peer in peers:
                bounds = sorted(float(dict(labels)["le"]) for name, labels in samples
                                if name == "etcd_network_peer_round_trip_time_seconds_bucket"
                                and dict(labels)["To"] == peer and dict(labels)["le"] != "+Inf")
                self.assertEqual(len(bounds), len(RTT_BOUNDS))
                for got, want in zip(bounds, RTT_BOUNDS):
                    self.assertAlmostEqual(got, want, delta=want * 1e-9)
                count = samples[("etcd_network_peer_round_trip_time_seconds_count",
                                 (("To", peer),))]
                total = samples[("etcd_network_peer_round_trip_time_seconds_sum",
                                 (("To", peer),))]
                # Loopback round trips: positive, and well under a second each.
                self.assertGreater(total, 0)
                self.assertLess(total / count, 1.0)


def main():
    global KEEP
    p = cluster.server_arg_parser(__doc__)
    p.add_argument("--reference", help="etcd 3.4 to run the same checks against")
    args, rest = p.parse_known_args()
    KEEP = args.keep
    SERVERS.append(("server", args.server))
    if args.reference:
        SERVERS.append(("reference", args.reference))
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    for label, binary in SERVERS:
        case = type(f"MetricsClusterTest_{label}", (MetricsClusterTest,),
                    {"server": binary, "label": label})
        suite.addTests(loader.loadTestsFromTestCase(case))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()

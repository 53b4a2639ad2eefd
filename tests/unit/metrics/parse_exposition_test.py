#!/usr/bin/python3
"""Parses etcdpp's metrics text with Prometheus' own parser
(python3-prometheus-client) and checks the values the dump program set.

    /usr/bin/python3 parse_exposition_test.py --dump build/tests/unit/metrics/metrics_exposition_dump
"""

import argparse
import math
import subprocess
import sys
import time
import unittest

from prometheus_client.parser import text_string_to_metric_families

DUMP = None


class ParseExpositionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = subprocess.run([DUMP], check=True, capture_output=True, text=True,
                                  timeout=30).stdout
        cls.families = {f.name: f for f in text_string_to_metric_families(cls.text)}

    def sample(self, name, labels=None, family=None):
        fam = self.families[family or name]
        for s in fam.samples:
            if s.name == name and (labels is None or s.labels == labels):
                return s.value
        self.fail(f"no sample {name} {labels}")

    def test_counter_and_gauge(self):
        # The parser strips _total from a counter family's name.
        self.assertEqual(self.families["test_requests"].type, "counter")
        self.assertEqual(self.families["test_requests"].documentation,
                         'Requests, with "quotes" and a \\ in help.')
        self.assertEqual(self.sample("test_requests_total", family="test_requests"), 7)
        self.assertEqual(self.families["test_temperature"].type, "gauge")
        self.assertEqual(self.sample("test_temperature"), -3.25)

    def test_histogram(self):
        fam = self.families["test_latency_seconds"]
        self.assertEqual(fam.type, "histogram")
        buckets = [(s.labels["le"], s.value) for s in fam.samples if s.name.endswith("_bucket")]
        self.assertEqual(buckets[0], ("0.001", 1))
        self.assertEqual(buckets[2], ("0.004", 3))
        self.assertEqual(buckets[-2], ("8.192", 4))
        self.assertEqual(buckets[-1], ("+Inf", 5))
        self.assertEqual(len(buckets), 15)
        self.assertAlmostEqual(self.sample("test_latency_seconds_sum",
                                           family="test_latency_seconds"), 100.5065)
        self.assertEqual(self.sample("test_latency_seconds_count",
                                     family="test_latency_seconds"), 5)

    def test_labels_escape_round_trip(self):
        self.assertEqual(self.sample("test_labelled_total", {"method": "Range", "code": "OK"},
                                     family="test_labelled"), 3)
        self.assertEqual(self.sample("test_labelled_total",
                                     {"method": "Put", "code": 'weird "value"\\\n'},
                                     family="test_labelled"), 1)
        rtt = self.families["test_rtt_seconds"]
        les = [s.labels["le"] for s in rtt.samples if s.name.endswith("_bucket")]
        self.assertEqual(les[0], "0.0001")  # Go's spelling, not 1e-04
        self.assertEqual(les[-2], "0.8192")

    def test_process_metrics(self):
        self.assertGreater(self.sample("process_resident_memory_bytes"), 1 << 20)
        self.assertGreaterEqual(self.sample("process_cpu_seconds_total",
                                            family="process_cpu_seconds"), 0)
        self.assertGreaterEqual(self.sample("process_open_fds"), 3)
        start = self.sample("process_start_time_seconds")
        self.assertLess(abs(start - time.time()), 120)
        self.assertGreater(self.sample("process_max_fds"), 0)

    def test_grpc_counters_start_at_zero(self):
        handled = self.families["grpc_server_handled"]
        codes = {s.labels["grpc_code"] for s in handled.samples
                 if s.labels["grpc_method"] == "Range"}
        self.assertEqual(len(codes), 17)
        self.assertIn("FailedPrecondition", codes)
        self.assertEqual(self.sample("grpc_server_handled_total",
                                     {"grpc_code": "OK", "grpc_method": "Range",
                                      "grpc_service": "etcdserverpb.KV", "grpc_type": "unary"},
                                     family="grpc_server_handled"), 0)
        self.assertTrue(all(not math.isnan(s.value) for s in handled.samples))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--dump", required=True)
    args, rest = p.parse_known_args()
    DUMP = args.dump
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)

// Prints a registry holding one metric of every kind, the process metrics
// and the gRPC call counters, for parse_exposition_test.py to check with
// Prometheus' own parser.
#include <cstdio>

#include "etcdserverpb/rpc.pb.h"
#include "metrics/grpc_metrics.h"
#include "metrics/metrics.h"
#include "metrics/process_metrics.h"

int main() {
  using namespace etcdpp::metrics;
  Registry r;
  r.AddCounter("test_requests_total", "Requests, with \"quotes\" and a \\ in help.").Inc(7);
  r.AddGauge("test_temperature", "A negative gauge.").Set(-3.25);
  Histogram& h =
      r.AddHistogram("test_latency_seconds", "Latency.", ExponentialBuckets(0.001, 2, 14));
  for (double v : {0.0005, 0.003, 0.003, 0.5, 100.0}) h.Observe(v);
  auto& f = r.AddCounterFamily("test_labelled_total", "Labelled.", {"method", "code"});
  f.WithLabels({"Range", "OK"}).Inc(3);
  f.WithLabels({"Put", "weird \"value\"\\\n"}).Inc(1);
  auto& hf =
      r.AddHistogramFamily("test_rtt_seconds", "RTT.", {"To"}, ExponentialBuckets(0.0001, 2, 14));
  hf.WithLabels({"8e9e05c52164694d"}).Observe(0.0003);
  RegisterProcessMetrics(r);
  // Links the generated descriptors the interceptor looks the service up in.
  (void)etcdserverpb::RangeRequest::descriptor();
  auto interceptor = MakeGrpcServerMetrics(r, {"etcdserverpb.KV"}, /*handling_seconds=*/true);
  std::fputs(r.Render().c_str(), stdout);
  return 0;
}

// Unit tests of etcdpp-bench's pure parts: the latency report's numbers,
// the key encoding shared with etcd's benchmark tool and the watch
// response scanner.
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "cmd/bench/kv_calls.h"
#include "cmd/bench/latency_report.h"
#include "cmd/bench/watch_response_scan.h"
#include "etcdserverpb/rpc.pb.h"

namespace etcdpp::bench {
namespace {

std::string Bytes(std::initializer_list<int> bytes, size_t size) {
  std::string s(size, '\0');
  size_t i = 0;
  for (int b : bytes) s[i++] = static_cast<char>(b);
  return s;
}

// Expected bytes are Go's binary.PutVarint output for the same numbers.
TEST(BenchmarkKeyTest, MatchesGoVarintInFixedSizeKey) {
  EXPECT_EQ(BenchmarkKey(0, 8), Bytes({0x00}, 8));
  EXPECT_EQ(BenchmarkKey(1, 8), Bytes({0x02}, 8));
  EXPECT_EQ(BenchmarkKey(-1, 8), Bytes({0x01}, 8));
  EXPECT_EQ(BenchmarkKey(63, 8), Bytes({0x7e}, 8));
  EXPECT_EQ(BenchmarkKey(64, 8), Bytes({0x80, 0x01}, 8));
  EXPECT_EQ(BenchmarkKey(300, 8), Bytes({0xd8, 0x04}, 8));
}

TEST(BenchmarkKeyTest, DistinctIndexesGiveDistinctKeys) {
  std::set<std::string> keys;
  for (int64_t i = 0; i < 100000; ++i) keys.insert(BenchmarkKey(i, 8));
  EXPECT_EQ(keys.size(), 100000u);
}

TEST(BenchmarkKeyTest, ShortKeyKeepsLeadingBytes) {
  EXPECT_EQ(BenchmarkKey(300, 1), Bytes({0xd8}, 1));
}

// A guarded txn-put compares exactly the keys it puts, on a mod_revision
// bound no store reaches, so every transaction takes its success branch.
TEST(TxnPutCallTest, GuardedPutsCompareTheirOwnKeys) {
  PutOptions options;
  options.key_size = 8;
  options.key_space_size = 1000;
  TxnPutCall guarded(options, 3, /*guarded=*/true, "v", 1);
  for (int64_t seq = 0; seq < 20; ++seq) {
    const auto& txn = static_cast<const etcdserverpb::TxnRequest&>(guarded.Prepare(seq));
    ASSERT_EQ(txn.success_size(), 3);
    ASSERT_EQ(txn.compare_size(), 3);
    std::set<std::string> keys;
    for (int i = 0; i < 3; ++i) {
      const etcdserverpb::Compare& c = txn.compare(i);
      EXPECT_EQ(c.key(), txn.success(i).request_put().key());
      EXPECT_EQ(c.target(), etcdserverpb::Compare::MOD);
      EXPECT_EQ(c.result(), etcdserverpb::Compare::LESS);
      EXPECT_EQ(c.mod_revision(), int64_t{1} << 62);
      keys.insert(c.key());
    }
    EXPECT_EQ(keys.size(), 3u);
  }
  TxnPutCall plain(options, 3, /*guarded=*/false, "v", 1);
  EXPECT_EQ(static_cast<const etcdserverpb::TxnRequest&>(plain.Prepare(0)).compare_size(), 0);
}

TEST(LatencyReportTest, SummaryOfKnownLatencies) {
  std::vector<double> latencies;
  for (int i = 100; i >= 1; --i) latencies.push_back(i / 1000.0);  // 1..100 ms, unsorted
  LatencyReport report(latencies, {}, 2.0);
  const LatencySummary& s = report.summary();
  EXPECT_EQ(s.succeeded, 100);
  EXPECT_EQ(s.failed, 0);
  EXPECT_DOUBLE_EQ(s.requests_per_s, 50.0);
  EXPECT_DOUBLE_EQ(s.fastest_s, 0.001);
  EXPECT_DOUBLE_EQ(s.slowest_s, 0.100);
  EXPECT_NEAR(s.average_s, 0.0505, 1e-12);
  EXPECT_NEAR(s.stddev_s, 0.028866, 1e-6);
  ASSERT_EQ(s.percentiles.size(), 8u);
  // Nearest rank: the p-th percentile of 1..100 is ceil(p) ms.
  EXPECT_DOUBLE_EQ(s.percentiles[0].second, 0.010);  // 10%
  EXPECT_DOUBLE_EQ(s.percentiles[2].second, 0.050);  // 50%
  EXPECT_DOUBLE_EQ(s.percentiles[6].second, 0.099);  // 99%
  EXPECT_DOUBLE_EQ(s.percentiles[7].second, 0.100);  // 99.9%
}

TEST(LatencyReportTest, ErrorsAreCountedNotTimed) {
  LatencyReport report({0.002}, {{"rpc error: code = Unavailable desc = x", 3}}, 1.0);
  EXPECT_EQ(report.summary().succeeded, 1);
  EXPECT_EQ(report.summary().failed, 3);
  EXPECT_DOUBLE_EQ(report.summary().requests_per_s, 1.0);
  EXPECT_NE(report.ToText().find("[3]\trpc error: code = Unavailable desc = x"), std::string::npos);
  EXPECT_NE(report.ToJson({}).find("\"errors\":{\"rpc error: code = Unavailable desc = x\":3}"),
            std::string::npos);
}

TEST(LatencyReportTest, TextHasEtcdBenchmarkSections) {
  LatencyReport report({0.001, 0.002, 0.003}, {}, 0.5);
  const std::string text = report.ToText();
  for (const char* section :
       {"Summary:", "Total:", "Slowest:", "Fastest:", "Average:", "Stddev:", "Requests/sec:",
        "Response time histogram:", "Latency distribution:", "99.9% in 0.0030 secs."}) {
    EXPECT_NE(text.find(section), std::string::npos) << section;
  }
}

TEST(LatencyReportTest, JsonIsOneLineWithCallerFieldsFirst) {
  LatencyReport report({0.001}, {}, 1.0);
  const std::string json = report.ToJson({{"op", JsonString("put")}, {"total", "1"}});
  EXPECT_EQ(json.rfind("{\"op\":\"put\",\"total\":1,\"succeeded\":1,", 0), 0u) << json;
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_NE(json.find("\"p99_9_ms\":1.000"), std::string::npos) << json;
}

TEST(LatencyReportTest, EmptyLoadHasZeroSummary) {
  LatencyReport report({}, {}, 0.0);
  EXPECT_EQ(report.summary().succeeded, 0);
  EXPECT_TRUE(report.summary().percentiles.empty());
  EXPECT_EQ(report.ToText().find("Latency distribution:"), std::string::npos);
}

TEST(JsonStringTest, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(JsonString("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
}

// What the fan-out load reads of a response must be what a full parse gives.
void ExpectScanAgreesWithParse(const etcdserverpb::WatchResponse& response) {
  const std::string wire = response.SerializeAsString();
  WatchResponseScan scan;
  ASSERT_TRUE(ScanWatchResponse(wire, scan));
  EXPECT_EQ(scan.created, response.created());
  ASSERT_EQ(scan.events, response.events_size());
  ASSERT_EQ(scan.values.size(), static_cast<size_t>(response.events_size()));
  for (int i = 0; i < response.events_size(); ++i) {
    EXPECT_EQ(scan.values[static_cast<size_t>(i)], response.events(i).kv().value()) << i;
  }
}

TEST(WatchResponseScanTest, CreatedResponse) {
  etcdserverpb::WatchResponse response;
  response.mutable_header()->set_revision(7);
  response.set_watch_id(3);
  response.set_created(true);
  ExpectScanAgreesWithParse(response);
}

TEST(WatchResponseScanTest, EventsWithEveryFieldSet) {
  etcdserverpb::WatchResponse response;
  response.mutable_header()->set_cluster_id(1);
  response.mutable_header()->set_revision(99);
  response.set_watch_id(5);
  response.set_compact_revision(4);
  response.set_cancel_reason("not a cancel");
  response.set_fragment(true);
  for (int i = 0; i < 5; ++i) {
    mvccpb::Event* event = response.add_events();
    event->set_type(i % 2 == 0 ? mvccpb::Event::PUT : mvccpb::Event::DELETE);
    mvccpb::KeyValue* kv = event->mutable_kv();
    kv->set_key("key" + std::to_string(i));
    kv->set_create_revision(i + 1);
    kv->set_mod_revision(i + 50);
    kv->set_version(i + 2);
    kv->set_lease(0x7fffffffffffffff);
    if (i != 3)
      kv->set_value(std::string(static_cast<size_t>(i) * 100, static_cast<char>('a' + i)));
    // prev_kv's value (field 3's) must not be taken for kv's.
    event->mutable_prev_kv()->set_value("previous");
  }
  response.add_events();  // An event without a kv.
  ExpectScanAgreesWithParse(response);
}

TEST(WatchResponseScanTest, UnknownFieldsAreSkipped) {
  etcdserverpb::WatchResponse response;
  response.add_events()->mutable_kv()->set_value("v");
  std::string wire = response.SerializeAsString();
  // Field 20, fixed64; field 21, fixed32; field 22, a length-delimited blob.
  wire += std::string("\xa1\x01", 2) + std::string(8, '\x01');
  wire += std::string("\xad\x01", 2) + std::string(4, '\x02');
  wire += std::string(
      "\xb2\x01\x03"
      "abc",
      6);
  WatchResponseScan scan;
  ASSERT_TRUE(ScanWatchResponse(wire, scan));
  EXPECT_EQ(scan.events, 1);
  EXPECT_EQ(scan.values.at(0), "v");
}

TEST(WatchResponseScanTest, RepeatedKvMergesAsTheParserDoes) {
  // Two kv fields in one event: a parser merges them, so the later value
  // wins, and a later kv without a value keeps the earlier one.
  mvccpb::KeyValue first, second, third;
  first.set_value("first");
  second.set_value("second");
  third.set_key("no value");
  mvccpb::Event event;
  std::string event_wire;
  for (const mvccpb::KeyValue* kv : {&first, &second, &third}) {
    event.Clear();
    *event.mutable_kv() = *kv;
    event_wire += event.SerializeAsString();
  }
  etcdserverpb::WatchResponse one;
  one.add_events()->ParseFromString(event_wire);
  ASSERT_EQ(one.events(0).kv().value(), "second");
  etcdserverpb::WatchResponse response;
  // Field 11, length-delimited: tag byte 0x5a, then a one-byte length.
  std::string wire(1, '\x5a');
  wire.push_back(static_cast<char>(event_wire.size()));
  wire += event_wire;
  ASSERT_TRUE(response.ParseFromString(wire));
  WatchResponseScan scan;
  ASSERT_TRUE(ScanWatchResponse(wire, scan));
  ASSERT_EQ(scan.events, 1);
  EXPECT_EQ(scan.values.at(0), response.events(0).kv().value());
}

TEST(WatchResponseScanTest, EveryTruncationIsRefusedOrAgrees) {
  etcdserverpb::WatchResponse response;
  response.mutable_header()->set_revision(12345);
  for (int i = 0; i < 3; ++i) {
    mvccpb::KeyValue* kv = response.add_events()->mutable_kv();
    kv->set_key("k");
    kv->set_value(std::string(200, 'x'));
  }
  const std::string wire = response.SerializeAsString();
  for (size_t cut = 0; cut < wire.size(); ++cut) {
    const std::string_view prefix(wire.data(), cut);
    etcdserverpb::WatchResponse parsed;
    WatchResponseScan scan;
    const bool parses = parsed.ParseFromArray(prefix.data(), static_cast<int>(prefix.size()));
    ASSERT_EQ(ScanWatchResponse(prefix, scan), parses) << cut;
    if (parses) {
      EXPECT_EQ(scan.events, parsed.events_size()) << cut;
    }
  }
}

TEST(WatchResponseScanTest, RandomBytesNeverCrashAndAgreeOnValidity) {
  // Random strings are often invalid UTF-8, which the parser logs.
  google::protobuf::LogSilencer quiet;
  std::mt19937 rng(42);
  WatchResponseScan scan;
  for (int round = 0; round < 20000; ++round) {
    std::string bytes(rng() % 40, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    etcdserverpb::WatchResponse parsed;
    const bool parses = parsed.ParseFromString(bytes);
    // The scanner does not check what it skips (UTF-8 of strings, nested
    // messages it does not enter), so it may accept more; never less.
    if (parses) {
      ASSERT_TRUE(ScanWatchResponse(bytes, scan)) << round;
      EXPECT_EQ(scan.events, parsed.events_size()) << round;
    } else {
      ScanWatchResponse(bytes, scan);
    }
  }
}

TEST(WatchResponseScanTest, MutatedResponsesAgreeWithTheParser) {
  // Bytes changed in a real response keep most of its structure, so many
  // still parse: wherever the parser accepts them, the scanner must read
  // the same events and values.
  etcdserverpb::WatchResponse response;
  response.mutable_header()->set_revision(300);
  response.set_watch_id(2);
  for (int i = 0; i < 3; ++i) {
    mvccpb::Event* event = response.add_events();
    event->mutable_kv()->set_key("k" + std::to_string(i));
    event->mutable_kv()->set_value("value" + std::to_string(i));
    event->mutable_kv()->set_mod_revision(298 + i);
    event->mutable_prev_kv()->set_value("old");
  }
  const std::string wire = response.SerializeAsString();
  google::protobuf::LogSilencer quiet;
  std::mt19937 rng(7);
  WatchResponseScan scan;
  int parsed_rounds = 0;
  for (int round = 0; round < 50000; ++round) {
    std::string bytes = wire;
    for (int flips = 1 + static_cast<int>(rng() % 3); flips > 0; --flips) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    etcdserverpb::WatchResponse parsed;
    if (!parsed.ParseFromString(bytes)) {
      ScanWatchResponse(bytes, scan);
      continue;
    }
    ++parsed_rounds;
    ASSERT_TRUE(ScanWatchResponse(bytes, scan)) << round;
    ASSERT_EQ(scan.events, parsed.events_size()) << round;
    for (int i = 0; i < parsed.events_size(); ++i) {
      EXPECT_EQ(scan.values.at(static_cast<size_t>(i)), parsed.events(i).kv().value()) << round;
    }
  }
  // The rounds that parse are the ones that check anything.
  EXPECT_GT(parsed_rounds, 5000);
}

}  // namespace
}  // namespace etcdpp::bench

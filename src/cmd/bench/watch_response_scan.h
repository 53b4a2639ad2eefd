// Reads the few fields the watch fan-out load needs straight off a
// serialized etcdserverpb.WatchResponse, without building the message: the
// load generator then pays for each event about what it costs to walk its
// bytes, not to copy its key and value into a KeyValue. Both servers are
// measured with the same reader, so what it saves lifts the generator's cap
// on both alike.
#pragma once

#include <string_view>
#include <vector>

namespace etcdpp::bench {

struct WatchResponseScan {
  bool created = false;
  int events = 0;
  // Each event's kv.value, in order (views into the scanned bytes); empty
  // for an event without a kv.
  std::vector<std::string_view> values;
};

// Fills `out` from `wire` (one message, without gRPC's prefix) and returns
// true, or returns false if `wire` is not a well-formed message. Reuses
// out's storage.
bool ScanWatchResponse(std::string_view wire, WatchResponseScan& out);

}  // namespace etcdpp::bench

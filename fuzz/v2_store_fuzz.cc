// Random v2 operations on a v2store::Store, checking what must hold after
// any sequence: the index grows by exactly one per successful write or
// expired node and never otherwise, failed writes leave the tree as it was,
// and the records TakeChanges hands to persistence rebuild the same tree
// (the restart and snapshot path).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <map>
#include <string>

#include "v2store/json.h"
#include "v2store/store.h"

namespace {

using etcdpp::v2store::NodeRecord;
using etcdpp::v2store::Outcome;
using etcdpp::v2store::Store;

constexpr int64_t kSecond = 1000000000;
constexpr int64_t kNow = int64_t{1800000000} * kSecond;

std::string RandomKey(FuzzedDataProvider& in) {
  static const char* kNames[] = {"a", "b", "_h", "c"};
  std::string key;
  const int depth = in.ConsumeIntegralInRange(0, 3);
  for (int i = 0; i < depth; ++i) key += std::string("/") + kNames[in.ConsumeIntegralInRange(0, 3)];
  return key;
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  int64_t now = kNow;
  Store store([&now] { return now; });
  std::map<std::string, NodeRecord> table;  // what persistence would hold
  for (int step = 0; step < 64 && in.remaining_bytes() > 0; ++step) {
    const std::string key = RandomKey(in);
    const std::string value = in.ConsumeBool() ? "" : std::string(1, 'v' + step % 3);
    const bool dir = in.ConsumeBool();
    const int64_t expire = in.ConsumeBool() ? now + in.ConsumeIntegralInRange(0, 5) * kSecond : 0;
    const uint64_t index = store.index();
    const std::string before = etcdpp::v2store::EventJson(store.Get("", true, true).event);
    Outcome out;
    bool sweep = false;
    switch (in.ConsumeIntegralInRange(0, 8)) {
      case 0:
        out = store.Set(key, dir, value, expire, in.ConsumeBool());
        break;
      case 1:
        out = store.Create(key, dir, value, in.ConsumeBool(), expire);
        break;
      case 2:
        out = store.Update(key, value, expire, in.ConsumeBool());
        break;
      case 3:
        out = store.CompareAndSwap(key, value, in.ConsumeIntegralInRange<uint64_t>(0, 8), "x",
                                   expire, false);
        break;
      case 4:
        out = store.Delete(key, dir, in.ConsumeBool());
        break;
      case 5:
        out = store.CompareAndDelete(key, value, in.ConsumeIntegralInRange<uint64_t>(0, 8));
        break;
      case 6:
        out = store.Get(key, in.ConsumeBool(), true);
        Check(store.index() == index, "a get moved the index");
        continue;
      default:
        now += in.ConsumeIntegralInRange(0, 3) * kSecond;
        store.DeleteExpired(now);
        sweep = true;
        break;
    }
    if (!sweep) {
      if (out.ok()) {
        Check(store.index() == index + 1, "a write moved the index by other than one");
      } else {
        Check(store.index() == index, "a failed write moved the index");
        const std::string after = etcdpp::v2store::EventJson(store.Get("", true, true).event);
        Check(after == before, "a failed write changed the tree");
      }
    } else {
      Check(store.index() >= index, "the index went back");
    }
    for (auto& [k, record] : store.TakeChanges()) {
      if (record) {
        table[k] = *record;
      } else {
        table.erase(k);
      }
    }
  }
  Store restored([&now] { return now; });
  restored.Restore(store.index(), {table.begin(), table.end()});
  Check(etcdpp::v2store::EventJson(restored.Get("", true, true).event) ==
            etcdpp::v2store::EventJson(store.Get("", true, true).event),
        "the persisted records rebuild another tree");
  Check(restored.HasTtlKeys() == store.HasTtlKeys(), "TTLs lost in persistence");
  return 0;
}

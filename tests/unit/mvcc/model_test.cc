// Randomized check of KvStore against a plain model of etcd's MVCC: random
// puts, deletes, multi-op revisions, compactions and reopens; after each
// step, reads at random revisions and the change log must match the model.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>

#include "mvcc/kv_store.h"
#include "unit/mvcc/store_test_util.h"

namespace etcdpp::mvcc {
namespace {

using namespace std::string_literals;

struct ModelEvent {
  Revision rev;
  std::string key;
  std::string value;
  bool tombstone = false;
};

// The whole history; state at any revision is recomputed from it.
class Model {
 public:
  std::vector<ModelEvent> events;
  // etcd's empty store is at revision 1 (its first write is revision 2) and
  // may be compacted at 1; its compact revision starts at 0.
  int64_t current = 1;
  int64_t compacted = 0;

  // Key state at main revision `at`, as etcd defines it.
  std::optional<mvccpb::KeyValue> Get(const std::string& key, int64_t at) const {
    std::optional<mvccpb::KeyValue> kv;
    for (const auto& e : events) {
      if (e.rev.main > at) break;
      if (e.key != key) continue;
      if (e.tombstone) {
        kv.reset();
        continue;
      }
      if (!kv) {
        kv.emplace();
        kv->set_key(key);
        kv->set_create_revision(e.rev.main);
        kv->set_version(0);
      }
      kv->set_version(kv->version() + 1);
      kv->set_mod_revision(e.rev.main);
      kv->set_value(e.value);
    }
    return kv;
  }
};

class ModelTest : public StoreTest, public ::testing::WithParamInterface<int> {};

TEST_P(ModelTest, RandomHistoryMatchesModel) {
  std::mt19937 rng(GetParam());
  const std::vector<std::string> keys = {"a", "a\0"s, "a\0\0"s, "ab", "a\xff"s, "b", "\0"s, "zz"};
  auto pick_key = [&] { return keys[rng() % keys.size()]; };
  Model model;

  for (int step = 0; step < 150; ++step) {
    const int action = rng() % 10;
    if (action < 7) {
      // One write txn holding 1-3 revisions of 1-3 changes each.
      auto w = Write();
      int revisions = 1 + rng() % 3;
      for (int r = 0; r < revisions; ++r) {
        w->BeginRevision();
        int64_t main = model.current + 1;
        int64_t sub = 0;
        int changes = 1 + rng() % 3;
        for (int c = 0; c < changes; ++c) {
          if (rng() % 4 != 0) {
            std::string key = pick_key();
            std::string value = "v" + std::to_string(step) + "." + std::to_string(c);
            ASSERT_TRUE(w->Put(key, value, 0).ok());
            model.events.push_back({{main, sub++}, key, value, false});
          } else {
            std::string a = pick_key(), b = rng() % 2 ? std::string() : pick_key();
            if (!b.empty() && b < a) std::swap(a, b);
            // Live keys of the range, in order, at the latest state.
            std::vector<std::string> doomed;
            std::vector<std::string> sorted = keys;
            std::sort(sorted.begin(), sorted.end());
            for (const auto& k : sorted) {
              // etcd: empty end = the single key, "\0" = every key >= a.
              bool in = b.empty() ? k == a : (k >= a && (b == kAll || k < b));
              if (in && model.Get(k, main)) doomed.push_back(k);
            }
            auto n = w->DeleteRange(a, b);
            ASSERT_TRUE(n.ok());
            ASSERT_EQ(*n, static_cast<int64_t>(doomed.size()));
            for (const auto& k : doomed) model.events.push_back({{main, sub++}, k, "", true});
          }
        }
        w->EndRevision();
        if (sub > 0) model.current = main;
        ASSERT_EQ(w->Rev(), model.current);
      }
      ASSERT_TRUE(w->Commit().ok());
    } else if (action < 9 && model.current > model.compacted) {
      int64_t rev = model.compacted + 1 + rng() % (model.current - model.compacted);
      ASSERT_TRUE(Compact(rev).ok()) << rev;
      model.compacted = rev;
      EXPECT_EQ(Compact(rev).code(), Code::kCompacted);
      EXPECT_EQ(Compact(model.current + 1).code(), Code::kFutureRev);
    } else {
      Reopen();
    }
    ASSERT_EQ(store_->CurrentRevision(), model.current);
    ASSERT_EQ(store_->CompactRevision(), model.compacted);

    // Reads at every revision from the compacted one on.
    auto read = Read();
    for (int64_t at = std::max<int64_t>(model.compacted, 1); at <= model.current; ++at) {
      auto r = read->Range(std::string("\0", 1), kAll, RangeOptions{.rev = at});
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      std::vector<std::string> got, want;
      for (const auto& kv : r->kvs) got.push_back(Describe(kv));
      std::vector<std::string> sorted = keys;
      std::sort(sorted.begin(), sorted.end());
      for (const auto& k : sorted) {
        if (auto kv = model.Get(k, at)) want.push_back(Describe(*kv));
      }
      ASSERT_EQ(got, want) << "step " << step << " at " << at;
    }
    if (model.compacted > 1) {
      EXPECT_EQ(read->Range("a", "", RangeOptions{.rev = model.compacted - 1}).status().code(),
                Code::kCompacted);
    }
    // The change log after the compacted revision is complete.
    auto it = read->Changes(model.compacted + 1, 0, false);
    ASSERT_TRUE(it.ok());
    size_t i = 0;
    while (i < model.events.size() && model.events[i].rev.main <= model.compacted) ++i;
    for (; (*it)->Valid(); (*it)->Next(), ++i) {
      ASSERT_LT(i, model.events.size());
      const auto& e = model.events[i];
      EXPECT_EQ((*it)->revision(), e.rev);
      EXPECT_EQ((*it)->event().kv().key(), e.key);
      EXPECT_EQ((*it)->event().type() == mvccpb::Event::DELETE, e.tombstone);
    }
    ASSERT_TRUE((*it)->status().ok());
    EXPECT_EQ(i, model.events.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, ModelTest, ::testing::Range(1, 9));

}  // namespace
}  // namespace etcdpp::mvcc

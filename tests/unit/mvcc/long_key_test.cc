// Keys as etcd allows them: any bytes, any length. Random binary keys of
// 1 B to 64 KiB (0x00 bytes, 0xFF runs, long shared prefixes that put many
// keys in one long key bucket) are written, deleted and compacted against a
// reference model (key -> revision history); range scans must return the
// model's keys in byte-wise order at every revision read.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "mvcc/key_codec.h"
#include "mvcc/kv_store.h"
#include "unit/mvcc/store_test_util.h"

namespace etcdpp::mvcc {
namespace {

using namespace std::string_literals;

// The longest inline key without zero bytes (its slot ends in 00 01).
constexpr size_t kMaxPlainInlineBytes = kMaxInlineSlotBytes - 2;
// The longest inline key of zero bytes alone: 2 bytes per 125 zeros.
constexpr size_t kMaxZerosInlineBytes = kMaxInlineSlotBytes / 2 * 125;

struct ModelRecord {
  Revision rev;
  bool tombstone = false;
  std::string value;
  int64_t create = 0;
  int64_t version = 0;
};

// Every key's history, oldest first, with etcd's compaction applied.
class HistoryModel {
 public:
  int64_t current = 1;
  int64_t compacted = 0;

  const ModelRecord* At(const std::string& key, int64_t at) const {
    auto it = history_.find(key);
    if (it == history_.end()) return nullptr;
    const ModelRecord* found = nullptr;
    for (const ModelRecord& r : it->second) {
      if (r.rev.main > at) break;
      found = &r;
    }
    return found != nullptr && !found->tombstone ? found : nullptr;
  }

  void Put(const std::string& key, const std::string& value, Revision rev) {
    const ModelRecord* live = At(key, rev.main);
    ModelRecord r{rev, false, value, live ? live->create : rev.main, live ? live->version + 1 : 1};
    history_[key].push_back(r);
  }
  void Delete(const std::string& key, Revision rev) {
    history_[key].push_back(ModelRecord{rev, true, {}, 0, 0});
  }

  // etcd: per key, the latest record <= rev stays unless it is a tombstone;
  // older ones go.
  void Compact(int64_t rev) {
    for (auto it = history_.begin(); it != history_.end();) {
      auto& records = it->second;
      size_t latest = records.size();
      for (size_t i = 0; i < records.size() && records[i].rev.main <= rev; ++i) latest = i;
      if (latest != records.size()) {
        const bool drop_latest = records[latest].tombstone;
        records.erase(records.begin(), records.begin() + latest + (drop_latest ? 1 : 0));
      }
      it = records.empty() ? history_.erase(it) : std::next(it);
    }
    compacted = rev;
  }

  // Live keys of [key, end) with etcd's end rules, in byte-wise order.
  std::vector<std::pair<std::string, const ModelRecord*>> Range(const std::string& key,
                                                                const std::string& end,
                                                                int64_t at) const {
    const KeyRange range{key, end};
    std::vector<std::pair<std::string, const ModelRecord*>> out;
    for (const auto& [k, records] : history_) {
      if (!range.Contains(k)) continue;
      if (const ModelRecord* r = At(k, at)) out.emplace_back(k, r);
    }
    return out;
  }

  std::vector<std::pair<std::string, ModelRecord>> Events(int64_t after) const {
    std::vector<std::pair<std::string, ModelRecord>> out;
    for (const auto& [k, records] : history_) {
      for (const ModelRecord& r : records) {
        if (r.rev.main > after) out.emplace_back(k, r);
      }
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.second.rev < b.second.rev; });
    return out;
  }

  std::vector<std::string> Keys() const {
    std::vector<std::string> out;
    for (const auto& [k, records] : history_) out.push_back(k);
    return out;
  }

 private:
  std::map<std::string, std::vector<ModelRecord>> history_;
};

// etcd's prefix end (clientv3.GetPrefixRangeEnd).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<unsigned char>(prefix.back()) < 0xff) {
      prefix.back() = static_cast<char>(prefix.back() + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return kAll;
}

// Short printable form of a key for failure messages.
std::string Show(const std::string& key) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = std::to_string(key.size()) + "B:";
  for (size_t i = 0; i < key.size() && i < 16; ++i) {
    const auto b = static_cast<unsigned char>(key[i]);
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  // The tail tells keys with long shared prefixes apart.
  if (key.size() > 16) {
    out += "..";
    for (size_t i = key.size() - std::min<size_t>(key.size() - 16, 8); i < key.size(); ++i) {
      const auto b = static_cast<unsigned char>(key[i]);
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
  return out;
}

std::string DescribeEscaped(const mvccpb::KeyValue& kv) {
  return Show(kv.key()) + "=" + kv.value() + " c" + std::to_string(kv.create_revision()) + " m" +
         std::to_string(kv.mod_revision()) + " v" + std::to_string(kv.version());
}
std::string DescribeEscaped(const std::string& key, const ModelRecord& r) {
  return Show(key) + "=" + r.value + " c" + std::to_string(r.create) + " m" +
         std::to_string(r.rev.main) + " v" + std::to_string(r.version);
}

std::string RandomBytes(std::mt19937& rng, size_t n) {
  // Skewed to 0x00, 0x01, 0xFE, 0xFF so escapes, runs and near-ties abound.
  static const char kSpecial[] = {'\0', '\x01', '\xfe', '\xff'};
  std::string out(n, '\0');
  for (char& c : out) c = rng() % 2 ? kSpecial[rng() % 4] : static_cast<char>(rng());
  return out;
}

// The key pool of one run: families that cross every internal threshold.
std::vector<std::string> MakeKeys(std::mt19937& rng) {
  std::vector<std::string> keys;
  // Short keys, and their extensions.
  for (int i = 0; i < 8; ++i) keys.push_back(RandomBytes(rng, 1 + rng() % 4));
  // Around the inline limit (kMaxPlainInlineBytes bytes without zeros) and
  // LMDB's 511-byte key limit, plain, ending in a zero run, ending in 0xFF.
  for (size_t n : {kMaxPlainInlineBytes - 1, kMaxPlainInlineBytes, kMaxPlainInlineBytes + 1,
                   size_t{493}, size_t{494}, size_t{510}, size_t{511}, size_t{512}}) {
    keys.push_back(std::string(n, 'k'));
    keys.push_back(std::string(n - 1, 'k') + '\0');
    keys.push_back(std::string(n - 1, 'k') + '\xff');
  }
  // Zero runs on the codes' boundaries, and runs whose code the bucket cuts.
  for (size_t zeros : {size_t{125}, size_t{126}, size_t{250}, size_t{251}}) {
    keys.push_back(std::string(zeros, '\0'));
    keys.push_back(std::string(zeros, '\0') + 'z');
    for (size_t n = kMaxPlainInlineBytes - 4; n <= kMaxPlainInlineBytes + 1; ++n) {
      keys.push_back(std::string(n, 'k') + std::string(zeros, '\0'));
      keys.push_back(std::string(n, 'k') + std::string(zeros, '\0') + 'z');
    }
  }
  for (size_t zeros = kMaxZerosInlineBytes - 1; zeros <= kMaxZerosInlineBytes + 1; ++zeros) {
    keys.push_back(std::string(zeros, '\0'));
    keys.push_back(std::string(zeros, '\0') + 'z');
  }
  // One long shared prefix: many keys in one bucket, and inline keys that
  // end inside it.
  const std::string shared = RandomBytes(rng, 200) + std::string(230, 'm');
  for (int i = 0; i < 16; ++i) keys.push_back(shared + RandomBytes(rng, rng() % 40));
  // etcdctl check perf's shape: a prefix and 256 mostly-zero bytes.
  for (int i = 0; i < 6; ++i) {
    std::string k = "/perf/" + std::string(256, '\0');
    for (int b = 0; b < 1 + static_cast<int>(rng() % 9); ++b) k[6 + b] = static_cast<char>(rng());
    keys.push_back(k);
  }
  // 0xFF runs.
  keys.push_back(std::string(600, '\xff'));
  keys.push_back(std::string(600, '\xff') + '\0');
  keys.push_back("a" + std::string(700, '\xff'));
  // Large random keys, up to 64 KiB.
  for (int i = 0; i < 4; ++i) keys.push_back(RandomBytes(rng, 1000 + rng() % (64 * 1024 - 1000)));
  keys.push_back(shared + RandomBytes(rng, 64 * 1024 - shared.size()));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

class LongKeyModelTest : public StoreTest, public ::testing::WithParamInterface<int> {
 protected:
  // Range [key, end) at `at` equals the model's, with every field.
  void ExpectRange(const std::string& key, const std::string& end, int64_t at,
                   const HistoryModel& model, const std::string& what) {
    auto r = Read()->Range(key, end, RangeOptions{.rev = at});
    ASSERT_TRUE(r.ok()) << what << ": " << r.status().ToString();
    std::vector<std::string> got, want;
    for (const auto& kv : r->kvs) got.push_back(DescribeEscaped(kv));
    for (const auto& [k, rec] : model.Range(key, end, at)) want.push_back(DescribeEscaped(k, *rec));
    ASSERT_EQ(got, want) << what << " [" << Show(key) << ", " << Show(end) << ") at " << at;
    ASSERT_EQ(r->count, static_cast<int64_t>(want.size())) << what;
    // A limit returns the first keys of the same order.
    if (want.size() > 2) {
      auto limited = Read()->Range(key, end, RangeOptions{.rev = at, .limit = 2});
      ASSERT_TRUE(limited.ok());
      ASSERT_EQ(limited->kvs.size(), 2);
      EXPECT_EQ(DescribeEscaped(limited->kvs[1]), want[1]) << what;
      EXPECT_EQ(limited->count, static_cast<int64_t>(want.size())) << what;
    }
    // Past the limit keys are only counted, through long key buckets too:
    // the limit may stop the scan anywhere, even inside a bucket.
    for (size_t limit : {size_t{1}, want.size() / 2, want.size()}) {
      if (limit == 0) continue;
      auto limited =
          Read()->Range(key, end, RangeOptions{.rev = at, .limit = static_cast<int64_t>(limit)});
      ASSERT_TRUE(limited.ok());
      EXPECT_EQ(limited->count, static_cast<int64_t>(want.size())) << what << " limit " << limit;
    }
    auto counted = Read()->Range(key, end, RangeOptions{.rev = at, .count_only = true});
    ASSERT_TRUE(counted.ok());
    EXPECT_EQ(counted->count, static_cast<int64_t>(want.size())) << what << " count_only";
  }
};

TEST_P(LongKeyModelTest, RandomBinaryKeysMatchHistoryModel) {
  std::mt19937 rng(GetParam());
  const std::vector<std::string> keys = MakeKeys(rng);
  auto pick = [&] { return keys[rng() % keys.size()]; };
  // A range bound: a pool key, a prefix of one, or one with a byte changed.
  auto bound = [&] {
    std::string k = pick();
    switch (rng() % 3) {
      case 0:
        return k;
      case 1:
        return k.substr(0, rng() % (k.size() + 1));
      default:
        if (!k.empty()) k[rng() % k.size()] = static_cast<char>(rng());
        return k;
    }
  };
  HistoryModel model;

  for (int step = 0; step < 60; ++step) {
    const int action = rng() % 10;
    if (action < 6) {
      auto w = Write();
      w->BeginRevision();
      const Revision rev{model.current + 1, 0};
      int64_t sub = 0;
      for (int c = 1 + rng() % 4; c > 0; --c) {
        if (rng() % 5 != 0) {
          const std::string key = pick();
          const std::string value = "s" + std::to_string(step) + "." + std::to_string(sub);
          auto put = w->Put(key, value, 0);
          ASSERT_TRUE(put.ok()) << put.status().ToString();
          ASSERT_EQ(put->existed, model.At(key, rev.main) != nullptr) << Show(key);
          model.Put(key, value, {rev.main, sub++});
        } else {
          std::string a = bound(), b = rng() % 3 == 0 ? std::string() : bound();
          if (rng() % 5 == 0) b = kAll;
          if (!b.empty() && b != kAll && b < a) std::swap(a, b);
          auto doomed = model.Range(a, b, rev.main);
          auto n = w->DeleteRange(a, b);
          ASSERT_TRUE(n.ok()) << n.status().ToString();
          ASSERT_EQ(*n, static_cast<int64_t>(doomed.size()));
          for (const auto& d : doomed) model.Delete(d.first, {rev.main, sub++});
        }
      }
      w->EndRevision();
      if (sub > 0) model.current = rev.main;
      ASSERT_TRUE(w->Commit().ok());
    } else if (action < 8 && model.current > model.compacted) {
      const int64_t rev = model.compacted + 1 + rng() % (model.current - model.compacted);
      ASSERT_TRUE(Compact(rev).ok()) << rev;
      model.Compact(rev);
      EXPECT_EQ(Read()->Range("a", "", RangeOptions{.rev = rev - 1}).status().code(),
                rev > 1 ? Code::kCompacted : Code::kOk);
    } else {
      Reopen();
    }
    ASSERT_EQ(store_->CurrentRevision(), model.current);

    // Reads at the current, the compacted and random revisions in between.
    std::vector<int64_t> revs = {model.current, std::max<int64_t>(model.compacted, 1)};
    revs.push_back(revs[1] + rng() % (model.current - revs[1] + 1));
    for (int64_t at : revs) {
      ExpectRange(std::string("\0", 1), kAll, at, model, "all");
      const std::string from = bound();
      ExpectRange(from, kAll, at, model, "from-key");
      std::string a = bound(), b = bound();
      if (b < a) std::swap(a, b);
      ExpectRange(a, b, at, model, "half-open");
      const std::string k = pick();
      const std::string prefix = k.substr(0, rng() % (k.size() + 1));
      if (!prefix.empty()) ExpectRange(prefix, PrefixEnd(prefix), at, model, "prefix");
      ExpectRange(k, "", at, model, "single key");
      if (HasFatalFailure()) return;
    }
    // The change log after the compacted revision, in revision order.
    auto log = Read();
    auto it = log->Changes(model.compacted + 1, 0, /*with_prev_kv=*/true);
    ASSERT_TRUE(it.ok());
    const auto events = model.Events(model.compacted);
    size_t i = 0;
    for (; (*it)->Valid(); (*it)->Next(), ++i) {
      ASSERT_LT(i, events.size());
      const auto& [key, rec] = events[i];
      ASSERT_EQ((*it)->revision(), rec.rev);
      ASSERT_EQ((*it)->event().kv().key(), key) << Show(key);
      ASSERT_EQ((*it)->event().type() == mvccpb::Event::DELETE, rec.tombstone);
      if (!rec.tombstone) {
        ASSERT_EQ(DescribeEscaped((*it)->event().kv()), DescribeEscaped(key, rec));
      }
    }
    ASSERT_TRUE((*it)->status().ok()) << (*it)->status().ToString();
    ASSERT_EQ(i, events.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, LongKeyModelTest, ::testing::Range(1, 7));

// The slots of keys around every threshold order like the keys, except
// inside one bucket (which readers sort), and each kind has the lengths the
// layout promises.
TEST(LongKeyCodecTest, SlotsOrderLikeKeysAcrossThresholds) {
  std::mt19937 rng(7);
  std::vector<std::string> keys = MakeKeys(rng);
  for (size_t n = kMaxPlainInlineBytes - 3; n <= kMaxPlainInlineBytes + 3; ++n) {
    for (char tail : {'\0', '\x01', 'a', '\xff'}) {
      keys.push_back(std::string(n, 'p') + tail);
      keys.push_back(std::string(n - 1, 'p') + tail + 'q');
      keys.push_back(std::string(n - 1, 'p') + '\0' + tail);
    }
  }
  for (const std::string& k : keys) {
    std::string slot;
    AppendKeySlot(k, &slot);
    ASSERT_LE(slot.size() + kRevisionBytes, kMaxTableKeyBytes) << Show(k);
    ASSERT_EQ(IsLongSlot(slot), !IsInlineKey(k)) << Show(k);
    if (IsInlineKey(k)) {
      ASSERT_EQ(slot, EncodeUserKey(k));
    }
  }
  for (const std::string& a : keys) {
    for (const std::string& b : keys) {
      std::string sa, sb, pa, pb;
      AppendKeySlot(a, &sa);
      AppendKeySlot(b, &sb);
      AppendKeyPosition(a, &pa);
      AppendKeyPosition(b, &pb);
      if (IsLongSlot(sa) && IsLongSlot(sb) && BucketOf(sa) == BucketOf(sb)) continue;
      ASSERT_EQ(a < b, sa < sb) << Show(a) << " vs " << Show(b);
      // Positions bound scans: a table key of b sorts below position(a)
      // exactly when b < a.
      ASSERT_EQ(b < a, MakeKeyTableKey(b, {5, 0}) < pa) << Show(a) << " vs " << Show(b);
    }
  }
}

// Every length around each threshold, with and without 0x00: put, read,
// range in order, delete, compact, reopen.
TEST_F(StoreTest, KeysOfEveryLengthAroundThresholds) {
  std::vector<std::string> keys;
  for (size_t n : {size_t{1},
                   size_t{2},
                   size_t{237},
                   size_t{238},
                   size_t{239},
                   size_t{240},
                   kMaxPlainInlineBytes - 1,
                   kMaxPlainInlineBytes,
                   kMaxPlainInlineBytes + 1,
                   size_t{492},
                   size_t{493},
                   size_t{494},
                   size_t{495},
                   size_t{509},
                   size_t{510},
                   size_t{511},
                   size_t{512},
                   size_t{513},
                   size_t{1024},
                   kMaxZerosInlineBytes,
                   kMaxZerosInlineBytes + 1,
                   size_t{65536}}) {
    keys.push_back(std::string(n, 'k'));
    keys.push_back(std::string(n, '\0'));
    keys.push_back(std::string(n - 1, 'k') + '\0');
    keys.push_back(std::string(n, '\xff'));
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::vector<int64_t> revs;
  for (const std::string& k : keys) revs.push_back(Put(k, std::to_string(k.size())));
  Reopen();
  auto all = Read()->Range(std::string("\0", 1), kAll, {});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->kvs.size(), static_cast<int>(keys.size()));
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(all->kvs[i].key(), keys[i]) << i << " " << Show(keys[i]);
    EXPECT_EQ(all->kvs[i].value(), std::to_string(keys[i].size()));
    auto one = Read()->Range(keys[i], "", {});
    ASSERT_TRUE(one.ok());
    ASSERT_EQ(one->kvs.size(), 1) << Show(keys[i]);
    EXPECT_EQ(one->kvs[0].mod_revision(), revs[i]);
  }
  // Overwrite every other key, delete the rest, compact: history of each
  // key's slot is kept and dropped like any other.
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i % 2) {
      Put(keys[i], "again");
    } else {
      ASSERT_EQ(Delete(keys[i]), 1) << Show(keys[i]);
    }
  }
  const int64_t before = store_->CurrentRevision();
  ASSERT_TRUE(Compact(before).ok());
  Reopen();
  auto after = Read()->Range(std::string("\0", 1), kAll, {});
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->kvs.size(), static_cast<int>(keys.size() / 2));
  for (size_t i = 1; i < keys.size(); i += 2) {
    EXPECT_EQ(after->kvs[i / 2].key(), keys[i]);
    EXPECT_EQ(after->kvs[i / 2].version(), 2);
  }
}

}  // namespace
}  // namespace etcdpp::mvcc

// A DeleteRange committed in parts (mvcc::DeleteParts): readers see the
// delete whole or not at all, and a crash between parts is finished by
// applying the same request again, to the very store a delete in one commit
// leaves.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "mvcc/kv_store.h"
#include "unit/mvcc/temp_dir.h"

namespace etcdpp::mvcc {
namespace {

const std::string kAll("\0", 1);

std::string NumberedKey(int i) {
  char key[32];
  std::snprintf(key, sizeof(key), "d/%05d", i);
  return key;
}

std::unique_ptr<KvStore> OpenStore(const std::string& dir) {
  auto store = KvStore::Open(dir);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(*store) : nullptr;
}

// `keys` keys under "d/" (every third with lease 7), one key on either side
// of the range, and one more revision of the first key, each put its own
// revision.
void Fill(KvStore& store, int keys) {
  auto w = store.Write().value();
  auto put = [&](const std::string& key, const std::string& value, int64_t lease) {
    w->BeginRevision();
    ASSERT_TRUE(w->Put(key, value, lease).ok());
    w->EndRevision();
  };
  put("c", "before", 0);
  for (int i = 0; i < keys; ++i) put(NumberedKey(i), "value " + std::to_string(i), i % 3 ? 0 : 7);
  put(NumberedKey(0), "second", 0);
  put("e", "after", 0);
  ASSERT_TRUE(w->Commit().ok());
}

struct Seen {
  int64_t rev = 0;
  std::vector<std::string> keys;  // keys_only range of everything
  int64_t count_in_range = 0;     // a count_only range of "d/"
  uint32_t hash = 0;
  std::vector<std::string> events;  // Changes(1, rev): "type key main.sub"
};

Seen Look(const ReadView& view) {
  Seen seen;
  seen.rev = view.Rev();
  auto all = view.Range("", kAll, RangeOptions{.keys_only = true});
  EXPECT_TRUE(all.ok()) << all.status().ToString();
  if (all.ok()) {
    for (const auto& kv : all->kvs) seen.keys.push_back(kv.key());
  }
  auto count = view.Range("d/", "d0", RangeOptions{.count_only = true});
  EXPECT_TRUE(count.ok()) << count.status().ToString();
  if (count.ok()) seen.count_in_range = count->count;
  auto hash = view.HashKV(0);
  EXPECT_TRUE(hash.ok()) << hash.status().ToString();
  if (hash.ok()) seen.hash = hash->hash;
  auto changes = view.Changes(1, 0, false);
  EXPECT_TRUE(changes.ok()) << changes.status().ToString();
  if (changes.ok()) {
    for (; (*changes)->Valid(); (*changes)->Next()) {
      const Revision rev = (*changes)->revision();
      seen.events.push_back(std::to_string((*changes)->event().type()) + " " +
                            (*changes)->event().kv().key() + " " + std::to_string(rev.main) + "." +
                            std::to_string(rev.sub));
    }
    EXPECT_TRUE((*changes)->status().ok()) << (*changes)->status().ToString();
  }
  return seen;
}

void ExpectSame(const Seen& a, const Seen& b) {
  EXPECT_EQ(a.rev, b.rev);
  EXPECT_EQ(a.keys, b.keys);
  EXPECT_EQ(a.count_in_range, b.count_in_range);
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_EQ(a.events, b.events);
}

// Deletes "d/".."d0" in one revision scope; `parts` may be null.
Result<int64_t> DeleteAll(WriteTxn& w, const DeleteParts* parts,
                          std::vector<std::string>* seen_keys = nullptr) {
  w.BeginRevision();
  auto n = w.DeleteRange(
      "d/", "d0", PrevValues::kRead,
      [&](const KeyValueView& kv) {
        if (seen_keys != nullptr) seen_keys->emplace_back(kv.key);
      },
      parts);
  w.EndRevision();
  return n;
}

TEST(DeletePartsTest, ReadersSeeNothingOfTheDeleteUntilItsTransactionCommits) {
  constexpr int kKeys = 3000;  // chunks of 1,024: parts commit after two of them
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  Fill(*store, kKeys);
  const Seen before = Look(*store->Read().value());
  ASSERT_EQ(before.count_in_range, kKeys);

  int parts_committed = 0;
  std::vector<Seen> between;
  auto w = store->Write().value();
  DeleteParts parts{.keys_per_part = 1000, .before_commit = [&]() -> Status {
                      // What the earlier parts committed is visible to a
                      // reader opened now.
                      between.push_back(Look(*store->Read().value()));
                      ++parts_committed;
                      return Status::OK();
                    }};
  std::vector<std::string> seen_keys;
  auto n = DeleteAll(*w, &parts, &seen_keys);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, kKeys);
  EXPECT_EQ(seen_keys.size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(parts_committed, 2);
  // A reader after the last part's commit but before the transaction's.
  between.push_back(Look(*store->Read().value()));
  for (const Seen& seen : between) ExpectSame(seen, before);
  // The transaction's own view has it all.
  EXPECT_EQ(Look(*w).count_in_range, 0);
  ASSERT_TRUE(w->Commit().ok());

  const Seen after = Look(*store->Read().value());
  EXPECT_EQ(after.rev, before.rev + 1);
  EXPECT_EQ(after.count_in_range, 0);
  EXPECT_EQ(after.keys, (std::vector<std::string>{"c", "e"}));
  ASSERT_EQ(after.events.size(), before.events.size() + kKeys);
  // One DELETE per key, in key order, sub revisions 0..kKeys-1 across parts.
  for (int i = 0; i < kKeys; ++i) {
    EXPECT_EQ(after.events[before.events.size() + static_cast<size_t>(i)],
              "1 " + NumberedKey(i) + " " + std::to_string(after.rev) + "." + std::to_string(i));
  }
}

// Two stores filled alike: `whole_` has had the delete in one commit, and
// `in_parts_` is where each test deletes in parts, stops, reopens and goes
// on; `expected_` is what the one commit left.
class DeletePartsAgainstOneCommitTest : public ::testing::Test {
 protected:
  void Prepare(int keys) {
    keys_ = keys;
    whole_ = OpenStore(whole_dir_.path());
    in_parts_ = OpenStore(parts_dir_.path());
    ASSERT_NE(whole_, nullptr);
    ASSERT_NE(in_parts_, nullptr);
    Fill(*whole_, keys);
    Fill(*in_parts_, keys);
    auto w = whole_->Write().value();
    auto n = DeleteAll(*w, nullptr);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, keys);
    ASSERT_TRUE(w->Commit().ok());
    w.reset();
    expected_ = Look(*whole_->Read().value());
  }
  void ReopenInParts() {
    in_parts_.reset();
    in_parts_ = OpenStore(parts_dir_.path());
    ASSERT_NE(in_parts_, nullptr);
  }
  // Applies the delete in parts again, as the WAL's replay does.
  void DeleteAgain() {
    DeleteParts parts{.keys_per_part = 1024, .before_commit = {}};
    auto w = in_parts_->Write().value();
    auto n = DeleteAll(*w, &parts);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, keys_);
    ASSERT_TRUE(w->Commit().ok());
  }

  testing::TempDir whole_dir_, parts_dir_;
  std::unique_ptr<KvStore> whole_, in_parts_;
  int keys_ = 0;
  Seen expected_;
};

// The same delete, committed in parts and stopped after the first part (as
// a crash would), then applied again after a reopen, leaves the store a
// delete in one commit leaves: same keys, counts, change log and hash.
TEST_F(DeletePartsAgainstOneCommitTest, ADeleteStoppedBetweenPartsFinishesWhenAppliedAgain) {
  ASSERT_NO_FATAL_FAILURE(Prepare(5000));
  const Seen before = Look(*in_parts_->Read().value());

  // Stopped before the second part's commit: the first is committed.
  int calls = 0;
  DeleteParts stopping{.keys_per_part = 1024, .before_commit = [&]() -> Status {
                         return ++calls == 2 ? Status::IOError("stopped here") : Status::OK();
                       }};
  {
    auto w = in_parts_->Write().value();
    auto n = DeleteAll(*w, &stopping);
    EXPECT_FALSE(n.ok());
    // What the transaction holds is half a delete: it can only be aborted.
    EXPECT_TRUE(w->Broken());
  }
  ExpectSame(Look(*in_parts_->Read().value()), before);
  ASSERT_NO_FATAL_FAILURE(ReopenInParts());
  ExpectSame(Look(*in_parts_->Read().value()), before);

  // Until the delete is finished no other write may take its revision, and
  // one that tries breaks its transaction (the member stops).
  for (int other = 0; other < 3; ++other) {
    auto w = in_parts_->Write().value();
    w->BeginRevision();
    DeleteParts parts{.keys_per_part = 1024, .before_commit = {}};
    Status refused = other == 0 ? w->Put("x", "y", 0).status()
                     : other == 1
                         ? w->DeleteRange("c", "").status()
                         : w->DeleteRange("d/", "d1", PrevValues::kSkip, {}, &parts).status();
    EXPECT_EQ(refused.code(), Code::kCorruption) << other;
    EXPECT_TRUE(w->Broken()) << other;
  }
  ASSERT_NO_FATAL_FAILURE(DeleteAgain());
  ExpectSame(Look(*in_parts_->Read().value()), expected_);
  ASSERT_NO_FATAL_FAILURE(ReopenInParts());
  ExpectSame(Look(*in_parts_->Read().value()), expected_);

  // Both go on alike.
  for (KvStore* store : {whole_.get(), in_parts_.get()}) {
    auto w = store->Write().value();
    w->BeginRevision();
    ASSERT_TRUE(w->Put(NumberedKey(1), "again", 0).ok());
    w->EndRevision();
    ASSERT_TRUE(w->Commit().ok());
  }
  ExpectSame(Look(*in_parts_->Read().value()), Look(*whole_->Read().value()));
}

// A stop after the last part committed, with no key left to delete when the
// request comes again: the revision still counts, and the keys leave `live`.
TEST_F(DeletePartsAgainstOneCommitTest, ADeleteStoppedAfterItsLastKeyStillFinishes) {
  ASSERT_NO_FATAL_FAILURE(Prepare(2048));  // two full chunks: the second ends the range
  int calls = 0;
  DeleteParts parts{.keys_per_part = 1024, .before_commit = [&]() -> Status {
                      ++calls;
                      return Status::OK();
                    }};
  {
    auto w = in_parts_->Write().value();
    ASSERT_TRUE(DeleteAll(*w, &parts).ok());
    // Both chunks were parts: the scan looked for more after the second.
    EXPECT_EQ(calls, 2);
  }  // aborted: only the committed parts remain
  ASSERT_NO_FATAL_FAILURE(ReopenInParts());
  ASSERT_NO_FATAL_FAILURE(DeleteAgain());
  ExpectSame(Look(*in_parts_->Read().value()), expected_);
}

// A copy made between parts (a backup restored into a new cluster) has no
// log to replay the delete from: FinishUnfinishedDelete finishes it from the
// marker alone.
TEST_F(DeletePartsAgainstOneCommitTest, ACopyBetweenPartsIsFinishedFromItsMarker) {
  ASSERT_NO_FATAL_FAILURE(Prepare(3000));
  {
    // Without an unfinished delete it changes nothing.
    auto w = whole_->Write().value();
    const int64_t rev = w->Rev();
    ASSERT_TRUE(w->FinishUnfinishedDelete().ok());
    EXPECT_EQ(w->Rev(), rev);
  }
  {
    DeleteParts parts{.keys_per_part = 1024, .before_commit = {}};
    auto w = in_parts_->Write().value();
    ASSERT_TRUE(DeleteAll(*w, &parts).ok());
  }  // aborted after two parts: the copy a backup would hold
  ASSERT_NO_FATAL_FAILURE(ReopenInParts());
  {
    auto w = in_parts_->Write().value();
    ASSERT_TRUE(w->FinishUnfinishedDelete().ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  ExpectSame(Look(*in_parts_->Read().value()), expected_);
  // It writes on as any store.
  auto w = in_parts_->Write().value();
  w->BeginRevision();
  EXPECT_TRUE(w->Put("x", "y", 0).ok());
  w->EndRevision();
  EXPECT_TRUE(w->Commit().ok());
}

}  // namespace
}  // namespace etcdpp::mvcc

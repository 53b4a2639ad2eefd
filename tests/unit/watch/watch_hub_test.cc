// WatchHub against a real store: ordering, exactly-once delivery, filters,
// compaction, slow consumers, many watchers, store replacement, progress.
#include "watch/watch_hub.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "mvcc/kv_store.h"
#include "unit/mvcc/temp_dir.h"
#include "unit/watch/test_round_scheduler.h"

namespace etcdpp::watch {
namespace {

using namespace std::chrono_literals;
using etcdserverpb::WatchResponse;

// A sink holding at most `capacity` responses until the test drains it.
class TestSink : public WatchSink {
 public:
  explicit TestSink(size_t capacity = 1 << 30) : capacity_(capacity) {}

  bool TrySend(WatchResponse& response, bool force) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!force && queued_.size() >= capacity_) {
      refused_++;
      return false;
    }
    queued_.push_back(std::move(response));
    return true;
  }
  bool HasRoom() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return queued_.size() < capacity_;
  }
  void OnHubStopped() override {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  size_t TrySendEventsBatch(int64_t header_revision,
                            std::span<const EventsResponse> responses) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      calls_.push_back("batch " + std::to_string(responses.size()));
    }
    return WatchSink::TrySendEventsBatch(header_revision, responses);
  }
  void SendQueued() override {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back("send");
  }
  // The hub's TrySendEventsBatch and SendQueued calls, in order.
  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

  // Moves the queued responses to the consumed list; wakes the hub.
  void Drain(WatchHub* hub) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& r : queued_) consumed_.push_back(std::move(r));
      queued_.clear();
    }
    hub->Wake();
  }
  std::vector<WatchResponse> Consumed() {
    std::lock_guard<std::mutex> lock(mu_);
    return consumed_;
  }
  size_t refused() {
    std::lock_guard<std::mutex> lock(mu_);
    return refused_;
  }
  bool stopped() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopped_;
  }

 private:
  mutable std::mutex mu_;
  const size_t capacity_;
  std::vector<WatchResponse> queued_;
  std::vector<WatchResponse> consumed_;
  size_t refused_ = 0;
  bool stopped_ = false;
  std::vector<std::string> calls_;
};

// Events of `watch_id` in the order the sink got them.
std::vector<mvccpb::Event> EventsOf(const std::vector<WatchResponse>& rs, int64_t watch_id) {
  std::vector<mvccpb::Event> out;
  for (const auto& r : rs) {
    if (r.watch_id() != watch_id) continue;
    for (const auto& e : r.events()) out.push_back(e);
  }
  return out;
}

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds limit = 30s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

class WatchHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = mvcc::KvStore::Open(dir_.path() + "/db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  void TearDown() override {
    if (hub_) hub_->Stop();
  }
  // Every hub runs under the test's scheduler and on the test's clock, which
  // moves only in AdvanceClock.
  void StartHub(WatchHubOptions options = {}) {
    options.scheduler = &scheduler_;
    options.now = [this] {
      return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(fake_now_ns_.load()));
    };
    hub_ = std::make_unique<WatchHub>(store_.get(), options);
  }
  void AdvanceClock(std::chrono::nanoseconds d) { fake_now_ns_ += d.count(); }

  // Drains every sink until a round that started after a drain ended with
  // nothing more to do and sent nothing: every response the hub will ever
  // send for the writes so far has been consumed.
  void Settle() {
    auto consumed = [&] {
      size_t n = 0;
      for (auto& s : sinks_) {
        s->Drain(hub_.get());
        n += s->Consumed().size();
      }
      return n;
    };
    for (size_t before = consumed();;) {
      ASSERT_TRUE(scheduler_.WaitForQuietRound(hub_.get()));
      const size_t after = consumed();
      if (after == before) return;
      before = after;
    }
  }

  // One revision with the given puts (key -> value) and deletes.
  int64_t Commit(const std::vector<std::pair<std::string, std::string>>& puts,
                 const std::vector<std::string>& deletes = {}) {
    auto w = store_->Write();
    EXPECT_TRUE(w.ok());
    (*w)->BeginRevision();
    for (const auto& [k, v] : puts) EXPECT_TRUE((*w)->Put(k, v, 0).ok());
    for (const auto& k : deletes) EXPECT_TRUE((*w)->DeleteRange(k, "").ok());
    (*w)->EndRevision();
    EXPECT_TRUE((*w)->Commit().ok());
    int64_t rev = store_->CurrentRevision();
    if (hub_) hub_->Notify(rev);
    return rev;
  }
  int64_t Put(const std::string& k, const std::string& v) { return Commit({{k, v}}); }
  // One revision written into `txn`, left open as the apply thread leaves a
  // batch it holds back from commit, and offered to the hub as it does.
  int64_t PutHeld(mvcc::WriteTxn& txn, const std::string& k, const std::string& v) {
    const int64_t from = txn.Rev() + 1;
    txn.BeginRevision();
    EXPECT_TRUE(txn.Put(k, v, 0).ok());
    txn.EndRevision();
    hub_->OfferHeld(txn, from);
    return txn.Rev();
  }
  int64_t Delete(const std::string& k) { return Commit({}, {k}); }
  void Compact(int64_t rev) {
    auto w = store_->Write();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Compact(rev).ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  // A compaction as EtcdServer::ApplyEntries applies it (the writes before
  // it are committed already).
  void CompactAsApplier(int64_t rev) {
    if (hub_->NeedsSnapshotBeforeCompaction(rev)) {
      auto snapshot = store_->Read();
      ASSERT_TRUE(snapshot.ok());
      hub_->KeepSnapshot(std::move(*snapshot));
    }
    Compact(rev);
  }

  // Sinks outlive the hub (Stop() in TearDown talks to them).
  TestSink& NewSink(size_t capacity = size_t{1} << 30) {
    sinks_.push_back(std::make_unique<TestSink>(capacity));
    return *sinks_.back();
  }

  WatchHub::WatcherId Add(TestSink* sink, WatchSpec spec) {
    auto id = hub_->Add(sink, spec);
    EXPECT_TRUE(id.ok());
    return *id;
  }
  static WatchSpec Spec(std::string key, std::string end, int64_t start, int64_t watch_id) {
    WatchSpec s;
    s.key = std::move(key);
    s.range_end = std::move(end);
    s.start_revision = start;
    s.watch_id = watch_id;
    return s;
  }

  // Drains `sink` until watcher `watch_id` got `count` events.
  std::vector<mvccpb::Event> Collect(TestSink* sink, int64_t watch_id, size_t count) {
    std::vector<mvccpb::Event> got;
    WaitFor([&] {
      sink->Drain(hub_.get());
      got = EventsOf(sink->Consumed(), watch_id);
      return got.size() >= count;
    });
    return got;
  }

  void RunRandomHistory(bool hold);

  testing::TempDir dir_;
  std::unique_ptr<mvcc::KvStore> store_;
  std::vector<std::unique_ptr<TestSink>> sinks_;
  std::atomic<int64_t> fake_now_ns_{int64_t{1} << 40};
  TestRoundScheduler scheduler_;  // Outlives the hub.
  std::unique_ptr<WatchHub> hub_;
};

TEST_F(WatchHubTest, LiveKeyWatcherGetsItsEventsInOrder) {
  StartHub();
  TestSink& sink = NewSink();
  const int64_t start = store_->CurrentRevision() + 1;
  Add(&sink, Spec("a", "", start, 7));
  int64_t r1 = Put("a", "1");
  Put("b", "x");
  int64_t r2 = Put("a", "2");
  int64_t r3 = Delete("a");
  auto events = Collect(&sink, 7, 3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type(), mvccpb::Event::PUT);
  EXPECT_EQ(events[0].kv().value(), "1");
  EXPECT_EQ(events[0].kv().mod_revision(), r1);
  EXPECT_EQ(events[1].kv().version(), 2);
  EXPECT_EQ(events[1].kv().mod_revision(), r2);
  EXPECT_EQ(events[2].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(events[2].kv().mod_revision(), r3);
  // A hub that fell behind the writes sends several revisions in one
  // response: oldest first, under the header revision of the last one it
  // dispatched, which is at least that of the response's last event.
  for (const auto& r : sink.Consumed()) {
    ASSERT_GE(r.events_size(), 1);
    for (int i = 1; i < r.events_size(); ++i) {
      EXPECT_LT(r.events(i - 1).kv().mod_revision(), r.events(i).kv().mod_revision());
    }
    EXPECT_GE(r.header().revision(), r.events(r.events_size() - 1).kv().mod_revision());
  }
  Settle();
  EXPECT_EQ(EventsOf(sink.Consumed(), 7).size(), 3u);  // Nothing twice.
}

TEST_F(WatchHubTest, AHubThatKeepsUpSendsEachRevisionAlone) {
  StartHub();
  TestSink& sink = NewSink();
  const int64_t start = store_->CurrentRevision() + 1;
  Add(&sink, Spec("a", "", start, 7));
  std::vector<int64_t> revs;
  for (int i = 0; i < 3; ++i) {
    revs.push_back(Put("a", std::to_string(i)));
    // The hub has sent it before the next write comes.
    ASSERT_EQ(Collect(&sink, 7, revs.size()).size(), revs.size());
  }
  const auto rs = sink.Consumed();
  ASSERT_EQ(rs.size(), 3u);
  for (size_t i = 0; i < rs.size(); ++i) {
    ASSERT_EQ(rs[i].events_size(), 1);
    EXPECT_EQ(rs[i].events(0).kv().mod_revision(), revs[i]);
    EXPECT_EQ(rs[i].header().revision(), revs[i]);
  }
}

// Writes that pile up while the hub is busy go out together: each watcher
// gets its events of all of them in one response, and a sink gets one batch
// and one send for the whole pile.
TEST_F(WatchHubTest, RevisionsPiledUpBehindTheHubGoOutInOneResponsePerWatcher) {
  StartHub();
  TestSink& sink = NewSink();
  const int64_t start = store_->CurrentRevision() + 1;
  Add(&sink, Spec("k", "", start, 1));
  Add(&sink, Spec("k", "", start, 2));
  Add(&sink, Spec("p", "q", start, 3));
  Settle();
  scheduler_.Hold();
  const int64_t r1 = Put("k", "1");
  const int64_t r2 = Put("pa", "x");
  const int64_t r3 = Put("k", "2");
  const int64_t r4 = Put("other", "y");
  scheduler_.Release(hub_.get());
  Settle();
  const auto rs = sink.Consumed();
  ASSERT_EQ(rs.size(), 3u);
  for (const auto& r : rs) {
    EXPECT_EQ(r.header().revision(), r4) << r.watch_id();
    if (r.watch_id() == 3) {
      ASSERT_EQ(r.events_size(), 1);
      EXPECT_EQ(r.events(0).kv().mod_revision(), r2);
      continue;
    }
    ASSERT_EQ(r.events_size(), 2) << r.watch_id();
    EXPECT_EQ(r.events(0).kv().mod_revision(), r1);
    EXPECT_EQ(r.events(0).kv().value(), "1");
    EXPECT_EQ(r.events(1).kv().mod_revision(), r3);
    EXPECT_EQ(r.events(1).kv().value(), "2");
  }
  const std::vector<std::string> want = {"batch 3", "send"};
  EXPECT_EQ(sink.Calls(), want);
}

// The same for writes the apply side offered before their commit.
TEST_F(WatchHubTest, HeldRevisionsPiledUpBehindTheHubGoOutTogether) {
  StartHub();
  TestSink& sink = NewSink();
  const int64_t start = store_->CurrentRevision() + 1;
  Add(&sink, Spec("k", "", start, 1));
  Settle();
  auto txn = store_->Write();
  ASSERT_TRUE(txn.ok());
  scheduler_.Hold();
  std::vector<int64_t> revs;
  for (int i = 0; i < 4; ++i) revs.push_back(PutHeld(**txn, "k", std::to_string(i)));
  scheduler_.Release(hub_.get());
  auto events = Collect(&sink, 1, 4);
  ASSERT_EQ(events.size(), 4u);
  const auto rs = sink.Consumed();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].header().revision(), revs.back());
  for (size_t i = 0; i < revs.size(); ++i) {
    EXPECT_EQ(events[i].kv().mod_revision(), revs[i]);
  }
  ASSERT_TRUE((*txn)->Commit().ok());
  txn->reset();
  hub_->Notify(store_->CurrentRevision());
  Settle();
  EXPECT_EQ(EventsOf(sink.Consumed(), 1).size(), 4u);  // Not again with the commit.
}

// A pile of large revisions is sent in parts of about 64 KiB of keys and
// values, each part whole revisions, so no response grows past what clients
// accept by default.
TEST_F(WatchHubTest, APileOfLargeRevisionsGoesOutInBoundedResponses) {
  StartHub();
  TestSink& sink = NewSink();
  const int64_t start = store_->CurrentRevision() + 1;
  Add(&sink, Spec("k", "", start, 1));
  Settle();
  scheduler_.Hold();
  constexpr int kPuts = 10;
  std::vector<int64_t> revs;
  for (int i = 0; i < kPuts; ++i) {
    revs.push_back(Put("k", std::string(20 << 10, static_cast<char>('a' + i))));
  }
  scheduler_.Release(hub_.get());
  Settle();
  const auto rs = sink.Consumed();
  const auto events = EventsOf(rs, 1);
  ASSERT_EQ(events.size(), static_cast<size_t>(kPuts));
  for (int i = 0; i < kPuts; ++i) EXPECT_EQ(events[i].kv().mod_revision(), revs[i]);
  EXPECT_GE(rs.size(), 3u);
  for (const auto& r : rs) {
    size_t before_last = 0;
    for (int i = 0; i + 1 < r.events_size(); ++i) before_last += r.events(i).kv().value().size();
    EXPECT_LT(before_last, size_t{64} << 10);
  }
}

TEST_F(WatchHubTest, OneRevisionWithManyKeysIsOneResponse) {
  StartHub();
  TestSink& sink = NewSink();
  Add(&sink, Spec("p/", "p0", store_->CurrentRevision() + 1, 1));
  int64_t rev = Commit({{"p/a", "1"}, {"p/b", "2"}, {"q", "3"}});
  auto events = Collect(&sink, 1, 2);
  ASSERT_EQ(events.size(), 2u);
  auto rs = sink.Consumed();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].header().revision(), rev);
  EXPECT_EQ(events[0].kv().key(), "p/a");
  EXPECT_EQ(events[1].kv().key(), "p/b");
}

TEST_F(WatchHubTest, PastStartRevisionReplaysHistoryThenGoesLive) {
  int64_t r1 = Put("p/a", "1");
  Put("q", "x");
  Put("p/b", "2");
  StartHub();
  TestSink& sink = NewSink();
  Add(&sink, Spec("p/", "p0", r1, 1));
  Put("p/c", "3");
  auto events = Collect(&sink, 1, 3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kv().key(), "p/a");
  EXPECT_EQ(events[1].kv().key(), "p/b");
  EXPECT_EQ(events[2].kv().key(), "p/c");
  ASSERT_TRUE(WaitFor([&] { return hub_->stats().synced == 1; }));
  EXPECT_EQ(hub_->stats().unsynced, 0u);
  Put("p/d", "4");
  EXPECT_EQ(Collect(&sink, 1, 4).size(), 4u);
}

// The server forces the commit of held writes when a watch is created, so
// the hub may learn of them only after the watcher arrives. What the
// watcher asks for already exists: one response, as etcdctl's `watch --rev
// N -- cmd` (events printed, then the command per event) relies on.
TEST_F(WatchHubTest, HistoryCommittedButNotYetDispatchedComesInOneResponse) {
  StartHub();
  const int64_t before = Put("h/warmup", "w");
  ASSERT_TRUE(WaitFor([&] { return hub_->stats().synced_revision >= before; }));
  TestSink& sink = NewSink();
  scheduler_.Hold();
  const int64_t put = Put("h/k", "v");
  Delete("h/k");
  Add(&sink, Spec("h/k", "", put, 1));
  scheduler_.Release(hub_.get());
  auto events = Collect(&sink, 1, 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type(), mvccpb::Event::PUT);
  EXPECT_EQ(events[1].type(), mvccpb::Event::DELETE);
  size_t responses_with_events = 0;
  for (const auto& r : sink.Consumed()) {
    if (r.watch_id() == 1 && r.events_size() > 0) responses_with_events++;
  }
  EXPECT_EQ(responses_with_events, 1u);
}
// The backend batch interval holds answered writes out of the store for up
// to 100 ms; watchers must not wait for that commit, nor get a change twice
// once it comes.
TEST_F(WatchHubTest, HeldWritesReachSyncedWatchersBeforeTheirCommit) {
  Put("k", "old");
  StartHub();
  TestSink& sink = NewSink();
  const int64_t committed = store_->CurrentRevision();
  WatchSpec with_prev = Spec("k", "", committed + 1, 1);
  with_prev.prev_kv = true;
  Add(&sink, with_prev);
  Add(&sink, Spec("k", "l", committed + 1, 2));
  auto txn = store_->Write();
  ASSERT_TRUE(txn.ok());
  const int64_t r1 = PutHeld(**txn, "k", "v1");
  const int64_t r2 = PutHeld(**txn, "k", "v2");
  auto events = Collect(&sink, 1, 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(store_->CurrentRevision(), committed);  // Nothing committed yet.
  EXPECT_EQ(events[0].kv().mod_revision(), r1);
  EXPECT_EQ(events[0].prev_kv().value(), "old");
  EXPECT_EQ(events[1].kv().value(), "v2");
  EXPECT_EQ(events[1].prev_kv().value(), "v1");
  auto plain = Collect(&sink, 2, 2);
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_FALSE(plain[0].has_prev_kv());
  EXPECT_EQ(plain[1].kv().mod_revision(), r2);
  ASSERT_TRUE((*txn)->Commit().ok());
  txn->reset();
  hub_->Notify(store_->CurrentRevision());
  const int64_t r3 = Put("k", "v3");
  Settle();
  auto all = EventsOf(sink.Consumed(), 1);
  ASSERT_EQ(all.size(), 3u);  // Each change once, in order.
  EXPECT_EQ(all[2].kv().mod_revision(), r3);
  EXPECT_EQ(EventsOf(sink.Consumed(), 2).size(), 3u);
}

// Catch-up reads only committed history: a watcher that starts inside the
// held writes gets them once they are committed, still all in one response.
TEST_F(WatchHubTest, WatcherStartingInsideHeldWritesGetsThemWithTheirCommit) {
  StartHub();
  TestSink& live = NewSink();
  TestSink& late = NewSink();
  const int64_t committed = store_->CurrentRevision();
  Add(&live, Spec("k", "", committed + 1, 1));
  auto txn = store_->Write();
  ASSERT_TRUE(txn.ok());
  const int64_t r1 = PutHeld(**txn, "k", "v1");
  PutHeld(**txn, "k", "v2");
  ASSERT_EQ(Collect(&live, 1, 2).size(), 2u);
  Add(&late, Spec("k", "", r1, 1));
  Settle();
  EXPECT_TRUE(EventsOf(late.Consumed(), 1).empty());
  EXPECT_EQ(hub_->stats().unsynced, 1u);
  ASSERT_TRUE((*txn)->Commit().ok());
  txn->reset();
  hub_->Notify(store_->CurrentRevision());
  auto events = Collect(&late, 1, 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kv().value(), "v1");
  EXPECT_EQ(events[1].kv().value(), "v2");
  ASSERT_EQ(late.Consumed().size(), 1u);
  Settle();
  EXPECT_EQ(EventsOf(live.Consumed(), 1).size(), 2u);
  EXPECT_EQ(hub_->stats().synced, 2u);
}

// Held writes are copied with prev_kv only when some watcher wants it; a
// watcher wanting it that comes after the copy must not get events without
// it, so the hub waits for the commit and reads them from the store.
TEST_F(WatchHubTest, HeldWritesCopiedWithoutPrevKvWaitForTheCommitForAPrevKvWatcher) {
  Put("k", "old");
  StartHub();
  TestSink& sink = NewSink();
  const int64_t committed = store_->CurrentRevision();
  Add(&sink, Spec("k", "", committed + 1, 1));
  scheduler_.Hold();
  auto txn = store_->Write();
  ASSERT_TRUE(txn.ok());
  PutHeld(**txn, "k", "new");
  WatchSpec with_prev = Spec("k", "", committed + 1, 2);
  with_prev.prev_kv = true;
  Add(&sink, with_prev);
  scheduler_.Release(hub_.get());
  Settle();
  EXPECT_TRUE(EventsOf(sink.Consumed(), 2).empty());
  ASSERT_TRUE((*txn)->Commit().ok());
  txn->reset();
  hub_->Notify(store_->CurrentRevision());
  auto events = Collect(&sink, 2, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].prev_kv().value(), "old");
  Settle();
  EXPECT_EQ(EventsOf(sink.Consumed(), 1).size(), 1u);
}

TEST_F(WatchHubTest, FutureStartRevisionSkipsEarlierChanges) {
  StartHub();
  TestSink& sink = NewSink();
  const int64_t now = store_->CurrentRevision();
  Add(&sink, Spec("a", "", now + 3, 1));
  Put("a", "1");
  Put("a", "2");
  int64_t r3 = Put("a", "3");
  auto events = Collect(&sink, 1, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv().mod_revision(), r3);
}

TEST_F(WatchHubTest, FiltersAndPrevKv) {
  Put("a", "old");
  StartHub();
  TestSink& sink = NewSink();
  const int64_t start = store_->CurrentRevision() + 1;
  WatchSpec no_put = Spec("a", "", start, 1);
  no_put.no_put = true;
  WatchSpec no_delete = Spec("a", "", start, 2);
  no_delete.no_delete = true;
  no_delete.prev_kv = true;
  WatchSpec plain = Spec("a", "", start, 3);
  Add(&sink, no_put);
  Add(&sink, no_delete);
  Add(&sink, plain);
  Put("a", "new");
  Delete("a");
  Collect(&sink, 3, 2);
  auto deletes_only = Collect(&sink, 1, 1);
  ASSERT_EQ(deletes_only.size(), 1u);
  EXPECT_EQ(deletes_only[0].type(), mvccpb::Event::DELETE);
  EXPECT_FALSE(deletes_only[0].has_prev_kv());
  auto puts_only = Collect(&sink, 2, 1);
  ASSERT_EQ(puts_only.size(), 1u);
  EXPECT_EQ(puts_only[0].type(), mvccpb::Event::PUT);
  EXPECT_EQ(puts_only[0].prev_kv().value(), "old");
  auto plain_events = Collect(&sink, 3, 2);
  EXPECT_FALSE(plain_events[0].has_prev_kv());
  // A filtered-out revision sends nothing at all.
  for (const auto& r : sink.Consumed()) EXPECT_GT(r.events_size(), 0);
}

TEST_F(WatchHubTest, RangeAndFromKeyWatchers) {
  StartHub();
  TestSink& sink = NewSink();
  const int64_t start = store_->CurrentRevision() + 1;
  Add(&sink, Spec("b", "d", start, 1));                   // [b, d)
  Add(&sink, Spec("c", std::string(1, '\0'), start, 2));  // >= c
  Add(&sink, Spec("a", "b", start, 3));                   // prefix "a" written as a range
  for (std::string k : {"a", "ab", "b", "bz", "c", "d", "zz"}) Put(k, "v");
  auto keys = [](const std::vector<mvccpb::Event>& es) {
    std::vector<std::string> out;
    for (const auto& e : es) out.push_back(e.kv().key());
    return out;
  };
  EXPECT_EQ(keys(Collect(&sink, 1, 3)), (std::vector<std::string>{"b", "bz", "c"}));
  EXPECT_EQ(keys(Collect(&sink, 2, 3)), (std::vector<std::string>{"c", "d", "zz"}));
  EXPECT_EQ(keys(Collect(&sink, 3, 2)), (std::vector<std::string>{"a", "ab"}));
}

TEST_F(WatchHubTest, WatchFromCompactedRevisionIsCanceledWithCompactRevision) {
  int64_t r1 = Put("a", "1");
  int64_t r2 = Put("a", "2");
  Put("a", "3");
  Compact(r2);
  StartHub();
  TestSink& sink = NewSink();
  Add(&sink, Spec("a", "", r1, 5));
  ASSERT_TRUE(WaitFor([&] {
    sink.Drain(hub_.get());
    return !sink.Consumed().empty();
  }));
  auto rs = sink.Consumed();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_TRUE(rs[0].canceled());
  EXPECT_EQ(rs[0].compact_revision(), r2);
  EXPECT_EQ(rs[0].watch_id(), 5);
  EXPECT_EQ(rs[0].events_size(), 0);
  EXPECT_EQ(hub_->stats().synced + hub_->stats().unsynced, 0u);
  // Watching from the compact revision itself is allowed.
  Add(&sink, Spec("a", "", r2, 6));
  EXPECT_EQ(Collect(&sink, 6, 2).size(), 2u);
}

TEST_F(WatchHubTest, CompactionDuringWatchDoesNotDisturbSyncedWatchers) {
  StartHub();
  TestSink& sink = NewSink();
  Add(&sink, Spec("a", "", store_->CurrentRevision() + 1, 1));
  int64_t last = 0;
  for (int i = 0; i < 5; ++i) last = Put("a", std::to_string(i));
  ASSERT_EQ(Collect(&sink, 1, 5).size(), 5u);
  Compact(last);
  for (int i = 5; i < 10; ++i) Put("a", std::to_string(i));
  auto events = Collect(&sink, 1, 10);
  ASSERT_EQ(events.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(events[i].kv().value(), std::to_string(i));
  for (const auto& r : sink.Consumed()) EXPECT_FALSE(r.canceled());
}

// The apply thread commits writes and then a compaction to their last
// revision before the hub's next round (here the hub is paused; in a server
// the writes and the compaction come in one apply batch, or the hub is
// slow). A watcher synced at that point still gets every event, in order,
// once, and is not canceled; watchers behind the compaction (one that
// started below it before, one that asks for a compacted revision after)
// get compact_revision. Two compactions in a row and a tiny read budget
// make the hub read several snapshots over several rounds.
TEST_F(WatchHubTest, CompactionOfUndispatchedWritesKeepsSyncedWatchersWhole) {
  WatchHubOptions options;
  options.max_events_per_round = 2;
  StartHub(options);
  TestSink& sink = NewSink();
  const int64_t old = Put("k/0", "old");
  ASSERT_TRUE(WaitFor([&] { return hub_->stats().synced_revision >= old; }));
  Add(&sink, Spec("k/", "k0", old + 1, 1));
  scheduler_.Hold();
  Add(&sink, Spec("k/", "k0", old, 2));  // Behind: unsynced, not caught up yet.
  // Like one apply batch: several revisions in one transaction.
  auto put_batch = [&](int from, int to) {
    auto w = store_->Write();
    ASSERT_TRUE(w.ok());
    for (int i = from; i <= to; ++i) {
      (*w)->BeginRevision();
      ASSERT_TRUE((*w)->Put("k/" + std::to_string(i), std::to_string(i), 0).ok());
      (*w)->EndRevision();
    }
    ASSERT_TRUE((*w)->Commit().ok());
    hub_->Notify(store_->CurrentRevision());
  };
  put_batch(1, 3);
  const int64_t first_compact = store_->CurrentRevision();
  CompactAsApplier(first_compact);
  put_batch(4, 6);
  const int64_t second_compact = store_->CurrentRevision();
  CompactAsApplier(second_compact);
  Add(&sink, Spec("k/", "k0", second_compact - 1, 3));  // Asks for compacted history.
  scheduler_.Release(hub_.get());
  Put("k/7", "7");

  auto events = Collect(&sink, 1, 7);
  ASSERT_EQ(events.size(), 7u);
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(events[i].kv().key(), "k/" + std::to_string(i + 1));
    EXPECT_EQ(events[i].kv().mod_revision(), old + 1 + i);
  }
  std::map<int64_t, std::vector<WatchResponse>> by_id;
  for (const auto& r : sink.Consumed()) by_id[r.watch_id()].push_back(r);
  for (const auto& r : by_id[1]) EXPECT_FALSE(r.canceled());
  for (int64_t id : {2, 3}) {
    ASSERT_EQ(by_id[id].size(), 1u) << "watch id " << id;
    EXPECT_TRUE(by_id[id][0].canceled());
    EXPECT_EQ(by_id[id][0].compact_revision(), second_compact);
    EXPECT_EQ(by_id[id][0].events_size(), 0);
  }
  EXPECT_EQ(hub_->stats().synced, 1u);
  EXPECT_EQ(hub_->stats().unsynced, 0u);
}

// Random batches of writes, compactions (often to the latest revision), hub
// pauses and new live watchers: every watcher, synced from its creation,
// gets exactly the writes of its keys from its start on, in order, and is
// never canceled, whatever the compactions did.
TEST_F(WatchHubTest, RandomCompactionsNeverCostSyncedWatchersAnEvent) {
  WatchHubOptions options;
  options.max_events_per_round = 3;
  StartHub(options);
  std::mt19937 rng(7);
  struct Write {
    int64_t rev;
    std::string key;
    std::string value;
  };
  std::vector<Write> writes;
  TestSink& sink = NewSink();
  std::vector<WatchSpec> watchers;
  bool paused = false;
  for (int step = 0; step < 400; ++step) {
    const int op = static_cast<int>(rng() % 10);
    if (op < 5) {
      auto w = store_->Write();
      ASSERT_TRUE(w.ok());
      const int revisions = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < revisions; ++i) {
        const std::string key = "k" + std::to_string(rng() % 4);
        const std::string value = std::to_string(step) + "." + std::to_string(i);
        (*w)->BeginRevision();
        ASSERT_TRUE((*w)->Put(key, value, 0).ok());
        (*w)->EndRevision();
        writes.push_back({(*w)->Rev(), key, value});
      }
      ASSERT_TRUE((*w)->Commit().ok());
      hub_->Notify(store_->CurrentRevision());
    } else if (op < 7) {
      const int64_t current = store_->CurrentRevision();
      const int64_t compacted = store_->CompactRevision();
      if (current <= compacted) continue;
      const int64_t rev =
          rng() % 2 ? current : compacted + 1 + static_cast<int64_t>(rng() % (current - compacted));
      CompactAsApplier(rev);
    } else if (op < 8) {
      paused = !paused;
      if (paused) {
        scheduler_.Hold();
      } else {
        scheduler_.Release(hub_.get());
      }
    } else if (watchers.size() < 20) {
      WatchSpec spec =
          rng() % 2 ? Spec("k" + std::to_string(rng() % 4), "", 0, 0) : Spec("k", "l", 0, 0);
      spec.start_revision = store_->CurrentRevision() + 1;
      spec.watch_id = static_cast<int64_t>(watchers.size());
      Add(&sink, spec);
      watchers.push_back(spec);
    }
  }
  if (paused) scheduler_.Release(hub_.get());
  std::vector<std::vector<const Write*>> want(watchers.size());
  size_t want_total = 0;
  for (size_t i = 0; i < watchers.size(); ++i) {
    const WatchSpec& spec = watchers[i];
    for (const Write& w : writes) {
      const bool match = spec.range_end.empty() ? w.key == spec.key : w.key.starts_with(spec.key);
      if (match && w.rev >= spec.start_revision) want[i].push_back(&w);
    }
    want_total += want[i].size();
  }
  auto total = [&] {
    sink.Drain(hub_.get());
    size_t n = 0;
    for (const auto& r : sink.Consumed()) n += r.events_size();
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return total() >= want_total; }));
  Settle();
  EXPECT_EQ(total(), want_total);
  for (const auto& r : sink.Consumed()) EXPECT_FALSE(r.canceled()) << r.watch_id();
  for (size_t i = 0; i < watchers.size(); ++i) {
    auto got = EventsOf(sink.Consumed(), static_cast<int64_t>(i));
    ASSERT_EQ(got.size(), want[i].size()) << "watcher " << i;
    for (size_t j = 0; j < got.size(); ++j) {
      EXPECT_EQ(got[j].kv().mod_revision(), want[i][j]->rev) << "watcher " << i;
      EXPECT_EQ(got[j].kv().key(), want[i][j]->key);
      EXPECT_EQ(got[j].kv().value(), want[i][j]->value);
    }
  }
}

TEST_F(WatchHubTest, SlowWatcherCatchesUpWithoutBlockingOthers) {
  WatchHubOptions options;
  options.max_revisions_per_catchup = 7;  // Several catch-up batches.
  StartHub(options);
  TestSink& slow = NewSink(2);
  TestSink& fast = NewSink();
  const int64_t start = store_->CurrentRevision() + 1;
  Add(&slow, Spec("k", "", start, 1));
  Add(&fast, Spec("k", "", start, 2));
  constexpr int kWrites = 200;
  for (int i = 0; i < kWrites; ++i) Put("k", std::to_string(i));
  // The fast watcher gets everything while the slow one's sink stays full.
  auto fast_events = Collect(&fast, 2, kWrites);
  ASSERT_EQ(fast_events.size(), static_cast<size_t>(kWrites));
  EXPECT_GT(slow.refused(), 0u);
  EXPECT_EQ(hub_->stats().unsynced, 1u);
  // Draining slowly, the slow one gets every event once, in order.
  auto slow_events = Collect(&slow, 1, kWrites);
  ASSERT_EQ(slow_events.size(), static_cast<size_t>(kWrites));
  for (int i = 0; i < kWrites; ++i) {
    EXPECT_EQ(slow_events[i].kv().value(), std::to_string(i));
    EXPECT_EQ(slow_events[i].kv().mod_revision(), start + i);
  }
  ASSERT_TRUE(WaitFor([&] { return hub_->stats().synced == 2; }));
}

TEST_F(WatchHubTest, TenThousandWatchersOnOneSinkEachGetEveryEventOnce) {
  StartHub();
  TestSink& sink = NewSink(1024);
  constexpr int kWatchers = 10000;
  constexpr int kWrites = 3;
  const int64_t start = store_->CurrentRevision() + 1;
  for (int i = 0; i < kWatchers; ++i) {
    // Half on one shared key, half on prefixes of their own.
    if (i % 2 == 0) {
      Add(&sink, Spec("shared", "", start, i));
    } else {
      std::string p = "own/" + std::to_string(i) + "/";
      Add(&sink, Spec(p, p.substr(0, p.size() - 1) + "0", start, i));
    }
  }
  for (int w = 0; w < kWrites; ++w) {
    std::vector<std::pair<std::string, std::string>> puts{{"shared", std::to_string(w)}};
    for (int i = 1; i < kWatchers; i += 2) {
      puts.emplace_back("own/" + std::to_string(i) + "/x", std::to_string(w));
    }
    Commit(puts);
  }
  std::map<int64_t, std::vector<std::string>> got;
  ASSERT_TRUE(WaitFor(
      [&] {
        sink.Drain(hub_.get());
        size_t total = 0;
        for (const auto& r : sink.Consumed()) total += r.events_size();
        return total >= static_cast<size_t>(kWatchers * kWrites);
      },
      240s));  // Generous: sanitizer builds are many times slower.
  for (const auto& r : sink.Consumed()) {
    for (const auto& e : r.events()) got[r.watch_id()].push_back(e.kv().value());
  }
  ASSERT_EQ(got.size(), static_cast<size_t>(kWatchers));
  const std::vector<std::string> want{"0", "1", "2"};
  for (const auto& [id, values] : got) ASSERT_EQ(values, want) << "watcher " << id;
}

// Random histories, random ranges and start revisions, sinks of random
// capacity drained at random: each watcher's events must equal the store's
// change log filtered by its range from its start revision. With `hold`, writes
// go into a write transaction held open as the apply thread holds batches
// back (OfferHeld after each), committed at random moments, and a watcher
// is added with the held writes committed first only half the time (the
// server always commits them first).
void WatchHubTest::RunRandomHistory(bool hold) {
  WatchHubOptions options;
  options.max_revisions_per_catchup = 5;
  options.max_events_per_round = 8;
  StartHub(options);
  std::mt19937 rng(42);
  auto key = [&] { return std::string(1, static_cast<char>('a' + rng() % 6)); };
  std::vector<TestSink*> sinks;
  for (int i = 0; i < 4; ++i) sinks.push_back(&NewSink(1 + rng() % 4));
  struct Expect {
    TestSink* sink;
    WatchSpec spec;
  };
  std::vector<Expect> watchers;
  std::unique_ptr<mvcc::WriteTxn> held;
  auto commit_held = [&] {
    if (!held) return;
    ASSERT_TRUE(held->Commit().ok());
    held.reset();
    hub_->Notify(store_->CurrentRevision());
  };
  for (int step = 0; step < 300; ++step) {
    int op = static_cast<int>(rng() % 10);
    if (op < 6) {
      std::vector<std::pair<std::string, std::string>> puts;
      int n = 1 + static_cast<int>(rng() % 3);
      for (int j = 0; j < n; ++j) puts.emplace_back(key(), std::to_string(step));
      std::vector<std::string> dels;
      if (rng() % 3 == 0) dels.push_back(key());
      // Duplicate keys in one revision are not what etcd produces.
      std::sort(puts.begin(), puts.end());
      puts.erase(std::unique(puts.begin(), puts.end(),
                             [](auto& x, auto& y) { return x.first == y.first; }),
                 puts.end());
      for (auto it = dels.begin(); it != dels.end();) {
        bool clash = false;
        for (auto& p : puts) clash = clash || p.first == *it;
        it = clash ? dels.erase(it) : it + 1;
      }
      if (!hold) {
        Commit(puts, dels);
        continue;
      }
      if (!held) {
        auto w = store_->Write();
        ASSERT_TRUE(w.ok());
        held = std::move(*w);
      }
      const int64_t from = held->Rev() + 1;
      held->BeginRevision();
      for (const auto& [k, v] : puts) ASSERT_TRUE(held->Put(k, v, 0).ok());
      for (const auto& k : dels) ASSERT_TRUE(held->DeleteRange(k, "").ok());
      held->EndRevision();
      hub_->OfferHeld(*held, from);
      if (rng() % 8 == 0) commit_held();
    } else if (op < 8 && watchers.size() < 40) {
      if (rng() % 2 == 0) commit_held();
      const int64_t current = held ? held->Rev() : store_->CurrentRevision();
      std::string a = key(), b = key();
      if (a > b) std::swap(a, b);
      WatchSpec spec;
      spec.key = a;
      spec.range_end = rng() % 2 ? "" : (a == b ? std::string(1, '\0') : b);
      spec.start_revision = 1 + static_cast<int64_t>(rng() % current);
      spec.prev_kv = rng() % 2;
      spec.watch_id = static_cast<int64_t>(watchers.size());
      TestSink* sink = sinks[rng() % sinks.size()];
      Add(sink, spec);
      watchers.push_back({sink, spec});
    } else {
      sinks[rng() % sinks.size()]->Drain(hub_.get());
      // Let the hub dispatch what is held, so that watchers come while live
      // dispatch is past the store's last commit.
      if (hold && rng() % 2 == 0) {
        ASSERT_TRUE(scheduler_.WaitForQuietRound(hub_.get()));
      }
    }
  }
  commit_held();
  const int64_t final_rev = store_->CurrentRevision();
  auto read = store_->Read();
  ASSERT_TRUE(read.ok());
  size_t want_total = 0;
  std::vector<std::vector<mvccpb::Event>> want(watchers.size());
  for (size_t i = 0; i < watchers.size(); ++i) {
    const WatchSpec& s = watchers[i].spec;
    auto it = (*read)->Changes(s.start_revision, final_rev, s.prev_kv,
                               mvcc::KeyRange{s.key, s.range_end});
    ASSERT_TRUE(it.ok());
    for (; (*it)->Valid(); (*it)->Next()) want[i].push_back((*it)->event());
    want_total += want[i].size();
  }
  auto total = [&] {
    size_t n = 0;
    for (auto& s : sinks) {
      s->Drain(hub_.get());
      for (const auto& r : s->Consumed()) n += r.events_size();
    }
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return total() >= want_total; }, 60s));
  Settle();
  EXPECT_EQ(total(), want_total);
  for (size_t i = 0; i < watchers.size(); ++i) {
    auto got = EventsOf(watchers[i].sink->Consumed(), static_cast<int64_t>(i));
    if (got.size() != want[i].size()) {
      std::string g, w;
      for (auto& e : got) g += std::to_string(e.kv().mod_revision()) + e.kv().key() + " ";
      for (auto& e : want[i]) w += std::to_string(e.kv().mod_revision()) + e.kv().key() + " ";
      ADD_FAILURE() << "spec " << watchers[i].spec.key << ".." << watchers[i].spec.range_end.size()
                    << " from " << watchers[i].spec.start_revision << "\ngot  " << g << "\nwant "
                    << w;
    }
    ASSERT_EQ(got.size(), want[i].size()) << "watcher " << i;
    for (size_t j = 0; j < got.size(); ++j) {
      EXPECT_EQ(got[j].SerializeAsString(), want[i][j].SerializeAsString())
          << "watcher " << i << " event " << j;
    }
  }
}

TEST_F(WatchHubTest, RandomHistoriesMatchTheChangeLog) { RunRandomHistory(/*hold=*/false); }

TEST_F(WatchHubTest, RandomHistoriesWithHeldWritesMatchTheChangeLog) {
  RunRandomHistory(/*hold=*/true);
}

TEST_F(WatchHubTest, RemovedWatcherGetsNothingMore) {
  StartHub();
  TestSink& sink = NewSink();
  auto id = Add(&sink, Spec("a", "", store_->CurrentRevision() + 1, 1));
  Put("a", "1");
  ASSERT_EQ(Collect(&sink, 1, 1).size(), 1u);
  hub_->Remove(id);
  hub_->Remove(id);  // Unknown ids are ignored.
  const int64_t unwatched = Put("a", "2");
  Settle();
  EXPECT_GE(hub_->stats().synced_revision, unwatched);
  EXPECT_EQ(EventsOf(sink.Consumed(), 1).size(), 1u);
  EXPECT_EQ(hub_->stats().synced, 0u);
}

// The synced index keeps a key's watchers in a vector and removes by moving
// the last one into the hole: removing from the front, the middle and the
// end must leave exactly the others, each getting the event once.
TEST_F(WatchHubTest, RemovingSomeWatchersOfAKeyLeavesExactlyTheOthers) {
  StartHub();
  TestSink& sink = NewSink();
  constexpr int kWatchers = 50;
  const int64_t start = store_->CurrentRevision() + 1;
  std::map<int64_t, WatchHub::WatcherId> ids;
  for (int i = 0; i < kWatchers; ++i) ids[i] = Add(&sink, Spec("k", "", start, i));
  std::set<int64_t> kept;
  for (int i = 0; i < kWatchers; ++i) {
    if (i == 0 || i == kWatchers - 1 || i % 3 == 1) {
      hub_->Remove(ids[i]);
    } else {
      kept.insert(i);
    }
  }
  Put("k", "v");
  Settle();
  std::map<int64_t, int> got;
  for (const auto& r : sink.Consumed()) got[r.watch_id()] += r.events_size();
  std::set<int64_t> got_ids;
  for (const auto& [id, n] : got) {
    EXPECT_EQ(n, 1) << "watcher " << id;
    got_ids.insert(id);
  }
  EXPECT_EQ(got_ids, kept);
  EXPECT_EQ(hub_->stats().synced, kept.size());
}

TEST_F(WatchHubTest, ReplacedStoreResumesEveryWatcherByRevision) {
  StartHub();
  TestSink& sink = NewSink();
  Add(&sink, Spec("a", "", store_->CurrentRevision() + 1, 1));
  Put("a", "1");
  ASSERT_EQ(Collect(&sink, 1, 1).size(), 1u);
  // The "snapshot": a copy of this store, which then gets more writes the
  // hub is not told about, as a member installing a leader's snapshot would.
  testing::TempDir other;
  ASSERT_TRUE(store_->CopyToFile(other.path() + "/data.mdb").ok());
  auto replacement = mvcc::KvStore::Open(other.path());
  ASSERT_TRUE(replacement.ok());
  std::unique_ptr<mvcc::KvStore> old = std::move(store_);
  store_ = std::move(*replacement);
  std::unique_ptr<WatchHub> hub = std::move(hub_);  // Commit() must not notify yet.
  Put("a", "2");
  Put("a", "3");
  hub_ = std::move(hub);
  hub_->OnStoreReplaced(store_.get());
  old.reset();
  Put("a", "4");
  auto events = Collect(&sink, 1, 4);
  ASSERT_EQ(events.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(events[i].kv().value(), std::to_string(i + 1));
}

// A revision's responses reach each stream in one batch, then one
// SendQueued starts its write, however the streams' watchers interleave:
// a stream is locked once per revision, not once per watcher.
TEST_F(WatchHubTest, ARevisionReachesEachSinkInOneBatchThenOneSend) {
  StartHub();
  TestSink& a = NewSink();
  TestSink& b = NewSink();
  const int64_t start = store_->CurrentRevision() + 1;
  constexpr int kPerSink = 20;
  for (int i = 0; i < kPerSink; ++i) {
    Add(&a, Spec("k", "", start, 100 + i));
    Add(&b, Spec("k", "", start, 200 + i));
  }
  const int64_t rev = Put("k", "v");
  for (int i = 0; i < kPerSink; ++i) {
    auto got_a = Collect(&a, 100 + i, 1);
    auto got_b = Collect(&b, 200 + i, 1);
    ASSERT_EQ(got_a.size(), 1u);
    ASSERT_EQ(got_b.size(), 1u);
    EXPECT_EQ(got_a[0].kv().mod_revision(), rev);
    EXPECT_EQ(got_b[0].kv().mod_revision(), rev);
  }
  // The events arrive with the batch; the hub calls SendQueued right after,
  // on its own thread, so wait until it has before reading the calls.
  const std::vector<std::string> want = {"batch " + std::to_string(kPerSink), "send"};
  EXPECT_TRUE(WaitFor([&] { return a.Calls().size() >= 2 && b.Calls().size() >= 2; }));
  EXPECT_EQ(a.Calls(), want);
  EXPECT_EQ(b.Calls(), want);
}

// A stream that fills up within a revision's batch takes the responses
// that fit; the watchers behind get the revision later, from the store.
TEST_F(WatchHubTest, ABatchThatFindsTheSinkFullLeavesTheRestToCatchUp) {
  StartHub();
  TestSink& sink = NewSink(/*capacity=*/3);
  const int64_t start = store_->CurrentRevision() + 1;
  for (int i = 0; i < 6; ++i) Add(&sink, Spec("k", "", start, 10 + i));
  const int64_t rev = Put("k", "v");
  for (int i = 0; i < 6; ++i) {
    auto got = Collect(&sink, 10 + i, 1);
    ASSERT_EQ(got.size(), 1u) << "watch " << 10 + i;
    EXPECT_EQ(got[0].kv().mod_revision(), rev);
  }
  EXPECT_GE(sink.refused(), 1u);
}

// A pile that finds the sink full: the watchers it refused resume at their
// first revision not sent, so each still gets every revision once, in order.
TEST_F(WatchHubTest, APileThatFindsTheSinkFullIsCaughtUpWhole) {
  StartHub();
  TestSink& sink = NewSink(/*capacity=*/3);
  const int64_t start = store_->CurrentRevision() + 1;
  for (int i = 0; i < 6; ++i) Add(&sink, Spec("k", "", start, 10 + i));
  Settle();
  scheduler_.Hold();
  std::vector<int64_t> revs;
  for (int i = 0; i < 4; ++i) revs.push_back(Put("k", std::to_string(i)));
  Put("x", "y");
  scheduler_.Release(hub_.get());
  for (int w = 0; w < 6; ++w) {
    const auto got = Collect(&sink, 10 + w, revs.size());
    ASSERT_EQ(got.size(), revs.size()) << "watch " << 10 + w;
    for (size_t i = 0; i < revs.size(); ++i) EXPECT_EQ(got[i].kv().mod_revision(), revs[i]);
  }
  EXPECT_GE(sink.refused(), 1u);
  Settle();
  for (int w = 0; w < 6; ++w) EXPECT_EQ(EventsOf(sink.Consumed(), 10 + w).size(), revs.size());
}

// Progress notifications go, at the end of each interval, to the watchers
// that asked for them and were sent nothing in it; the interval is measured
// on the hub's clock (here the test's), so "not yet" is checked exactly.
TEST_F(WatchHubTest, ProgressNotifyGoesToQuietWatchersAtEachInterval) {
  WatchHubOptions options;
  options.progress_notify_interval = 10s;
  StartHub(options);
  TestSink& sink = NewSink();
  const int64_t rev = Put("other", "x");
  WatchSpec quiet = Spec("a", "", rev + 1, 3);
  quiet.progress_notify = true;
  Add(&sink, quiet);
  WatchSpec busy = Spec("b", "", rev + 1, 4);
  busy.progress_notify = true;
  Add(&sink, busy);
  Add(&sink, Spec("a", "", rev + 1, 5));  // Did not ask.

  AdvanceClock(9s);
  Settle();
  EXPECT_TRUE(sink.Consumed().empty()) << "progress before the interval ended";

  const int64_t busy_rev = Put("b", "1");
  // Delivered within the interval: without this a round already running
  // could read the store before the put, see the clock pass the interval's
  // end, and rightly send "busy" a progress notification (at the revision
  // before its event) too.
  Settle();
  AdvanceClock(1s);
  Settle();
  auto rs = sink.Consumed();
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].watch_id(), 4);  // The event, not a progress notification.
  ASSERT_EQ(rs[0].events_size(), 1);
  EXPECT_EQ(rs[0].events(0).kv().mod_revision(), busy_rev);
  EXPECT_EQ(rs[1].watch_id(), 3);
  EXPECT_EQ(rs[1].events_size(), 0);
  EXPECT_EQ(rs[1].header().revision(), busy_rev);

  // Next interval: both were quiet in it.
  AdvanceClock(10s);
  Settle();
  rs = sink.Consumed();
  ASSERT_EQ(rs.size(), 4u);
  std::set<int64_t> notified{rs[2].watch_id(), rs[3].watch_id()};
  EXPECT_EQ(notified, (std::set<int64_t>{3, 4}));
  for (size_t i = 2; i < 4; ++i) {
    EXPECT_EQ(rs[i].events_size(), 0);
    EXPECT_EQ(rs[i].header().revision(), busy_rev);
  }
}

// A progress request is answered at once when every watcher of the sink is
// synced, and only once they are when some are behind.
TEST_F(WatchHubTest, ProgressRequestWaitsForTheSinksWatchersToCatchUp) {
  const int64_t first = Put("a", "1");
  Put("a", "2");
  StartHub();
  TestSink& synced = NewSink();
  const int64_t rev = store_->CurrentRevision();
  Add(&synced, Spec("b", "", rev + 1, 1));
  hub_->RequestProgress(&synced);
  synced.Drain(hub_.get());
  auto rs = synced.Consumed();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].watch_id(), -1);
  EXPECT_EQ(rs[0].header().revision(), rev);

  TestSink& behind = NewSink();
  scheduler_.Hold();
  Add(&behind, Spec("a", "", first, 2));  // Unsynced until a round runs.
  hub_->RequestProgress(&behind);
  behind.Drain(hub_.get());
  EXPECT_TRUE(behind.Consumed().empty());
  scheduler_.Release(hub_.get());
  Settle();
  rs = behind.Consumed();
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].watch_id(), 2);
  EXPECT_EQ(rs[0].events_size(), 2);
  EXPECT_EQ(rs[1].watch_id(), -1);
  EXPECT_EQ(rs[1].header().revision(), rev);
}

TEST_F(WatchHubTest, StopTellsSinksAndRefusesNewWatchers) {
  StartHub();
  TestSink& sink = NewSink();
  Add(&sink, Spec("a", "", 1, 1));
  hub_->Stop();
  EXPECT_TRUE(sink.stopped());
  EXPECT_EQ(hub_->Add(&sink, Spec("a", "", 1, 2)).status().code(), Code::kStopped);
}

}  // namespace
}  // namespace etcdpp::watch

// The Watch service over gRPC: an in-process EtcdServer and ClientServer,
// driven by the generated client stubs as etcd's clients drive etcd.
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "api/client_server.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/etcd_server.h"
#include "support/free_port.h"
#include "unit/watch/test_round_scheduler.h"
#include "watch/watch_hub.h"

namespace etcdpp::api {
namespace {

using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;
using namespace std::chrono_literals;

bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds limit = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return pred();
}

using etcdpp::testing::FreePort;

// One client stream with a deadline, so a missing response fails the test
// instead of hanging it.
class Stream {
 public:
  Stream(etcdserverpb::Watch::Stub* stub, std::chrono::seconds deadline = 30s) {
    ctx_.set_deadline(std::chrono::system_clock::now() + deadline);
    rw_ = stub->Watch(&ctx_);
  }
  ~Stream() {
    ctx_.TryCancel();
    rw_->Finish().ok();
  }

  void Create(const std::string& key, const std::string& end = "", int64_t start = 0,
              int64_t watch_id = 0,
              std::function<void(etcdserverpb::WatchCreateRequest*)> more = {}) {
    WatchRequest r;
    auto* c = r.mutable_create_request();
    c->set_key(key);
    c->set_range_end(end);
    c->set_start_revision(start);
    c->set_watch_id(watch_id);
    if (more) more(c);
    ASSERT_TRUE(rw_->Write(r));
  }
  // Creates and reads the created response; returns the watch id.
  int64_t Watch(const std::string& key, const std::string& end = "", int64_t start = 0,
                std::function<void(etcdserverpb::WatchCreateRequest*)> more = {}) {
    Create(key, end, start, 0, std::move(more));
    WatchResponse r = Read();
    EXPECT_TRUE(r.created());
    EXPECT_FALSE(r.canceled()) << r.cancel_reason();
    return r.watch_id();
  }
  void Cancel(int64_t id) {
    WatchRequest r;
    r.mutable_cancel_request()->set_watch_id(id);
    ASSERT_TRUE(rw_->Write(r));
  }
  void RequestProgress() {
    WatchRequest r;
    r.mutable_progress_request();
    ASSERT_TRUE(rw_->Write(r));
  }
  WatchResponse Read() {
    WatchResponse r;
    EXPECT_TRUE(rw_->Read(&r)) << "stream ended";
    return r;
  }
  // Reads until `count` events arrived for `id`; responses of other
  // watchers are kept for their own Events() call.
  std::vector<mvccpb::Event> Events(int64_t id, size_t count) {
    std::vector<mvccpb::Event> out;
    for (auto it = others_.begin(); it != others_.end() && out.size() < count;) {
      if (it->watch_id() != id) {
        ++it;
        continue;
      }
      for (const auto& e : it->events()) out.push_back(e);
      it = others_.erase(it);
    }
    while (out.size() < count) {
      WatchResponse r;
      if (!rw_->Read(&r)) {
        ADD_FAILURE() << "stream ended after " << out.size() << " events";
        break;
      }
      if (r.watch_id() != id) {
        others_.push_back(r);
        continue;
      }
      for (const auto& e : r.events()) out.push_back(e);
    }
    return out;
  }
  // The next response of watcher `id`; others are kept as in Events().
  WatchResponse Next(int64_t id) {
    for (auto it = others_.begin(); it != others_.end(); ++it) {
      if (it->watch_id() != id) continue;
      WatchResponse r = std::move(*it);
      others_.erase(it);
      return r;
    }
    for (;;) {
      WatchResponse r;
      if (!rw_->Read(&r)) {
        ADD_FAILURE() << "stream ended";
        return r;
      }
      if (r.watch_id() == id) return r;
      others_.push_back(r);
    }
  }
  grpc::ClientReaderWriter<WatchRequest, WatchResponse>* rw() { return rw_.get(); }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<WatchRequest, WatchResponse>> rw_;
  std::deque<WatchResponse> others_;
};

class WatchServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() /
           ("etcdpp-watch-test-" + std::to_string(rd()) + std::to_string(rd()));
    options_.name = "m1";
    options_.data_dir = dir_.string();
    options_.initial_cluster = "m1=http://127.0.0.1:2380";
    options_.initial_advertise_peer_urls = {"http://127.0.0.1:2380"};
    options_.client_urls = {"http://127.0.0.1:2379"};
    options_.heartbeat_interval = 10ms;
    options_.election_timeout = 100ms;
    options_.watch_round_scheduler = &hub_rounds_;
    // Off by default; on here, where watches are created and compacted
    // right after answered writes (docs/durability.md).
    options_.answer_before_commit = true;
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (clients_) clients_->Shutdown(0);
    clients_.reset();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Start() {
    auto s = server::EtcdServer::Start(options_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    address_ = "127.0.0.1:" + std::to_string(FreePort());
    const std::string& address = address_;
    auto c = ClientServer::Start(server_.get(), {address});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    clients_ = std::move(*c);
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    kv_ = etcdserverpb::KV::NewStub(channel);
    watch_ = etcdserverpb::Watch::NewStub(channel);
    // The single member elects itself; the first put waits for that.
    Put("warmup", "x");
  }

  int64_t Put(const std::string& k, const std::string& v) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 10s);
      etcdserverpb::PutRequest req;
      req.set_key(k);
      req.set_value(v);
      etcdserverpb::PutResponse resp;
      grpc::Status st = kv_->Put(&ctx, req, &resp);
      if (st.ok()) return resp.header().revision();
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "put failed";
    return 0;
  }
  int64_t Delete(const std::string& k) {
    grpc::ClientContext ctx;
    etcdserverpb::DeleteRangeRequest req;
    req.set_key(k);
    etcdserverpb::DeleteRangeResponse resp;
    EXPECT_TRUE(kv_->DeleteRange(&ctx, req, &resp).ok());
    return resp.header().revision();
  }
  void Compact(int64_t rev) {
    grpc::ClientContext ctx;
    etcdserverpb::CompactionRequest req;
    req.set_revision(rev);
    etcdserverpb::CompactionResponse resp;
    ASSERT_TRUE(kv_->Compact(&ctx, req, &resp).ok());
  }
  // A Watch stub on its own channel whose client takes 8 KiB of a stream at
  // a time (no BDP growth): with values of 1 KiB, while the client reads
  // nothing, a revision's thousand responses (1 MiB) cannot all leave the
  // stream's queue (gRPC itself buffers a few hundred KiB at most).
  std::unique_ptr<etcdserverpb::Watch::Stub> SlowReaderWatchStub() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8 * 1024);
    return etcdserverpb::Watch::NewStub(
        grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args));
  }

  std::filesystem::path dir_;
  std::string address_;  // The client port, once started.
  // Steers the server's watch hub; declared before the server it outlives.
  watch::TestRoundScheduler hub_rounds_;
  server::ServerOptions options_;
  std::unique_ptr<server::EtcdServer> server_;
  std::unique_ptr<ClientServer> clients_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch_;
};

TEST_F(WatchServiceTest, CreatedComesFirstThenEventsWithEtcdHeaders) {
  Start();
  Stream s(watch_.get());
  s.Create("a");
  WatchResponse created = s.Read();
  EXPECT_TRUE(created.created());
  EXPECT_EQ(created.watch_id(), 0);  // etcd numbers a stream's watchers from 0.
  const int64_t rev0 = created.header().revision();
  EXPECT_GE(rev0, 2);
  EXPECT_EQ(created.header().member_id(), server_->member_id());
  EXPECT_EQ(created.header().cluster_id(), server_->cluster_id());
  EXPECT_GE(created.header().raft_term(), 1u);
  int64_t r1 = Put("a", "1");
  Put("b", "x");
  int64_t r2 = Delete("a");
  // One response per revision, or both in one when the hub fell behind the
  // writes; either way each header revision covers its events.
  std::vector<mvccpb::Event> events;
  while (events.size() < 2) {
    WatchResponse e = s.Read();
    EXPECT_EQ(e.watch_id(), 0);
    ASSERT_GE(e.events_size(), 1);
    EXPECT_GE(e.header().revision(), e.events(e.events_size() - 1).kv().mod_revision());
    for (const auto& event : e.events()) events.push_back(event);
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kv().value(), "1");
  EXPECT_EQ(events[0].kv().create_revision(), r1);
  EXPECT_EQ(events[1].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(events[1].kv().mod_revision(), r2);
  // A second watcher on the same stream gets the next id.
  EXPECT_EQ(s.Watch("b"), 1);
}

TEST_F(WatchServiceTest, CreateErrorsAndCancel) {
  Start();
  Stream s(watch_.get());
  s.Create("a", "", 0, 7);
  WatchResponse ok = s.Read();
  EXPECT_EQ(ok.watch_id(), 7);
  s.Create("b", "", 0, 7);
  WatchResponse dup = s.Read();
  EXPECT_TRUE(dup.created());
  EXPECT_TRUE(dup.canceled());
  EXPECT_EQ(dup.watch_id(), -1);
  EXPECT_EQ(dup.cancel_reason(), "mvcc: duplicate watch ID provided on the WatchStream");
  s.Create("b", "a");
  WatchResponse empty = s.Read();
  EXPECT_TRUE(empty.canceled());
  EXPECT_EQ(empty.watch_id(), -1);
  EXPECT_EQ(empty.cancel_reason(), "mvcc: watcher range is empty");

  s.Cancel(7);
  WatchResponse canceled = s.Read();
  EXPECT_EQ(canceled.watch_id(), 7);
  EXPECT_TRUE(canceled.canceled());
  EXPECT_FALSE(canceled.created());
  // Canceling an unknown id answers nothing: the next response is the
  // progress response.
  s.Cancel(12345);
  Put("a", "after cancel");
  s.RequestProgress();
  WatchResponse progress = s.Read();
  EXPECT_EQ(progress.watch_id(), -1);
  EXPECT_EQ(progress.events_size(), 0);
  EXPECT_FALSE(progress.created() || progress.canceled());
}

TEST_F(WatchServiceTest, PrefixHistoryPrevKvAndFilters) {
  Start();
  int64_t r1 = Put("p/a", "1");
  Put("q", "x");
  Put("p/a", "2");
  Stream s(watch_.get());
  int64_t all = s.Watch("p/", "p0", r1, [](auto* c) { c->set_prev_kv(true); });
  auto history = s.Events(all, 2);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].kv().value(), "1");
  EXPECT_FALSE(history[0].has_prev_kv());
  EXPECT_EQ(history[1].prev_kv().value(), "1");
  int64_t no_put = s.Watch(
      "p/", "p0", 0, [](auto* c) { c->add_filters(etcdserverpb::WatchCreateRequest::NOPUT); });
  Put("p/b", "3");
  Delete("p/a");
  auto deletes = s.Events(no_put, 1);
  ASSERT_EQ(deletes.size(), 1u);
  EXPECT_EQ(deletes[0].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(deletes[0].kv().key(), "p/a");
  auto live = s.Events(all, 2);
  ASSERT_EQ(live.size(), 2u);
  EXPECT_EQ(live[1].prev_kv().value(), "2");  // prev_kv of a delete.
}

TEST_F(WatchServiceTest, EmptyKeyWithNulRangeEndWatchesEverything) {
  Start();
  Stream s(watch_.get());
  int64_t id = s.Watch("", std::string(1, '\0'));
  Put("a", "1");
  Put("zzz", "2");
  auto events = s.Events(id, 2);
  EXPECT_EQ(events[0].kv().key(), "a");
  EXPECT_EQ(events[1].kv().key(), "zzz");
}

TEST_F(WatchServiceTest, WatchFromCompactedRevisionIsCanceled) {
  Start();
  int64_t r1 = Put("a", "1");
  int64_t r2 = Put("a", "2");
  Compact(r2);
  Stream s(watch_.get());
  s.Create("a", "", r1);
  WatchResponse created = s.Read();
  EXPECT_TRUE(created.created());
  EXPECT_FALSE(created.canceled());
  WatchResponse compacted = s.Read();
  EXPECT_EQ(compacted.watch_id(), created.watch_id());
  EXPECT_TRUE(compacted.canceled());
  EXPECT_EQ(compacted.compact_revision(), r2);
}

// Writes and a compaction to their last revision, applied in one batch
// before the watch hub has read the writes (the hub is paused; the applier
// is held so that the writes and the compaction queue up behind it), must not
// cost a synced watcher any event nor cancel it (etcd delivers writes to
// synced watchers at write time). A watcher that was behind the compaction
// gets compact_revision.
class WatchCompactionTest : public WatchServiceTest {
 protected:
  // The apply thread is held in a linearizable read's callback, which runs
  // there (a proposal's completion may run on the raft loop), or in a
  // defragmentation's, which runs there after the store was swapped for
  // its copy.
  void CompactUndispatchedWrites(bool hold_in_defragmentation);
};

TEST_F(WatchCompactionTest, CompactionOfUndispatchedWritesKeepsSyncedWatchers) {
  CompactUndispatchedWrites(/*hold_in_defragmentation=*/false);
}

// A defragmentation swaps the store for a copy with the same history: the
// synced watchers stay synced through it, so the compaction right after
// costs them nothing either (it cancelled them when the swap made every
// watcher catch up from the copy).
TEST_F(WatchCompactionTest, CompactionRightAfterADefragmentationKeepsSyncedWatchers) {
  CompactUndispatchedWrites(/*hold_in_defragmentation=*/true);
}

void WatchCompactionTest::CompactUndispatchedWrites(bool hold_in_defragmentation) {
  Start();
  const int64_t old = Put("k/0", "old");
  watch::WatchHub* hub = server_->watch_hub();
  Stream s(watch_.get());
  const int64_t live = s.Watch("k/", "k0");
  ASSERT_TRUE(WaitUntil([&] { return hub->stats().synced_revision >= old; }));
  hub_rounds_.Hold();
  const int64_t behind = s.Watch("k/", "k0", old);

  // The callbacks share `state`, which outlives the test body if it fails
  // early.
  constexpr int kPuts = 5;
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool held = false;
    bool release = false;
    std::vector<Status> statuses;
    etcdserverpb::PutResponse responses[kPuts];
    etcdserverpb::CompactionResponse compact_response;
    void Release() {
      {
        std::lock_guard<std::mutex> lock(mu);
        release = true;
      }
      cv.notify_all();
    }
  };
  auto state = std::make_shared<State>();
  struct ReleaseOnExit {
    std::shared_ptr<State> state;
    ~ReleaseOnExit() { state->Release(); }
  } release_on_exit{state};
  auto hold = [state](const Status&) {
    std::unique_lock<std::mutex> lock(state->mu);
    state->held = true;
    state->cv.notify_all();
    state->cv.wait(lock, [&] { return state->release; });
  };
  if (hold_in_defragmentation) {
    server_->Defragment(hold);
  } else {
    server_->WaitLinearizable(hold);
  }
  {
    std::unique_lock<std::mutex> lock(state->mu);
    ASSERT_TRUE(state->cv.wait_for(lock, 30s, [&] { return state->held; }));
  }
  const uint64_t held_index = server_->applied_index();
  const int64_t base = old;
  auto record = [state](const Status& st) {
    std::lock_guard<std::mutex> lock(state->mu);
    state->statuses.push_back(st);
    state->cv.notify_all();
  };
  for (int i = 1; i <= kPuts; ++i) {
    internalpb::InternalRaftRequest put;
    put.mutable_put()->set_key("k/" + std::to_string(i));
    put.mutable_put()->set_value(std::to_string(i));
    server_->Propose(put, &state->responses[i - 1], record);
  }
  internalpb::InternalRaftRequest compact;
  compact.mutable_compaction()->set_revision(base + kPuts);
  server_->Propose(compact, &state->compact_response, record);
  ASSERT_TRUE(WaitUntil([&] { return server_->commit_index() >= held_index + kPuts + 1; }));
  state->Release();
  {
    std::unique_lock<std::mutex> lock(state->mu);
    ASSERT_TRUE(state->cv.wait_for(lock, 30s, [&] { return state->statuses.size() == kPuts + 1; }));
    for (const Status& st : state->statuses) EXPECT_TRUE(st.ok()) << st.ToString();
  }
  {
    // The compaction was answered; its commit may still be under way.
    std::promise<Status> committed;
    server_->WaitAnsweredWrites([&committed](const Status& st) { committed.set_value(st); });
    ASSERT_TRUE(committed.get_future().get().ok());
  }
  EXPECT_EQ(server_->store()->CompactRevision(), base + kPuts);
  hub_rounds_.Release(hub);
  Put("k/6", "6");

  // Every event once, in revision order; a stream that is behind may carry
  // several revisions in one response (docs/watch.md, coalescing).
  std::vector<mvccpb::Event> events;
  while (events.size() < static_cast<size_t>(kPuts + 1)) {
    WatchResponse r = s.Next(live);
    ASSERT_FALSE(r.canceled()) << "compact_revision " << r.compact_revision();
    ASSERT_GT(r.events_size(), 0);
    events.insert(events.end(), r.events().begin(), r.events().end());
  }
  ASSERT_EQ(events.size(), static_cast<size_t>(kPuts + 1));
  for (int i = 1; i <= kPuts + 1; ++i) {
    const mvccpb::Event& e = events[static_cast<size_t>(i - 1)];
    EXPECT_EQ(e.kv().key(), "k/" + std::to_string(i));
    EXPECT_EQ(e.kv().value(), std::to_string(i));
    EXPECT_EQ(e.kv().mod_revision(), base + i);
  }
  WatchResponse compacted = s.Next(behind);
  EXPECT_TRUE(compacted.canceled());
  EXPECT_EQ(compacted.compact_revision(), base + kPuts);
  EXPECT_EQ(compacted.events_size(), 0);
}

TEST_F(WatchServiceTest, LargeCatchUpIsFragmentedWhenAsked) {
  options_.max_request_bytes = 8 * 1024;
  Start();
  const std::string value(1000, 'v');
  int64_t first = 0;
  for (int i = 0; i < 20; ++i) {
    int64_t r = Put(fmt::format("f{}", i), value);
    if (i == 0) first = r;
  }
  Stream s(watch_.get());
  int64_t id = s.Watch("f", "g", first, [](auto* c) { c->set_fragment(true); });
  size_t events = 0;
  int fragments = 0;
  while (events < 20) {
    WatchResponse r = s.Read();
    ASSERT_EQ(r.watch_id(), id);
    events += r.events_size();
    if (r.fragment()) {
      fragments++;
      EXPECT_LT(r.ByteSizeLong(), options_.max_request_bytes);
    } else {
      EXPECT_EQ(events, 20u);  // Only the last part is not a fragment.
    }
  }
  EXPECT_GE(fragments, 2);
}

TEST_F(WatchServiceTest, ProgressNotifyAtTheConfiguredInterval) {
  options_.watch_progress_notify_interval = 100ms;
  Start();
  Stream s(watch_.get());
  int64_t id = s.Watch("quiet", "", 0, [](auto* c) { c->set_progress_notify(true); });
  int64_t rev = Put("other", "x");
  WatchResponse r = s.Read();
  EXPECT_EQ(r.watch_id(), id);
  EXPECT_EQ(r.events_size(), 0);
  EXPECT_GE(r.header().revision(), rev - 1);
}

TEST_F(WatchServiceTest, ManyStreamsAndCancelStopsEvents) {
  Start();
  Stream s1(watch_.get());
  Stream s2(watch_.get());
  int64_t a = s1.Watch("k");
  int64_t b = s2.Watch("k");
  Put("k", "1");
  EXPECT_EQ(s1.Events(a, 1)[0].kv().value(), "1");
  EXPECT_EQ(s2.Events(b, 1)[0].kv().value(), "1");
  s1.Cancel(a);
  EXPECT_TRUE(s1.Read().canceled());
  Put("k", "2");
  EXPECT_EQ(s2.Events(b, 1)[0].kv().value(), "2");
  s1.RequestProgress();
  WatchResponse next = s1.Read();  // Not an event of the canceled watcher.
  EXPECT_EQ(next.watch_id(), -1);
}

// A client that stops reading must not hold up writers; once it reads again
// it gets every event, in order, exactly once.
TEST_F(WatchServiceTest, SlowReaderDoesNotBlockWritersAndCatchesUp) {
  Start();
  Stream slow(watch_.get(), 60s);
  int64_t id = slow.Watch("big");
  const std::string value(16 * 1024, 'x');
  constexpr int kPuts = 1500;  // ~24 MiB of events: more than a stream buffers.
  int64_t first = 0;
  for (int i = 0; i < kPuts; ++i) {
    int64_t r = Put("big", value + std::to_string(i));
    if (i == 0) first = r;
  }
  auto events = slow.Events(id, kPuts);
  ASSERT_EQ(events.size(), static_cast<size_t>(kPuts));
  for (int i = 0; i < kPuts; ++i) {
    ASSERT_EQ(events[i].kv().mod_revision(), first + i);
    ASSERT_EQ(events[i].kv().value(), value + std::to_string(i));
  }
}

TEST_F(WatchServiceTest, StreamBehindGetsRevisionsCoalescedInOrderAndProgressIsNotOvertaken) {
  // Puts answered after their commit, so a round sees every put made before it.
  options_.answer_before_commit = false;
  Start();
  watch::WatchHub* hub = server_->watch_hub();
  auto stub = SlowReaderWatchStub();
  Stream s(stub.get(), 60s);
  const std::string value(1024, 'v');
  constexpr int kWatchers = 1000;
  for (int i = 0; i < kWatchers; ++i) s.Create("fan");
  for (int i = 0; i < kWatchers; ++i) ASSERT_TRUE(s.Read().created());
  std::vector<int64_t> revs;
  const std::vector<std::string> want_values = {value + "1", value + "2", value + "3", value + "4"};
  // Two puts at a time behind held rounds: the hub queues both revisions in
  // one round, the second while the first still waits in the stream.
  hub_rounds_.Hold();
  revs.push_back(Put("fan", want_values[0]));
  revs.push_back(Put("fan", want_values[1]));
  hub_rounds_.Release(hub);
  s.RequestProgress();
  hub_rounds_.Hold();
  revs.push_back(Put("fan", want_values[2]));
  revs.push_back(Put("fan", want_values[3]));
  hub_rounds_.Release(hub);

  std::map<int64_t, std::vector<mvccpb::Event>> got;
  size_t events = 0;
  size_t event_responses = 0;
  bool progress_seen = false;
  while (events < static_cast<size_t>(kWatchers) * want_values.size() || !progress_seen) {
    WatchResponse r = s.Read();
    if (r.watch_id() == -1) {
      // Progress: everything up to its revision was sent before it, nothing after.
      ASSERT_FALSE(progress_seen);
      progress_seen = true;
      const int64_t progress_rev = r.header().revision();
      for (int64_t id = 0; id < kWatchers; ++id) {
        size_t want = 0;
        for (int64_t rev : revs) want += rev <= progress_rev ? 1 : 0;
        ASSERT_EQ(got[id].size(), want) << "watch id " << id << ", progress at " << progress_rev;
      }
      continue;
    }
    ASSERT_GT(r.events_size(), 0);
    event_responses++;
    events += static_cast<size_t>(r.events_size());
    // The header is at least as new as every event it carries.
    EXPECT_GE(r.header().revision(), r.events(r.events_size() - 1).kv().mod_revision());
    for (const auto& e : r.events()) got[r.watch_id()].push_back(e);
  }
  ASSERT_EQ(got.size(), static_cast<size_t>(kWatchers));
  for (const auto& [id, list] : got) {
    ASSERT_EQ(list.size(), want_values.size()) << "watch id " << id;
    for (size_t i = 0; i < list.size(); ++i) {
      EXPECT_EQ(list[i].kv().value(), want_values[i]) << "watch id " << id;
      EXPECT_EQ(list[i].kv().mod_revision(), revs[i]) << "watch id " << id;
    }
  }
  // The queued responses took the later revisions: about one message per
  // watcher for each pair of puts, and for the pair the progress report
  // split, two; plus those gRPC took before the pair's second revision came.
  // Without coalescing: one per watcher and revision (4000).
  EXPECT_LE(event_responses, static_cast<size_t>(kWatchers) * 3);
}

// Watchers whose ids the client chose, far beyond the ones a stream numbers
// itself, coalesce in the stream's queue as numbered ones do: revisions
// written one round at a time while the client reads nothing merge into
// the responses still queued, each watcher's in order.
TEST_F(WatchServiceTest, ClientChosenLargeIdsCoalesceLikeNumberedOnes) {
  options_.answer_before_commit = false;
  Start();
  auto stub = SlowReaderWatchStub();
  Stream s(stub.get(), 60s);
  const std::string value(1024, 'v');
  constexpr int kWatchers = 1000;
  constexpr int64_t kFirstId = int64_t{1} << 40;
  for (int i = 0; i < kWatchers; ++i) s.Create("fan", "", 0, kFirstId + 7 * i);
  for (int i = 0; i < kWatchers; ++i) ASSERT_TRUE(s.Read().created());
  std::vector<int64_t> revs;
  // Each put waits for its commit and the hub sends each revision alone:
  // what merges, merges in the stream.
  for (int i = 0; i < 4; ++i) revs.push_back(Put("fan", value + std::to_string(i)));
  std::map<int64_t, std::vector<mvccpb::Event>> got;
  size_t events = 0;
  size_t event_responses = 0;
  while (events < static_cast<size_t>(kWatchers) * revs.size()) {
    WatchResponse r = s.Read();
    ASSERT_GT(r.events_size(), 0);
    event_responses++;
    events += static_cast<size_t>(r.events_size());
    for (const auto& e : r.events()) got[r.watch_id()].push_back(e);
  }
  ASSERT_EQ(got.size(), static_cast<size_t>(kWatchers));
  for (const auto& [id, list] : got) {
    ASSERT_GE(id, kFirstId);
    ASSERT_EQ(list.size(), revs.size()) << "watch id " << id;
    for (size_t i = 0; i < list.size(); ++i) {
      EXPECT_EQ(list[i].kv().mod_revision(), revs[i]) << "watch id " << id;
    }
  }
  // Without coalescing: one response per watcher and revision.
  EXPECT_LT(event_responses, static_cast<size_t>(kWatchers) * revs.size());
}

TEST_F(WatchServiceTest, TenThousandWatchersOnOneStream) {
  Start();
  Stream s(watch_.get(), 120s);
  constexpr int kWatchers = 10000;
  // Requests and responses flow concurrently, as a client would pipeline them.
  std::thread writer([&] {
    for (int i = 0; i < kWatchers; ++i) {
      WatchRequest r;
      r.mutable_create_request()->set_key(i % 2 ? "shared" : "own/" + std::to_string(i));
      ASSERT_TRUE(s.rw()->Write(r));
    }
  });
  std::map<int64_t, int> created;
  for (int i = 0; i < kWatchers; ++i) {
    WatchResponse r = s.Read();
    ASSERT_TRUE(r.created());
    created[r.watch_id()]++;
  }
  writer.join();
  ASSERT_EQ(created.size(), static_cast<size_t>(kWatchers));
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) Put("shared", std::to_string(round));
  std::map<int64_t, std::vector<std::string>> got;
  size_t total = 0;
  while (total < static_cast<size_t>(kWatchers / 2 * kRounds)) {
    WatchResponse r = s.Read();
    for (const auto& e : r.events()) got[r.watch_id()].push_back(e.kv().value());
    total += r.events_size();
    if (r.events_size() == 0) break;
  }
  ASSERT_EQ(got.size(), static_cast<size_t>(kWatchers / 2));
  for (const auto& [id, values] : got) {
    ASSERT_EQ(values, (std::vector<std::string>{"0", "1", "2"})) << "watch id " << id;
  }
}

TEST_F(WatchServiceTest, ServerStopEndsStreams) {
  Start();
  Stream s(watch_.get());
  s.Watch("a");
  server_->Stop();
  WatchResponse r;
  EXPECT_FALSE(s.rw()->Read(&r));
}

}  // namespace
}  // namespace etcdpp::api

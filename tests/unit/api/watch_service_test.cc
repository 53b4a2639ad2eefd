// The Watch service against a fake member (fake_member.h: a store, no Raft)
// and a real WatchHub over that store, on an in-process gRPC server: the
// responses etcd's clients read for create, cancel, progress, fragments and
// compacted starts, and the errors of refused creates and streams.
#include "api/watch_service.h"

#include <gtest/gtest.h>

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/leader_monitor.h"
#include "unit/api/fake_member.h"
#include "unit/api/monitored_leader.h"
#include "watch/watch_hub.h"

namespace etcdpp::api {
namespace {

using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;
using testing::Context;
using testing::FakeMember;
using testing::InProcessServer;
using testing::ScriptedLeaderMonitor;
using Stream = grpc::ClientReaderWriter<WatchRequest, WatchResponse>;

class WatchServiceTest : public ::testing::Test {
 protected:
  WatchServiceTest()
      : hub_(member_.store().get()),
        service_(&member_, &hub_, monitor_.monitor()),
        server_(&service_),
        stub_(etcdserverpb::Watch::NewStub(server_.channel())) {}
  ~WatchServiceTest() override { hub_.Stop(); }

  // A write through the fake member, then the apply side's notice to the hub.
  int64_t Put(const std::string& key, const std::string& value) {
    const int64_t revision = member_.Put(key, value);
    hub_.Notify(revision);
    return revision;
  }
  void Compact(int64_t revision) {
    internalpb::InternalRaftRequest request;
    request.mutable_compaction()->set_revision(revision);
    etcdserverpb::CompactionResponse resp;
    Status outcome;
    member_.Propose(std::move(request), &resp, [&](const Status& st) { outcome = st; });
    ASSERT_TRUE(outcome.ok()) << outcome.ToString();
  }

  static bool Create(Stream* stream, etcdserverpb::WatchCreateRequest create) {
    WatchRequest req;
    *req.mutable_create_request() = std::move(create);
    return stream->Write(req);
  }
  static etcdserverpb::WatchCreateRequest On(const std::string& key, int64_t start_revision = 0) {
    etcdserverpb::WatchCreateRequest create;
    create.set_key(key);
    create.set_start_revision(start_revision);
    return create;
  }
  static WatchResponse Next(Stream* stream) {
    WatchResponse resp;
    EXPECT_TRUE(stream->Read(&resp));
    return resp;
  }

  ScriptedLeaderMonitor monitor_;  // outlives the service
  FakeMember member_;
  watch::WatchHub hub_;
  WatchService service_;
  InProcessServer server_;
  std::unique_ptr<etcdserverpb::Watch::Stub> stub_;
};

TEST_F(WatchServiceTest, CreateAnswersCreatedThenTheEventsOfItsKey) {
  auto ctx = Context();
  auto stream = stub_->Watch(ctx.get());
  ASSERT_TRUE(Create(stream.get(), On("a")));
  WatchResponse created = Next(stream.get());
  EXPECT_TRUE(created.created());
  EXPECT_EQ(created.watch_id(), 0);
  EXPECT_EQ(created.header().revision(), 1);
  EXPECT_EQ(created.header().member_id(), 0xaau);

  Put("b", "other");
  const int64_t rev = Put("a", "1");
  WatchResponse events = Next(stream.get());
  EXPECT_EQ(events.watch_id(), 0);
  ASSERT_EQ(events.events_size(), 1);
  EXPECT_EQ(events.events(0).type(), mvccpb::Event::PUT);
  EXPECT_EQ(events.events(0).kv().key(), "a");
  EXPECT_EQ(events.events(0).kv().value(), "1");
  EXPECT_EQ(events.events(0).kv().mod_revision(), rev);
  EXPECT_EQ(events.header().revision(), rev);
  ctx->TryCancel();
  (void)stream->Finish();
}

TEST_F(WatchServiceTest, ClientChosenIdsAndDuplicates) {
  auto ctx = Context();
  auto stream = stub_->Watch(ctx.get());
  auto first = On("a");
  first.set_watch_id(7);
  ASSERT_TRUE(Create(stream.get(), first));
  WatchResponse created = Next(stream.get());
  EXPECT_TRUE(created.created());
  EXPECT_EQ(created.watch_id(), 7);

  ASSERT_TRUE(Create(stream.get(), first));
  WatchResponse refused = Next(stream.get());
  EXPECT_TRUE(refused.created());
  EXPECT_TRUE(refused.canceled());
  EXPECT_EQ(refused.watch_id(), -1);
  EXPECT_EQ(refused.cancel_reason(), "mvcc: duplicate watch ID provided on the WatchStream");
  ctx->TryCancel();
  (void)stream->Finish();
}

TEST_F(WatchServiceTest, EmptyRangeIsRefusedInTheCreatedResponse) {
  auto ctx = Context();
  auto stream = stub_->Watch(ctx.get());
  auto backwards = On("b");
  backwards.set_range_end("a");
  ASSERT_TRUE(Create(stream.get(), backwards));
  WatchResponse refused = Next(stream.get());
  EXPECT_TRUE(refused.created());
  EXPECT_TRUE(refused.canceled());
  EXPECT_EQ(refused.watch_id(), -1);
  EXPECT_EQ(refused.cancel_reason(), "mvcc: watcher range is empty");
  // The stream itself goes on.
  ASSERT_TRUE(Create(stream.get(), On("a")));
  EXPECT_TRUE(Next(stream.get()).created());
  ctx->TryCancel();
  (void)stream->Finish();
}

TEST_F(WatchServiceTest, CancelAnswersOnceAndStopsTheEvents) {
  auto ctx = Context();
  auto stream = stub_->Watch(ctx.get());
  ASSERT_TRUE(Create(stream.get(), On("a")));
  const int64_t id = Next(stream.get()).watch_id();
  Put("a", "1");
  ASSERT_EQ(Next(stream.get()).events_size(), 1);

  WatchRequest cancel;
  cancel.mutable_cancel_request()->set_watch_id(id);
  ASSERT_TRUE(stream->Write(cancel));
  WatchResponse canceled = Next(stream.get());
  EXPECT_TRUE(canceled.canceled());
  EXPECT_EQ(canceled.watch_id(), id);
  EXPECT_EQ(canceled.header().revision(), 2);

  // Neither a later write nor a second cancel of the same id answers; the
  // progress response is the next thing on the stream.
  const int64_t rev = Put("a", "2");
  ASSERT_TRUE(stream->Write(cancel));
  WatchRequest progress;
  progress.mutable_progress_request();
  ASSERT_TRUE(stream->Write(progress));
  WatchResponse next = Next(stream.get());
  EXPECT_EQ(next.watch_id(), -1);
  EXPECT_FALSE(next.canceled());
  EXPECT_EQ(next.events_size(), 0);
  // The hub may not have dispatched the later write yet.
  EXPECT_GE(next.header().revision(), 2);
  EXPECT_LE(next.header().revision(), rev);
  ctx->TryCancel();
  (void)stream->Finish();
}

// A progress response with revision R promises the stream's watchers have
// been sent every change up to R: events before it are at or below R,
// events after it above R.
TEST_F(WatchServiceTest, ProgressResponseSplitsTheEventsAtItsRevision) {
  auto ctx = Context();
  auto stream = stub_->Watch(ctx.get());
  ASSERT_TRUE(Create(stream.get(), On("a")));
  const int64_t created = Next(stream.get()).header().revision();
  Put("a", "1");
  Put("z", "elsewhere");
  const int64_t last = Put("a", "2");
  WatchRequest progress;
  progress.mutable_progress_request();
  ASSERT_TRUE(stream->Write(progress));

  std::optional<int64_t> progress_revision;
  std::vector<int64_t> before, after;
  while (!progress_revision || before.size() + after.size() < 2) {
    WatchResponse resp = Next(stream.get());
    if (resp.watch_id() == -1) {
      ASSERT_FALSE(progress_revision) << "a second progress response";
      EXPECT_EQ(resp.events_size(), 0);
      progress_revision = resp.header().revision();
      continue;
    }
    ASSERT_GT(resp.events_size(), 0);
    for (const auto& event : resp.events()) {
      (progress_revision ? after : before).push_back(event.kv().mod_revision());
    }
  }
  EXPECT_GE(*progress_revision, created);
  EXPECT_LE(*progress_revision, last);
  for (int64_t rev : before) EXPECT_LE(rev, *progress_revision);
  for (int64_t rev : after) EXPECT_GT(rev, *progress_revision);
  ctx->TryCancel();
  (void)stream->Finish();
}

TEST_F(WatchServiceTest, StartBeforeTheCompactedRevisionIsCanceledWithIt) {
  for (int i = 0; i < 5; ++i) Put("a", std::to_string(i));  // revisions 2..6
  Compact(4);
  auto ctx = Context();
  auto stream = stub_->Watch(ctx.get());
  ASSERT_TRUE(Create(stream.get(), On("a", /*start_revision=*/2)));
  WatchResponse created = Next(stream.get());
  EXPECT_TRUE(created.created());
  WatchResponse compacted = Next(stream.get());
  EXPECT_EQ(compacted.watch_id(), created.watch_id());
  EXPECT_TRUE(compacted.canceled());
  EXPECT_EQ(compacted.compact_revision(), 4);
  EXPECT_EQ(compacted.events_size(), 0);

  // From the compacted revision on, history is still there.
  ASSERT_TRUE(Create(stream.get(), On("a", /*start_revision=*/5)));
  ASSERT_TRUE(Next(stream.get()).created());
  std::vector<std::string> values;
  while (values.size() < 2) {
    WatchResponse history = Next(stream.get());
    ASSERT_GT(history.events_size(), 0);
    for (const auto& event : history.events()) values.push_back(event.kv().value());
  }
  EXPECT_EQ(values, (std::vector<std::string>{"3", "4"}));
  ctx->TryCancel();
  (void)stream->Finish();
}

TEST_F(WatchServiceTest, LargeRevisionsAreFragmentedOnlyForWatchersThatAsked) {
  // One revision with three values of 600 KiB: over the member's request
  // limit (1.5 MiB) in one response.
  internalpb::InternalRaftRequest request;
  for (const char* key : {"f1", "f2", "f3"}) {
    auto* put = request.mutable_txn()->add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(std::string(600 << 10, 'x'));
  }
  auto ctx = Context();
  auto stream = stub_->Watch(ctx.get());
  auto fragmented = On("f");
  fragmented.set_range_end("g");
  fragmented.set_fragment(true);
  ASSERT_TRUE(Create(stream.get(), fragmented));
  const int64_t fragmented_id = Next(stream.get()).watch_id();
  auto whole = On("f");
  whole.set_range_end("g");
  ASSERT_TRUE(Create(stream.get(), whole));
  const int64_t whole_id = Next(stream.get()).watch_id();

  etcdserverpb::TxnResponse txn;
  Status outcome;
  member_.Propose(std::move(request), &txn, [&](const Status& st) { outcome = st; });
  ASSERT_TRUE(outcome.ok()) << outcome.ToString();
  hub_.Notify(txn.header().revision());

  int fragmented_events = 0, whole_events = 0, fragmented_parts = 0;
  while (fragmented_events < 3 || whole_events < 3) {
    WatchResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    if (resp.watch_id() == fragmented_id) {
      EXPECT_LT(resp.ByteSizeLong(), 1536u * 1024u);
      ++fragmented_parts;
      fragmented_events += resp.events_size();
      // Every part but the last says more is coming.
      EXPECT_EQ(resp.fragment(), fragmented_events < 3);
    } else {
      ASSERT_EQ(resp.watch_id(), whole_id);
      EXPECT_FALSE(resp.fragment());
      EXPECT_EQ(resp.events_size(), 3);
      whole_events += resp.events_size();
    }
  }
  EXPECT_GT(fragmented_parts, 1);
  EXPECT_EQ(fragmented_events, 3);
  ctx->TryCancel();
  (void)stream->Finish();
}

TEST_F(WatchServiceTest, LearnersAndLeaderlessMembersRefuseTheStream) {
  member_.learner = true;
  {
    auto ctx = Context();
    auto stream = stub_->Watch(ctx.get());
    WatchResponse resp;
    EXPECT_FALSE(stream->Read(&resp));
    EXPECT_EQ(stream->Finish().error_message(), "etcdserver: rpc not supported for learner");
  }
  member_.learner = false;
  member_.leader = 0;
  auto ctx = Context(/*require_leader=*/true);
  auto stream = stub_->Watch(ctx.get());
  WatchResponse resp;
  EXPECT_FALSE(stream->Read(&resp));
  grpc::Status st = stream->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "etcdserver: no leader");
}

TEST_F(WatchServiceTest, StreamThatAskedForALeaderEndsWhenTheMemberLosesIt) {
  auto ctx = Context(/*require_leader=*/true);
  auto stream = stub_->Watch(ctx.get());
  ASSERT_TRUE(Create(stream.get(), On("a")));
  ASSERT_TRUE(Next(stream.get()).created());
  ASSERT_TRUE(monitor_.LoseLeaderForGood());
  WatchResponse resp;
  EXPECT_FALSE(stream->Read(&resp));
  grpc::Status st = stream->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "etcdserver: no leader");
}

}  // namespace
}  // namespace etcdpp::api

// Transport tests: real sockets between transports in one process on free
// 127.0.0.1 ports. Waiting uses condition variables with generous timeouts;
// nothing asserts on timing.
#include "transport/transport.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <absl/synchronization/mutex.h>
#include <gtest/gtest.h>

#include "base/coding.h"
#include "transport/batch_stream.h"
#include "transport/wire.h"
#include "transportpb/transport.grpc.pb.h"
#include "unit/mvcc/temp_dir.h"

namespace etcdpp::transport {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kCluster = 0xc1;

// Like the etcdpp binary: Debian's abseil checks every absl::Mutex gRPC takes
// for lock-order cycles, which makes gRPC crawl under sanitizers.
const bool kNoAbslDeadlockDetection = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();
// Long enough for a loaded CI machine; tests normally finish in milliseconds.
constexpr auto kWait = 15s;

std::string RandomBytes(size_t n) {
  std::mt19937_64 rng(42);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Records everything delivered and lets tests wait for it.
class RecordingHandler : public Handler {
 public:
  void OnMessage(raftpb::Message m) override {
    if (delay_per_message.count() > 0) std::this_thread::sleep_for(delay_per_message);
    std::lock_guard<std::mutex> lock(mu_);
    messages_.push_back(std::move(m));
    cv_.notify_all();
  }
  void OnRemovedFromCluster() override { removed_calls.fetch_add(1); }
  void OnSnapshot(raftpb::Message m, std::string path) override {
    std::lock_guard<std::mutex> lock(mu_);
    snapshots_.emplace_back(std::move(m), std::move(path));
    cv_.notify_all();
  }

  // Waits until at least n messages arrived; false on timeout.
  bool WaitForMessages(size_t n, std::chrono::milliseconds timeout = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return messages_.size() >= n; });
  }
  // Waits until n messages from `from` with index >= min_index arrived.
  bool WaitForIndexesFrom(uint64_t from, uint64_t min_index, size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] {
      size_t count = 0;
      for (const auto& m : messages_) count += m.from() == from && m.index() >= min_index;
      return count >= n;
    });
  }
  bool WaitForSnapshots(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return snapshots_.size() >= n; });
  }
  std::vector<raftpb::Message> messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  std::atomic<int> removed_calls{0};
  // A slow receiver: its socket fills up while it sleeps here.
  std::chrono::microseconds delay_per_message{0};

  std::vector<std::pair<raftpb::Message, std::string>> snapshots() {
    std::lock_guard<std::mutex> lock(mu_);
    return snapshots_;
  }
  // Messages received from `from`, their index fields in arrival order.
  std::vector<uint64_t> IndexesFrom(uint64_t from) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint64_t> out;
    for (const auto& m : messages_) {
      if (m.from() == from) out.push_back(m.index());
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<raftpb::Message> messages_;
  std::vector<std::pair<raftpb::Message, std::string>> snapshots_;
};

raftpb::Message Msg(uint64_t from, uint64_t to, uint64_t index, size_t entries = 0) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_APP);
  m.set_from(from);
  m.set_to(to);
  m.set_term(1);
  m.set_index(index);
  for (size_t i = 0; i < entries; ++i) {
    auto* e = m.add_entries();
    e->set_term(1);
    e->set_index(index + i + 1);
    e->set_data(std::string(100, 'x'));
  }
  return m;
}

// A member: handler + transport listening on a free (or given) port.
struct Member {
  Member(uint64_t id, int port = 0, uint64_t cluster = kCluster, TransportOptions options = {}) {
    options.snapshot_dir = dir.path();
    transport = std::make_unique<Transport>(id, cluster, &handler, options);
    Status s = transport->Start({"http://127.0.0.1:" + std::to_string(port)});
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  int port() const { return transport->listen_ports().at(0); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

  testing::TempDir dir;
  RecordingHandler handler;
  std::unique_ptr<Transport> transport;
};

// A port on which nothing listens (it was free a moment ago).
int DeadPort() {
  Member m(99);
  int port = m.port();
  m.transport->Stop();
  return port;
}

// Sends a message to `id` every few milliseconds, as Raft's heartbeats do,
// until `t` reports `id` unreachable; false on timeout.
bool SendUntilUnreachable(Transport& t, uint64_t id) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  for (uint64_t i = 1; std::chrono::steady_clock::now() < deadline; ++i) {
    for (uint64_t u : t.TakeUnreachable()) {
      if (u == id) return true;
    }
    t.Send({Msg(t.self_id(), id, i)});
    std::this_thread::sleep_for(5ms);  // TakeUnreachable has no wait.
  }
  return false;
}

// Opens a raw Stream call to `port` with the given handshake and returns the
// status the receiver answers with (OK when it accepted the stream).
grpc::Status RawStreamStatus(int port, Handshake hs) {
  auto stub =
      transportpb::RaftPeer::NewStub(NewPeerChannel("127.0.0.1:" + std::to_string(port), {}));
  grpc::ClientContext ctx;
  AddHandshake(&ctx, hs);
  transportpb::StreamAck ack;
  auto writer = stub->Stream(&ctx, &ack);
  writer->WaitForInitialMetadata();
  if (WasAccepted(ctx)) {
    writer->WritesDone();
    return writer->Finish();
  }
  return writer->Finish();
}

TEST(PeerUrlTest, ParsesHttpAndHttpsUrlsAndRefusesOthers) {
  EXPECT_EQ(*PeerUrlToAddress("http://127.0.0.1:2380"), "127.0.0.1:2380");
  EXPECT_EQ(*PeerUrlToAddress("http://localhost:2380/"), "localhost:2380");
  EXPECT_EQ(*PeerUrlToAddress("10.0.0.1:7001"), "10.0.0.1:7001");
  EXPECT_EQ(*PeerUrlToAddress("http://[::1]:2380"), "[::1]:2380");
  // TLS or not is the transport's PeerTlsOptions, not the scheme.
  EXPECT_EQ(*PeerUrlToAddress("https://127.0.0.1:2380"), "127.0.0.1:2380");
  EXPECT_FALSE(PeerUrlToAddress("unix://x").ok());
  EXPECT_FALSE(PeerUrlToAddress("http://127.0.0.1").ok());
  EXPECT_FALSE(PeerUrlToAddress("http://127.0.0.1:port").ok());
}

TEST(TransportTest, StartFailsWhenPortIsTaken) {
  Member a(1);
  RecordingHandler handler;
  Transport second(2, kCluster, &handler);
  // Two members must never share a peer port (no SO_REUSEPORT).
  Status s = second.Start({a.url()});
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_EQ(Transport(3, kCluster, &handler).Start({"unix://127.0.0.1:1"}).code(),
            Code::kInvalidArgument);
}

TEST(TransportTest, DeliversInOrderPerPeerAcrossManySends) {
  Member a(1), b(2), c(3);
  a.transport->AddPeer(2, {b.url()});
  a.transport->AddPeer(3, {c.url()});
  b.transport->AddPeer(1, {a.url()});

  // Many small Send calls, interleaving two recipients: the senders batch
  // whatever queued while they were writing.
  constexpr uint64_t kCount = 2000;
  for (uint64_t i = 1; i <= kCount; ++i) {
    std::vector<raftpb::Message> msgs;
    msgs.push_back(Msg(1, 2, i, i % 3));
    msgs.push_back(Msg(1, 3, i));
    a.transport->Send(std::move(msgs));
  }
  b.transport->Send({Msg(2, 1, 7)});

  ASSERT_TRUE(b.handler.WaitForMessages(kCount));
  ASSERT_TRUE(c.handler.WaitForMessages(kCount));
  ASSERT_TRUE(a.handler.WaitForMessages(1));

  std::vector<uint64_t> expected(kCount);
  for (uint64_t i = 0; i < kCount; ++i) expected[i] = i + 1;
  EXPECT_EQ(b.handler.IndexesFrom(1), expected);
  EXPECT_EQ(c.handler.IndexesFrom(1), expected);
  EXPECT_EQ(a.handler.IndexesFrom(2), std::vector<uint64_t>{7});
  // Entries arrive intact.
  auto got = b.handler.messages();
  EXPECT_EQ(got[4].entries_size(), 2);
  EXPECT_EQ(got[4].entries(1).index(), 7u);
  EXPECT_EQ(got[4].entries(1).data(), std::string(100, 'x'));
  EXPECT_EQ(a.transport->dropped_messages(), 0u);
  EXPECT_TRUE(a.transport->PeerActive(2));
  EXPECT_FALSE(a.transport->PeerActive(42));
}

TEST(TransportTest, DropsMessagesToUnknownPeersAndSelf) {
  Member a(1);
  a.transport->Send({Msg(1, 5, 1), Msg(1, 1, 2)});
  EXPECT_EQ(a.transport->dropped_messages(), 2u);
  EXPECT_TRUE(a.transport->TakeUnreachable().empty());
}

TEST(TransportTest, ReconnectsAfterPeerRestartOnSamePort) {
  Member a(1);
  auto b = std::make_unique<Member>(2);
  const int port = b->port();
  a.transport->AddPeer(2, {b->url()});
  a.transport->Send({Msg(1, 2, 1)});
  ASSERT_TRUE(b->handler.WaitForMessages(1));

  b.reset();  // Peer goes away; the failed stream is reported.
  ASSERT_TRUE(SendUntilUnreachable(*a.transport, 2));
  EXPECT_FALSE(a.transport->PeerActive(2));

  Member b2(2, port);
  // Keep sending like Raft does (a heartbeat per round) until the sender has
  // reconnected and one arrives.
  uint64_t next = 1000;
  bool delivered = false;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!delivered && std::chrono::steady_clock::now() < deadline) {
    a.transport->Send({Msg(1, 2, next++)});
    delivered = b2.handler.WaitForMessages(1, 20ms);
  }
  ASSERT_TRUE(delivered);
  EXPECT_TRUE(a.transport->PeerActive(2));

  // With the stream back, delivery is lossless and in order again.
  const uint64_t first = next;
  for (uint64_t i = 0; i < 100; ++i) a.transport->Send({Msg(1, 2, first + i)});
  ASSERT_TRUE(b2.handler.WaitForIndexesFrom(1, first, 100));
  std::vector<uint64_t> tail;
  for (uint64_t v : b2.handler.IndexesFrom(1)) {
    if (v >= first) tail.push_back(v);
  }
  std::vector<uint64_t> expected(100);
  for (uint64_t i = 0; i < 100; ++i) expected[i] = first + i;
  EXPECT_EQ(tail, expected);
}

TEST(TransportTest, DeadPeerDoesNotDelayLivePeer) {
  TransportOptions small;
  small.max_queued_messages = 1000;
  Member a(1, 0, kCluster, small), b(2);
  a.transport->AddPeer(2, {b.url()});
  a.transport->AddPeer(3, {"http://127.0.0.1:" + std::to_string(DeadPort())});

  // One Send overflows the dead peer's queue: the excess is dropped at once
  // and the peer reported, without waiting for anything.
  std::vector<raftpb::Message> burst;
  for (uint64_t i = 1; i <= 1100; ++i) burst.push_back(Msg(1, 3, i));
  a.transport->Send(std::move(burst));
  EXPECT_GE(a.transport->dropped_messages(), 100u);
  auto unreachable = a.transport->TakeUnreachable();
  EXPECT_EQ(unreachable, std::vector<uint64_t>{3});

  // Meanwhile the live peer gets everything sent to it, in order.
  constexpr uint64_t kCount = 500;
  for (uint64_t i = 1; i <= kCount; ++i) a.transport->Send({Msg(1, 3, i), Msg(1, 2, i)});
  ASSERT_TRUE(b.handler.WaitForMessages(kCount));
  std::vector<uint64_t> expected(kCount);
  for (uint64_t i = 0; i < kCount; ++i) expected[i] = i + 1;
  EXPECT_EQ(b.handler.IndexesFrom(1), expected);
  EXPECT_FALSE(a.transport->PeerActive(3));
}

TEST(TransportTest, RefusesMemberOfAnotherCluster) {
  Member a(1, 0, kCluster), other(2, 0, kCluster + 1);
  // The wire answer: FAILED_PRECONDITION naming both clusters.
  grpc::Status st = RawStreamStatus(other.port(), Handshake{kCluster, 1, 2});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("another cluster"), std::string::npos) << st.error_message();
  // A wrong recipient is refused too.
  st = RawStreamStatus(other.port(), Handshake{kCluster + 1, 1, 7});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // The right handshake is accepted.
  EXPECT_TRUE(RawStreamStatus(other.port(), Handshake{kCluster + 1, 1, 2}).ok());

  // Through the transport: nothing is delivered, the peer is unreachable.
  a.transport->AddPeer(2, {other.url()});
  ASSERT_TRUE(SendUntilUnreachable(*a.transport, 2));
  EXPECT_TRUE(other.handler.messages().empty());
  EXPECT_FALSE(a.transport->PeerActive(2));
}

TEST(TransportTest, RemovedPeerIsRefusedAndNotSentTo) {
  Member a(1), b(2);
  a.transport->AddPeer(2, {b.url()});
  a.transport->Send({Msg(1, 2, 1)});
  ASSERT_TRUE(b.handler.WaitForMessages(1));

  b.transport->RemovePeer(1);
  grpc::Status st = RawStreamStatus(b.port(), Handshake{kCluster, 1, 2});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("removed"), std::string::npos) << st.error_message();
  // a's open stream is cut at its next batch; nothing more is delivered.
  ASSERT_TRUE(SendUntilUnreachable(*a.transport, 2));
  EXPECT_EQ(b.handler.messages().size(), 1u);

  a.transport->RemovePeer(2);
  const uint64_t dropped = a.transport->dropped_messages();
  a.transport->Send({Msg(1, 2, 5)});
  EXPECT_EQ(a.transport->dropped_messages(), dropped + 1);
  a.transport->AddPeer(2, {b.url()});  // Ids are never reused: ignored.
  EXPECT_FALSE(a.transport->PeerActive(2));
}

// A blocking socket connected to 127.0.0.1:`port` whose reads give up after
// kWait; -1 if it cannot connect.
int ConnectLocal(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  SetReceiveTimeout(fd, std::chrono::duration_cast<std::chrono::milliseconds>(kWait));
  return fd;
}

// Opens a batch stream to `port` by hand with the given hello and returns
// the answer: "A" when accepted, "R:" and the reason when refused, "" when
// the receiver closed without one. *fd gets the open socket when accepted.
std::string BatchStreamAnswer(int port, Handshake hs, int* fd = nullptr) {
  const int s = ConnectLocal(port);
  if (s < 0) return "no connection";
  const std::string hello = EncodeHello(hs);
  std::string answer;
  char reply = 0;
  if (WriteAll(s, hello.data(), hello.size()).ok() && ReadFull(s, &reply, 1).ok()) {
    answer.assign(1, reply);
    char length[4];
    if (reply == kRefused && ReadFull(s, length, 4).ok()) {
      std::string reason(GetBE32(length), '\0');
      if (ReadFull(s, reason.data(), reason.size()).ok()) answer += ":" + reason;
    }
  }
  if (answer == "A" && fd != nullptr) {
    *fd = s;
  } else {
    ::close(s);
  }
  return answer;
}

// Writes `batch` as one frame of a batch stream.
bool WriteFrame(int fd, const transportpb::MessageBatch& batch) {
  std::string frame(4, '\0');
  batch.AppendToString(&frame);
  PutBE32(frame.data(), static_cast<uint32_t>(frame.size() - 4));
  return WriteAll(fd, frame.data(), frame.size()).ok();
}

// True once the receiver closed `fd` (a read sees the end of the stream).
bool ClosedByPeer(int fd) {
  char byte;
  return ::recv(fd, &byte, 1, 0) == 0;
}

TEST(BatchStreamTest, AFrameIsItsLengthThenTheMessageBatch) {
  std::vector<raftpb::Message> messages = {Msg(1, 2, 7, 3), Msg(1, 2, 8), Msg(1, 2, 9, 1)};
  messages[1].set_type(raftpb::MSG_HEARTBEAT);
  messages[1].set_context(std::string("\0ctx", 4));
  for (const std::vector<raftpb::Message>& batch :
       {messages, std::vector<raftpb::Message>{}, std::vector<raftpb::Message>{Msg(0, 2, 0)}}) {
    std::string frame = "stale bytes the encoder replaces";
    EncodeFrame(1, kCluster, batch, &frame);
    ASSERT_GE(frame.size(), 4u);
    ASSERT_EQ(GetBE32(frame.data()), frame.size() - 4);
    transportpb::MessageBatch parsed;
    ASSERT_TRUE(parsed.ParseFromArray(frame.data() + 4, static_cast<int>(frame.size() - 4)));
    transportpb::MessageBatch want;
    want.set_from(1);
    want.set_cluster_id(kCluster);
    for (const raftpb::Message& m : batch) *want.add_messages() = m;
    EXPECT_EQ(parsed.SerializeAsString(), want.SerializeAsString());
  }
}

TEST(BatchStreamTest, HelloIsAdmittedAsTheGrpcStreamIs) {
  Member other(2, 0, kCluster + 1);
  const std::string wrong_cluster = BatchStreamAnswer(other.port(), Handshake{kCluster, 1, 2});
  EXPECT_TRUE(wrong_cluster.starts_with("R:")) << wrong_cluster;
  EXPECT_NE(wrong_cluster.find("another cluster"), std::string::npos) << wrong_cluster;
  EXPECT_TRUE(BatchStreamAnswer(other.port(), Handshake{kCluster + 1, 1, 7}).starts_with("R:"));
  EXPECT_EQ(BatchStreamAnswer(other.port(), Handshake{kCluster + 1, 1, 2}), "A");

  other.transport->RemovePeer(1);
  const std::string removed = BatchStreamAnswer(other.port(), Handshake{kCluster + 1, 1, 2});
  EXPECT_NE(removed.find(RemovedMemberMessage(1)), std::string::npos) << removed;
}

TEST(BatchStreamTest, FramesAreDeliveredInOrderAndBadOnesEndTheStream) {
  Member b(2);
  int fd = -1;
  ASSERT_EQ(BatchStreamAnswer(b.port(), Handshake{kCluster, 1, 2}, &fd), "A");
  transportpb::MessageBatch batch;
  batch.set_from(1);
  batch.set_cluster_id(kCluster);
  for (uint64_t i = 1; i <= 3; ++i) *batch.add_messages() = Msg(1, 2, i, 2);
  *batch.add_messages() = Msg(1, 9, 4);  // not for b: skipped
  ASSERT_TRUE(WriteFrame(fd, batch));
  ASSERT_TRUE(b.handler.WaitForMessages(3));
  EXPECT_EQ(b.handler.IndexesFrom(1), (std::vector<uint64_t>{1, 2, 3}));

  // A batch that names another sender than the hello did ends the stream.
  batch.set_from(3);
  ASSERT_TRUE(WriteFrame(fd, batch));
  EXPECT_TRUE(ClosedByPeer(fd));
  ::close(fd);

  // So does a frame longer than any batch, and bytes that are no batch.
  ASSERT_EQ(BatchStreamAnswer(b.port(), Handshake{kCluster, 1, 2}, &fd), "A");
  char huge[4];
  PutBE32(huge, kMaxFrameBytes + 1);
  ASSERT_TRUE(WriteAll(fd, huge, sizeof huge).ok());
  EXPECT_TRUE(ClosedByPeer(fd));
  ::close(fd);
  ASSERT_EQ(BatchStreamAnswer(b.port(), Handshake{kCluster, 1, 2}, &fd), "A");
  const char garbage[] = {0, 0, 0, 3, '\xff', '\xff', '\xff'};
  ASSERT_TRUE(WriteAll(fd, garbage, sizeof garbage).ok());
  EXPECT_TRUE(ClosedByPeer(fd));
  ::close(fd);
  EXPECT_EQ(b.handler.messages().size(), 3u);
}

TEST(BatchStreamTest, MembersWithAndWithoutItReachEachOther) {
  // `old` stands for a member from before the batch stream: gRPC only.
  TransportOptions grpc_only;
  grpc_only.batch_stream = false;
  Member a(1), old(2, 0, kCluster, grpc_only);
  a.transport->AddPeer(2, {old.url()});
  old.transport->AddPeer(1, {a.url()});
  constexpr uint64_t kCount = 200;
  for (uint64_t i = 1; i <= kCount; ++i) {
    a.transport->Send({Msg(1, 2, i)});
    old.transport->Send({Msg(2, 1, i)});
  }
  // Nothing is lost on the way to gRPC: the queue waits for it.
  ASSERT_TRUE(old.handler.WaitForIndexesFrom(1, 1, kCount));
  ASSERT_TRUE(a.handler.WaitForIndexesFrom(2, 1, kCount));
  std::vector<uint64_t> expected(kCount);
  for (uint64_t i = 0; i < kCount; ++i) expected[i] = i + 1;
  EXPECT_EQ(old.handler.IndexesFrom(1), expected);
  EXPECT_EQ(a.handler.IndexesFrom(2), expected);
}

TEST(BatchStreamTest, FramesLargerThanTheSocketTakesArriveWholeAndInOrder) {
  // The sender's caller writes a frame itself while the stream is idle and
  // leaves to the sender thread what the socket would not take: a slow
  // receiver and frames of 256 KiB make most of those writes partial.
  Member a(1), b(2);
  b.handler.delay_per_message = 2ms;
  a.transport->AddPeer(2, {b.url()});
  a.transport->Send({Msg(1, 2, 1)});
  ASSERT_TRUE(b.handler.WaitForMessages(1));
  ASSERT_TRUE(a.transport->PeerActive(2));
  constexpr uint64_t kCount = 200;
  const std::string big = RandomBytes(256 << 10);
  for (uint64_t i = 2; i <= kCount; ++i) {
    raftpb::Message m = Msg(1, 2, i);
    auto* e = m.add_entries();
    e->set_index(i);
    e->set_data(big);
    a.transport->Send({std::move(m)});
  }
  ASSERT_TRUE(b.handler.WaitForMessages(kCount));
  std::vector<uint64_t> expected(kCount);
  for (uint64_t i = 0; i < kCount; ++i) expected[i] = i + 1;
  EXPECT_EQ(b.handler.IndexesFrom(1), expected);
  for (const raftpb::Message& m : b.handler.messages()) {
    if (m.index() == 1) continue;
    ASSERT_EQ(m.entries_size(), 1);
    EXPECT_EQ(m.entries(0).data(), big) << "message " << m.index();
  }
  EXPECT_EQ(a.transport->dropped_messages(), 0u);
}

TEST(BatchStreamTest, RemovedMemberLearnsItWhenItConnectsAgain) {
  Member a(1), b(2);
  a.transport->AddPeer(2, {b.url()});
  a.transport->Send({Msg(1, 2, 1)});
  ASSERT_TRUE(b.handler.WaitForMessages(1));
  b.transport->RemovePeer(1);
  // The open stream ends at a's next batch; the hello of the next one is
  // refused with the reason, which a's handler hears.
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  for (uint64_t i = 2;
       a.handler.removed_calls.load() == 0 && std::chrono::steady_clock::now() < deadline; ++i) {
    a.transport->Send({Msg(1, 2, i)});
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_GT(a.handler.removed_calls.load(), 0);
  EXPECT_EQ(b.handler.messages().size(), 1u);
}

TEST(TransportTest, UpdatePeerMovesStreamToNewUrl) {
  Member a(1), b(2);
  a.transport->AddPeer(2, {"http://127.0.0.1:" + std::to_string(DeadPort())});
  a.transport->UpdatePeer(2, {b.url()});
  bool delivered = false;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  for (uint64_t i = 1; !delivered && std::chrono::steady_clock::now() < deadline; ++i) {
    a.transport->Send({Msg(1, 2, i)});
    delivered = b.handler.WaitForMessages(1, 20ms);
  }
  EXPECT_TRUE(delivered);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

raftpb::Message SnapMsg(uint64_t from, uint64_t to, uint64_t index) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_SNAP);
  m.set_from(from);
  m.set_to(to);
  m.set_term(3);
  m.mutable_snapshot()->mutable_metadata()->set_index(index);
  m.mutable_snapshot()->mutable_metadata()->set_term(2);
  return m;
}

// Waits for done(ok) of a SendSnapshot.
class DoneLatch {
 public:
  std::function<void(bool)> callback() {
    return [this](bool ok) {
      std::lock_guard<std::mutex> lock(mu_);
      result_ = ok;
      cv_.notify_all();
    };
  }
  std::optional<bool> Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, kWait, [&] { return result_.has_value(); });
    return result_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<bool> result_;
};

TEST(TransportTest, SnapshotFileArrivesByteIdentical) {
  TransportOptions opts;
  opts.snapshot_chunk_bytes = 32 << 10;  // Several chunks, last one partial.
  Member a(1, 0, kCluster, opts), b(2);
  a.transport->AddPeer(2, {b.url()});
  testing::TempDir src;
  const std::string data = RandomBytes((256 << 10) + 12345);
  const std::string path = src.path() + "/db";
  std::ofstream(path, std::ios::binary) << data;

  DoneLatch done;
  a.transport->SendSnapshot(SnapMsg(1, 2, 77), path, done.callback());
  ASSERT_EQ(done.Wait(), std::optional<bool>(true));
  // done(true) means the receiver's handler already has it.
  auto snaps = b.handler.snapshots();
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].first.type(), raftpb::MSG_SNAP);
  EXPECT_EQ(snaps[0].first.snapshot().metadata().index(), 77u);
  EXPECT_EQ(snaps[0].first.from(), 1u);
  EXPECT_EQ(snaps[0].second.rfind(b.dir.path(), 0), 0u);
  EXPECT_EQ(ReadAll(snaps[0].second), data);

  // An empty file works too.
  const std::string empty = src.path() + "/empty";
  std::ofstream(empty, std::ios::binary).close();
  DoneLatch done2;
  a.transport->SendSnapshot(SnapMsg(1, 2, 78), empty, done2.callback());
  ASSERT_EQ(done2.Wait(), std::optional<bool>(true));
  snaps = b.handler.snapshots();
  ASSERT_EQ(snaps.size(), 2u);
  EXPECT_EQ(ReadAll(snaps[1].second), "");
}

TEST(TransportTest, SnapshotFailuresReportNotOk) {
  Member a(1);
  a.transport->AddPeer(3, {"http://127.0.0.1:" + std::to_string(DeadPort())});
  testing::TempDir src;
  const std::string path = src.path() + "/db";
  std::ofstream(path, std::ios::binary) << "data";

  DoneLatch unknown, dead, missing;
  a.transport->SendSnapshot(SnapMsg(1, 9, 1), path, unknown.callback());
  a.transport->SendSnapshot(SnapMsg(1, 3, 1), path, dead.callback());
  a.transport->SendSnapshot(SnapMsg(1, 3, 1), src.path() + "/nope", missing.callback());
  EXPECT_EQ(unknown.Wait(), std::optional<bool>(false));
  EXPECT_EQ(dead.Wait(), std::optional<bool>(false));
  EXPECT_EQ(missing.Wait(), std::optional<bool>(false));
}

// A TCP listener that never accepts: connections hang in the handshake.
class BlackHole {
 public:
  BlackHole() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~BlackHole() { ::close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(TransportTest, StuckSnapshotTransferTimesOut) {
  BlackHole hole;  // Accepts TCP but never speaks HTTP/2.
  TransportOptions opts;
  opts.snapshot_base_timeout = 200ms;
  Member a(1, 0, kCluster, opts);
  a.transport->AddPeer(3, {hole.url()});
  testing::TempDir src;
  const std::string path = src.path() + "/db";
  std::ofstream(path, std::ios::binary) << "data";
  DoneLatch done;
  a.transport->SendSnapshot(SnapMsg(1, 3, 1), path, done.callback());
  // Without Stop: the deadline alone ends the transfer.
  EXPECT_EQ(done.Wait(), std::optional<bool>(false));
}

TEST(TransportTest, StopReturnsPromptlyWithQueuedMessagesAndHungPeers) {
  BlackHole hole;
  Member a(1), b(2);
  a.transport->AddPeer(2, {b.url()});
  a.transport->AddPeer(3, {hole.url()});
  a.transport->AddPeer(4, {"http://127.0.0.1:" + std::to_string(DeadPort())});
  testing::TempDir src;
  const std::string path = src.path() + "/db";
  std::ofstream(path, std::ios::binary) << RandomBytes(1 << 20);
  DoneLatch snap;
  a.transport->SendSnapshot(SnapMsg(1, 3, 1), path, snap.callback());
  for (uint64_t i = 1; i <= 1000; ++i) {
    a.transport->Send({Msg(1, 2, i, 4), Msg(1, 3, i, 4), Msg(1, 4, i, 4)});
  }
  // Returns (the test would time out otherwise) and cancels the snapshot.
  a.transport->Stop();
  EXPECT_EQ(snap.Wait(), std::optional<bool>(false));
  a.transport->Stop();  // Idempotent.
  const uint64_t dropped = a.transport->dropped_messages();
  a.transport->Send({Msg(1, 2, 1)});
  EXPECT_EQ(a.transport->dropped_messages(), dropped + 1);
}

}  // namespace
}  // namespace etcdpp::transport

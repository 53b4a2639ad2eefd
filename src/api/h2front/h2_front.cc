#include "api/h2front/h2_front.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "api/auth_check.h"
#include "api/client_identity.h"
#include "api/grpc_status.h"
#include "api/h2front/forwarder.h"
#include "api/h2front/grpc_wire.h"
#include "api/h2front/lease_keepalive_stream.h"
#include "api/h2front/message_inflater.h"
#include "api/h2front/reply_bytes.h"
#include "api/h2front/request_headers.h"
#include "api/h2front/watch_stream_adapter.h"
#include "api/kv_handler.h"
#include "server/interfaces.h"

namespace etcdpp::api {
namespace {

using h2front::Forwarder;
using h2front::ForwardEvent;
using h2front::KeepAliveStream;
using h2front::Metadata;
using h2front::ReplyBytes;
using h2front::WatchStreamAdapter;

// Queues `message` serialized behind its gRPC prefix, written in place.
void AppendMessage(const google::protobuf::MessageLite& message, ReplyBytes* out) {
  const size_t size = message.ByteSizeLong();
  char* at = out->Extend(h2front::kMessagePrefixBytes + size);
  h2front::WriteMessagePrefix(static_cast<uint32_t>(size), at);
  message.SerializeWithCachedSizesToArray(
      reinterpret_cast<uint8_t*>(at + h2front::kMessagePrefixBytes));
}

// Queues the serialized `message` behind its gRPC prefix; a large one
// moves in whole (a relayed snapshot's chunks).
void AppendFramed(std::string&& message, ReplyBytes* out) {
  char prefix[h2front::kMessagePrefixBytes];
  h2front::WriteMessagePrefix(static_cast<uint32_t>(message.size()), prefix);
  out->Append(std::string_view(prefix, sizeof prefix));
  out->Append(std::move(message));
}

// A relayed stream stops reading from gRPC while this much of its reply
// waits for the client's flow-control window.
constexpr size_t kRelayBufferedBytes = 1 << 20;
// A relayed stream's client bytes that gRPC has not taken yet: above this,
// the stream's HTTP/2 window is no longer returned, so the client can send
// at most one more window (kStreamWindowBytes) before it waits.
constexpr size_t kRelayQueueBytes = 1 << 20;
// HTTP/2 receive windows offered to clients: per stream and per connection.
constexpr int32_t kStreamWindowBytes = 1 << 20;
constexpr int32_t kConnectionWindowBytes = 1 << 24;
// A native keep-alive stream: above this many request bytes not yet taken,
// its stream window is held back; above this many reply bytes not yet sent,
// it reads no further request. Each message is a few dozen bytes, so a
// client that keeps up never comes near either.
constexpr size_t kKeepAliveBufferedBytes = 64 << 10;
// A native watch stream: above this many request bytes not yet taken (they
// wait only while a create waits for answered writes), its stream window
// is held back; above this many reply bytes not yet on the socket (its own
// not yet framed, plus the connection's framed and unsent), its write in
// flight does not complete, so responses wait in its WatchStream's bounded
// queue, where a watcher's later revisions join its response still waiting
// (coalescing, docs/watch.md), and once that is full the hub stops sending
// to it (api/watch_stream.h), as behind a gRPC write the client does not
// take. On the fan-out load (one run each, noisy), 64 KiB against 256
// KiB: events per second and per response alike, peak RSS 41 MiB against
// 51.
//
// The socket alone does not tell a client that reads slowly: on loopback a
// reply is "sent" once it is in the client's receive buffer, and gRPC
// clients grow their windows to megabytes. So a write also waits while the
// client has more than half of its stream window unacknowledged
// (ClientBehind): it is that far behind, and what waits meanwhile merges
// into fewer, larger responses, which is what a client pays for (the
// fan-out load: 2.4 events per response before, 4.1 after, BENCHMARKS.md).
// HTTP/2 clients acknowledge once they have read a share of their window
// (gRPC's, Go's, nghttp2's: a half or less), so the wait ends; one that
// acknowledges later (or only when the window is spent) would never be
// sent more, so a wait longer than H2FrontOptions::watch_window_hold_limit
// ends the stream's waits on the window for good.
constexpr size_t kWatchBufferedBytes = 64 << 10;
constexpr uint64_t kMailboxEventId = 0;
// A loop proposes its writes inline (server/interfaces.h) to answer a lone
// writer without waking the raft loop; but while it flushes the WAL it
// reads none of its other connections. One to which another write came
// during such a flush has writers that are better served by the raft
// loop's group commit, and leaves its writes to it for this long. "During"
// is checked before the flush's answers go out: a lone writer's next write
// follows its answer, and the frames other than requests that a client
// sends (WINDOW_UPDATE, PING) do not count. Short, because writers that
// meet now and then are not a steady load: at 2,000 puts/s from 500
// clients, 26 % of the puts went inline with a 50 ms pause and 44 % with
// 5 ms, the others each costing the raft loop's wake-up and the answer's
// way back (BENCHMARKS.md, "The inline pause shortened"); under a steady
// load the pause is taken again after each inline flush.
constexpr auto kInlinePause = std::chrono::milliseconds(5);

// The methods answered here rather than relayed to gRPC.
enum class KvMethod { kRange, kPut, kDeleteRange, kTxn, kCompact };

std::optional<KvMethod> NativeMethod(std::string_view path) {
  if (path == "/etcdserverpb.KV/Range") return KvMethod::kRange;
  if (path == "/etcdserverpb.KV/Put") return KvMethod::kPut;
  if (path == "/etcdserverpb.KV/DeleteRange") return KvMethod::kDeleteRange;
  if (path == "/etcdserverpb.KV/Txn") return KvMethod::kTxn;
  if (path == "/etcdserverpb.KV/Compact") return KvMethod::kCompact;
  return std::nullopt;
}

// Request headers that are HTTP/2's or gRPC's own, never passed on as metadata.
bool IsTransportHeader(std::string_view name) {
  return name.empty() || name[0] == ':' || name == "content-type" || name == "te" ||
         name == "user-agent" || name == "grpc-timeout" || name == "grpc-encoding" ||
         name == "grpc-accept-encoding" || name == "host" || name == "connection";
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::optional<std::string> FirstValue(const Metadata& metadata, std::string_view name) {
  for (const auto& [n, v] : metadata) {
    if (n == name) return v;
  }
  return std::nullopt;
}

// Native calls and relayed streams in flight; Stop waits for none.
struct InFlight {
  std::mutex mu;
  std::condition_variable idle;
  int64_t count = 0;  // guarded by mu

  void Add() {
    std::lock_guard<std::mutex> lock(mu);
    ++count;
  }
  void Done() {
    std::lock_guard<std::mutex> lock(mu);
    if (--count == 0) idle.notify_all();
  }
  void WaitIdle() {
    std::unique_lock<std::mutex> lock(mu);
    idle.wait(lock, [this] { return count == 0; });
  }
};

// Holds a call as in flight (InFlight) until destroyed: shared by every
// callback that may still reach the front on the call's behalf.
struct InFlightHold {
  explicit InFlightHold(InFlight* counter) : in_flight(counter) { in_flight->Add(); }
  ~InFlightHold() { in_flight->Done(); }
  InFlightHold(const InFlightHold&) = delete;
  InFlightHold& operator=(const InFlightHold&) = delete;
  InFlight* const in_flight;
};

class Loop;
using LoopTask = std::function<void(Loop&)>;

// When native calls must be answered at the latest (their grpc-timeout):
// time -> (connection id, stream id). Owned by the loop thread.
using Deadlines =
    std::multimap<std::chrono::steady_clock::time_point, std::pair<uint64_t, int32_t>>;

// How other threads reach a loop. Shared by the loop and every callback
// that may still post to it; once closed, posts are dropped.
struct Mailbox {
  explicit Mailbox(int event_fd) : eventfd(event_fd) {}
  ~Mailbox() { ::close(eventfd); }

  bool Post(LoopTask task) {
    bool wake = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (closed) return false;
      wake = tasks.empty();
      tasks.push_back(std::move(task));
    }
    if (wake) {
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(eventfd, &one, sizeof one);
    }
    return true;
  }
  std::vector<LoopTask> Take() {
    std::lock_guard<std::mutex> lock(mu);
    return std::move(tasks);
  }
  void Close() {
    std::vector<LoopTask> dropped;
    std::lock_guard<std::mutex> lock(mu);
    closed = true;
    dropped.swap(tasks);
  }

  const int eventfd;
  std::mutex mu;
  std::vector<LoopTask> tasks;  // guarded by mu
  bool closed = false;          // guarded by mu
  // The loop's thread and the loop, set before it runs: a task posted from
  // that thread itself may run at once.
  std::thread::id owner;
  Loop* loop = nullptr;
};

// A KV call served here: its request and response live until its answer.
struct NativeCall {
  KvMethod method;
  std::unique_ptr<google::protobuf::Message> request;
  std::unique_ptr<google::protobuf::Message> response;
};

// One HTTP/2 stream (a gRPC call) of a Connection.
struct Stream {
  int32_t id = 0;
  std::string path;
  std::string method;   // :method
  bool has_te = false;  // a te other than "trailers" is refused (header_rules)
  h2front::RequestHeaderRules header_rules;
  Metadata metadata;  // the client's, "-bin" values decoded
  std::optional<std::chrono::nanoseconds> timeout;
  std::string bad_header;  // a header the front refuses (the call fails)
  std::optional<KvMethod> native;
  // Lease/LeaseKeepAlive served here (it takes the request bytes itself).
  std::unique_ptr<KeepAliveStream> keepalive;
  // Watch/Watch served here (it takes the request bytes itself).
  std::unique_ptr<WatchStreamAdapter> watch;
  // A call served here (native or keepalive), counted as begun: its end
  // is counted too (Finish or RecordUnfinished).
  bool counted = false;
  std::chrono::steady_clock::time_point started;  // its request headers arrived
  // The native call's entry in its loop's Deadlines, while it runs.
  std::optional<Deadlines::iterator> deadline;
  std::shared_ptr<Forwarder> forwarder;  // relayed streams, until the call ends
  std::string inbound;                   // request bytes not yet cut into messages
  // With grpc-encoding gzip or deflate: DATA passes through it first.
  std::unique_ptr<h2front::MessageInflater> inflater;
  bool answered_locally = false;    // the front itself failed the call
  bool reset_after_answer = false;  // RST_STREAM NO_ERROR may follow the status

  // The reply.
  Metadata initial_metadata;
  bool response_submitted = false;
  bool deferred = false;         // the data provider waits for more
  h2front::ReplyBytes outbound;  // framed messages not yet handed to nghttp2
  // A native watch stream's client window (ClientBehind): the largest
  // stream window the client has granted, and since when a write has been
  // waiting for its acknowledgement (none: not waiting on the window).
  int32_t peak_remote_window = 0;
  std::optional<std::chrono::steady_clock::time_point> window_hold_since;
  bool acknowledges_late = false;  // the client outwaited a hold: no more
  bool finished = false;           // trailers are final
  Metadata trailers;
  bool read_paused = false;  // the forwarder waits for the client to take more

  // The request's flow control (relayed streams): the bytes of its messages
  // gRPC had not taken at the last Send, the DATA bytes whose stream window
  // is held back meanwhile, and whether kDrained was asked for.
  size_t queued = 0;
  size_t withheld = 0;
  bool awaiting_drain = false;
};

struct FrontContext {
  const H2FrontOptions* options;
  grpc::GenericStub* stub;
  InFlight* in_flight;
  h2front::QueuedBytes* relay_queued;
};

// One client connection and its nghttp2 session, owned by one loop.
class Connection {
 public:
  // `common_name`: the verified client certificate behind the connection
  // (a TLS one the listener relays), the sender of its calls without a token.
  Connection(Loop* loop, uint64_t id, int fd, std::optional<std::string> common_name);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_; }
  bool OnReadable();
  // Writes what nghttp2 has; false when the connection is over.
  bool Flush();
  bool WantsWrite() const { return !pending_out_.empty(); }
  // Shutdown: tells the client that no stream after the last one this
  // session took will be served (it may retry those elsewhere). nghttp2
  // then ignores new streams, and once the ones taken have closed the
  // session wants neither to read nor to write: Flush reports it over.
  void GoAway() {
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                          nullptr, 0);
  }

  void AnswerNative(int32_t stream_id, NativeCall& call, const Status& status);
  void Relay(int32_t stream_id, ForwardEvent event);
  // `len` DATA bytes of `stream` were received: returns their window now,
  // or (a relayed stream whose queue is above its bound) the stream's part
  // once gRPC has taken enough.
  void Consume(Stream& stream, size_t len);
  // The native call on `stream_id` ran out of time (its deadline entry is gone).
  void Expire(int32_t stream_id);
  // The loop's timer: a watch stream that has waited on its client's window
  // since `since` stops waiting on it, if it still waits.
  void WindowHoldExpired(int32_t stream_id, std::chrono::steady_clock::time_point since);
  // Runs `task` on the keep-alive of `stream_id` if that is still open.
  void RunKeepAlive(int32_t stream_id, const KeepAliveStream::Task& task);
  // Runs `task` on the watch stream of `stream_id` if that is still open.
  void RunWatch(int32_t stream_id, const WatchStreamAdapter::Task& task);

 private:
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* self);
  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t len, void* self);
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t, void* self);
  static int OnFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void* self);
  static ssize_t ReadReply(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source* source, void* self);
  static int SendReplyData(nghttp2_session* session, nghttp2_frame* frame, const uint8_t* framehd,
                           size_t length, nghttp2_data_source* source, void* self);

  Stream* Find(int32_t stream_id);
  void OnRequestHeaders(Stream& stream);
  void OnRequestData(Stream& stream);
  void OnRequestEnd(Stream& stream);
  void StartNative(Stream& stream);
  // What a call served here shows of its sender, as the gRPC services'
  // CredentialsOf: the token, else the connection's certificate name.
  CallCredentials CredentialsOf(const Stream& stream) const;
  // What a stream served here (a keep-alive, a watch) sets up before its
  // logic opens: the reset after an early answer, and the deadline.
  void BeginNativeStream(Stream& stream);
  // The `post` hook of such a stream: runs `run(stream_id, task)` on this
  // loop if the connection and stream are still there then, else drops the
  // task. Every copy of the hook holds the front's InFlight, so Stop
  // returns only once the last callback that may still post (a renewal, the
  // hub, a wait for answered writes, the leader monitor) is gone. With
  // `inline_on_loop`, a call made on the loop's own thread runs at once.
  template <typename Task>
  std::function<void(Task)> PostHook(int32_t stream_id,
                                     void (Connection::*run)(int32_t, const Task&),
                                     bool inline_on_loop);
  // The `finish` and `fail` hooks of such a stream.
  std::function<void(const grpc::Status&)> FinishHook(int32_t stream_id);
  std::function<void(const grpc::Status&)> FailHook(int32_t stream_id);
  // Lease/LeaseKeepAlive: served here (lease_keepalive_stream.h).
  void OpenKeepAlive(Stream& stream);
  bool WriteKeepAlive(int32_t stream_id, const etcdserverpb::LeaseKeepAliveResponse& response);
  // Returns a keep-alive's withheld window once its backlog is under the bound.
  void AfterKeepAlive(Stream& stream);
  // Keep-alives whose replies drained (ReadReply): reading resumes.
  void ResumeKeepAlives();
  // Watch/Watch: served here (h2front/watch_stream_adapter.h).
  void OpenWatch(Stream& stream);
  bool WriteWatch(int32_t stream_id, std::string&& framed);
  // Returns a watch stream's withheld window once its backlog is under the bound.
  void AfterWatch(Stream& stream);
  // Watch streams held back by the connection's backlog (WriteWatch) whose
  // own and the connection's backlogs are under half the bound: their held
  // writes complete. True if any did.
  bool ResumeWatches();
  // A native watch stream's client has more than half of its window
  // unacknowledged (and has acknowledged in time before).
  bool ClientBehind(Stream& stream);
  // A held watch stream waits on its client's window (from now, unless it
  // already did).
  void HoldForWindow(Stream& stream);
  // A native call whose stream closes before its status: counted as ended
  // (CANCELLED), so that every call counted as begun is counted as ended.
  void RecordUnfinished(const Stream& stream);
  // Resets a request whose header block breaks HTTP/2's rules
  // (RequestHeaderRules) before it has begun.
  void RefuseRequest(int32_t stream_id);
  // Fails the call from here (the client's request was not acceptable).
  void Fail(Stream& stream, grpc::StatusCode code, const std::string& message);
  void Finish(Stream& stream, const grpc::Status& status, const Metadata& trailing);
  // Hands new reply bytes or the trailers to nghttp2.
  void Wake(Stream& stream);
  void SubmitResponse(Stream& stream);

  Loop* const loop_;
  const uint64_t id_;
  const int fd_;
  const std::optional<std::string> common_name_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  std::string pending_out_;
  std::vector<int32_t> writable_keepalives_;  // from ReadReply, for ResumeKeepAlives
  std::vector<int32_t> paused_watches_;       // from WriteWatch, for ResumeWatches
};

// One event loop thread: its connections, its epoll set, its mailbox.
class Loop {
 public:
  explicit Loop(FrontContext context);
  ~Loop();

  void Run();
  const std::shared_ptr<Mailbox>& mailbox() const { return mailbox_; }
  const FrontContext& context() const { return context_; }

  void AddConnection(int fd, std::optional<std::string> common_name);
  Connection* Find(uint64_t id);
  // The connection has new output: flushed before the loop sleeps again.
  void MarkDirty(uint64_t id) { dirty_.push_back(id); }
  Deadlines& deadlines() { return deadlines_; }
  // Watch streams waiting on their client's window, by when they began to
  // (Connection::HoldForWindow); entries of waits that ended stay until due.
  Deadlines& window_holds() { return window_holds_; }
  // Sends every connection GOAWAY and takes no new one; the loop then runs
  // until its connections have ended or `deadline` comes, and closes what
  // is left (relayed calls are cancelled, native answers dropped).
  void Drain(std::chrono::steady_clock::time_point deadline);

 private:
  // Flushes `conn`; closes it when over; keeps EPOLLOUT in step.
  void AfterIo(uint64_t id, Connection& conn, bool alive, bool had_pending);
  void Close(uint64_t id);
  void RunTasks();
  // Fails the native calls whose deadline passed and ends the window waits
  // past the limit; the epoll timeout (ms, -1: none) until the next of
  // either.
  int ExpireDeadlines();
  // epoll_wait, and the end of a pause of proposing inline (kInlinePause).
  int WaitForEvents(epoll_event* events, int max_events, int timeout_ms);
  // I/O on the connections and the mailbox's tasks.
  void HandleEvents(const epoll_event* events, int ready);
  // Right after this thread flushed the WAL for its writes (and before the
  // answers go out): what came in meanwhile, and a pause of proposing
  // inline if that held writes (kInlinePause).
  void HandleWritesFromDuringTheFlush(epoll_event* events, int max_events);

  const FrontContext context_;
  const int epoll_fd_;
  std::shared_ptr<Mailbox> mailbox_;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::vector<uint64_t> dirty_;
  Deadlines deadlines_;
  Deadlines window_holds_;
  uint64_t next_connection_id_ = kMailboxEventId + 1;
  bool draining_ = false;
  std::chrono::steady_clock::time_point drain_deadline_;  // when draining_
  // Proposing inline is paused until then (kInlinePause).
  std::optional<std::chrono::steady_clock::time_point> inline_paused_until_;
};

// ---- Connection

Connection::Connection(Loop* loop, uint64_t id, int fd, std::optional<std::string> common_name)
    : loop_(loop), id_(id), fd_(fd), common_name_(std::move(common_name)) {
  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, OnHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, OnDataChunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, OnFrameRecv);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, OnStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, OnFrameSend);
  nghttp2_session_callbacks_set_send_data_callback(callbacks, SendReplyData);
  // The window is returned by hand (Consume), so a relayed stream whose
  // gRPC call does not read stops receiving.
  nghttp2_option* option;
  nghttp2_option_new(&option);
  nghttp2_option_set_no_auto_window_update(option, 1);
  // Request headers are checked by RequestHeaderRules instead: nghttp2's
  // own checks refuse the :authority grpc-go sends (request_headers.h).
  nghttp2_option_set_no_http_messaging(option, 1);
  // nghttp2 would otherwise keep each closed stream (a few hundred bytes)
  // for RFC 7540's priority tree, which gRPC does not use, up to the
  // concurrent-stream limit below: a connection's memory would grow with
  // every call it made.
  nghttp2_option_set_no_closed_streams(option, 1);
  nghttp2_session_server_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  // As the gRPC server is configured (client_server.cc): no practical
  // limit on concurrent streams per connection.
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1u << 30},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindowBytes},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindowBytes);
}

Connection::~Connection() {
  for (auto& [id, stream] : streams_) {
    RecordUnfinished(*stream);
    if (stream->forwarder) stream->forwarder->Cancel();
    if (stream->deadline) loop_->deadlines().erase(*stream->deadline);
  }
  nghttp2_session_del(session_);
  ::close(fd_);
}

Stream* Connection::Find(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second.get();
}

int Connection::OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    auto stream = std::make_unique<Stream>();
    stream->id = frame->hd.stream_id;
    static_cast<Connection*>(self)->streams_[frame->hd.stream_id] = std::move(stream);
  }
  return 0;
}

int Connection::OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                         size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                         void* self) {
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto* conn = static_cast<Connection*>(self);
  Stream* stream = conn->Find(frame->hd.stream_id);
  if (stream == nullptr) return 0;
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  switch (stream->header_rules.Check(n, v)) {
    case h2front::RequestHeaderRules::Verdict::kTake:
      break;
    case h2front::RequestHeaderRules::Verdict::kIgnore:
      return 0;
    case h2front::RequestHeaderRules::Verdict::kRefuse:
      conn->RefuseRequest(frame->hd.stream_id);
      return 0;
  }
  if (n == ":path") {
    stream->path.assign(v);
  } else if (n == ":method") {
    stream->method.assign(v);
  } else if (n == "te") {
    stream->has_te = true;
  } else if (n == "grpc-timeout") {
    stream->timeout = h2front::ParseGrpcTimeout(v);
    if (!stream->timeout) stream->bad_header = "grpc-timeout";
  } else if (n == "grpc-encoding") {
    // gzip and deflate messages are inflated as they arrive; with another
    // name a compressed message is refused when it arrives (its flag byte).
    if (auto encoding = h2front::MessageEncodingNamed(v)) {
      stream->inflater = std::make_unique<h2front::MessageInflater>(
          *encoding, conn->loop_->context().options->max_receive_message_bytes);
    }
  } else if (n == kRelayedIdentityKey) {
    // Only the front states a relayed call's identity (client_identity.h).
  } else if (!IsTransportHeader(n)) {
    if (EndsWith(n, "-bin")) {
      auto decoded = h2front::DecodeBinaryHeader(v);
      if (!decoded) {
        stream->bad_header.assign(n);
        return 0;
      }
      stream->metadata.emplace_back(std::string(n), std::move(*decoded));
    } else {
      stream->metadata.emplace_back(std::string(n), std::string(v));
    }
  }
  return 0;
}

int Connection::OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id,
                            const uint8_t* data, size_t len, void* self) {
  auto* conn = static_cast<Connection*>(self);
  Stream* stream = conn->Find(stream_id);
  if (stream == nullptr) {
    nghttp2_session_consume(session, stream_id, len);
    return 0;
  }
  std::string_view bytes(reinterpret_cast<const char*>(data), len);
  std::string inflated;
  if (!stream->finished && stream->inflater) {
    if (auto refusal = stream->inflater->Take(bytes, &inflated)) {
      conn->Fail(*stream, refusal->error_code(), refusal->error_message());
    }
    bytes = inflated;
  }
  // A call already answered (its status sent; a call the front failed is
  // finished too) reads nothing more: Consume returns the window at once.
  if (!stream->finished && stream->keepalive) {
    stream->keepalive->Received(bytes);
  } else if (!stream->finished && stream->watch) {
    stream->watch->Received(bytes);
  } else if (!stream->finished) {
    stream->inbound.append(bytes);
    conn->OnRequestData(*stream);
  }
  conn->Consume(*stream, len);
  return 0;
}

void Connection::Consume(Stream& stream, size_t len) {
  if (stream.keepalive && !stream.finished) {
    // Its requests wait in the keep-alive until their turn; the connection's
    // window goes back at once, the stream's while the backlog is small.
    if (stream.withheld == 0 && stream.keepalive->buffered() <= kKeepAliveBufferedBytes) {
      nghttp2_session_consume(session_, stream.id, len);
    } else {
      nghttp2_session_consume_connection(session_, len);
      stream.withheld += len;
    }
    return;
  }
  if (stream.watch && !stream.finished) {
    // As a keep-alive's: requests wait in the stream only behind a create
    // that waits for answered writes.
    if (stream.withheld == 0 && stream.watch->buffered() <= kWatchBufferedBytes) {
      nghttp2_session_consume(session_, stream.id, len);
    } else {
      nghttp2_session_consume_connection(session_, len);
      stream.withheld += len;
    }
    return;
  }
  // A native call, or a call already over: nothing waits in a relay queue.
  if (!stream.forwarder || stream.finished) {
    nghttp2_session_consume(session_, stream.id, len);
    return;
  }
  // The connection's window always goes back: one stream whose call does
  // not read must not stall the others on the connection.
  nghttp2_session_consume_connection(session_, len);
  if (stream.withheld == 0 && stream.queued <= kRelayQueueBytes) {
    nghttp2_session_consume_stream(session_, stream.id, len);
    return;
  }
  stream.withheld += len;
  if (!stream.awaiting_drain) {
    stream.awaiting_drain = true;
    stream.forwarder->NotifyWhenQueuedAtMost(kRelayQueueBytes);
  }
}

int Connection::OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto* conn = static_cast<Connection*>(self);
  Stream* stream = conn->Find(frame->hd.stream_id);
  if (stream == nullptr) return 0;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    if (!stream->header_rules.Complete()) {
      conn->RefuseRequest(frame->hd.stream_id);
      return 0;
    }
    conn->OnRequestHeaders(*stream);
  } else if (frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) {
    return 0;
  }
  if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) conn->OnRequestEnd(*stream);
  return 0;
}

void Connection::RefuseRequest(int32_t stream_id) {
  // Its headers were not complete, so nothing was started or counted.
  streams_.erase(stream_id);
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_PROTOCOL_ERROR);
}

int Connection::OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t, void* self) {
  auto* conn = static_cast<Connection*>(self);
  auto it = conn->streams_.find(stream_id);
  if (it == conn->streams_.end()) return 0;
  // Closed before its call ended: the client reset it, or the connection
  // is going. The call is cancelled; a native call's answer is dropped.
  if (it->second->forwarder) it->second->forwarder->Cancel();
  if (it->second->deadline) conn->loop_->deadlines().erase(*it->second->deadline);
  conn->RecordUnfinished(*it->second);
  conn->streams_.erase(it);
  return 0;
}

int Connection::OnFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void* self) {
  if (frame->hd.type != NGHTTP2_HEADERS || (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
    return 0;
  }
  Stream* stream = static_cast<Connection*>(self)->Find(frame->hd.stream_id);
  // Only while the client still sends: then it stops the rest of the
  // request. (gRPC C++ resets even a stream the client has ended; curl may
  // then lose the answer that came with it.) Submitted before the status
  // went out, the reset would have replaced it.
  if (stream != nullptr && stream->reset_after_answer &&
      nghttp2_session_get_stream_remote_close(session, stream->id) == 0) {
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream->id, NGHTTP2_NO_ERROR);
  }
  return 0;
}

void Connection::OnRequestHeaders(Stream& stream) {
  // Refused before anything runs, as gRPC C++'s server refuses them: status
  // 200, trailers-only UNKNOWN (then RST_STREAM NO_ERROR, see OnFrameSend);
  // the method is checked first. Like it, any content-type is taken (gRPC C++ only logs
  // one that is not application/grpc, application/grpc+... or ;...).
  const char* refusal = stream.method != "POST" ? "Bad method header"
                        : !stream.has_te        ? "Missing :te header"
                                                : nullptr;
  if (refusal != nullptr) {
    stream.reset_after_answer = true;
    return Fail(stream, grpc::StatusCode::UNKNOWN, refusal);
  }
  if (!stream.bad_header.empty()) {
    return Fail(stream, grpc::StatusCode::INTERNAL,
                "malformed request header " + stream.bad_header);
  }
  stream.native = NativeMethod(stream.path);
  const bool keepalive =
      loop_->context().options->lease != nullptr && stream.path == h2front::kLeaseKeepAlivePath;
  const bool watch =
      loop_->context().options->watch != nullptr && stream.path == h2front::kWatchPath;
  if (stream.native || keepalive || watch) {
    stream.started = std::chrono::steady_clock::now();
    // Counted as begun now, as gRPC's interceptor counts a call it is
    // created for; Finish or RecordUnfinished counts its end.
    stream.counted = true;
    const auto& record_start = loop_->context().options->record_native_start;
    if (record_start) record_start(stream.path);
    if (keepalive) return OpenKeepAlive(stream);
    if (watch) return OpenWatch(stream);
    return;  // runs once its one message is in
  }
  const FrontContext& context = loop_->context();
  std::weak_ptr<Mailbox> mailbox = loop_->mailbox();
  const uint64_t conn_id = id_;
  const int32_t stream_id = stream.id;
  // The relayed call counts as in flight until its forwarder is destroyed,
  // with the sink that holds this: not only until kFinished, since the
  // forwarder (its ClientContext, which holds the channel) is torn down on
  // gRPC's thread after that, and Stop must not return before.
  auto hold = std::make_shared<InFlightHold>(context.in_flight);
  if (common_name_) {
    // The relayed call's identity: the in-process channel names no connection.
    stream.metadata.emplace_back(kRelayedIdentityKey, SealedIdentity(*common_name_));
  }
  stream.forwarder = Forwarder::Start(
      context.stub, stream.path, stream.metadata, stream.timeout,
      [mailbox, conn_id, stream_id, hold](ForwardEvent event) {
        if (auto box = mailbox.lock()) {
          box->Post([conn_id, stream_id, event = std::move(event)](Loop& loop) mutable {
            Connection* conn = loop.Find(conn_id);
            if (conn == nullptr) return;
            conn->Relay(stream_id, std::move(event));
            loop.MarkDirty(conn_id);
          });
        }
      },
      context.relay_queued);
}

void Connection::OnRequestData(Stream& stream) {
  if (!stream.forwarder) {
    // A native call takes one message; a prefix announcing too much is
    // refused before the rest is buffered.
    const uint32_t max = loop_->context().options->max_receive_message_bytes;
    if (auto refusal = h2front::RefusalOf(h2front::CutMessage(stream.inbound, max), max)) {
      Fail(stream, refusal->error_code(), refusal->error_message());
    }
    return;
  }
  const uint32_t max = loop_->context().options->max_receive_message_bytes;
  size_t used = 0;
  for (;;) {
    auto cut = h2front::CutMessage(std::string_view(stream.inbound).substr(used), max);
    if (cut.result == h2front::MessageCut::Result::kIncomplete) break;
    if (auto refusal = h2front::RefusalOf(cut, max)) {
      return Fail(stream, refusal->error_code(), refusal->error_message());
    }
    stream.queued = stream.forwarder->Send(std::string(cut.payload));
    used += cut.consumed;
  }
  stream.inbound.erase(0, used);
}

void Connection::OnRequestEnd(Stream& stream) {
  if (stream.answered_locally || stream.finished) return;
  if (stream.keepalive) {
    stream.keepalive->HalfClosed();
    return AfterKeepAlive(stream);
  }
  if (stream.watch) {
    stream.watch->HalfClosed();
    return AfterWatch(stream);
  }
  if (stream.forwarder) {
    stream.forwarder->HalfClose();
    return;
  }
  if (stream.native) StartNative(stream);
}

void Connection::StartNative(Stream& stream) {
  const uint32_t max = loop_->context().options->max_receive_message_bytes;
  auto cut = h2front::CutMessage(stream.inbound, max);
  if (auto refusal = h2front::RefusalOf(cut, max)) {
    return Fail(stream, refusal->error_code(), refusal->error_message());
  }
  if (cut.result != h2front::MessageCut::Result::kMessage ||
      cut.consumed != stream.inbound.size()) {
    return Fail(stream, grpc::StatusCode::INTERNAL,
                "a unary call needs exactly one request message");
  }
  auto call = std::make_shared<NativeCall>();
  call->method = *stream.native;
  switch (call->method) {
    case KvMethod::kRange:
      call->request = std::make_unique<etcdserverpb::RangeRequest>();
      call->response = std::make_unique<etcdserverpb::RangeResponse>();
      break;
    case KvMethod::kPut:
      call->request = std::make_unique<etcdserverpb::PutRequest>();
      call->response = std::make_unique<etcdserverpb::PutResponse>();
      break;
    case KvMethod::kDeleteRange:
      call->request = std::make_unique<etcdserverpb::DeleteRangeRequest>();
      call->response = std::make_unique<etcdserverpb::DeleteRangeResponse>();
      break;
    case KvMethod::kTxn:
      call->request = std::make_unique<etcdserverpb::TxnRequest>();
      call->response = std::make_unique<etcdserverpb::TxnResponse>();
      break;
    case KvMethod::kCompact:
      call->request = std::make_unique<etcdserverpb::CompactionRequest>();
      call->response = std::make_unique<etcdserverpb::CompactionResponse>();
      break;
  }
  if (!call->request->ParseFromArray(cut.payload.data(), static_cast<int>(cut.payload.size()))) {
    return Fail(stream, grpc::StatusCode::INTERNAL, "cannot parse the request message");
  }
  stream.inbound.clear();
  if (stream.timeout) {
    // As gRPC's server: past its deadline the call fails, whatever it waits on.
    const auto due =
        std::chrono::steady_clock::now() +
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(*stream.timeout);
    stream.deadline = loop_->deadlines().emplace(due, std::make_pair(id_, stream.id));
  }

  KvCallInfo info;
  info.credentials = CredentialsOf(stream);
  info.requires_leader =
      FirstValue(stream.metadata, "hasleader") == std::optional<std::string>("true");
  const bool write = call->method == KvMethod::kPut || call->method == KvMethod::kDeleteRange ||
                     call->method == KvMethod::kTxn;
  if (write) {
    info.fence = FenceFrom(FirstValue(stream.metadata, kFenceKeyMetadata),
                           FirstValue(stream.metadata, kFenceRevisionMetadata));
  }

  const FrontContext& context = loop_->context();
  context.in_flight->Add();
  std::shared_ptr<Mailbox> mailbox = loop_->mailbox();
  const uint64_t conn_id = id_;
  const int32_t stream_id = stream.id;
  InFlight* in_flight = context.in_flight;
  KvDone done = [call, mailbox, conn_id, stream_id, in_flight](const Status& st) {
    auto answer = [call, conn_id, stream_id, st](Loop& loop) {
      Connection* conn = loop.Find(conn_id);
      if (conn == nullptr) return;
      conn->AnswerNative(stream_id, *call, st);
      loop.MarkDirty(conn_id);
    };
    if (std::this_thread::get_id() == mailbox->owner) {
      answer(*mailbox->loop);  // served inline (a serializable read)
    } else {
      mailbox->Post(std::move(answer));
    }
    in_flight->Done();
  };
  const KvHandler& kv = *context.options->kv;
  switch (call->method) {
    case KvMethod::kRange:
      return kv.Range(info, static_cast<etcdserverpb::RangeRequest*>(call->request.get()),
                      static_cast<etcdserverpb::RangeResponse*>(call->response.get()),
                      std::move(done));
    case KvMethod::kPut:
      return kv.Put(info, static_cast<etcdserverpb::PutRequest*>(call->request.get()),
                    static_cast<etcdserverpb::PutResponse*>(call->response.get()), std::move(done));
    case KvMethod::kDeleteRange:
      return kv.DeleteRange(
          info, static_cast<etcdserverpb::DeleteRangeRequest*>(call->request.get()),
          static_cast<etcdserverpb::DeleteRangeResponse*>(call->response.get()), std::move(done));
    case KvMethod::kTxn:
      return kv.Txn(info, static_cast<etcdserverpb::TxnRequest*>(call->request.get()),
                    static_cast<etcdserverpb::TxnResponse*>(call->response.get()), std::move(done));
    case KvMethod::kCompact:
      return kv.Compact(info, static_cast<etcdserverpb::CompactionRequest*>(call->request.get()),
                        static_cast<etcdserverpb::CompactionResponse*>(call->response.get()),
                        std::move(done));
  }
}

CallCredentials Connection::CredentialsOf(const Stream& stream) const {
  CallCredentials credentials;
  credentials.token = FirstValue(stream.metadata, "token");
  if (!credentials.token) credentials.token = FirstValue(stream.metadata, "authorization");
  if (!credentials.token) credentials.common_name = common_name_;
  return credentials;
}

void Connection::BeginNativeStream(Stream& stream) {
  // As gRPC C++'s server: a status sent while the client still sends is
  // followed by RST_STREAM NO_ERROR (OnFrameSend).
  stream.reset_after_answer = true;
  if (stream.timeout) {
    // As gRPC's server: past its deadline the stream fails.
    const auto due =
        std::chrono::steady_clock::now() +
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(*stream.timeout);
    stream.deadline = loop_->deadlines().emplace(due, std::make_pair(id_, stream.id));
  }
}

template <typename Task>
std::function<void(Task)> Connection::PostHook(int32_t stream_id,
                                               void (Connection::*run)(int32_t, const Task&),
                                               bool inline_on_loop) {
  std::weak_ptr<Mailbox> mailbox = loop_->mailbox();
  const uint64_t conn_id = id_;
  auto hold = std::make_shared<InFlightHold>(loop_->context().in_flight);
  return [mailbox, conn_id, stream_id, run, inline_on_loop, hold](Task task) {
    auto box = mailbox.lock();
    if (box == nullptr) return;
    auto on_loop = [conn_id, stream_id, run, task = std::move(task)](Loop& loop) {
      Connection* conn = loop.Find(conn_id);
      if (conn == nullptr) return;
      (conn->*run)(stream_id, task);
      loop.MarkDirty(conn_id);
    };
    if (inline_on_loop && std::this_thread::get_id() == box->owner) {
      on_loop(*box->loop);
    } else {
      box->Post(std::move(on_loop));
    }
  };
}

std::function<void(const grpc::Status&)> Connection::FinishHook(int32_t stream_id) {
  return [this, stream_id](const grpc::Status& status) {
    if (Stream* s = Find(stream_id)) Finish(*s, status, {});
  };
}

std::function<void(const grpc::Status&)> Connection::FailHook(int32_t stream_id) {
  return [this, stream_id](const grpc::Status& status) {
    if (Stream* s = Find(stream_id)) Fail(*s, status.error_code(), status.error_message());
  };
}

void Connection::OpenKeepAlive(Stream& stream) {
  const FrontContext& context = loop_->context();
  BeginNativeStream(stream);
  const int32_t stream_id = stream.id;
  KeepAliveStream::Hooks hooks;
  // A renewal the leader's lessor answered inline is answered inline.
  hooks.post = PostHook(stream_id, &Connection::RunKeepAlive, /*inline_on_loop=*/true);
  hooks.write = [this, stream_id](const etcdserverpb::LeaseKeepAliveResponse& response) {
    return WriteKeepAlive(stream_id, response);
  };
  hooks.finish = FinishHook(stream_id);
  hooks.fail = FailHook(stream_id);
  const bool requires_leader =
      FirstValue(stream.metadata, "hasleader") == std::optional<std::string>("true");
  auto opened = KeepAliveStream::Open(context.options->lease, context.options->leader_monitor,
                                      requires_leader, context.options->max_receive_message_bytes,
                                      std::move(hooks));
  if (!opened.ok()) {
    const grpc::Status refusal = ToGrpcStatus(opened.status());
    return Fail(stream, refusal.error_code(), refusal.error_message());
  }
  stream.keepalive = std::move(*opened);
}

bool Connection::WriteKeepAlive(int32_t stream_id,
                                const etcdserverpb::LeaseKeepAliveResponse& response) {
  Stream* stream = Find(stream_id);
  if (stream == nullptr || stream->finished) return true;
  AppendMessage(response, &stream->outbound);
  Wake(*stream);
  return stream->outbound.size() < kKeepAliveBufferedBytes;
}

void Connection::RunKeepAlive(int32_t stream_id, const KeepAliveStream::Task& task) {
  Stream* stream = Find(stream_id);
  if (stream == nullptr || stream->finished || !stream->keepalive) return;
  task(*stream->keepalive);
  AfterKeepAlive(*stream);
}

void Connection::AfterKeepAlive(Stream& stream) {
  if (stream.finished || !stream.keepalive || stream.withheld == 0) return;
  if (stream.keepalive->buffered() > kKeepAliveBufferedBytes) return;
  nghttp2_session_consume_stream(session_, stream.id, stream.withheld);
  stream.withheld = 0;
}

void Connection::ResumeKeepAlives() {
  std::vector<int32_t> ids;
  ids.swap(writable_keepalives_);
  for (int32_t id : ids) {
    RunKeepAlive(id, [](KeepAliveStream& keepalive) { keepalive.Writable(); });
  }
}

void Connection::OpenWatch(Stream& stream) {
  const FrontContext& context = loop_->context();
  BeginNativeStream(stream);
  const int32_t stream_id = stream.id;
  WatchStreamAdapter::Hooks hooks;
  // Always queued: the WatchStream posts from inside its own writes.
  hooks.post = PostHook(stream_id, &Connection::RunWatch, /*inline_on_loop=*/false);
  hooks.write = [this, stream_id](std::string&& framed) {
    return WriteWatch(stream_id, std::move(framed));
  };
  hooks.finish = FinishHook(stream_id);
  hooks.fail = FailHook(stream_id);
  const bool requires_leader =
      FirstValue(stream.metadata, "hasleader") == std::optional<std::string>("true");
  auto opened = WatchStreamAdapter::Open(
      context.options->watch, context.options->leader_monitor, requires_leader,
      CredentialsOf(stream), context.options->max_receive_message_bytes, std::move(hooks));
  if (!opened.ok()) {
    const grpc::Status refusal = ToGrpcStatus(opened.status());
    return Fail(stream, refusal.error_code(), refusal.error_message());
  }
  stream.watch = std::move(*opened);
}

bool Connection::WriteWatch(int32_t stream_id, std::string&& framed) {
  Stream* stream = Find(stream_id);
  // A call already answered (past its deadline, say) takes nothing more:
  // its write stays open, so its WatchStream's queue fills and the hub
  // stops sending to it until the stream closes.
  if (stream == nullptr || stream->finished) return false;
  stream->outbound.Append(std::move(framed));
  Wake(*stream);
  const bool behind = ClientBehind(*stream);
  if (stream->outbound.size() + pending_out_.size() < kWatchBufferedBytes && !behind) {
    return true;
  }
  if (behind) HoldForWindow(*stream);
  if (std::find(paused_watches_.begin(), paused_watches_.end(), stream_id) ==
      paused_watches_.end()) {
    paused_watches_.push_back(stream_id);
  }
  return false;
}

void Connection::RunWatch(int32_t stream_id, const WatchStreamAdapter::Task& task) {
  Stream* stream = Find(stream_id);
  if (stream == nullptr || stream->finished || !stream->watch) return;
  task(*stream->watch);
  AfterWatch(*stream);
}

void Connection::AfterWatch(Stream& stream) {
  if (stream.finished || !stream.watch || stream.withheld == 0) return;
  if (stream.watch->buffered() > kWatchBufferedBytes) return;
  nghttp2_session_consume_stream(session_, stream.id, stream.withheld);
  stream.withheld = 0;
}

bool Connection::ClientBehind(Stream& stream) {
  if (stream.acknowledges_late) return false;
  const int32_t window = nghttp2_session_get_stream_remote_window_size(session_, stream.id);
  stream.peak_remote_window = std::max(stream.peak_remote_window, window);
  return window < stream.peak_remote_window / 2;
}

void Connection::HoldForWindow(Stream& stream) {
  if (stream.window_hold_since) return;
  stream.window_hold_since = std::chrono::steady_clock::now();
  loop_->window_holds().emplace(*stream.window_hold_since, std::make_pair(id_, stream.id));
}

void Connection::WindowHoldExpired(int32_t stream_id, std::chrono::steady_clock::time_point since) {
  Stream* stream = Find(stream_id);
  // Else the wait ended in time (or began again later: its own entry).
  if (stream == nullptr || stream->window_hold_since != since) return;
  stream->window_hold_since.reset();
  stream->acknowledges_late = true;
  // The flush that follows (the loop marks the connection dirty) resumes it.
}

bool Connection::ResumeWatches() {
  if (paused_watches_.empty() || pending_out_.size() >= kWatchBufferedBytes / 2) return false;
  std::vector<int32_t> ids;
  ids.swap(paused_watches_);
  bool resumed = false;
  for (int32_t id : ids) {
    Stream* stream = Find(id);
    if (stream == nullptr || stream->finished || !stream->watch) continue;
    const bool behind = ClientBehind(*stream);
    if (stream->outbound.size() >= kWatchBufferedBytes / 2 || behind) {
      // Its own window is what holds it: a later flush (the client's
      // WINDOW_UPDATE) tries again.
      if (behind) HoldForWindow(*stream);
      paused_watches_.push_back(id);
      continue;
    }
    stream->window_hold_since.reset();
    RunWatch(id, [](WatchStreamAdapter& watch) { watch.Writable(); });
    resumed = true;
  }
  return resumed;
}

void Connection::AnswerNative(int32_t stream_id, NativeCall& call, const Status& status) {
  Stream* stream = Find(stream_id);
  if (stream == nullptr || stream->answered_locally) return;
  if (!status.ok()) return Finish(*stream, ToGrpcStatus(status), {});
  AppendMessage(*call.response, &stream->outbound);
  Finish(*stream, grpc::Status::OK, {});
}

void Connection::Expire(int32_t stream_id) {
  Stream* stream = Find(stream_id);
  if (stream == nullptr) return;
  stream->deadline.reset();  // the loop has erased the entry
  if (stream->finished) return;
  // gRPC's own status for a call past its deadline; the handler's answer,
  // when it comes, is dropped.
  Fail(*stream, grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded");
}

void Connection::Relay(int32_t stream_id, ForwardEvent event) {
  Stream* stream = Find(stream_id);
  if (stream == nullptr || stream->answered_locally) return;
  switch (event.kind) {
    case ForwardEvent::Kind::kHeaders:
      stream->initial_metadata = std::move(event.metadata);
      SubmitResponse(*stream);
      return;
    case ForwardEvent::Kind::kMessage:
      AppendFramed(std::move(event.message), &stream->outbound);
      if (stream->outbound.size() < kRelayBufferedBytes) {
        stream->forwarder->ReadMore();
      } else {
        stream->read_paused = true;
      }
      Wake(*stream);
      return;
    case ForwardEvent::Kind::kDrained:
      stream->awaiting_drain = false;
      // The call may have ended first (Finish returned the window then).
      if (!stream->forwarder) return;
      // The queue was at the mark when this was posted, but the client's
      // messages Sent since (its window not returned yet) may have filled
      // it again: the window goes back only if it is still at most the
      // bound now, else the client would get a window more than the bound
      // allows.
      stream->queued = stream->forwarder->queued();
      if (stream->queued > kRelayQueueBytes) {
        stream->awaiting_drain = true;
        stream->forwarder->NotifyWhenQueuedAtMost(kRelayQueueBytes);
        return;
      }
      if (stream->withheld > 0) {
        nghttp2_session_consume_stream(session_, stream->id, stream->withheld);
        stream->withheld = 0;
      }
      return;
    case ForwardEvent::Kind::kFinished:
      stream->forwarder.reset();
      Finish(*stream, event.status, event.metadata);
      return;
  }
}

void Connection::RecordUnfinished(const Stream& stream) {
  const auto& record = loop_->context().options->record_native_call;
  if (!stream.counted || stream.finished || !record) return;
  record(stream.path, grpc::StatusCode::CANCELLED,
         std::chrono::steady_clock::now() - stream.started);
}

void Connection::Fail(Stream& stream, grpc::StatusCode code, const std::string& message) {
  stream.answered_locally = true;
  stream.inbound.clear();
  if (stream.forwarder) {
    stream.forwarder->Cancel();
    stream.forwarder.reset();
  }
  stream.outbound.Clear();
  Finish(stream, grpc::Status(code, message), {});
}

void Connection::Finish(Stream& stream, const grpc::Status& status, const Metadata& trailing) {
  if (stream.finished) return;
  stream.finished = true;
  // What the client sends from now on is dropped: its window goes back.
  if (stream.withheld > 0) {
    nghttp2_session_consume_stream(session_, stream.id, stream.withheld);
    stream.withheld = 0;
  }
  if (stream.deadline) {
    loop_->deadlines().erase(*stream.deadline);
    stream.deadline.reset();
  }
  const auto& record = loop_->context().options->record_native_call;
  if (stream.counted && record) {
    record(stream.path, status.error_code(), std::chrono::steady_clock::now() - stream.started);
  }
  stream.trailers.emplace_back("grpc-status",
                               std::to_string(static_cast<int>(status.error_code())));
  if (!status.error_message().empty()) {
    stream.trailers.emplace_back("grpc-message", h2front::PercentEncode(status.error_message()));
  }
  for (const auto& [name, value] : trailing) {
    if (EndsWith(name, "-bin")) {
      stream.trailers.emplace_back(name, h2front::EncodeBinaryHeader(value));
    } else {
      stream.trailers.emplace_back(name, value);
    }
  }
  Wake(stream);
}

void Connection::Wake(Stream& stream) {
  if (!stream.response_submitted) return SubmitResponse(stream);
  if (stream.deferred) {
    stream.deferred = false;
    nghttp2_session_resume_data(session_, stream.id);
  }
}

nghttp2_nv Header(const std::string& name, const std::string& value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

void Connection::SubmitResponse(Stream& stream) {
  if (stream.response_submitted) return;
  stream.response_submitted = true;
  static const std::string kStatus = ":status";
  static const std::string k200 = "200";
  static const std::string kContentType = "content-type";
  static const std::string kGrpc = "application/grpc";
  std::vector<nghttp2_nv> headers = {Header(kStatus, k200), Header(kContentType, kGrpc)};
  for (auto& [name, value] : stream.initial_metadata) {
    if (name.empty() || name[0] == ':' || name == "content-type") continue;
    if (EndsWith(name, "-bin")) value = h2front::EncodeBinaryHeader(value);
    headers.push_back(Header(name, value));
  }
  if (stream.finished && stream.outbound.empty()) {
    // Trailers-only: nothing to send but the status.
    for (const auto& [name, value] : stream.trailers) headers.push_back(Header(name, value));
    nghttp2_submit_response(session_, stream.id, headers.data(), headers.size(), nullptr);
    return;
  }
  nghttp2_data_provider provider;
  provider.source.ptr = &stream;
  provider.read_callback = ReadReply;
  nghttp2_submit_response(session_, stream.id, headers.data(), headers.size(), &provider);
}

ssize_t Connection::ReadReply(nghttp2_session* session, int32_t stream_id, uint8_t* /*buf*/,
                              size_t length, uint32_t* data_flags, nghttp2_data_source* source,
                              void* self) {
  auto* stream = static_cast<Stream*>(source->ptr);
  const size_t unsent = stream->outbound.size();
  const size_t n = std::min(length, unsent);
  // Not copied into nghttp2's frame buffer: nghttp2 calls SendReplyData
  // for this frame before the mem_send that asked returns, and that
  // appends the bytes behind the frame header straight from `outbound`.
  if (n > 0) *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  // What stays queued once this frame's bytes are out.
  const size_t left = unsent - n;
  if (stream->read_paused && left < kRelayBufferedBytes / 2) {
    stream->read_paused = false;
    if (stream->forwarder) stream->forwarder->ReadMore();
  }
  // A keep-alive that stopped reading because its replies piled up goes on
  // once they are mostly out (after this callback: see Flush).
  if (stream->keepalive && stream->keepalive->paused() && left < kKeepAliveBufferedBytes / 2) {
    auto& writable = static_cast<Connection*>(self)->writable_keepalives_;
    if (std::find(writable.begin(), writable.end(), stream_id) == writable.end()) {
      writable.push_back(stream_id);
    }
  }
  if (left > 0) return static_cast<ssize_t>(n);
  if (!stream->finished) {
    if (n > 0) return static_cast<ssize_t>(n);
    stream->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  // Everything is out: the stream ends with the trailers, not with DATA.
  *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
  std::vector<nghttp2_nv> trailers;
  for (const auto& [name, value] : stream->trailers) trailers.push_back(Header(name, value));
  if (nghttp2_submit_trailer(session, stream_id, trailers.data(), trailers.size()) != 0) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  return static_cast<ssize_t>(n);
}

int Connection::SendReplyData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                              size_t length, nghttp2_data_source* source, void* self) {
  auto* conn = static_cast<Connection*>(self);
  auto* stream = static_cast<Stream*>(source->ptr);
  // No padding: the session has no select_padding callback.
  if (frame->data.padlen != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
  constexpr size_t kFrameHeaderBytes = 9;
  conn->pending_out_.append(reinterpret_cast<const char*>(framehd), kFrameHeaderBytes);
  stream->outbound.MoveFrontTo(length, &conn->pending_out_);
  return 0;
}

bool Connection::OnReadable() {
  uint8_t buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    if (nghttp2_session_mem_recv(session_, buf, static_cast<size_t>(n)) < 0) return false;
    if (static_cast<size_t>(n) < sizeof buf) break;  // drained; skip the EAGAIN read
  }
  return Flush();
}

bool Connection::Flush() {
  // Watch streams held back are resumed once the socket took the backlog;
  // their replies then go out in this same flush. It ends when the socket
  // is full, or when no stream held back has more to send.
  do {
    for (;;) {
      const uint8_t* data;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) return false;
      if (n > 0) {
        pending_out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
        continue;
      }
      // Keep-alives whose replies drained take their next requests; their
      // answers (when inline) go out in this same flush.
      if (writable_keepalives_.empty()) break;
      ResumeKeepAlives();
    }
    size_t sent = 0;
    while (sent < pending_out_.size()) {
      const ssize_t n =
          ::send(fd_, pending_out_.data() + sent, pending_out_.size() - sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return false;
      }
      sent += static_cast<size_t>(n);
    }
    pending_out_.erase(0, sent);
  } while (ResumeWatches());
  return nghttp2_session_want_read(session_) || nghttp2_session_want_write(session_) ||
         !pending_out_.empty();
}

// ---- Loop

Loop::Loop(FrontContext context)
    : context_(context),
      epoll_fd_(epoll_create1(EPOLL_CLOEXEC)),
      mailbox_(std::make_shared<Mailbox>(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC))) {
  mailbox_->loop = this;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kMailboxEventId;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, mailbox_->eventfd, &ev);
}

Loop::~Loop() {
  connections_.clear();
  ::close(epoll_fd_);
}

void Loop::AddConnection(int fd, std::optional<std::string> common_name) {
  if (draining_) {
    ::close(fd);
    return;
  }
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    ::close(fd);
    return;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const uint64_t id = next_connection_id_++;
  auto conn = std::make_unique<Connection>(this, id, fd, std::move(common_name));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) return;  // conn closes fd
  Connection& ref = *conn;
  connections_.emplace(id, std::move(conn));
  // The server's SETTINGS go out at once.
  AfterIo(id, ref, ref.Flush(), false);
}

Connection* Loop::Find(uint64_t id) {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second.get();
}

void Loop::Close(uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second->fd(), nullptr);
  connections_.erase(it);
}

void Loop::AfterIo(uint64_t id, Connection& conn, bool alive, bool had_pending) {
  if (!alive) return Close(id);
  if (conn.WantsWrite() != had_pending) {
    epoll_event ev{};
    ev.events = conn.WantsWrite() ? uint32_t{EPOLLIN | EPOLLOUT} : uint32_t{EPOLLIN};
    ev.data.u64 = id;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn.fd(), &ev);
  }
}

void Loop::RunTasks() {
  uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(mailbox_->eventfd, &count, sizeof count);
  for (LoopTask& task : mailbox_->Take()) task(*this);
}

int Loop::ExpireDeadlines() {
  const auto now = std::chrono::steady_clock::now();
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const auto [conn_id, stream_id] = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    if (Connection* conn = Find(conn_id)) {
      conn->Expire(stream_id);
      MarkDirty(conn_id);
    }
  }
  const auto hold_limit = context_.options->watch_window_hold_limit;
  while (!window_holds_.empty() && window_holds_.begin()->first + hold_limit <= now) {
    const auto since = window_holds_.begin()->first;
    const auto [conn_id, stream_id] = window_holds_.begin()->second;
    window_holds_.erase(window_holds_.begin());
    if (Connection* conn = Find(conn_id)) {
      conn->WindowHoldExpired(stream_id, since);
      MarkDirty(conn_id);
    }
  }
  std::optional<std::chrono::steady_clock::time_point> next;
  if (!deadlines_.empty()) next = deadlines_.begin()->first;
  if (!window_holds_.empty()) {
    const auto due = window_holds_.begin()->first + hold_limit;
    next = next ? std::min(*next, due) : due;
  }
  if (!next) return -1;
  // Rounded up, so the loop never wakes just before a deadline.
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(*next - now).count());
}

void Loop::Drain(std::chrono::steady_clock::time_point deadline) {
  if (draining_) return;
  draining_ = true;
  drain_deadline_ = deadline;
  for (auto& [id, conn] : connections_) {
    conn->GoAway();
    MarkDirty(id);
  }
}

int Loop::WaitForEvents(epoll_event* events, int max_events, int timeout_ms) {
  const int ready = epoll_wait(epoll_fd_, events, max_events, timeout_ms);
  // Checked once the wait is over, so the first write after the pause may
  // be proposed here again.
  if (inline_paused_until_ && std::chrono::steady_clock::now() >= *inline_paused_until_) {
    inline_paused_until_.reset();
    server::InlineProposals::AllowOnThisThread(true);
  }
  return ready;
}

void Loop::HandleEvents(const epoll_event* events, int ready) {
  for (int i = 0; i < ready; ++i) {
    const uint64_t id = events[i].data.u64;
    if (id == kMailboxEventId) {
      RunTasks();
      continue;
    }
    Connection* conn = Find(id);
    if (conn == nullptr) continue;
    const bool had_pending = conn->WantsWrite();
    bool alive =
        (events[i].events & (EPOLLERR | EPOLLHUP)) == 0 || (events[i].events & EPOLLIN) != 0;
    if (alive && (events[i].events & EPOLLOUT)) alive = conn->Flush();
    if (alive && (events[i].events & EPOLLIN)) alive = conn->OnReadable();
    AfterIo(id, *conn, alive, had_pending);
  }
}

void Loop::HandleWritesFromDuringTheFlush(epoll_event* events, int max_events) {
  // No client has this flush's answers yet, so a write read now was sent
  // while this thread flushed: by another writer, or pipelined.
  const int ready = epoll_wait(epoll_fd_, events, max_events, 0);
  if (ready <= 0) return;
  HandleEvents(events, ready);
  if (!server::InlineProposals::HasDeferred()) return;
  inline_paused_until_ = std::chrono::steady_clock::now() + kInlinePause;
  server::InlineProposals::AllowOnThisThread(false);
  server::InlineProposals::RunDeferred();  // to the raft loop
}

void Loop::Run() {
  mailbox_->owner = std::this_thread::get_id();
  epoll_event events[256];
  for (;;) {
    if (draining_ &&
        (connections_.empty() || std::chrono::steady_clock::now() >= drain_deadline_)) {
      break;
    }
    // Calls failed by their deadline just now are flushed below, at once.
    int timeout_ms = ExpireDeadlines();
    if (draining_) {
      const auto left = drain_deadline_ - std::chrono::steady_clock::now();
      const int left_ms = static_cast<int>(
          std::max<int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(left).count()));
      timeout_ms = timeout_ms < 0 ? left_ms : std::min(timeout_ms, left_ms);
    }
    const int ready = WaitForEvents(events, 256, dirty_.empty() ? timeout_ms : 0);
    if (ready < 0 && errno != EINTR) break;
    HandleEvents(events, ready);
    // The writes these events proposed: run here if the raft loop sleeps
    // (their answers then come inline), else handed to it.
    if (server::InlineProposals::RunDeferred()) HandleWritesFromDuringTheFlush(events, 256);
    // Answers that arrived from the mailbox (or inline) go out in one
    // send per connection.
    std::vector<uint64_t> dirty;
    dirty.swap(dirty_);
    for (uint64_t id : dirty) {
      Connection* conn = Find(id);
      if (conn == nullptr) continue;
      const bool had_pending = conn->WantsWrite();
      AfterIo(id, *conn, conn->Flush(), had_pending);
    }
  }
  // The grace period is over: what is still open is cut off (relayed calls
  // are cancelled with their connections, native answers dropped).
  server::InlineProposals::RunDeferred();
  for (auto& [id, conn] : connections_) conn->Flush();
  connections_.clear();
}

}  // namespace

// ---- H2Front

struct H2Front::Impl {
  H2FrontOptions options;
  std::unique_ptr<grpc::GenericStub> stub;
  InFlight in_flight;
  h2front::QueuedBytes relay_queued;
  std::vector<std::unique_ptr<Loop>> loops;
  std::vector<std::thread> threads;
  std::atomic<uint64_t> next_loop{0};
  std::atomic<bool> stopping{false};  // Adopt closes what it is given
  std::mutex stop_mu;
  bool stopped = false;  // guarded by stop_mu
};

H2Front::H2Front(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<H2Front>> H2Front::Start(const H2FrontOptions& options) {
  if (options.kv == nullptr || options.channel == nullptr) {
    return Status::InvalidArgument("the HTTP/2 front needs the KV handler and the gRPC channel");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->stub = std::make_unique<grpc::GenericStub>(options.channel);
  const FrontContext context{&impl->options, impl->stub.get(), &impl->in_flight,
                             &impl->relay_queued};
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    impl->loops.push_back(std::make_unique<Loop>(context));
  }
  for (auto& loop : impl->loops) {
    impl->threads.emplace_back([raw = loop.get()] {
      pthread_setname_np(pthread_self(), "h2-front");
      // A loop never waits for the member's threads (server/interfaces.h).
      server::InlineProposals::AllowOnThisThread();
      raw->Run();
    });
  }
  return std::unique_ptr<H2Front>(new H2Front(std::move(impl)));
}

H2Front::~H2Front() { Stop(std::chrono::milliseconds(0)); }

void H2Front::Adopt(int fd, std::optional<std::string> common_name) {
  if (impl_->stopping.load()) {
    ::close(fd);
    return;
  }
  // The task owns the socket until a loop takes it: one still queued when
  // its loop has ended (Stop raced with this call) is destroyed unrun, and
  // a post refused by a closed mailbox is destroyed at once; both close it.
  struct OwnedSocket {
    int fd;
    ~OwnedSocket() {
      if (fd >= 0) ::close(fd);
    }
    int Release() { return std::exchange(fd, -1); }
  };
  auto socket = std::make_shared<OwnedSocket>(fd);
  Loop& loop = *impl_->loops[impl_->next_loop++ % impl_->loops.size()];
  loop.mailbox()->Post([socket, common_name = std::move(common_name)](Loop& l) mutable {
    l.AddConnection(socket->Release(), std::move(common_name));
  });
}

H2Front::RelayQueue H2Front::relay_queue() const {
  return {impl_->relay_queued.now.load(std::memory_order_relaxed),
          impl_->relay_queued.peak.load(std::memory_order_relaxed)};
}

void H2Front::Stop(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->stopping = true;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto& loop : impl_->loops) {
    loop->mailbox()->Post([deadline](Loop& l) { l.Drain(deadline); });
  }
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  // Relayed calls still open at the deadline were cancelled with their
  // connections; native ones end when the member answers them, answer
  // dropped or not (as gRPC's server waits for its handlers).
  impl_->in_flight.WaitIdle();
  for (auto& loop : impl_->loops) loop->mailbox()->Close();
}

}  // namespace etcdpp::api

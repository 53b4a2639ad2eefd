// A client of this member's own KV, Lease and Watch services over the gRPC
// server's in-process channel. The Lock and Election services are built on it,
// as etcd builds them on an in-process clientv3: they see exactly what any
// client sees (proposals through Raft, linearizable reads, watches), so they
// depend on no server internals, work the same on every member, and stay
// correct across leader changes because Raft orders every step they take.
//
// Every call is asynchronous (gRPC's callback API), so a waiting Lock or
// Campaign holds no thread. Callbacks run on gRPC's threads and may run before
// the call that started them returns: never hold a lock while starting a call.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "etcdserverpb/rpc.grpc.pb.h"

namespace etcdpp::api::concurrency {

// The services' way to refuse a call before it runs (a learner, or a client
// that asked for a leader while there is none): OK lets it run.
using CallGate = std::function<grpc::Status(const grpc::CallbackServerContext&)>;

class SelfClient;
class SelfClientSlot;

// The client for a new call, or nullptr with `*refusal` set: the gate refused
// the call, or the server is not serving yet.
std::shared_ptr<SelfClient> Admit(const SelfClientSlot& slot, const CallGate& gate,
                                  const grpc::CallbackServerContext& context,
                                  grpc::Status* refusal);

// A unary call's reactor, already finished with `status`.
grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const grpc::Status& status);

// Prefix ranges of etcd's clientv3: [prefix, prefix with its last byte + 1).
std::string PrefixEnd(const std::string& prefix);

// A lease ID as etcd's recipes spell it in keys: lower-case hex, no padding.
std::string LeaseHex(int64_t lease);

// Errors of the in-process calls reach the client as etcd 3.4 sends them:
// its lock and election servers return its client's errors, which gRPC
// passes on as UNKNOWN with the original message.
grpc::Status AsRecipeError(const grpc::Status& status);

// What a call gets once the client is closed (the server is stopping).
constexpr char kErrStopped[] = "etcdserver: server stopped";

// Whether a retry may cure `status`: etcd's transient server errors (no
// leader, leader changed, request timed out) are all UNAVAILABLE; a stopping
// server is too, but will not recover.
bool IsTransient(const grpc::Status& status);

// Runs `fn` on a gRPC thread after `delay` (not cancellable).
void RunAfter(std::chrono::milliseconds delay, std::function<void()> fn);

// Deletes `key` if it is still the one created at `create_rev` (a newer key
// of that name belongs to someone else), or whatever its incarnation when
// `create_rev` is 0 (the put that may have created it has an unknown
// outcome), retrying transient failures in the background for a few
// seconds. For a contender that gives up: its key must not linger in the
// queue to be granted later; if every try fails, the key's lease still
// removes it.
void ReleaseKey(std::shared_ptr<SelfClient> client, std::string key, int64_t create_rev);

// Whether a failed write may still have been applied (its answer was lost).
bool OutcomeUnknown(const grpc::Status& status);

// How long a contender's put into the queue may take. It runs detached from
// the client's call, so a client giving up meanwhile cannot leave a key
// nobody knows of: the put's answer says which key to release.
constexpr std::chrono::milliseconds kEnqueueTimeout{30000};

// Calls `done` with `lease`, or when it is 0 with a new lease of
// kDefaultSessionTtl seconds, as etcd's servers do for a request without a
// lease (their clientv3 session grants one).
constexpr int64_t kDefaultSessionTtl = 60;
void EnsureLease(SelfClient& client, const grpc::CallbackServerContext& parent, int64_t lease,
                 std::function<void(const grpc::Status&, int64_t lease)> done);

// Thread-safe; immutable after construction.
class SelfClient {
 public:
  explicit SelfClient(std::shared_ptr<grpc::Channel> channel);

  // A context for a call made on behalf of `parent`: it inherits the
  // client's deadline and is cancelled with it. `parent` must stay unfinished
  // until the call completes.
  static std::unique_ptr<grpc::ClientContext> ChildContext(
      const grpc::CallbackServerContext& parent);
  // A context for a call that outlives the client's call (clean-up after a
  // cancellation), bounded by `timeout`.
  static std::unique_ptr<grpc::ClientContext> DetachedContext(std::chrono::milliseconds timeout);

  template <typename Response>
  using Done = std::function<void(const grpc::Status&, Response&)>;

  // Each owns `context` until `done` has run.
  void Txn(std::shared_ptr<grpc::ClientContext> context, etcdserverpb::TxnRequest request,
           Done<etcdserverpb::TxnResponse> done);
  void Range(std::shared_ptr<grpc::ClientContext> context, etcdserverpb::RangeRequest request,
             Done<etcdserverpb::RangeResponse> done);
  void DeleteRange(std::shared_ptr<grpc::ClientContext> context,
                   etcdserverpb::DeleteRangeRequest request,
                   Done<etcdserverpb::DeleteRangeResponse> done);
  void LeaseGrant(std::shared_ptr<grpc::ClientContext> context,
                  etcdserverpb::LeaseGrantRequest request,
                  Done<etcdserverpb::LeaseGrantResponse> done);

  using WatchReactor =
      grpc::ClientBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>;
  // Opens a Watch stream for `reactor` and runs `start` (its first
  // StartWrite/StartRead/StartCall). False if the client is closed: then
  // nothing started and the reactor gets no reactions.
  bool OpenWatch(grpc::ClientContext* context, WatchReactor* reactor,
                 const std::function<void()>& start);

  // Once this returns no call starts any more (each fails at once with
  // kErrStopped). Call it before the gRPC server shuts down: creating a call
  // on the in-process channel of a server that is shutting down or gone
  // crashes inside gRPC. Calls in flight end as the server cancels them.
  void Close();

 private:
  // Brackets the start of a call; false (nothing to end) once closed.
  bool BeginStart();
  void EndStart();
  template <typename Response, typename Start>
  void Gated(Done<Response>& done, Start start);

  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  const std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  const std::unique_ptr<etcdserverpb::Watch::Stub> watch_;

  std::mutex mu_;
  std::condition_variable no_starts_;
  bool closed_ = false;  // guarded by mu_
  int starting_ = 0;     // guarded by mu_: calls being started (may nest: a
                         // completion can run inside the start of a call)
};

// Where the services find their SelfClient: the in-process channel exists
// only once the gRPC server is built, after the services are registered.
// Thread-safe.
class SelfClientSlot {
 public:
  void Connect(std::shared_ptr<grpc::Channel> channel);
  // nullptr until Connect.
  std::shared_ptr<SelfClient> Get() const;
  // SelfClient::Close on the connected client (before the server goes away).
  void Close();

 private:
  mutable std::mutex mu_;
  std::shared_ptr<SelfClient> client_;  // guarded by mu_
};

}  // namespace etcdpp::api::concurrency

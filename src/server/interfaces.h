// The narrow views of a member that the client API (src/api) is written
// against. EtcdServer implements all of them; the API's unit tests implement
// them with fakes, so a gRPC service is tested without Raft, a WAL or peers.
//
// Every method is thread-safe and never blocks on Raft: anything that needs
// the cluster takes a callback, which runs once, on a server thread (the
// apply thread, or the raft loop: for early errors, and for a leader's
// answers whose WAL flush ended after their apply), and must not block.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "etcdpppb/internal.pb.h"
#include "etcdserverpb/rpc.pb.h"
#include "server/membership.h"

namespace google::protobuf {
class Message;
}
namespace etcdpp::mvcc {
class KvStore;
}

namespace etcdpp::server {

// The outcome of one proposal or membership change. When OK, the response
// object handed over with the request has been filled.
using ProposeCallback = std::function<void(const Status&)>;
// A linearizable read may run once this is called with OK.
using ReadCallback = std::function<void(const Status&)>;

// Puts client requests through Raft.
class Proposer {
 public:
  virtual ~Proposer() = default;
  // `response` has the response type of `request`'s operation and stays
  // alive until `done` runs. `done` sees the applied result, or kTimeout,
  // kStopped, kRequestTooLarge, ...
  virtual void Propose(internalpb::InternalRaftRequest request, google::protobuf::Message* response,
                       ProposeCallback done) = 0;
};

// Proposing inline. A thread that serves clients and never waits for the
// raft loop or the apply thread (the HTTP/2 front's event loops) says so
// once, when it starts. A proposal it makes is then queued without waking
// the raft loop, and the thread calls RunDeferred before it next waits for
// its own work: when the raft loop sleeps with nothing in flight, the
// thread proposes what it queued, writes and flushes the WAL itself, and
// answers what the flush makes durable, saving a sequential write the loop's
// wake-up (server/raft_node.h); otherwise it wakes the loop then.
class InlineProposals {
 public:
  class Runner {
   public:
    // On the thread that deferred: propose what was queued, or wake the
    // thread that will. True when it proposed here.
    virtual bool RunDeferred() = 0;

   protected:
    ~Runner() = default;
  };

  // A thread may also stop and resume proposing inline. While stopped, its
  // proposals wake the raft loop at once, and a RunDeferred hands the ones
  // it queued before to the loop.
  static void AllowOnThisThread(bool allowed = true) { allowed_ = allowed; }
  static bool AllowedOnThisThread() { return allowed_; }
  // Something waits for this thread's next RunDeferred.
  static bool HasDeferred() { return deferred_ != nullptr; }
  // `runner` queued work for this thread to run at its next RunDeferred.
  static void Defer(Runner* runner) {
    if (deferred_ != nullptr && deferred_ != runner) RunDeferred();
    deferred_ = runner;
  }
  // Also runs what the runs' own callbacks deferred. True when anything
  // was proposed on this thread.
  static bool RunDeferred() {
    bool proposed_here = false;
    while (Runner* runner = deferred_) {
      deferred_ = nullptr;
      proposed_here = runner->RunDeferred() || proposed_here;
    }
    return proposed_here;
  }

 private:
  static inline thread_local bool allowed_ = false;
  static inline thread_local Runner* deferred_ = nullptr;
};

// The barrier in front of a linearizable read.
class ReadBarrier {
 public:
  virtual ~ReadBarrier() = default;
  // `done` runs once this member has applied every write that was committed
  // anywhere in the cluster when the call was made (Raft's ReadIndex).
  virtual void WaitLinearizable(ReadCallback done) = 0;
  // A member may answer a write before the backend commit that shows it to
  // readers (docs/durability.md, "Answering before the backend commit").
  // True when every write it has answered so far is visible to reads of
  // its store; a member that answers after the commit is always so.
  virtual bool AnsweredWritesVisible() const { return true; }
  // `done` runs once every write answered before the call is visible to
  // reads of the store: at once, or on the apply thread after that commit.
  virtual void WaitAnsweredWrites(ReadCallback done) { done(Status::OK()); }
};

// What a member knows about itself and its cluster, read without waiting.
class ClusterView {
 public:
  virtual ~ClusterView() = default;
  virtual uint64_t member_id() const = 0;
  virtual uint64_t cluster_id() const = 0;
  // 0 while no leader is known.
  virtual uint64_t leader_id() const = 0;
  virtual bool is_learner() const = 0;
  virtual uint64_t term() const = 0;
  // The last entry applied to the state machine, as etcd reports it (Status,
  // etcd_server_proposals_applied_total): a write answered by this member is
  // at or below it. Its backend commit may follow (docs/durability.md);
  // readers that need the store wait through ReadBarrier, not on this.
  virtual uint64_t applied_index() const = 0;
  virtual uint64_t commit_index() const = 0;
  virtual std::vector<Member> Members() const = 0;
  // Sets cluster_id, member_id and raft_term; the revision is the caller's.
  virtual void FillHeader(etcdserverpb::ResponseHeader* header) const = 0;
  // The current store. Hold the pointer for as long as anything read from
  // it is in use, and do not keep it across a wait (a snapshot install
  // replaces the store and waits for every holder to let go).
  virtual std::shared_ptr<mvcc::KvStore> store() const = 0;
  // The revision a response header carries: the newest this member's
  // answers have named. A member that answers writes before the backend
  // commit (docs/durability.md) may be one batch ahead of store()'s
  // committed revision; a header must not be behind a write its client was
  // already told about.
  virtual int64_t revision() const = 0;
  // The request limits the API enforces before proposing.
  virtual uint64_t max_request_bytes() const = 0;
  virtual uint64_t max_txn_ops() const = 0;
  // How long the member lets a request wait for Raft.
  virtual std::chrono::milliseconds request_timeout() const = 0;
  virtual std::chrono::milliseconds election_timeout() const = 0;
};

// Membership changes and leadership moves (the Cluster service and
// Maintenance.MoveLeader). Errors are etcd's: kMemberExist, kPeerURLExist,
// kMemberNotFound, kMemberNotLearner, kLearnerNotReady, kTooManyLearners,
// kMemberNotEnoughStarted, kMemberBadURLs, kUnhealthy, kNotLeader,
// kBadLeaderTransferee, kTimeoutLeaderTransfer, kTimeout, kStopped.
class ClusterAdmin {
 public:
  virtual ~ClusterAdmin() = default;
  // Fills member->id; `member` must stay alive until `done` runs.
  virtual void AddMember(Member* member, ProposeCallback done) = 0;
  virtual void RemoveMember(uint64_t id, ProposeCallback done) = 0;
  virtual void UpdateMember(uint64_t id, std::vector<std::string> peer_urls,
                            ProposeCallback done) = 0;
  virtual void PromoteMember(uint64_t id, ProposeCallback done) = 0;
  // `done` runs once `transferee` leads, or with kTimeoutLeaderTransfer.
  virtual void MoveLeader(uint64_t transferee, std::chrono::milliseconds timeout,
                          ProposeCallback done) = 0;
};

// The member's own backend and the cluster's alarms (Maintenance.Defragment
// and Maintenance.Alarm).
class BackendAdmin {
 public:
  virtual ~BackendAdmin() = default;
  // Rewrites this member's store without its free pages and swaps the copy
  // in. Writes wait behind it on the apply thread (none is lost); reads go
  // on, first from the old store and then from the copy.
  virtual void Defragment(ProposeCallback done) = 0;
  // The alarms raised in the cluster, as applied by this member.
  virtual std::vector<etcdserverpb::AlarmMember> Alarms() const = 0;
  // ACTIVATE or DEACTIVATE goes through Raft, so every member holds the same
  // alarms; `response` (alive until `done`) lists the alarm changed.
  virtual void ChangeAlarm(const etcdserverpb::AlarmRequest& request,
                           etcdserverpb::AlarmResponse* response, ProposeCallback done) = 0;
};

// Reaches the leader over the peer transport, for what only the leader
// answers (lease keep-alive and time-to-live).
class LeaderChannel {
 public:
  virtual ~LeaderChannel() = default;
  // `done` runs exactly once, on another thread: with the leader's reply
  // body, kNoLeader without a leader, kLeaderChanged when this member is the
  // leader itself, or the transport's error.
  virtual void CallLeader(const std::string& method, std::string body,
                          std::function<void(Result<std::string>)> done) = 0;
};

}  // namespace etcdpp::server

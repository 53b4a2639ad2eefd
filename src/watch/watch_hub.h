// WatchHub: every watcher of a member, fed from the MVCC store's change log
// (etcd's watchableStore). Design notes: docs/watch.md.
//
// A watcher wants the changes of a key range from a start revision on. The
// hub keeps two groups:
//  - synced: has been sent every matching change up to the hub's revision
//    (synced_revision()); fed live, from one read of the change log per round
//    shared by all synced watchers.
//  - unsynced: behind (new with a past start revision, or its stream's buffer
//    was full); caught up from the store's change log in bounded batches, then
//    moved to synced.
//
// One dispatcher thread does all reading and sending, in rounds. The apply
// thread only calls Notify() after each LMDB commit (a store of an integer and
// a wake-up), and KeepSnapshot() before a compaction the hub has not passed,
// so writers never wait for watchers.
//
// Guarantees (per watcher): responses carry events in revision order; every
// matching change at or after the start revision is sent exactly once, no
// gaps, unless the watcher's next revision was compacted away while it was
// unsynced, in which case it gets one response with compact_revision set and
// is dropped. A synced watcher is never behind a compaction applied with the
// NeedsSnapshotBeforeCompaction/KeepSnapshot protocol. All events
// of one revision are in one response. Memory is bounded: a sink that refuses
// a response (full) makes the watcher unsynced at the first revision it did
// not get; it resumes from the store once the sink has room.
//
// Thread safety: every public method may be called from any thread. Sinks are
// called with the hub's mutex held (see WatchSink).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"
#include "mvcc/kv_store.h"

namespace etcdpp::watch {

// What a watcher watches. Key range rules are etcd's mvcc ones (see
// mvcc::KeyRange): range_end empty is the single key, "\0" every key >= key,
// otherwise [key, range_end). The caller (the Watch service) has already
// turned the wire request into this form and checked key < range_end.
struct WatchSpec {
  std::string key;
  std::string range_end;
  // First revision to send (> 0).
  int64_t start_revision = 1;
  bool prev_kv = false;
  bool no_put = false;     // etcd's NOPUT filter
  bool no_delete = false;  // etcd's NODELETE filter
  // Send an empty response (header revision = the hub's revision) at each
  // progress interval in which this watcher, while synced, got no events.
  bool progress_notify = false;
  // Copied into each response's watch_id; the hub does not interpret it.
  int64_t watch_id = 0;
};

// Receives the responses of the watchers of one stream. Every method is
// called with the hub's mutex held: it must not block and must not call the
// hub. The hub fills watch_id, events, compact_revision/canceled and
// header.revision; the sink fills the rest of the header.
class WatchSink {
 public:
  virtual ~WatchSink() = default;
  // Takes `response` and queues it, or returns false and leaves it alone when
  // the sink's buffer is full (the hub then retries from the store later).
  // `force` responses (small control responses) must be taken.
  virtual bool TrySend(etcdserverpb::WatchResponse& response, bool force) = 0;
  // Whether TrySend would currently take a response. When a full sink gets
  // room again it calls WatchHub::Wake() (outside the hub's mutex).
  virtual bool HasRoom() const = 0;
  // The hub stopped: no more responses will come.
  virtual void OnHubStopped() = 0;
};

struct WatchHubOptions {
  // Live dispatch reads at most about this many events per round (never
  // splitting a revision), so one round holds the hub's lock briefly.
  size_t max_events_per_round = 10000;
  // Catch-up: watchers served per round and revisions per response (etcd's
  // maxWatchersPerSync and watchBatchMaxRevs).
  size_t catchup_watchers_per_round = 512;
  int64_t max_revisions_per_catchup = 1000;
  // Period of progress notifications for watchers that asked for them
  // (etcd's --experimental-watch-progress-notify-interval).
  std::chrono::milliseconds progress_notify_interval{std::chrono::minutes(10)};
  // Without Notify() calls the dispatcher still looks at the store this often
  // (catches writes made by someone not calling Notify, e.g. tests).
  std::chrono::milliseconds poll_interval{std::chrono::milliseconds(500)};
};

class WatchHub {
 public:
  using WatcherId = uint64_t;

  struct Stats {
    size_t synced = 0;
    size_t unsynced = 0;
    int64_t synced_revision = 0;
  };

  // `store` must outlive the hub (or be replaced with OnStoreReplaced).
  WatchHub(mvcc::KvStore* store, WatchHubOptions options = {});
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // Stops the dispatcher and tells every sink (OnHubStopped). Later Adds fail
  // with kStopped. Idempotent.
  void Stop();

  // Registers a watcher sending to `sink` (which must stay valid until every
  // watcher on it is removed). Its first response comes after Add returns.
  Result<WatcherId> Add(WatchSink* sink, const WatchSpec& spec);
  // After Remove returns, the hub sends nothing more for the watcher. Unknown
  // ids (e.g. a watcher already dropped for compaction) are ignored.
  void Remove(WatcherId id);
  // Removes every watcher of `sink` and forgets it: after this returns the
  // hub never calls `sink` again (call before destroying a sink).
  void RemoveSink(WatchSink* sink);
  // etcd's ProgressRequest for a stream: sends `sink` a response with
  // watch_id -1 and header revision R once every watcher of the sink has been
  // sent every change up to R (at once if all are synced).
  void RequestProgress(WatchSink* sink);
  // A sink has room again: lets waiting catch-up proceed.
  void Wake();

  // Apply thread, after each commit: the store reached `revision`. Cheap.
  void Notify(int64_t revision);
  // Compaction protocol (docs/watch.md, Compaction). The apply thread, about
  // to apply a compaction to `revision`, asks whether the hub may still need
  // the history it removes for its synced watchers (it has not dispatched up
  // to `revision`). If so, it commits every write before the compaction and
  // hands the hub a snapshot of that state (KeepSnapshot), then applies the
  // compaction: the hub feeds the synced watchers from the snapshot up to its
  // revision, then drops it. Neither call waits for a round.
  bool NeedsSnapshotBeforeCompaction(int64_t revision) const;
  void KeepSnapshot(std::unique_ptr<mvcc::ReadTxn> snapshot);
  // The store object was replaced (snapshot install). Waits for a round in
  // progress to finish, then reads only `store`; every watcher resumes from
  // the new store at its next revision (all become unsynced).
  void OnStoreReplaced(mvcc::KvStore* store);

  Stats stats() const;

  // Testing: while paused the dispatcher starts no round (one in progress has
  // finished when this returns), so writes pile up unread as behind a slow
  // hub. Stop() works while paused.
  void PauseForTesting(bool paused);

 private:
  struct Watcher;
  // Watchers by key range, for matching an event's key: single keys by key,
  // prefix ranges by prefix (looked up for each prefix length in use), other
  // ranges in a list checked one by one.
  class Index {
   public:
    void Insert(Watcher* w);
    void Erase(Watcher* w);
    // Appends the watchers whose range contains `key`.
    void Match(const std::string& key, std::vector<Watcher*>* out) const;
    void Clear();

   private:
    std::unordered_map<std::string, std::unordered_set<Watcher*>> exact_;
    std::unordered_map<std::string, std::unordered_set<Watcher*>> prefix_;
    std::map<size_t, size_t> prefix_lengths_;  // length -> watchers
    std::unordered_set<Watcher*> ranges_;
  };
  struct SinkState {
    size_t watchers = 0;
    size_t unsynced = 0;
    bool progress_requested = false;
  };
  using Clock = std::chrono::steady_clock;

  void Run();
  void Signal();
  // One dispatcher round with the lock held; returns whether more work can be
  // done at once.
  bool RoundLocked();
  // Live dispatch from `view` of at most about *budget events (decreased by
  // what it read); returns whether it stopped short of view.Rev().
  bool DispatchLiveLocked(const mvcc::ReadView& view, size_t* budget);
  bool CatchUpLocked(const mvcc::ReadView& view);
  void SendProgressLocked();
  void AnswerProgressRequestsLocked();

  void SetSyncedRevLocked(int64_t rev);
  void MakeSyncedLocked(Watcher* w);
  void MakeUnsyncedLocked(Watcher* w, int64_t next_rev);
  void EraseLocked(Watcher* w);
  // Builds and sends w's pending events; false if the sink was full.
  bool FlushLocked(Watcher* w, int64_t header_rev);

  const WatchHubOptions options_;

  // Wakes the dispatcher. A leaf lock held only for a flag, never during a
  // round, so Notify() (the apply thread) never waits for watchers.
  std::mutex signal_mu_;
  std::condition_variable cv_;
  bool wake_ = false;      // guarded by signal_mu_: work may be possible
  bool stopping_ = false;  // guarded by signal_mu_
  bool paused_ = false;    // guarded by signal_mu_ (PauseForTesting)
  bool in_round_ = false;  // guarded by signal_mu_
  std::condition_variable round_done_cv_;

  // Watcher state. Held by the dispatcher for a whole (bounded) round.
  mutable std::mutex mu_;
  mvcc::KvStore* store_;  // guarded by mu_
  bool stopped_ = false;  // guarded by mu_
  // Every change up to synced_rev_ has been sent to every synced watcher.
  // Only grows, except in OnStoreReplaced (apply thread). Set with
  // SetSyncedRevLocked, which mirrors it into dispatched_rev_.
  int64_t synced_rev_ = 0;  // guarded by mu_
  std::atomic<int64_t> dispatched_rev_{0};
  // Snapshots from KeepSnapshot, oldest first. The apply thread appends to
  // handed_snapshots_ (a leaf lock, never held during a round); each round
  // moves them to snapshots_ after opening its own view of the store.
  std::mutex snapshots_mu_;
  std::vector<std::unique_ptr<mvcc::ReadTxn>> handed_snapshots_;      // guarded by snapshots_mu_
  bool snapshots_closed_ = false;                                     // guarded by snapshots_mu_
  std::deque<std::unique_ptr<mvcc::ReadTxn>> snapshots_;              // guarded by mu_
  WatcherId next_id_ = 1;                                             // guarded by mu_
  Clock::time_point next_progress_;                                   // dispatcher thread only
  std::unordered_map<WatcherId, std::unique_ptr<Watcher>> watchers_;  // guarded by mu_
  std::unordered_map<WatchSink*, SinkState> sinks_;                   // guarded by mu_
  Index synced_;                           // guarded by mu_: the synced group
  size_t synced_count_ = 0;                // guarded by mu_
  size_t synced_prev_kv_ = 0;              // guarded by mu_: synced watchers wanting prev_kv
  std::unordered_set<Watcher*> unsynced_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace etcdpp::watch

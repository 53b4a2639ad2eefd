// WatchHub: every watcher of a member, fed from the MVCC store's change log.
// Design notes: docs/watch.md.
//
// A watcher asks for the changes of a key range from a start revision on. The
// hub sorts its watchers into two groups:
//  - synced: has been sent every matching change up to the hub's revision
//    (synced_revision()); served live, all of them from one read of the
//    change log per round.
//  - unsynced: behind, either new with a start revision in the past or
//    refused by its stream's full buffer. Served from the change log in
//    bounded batches until it reaches the hub's revision, then synced.
//
// One dispatcher thread does every read and every send, in rounds. The apply
// thread only calls Notify() after each LMDB commit (a flag and a wake-up),
// OfferHeld() after writes it holds back from commit (a copy of their
// events) and, before a compaction the hub has not read past,
// KeepSnapshot(): a writer never waits for a watcher.
//
// What each watcher can rely on: its responses carry events in revision
// order; every matching change from its start revision on reaches it exactly
// once, with no gap, unless the revision it needed next was compacted while
// it was unsynced (it then gets one response with compact_revision set and is
// dropped). A compaction applied through NeedsSnapshotBeforeCompaction and
// KeepSnapshot never puts a synced watcher behind. The events of one revision
// travel in one response. Memory stays bounded: when a sink refuses a
// response (full), its watcher becomes unsynced at the first revision it
// missed and resumes from the store once the sink has room.
//
// Thread safety: every public method may be called from any thread. Sinks are
// called with the hub's mutex held (see WatchSink); a RoundScheduler with
// none held.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"
#include "mvcc/kv_store.h"

namespace etcdpp::watch {

// What a watcher watches. Ranges follow mvcc::KeyRange: an empty range_end
// means the single key, "\0" every key >= key, anything else [key,
// range_end). The Watch service has already converted the wire request into
// this form and checked that key < range_end.
struct WatchSpec {
  std::string key;
  std::string range_end;
  // First revision to send (> 0).
  int64_t start_revision = 1;
  bool prev_kv = false;
  bool no_put = false;     // WatchCreateRequest filter NOPUT: drop put events
  bool no_delete = false;  // filter NODELETE: drop delete events
  // At the end of each progress interval in which this watcher was synced
  // and received no events, send it an empty response whose header revision
  // is the hub's revision.
  bool progress_notify = false;
  // Copied into each response's watch_id; the hub does not interpret it.
  int64_t watch_id = 0;
};

// One mvccpb::Event encoded once as an entry of WatchResponse.events (the
// field's tag, the length, the event's bytes), so that a response is its
// other fields' bytes followed by such entries. Immutable and shared by
// every watcher sent the event: with N watchers of a key, a revision costs
// one encoding, not N copies of its key and value.
using EncodedEvent = std::shared_ptr<const std::string>;

// Encodes `event` as above.
EncodedEvent EncodeEvent(const mvccpb::Event& event);
// The response TrySendEvents stands for: watch_id, header.revision and the
// decoded events (for sinks that want a message, and for tests).
etcdserverpb::WatchResponse DecodeEventsResponse(int64_t watch_id, int64_t header_revision,
                                                 std::span<const EncodedEvent> events);

// Where the responses of one stream's watchers go. The hub calls every
// method with its mutex held, so a sink must neither block nor call back into
// the hub. The hub sets watch_id, events, compact_revision, canceled and
// header.revision; the sink completes the header.
class WatchSink {
 public:
  virtual ~WatchSink() = default;
  // Queues `response` (moving from it), or returns false without touching it
  // when the buffer is full; the hub then re-reads those events from the
  // store later. A `force` response (a small control message) is always
  // queued.
  virtual bool TrySend(etcdserverpb::WatchResponse& response, bool force) = 0;
  // Queues the events response DecodeEventsResponse(watch_id,
  // header_revision, events) describes, or returns false when the buffer is
  // full (as TrySend without force). A sink keeps the events by holding the
  // pointers, never by copying the bytes. The default decodes and calls
  // TrySend; the gRPC stream writes the encoded bytes as they are.
  virtual bool TrySendEvents(int64_t watch_id, int64_t header_revision,
                             std::span<const EncodedEvent> events);
  // One events response of a batch (TrySendEventsBatch).
  struct EventsResponse {
    int64_t watch_id;
    std::span<const EncodedEvent> events;
  };
  // Queues TrySendEvents(r.watch_id, header_revision, r.events) for each
  // response in order, stopping at the first that finds the buffer full;
  // returns how many were queued. The hub sends a revision's responses to
  // one sink this way, so the sink can take them under one lock. The
  // default calls TrySendEvents for each.
  virtual size_t TrySendEventsBatch(int64_t header_revision,
                                    std::span<const EventsResponse> responses);
  // What TrySendEvents queued may wait in the sink for this call, which the
  // hub makes once for each sink it queued events on, after each revision
  // of live dispatch and after each catch-up batch, so that a stream with
  // many watchers of one revision starts one write for all of them rather
  // than wake its writer for the first. The default does nothing.
  virtual void SendQueued() {}
  // Whether TrySend would queue a response now. A sink that was full calls
  // WatchHub::Wake(), outside the hub's mutex, once it has room again.
  virtual bool HasRoom() const = 0;
  // The hub has stopped; nothing more will be sent.
  virtual void OnHubStopped() = 0;
};

// Decides whether the dispatcher may start a round, and hears when one ends.
// A server's hub has none (every round starts as soon as there is work).
// Tests inject one to hold rounds back, which stands for a hub that has
// fallen behind the writes, and to learn when a round that saw every write so
// far is over instead of sleeping. Both methods run on the dispatcher thread
// with none of the hub's locks held; they must not block for long, and may
// call WatchHub::Wake() but nothing else of the hub.
class RoundScheduler {
 public:
  virtual ~RoundScheduler() = default;
  // Before each round. False skips it: the dispatcher then sleeps until the
  // next Wake() or Notify(), or the poll interval (so call Wake() when rounds
  // may run again).
  virtual bool MayStartRound() = 0;
  // After each round MayStartRound allowed. `more_work` is true when the
  // round stopped at its budget and the next one starts at once; false means
  // the round left nothing it could do, given the sinks' room when it ran.
  virtual void RoundFinished(bool more_work) = 0;
};

struct WatchHubOptions {
  // Live dispatch reads at most about this many events per round (never
  // splitting a revision), so one round holds the hub's lock briefly.
  size_t max_events_per_round = 10000;
  // Catch-up serves at most this many watchers per round, and at most this
  // many revisions per response.
  size_t catchup_watchers_per_round = 512;
  int64_t max_revisions_per_catchup = 1000;
  // Period of progress notifications for watchers that asked for them
  // (the server's --experimental-watch-progress-notify-interval).
  std::chrono::milliseconds progress_notify_interval{std::chrono::minutes(10)};
  // Without Notify() calls the dispatcher still looks at the store this often
  // (catches writes made by someone not calling Notify, e.g. tests).
  std::chrono::milliseconds poll_interval{std::chrono::milliseconds(500)};
  // The clock progress notifications are timed by; steady_clock::now when
  // empty. A test's fake clock must be followed by Wake() when advanced.
  std::function<std::chrono::steady_clock::time_point()> now;
  // Not owned; must outlive the hub. Null: rounds are never held back.
  RoundScheduler* scheduler = nullptr;
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
  // A stream's progress request (WatchProgressRequest): sends `sink` a
  // response with watch_id -1 and header revision R once each of the sink's
  // watchers has been sent every change up to R (at once if all are synced).
  void RequestProgress(WatchSink* sink);
  // Starts a round soon: a sink has room again, or a scheduler lets rounds run.
  void Wake();

  // Apply thread, after each commit: the store reached `revision`. Cheap.
  void Notify(int64_t revision);
  // Apply thread, after applying writes into a transaction it holds back
  // from commit (the backend batch interval): `txn` is that open write
  // transaction and `from_rev` the first revision the writes added. The hub
  // copies their events now, so that synced watchers get them without
  // waiting for the commit; they still get every change exactly once and
  // in order, whether it arrives this way or from the store once committed.
  // Watchers behind (unsynced) read only committed history. Costs nothing
  // when nobody watches.
  void OfferHeld(const mvcc::ReadView& txn, int64_t from_rev);
  // False while nobody watches: OfferHeld would take nothing, and the
  // caller need not get ready to offer (any thread; a watcher added after
  // this answer gets those writes from the store once committed).
  bool TakesHeld() const { return watcher_count_.load(std::memory_order_relaxed) > 0; }
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
  // The store object was replaced by a copy of itself (defragmentation):
  // the same revisions and history. Waits for a round in progress to
  // finish, then reads only `store`; synced watchers stay synced, unless
  // the hub still holds snapshots of the old store (KeepSnapshot) it has
  // not dispatched: then as OnStoreReplaced.
  void OnStoreRewritten(mvcc::KvStore* store);

  Stats stats() const;

 private:
  struct Watcher;
  // An event read in a round, with its encodings made on first use: one
  // with the prev_kv the read carried, one without (the same when it has
  // none). Lives for one dispatch (live) or one batch (catch-up).
  struct EventSlot {
    const mvccpb::Event* event = nullptr;
    int64_t rev = 0;  // its main revision
    EncodedEvent with_prev_kv;
    EncodedEvent without_prev_kv;
    const EncodedEvent& Encoded(bool prev_kv);
  };
  // The events of writes applied but not yet committed (OfferHeld). Live
  // dispatch uses a batch only once synced_rev_ has reached first_rev - 1
  // and only if it carries prev_kv when a synced watcher wants it;
  // otherwise the hub waits for the commit, which brings the same changes
  // through the store. Dropped once dispatched or committed.
  struct HeldChanges {
    int64_t first_rev = 0;
    int64_t last_rev = 0;
    bool prev_kv = false;
    size_t bytes = 0;  // of keys and values, for the bound on handed batches
    std::vector<mvccpb::Event> events;
    std::vector<int64_t> revs;  // the main revision of each event
  };
  // Watchers by key range, for matching an event's key: single keys by key,
  // prefix ranges by prefix (looked up for each prefix length in use), other
  // ranges in a list checked one by one. Lists are vectors (a fan-out of
  // thousands of watchers of one key is copied out in one go); a watcher
  // remembers its place in its list, so it is in at most one Index at a time.
  class Index {
   public:
    void Insert(Watcher* w);
    void Erase(Watcher* w);
    // Appends the watchers whose range contains `key`.
    void Match(const std::string& key, std::vector<Watcher*>* out) const;
    void Clear();

   private:
    using List = std::vector<Watcher*>;
    static void Append(List* list, Watcher* w);
    static void Unlink(List* list, Watcher* w);
    std::unordered_map<std::string, List> exact_;
    std::unordered_map<std::string, List> prefix_;
    std::map<size_t, size_t> prefix_lengths_;  // length -> watchers
    List ranges_;
  };
  struct SinkState {
    size_t watchers = 0;
    size_t unsynced = 0;
    bool progress_requested = false;
  };
  using Clock = std::chrono::steady_clock;

  void Run();
  Clock::time_point Now() const { return options_.now ? options_.now() : Clock::now(); }
  void Signal();
  // One dispatcher round with the lock held; returns whether more work can be
  // done at once.
  bool RoundLocked();
  // Live dispatch from `view` of at most about *budget events (decreased by
  // what it read); returns whether it stopped short of view.Rev().
  bool DispatchLiveLocked(const mvcc::ReadView& view, size_t* budget);
  // Live dispatch from held_, as far as it goes on from synced_rev_;
  // returns whether it stopped at the budget.
  bool DispatchHeldLocked(size_t* budget);
  // Revisions gathered for one live dispatch: whole revisions after
  // synced_rev_, in order, each event with its main revision. The events
  // stay where they were read (the round's deque, or held_ batches kept
  // in dispatched_held_) until DispatchGatheredLocked.
  struct Gathered {
    std::vector<const mvccpb::Event*> events;
    std::vector<int64_t> revs;
    size_t bytes = 0;  // of keys and values, for kMaxGatheredBytes
  };
  // Appends `e` of revision `rev` to gathered_.
  void GatherLocked(const mvccpb::Event& e, int64_t rev);
  // Sends gathered_ to the synced watchers it matches, each watcher's events
  // of every revision in one response, then moves synced_rev_ to its last
  // revision and empties it.
  void DispatchGatheredLocked();
  bool CatchUpLocked(const mvcc::ReadView& view);
  void SendProgressLocked();
  void AnswerProgressRequestsLocked();

  void SetSyncedRevLocked(int64_t rev);
  void MakeSyncedLocked(Watcher* w);
  void MakeUnsyncedLocked(Watcher* w, int64_t next_rev);
  // Sends the responses of a dispatch's `touched` watchers (their pending
  // events) with header revision `rev`, those of one sink in one
  // TrySendEventsBatch; a watcher whose response found no room becomes
  // unsynced at its first pending revision.
  void FlushTouchedLocked(std::vector<Watcher*>& touched, int64_t rev);
  // Remembers that `sink` has events queued (FlushLocked); SendQueuedLocked
  // calls SendQueued once on every sink remembered since its last call.
  void NoteQueuedLocked(WatchSink* sink);
  void SendQueuedLocked();
  // Switches to `store`, dropping every view of the old one; every synced
  // watcher becomes unsynced at its next revision.
  void ReplaceStoreLocked(mvcc::KvStore* store);
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
  std::vector<std::unique_ptr<mvcc::ReadTxn>> handed_snapshots_;  // guarded by snapshots_mu_
  bool snapshots_closed_ = false;                                 // guarded by snapshots_mu_
  std::deque<std::unique_ptr<mvcc::ReadTxn>> snapshots_;          // guarded by mu_
  // Held changes from OfferHeld go the same way: appended to handed_held_
  // under snapshots_mu_, moved to held_ by each round.
  std::vector<HeldChanges> handed_held_;  // guarded by snapshots_mu_
  size_t handed_held_bytes_ = 0;          // guarded by snapshots_mu_
  std::deque<HeldChanges> held_;          // guarded by mu_
  // Mirrors of the watcher counts for OfferHeld, which must not take mu_.
  std::atomic<size_t> watcher_count_{0};
  std::atomic<size_t> prev_kv_watchers_{0};
  WatcherId next_id_ = 1;                                             // guarded by mu_
  Clock::time_point next_progress_;                                   // dispatcher thread only
  std::unordered_map<WatcherId, std::unique_ptr<Watcher>> watchers_;  // guarded by mu_
  std::unordered_map<WatchSink*, SinkState> sinks_;                   // guarded by mu_
  Index synced_;                             // guarded by mu_: the synced group
  size_t synced_count_ = 0;                  // guarded by mu_
  size_t synced_prev_kv_ = 0;                // guarded by mu_: synced watchers wanting prev_kv
  std::unordered_set<Watcher*> unsynced_;    // guarded by mu_
  std::vector<EncodedEvent> flush_scratch_;  // guarded by mu_: FlushLocked's response
  Gathered gathered_;                        // guarded by mu_
  // The held_ batches whose events are in gathered_.
  std::vector<HeldChanges> dispatched_held_;  // guarded by mu_
  // DispatchGatheredLocked's, kept for their capacity.
  std::vector<EventSlot> slot_scratch_;    // guarded by mu_
  std::vector<Watcher*> matched_scratch_;  // guarded by mu_
  std::vector<Watcher*> touched_scratch_;  // guarded by mu_
  // FlushTouchedLocked's groups, one per sink, kept for their capacity.
  struct SinkBatch {
    WatchSink* sink = nullptr;
    std::vector<Watcher*> watchers;
    std::vector<WatchSink::EventsResponse> responses;
  };
  std::vector<SinkBatch> sink_batches_;  // guarded by mu_
  // FlushTouchedLocked's event lists of several events, each shared by the
  // watchers in a row whose pending events are the same.
  std::vector<std::vector<EncodedEvent>> shared_lists_;  // guarded by mu_
  // The sinks with events queued since the last SendQueuedLocked, in the
  // order first queued on; the set mirrors a long list, for lookups.
  std::vector<WatchSink*> queued_sinks_;       // guarded by mu_
  std::unordered_set<WatchSink*> queued_set_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace etcdpp::watch

#include "watch/watch_hub.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <limits>

namespace etcdpp::watch {
namespace {

// The range end clients send for "every key starting with `prefix`": the
// prefix with its last byte below 0xff incremented and what follows dropped,
// i.e. the first key after all of them; "\0" (no end) if every byte is 0xff.
std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

enum class Kind { kExact, kPrefix, kRange };

Kind KindOf(const WatchSpec& spec) {
  if (spec.range_end.empty()) return Kind::kExact;
  if (!spec.key.empty() && spec.range_end != std::string(1, '\0') &&
      PrefixEnd(spec.key) == spec.range_end) {
    return Kind::kPrefix;
  }
  return Kind::kRange;
}

// WatchResponse.events is field 11, length-delimited.
constexpr char kEventsFieldTag = (11 << 3) | 2;

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

}  // namespace

EncodedEvent EncodeEvent(const mvccpb::Event& event) {
  const size_t body = event.ByteSizeLong();
  std::string bytes;
  bytes.reserve(1 + 10 + body);
  bytes.push_back(kEventsFieldTag);
  AppendVarint(body, &bytes);
  const size_t at = bytes.size();
  bytes.resize(at + body);
  event.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(bytes.data() + at));
  return std::make_shared<const std::string>(std::move(bytes));
}

etcdserverpb::WatchResponse DecodeEventsResponse(int64_t watch_id, int64_t header_revision,
                                                 std::span<const EncodedEvent> events) {
  std::string bytes;
  for (const EncodedEvent& e : events) bytes += *e;
  etcdserverpb::WatchResponse r;
  // Our own encoding: a failure is a bug, not bad input.
  if (!r.ParseFromString(bytes)) {
    spdlog::critical("watch: an encoded event does not decode");
    std::abort();
  }
  r.set_watch_id(watch_id);
  r.mutable_header()->set_revision(header_revision);
  return r;
}

bool WatchSink::TrySendEvents(int64_t watch_id, int64_t header_revision,
                              std::span<const EncodedEvent> events) {
  etcdserverpb::WatchResponse r = DecodeEventsResponse(watch_id, header_revision, events);
  return TrySend(r, /*force=*/false);
}

size_t WatchSink::TrySendEventsBatch(int64_t header_revision,
                                     std::span<const EventsResponse> responses) {
  size_t sent = 0;
  for (const EventsResponse& r : responses) {
    if (!TrySendEvents(r.watch_id, header_revision, r.events)) break;
    ++sent;
  }
  return sent;
}

const EncodedEvent& WatchHub::EventSlot::Encoded(bool prev_kv) {
  if (prev_kv || !event->has_prev_kv()) {
    if (!with_prev_kv) with_prev_kv = EncodeEvent(*event);
    return with_prev_kv;
  }
  if (!without_prev_kv) {
    mvccpb::Event stripped = *event;
    stripped.clear_prev_kv();
    without_prev_kv = EncodeEvent(stripped);
  }
  return without_prev_kv;
}

struct WatchHub::Watcher {
  WatcherId id = 0;
  WatchSink* sink = nullptr;
  WatchSpec spec;
  mvcc::KeyRange range;
  Kind kind = Kind::kExact;
  bool synced = false;
  // The first revision this watcher has not been sent. For a synced watcher
  // the effective value is max(next_rev, synced_rev_ + 1) (a start revision
  // in the future is kept here).
  int64_t next_rev = 0;
  // Nothing has been sent to it since the last progress notification tick.
  bool quiet = true;
  // Its position in its Index list.
  size_t index_pos = 0;
  // Events gathered for the response being built.
  std::vector<EventSlot*> pending;

  bool Wants(const mvccpb::Event& e) const {
    if (e.type() == mvccpb::Event::PUT) return !spec.no_put;
    return !spec.no_delete;
  }
};

namespace {
// A live dispatch gathers revisions until their keys and values pass this
// (a revision larger than it goes alone): each watcher's response carries
// its events of all of them, near the size at which a stream stops
// coalescing responses and far below clients' default receive limit
// (4 MiB).
constexpr size_t kMaxGatheredBytes = 64 << 10;
}  // namespace

WatchHub::WatchHub(mvcc::KvStore* store, WatchHubOptions options)
    : options_(options), store_(store) {
  SetSyncedRevLocked(store->CurrentRevision());
  next_progress_ = Now() + options_.progress_notify_interval;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "watch-hub");
    Run();
  });
}

WatchHub::~WatchHub() { Stop(); }

void WatchHub::Signal() {
  {
    std::lock_guard<std::mutex> lock(signal_mu_);
    wake_ = true;
  }
  cv_.notify_one();
}

void WatchHub::Stop() {
  {
    std::lock_guard<std::mutex> lock(signal_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::vector<std::unique_ptr<mvcc::ReadTxn>> handed;
  {
    std::lock_guard<std::mutex> lock(snapshots_mu_);
    snapshots_closed_ = true;
    handed.swap(handed_snapshots_);
    handed_held_.clear();
    handed_held_bytes_ = 0;
  }
  std::lock_guard<std::mutex> lock(mu_);
  snapshots_.clear();
  held_.clear();
  watcher_count_.store(0, std::memory_order_relaxed);
  prev_kv_watchers_.store(0, std::memory_order_relaxed);
  for (auto& [sink, state] : sinks_) sink->OnHubStopped();
  synced_.Clear();
  unsynced_.clear();
  watchers_.clear();
  sinks_.clear();
  synced_count_ = 0;
  synced_prev_kv_ = 0;
  stopped_ = true;
}

Result<WatchHub::WatcherId> WatchHub::Add(WatchSink* sink, const WatchSpec& spec) {
  WatcherId id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return Status(Code::kStopped);
    auto w = std::make_unique<Watcher>();
    w->id = next_id_++;
    w->sink = sink;
    w->spec = spec;
    w->range = mvcc::KeyRange{spec.key, spec.range_end};
    w->kind = KindOf(spec);
    w->next_rev = std::max<int64_t>(spec.start_revision, 1);
    Watcher* raw = w.get();
    id = raw->id;
    watchers_.emplace(raw->id, std::move(w));
    sinks_[sink].watchers++;
    watcher_count_.fetch_add(1, std::memory_order_relaxed);
    if (spec.prev_kv) prev_kv_watchers_.fetch_add(1, std::memory_order_relaxed);
    // A start revision compacted away (possibly by a compaction the hub has
    // not dispatched up to yet) is answered by catch-up with compact_revision.
    // So is one the store has committed but the hub not yet dispatched (a
    // commit forced by this watch's creation, say): as in etcd, the history
    // a new watcher asks for comes in one response, not one per revision.
    const int64_t committed = std::max(synced_rev_, store_->CurrentRevision());
    if (raw->next_rev > committed && raw->next_rev >= store_->CompactRevision()) {
      // Nothing it wants exists yet: live from the start.
      raw->synced = true;
      synced_.Insert(raw);
      synced_count_++;
      if (raw->spec.prev_kv) synced_prev_kv_++;
      return raw->id;
    }
    raw->synced = false;
    unsynced_.insert(raw);
    sinks_[sink].unsynced++;
  }
  Signal();  // Catch-up work.
  return id;
}

void WatchHub::Remove(WatcherId id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return;
  EraseLocked(it->second.get());
}

void WatchHub::RemoveSink(WatchSink* sink) {
  std::lock_guard<std::mutex> lock(mu_);
  auto state = sinks_.find(sink);
  if (state == sinks_.end()) return;
  if (state->second.watchers > 0) {
    std::vector<Watcher*> doomed;
    for (auto& [id, w] : watchers_) {
      if (w->sink == sink) doomed.push_back(w.get());
    }
    for (Watcher* w : doomed) EraseLocked(w);
  }
  sinks_.erase(sink);
}

void WatchHub::RequestProgress(WatchSink* sink) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    auto it = sinks_.find(sink);
    if (it == sinks_.end() || it->second.unsynced == 0) {
      etcdserverpb::WatchResponse r;
      r.set_watch_id(-1);
      r.mutable_header()->set_revision(synced_rev_);
      sink->TrySend(r, /*force=*/true);
      return;
    }
    it->second.progress_requested = true;
  }
  Signal();
}

void WatchHub::Wake() { Signal(); }

void WatchHub::Notify(int64_t /*revision*/) { Signal(); }

void WatchHub::OfferHeld(const mvcc::ReadView& txn, int64_t from_rev) {
  // A watcher added after this check finds its first changes in the store
  // once they are committed: the batch skipped here is a gap live dispatch
  // waits at, never a loss.
  if (watcher_count_.load(std::memory_order_relaxed) == 0 || from_rev > txn.Rev()) return;
  // Held batches wait for the dispatcher in memory; past this much (a
  // dispatcher far behind) the rest come from the store once committed.
  constexpr size_t kMaxHandedBytes = 64 << 20;
  HeldChanges held;
  held.first_rev = from_rev;
  held.last_rev = txn.Rev();
  held.prev_kv = prev_kv_watchers_.load(std::memory_order_relaxed) > 0;
  auto changes = txn.Changes(from_rev, held.last_rev, held.prev_kv);
  if (!changes.ok()) return;  // Compacted in the same batch: the commit serves it.
  for (mvcc::ChangeIterator& it = **changes; it.Valid(); it.Next()) {
    const mvccpb::Event& e = it.event();
    held.bytes += e.kv().key().size() + e.kv().value().size() + e.prev_kv().value().size();
    held.events.push_back(e);
    held.revs.push_back(it.revision().main);
  }
  if (!(*changes)->status().ok()) return;
  {
    std::lock_guard<std::mutex> lock(snapshots_mu_);
    if (snapshots_closed_ || handed_held_bytes_ + held.bytes > kMaxHandedBytes) return;
    handed_held_bytes_ += held.bytes;
    handed_held_.push_back(std::move(held));
  }
  Signal();
}

bool WatchHub::NeedsSnapshotBeforeCompaction(int64_t revision) const {
  // synced_rev_ only grows (OnStoreReplaced runs on the caller's thread): once
  // it has reached `revision`, no round reads the change log at or below it
  // for synced watchers again.
  return revision > dispatched_rev_.load(std::memory_order_acquire);
}

void WatchHub::KeepSnapshot(std::unique_ptr<mvcc::ReadTxn> snapshot) {
  {
    std::lock_guard<std::mutex> lock(snapshots_mu_);
    if (snapshots_closed_) return;  // Stopped: dropped here, on the caller's thread.
    handed_snapshots_.push_back(std::move(snapshot));
  }
  Signal();
}

void WatchHub::OnStoreReplaced(mvcc::KvStore* store) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ReplaceStoreLocked(store);
  }
  Signal();
}

void WatchHub::OnStoreRewritten(mvcc::KvStore* store) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    bool kept_snapshots = !snapshots_.empty();
    {
      std::lock_guard<std::mutex> snapshots_lock(snapshots_mu_);
      kept_snapshots = kept_snapshots || !handed_snapshots_.empty();
      if (!kept_snapshots) {
        handed_held_.clear();
        handed_held_bytes_ = 0;
      }
    }
    if (kept_snapshots) {
      // History the copy no longer has (a compaction's) is still to be
      // dispatched from views of the old store, which closes after this.
      ReplaceStoreLocked(store);
    } else {
      // The copy holds every revision from synced_rev_ + 1 on, as the old
      // store did: the live position stays, and so do the synced watchers.
      // The held writes are committed now; rounds read them from the copy.
      held_.clear();
      store_ = store;
    }
  }
  Signal();
}

void WatchHub::ReplaceStoreLocked(mvcc::KvStore* store) {
  // Snapshots of the old store: released before it closes.
  {
    std::lock_guard<std::mutex> snapshots_lock(snapshots_mu_);
    handed_snapshots_.clear();
    handed_held_.clear();
    handed_held_bytes_ = 0;
  }
  snapshots_.clear();
  held_.clear();
  store_ = store;
  std::vector<Watcher*> synced;
  for (auto& [id, w] : watchers_) {
    if (w->synced) synced.push_back(w.get());
  }
  for (Watcher* w : synced) MakeUnsyncedLocked(w, std::max(w->next_rev, synced_rev_ + 1));
  // Nothing is synced now: the live position restarts at the new store's.
  SetSyncedRevLocked(store->CurrentRevision());
}

WatchHub::Stats WatchHub::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Stats{synced_count_, unsynced_.size(), synced_rev_};
}

// ---- groups and index ----

void WatchHub::Index::Append(List* list, Watcher* w) {
  w->index_pos = list->size();
  list->push_back(w);
}

void WatchHub::Index::Unlink(List* list, Watcher* w) {
  const size_t pos = w->index_pos;
  if (pos >= list->size() || (*list)[pos] != w) return;  // Not in this list.
  (*list)[pos] = list->back();
  (*list)[pos]->index_pos = pos;
  list->pop_back();
}

void WatchHub::Index::Insert(Watcher* w) {
  switch (w->kind) {
    case Kind::kExact:
      Append(&exact_[w->spec.key], w);
      break;
    case Kind::kPrefix:
      Append(&prefix_[w->spec.key], w);
      prefix_lengths_[w->spec.key.size()]++;
      break;
    case Kind::kRange:
      Append(&ranges_, w);
      break;
  }
}

void WatchHub::Index::Erase(Watcher* w) {
  auto drop = [w](auto& map, const std::string& key) {
    auto it = map.find(key);
    if (it == map.end()) return;
    Unlink(&it->second, w);
    if (it->second.empty()) map.erase(it);
  };
  switch (w->kind) {
    case Kind::kExact:
      drop(exact_, w->spec.key);
      break;
    case Kind::kPrefix: {
      drop(prefix_, w->spec.key);
      auto it = prefix_lengths_.find(w->spec.key.size());
      if (it != prefix_lengths_.end() && --it->second == 0) prefix_lengths_.erase(it);
      break;
    }
    case Kind::kRange:
      Unlink(&ranges_, w);
      break;
  }
}

void WatchHub::Index::Match(const std::string& key, std::vector<Watcher*>* out) const {
  if (auto it = exact_.find(key); it != exact_.end()) {
    out->insert(out->end(), it->second.begin(), it->second.end());
  }
  for (const auto& [len, count] : prefix_lengths_) {
    if (len > key.size()) break;
    auto it = prefix_.find(key.substr(0, len));
    if (it != prefix_.end()) out->insert(out->end(), it->second.begin(), it->second.end());
  }
  for (Watcher* w : ranges_) {
    if (w->range.Contains(key)) out->push_back(w);
  }
}

void WatchHub::Index::Clear() {
  exact_.clear();
  prefix_.clear();
  prefix_lengths_.clear();
  ranges_.clear();
}

void WatchHub::SetSyncedRevLocked(int64_t rev) {
  synced_rev_ = rev;
  dispatched_rev_.store(rev, std::memory_order_release);
}

// Pre: w is unsynced.
void WatchHub::MakeSyncedLocked(Watcher* w) {
  unsynced_.erase(w);
  sinks_[w->sink].unsynced--;
  w->synced = true;
  synced_.Insert(w);
  synced_count_++;
  if (w->spec.prev_kv) synced_prev_kv_++;
}

// Pre: w is synced.
void WatchHub::MakeUnsyncedLocked(Watcher* w, int64_t next_rev) {
  w->next_rev = next_rev;
  synced_.Erase(w);
  synced_count_--;
  if (w->spec.prev_kv) synced_prev_kv_--;
  w->synced = false;
  unsynced_.insert(w);
  sinks_[w->sink].unsynced++;
}

void WatchHub::EraseLocked(Watcher* w) {
  if (w->synced) {
    synced_.Erase(w);
    synced_count_--;
    if (w->spec.prev_kv) synced_prev_kv_--;
  } else {
    unsynced_.erase(w);
    sinks_[w->sink].unsynced--;
  }
  auto sink = sinks_.find(w->sink);
  if (sink != sinks_.end() && --sink->second.watchers == 0) {
    // A pending progress request of a stream with no watchers left is
    // answered by the next round.
    if (!sink->second.progress_requested) sinks_.erase(sink);
  }
  watcher_count_.fetch_sub(1, std::memory_order_relaxed);
  if (w->spec.prev_kv) prev_kv_watchers_.fetch_sub(1, std::memory_order_relaxed);
  watchers_.erase(w->id);
}

bool WatchHub::FlushLocked(Watcher* w, int64_t header_rev) {
  bool sent = false;
  if (w->pending.size() == 1) {
    // The usual case: no copy of the event's pointer at all.
    sent = w->sink->TrySendEvents(w->spec.watch_id, header_rev,
                                  std::span(&w->pending[0]->Encoded(w->spec.prev_kv), 1));
  } else {
    flush_scratch_.clear();
    for (EventSlot* slot : w->pending) flush_scratch_.push_back(slot->Encoded(w->spec.prev_kv));
    sent = w->sink->TrySendEvents(w->spec.watch_id, header_rev, flush_scratch_);
    flush_scratch_.clear();
  }
  w->pending.clear();
  if (!sent) return false;
  w->quiet = false;
  NoteQueuedLocked(w->sink);
  return true;
}

void WatchHub::FlushTouchedLocked(std::vector<Watcher*>& touched, int64_t rev) {
  // Grouped by sink: a stream with many watchers of the dispatch is locked
  // once for all of them, not once each against its writer. The watchers
  // of sinks past the few searched go alone.
  constexpr size_t kGroupedSinks = 16;
  size_t used = 0;  // the first `used` of sink_batches_ are this dispatch's
  // A response of several events refers to a list of them that the
  // watchers in a row with the same pending events share (a fan-out's
  // watchers of one key all do), so its events are copied, and their
  // counts taken, once per list, not once per watcher.
  size_t lists = 0;
  const Watcher* list_owner = nullptr;
  for (Watcher* w : touched) {
    SinkBatch* batch = nullptr;
    for (size_t i = used; i-- > 0;) {
      if (sink_batches_[i].sink == w->sink) {
        batch = &sink_batches_[i];
        break;
      }
    }
    if (batch == nullptr && used < kGroupedSinks) {
      if (used == sink_batches_.size()) sink_batches_.emplace_back();
      batch = &sink_batches_[used++];
      batch->sink = w->sink;
      batch->watchers.clear();
      batch->responses.clear();
    }
    if (batch == nullptr) {
      const int64_t first = w->pending.front()->rev;
      if (!FlushLocked(w, rev)) MakeUnsyncedLocked(w, first);
      continue;
    }
    std::span<const EncodedEvent> events;
    if (w->pending.size() == 1) {
      events = std::span(&w->pending[0]->Encoded(w->spec.prev_kv), 1);
    } else {
      if (list_owner == nullptr || list_owner->pending != w->pending ||
          list_owner->spec.prev_kv != w->spec.prev_kv) {
        if (lists == shared_lists_.size()) shared_lists_.emplace_back();
        std::vector<EncodedEvent>& list = shared_lists_[lists++];
        list.clear();
        for (EventSlot* slot : w->pending) list.push_back(slot->Encoded(w->spec.prev_kv));
        list_owner = w;
      }
      // A later emplace_back moves the lists, not their elements.
      events = shared_lists_[lists - 1];
    }
    batch->watchers.push_back(w);
    batch->responses.push_back({w->spec.watch_id, events});
  }
  for (size_t b = 0; b < used; ++b) {
    SinkBatch& batch = sink_batches_[b];
    const size_t sent = batch.sink->TrySendEventsBatch(rev, batch.responses);
    if (sent > 0) NoteQueuedLocked(batch.sink);
    for (size_t i = 0; i < batch.watchers.size(); ++i) {
      Watcher* w = batch.watchers[i];
      const int64_t first = w->pending.front()->rev;
      w->pending.clear();
      if (i < sent) {
        w->quiet = false;
      } else {
        MakeUnsyncedLocked(w, first);
      }
    }
  }
  // The lists hold counts on events the round is done with.
  for (size_t i = 0; i < lists; ++i) shared_lists_[i].clear();
}

void WatchHub::NoteQueuedLocked(WatchSink* sink) {
  // A revision's watchers mostly come a sink at a time, and servers have
  // few streams: the list is searched while short, hashed once long.
  if (!queued_sinks_.empty() && queued_sinks_.back() == sink) return;
  constexpr size_t kSearchedSinks = 16;
  if (queued_sinks_.size() < kSearchedSinks) {
    if (std::find(queued_sinks_.begin(), queued_sinks_.end(), sink) == queued_sinks_.end()) {
      queued_sinks_.push_back(sink);
    }
    return;
  }
  if (queued_set_.empty()) queued_set_.insert(queued_sinks_.begin(), queued_sinks_.end());
  if (queued_set_.insert(sink).second) queued_sinks_.push_back(sink);
}

void WatchHub::SendQueuedLocked() {
  for (WatchSink* sink : queued_sinks_) sink->SendQueued();
  queued_sinks_.clear();
  queued_set_.clear();
}

// ---- the dispatcher ----

void WatchHub::Run() {
  RoundScheduler* const scheduler = options_.scheduler;
  // A scheduler that held the last round back will call Wake() when rounds
  // may run again; until then a due progress tick must not spin the loop.
  bool held_back = false;
  for (;;) {
    {
      // A duration, not a deadline: Now() may be a test's clock.
      Clock::duration wait = options_.poll_interval;
      if (!held_back) {
        wait = std::clamp<Clock::duration>(next_progress_ - Now(), Clock::duration::zero(), wait);
      }
      std::unique_lock<std::mutex> lock(signal_mu_);
      cv_.wait_for(lock, wait, [this] { return stopping_ || wake_; });
      if (stopping_) return;
      wake_ = false;
    }
    held_back = scheduler != nullptr && !scheduler->MayStartRound();
    if (held_back) continue;
    bool more = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      more = RoundLocked();
      if (Now() >= next_progress_) {
        SendProgressLocked();
        next_progress_ = Now() + options_.progress_notify_interval;
      }
    }
    if (scheduler != nullptr) scheduler->RoundFinished(more);
    if (more) Signal();
  }
}

bool WatchHub::RoundLocked() {
  auto read = store_->Read();
  if (!read.ok()) {
    spdlog::error("watch: cannot read the store: {}", read.status().ToString());
    return false;
  }
  const mvcc::ReadView& view = **read;
  // Taken after opening `view`: a compaction committed in `view` was
  // preceded by its snapshot (KeepSnapshot), which is here now.
  {
    std::lock_guard<std::mutex> lock(snapshots_mu_);
    for (auto& s : handed_snapshots_) snapshots_.push_back(std::move(s));
    handed_snapshots_.clear();
    for (auto& h : handed_held_) held_.push_back(std::move(h));
    handed_held_.clear();
    handed_held_bytes_ = 0;
  }
  // Live dispatch goes through the snapshots in order, then `view`. Each of
  // them still has the changes from synced_rev_ + 1 on: every compaction
  // committed before it either needed no snapshot (its revision was <=
  // synced_rev_ then) or directly followed an earlier snapshot, whose
  // revision is >= the compaction's and which is dropped only once
  // synced_rev_ has reached that revision.
  size_t budget = options_.max_events_per_round;
  bool more = false;
  for (;;) {
    while (!snapshots_.empty() && snapshots_.front()->Rev() <= synced_rev_) snapshots_.pop_front();
    const mvcc::ReadView& from = snapshots_.empty() ? view : *snapshots_.front();
    if (DispatchLiveLocked(from, &budget)) {
      more = true;
      break;
    }
    // Done, or a read error (logged; the next round retries).
    if (snapshots_.empty() || synced_rev_ < from.Rev()) break;
  }
  // Then the changes held back from commit, which go on from the store's.
  if (!more && synced_rev_ >= view.Rev() && DispatchHeldLocked(&budget)) more = true;
  // Committed ones are in `view` and every later view.
  while (!held_.empty() && held_.front().last_rev <= std::max(synced_rev_, view.Rev())) {
    held_.pop_front();
  }
  if (CatchUpLocked(view)) more = true;
  AnswerProgressRequestsLocked();
  return more;
}

bool WatchHub::DispatchLiveLocked(const mvcc::ReadView& view, size_t* budget) {
  const int64_t target = view.Rev();
  if (target <= synced_rev_) return false;
  if (synced_count_ == 0) {
    SetSyncedRevLocked(target);
    return false;
  }
  auto changes = view.Changes(synced_rev_ + 1, target, synced_prev_kv_ > 0);
  if (!changes.ok()) {
    // History the synced watchers had not been sent yet was compacted by
    // someone not following the compaction protocol (KeepSnapshot; the
    // server does). They catch up from the store, which cancels them with
    // the compact revision like any watcher behind it.
    spdlog::warn("watch: history not yet dispatched was compacted: {}",
                 changes.status().ToString());
    std::vector<Watcher*> synced;
    for (auto& [id, w] : watchers_) {
      if (w->synced) synced.push_back(w.get());
    }
    for (Watcher* w : synced) MakeUnsyncedLocked(w, std::max(w->next_rev, synced_rev_ + 1));
    SetSyncedRevLocked(target);
    return true;
  }
  mvcc::ChangeIterator& it = **changes;
  // The events read since the last dispatch (a deque: gathered_ points
  // into it while it grows).
  std::deque<mvccpb::Event> events;
  size_t read_events = 0;
  bool budget_hit = false;
  int64_t current = 0;
  for (; it.Valid(); it.Next()) {
    const int64_t rev = it.revision().main;
    if (rev != current) {
      if (read_events >= *budget) {
        budget_hit = true;
        break;
      }
      if (gathered_.bytes >= kMaxGatheredBytes) {
        DispatchGatheredLocked();
        events.clear();
      }
      current = rev;
    }
    events.push_back(it.event());
    GatherLocked(events.back(), rev);
    read_events++;
  }
  if (!it.status().ok()) {
    spdlog::error("watch: reading the change log failed: {}", it.status().ToString());
    // The revisions read whole still go out; the one cut short waits for
    // the next round.
    while (!gathered_.revs.empty() && gathered_.revs.back() == current) {
      gathered_.revs.pop_back();
      gathered_.events.pop_back();
    }
    DispatchGatheredLocked();
    return false;
  }
  DispatchGatheredLocked();
  if (!budget_hit) SetSyncedRevLocked(target);
  *budget -= std::min(read_events, *budget);
  return budget_hit;
}

bool WatchHub::DispatchHeldLocked(size_t* budget) {
  // How far the batches gathered so far reach (synced_rev_ once sent).
  int64_t reached = synced_rev_;
  bool more = false;
  while (!held_.empty()) {
    HeldChanges& held = held_.front();
    if (held.last_rev <= reached) {
      held_.pop_front();
      continue;
    }
    // A batch not offered (no watcher then, or too much waiting) leaves a
    // gap that only the commit fills.
    if (held.first_rev > reached + 1) break;
    if (*budget == 0) {
      more = true;
      break;
    }
    if (synced_count_ == 0) {
      DispatchGatheredLocked();
      SetSyncedRevLocked(held.last_rev);
      reached = held.last_rev;
      held_.pop_front();
      continue;
    }
    // Read before a watcher wanting prev_kv came: the store has them.
    if (synced_prev_kv_ > 0 && !held.prev_kv) break;
    for (size_t i = 0; i < held.events.size(); ++i) {
      const int64_t rev = held.revs[i];
      if (rev <= reached) continue;
      const bool starts_revision = gathered_.revs.empty() || gathered_.revs.back() != rev;
      if (starts_revision && gathered_.bytes >= kMaxGatheredBytes) DispatchGatheredLocked();
      GatherLocked(held.events[i], rev);
    }
    reached = held.last_rev;
    *budget -= std::min(held.events.size(), *budget);
    // Its events stay where gathered_ points until they are sent.
    dispatched_held_.push_back(std::move(held));
    held_.pop_front();
  }
  DispatchGatheredLocked();
  if (reached > synced_rev_) SetSyncedRevLocked(reached);
  return more;
}

void WatchHub::GatherLocked(const mvccpb::Event& e, int64_t rev) {
  gathered_.events.push_back(&e);
  gathered_.revs.push_back(rev);
  gathered_.bytes += e.kv().key().size() + e.kv().value().size() + e.prev_kv().value().size();
}

void WatchHub::DispatchGatheredLocked() {
  Gathered& gathered = gathered_;
  if (gathered.events.empty()) {
    dispatched_held_.clear();
    return;
  }
  std::vector<EventSlot>& slots = slot_scratch_;
  std::vector<Watcher*>& matched = matched_scratch_;
  std::vector<Watcher*>& touched = touched_scratch_;
  // `slots` stays put until the end: the watchers' pending lists point
  // into it.
  slots.assign(gathered.events.size(), EventSlot{});
  for (size_t i = 0; i < gathered.events.size(); ++i) {
    const mvccpb::Event& event = *gathered.events[i];
    const int64_t rev = gathered.revs[i];
    slots[i].event = &event;
    slots[i].rev = rev;
    matched.clear();
    synced_.Match(event.kv().key(), &matched);
    for (Watcher* w : matched) {
      if (w->next_rev > rev || !w->Wants(event)) continue;
      if (w->pending.empty()) touched.push_back(w);
      w->pending.push_back(&slots[i]);
    }
  }
  const int64_t last = gathered.revs.back();
  FlushTouchedLocked(touched, last);
  SendQueuedLocked();
  touched.clear();
  slots.clear();
  gathered.events.clear();
  gathered.revs.clear();
  gathered.bytes = 0;
  dispatched_held_.clear();
  SetSyncedRevLocked(last);
}

bool WatchHub::CatchUpLocked(const mvcc::ReadView& view) {
  if (unsynced_.empty()) return false;
  // Catch-up reads up to synced_rev_ only: a watcher that got everything up
  // to it joins the synced group, which has too. Live dispatch may have gone
  // past the store's commit on held changes (OfferHeld); catch-up reads
  // committed history only, so it stops at `view` and a watcher past it
  // waits for the next commit.
  const int64_t target = synced_rev_;
  const int64_t readable = std::min(target, view.Rev());
  const int64_t compact = view.CompactRev();
  std::vector<Watcher*> group;
  std::vector<Watcher*> to_sync;
  for (Watcher* w : unsynced_) {
    if (w->next_rev > target && w->next_rev >= compact) {
      to_sync.push_back(w);
      continue;
    }
    // Its next change is not committed yet: the commit's Notify brings it.
    if (w->next_rev > readable && w->next_rev >= compact) continue;
    if (group.size() < options_.catchup_watchers_per_round && w->sink->HasRoom()) {
      group.push_back(w);
    }
  }
  for (Watcher* w : to_sync) MakeSyncedLocked(w);
  if (group.empty()) return false;

  // A watcher whose next revision was compacted away cannot be served: it
  // gets the compact revision (clients report "required revision has been
  // compacted") and is dropped.
  std::vector<Watcher*> live;
  for (Watcher* w : group) {
    if (w->next_rev >= compact) {
      live.push_back(w);
      continue;
    }
    etcdserverpb::WatchResponse r;
    r.set_watch_id(w->spec.watch_id);
    r.set_compact_revision(compact);
    r.set_canceled(true);
    if (w->sink->TrySend(r, /*force=*/false)) EraseLocked(w);
  }
  if (live.empty()) return true;

  int64_t from = std::numeric_limits<int64_t>::max();
  bool prev_kv = false;
  for (Watcher* w : live) {
    from = std::min(from, w->next_rev);
    prev_kv = prev_kv || w->spec.prev_kv;
  }
  // Bounded batch: at most max_revisions_per_catchup revisions and about
  // max_events_per_round events, ending at a revision boundary.
  int64_t to = readable;
  if (to - from + 1 > options_.max_revisions_per_catchup) {
    to = from + options_.max_revisions_per_catchup - 1;
  }
  std::optional<mvcc::KeyRange> keys;
  if (live.size() == 1) keys = live[0]->range;
  auto changes = view.Changes(from, to, prev_kv, keys);
  if (!changes.ok()) {
    spdlog::error("watch: catch-up read failed: {}", changes.status().ToString());
    return false;
  }
  mvcc::ChangeIterator& it = **changes;
  std::vector<mvccpb::Event> events;
  std::vector<int64_t> revs;
  int64_t current = 0;
  for (; it.Valid(); it.Next()) {
    const int64_t rev = it.revision().main;
    if (rev != current) {
      if (events.size() >= options_.max_events_per_round) {
        to = current;
        break;
      }
      current = rev;
    }
    events.push_back(it.event());
    revs.push_back(rev);
  }
  if (!it.status().ok()) {
    spdlog::error("watch: catch-up read failed: {}", it.status().ToString());
    return false;
  }
  Index index;
  for (Watcher* w : live) index.Insert(w);
  std::vector<EventSlot> slots(events.size());
  std::vector<Watcher*> matched;
  for (size_t i = 0; i < events.size(); ++i) {
    slots[i].event = &events[i];
    slots[i].rev = revs[i];
    matched.clear();
    index.Match(events[i].kv().key(), &matched);
    for (Watcher* w : matched) {
      if (revs[i] >= w->next_rev && w->Wants(events[i])) w->pending.push_back(&slots[i]);
    }
  }
  for (Watcher* w : live) {
    if (!w->pending.empty() && !FlushLocked(w, target)) continue;  // Full: retry later.
    // A watcher further ahead than `to` keeps its place.
    w->next_rev = std::max(w->next_rev, to + 1);
    if (w->next_rev > target) MakeSyncedLocked(w);
  }
  SendQueuedLocked();
  return true;
}

void WatchHub::SendProgressLocked() {
  std::vector<Watcher*> due;
  for (auto& [id, w] : watchers_) {
    if (!w->spec.progress_notify) continue;
    if (w->synced && w->quiet) due.push_back(w.get());
    w->quiet = true;
  }
  for (Watcher* w : due) {
    etcdserverpb::WatchResponse r;
    r.set_watch_id(w->spec.watch_id);
    r.mutable_header()->set_revision(synced_rev_);
    // A full sink has events queued, which tell the client more than a
    // progress notification would: skip it.
    w->sink->TrySend(r, /*force=*/false);
  }
}

void WatchHub::AnswerProgressRequestsLocked() {
  for (auto it = sinks_.begin(); it != sinks_.end();) {
    SinkState& s = it->second;
    if (s.progress_requested && s.unsynced == 0) {
      etcdserverpb::WatchResponse r;
      r.set_watch_id(-1);
      r.mutable_header()->set_revision(synced_rev_);
      it->first->TrySend(r, /*force=*/true);
      s.progress_requested = false;
      if (s.watchers == 0) {
        it = sinks_.erase(it);
        continue;
      }
    }
    ++it;
  }
}

}  // namespace etcdpp::watch

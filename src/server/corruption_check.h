// Corruption checks across members (etcd's --experimental-initial-corrupt-check
// and --experimental-corrupt-check-time).
//
// Members apply the same entries, so at one revision and one compact
// revision their key spaces hash alike (mvcc::ReadView::HashKV). A member
// whose hash differs holds data the log never wrote: a flipped bit on disk,
// a bad restore, a bug. Two checks compare hashes over the peer transport:
//
//   - at start, before the member serves clients, it compares its own hash
//     with every reachable peer's at its current revision and refuses to
//     start on a mismatch (CheckStartupConsistency);
//   - while it leads, a member compares every peer's hash with its own at
//     its revision each interval and raises CORRUPT through Raft for each
//     member outside the majority (CorruptionMonitor); with CORRUPT raised, the
//     cluster refuses writes ("etcdserver: corrupt cluster") and still
//     serves reads, until the alarm is disarmed.
//
// A peer that cannot answer (unreachable, behind the revision, or compacted
// past it) is left out of a round, never flagged: only a hash computed on
// the same history can prove a difference.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace etcdpp::server {

// One member's HashKV answer.
struct KvHash {
  uint64_t member_id = 0;
  int64_t revision = 0;          // the revision hashed
  int64_t compact_revision = 0;  // the member's compact revision then
  uint32_t hash = 0;
};

// The peer call that asks for a member's hash: the body is the revision,
// 8 bytes big-endian; the reply is an etcdserverpb.HashKVResponse (header
// member_id and revision, hash, compact_revision), or the member's error
// (kFutureRev, kCompacted).
inline constexpr char kHashKvPeerCall[] = "maintenance/hashkv";
std::string EncodeHashKvCall(int64_t revision);
Result<int64_t> DecodeHashKvCall(const std::string& body);
std::string EncodeKvHash(const KvHash& hash);
Result<KvHash> DecodeKvHash(const std::string& reply);

struct PeerHash {
  uint64_t member_id = 0;
  Result<KvHash> hash;
};

// The peers whose hash differs from `reference` although they hashed the
// same revision with the same compact revision, ascending.
std::vector<uint64_t> PeersThatDiffer(const KvHash& reference, const std::vector<PeerHash>& peers);

// The members a check flags, ascending. Among the members comparable with
// `own` (same revision, same compact revision; `own` included), those
// whose hash differs from the one a strict majority of them share, so a
// damaged leader flags itself rather than its healthy followers. Without
// such a majority (two members that disagree, a three-way split), the
// peers that differ from `own`, as etcd's leader does.
std::vector<uint64_t> MembersToFlag(const KvHash& own, const std::vector<PeerHash>& peers);

// How a check reaches the member and its peers. Every function must be
// callable from the checking thread.
struct HashSources {
  // This member's hash at `revision` (0: its current revision).
  std::function<Result<KvHash>(int64_t revision)> local;
  // The other members' ids (learners included).
  std::function<std::vector<uint64_t>()> peers;
  // Asks `peer` for its hash at `revision`; `done` runs exactly once, on
  // any thread.
  std::function<void(uint64_t peer, int64_t revision, std::function<void(Result<KvHash>)> done)>
      ask_peer;
  // How long one round waits for the peers' answers.
  std::chrono::milliseconds peer_timeout{5000};
};

// Ends the waits of CollectPeerHashes early, so a stopping member does not
// sit out a round's peer timeout (RequestTimeout: 7 s by default) for
// answers nobody will use. Cancel is final: every wait in progress returns
// at once, and a later one returns without asking the peers.
// Thread-safe: every field is guarded by mu_.
class RoundCancel {
 public:
  void Cancel();
  bool cancelled() const;

  // Runs `wake` once, on the thread that calls Cancel. Returns the
  // registration to Forget, or 0 (and never runs `wake`) if Cancel already
  // happened.
  uint64_t OnCancel(std::function<void()> wake);
  void Forget(uint64_t registration);

 private:
  mutable std::mutex mu_;
  bool cancelled_ = false;                           // guarded by mu_
  uint64_t next_registration_ = 1;                   // guarded by mu_
  std::map<uint64_t, std::function<void()>> wakes_;  // guarded by mu_
};

// Asks every peer at once and waits until all answered, the timeout passed
// (a peer still silent then counts as kTimeout) or `cancel` (may be null)
// was cancelled (a peer still silent then counts as kCancelled). A late
// answer lands in a round nobody reads any more.
std::vector<PeerHash> CollectPeerHashes(const HashSources& sources, int64_t revision,
                                        RoundCancel* cancel = nullptr);

// The start-time check: OK when no reachable peer disagrees; otherwise
// kCorruption naming the members and the revision. Blocks for at most about
// sources.peer_timeout.
Status CheckStartupConsistency(uint64_t self_id, const HashSources& sources);

// The leader's periodic check, on a thread of its own. Every `interval` of
// the server clock (it wakes every 100 ms of real time to notice a fake
// clock), if `leads()` says this member leads, one round compares the peers
// with this member and calls raise_corrupt(member) for each member
// MembersToFlag names.
class CorruptionMonitor {
 public:
  CorruptionMonitor(HashSources sources, Clock* clock, std::chrono::milliseconds interval,
                    std::function<bool()> leads, std::function<void(uint64_t)> raise_corrupt);
  ~CorruptionMonitor();
  CorruptionMonitor(const CorruptionMonitor&) = delete;
  CorruptionMonitor& operator=(const CorruptionMonitor&) = delete;

  void Start();
  // Returns without waiting for the peers of a round in flight: the round
  // is cancelled and flags nobody.
  void Stop();
  // One round now, on the calling thread: the members found to differ
  // (raise_corrupt has been called for each). Empty once stopped.
  std::vector<uint64_t> CheckOnce();

 private:
  void Run(Clock::TimePoint first_round);

  const HashSources sources_;
  Clock* const clock_;
  const std::chrono::milliseconds interval_;
  const std::function<bool()> leads_;
  const std::function<void(uint64_t)> raise_corrupt_;

  RoundCancel cancel_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by mu_
  // Members already reported in the log (whoever runs CheckOnce: the
  // monitor's thread, or a test before Start): a
  // member stays flagged round after round, logged once.
  std::set<uint64_t> reported_;
  std::thread thread_;
};

}  // namespace etcdpp::server

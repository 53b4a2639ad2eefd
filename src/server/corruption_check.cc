#include "server/corruption_check.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>

#include "base/coding.h"
#include "etcdserverpb/rpc.pb.h"

namespace etcdpp::server {
namespace {

// The real-time period at which the monitor looks at the server clock.
constexpr std::chrono::milliseconds kClockPollInterval{100};

std::string MemberList(const std::vector<uint64_t>& ids) {
  std::string out;
  for (uint64_t id : ids) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{:x}", id);
  }
  return out;
}

}  // namespace

std::string EncodeHashKvCall(int64_t revision) {
  std::string body(8, '\0');
  PutBE64(body.data(), static_cast<uint64_t>(revision));
  return body;
}

Result<int64_t> DecodeHashKvCall(const std::string& body) {
  if (body.size() != 8) return Status::InvalidArgument("a hash request holds 8 bytes");
  return static_cast<int64_t>(GetBE64(body.data()));
}

std::string EncodeKvHash(const KvHash& hash) {
  etcdserverpb::HashKVResponse reply;
  reply.mutable_header()->set_member_id(hash.member_id);
  reply.mutable_header()->set_revision(hash.revision);
  reply.set_hash(hash.hash);
  reply.set_compact_revision(hash.compact_revision);
  return reply.SerializeAsString();
}

Result<KvHash> DecodeKvHash(const std::string& reply) {
  etcdserverpb::HashKVResponse decoded;
  if (!decoded.ParseFromString(reply)) return Status::Corruption("a peer's hash does not decode");
  KvHash hash;
  hash.member_id = decoded.header().member_id();
  hash.revision = decoded.header().revision();
  hash.hash = decoded.hash();
  hash.compact_revision = decoded.compact_revision();
  return hash;
}

namespace {

// Another revision or compact revision hashes another history.
bool Comparable(const KvHash& a, const KvHash& b) {
  return a.revision == b.revision && a.compact_revision == b.compact_revision;
}

}  // namespace

std::vector<uint64_t> PeersThatDiffer(const KvHash& reference, const std::vector<PeerHash>& peers) {
  std::vector<uint64_t> differ;
  for (const PeerHash& p : peers) {
    if (p.hash.ok() && Comparable(*p.hash, reference) && p.hash->hash != reference.hash) {
      differ.push_back(p.member_id);
    }
  }
  std::sort(differ.begin(), differ.end());
  return differ;
}

std::vector<uint64_t> MembersToFlag(const KvHash& own, const std::vector<PeerHash>& peers) {
  std::map<uint32_t, std::vector<uint64_t>> by_hash{{own.hash, {own.member_id}}};
  size_t compared = 1;
  for (const PeerHash& p : peers) {
    if (!p.hash.ok() || !Comparable(*p.hash, own)) continue;
    by_hash[p.hash->hash].push_back(p.member_id);
    ++compared;
  }
  for (const auto& [hash, members] : by_hash) {
    if (2 * members.size() <= compared) continue;
    std::vector<uint64_t> outside;
    for (const auto& [other, others] : by_hash) {
      if (other != hash) outside.insert(outside.end(), others.begin(), others.end());
    }
    std::sort(outside.begin(), outside.end());
    return outside;
  }
  return PeersThatDiffer(own, peers);
}

void RoundCancel::Cancel() {
  std::map<uint64_t, std::function<void()>> wakes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return;
    cancelled_ = true;
    wakes.swap(wakes_);
  }
  // Outside mu_: a wake takes its round's mutex, and the round may be
  // calling Forget under it.
  for (auto& [registration, wake] : wakes) wake();
}

bool RoundCancel::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

uint64_t RoundCancel::OnCancel(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_) return 0;
  const uint64_t registration = next_registration_++;
  wakes_.emplace(registration, std::move(wake));
  return registration;
}

void RoundCancel::Forget(uint64_t registration) {
  std::lock_guard<std::mutex> lock(mu_);
  wakes_.erase(registration);
}

std::vector<PeerHash> CollectPeerHashes(const HashSources& sources, int64_t revision,
                                        RoundCancel* cancel) {
  struct Round {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<PeerHash> answers;  // guarded by mu
    size_t pending = 0;             // guarded by mu
    bool cancelled = false;         // guarded by mu
  };
  // Shared with the callbacks and the cancel's wake: either may run after
  // this function returned.
  auto round = std::make_shared<Round>();
  const std::vector<uint64_t> peers = sources.peers();
  round->answers.reserve(peers.size());
  for (uint64_t id : peers) round->answers.push_back(PeerHash{id, Status(Code::kTimeout)});
  round->pending = peers.size();
  uint64_t registration = 0;
  if (cancel != nullptr) {
    registration = cancel->OnCancel([round] {
      std::lock_guard<std::mutex> lock(round->mu);
      round->cancelled = true;
      round->cv.notify_all();
    });
    if (registration == 0) {
      for (PeerHash& p : round->answers) p.hash = Status(Code::kCancelled);
      return round->answers;
    }
  }
  for (size_t i = 0; i < peers.size(); ++i) {
    sources.ask_peer(peers[i], revision, [round, i](Result<KvHash> answer) {
      std::lock_guard<std::mutex> lock(round->mu);
      if (round->cancelled) return;
      round->answers[i].hash = std::move(answer);
      if (--round->pending == 0) round->cv.notify_all();
    });
  }
  std::vector<PeerHash> answers;
  {
    std::unique_lock<std::mutex> lock(round->mu);
    round->cv.wait_for(lock, sources.peer_timeout,
                       [&] { return round->pending == 0 || round->cancelled; });
    if (round->cancelled) {
      for (PeerHash& p : round->answers) {
        if (p.hash.status().code() == Code::kTimeout) p.hash = Status(Code::kCancelled);
      }
    }
    answers = round->answers;
  }
  if (registration != 0) cancel->Forget(registration);
  return answers;
}

Status CheckStartupConsistency(uint64_t self_id, const HashSources& sources) {
  auto own = sources.local(0);
  if (!own.ok()) return own.status();
  const std::vector<PeerHash> peers = CollectPeerHashes(sources, own->revision);
  size_t compared = 0;
  for (const PeerHash& p : peers) {
    if (!p.hash.ok()) {
      spdlog::warn("start-up corruption check: no hash from member {:x} at revision {}: {}",
                   p.member_id, own->revision, p.hash.status().ToString());
      continue;
    }
    if (p.hash->compact_revision != own->compact_revision) {
      spdlog::warn(
          "start-up corruption check: member {:x} is compacted to {}, this member to {}; "
          "not compared",
          p.member_id, p.hash->compact_revision, own->compact_revision);
      continue;
    }
    ++compared;
  }
  const std::vector<uint64_t> differ = PeersThatDiffer(*own, peers);
  if (!differ.empty()) {
    return Status::Corruption(
        fmt::format("member {:x}'s data differs from member(s) {} at revision {} (hash {} against "
                    "theirs); refusing to start: restore this member from a snapshot or remove and "
                    "re-add it",
                    self_id, MemberList(differ), own->revision, own->hash));
  }
  spdlog::info("start-up corruption check: revision {} agrees with {} of {} peer(s)", own->revision,
               compared, peers.size());
  return Status::OK();
}

CorruptionMonitor::CorruptionMonitor(HashSources sources, Clock* clock,
                                     std::chrono::milliseconds interval,
                                     std::function<bool()> leads,
                                     std::function<void(uint64_t)> raise_corrupt)
    : sources_(std::move(sources)),
      clock_(clock),
      interval_(interval),
      leads_(std::move(leads)),
      raise_corrupt_(std::move(raise_corrupt)) {}

CorruptionMonitor::~CorruptionMonitor() { Stop(); }

void CorruptionMonitor::Start() {
  // Taken here, not on the new thread: the first round is due one interval
  // of the clock after Start returned, however late the thread begins.
  const Clock::TimePoint first_round = clock_->Now() + interval_;
  thread_ = std::thread([this, first_round] { Run(first_round); });
}

void CorruptionMonitor::Stop() {
  cancel_.Cancel();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<uint64_t> CorruptionMonitor::CheckOnce() {
  auto own = sources_.local(0);
  if (!own.ok()) {
    spdlog::warn("corruption check: no local hash: {}", own.status().ToString());
    return {};
  }
  const std::vector<PeerHash> peers = CollectPeerHashes(sources_, own->revision, &cancel_);
  // A cancelled round compared fewer members than it asked: no verdict.
  if (cancel_.cancelled()) return {};
  const std::vector<uint64_t> flagged = MembersToFlag(*own, peers);
  for (uint64_t id : flagged) {
    if (reported_.insert(id).second) {
      spdlog::error(
          "corruption check: member {:x}'s data differs from the majority's at revision {}", id,
          own->revision);
    }
    raise_corrupt_(id);
  }
  return flagged;
}

void CorruptionMonitor::Run(Clock::TimePoint first_round) {
  Clock::TimePoint next = first_round;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_cv_.wait_for(lock, kClockPollInterval, [this] { return stopping_; })) return;
    }
    if (clock_->Now() < next) continue;
    next = clock_->Now() + interval_;
    if (leads_()) CheckOnce();
  }
}

}  // namespace etcdpp::server

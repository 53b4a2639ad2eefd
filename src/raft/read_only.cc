#include "raft/read_only.h"

namespace etcdpp::raft {

void ReadOnly::AddRequest(uint64_t index, const raftpb::Message& m) {
  const std::string& ctx = m.entries(0).data();
  if (pending_.count(ctx) != 0) return;
  ReadIndexStatus rs;
  rs.req = m;
  rs.index = index;
  pending_.emplace(ctx, std::move(rs));
  queue_.push_back(ctx);
}

const std::map<uint64_t, bool>* ReadOnly::RecvAck(uint64_t id, const std::string& ctx) {
  auto it = pending_.find(ctx);
  if (it == pending_.end()) return nullptr;
  it->second.acks[id] = true;
  return &it->second.acks;
}

std::vector<ReadIndexStatus> ReadOnly::Advance(const std::string& ctx) {
  size_t n = 0;
  bool found = false;
  for (const auto& c : queue_) {
    ++n;
    if (c == ctx) {
      found = true;
      break;
    }
  }
  std::vector<ReadIndexStatus> out;
  if (!found) return out;
  for (size_t i = 0; i < n; ++i) {
    auto it = pending_.find(queue_.front());
    out.push_back(std::move(it->second));
    pending_.erase(it);
    queue_.pop_front();
  }
  return out;
}

std::string ReadOnly::LastPendingRequestCtx() const {
  return queue_.empty() ? std::string() : queue_.back();
}

}  // namespace etcdpp::raft

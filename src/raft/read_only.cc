#include "raft/read_only.h"

#include "base/coding.h"

namespace etcdpp::raft {

uint64_t ContextTag(const std::string& ctx) {
  uint64_t tag = 0;
  for (size_t i = 0; i < ctx.size() && i < 8; ++i) tag = (tag << 8) | uint8_t(ctx[i]);
  return tag;
}

std::string ReadOnly::AddRequest(uint64_t index, const raftpb::Message& m) {
  const std::string& ctx = m.entries(0).data();
  if (auto it = key_of_.find(ctx); it != key_of_.end()) return it->second;
  std::string key(8, '\0');
  PutBE64(key.data(), ++last_key_);
  ReadIndexStatus rs;
  rs.req = m;
  rs.index = index;
  pending_.emplace(key, std::move(rs));
  key_of_.emplace(ctx, key);
  queue_.push_back(key);
  return key;
}

const std::map<uint64_t, bool>* ReadOnly::RecvAck(uint64_t id, const std::string& key) {
  auto it = pending_.find(key);
  if (it == pending_.end()) return nullptr;
  it->second.acks[id] = true;
  return &it->second.acks;
}

std::vector<ReadIndexStatus> ReadOnly::Advance(const std::string& key) {
  std::vector<ReadIndexStatus> out;
  if (pending_.count(key) == 0) return out;
  for (;;) {
    const std::string front = std::move(queue_.front());
    queue_.pop_front();
    auto it = pending_.find(front);
    key_of_.erase(it->second.req.entries(0).data());
    out.push_back(std::move(it->second));
    pending_.erase(it);
    if (front == key) return out;
  }
}

void ReadOnly::Clear() {
  pending_.clear();
  key_of_.clear();
  queue_.clear();
}

std::string ReadOnly::LastPendingKey() const {
  return queue_.empty() ? std::string() : queue_.back();
}

}  // namespace etcdpp::raft

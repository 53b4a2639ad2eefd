#include "server/alarms.h"

#include "mvcc/kv_store.h"

namespace etcdpp::server {
namespace {

// etcd's estimates of what the backend stores besides the bytes of a put or
// a lease.
constexpr uint64_t kPutOverheadBytes = 256;
constexpr uint64_t kLeaseOverheadBytes = 64;

uint64_t PutCost(const etcdserverpb::PutRequest& put) {
  return kPutOverheadBytes + put.key().size() + put.value().size();
}

uint64_t TxnCost(const etcdserverpb::TxnRequest& txn) {
  uint64_t cost = 0;
  for (const auto* branch : {&txn.success(), &txn.failure()}) {
    for (const etcdserverpb::RequestOp& op : *branch) {
      if (op.has_request_put()) cost += PutCost(op.request_put());
      if (op.has_request_txn()) cost += TxnCost(op.request_txn());
    }
  }
  return cost;
}

}  // namespace

Status AlarmSet::Load(const mvcc::ReadView& view) {
  auto stored = view.GetMeta(kAlarmsMetaKey);
  if (!stored.ok()) return stored.status();
  std::set<std::pair<uint64_t, int>> loaded;
  if (stored->has_value()) {
    etcdserverpb::AlarmResponse decoded;
    if (!decoded.ParseFromString(**stored)) {
      return Status::Corruption("the stored alarms do not decode");
    }
    for (const etcdserverpb::AlarmMember& a : decoded.alarms()) {
      loaded.emplace(a.memberid(), static_cast<int>(a.alarm()));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  raised_ = std::move(loaded);
  return Status::OK();
}

bool AlarmSet::Activate(uint64_t member_id, etcdserverpb::AlarmType type) {
  std::lock_guard<std::mutex> lock(mu_);
  return raised_.emplace(member_id, static_cast<int>(type)).second;
}

bool AlarmSet::Deactivate(uint64_t member_id, etcdserverpb::AlarmType type) {
  std::lock_guard<std::mutex> lock(mu_);
  return raised_.erase({member_id, static_cast<int>(type)}) > 0;
}

std::vector<etcdserverpb::AlarmMember> AlarmSet::List(etcdserverpb::AlarmType type) const {
  std::vector<etcdserverpb::AlarmMember> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [member, alarm] : raised_) {
    if (type != etcdserverpb::NONE && alarm != type) continue;
    etcdserverpb::AlarmMember& a = out.emplace_back();
    a.set_memberid(member);
    a.set_alarm(static_cast<etcdserverpb::AlarmType>(alarm));
  }
  return out;
}

bool AlarmSet::Raised(etcdserverpb::AlarmType type) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& entry : raised_) {
    if (entry.second == type) return true;
  }
  return false;
}

std::string AlarmSet::Encode() const {
  etcdserverpb::AlarmResponse encoded;
  for (etcdserverpb::AlarmMember& a : List()) *encoded.add_alarms() = std::move(a);
  return encoded.SerializeAsString();
}

uint64_t QuotaCost(const internalpb::InternalRaftRequest& request) {
  if (request.has_put()) return PutCost(request.put());
  if (request.has_txn()) return TxnCost(request.txn());
  if (request.has_lease_grant()) return kLeaseOverheadBytes;
  return 0;
}

bool RefusedWhileCorrupt(const internalpb::InternalRaftRequest& request) {
  return request.has_put() || request.has_delete_range() || request.has_txn() ||
         request.has_compaction() || request.has_lease_grant() || request.has_lease_revoke();
}

}  // namespace etcdpp::server

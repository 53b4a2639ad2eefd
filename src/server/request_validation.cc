#include "server/request_validation.h"

#include <string>
#include <unordered_set>
#include <vector>

namespace etcdpp::server {
namespace {

using etcdserverpb::RequestOp;

Status CheckRequestOp(const RequestOp& op, int max_txn_ops) {
  switch (op.request_case()) {
    case RequestOp::kRequestRange:
      return ValidateRange(op.request_range());
    case RequestOp::kRequestPut:
      return ValidatePut(op.request_put());
    case RequestOp::kRequestDeleteRange:
      return ValidateDeleteRange(op.request_delete_range());
    case RequestOp::kRequestTxn:
      return ValidateTxn(op.request_txn(), max_txn_ops);
    case RequestOp::REQUEST_NOT_SET:
      break;
  }
  return Status(Code::kKeyNotFound);  // etcd: an empty op is "key not found".
}

Status CheckTxnShape(const etcdserverpb::TxnRequest& r, int max_txn_ops) {
  int ops = std::max({r.compare_size(), r.success_size(), r.failure_size()});
  if (ops > max_txn_ops) return Status(Code::kTooManyOps);
  for (const auto& c : r.compare()) {
    if (c.key().empty()) return Status(Code::kEmptyKey);
  }
  for (const auto& op : r.success()) ETCDPP_RETURN_IF_ERROR(CheckRequestOp(op, max_txn_ops));
  for (const auto& op : r.failure()) ETCDPP_RETURN_IF_ERROR(CheckRequestOp(op, max_txn_ops));
  return Status::OK();
}

// A deleted key range as etcd's adt.StringAffineInterval: [begin, end) with
// an empty end meaning unbounded, or the single key `begin`.
struct DeleteInterval {
  std::string begin;
  std::string end;
  bool point = false;

  bool Contains(const std::string& key) const {
    if (point) return key == begin;
    return begin <= key && (end.empty() || key < end);
  }
};

using PutSet = std::unordered_set<std::string>;
using DeleteSet = std::vector<DeleteInterval>;

bool Covered(const DeleteSet& dels, const std::string& key) {
  for (const auto& iv : dels) {
    if (iv.Contains(key)) return true;
  }
  return false;
}

// etcd's checkIntervals: the puts and deletes of one list of ops (recursing
// into nested txns), failing on a put/put or put/delete overlap.
Status CheckIntervals(const google::protobuf::RepeatedPtrField<RequestOp>& reqs, PutSet* puts,
                      DeleteSet* dels) {
  // This level's deletes first, so nested puts are checked against them.
  for (const auto& op : reqs) {
    if (op.request_case() != RequestOp::kRequestDeleteRange) continue;
    const auto& d = op.request_delete_range();
    if (d.range_end().empty()) {
      dels->push_back({d.key(), {}, true});
    } else {
      dels->push_back({d.key(), d.range_end(), false});
    }
  }
  for (const auto& op : reqs) {
    if (op.request_case() != RequestOp::kRequestTxn) continue;
    PutSet puts_then, puts_else;
    DeleteSet dels_then, dels_else;
    ETCDPP_RETURN_IF_ERROR(CheckIntervals(op.request_txn().success(), &puts_then, &dels_then));
    ETCDPP_RETURN_IF_ERROR(CheckIntervals(op.request_txn().failure(), &puts_else, &dels_else));
    for (const auto& k : puts_then) {
      if (puts->count(k) != 0 || Covered(*dels, k)) return Status(Code::kDuplicateKey);
      puts->insert(k);
    }
    for (const auto& k : puts_else) {
      // Then and else are mutually exclusive: a key from puts_then is fine.
      if (puts->count(k) != 0 && puts_then.count(k) == 0) return Status(Code::kDuplicateKey);
      if (Covered(*dels, k)) return Status(Code::kDuplicateKey);
      puts->insert(k);
    }
    dels->insert(dels->end(), dels_then.begin(), dels_then.end());
    dels->insert(dels->end(), dels_else.begin(), dels_else.end());
  }
  for (const auto& op : reqs) {
    if (op.request_case() != RequestOp::kRequestPut) continue;
    const std::string& k = op.request_put().key();
    if (puts->count(k) != 0 || Covered(*dels, k)) return Status(Code::kDuplicateKey);
    puts->insert(k);
  }
  return Status::OK();
}

}  // namespace

Status ValidateRange(const etcdserverpb::RangeRequest& r) {
  if (r.key().empty()) return Status(Code::kEmptyKey);
  if (!etcdserverpb::RangeRequest::SortOrder_IsValid(r.sort_order()) ||
      !etcdserverpb::RangeRequest::SortTarget_IsValid(r.sort_target())) {
    return Status(Code::kInvalidArgument, "etcdserver: invalid sort option");
  }
  return Status::OK();
}

Status ValidatePut(const etcdserverpb::PutRequest& r) {
  if (r.key().empty()) return Status(Code::kEmptyKey);
  if (r.ignore_value() && !r.value().empty()) return Status(Code::kValueProvided);
  if (r.ignore_lease() && r.lease() != 0) return Status(Code::kLeaseProvided);
  return Status::OK();
}

Status ValidateDeleteRange(const etcdserverpb::DeleteRangeRequest& r) {
  if (r.key().empty()) return Status(Code::kEmptyKey);
  return Status::OK();
}

Status ValidateTxn(const etcdserverpb::TxnRequest& r, int max_txn_ops) {
  ETCDPP_RETURN_IF_ERROR(CheckTxnShape(r, max_txn_ops));
  // Overlap checks after the shape check, which bounds their cost.
  {
    PutSet puts;
    DeleteSet dels;
    ETCDPP_RETURN_IF_ERROR(CheckIntervals(r.success(), &puts, &dels));
  }
  PutSet puts;
  DeleteSet dels;
  return CheckIntervals(r.failure(), &puts, &dels);
}

bool IsReadOnlyTxn(const etcdserverpb::TxnRequest& r) {
  auto read_only = [](const google::protobuf::RepeatedPtrField<RequestOp>& ops) {
    for (const auto& op : ops) {
      switch (op.request_case()) {
        case RequestOp::kRequestRange:
          break;
        case RequestOp::kRequestTxn:
          if (!IsReadOnlyTxn(op.request_txn())) return false;
          break;
        default:
          return false;
      }
    }
    return true;
  };
  return read_only(r.success()) && read_only(r.failure());
}

}  // namespace etcdpp::server

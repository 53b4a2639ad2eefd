#include "server/kv_applier.h"

#include <algorithm>
#include <optional>
#include <vector>

namespace etcdpp::server {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RequestOp;

// The branch chosen at each level of a (nested) txn, decided before any op
// runs. nested[i] belongs to the i-th txn op of the chosen branch.
struct KvApplier::TxnPath {
  bool succeeded = false;
  std::vector<TxnPath> nested;
};

namespace {

const google::protobuf::RepeatedPtrField<RequestOp>& Branch(const etcdserverpb::TxnRequest& req,
                                                            bool succeeded) {
  return succeeded ? req.success() : req.failure();
}

template <typename T>
int Cmp(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// etcd's compareKV: the compare's operand comes from target_union only if
// it is set for the compare's own target; otherwise it is zero / empty.
bool CompareKeyValue(const Compare& c, const mvccpb::KeyValue& kv) {
  int result = 0;
  switch (c.target()) {
    case Compare::VALUE: {
      const std::string empty;
      const std::string& v = c.target_union_case() == Compare::kValue ? c.value() : empty;
      result = kv.value().compare(v);
      result = result < 0 ? -1 : (result > 0 ? 1 : 0);
      break;
    }
    case Compare::CREATE:
      result =
          Cmp<int64_t>(kv.create_revision(),
                       c.target_union_case() == Compare::kCreateRevision ? c.create_revision() : 0);
      break;
    case Compare::MOD:
      result = Cmp<int64_t>(kv.mod_revision(),
                            c.target_union_case() == Compare::kModRevision ? c.mod_revision() : 0);
      break;
    case Compare::VERSION:
      result =
          Cmp<int64_t>(kv.version(), c.target_union_case() == Compare::kVersion ? c.version() : 0);
      break;
    case Compare::LEASE:
      result = Cmp<int64_t>(kv.lease(), c.target_union_case() == Compare::kLease ? c.lease() : 0);
      break;
    default:
      break;
  }
  switch (c.result()) {
    case Compare::EQUAL:
      return result == 0;
    case Compare::NOT_EQUAL:
      return result != 0;
    case Compare::GREATER:
      return result > 0;
    case Compare::LESS:
      return result < 0;
    default:
      return true;  // etcd: an unknown result compares true.
  }
}

// Three-way comparison of two kvs on a sort target.
int CompareOn(RangeRequest::SortTarget target, const mvccpb::KeyValue& a,
              const mvccpb::KeyValue& b) {
  switch (target) {
    case RangeRequest::KEY:
      return a.key().compare(b.key());
    case RangeRequest::VERSION:
      return Cmp(a.version(), b.version());
    case RangeRequest::CREATE:
      return Cmp(a.create_revision(), b.create_revision());
    case RangeRequest::MOD:
      return Cmp(a.mod_revision(), b.mod_revision());
    case RangeRequest::VALUE:
      return a.value().compare(b.value());
    default:
      return 0;
  }
}

Status CheckRange(const mvcc::ReadView& view, const RangeRequest& r) {
  if (r.revision() == 0) return Status::OK();
  if (r.revision() > view.Rev()) return Status(Code::kFutureRev);
  if (r.revision() < view.CompactRev()) return Status(Code::kCompacted);
  return Status::OK();
}

}  // namespace

// ---------------------------------------------------------------------------
// Range

Status KvApplier::Range(const mvcc::ReadView& view, const RangeRequest& req,
                        etcdserverpb::RangeResponse* resp) {
  const bool filtered = req.min_mod_revision() != 0 || req.max_mod_revision() != 0 ||
                        req.min_create_revision() != 0 || req.max_create_revision() != 0;
  RangeRequest::SortOrder order = req.sort_order();
  if (req.sort_target() != RangeRequest::KEY && order == RangeRequest::NONE) {
    order = RangeRequest::ASCEND;
  } else if (req.sort_target() == RangeRequest::KEY && order == RangeRequest::ASCEND) {
    order = RangeRequest::NONE;  // Already in key order.
  }
  // Sorting by value needs the values even when the client wants keys only.
  const bool drop_values_late =
      req.keys_only() && order != RangeRequest::NONE && req.sort_target() == RangeRequest::VALUE;
  mvcc::RangeOptions opts;
  opts.rev = req.revision();
  opts.count_only = req.count_only();
  opts.keys_only = req.keys_only() && !drop_values_late;
  // Like etcd: sorting or filtering needs every kv; otherwise fetch one more
  // than the limit to learn `more`.
  if (req.limit() > 0 && req.sort_order() == RangeRequest::NONE && !filtered) {
    opts.limit = req.limit() + 1;
  }
  auto rr = view.Range(req.key(), req.range_end(), opts);
  if (!rr.ok()) return rr.status();
  auto& kvs = rr->kvs;

  if (filtered) {
    auto drop = [&](const mvccpb::KeyValue& kv) {
      return (req.max_mod_revision() != 0 && kv.mod_revision() > req.max_mod_revision()) ||
             (req.min_mod_revision() != 0 && kv.mod_revision() < req.min_mod_revision()) ||
             (req.max_create_revision() != 0 && kv.create_revision() > req.max_create_revision()) ||
             (req.min_create_revision() != 0 && kv.create_revision() < req.min_create_revision());
    };
    // Stable in-place removal by pointer swaps.
    int kept = 0;
    for (int i = 0; i < kvs.size(); ++i) {
      if (drop(kvs.Get(i))) continue;
      if (kept != i) kvs.SwapElements(kept, i);
      ++kept;
    }
    kvs.DeleteSubrange(kept, kvs.size() - kept);
  }

  if (order != RangeRequest::NONE) {
    const auto target = req.sort_target();
    const bool descend = order == RangeRequest::DESCEND;
    std::stable_sort(kvs.pointer_begin(), kvs.pointer_end(),
                     [&](const mvccpb::KeyValue* a, const mvccpb::KeyValue* b) {
                       int c = CompareOn(target, *a, *b);
                       return descend ? c > 0 : c < 0;
                     });
  }
  if (req.limit() > 0 && kvs.size() > req.limit()) {
    kvs.DeleteSubrange(static_cast<int>(req.limit()), kvs.size() - static_cast<int>(req.limit()));
    resp->set_more(true);
  }
  if (drop_values_late) {
    for (auto& kv : kvs) kv.clear_value();
  }
  resp->mutable_header()->set_revision(rr->rev);
  resp->set_count(rr->count);
  resp->mutable_kvs()->Swap(&kvs);
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Put / DeleteRange

Status KvApplier::CheckPut(const mvcc::ReadView& view, const etcdserverpb::PutRequest& req) const {
  if (req.lease() != 0 && (leases_ == nullptr || !leases_->Exists(req.lease()))) {
    return Status(Code::kLeaseNotFound);
  }
  if (req.ignore_value() || req.ignore_lease()) {
    auto r = view.Range(req.key(), {}, mvcc::RangeOptions{.count_only = true});
    if (!r.ok()) return r.status();
    if (r->count == 0) return Status(Code::kKeyNotFound);
  }
  return Status::OK();
}

Status KvApplier::DoPut(mvcc::WriteTxn& txn, const etcdserverpb::PutRequest& req,
                        etcdserverpb::PutResponse* resp) {
  const bool need_prev = req.prev_kv() || req.ignore_value() || req.ignore_lease();
  mvccpb::KeyValue prev;
  bool has_prev = false;
  if (need_prev) {
    // ignore_lease alone needs the previous lease, not the value.
    const bool need_value = req.prev_kv() || req.ignore_value();
    auto r = txn.Range(req.key(), {}, mvcc::RangeOptions{.keys_only = !need_value});
    if (!r.ok()) return r.status();
    if (!r->kvs.empty()) {
      prev.Swap(&r->kvs[0]);
      has_prev = true;
    }
  }
  if ((req.ignore_value() || req.ignore_lease()) && !has_prev) return Status(Code::kKeyNotFound);
  const std::string& value = req.ignore_value() ? prev.value() : req.value();
  const int64_t lease = req.ignore_lease() ? prev.lease() : req.lease();
  auto put = txn.Put(req.key(), value, lease);
  if (!put.ok()) return put.status();
  if (leases_ != nullptr) {
    if (put->prev_lease != 0)
      ETCDPP_RETURN_IF_ERROR(leases_->Detach(txn, put->prev_lease, req.key()));
    if (lease != 0) ETCDPP_RETURN_IF_ERROR(leases_->Attach(txn, lease, req.key()));
  }
  resp->mutable_header()->set_revision(put->revision);
  if (req.prev_kv() && has_prev) resp->mutable_prev_kv()->Swap(&prev);
  return Status::OK();
}

Status KvApplier::Put(mvcc::WriteTxn& txn, const etcdserverpb::PutRequest& req,
                      etcdserverpb::PutResponse* resp) {
  ETCDPP_RETURN_IF_ERROR(CheckPut(txn, req));
  txn.BeginRevision();
  Status s = DoPut(txn, req, resp);
  txn.EndRevision();
  return s;
}

Status KvApplier::DoDeleteRange(mvcc::WriteTxn& txn, const etcdserverpb::DeleteRangeRequest& req,
                                etcdserverpb::DeleteRangeResponse* resp,
                                const mvcc::DeleteParts* parts) {
  const bool want_prev = req.prev_kv();
  // Detached after the delete (or its part): the callback runs inside the
  // txn's scan.
  std::vector<std::pair<int64_t, std::string>> leased;
  auto detach = [&]() -> Status {
    for (const auto& [lease, key] : leased)
      ETCDPP_RETURN_IF_ERROR(leases_->Detach(txn, lease, key));
    leased.clear();
    return Status::OK();
  };
  std::optional<mvcc::DeleteParts> in_parts;
  if (parts != nullptr) {
    in_parts =
        mvcc::DeleteParts{parts->keys_per_part, [&]() -> Status {
                            ETCDPP_RETURN_IF_ERROR(detach());
                            return parts->before_commit ? parts->before_commit() : Status::OK();
                          }};
  }
  const auto values = want_prev ? mvcc::PrevValues::kRead : mvcc::PrevValues::kSkip;
  auto n = txn.DeleteRange(
      req.key(), req.range_end(), values,
      [&](const mvcc::KeyValueView& kv) {
        if (want_prev) kv.CopyTo(resp->add_prev_kvs());
        if (leases_ != nullptr && kv.lease != 0) leased.emplace_back(kv.lease, std::string(kv.key));
      },
      in_parts ? &*in_parts : nullptr);
  if (!n.ok()) return n.status();
  ETCDPP_RETURN_IF_ERROR(detach());
  resp->set_deleted(*n);
  // etcd reports the txn's new revision once anything changed in it.
  resp->mutable_header()->set_revision(txn.Rev());
  return Status::OK();
}

Status KvApplier::DeleteRange(mvcc::WriteTxn& txn, const etcdserverpb::DeleteRangeRequest& req,
                              etcdserverpb::DeleteRangeResponse* resp) {
  txn.BeginRevision();
  Status s = DoDeleteRange(txn, req, resp);
  txn.EndRevision();
  return s;
}

Status KvApplier::DeleteRangeInParts(mvcc::WriteTxn& txn,
                                     const etcdserverpb::DeleteRangeRequest& req,
                                     etcdserverpb::DeleteRangeResponse* resp,
                                     const mvcc::DeleteParts& parts) {
  txn.BeginRevision();
  Status s = DoDeleteRange(txn, req, resp, &parts);
  txn.EndRevision();
  return s;
}

// ---------------------------------------------------------------------------
// Txn

Result<bool> KvApplier::EvaluateCompare(const mvcc::ReadView& view, const Compare& c) {
  // Only a VALUE compare needs the values: the others (Kubernetes compares
  // every update's mod_revision) would otherwise read each key's value, a
  // lookup in the store's revision table, to throw it away.
  auto r = view.Range(c.key(), c.range_end(),
                      mvcc::RangeOptions{.keys_only = c.target() != Compare::VALUE});
  if (!r.ok()) {
    // etcd treats a failing read as a false compare.
    return false;
  }
  if (r->kvs.empty()) {
    if (c.target() == Compare::VALUE) return false;  // No value to compare with.
    return CompareKeyValue(c, mvccpb::KeyValue());
  }
  for (const auto& kv : r->kvs) {
    if (!CompareKeyValue(c, kv)) return false;
  }
  return true;
}

Result<KvApplier::TxnPath> KvApplier::BuildPath(const mvcc::ReadView& view,
                                                const etcdserverpb::TxnRequest& req) {
  TxnPath path;
  path.succeeded = true;
  for (const auto& c : req.compare()) {
    auto ok = EvaluateCompare(view, c);
    if (!ok.ok()) return ok.status();
    if (!*ok) {
      path.succeeded = false;
      break;
    }
  }
  for (const auto& op : Branch(req, path.succeeded)) {
    if (op.request_case() != RequestOp::kRequestTxn) continue;
    auto nested = BuildPath(view, op.request_txn());
    if (!nested.ok()) return nested.status();
    path.nested.push_back(std::move(*nested));
  }
  return path;
}

Status KvApplier::CheckPath(const mvcc::ReadView& view, const etcdserverpb::TxnRequest& req,
                            const TxnPath& path) const {
  size_t nested = 0;
  for (const auto& op : Branch(req, path.succeeded)) {
    switch (op.request_case()) {
      case RequestOp::kRequestRange:
        ETCDPP_RETURN_IF_ERROR(CheckRange(view, op.request_range()));
        break;
      case RequestOp::kRequestPut:
        ETCDPP_RETURN_IF_ERROR(CheckPut(view, op.request_put()));
        break;
      case RequestOp::kRequestTxn:
        ETCDPP_RETURN_IF_ERROR(CheckPath(view, op.request_txn(), path.nested[nested++]));
        break;
      default:
        break;
    }
  }
  return Status::OK();
}

Status KvApplier::ExecutePath(mvcc::WriteTxn& txn, const etcdserverpb::TxnRequest& req,
                              const TxnPath& path, etcdserverpb::TxnResponse* resp) {
  resp->set_succeeded(path.succeeded);
  size_t nested = 0;
  for (const auto& op : Branch(req, path.succeeded)) {
    auto* out = resp->add_responses();
    switch (op.request_case()) {
      case RequestOp::kRequestRange:
        ETCDPP_RETURN_IF_ERROR(Range(txn, op.request_range(), out->mutable_response_range()));
        break;
      case RequestOp::kRequestPut:
        ETCDPP_RETURN_IF_ERROR(DoPut(txn, op.request_put(), out->mutable_response_put()));
        break;
      case RequestOp::kRequestDeleteRange:
        ETCDPP_RETURN_IF_ERROR(
            DoDeleteRange(txn, op.request_delete_range(), out->mutable_response_delete_range()));
        break;
      case RequestOp::kRequestTxn: {
        auto* nested_resp = out->mutable_response_txn();
        ETCDPP_RETURN_IF_ERROR(
            ExecutePath(txn, op.request_txn(), path.nested[nested++], nested_resp));
        nested_resp->mutable_header()->set_revision(txn.Rev());
        break;
      }
      case RequestOp::REQUEST_NOT_SET:
        break;
    }
  }
  return Status::OK();
}

Status KvApplier::Txn(mvcc::WriteTxn& txn, const etcdserverpb::TxnRequest& req,
                      etcdserverpb::TxnResponse* resp) {
  auto path = BuildPath(txn, req);
  if (!path.ok()) return path.status();
  ETCDPP_RETURN_IF_ERROR(CheckPath(txn, req, *path));
  txn.BeginRevision();
  Status s = ExecutePath(txn, req, *path, resp);
  txn.EndRevision();
  if (!s.ok()) return s;
  resp->mutable_header()->set_revision(txn.Rev());
  return Status::OK();
}

Status KvApplier::ExecuteReadOnlyPath(const mvcc::ReadView& view,
                                      const etcdserverpb::TxnRequest& req, const TxnPath& path,
                                      etcdserverpb::TxnResponse* resp) {
  resp->set_succeeded(path.succeeded);
  size_t nested = 0;
  for (const auto& op : Branch(req, path.succeeded)) {
    auto* out = resp->add_responses();
    switch (op.request_case()) {
      case RequestOp::kRequestRange:
        ETCDPP_RETURN_IF_ERROR(Range(view, op.request_range(), out->mutable_response_range()));
        break;
      case RequestOp::kRequestTxn: {
        auto* nested_resp = out->mutable_response_txn();
        ETCDPP_RETURN_IF_ERROR(
            ExecuteReadOnlyPath(view, op.request_txn(), path.nested[nested++], nested_resp));
        nested_resp->mutable_header()->set_revision(view.Rev());
        break;
      }
      default:
        return Status(Code::kInvalidArgument, "write op in a read-only txn");
    }
  }
  return Status::OK();
}

Status KvApplier::TxnReadOnly(const mvcc::ReadView& view, const etcdserverpb::TxnRequest& req,
                              etcdserverpb::TxnResponse* resp) {
  auto path = BuildPath(view, req);
  if (!path.ok()) return path.status();
  ETCDPP_RETURN_IF_ERROR(KvApplier(nullptr).CheckPath(view, req, *path));
  ETCDPP_RETURN_IF_ERROR(ExecuteReadOnlyPath(view, req, *path, resp));
  resp->mutable_header()->set_revision(view.Rev());
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Compact

Status KvApplier::Compact(mvcc::WriteTxn& txn, const etcdserverpb::CompactionRequest& req,
                          etcdserverpb::CompactionResponse* resp) {
  ETCDPP_RETURN_IF_ERROR(txn.Compact(req.revision()));
  resp->mutable_header()->set_revision(txn.Rev());
  return Status::OK();
}

}  // namespace etcdpp::server

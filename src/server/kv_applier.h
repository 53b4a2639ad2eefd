// KvApplier: etcd's KV request semantics (Range, Put, DeleteRange, Txn,
// Compact) on top of mvcc::KvStore, with etcd's protobuf types in and out.
//
// Requests must have passed request_validation.h first. Responses get their
// header revision; cluster_id, member_id and raft_term are the server's job.
//
// Threads: the write methods run on the apply thread with the store's single
// WriteTxn; the static read methods run on any thread with any ReadView.
//
// Errors: request errors (kLeaseNotFound, kKeyNotFound, kCompacted,
// kFutureRev) are detected before anything is written, so on such an error
// the WriteTxn is unchanged and the batch may go on. Any other error (LMDB
// failure, kNoSpace) leaves the WriteTxn unusable: the caller must abort it.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"
#include "lease/interfaces.h"
#include "mvcc/kv_store.h"

namespace etcdpp::server {

using lease::LeaseIndex;

class KvApplier {
 public:
  // `leases` may be null: then any request naming a lease fails with
  // kLeaseNotFound. Not owned.
  explicit KvApplier(LeaseIndex* leases = nullptr) : leases_(leases) {}

  // Range, following etcd: sort (NONE with a non-KEY target means ASCEND;
  // KEY/ASCEND is the natural order), limit with `more`, count = all keys in
  // the range at the revision (before filters and limit), mod/create revision
  // filters, keys_only, count_only. Header revision = the view's revision.
  static Status Range(const mvcc::ReadView& view, const etcdserverpb::RangeRequest& req,
                      etcdserverpb::RangeResponse* resp);

  // Each write below is one revision scope of `txn` (a Txn's ops share one
  // revision; nothing written consumes no revision).
  Status Put(mvcc::WriteTxn& txn, const etcdserverpb::PutRequest& req,
             etcdserverpb::PutResponse* resp);
  Status DeleteRange(mvcc::WriteTxn& txn, const etcdserverpb::DeleteRangeRequest& req,
                     etcdserverpb::DeleteRangeResponse* resp);
  // The same, but a delete of many keys may commit in parts
  // (mvcc::DeleteParts); the leases of the keys each part deleted are
  // detached before it commits.
  Status DeleteRangeInParts(mvcc::WriteTxn& txn, const etcdserverpb::DeleteRangeRequest& req,
                            etcdserverpb::DeleteRangeResponse* resp,
                            const mvcc::DeleteParts& parts);
  // Compares are evaluated (nested ones too) on the state before the txn,
  // then the chosen branch is checked and executed. Header revision = the
  // revision after the txn.
  Status Txn(mvcc::WriteTxn& txn, const etcdserverpb::TxnRequest& req,
             etcdserverpb::TxnResponse* resp);
  // kCompacted if revision <= compacted, kFutureRev if > current. Reads
  // below the revision fail from now on; the physical removal continues in
  // later commits (mvcc::WriteTxn::Compact), so `physical` is not waited for.
  Status Compact(mvcc::WriteTxn& txn, const etcdserverpb::CompactionRequest& req,
                 etcdserverpb::CompactionResponse* resp);

  // A Txn for which IsReadOnlyTxn() holds, served from a snapshot.
  static Status TxnReadOnly(const mvcc::ReadView& view, const etcdserverpb::TxnRequest& req,
                            etcdserverpb::TxnResponse* resp);

  // etcd's applyCompare: every key of the compare's range must satisfy it;
  // an empty range compares as one missing key (version/create/mod/lease 0),
  // except that a VALUE compare on no key is false.
  static Result<bool> EvaluateCompare(const mvcc::ReadView& view,
                                      const etcdserverpb::Compare& compare);

 private:
  struct TxnPath;
  static Result<TxnPath> BuildPath(const mvcc::ReadView& view, const etcdserverpb::TxnRequest& req);
  Status CheckPut(const mvcc::ReadView& view, const etcdserverpb::PutRequest& req) const;
  Status CheckPath(const mvcc::ReadView& view, const etcdserverpb::TxnRequest& req,
                   const TxnPath& path) const;
  Status ExecutePath(mvcc::WriteTxn& txn, const etcdserverpb::TxnRequest& req, const TxnPath& path,
                     etcdserverpb::TxnResponse* resp);
  static Status ExecuteReadOnlyPath(const mvcc::ReadView& view, const etcdserverpb::TxnRequest& req,
                                    const TxnPath& path, etcdserverpb::TxnResponse* resp);
  // Put and DeleteRange inside an open revision scope.
  Status DoPut(mvcc::WriteTxn& txn, const etcdserverpb::PutRequest& req,
               etcdserverpb::PutResponse* resp);
  Status DoDeleteRange(mvcc::WriteTxn& txn, const etcdserverpb::DeleteRangeRequest& req,
                       etcdserverpb::DeleteRangeResponse* resp,
                       const mvcc::DeleteParts* parts = nullptr);

  LeaseIndex* leases_;
};

}  // namespace etcdpp::server

// Pure checks of client KV requests, run before a request is proposed to
// Raft (as etcd's v3rpc does), so the applier only ever sees requests that
// are well formed. None of these read the store.
#pragma once

#include <cstdint>

#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"

namespace etcdpp::server {

// etcd's default --max-txn-ops.
inline constexpr int kDefaultMaxTxnOps = 128;

// kEmptyKey for an empty key; kInvalidArgument ("etcdserver: invalid sort
// option") for an unknown sort order or target.
Status ValidateRange(const etcdserverpb::RangeRequest& r);
// kEmptyKey; kValueProvided if ignore_value with a value; kLeaseProvided if
// ignore_lease with a lease. Keys of any length are valid (the request size
// limit bounds them, as in etcd).
Status ValidatePut(const etcdserverpb::PutRequest& r);
// kEmptyKey.
Status ValidateDeleteRange(const etcdserverpb::DeleteRangeRequest& r);

// etcd's checkTxnRequest + checkIntervals:
//  * kTooManyOps if the compares or either branch hold more than max_txn_ops
//    entries (nested txns are checked with the same limit);
//  * kEmptyKey for a compare or op with an empty key; kKeyNotFound for an
//    empty RequestOp;
//  * kDuplicateKey if, within one branch (including nested txns), a key is
//    put twice or put and covered by a delete. Puts in the success and
//    failure branches of one nested txn may repeat a key (only one runs).
//    Deletes may overlap each other. Like etcd, a delete range_end is
//    compared literally, so a "\0" (from-key) delete covers no put.
Status ValidateTxn(const etcdserverpb::TxnRequest& r, int max_txn_ops = kDefaultMaxTxnOps);

// True iff every op of both branches (recursively) is a Range: such a txn
// changes nothing and the server may serve it from a ReadTxn without Raft.
bool IsReadOnlyTxn(const etcdserverpb::TxnRequest& r);

}  // namespace etcdpp::server

// Server-side fencing of plain writes (an etcdpp extension; etcd 3.4 has none).
//
// A client that holds a lock or leads an election may attach its token to
// any Put, DeleteRange or Txn as gRPC metadata:
//
//   etcdpp-fence-key-bin: <the lock or election key, raw bytes>
//   etcdpp-fence-revision: <that key's create revision, decimal>
//
// The member then proposes the write as a Txn whose one compare is
// "create_revision(key) == revision" and whose success branch is the write,
// so the check and the write are one Raft entry, applied at one revision:
// nothing can come between them, and a holder whose key is gone (unlocked,
// resigned, lease expired while it was paused) cannot write, whatever its
// clock or its pauses. The call then fails with FAILED_PRECONDITION
// "etcdpp: fencing token is stale" and changes nothing. A key that is gone
// has create revision 0, which no token equals. Without the metadata a
// request is exactly etcd's. Clients that cannot set metadata use the same
// compare in their own Txn (docs/recipes.md, "Fencing").
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <optional>
#include <string>

#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"

namespace etcdpp::api {

inline constexpr char kFenceKeyMetadata[] = "etcdpp-fence-key-bin";
inline constexpr char kFenceRevisionMetadata[] = "etcdpp-fence-revision";
inline constexpr char kErrStaleFence[] = "etcdpp: fencing token is stale";

struct WriteFence {
  std::string key;
  int64_t create_revision = 0;
};

// The fence a call carries; nullopt without one; InvalidArgument if only one
// of the two entries is there, the revision is not a positive number, or
// the key is empty.
Result<std::optional<WriteFence>> FenceOf(const grpc::ServerContextBase& context);
// The same from the two metadata values, however the transport read them.
Result<std::optional<WriteFence>> FenceFrom(std::optional<std::string> key,
                                            std::optional<std::string> revision);

// The Txn that applies `op` only while `fence` holds.
etcdserverpb::TxnRequest FencedTxn(const WriteFence& fence, etcdserverpb::RequestOp op);

// The refusal of a write whose fence no longer held.
grpc::Status StaleFenceStatus();

}  // namespace etcdpp::api

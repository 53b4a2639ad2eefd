#include "api/grpc_status.h"

#include <array>

namespace etcdpp::api {
namespace {

// Indexed by Code, in enum order: what a client sees for each code. The
// messages of the etcd codes are etcd's, byte for byte, since clients match
// on them (clientv3's rpctypes); generic codes carry the caller's message.
constexpr std::array<EtcdError, static_cast<size_t>(Code::kCodeCount)> kErrors = {{
    {grpc::StatusCode::OK, ""},                                               // kOk
    {grpc::StatusCode::INVALID_ARGUMENT, ""},                                 // kInvalidArgument
    {grpc::StatusCode::NOT_FOUND, ""},                                        // kNotFound
    {grpc::StatusCode::DATA_LOSS, ""},                                        // kCorruption
    {grpc::StatusCode::INTERNAL, ""},                                         // kIOError
    {grpc::StatusCode::INTERNAL, ""},                                         // kInternal
    {grpc::StatusCode::UNAVAILABLE, ""},                                      // kUnavailable
    {grpc::StatusCode::CANCELLED, ""},                                        // kCancelled
    {grpc::StatusCode::UNIMPLEMENTED, ""},                                    // kUnimplemented
    {grpc::StatusCode::FAILED_PRECONDITION, ""},                              // kFailedPrecondition
    {grpc::StatusCode::DEADLINE_EXCEEDED, ""},                                // kDeadlineExceeded
    {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: key is not provided"},  // kEmptyKey
    {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: key not found"},        // kKeyNotFound
    {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: value is provided"},    // kValueProvided
    {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: lease is provided"},    // kLeaseProvided
    {grpc::StatusCode::INVALID_ARGUMENT,
     "etcdserver: too many operations in txn request"},  // kTooManyOps
    {grpc::StatusCode::INVALID_ARGUMENT,
     "etcdserver: duplicate key given in txn request"},  // kDuplicateKey
    {grpc::StatusCode::OUT_OF_RANGE,
     "etcdserver: mvcc: required revision has been compacted"},  // kCompacted
    {grpc::StatusCode::OUT_OF_RANGE,
     "etcdserver: mvcc: required revision is a future revision"},  // kFutureRev
    {grpc::StatusCode::RESOURCE_EXHAUSTED,
     "etcdserver: mvcc: database space exceeded"},                                // kNoSpace
    {grpc::StatusCode::NOT_FOUND, "etcdserver: requested lease not found"},       // kLeaseNotFound
    {grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: lease already exists"},  // kLeaseExist
    {grpc::StatusCode::OUT_OF_RANGE, "etcdserver: too large lease TTL"},  // kLeaseTTLTooLarge
    {grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: member ID already exist"},  // kMemberExist
    {grpc::StatusCode::FAILED_PRECONDITION,
     "etcdserver: Peer URLs already exists"},  // kPeerURLExist
    {grpc::StatusCode::FAILED_PRECONDITION,
     "etcdserver: re-configuration failed due to not enough started members"},  // kMemberNotEnoughStarted
    {grpc::StatusCode::INVALID_ARGUMENT,
     "etcdserver: given member URLs are invalid"},                  // kMemberBadURLs
    {grpc::StatusCode::NOT_FOUND, "etcdserver: member not found"},  // kMemberNotFound
    {grpc::StatusCode::FAILED_PRECONDITION,
     "etcdserver: can only promote a learner member"},  // kMemberNotLearner
    {grpc::StatusCode::FAILED_PRECONDITION,
     "etcdserver: can only promote a learner member which is in sync with leader"},  // kLearnerNotReady
    {grpc::StatusCode::FAILED_PRECONDITION,
     "etcdserver: too many learner members in cluster"},                       // kTooManyLearners
    {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: request is too large"},  // kRequestTooLarge
    {grpc::StatusCode::RESOURCE_EXHAUSTED, "etcdserver: too many requests"},   // kTooManyRequests
    {grpc::StatusCode::FAILED_PRECONDITION,
     "etcdserver: root user does not exist"},  // kRootUserNotExist
    {grpc::StatusCode::FAILED_PRECONDITION,
     "etcdserver: root user does not have root role"},  // kRootRoleNotExist
    {grpc::StatusCode::FAILED_PRECONDITION,
     "etcdserver: user name already exists"},                                // kUserAlreadyExist
    {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: user name is empty"},  // kUserEmpty
    {grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: user name not found"},  // kUserNotFound
    {grpc::StatusCode::FAILED_PRECONDITION,
     "etcdserver: role name already exists"},  // kRoleAlreadyExist
    {grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: role name not found"},  // kRoleNotFound
    {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: role name is empty"},      // kRoleEmpty
    {grpc::StatusCode::INVALID_ARGUMENT,
     "etcdserver: authentication failed, invalid user ID or password"},      // kAuthFailed
    {grpc::StatusCode::PERMISSION_DENIED, "etcdserver: permission denied"},  // kPermissionDenied
    {grpc::StatusCode::FAILED_PRECONDITION,
     "etcdserver: role is not granted to the user"},  // kRoleNotGranted
    {grpc::StatusCode::FAILED_PRECONDITION,
     "etcdserver: permission is not granted to the role"},  // kPermissionNotGranted
    {grpc::StatusCode::FAILED_PRECONDITION,
     "etcdserver: authentication is not enabled"},                          // kAuthNotEnabled
    {grpc::StatusCode::UNAUTHENTICATED, "etcdserver: invalid auth token"},  // kInvalidAuthToken
    {grpc::StatusCode::INVALID_ARGUMENT,
     "etcdserver: invalid auth management"},  // kInvalidAuthMgmt
    {grpc::StatusCode::INVALID_ARGUMENT,
     "etcdserver: revision of auth store is old"},                      // kAuthOldRevision
    {grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader"},           // kNoLeader
    {grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: not leader"},  // kNotLeader
    {grpc::StatusCode::UNAVAILABLE, "etcdserver: leader changed"},      // kLeaderChanged
    {grpc::StatusCode::UNAVAILABLE, "etcdserver: not capable"},         // kNotCapable
    {grpc::StatusCode::UNAVAILABLE, "etcdserver: server stopped"},      // kStopped
    {grpc::StatusCode::UNAVAILABLE, "etcdserver: request timed out"},   // kTimeout
    {grpc::StatusCode::UNAVAILABLE,
     "etcdserver: request timed out, possibly due to previous leader failure"},  // kTimeoutDueToLeaderFail
    {grpc::StatusCode::UNAVAILABLE,
     "etcdserver: request timed out, possibly due to connection lost"},  // kTimeoutDueToConnectionLost
    {grpc::StatusCode::UNAVAILABLE, "etcdserver: unhealthy cluster"},  // kUnhealthy
    {grpc::StatusCode::DATA_LOSS, "etcdserver: corrupt cluster"},      // kCorrupt
    {grpc::StatusCode::UNAVAILABLE,
     "etcdserver: rpc not supported for learner"},  // kNotSupportedForLearner
    {grpc::StatusCode::FAILED_PRECONDITION,
     "etcdserver: bad leader transferee"},  // kBadLeaderTransferee
    {grpc::StatusCode::UNAVAILABLE,
     "etcdserver: request timed out, leader transfer took too long"},  // kTimeoutLeaderTransfer
}};
static_assert(62 == static_cast<size_t>(Code::kCodeCount), "kErrors needs one row per Code");

}  // namespace

EtcdError EtcdErrorFor(Code code) { return kErrors[static_cast<size_t>(code)]; }

std::string ClientMessage(const Status& status) {
  if (!status.message().empty()) return status.message();
  return std::string(EtcdErrorFor(status.code()).message);
}

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(EtcdErrorFor(status.code()).grpc_code, ClientMessage(status));
}

}  // namespace etcdpp::api

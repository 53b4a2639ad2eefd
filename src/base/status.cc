#include "base/status.h"

#include <array>

namespace etcdpp {
namespace {

struct CodeInfo {
  Code code;
  std::string_view name;
  GrpcCode grpc;
  // etcd's message; empty for generic codes.
  std::string_view etcd_message;
};

// One row per Code, in enum order (checked by a static_assert below).
constexpr std::array<CodeInfo, static_cast<size_t>(Code::kCodeCount)> kCodes = {{
    {Code::kOk, "OK", GrpcCode::kOk, ""},
    {Code::kInvalidArgument, "InvalidArgument", GrpcCode::kInvalidArgument, ""},
    {Code::kNotFound, "NotFound", GrpcCode::kNotFound, ""},
    {Code::kCorruption, "Corruption", GrpcCode::kDataLoss, ""},
    {Code::kIOError, "IOError", GrpcCode::kInternal, ""},
    {Code::kInternal, "Internal", GrpcCode::kInternal, ""},
    {Code::kUnavailable, "Unavailable", GrpcCode::kUnavailable, ""},
    {Code::kCancelled, "Cancelled", GrpcCode::kCancelled, ""},
    {Code::kUnimplemented, "Unimplemented", GrpcCode::kUnimplemented, ""},
    {Code::kFailedPrecondition, "FailedPrecondition", GrpcCode::kFailedPrecondition, ""},
    {Code::kDeadlineExceeded, "DeadlineExceeded", GrpcCode::kDeadlineExceeded, ""},
    {Code::kEmptyKey, "EmptyKey", GrpcCode::kInvalidArgument, "etcdserver: key is not provided"},
    {Code::kKeyNotFound, "KeyNotFound", GrpcCode::kInvalidArgument, "etcdserver: key not found"},
    {Code::kValueProvided, "ValueProvided", GrpcCode::kInvalidArgument,
     "etcdserver: value is provided"},
    {Code::kLeaseProvided, "LeaseProvided", GrpcCode::kInvalidArgument,
     "etcdserver: lease is provided"},
    {Code::kTooManyOps, "TooManyOps", GrpcCode::kInvalidArgument,
     "etcdserver: too many operations in txn request"},
    {Code::kDuplicateKey, "DuplicateKey", GrpcCode::kInvalidArgument,
     "etcdserver: duplicate key given in txn request"},
    {Code::kCompacted, "Compacted", GrpcCode::kOutOfRange,
     "etcdserver: mvcc: required revision has been compacted"},
    {Code::kFutureRev, "FutureRev", GrpcCode::kOutOfRange,
     "etcdserver: mvcc: required revision is a future revision"},
    {Code::kNoSpace, "NoSpace", GrpcCode::kResourceExhausted,
     "etcdserver: mvcc: database space exceeded"},
    {Code::kLeaseNotFound, "LeaseNotFound", GrpcCode::kNotFound,
     "etcdserver: requested lease not found"},
    {Code::kLeaseExist, "LeaseExist", GrpcCode::kFailedPrecondition,
     "etcdserver: lease already exists"},
    {Code::kLeaseTTLTooLarge, "LeaseTTLTooLarge", GrpcCode::kOutOfRange,
     "etcdserver: too large lease TTL"},
    {Code::kMemberExist, "MemberExist", GrpcCode::kFailedPrecondition,
     "etcdserver: member ID already exist"},
    {Code::kPeerURLExist, "PeerURLExist", GrpcCode::kFailedPrecondition,
     "etcdserver: Peer URLs already exists"},
    {Code::kMemberNotEnoughStarted, "MemberNotEnoughStarted", GrpcCode::kFailedPrecondition,
     "etcdserver: re-configuration failed due to not enough started members"},
    {Code::kMemberBadURLs, "MemberBadURLs", GrpcCode::kInvalidArgument,
     "etcdserver: given member URLs are invalid"},
    {Code::kMemberNotFound, "MemberNotFound", GrpcCode::kNotFound, "etcdserver: member not found"},
    {Code::kMemberNotLearner, "MemberNotLearner", GrpcCode::kFailedPrecondition,
     "etcdserver: can only promote a learner member"},
    {Code::kLearnerNotReady, "LearnerNotReady", GrpcCode::kFailedPrecondition,
     "etcdserver: can only promote a learner member which is in sync with leader"},
    {Code::kTooManyLearners, "TooManyLearners", GrpcCode::kFailedPrecondition,
     "etcdserver: too many learner members in cluster"},
    {Code::kRequestTooLarge, "RequestTooLarge", GrpcCode::kInvalidArgument,
     "etcdserver: request is too large"},
    {Code::kTooManyRequests, "TooManyRequests", GrpcCode::kResourceExhausted,
     "etcdserver: too many requests"},
    {Code::kRootUserNotExist, "RootUserNotExist", GrpcCode::kFailedPrecondition,
     "etcdserver: root user does not exist"},
    {Code::kRootRoleNotExist, "RootRoleNotExist", GrpcCode::kFailedPrecondition,
     "etcdserver: root user does not have root role"},
    {Code::kUserAlreadyExist, "UserAlreadyExist", GrpcCode::kFailedPrecondition,
     "etcdserver: user name already exists"},
    {Code::kUserEmpty, "UserEmpty", GrpcCode::kInvalidArgument, "etcdserver: user name is empty"},
    {Code::kUserNotFound, "UserNotFound", GrpcCode::kFailedPrecondition,
     "etcdserver: user name not found"},
    {Code::kRoleAlreadyExist, "RoleAlreadyExist", GrpcCode::kFailedPrecondition,
     "etcdserver: role name already exists"},
    {Code::kRoleNotFound, "RoleNotFound", GrpcCode::kFailedPrecondition,
     "etcdserver: role name not found"},
    {Code::kRoleEmpty, "RoleEmpty", GrpcCode::kInvalidArgument, "etcdserver: role name is empty"},
    {Code::kAuthFailed, "AuthFailed", GrpcCode::kInvalidArgument,
     "etcdserver: authentication failed, invalid user ID or password"},
    {Code::kPermissionDenied, "PermissionDenied", GrpcCode::kPermissionDenied,
     "etcdserver: permission denied"},
    {Code::kRoleNotGranted, "RoleNotGranted", GrpcCode::kFailedPrecondition,
     "etcdserver: role is not granted to the user"},
    {Code::kPermissionNotGranted, "PermissionNotGranted", GrpcCode::kFailedPrecondition,
     "etcdserver: permission is not granted to the role"},
    {Code::kAuthNotEnabled, "AuthNotEnabled", GrpcCode::kFailedPrecondition,
     "etcdserver: authentication is not enabled"},
    {Code::kInvalidAuthToken, "InvalidAuthToken", GrpcCode::kUnauthenticated,
     "etcdserver: invalid auth token"},
    {Code::kInvalidAuthMgmt, "InvalidAuthMgmt", GrpcCode::kInvalidArgument,
     "etcdserver: invalid auth management"},
    {Code::kNoLeader, "NoLeader", GrpcCode::kUnavailable, "etcdserver: no leader"},
    {Code::kNotLeader, "NotLeader", GrpcCode::kFailedPrecondition, "etcdserver: not leader"},
    {Code::kLeaderChanged, "LeaderChanged", GrpcCode::kUnavailable, "etcdserver: leader changed"},
    {Code::kNotCapable, "NotCapable", GrpcCode::kUnavailable, "etcdserver: not capable"},
    {Code::kStopped, "Stopped", GrpcCode::kUnavailable, "etcdserver: server stopped"},
    {Code::kTimeout, "Timeout", GrpcCode::kUnavailable, "etcdserver: request timed out"},
    {Code::kTimeoutDueToLeaderFail, "TimeoutDueToLeaderFail", GrpcCode::kUnavailable,
     "etcdserver: request timed out, possibly due to previous leader failure"},
    {Code::kTimeoutDueToConnectionLost, "TimeoutDueToConnectionLost", GrpcCode::kUnavailable,
     "etcdserver: request timed out, possibly due to connection lost"},
    {Code::kUnhealthy, "Unhealthy", GrpcCode::kUnavailable, "etcdserver: unhealthy cluster"},
    {Code::kCorrupt, "Corrupt", GrpcCode::kDataLoss, "etcdserver: corrupt cluster"},
    {Code::kNotSupportedForLearner, "NotSupportedForLearner", GrpcCode::kUnavailable,
     "etcdserver: rpc not supported for learner"},
    {Code::kBadLeaderTransferee, "BadLeaderTransferee", GrpcCode::kFailedPrecondition,
     "etcdserver: bad leader transferee"},
    {Code::kTimeoutLeaderTransfer, "TimeoutLeaderTransfer", GrpcCode::kUnavailable,
     "etcdserver: request timed out, leader transfer took too long"},
}};

constexpr bool RowsInEnumOrder() {
  for (size_t i = 0; i < kCodes.size(); ++i) {
    if (static_cast<size_t>(kCodes[i].code) != i) return false;
  }
  return true;
}
static_assert(RowsInEnumOrder(), "kCodes must list every Code in enum order");

const CodeInfo& Info(Code code) { return kCodes[static_cast<size_t>(code)]; }

}  // namespace

Status::Status(Code code, std::string message) : code_(code), message_(std::move(message)) {
  if (message_.empty()) message_ = std::string(Info(code).etcd_message);
}

GrpcCode Status::grpc_code() const { return Info(code_).grpc; }

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(Info(code_).name) + ": " + message_;
}

std::string_view EtcdMessage(Code code) { return Info(code).etcd_message; }
GrpcCode ToGrpcCode(Code code) { return Info(code).grpc; }
std::string_view CodeName(Code code) { return Info(code).name; }

}  // namespace etcdpp

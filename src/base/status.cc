#include "base/status.h"

#include <array>

namespace etcdpp {
namespace {

struct CodeInfo {
  Code code;
  std::string_view name;
};

// One row per Code, in enum order (checked below). The client-visible side
// of the etcd codes (gRPC code and message) lives in the API layer
// (api/grpc_status.h); here a code is only a name.
constexpr std::array<CodeInfo, static_cast<size_t>(Code::kCodeCount)> kCodes = {{
    {Code::kOk, "OK"},
    {Code::kInvalidArgument, "InvalidArgument"},
    {Code::kNotFound, "NotFound"},
    {Code::kCorruption, "Corruption"},
    {Code::kIOError, "IOError"},
    {Code::kInternal, "Internal"},
    {Code::kUnavailable, "Unavailable"},
    {Code::kCancelled, "Cancelled"},
    {Code::kUnimplemented, "Unimplemented"},
    {Code::kFailedPrecondition, "FailedPrecondition"},
    {Code::kDeadlineExceeded, "DeadlineExceeded"},
    {Code::kEmptyKey, "EmptyKey"},
    {Code::kKeyNotFound, "KeyNotFound"},
    {Code::kValueProvided, "ValueProvided"},
    {Code::kLeaseProvided, "LeaseProvided"},
    {Code::kTooManyOps, "TooManyOps"},
    {Code::kDuplicateKey, "DuplicateKey"},
    {Code::kCompacted, "Compacted"},
    {Code::kFutureRev, "FutureRev"},
    {Code::kNoSpace, "NoSpace"},
    {Code::kLeaseNotFound, "LeaseNotFound"},
    {Code::kLeaseExist, "LeaseExist"},
    {Code::kLeaseTTLTooLarge, "LeaseTTLTooLarge"},
    {Code::kMemberExist, "MemberExist"},
    {Code::kPeerURLExist, "PeerURLExist"},
    {Code::kMemberNotEnoughStarted, "MemberNotEnoughStarted"},
    {Code::kMemberBadURLs, "MemberBadURLs"},
    {Code::kMemberNotFound, "MemberNotFound"},
    {Code::kMemberNotLearner, "MemberNotLearner"},
    {Code::kLearnerNotReady, "LearnerNotReady"},
    {Code::kTooManyLearners, "TooManyLearners"},
    {Code::kRequestTooLarge, "RequestTooLarge"},
    {Code::kTooManyRequests, "TooManyRequests"},
    {Code::kRootUserNotExist, "RootUserNotExist"},
    {Code::kRootRoleNotExist, "RootRoleNotExist"},
    {Code::kUserAlreadyExist, "UserAlreadyExist"},
    {Code::kUserEmpty, "UserEmpty"},
    {Code::kUserNotFound, "UserNotFound"},
    {Code::kRoleAlreadyExist, "RoleAlreadyExist"},
    {Code::kRoleNotFound, "RoleNotFound"},
    {Code::kRoleEmpty, "RoleEmpty"},
    {Code::kAuthFailed, "AuthFailed"},
    {Code::kPermissionDenied, "PermissionDenied"},
    {Code::kRoleNotGranted, "RoleNotGranted"},
    {Code::kPermissionNotGranted, "PermissionNotGranted"},
    {Code::kAuthNotEnabled, "AuthNotEnabled"},
    {Code::kInvalidAuthToken, "InvalidAuthToken"},
    {Code::kInvalidAuthMgmt, "InvalidAuthMgmt"},
    {Code::kAuthOldRevision, "AuthOldRevision"},
    {Code::kNoLeader, "NoLeader"},
    {Code::kNotLeader, "NotLeader"},
    {Code::kLeaderChanged, "LeaderChanged"},
    {Code::kNotCapable, "NotCapable"},
    {Code::kStopped, "Stopped"},
    {Code::kTimeout, "Timeout"},
    {Code::kTimeoutDueToLeaderFail, "TimeoutDueToLeaderFail"},
    {Code::kTimeoutDueToConnectionLost, "TimeoutDueToConnectionLost"},
    {Code::kUnhealthy, "Unhealthy"},
    {Code::kCorrupt, "Corrupt"},
    {Code::kNotSupportedForLearner, "NotSupportedForLearner"},
    {Code::kBadLeaderTransferee, "BadLeaderTransferee"},
    {Code::kTimeoutLeaderTransfer, "TimeoutLeaderTransfer"},
}};

constexpr bool RowsInEnumOrder() {
  for (size_t i = 0; i < kCodes.size(); ++i) {
    if (static_cast<size_t>(kCodes[i].code) != i) return false;
  }
  return true;
}
static_assert(RowsInEnumOrder(), "kCodes must list every Code in enum order");

}  // namespace

Status::Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

std::string Status::ToString() const {
  if (ok()) return "OK";
  if (message_.empty()) return std::string(CodeName(code_));
  return std::string(CodeName(code_)) + ": " + message_;
}

std::string_view CodeName(Code code) { return kCodes[static_cast<size_t>(code)].name; }

}  // namespace etcdpp

// Status and Result<T>: the only error channel across etcdpp's modules.
//
// Codes form a closed set: generic ones (kIOError, kCorruption, ...) with a
// message chosen where the error arises, and the etcd errors (kCompacted,
// kNoLeader, ...), which lower layers raise by code alone. What a client
// sees for a code, its gRPC code and etcd's exact message, is the API
// layer's business (api/grpc_status.h); base knows no gRPC.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace etcdpp {

enum class Code : unsigned char {
  kOk = 0,
  // Generic codes, message chosen by the caller.
  kInvalidArgument,
  kNotFound,
  kCorruption,
  kIOError,
  kInternal,
  kUnavailable,
  kCancelled,
  kUnimplemented,
  kFailedPrecondition,
  kDeadlineExceeded,
  // etcd errors with fixed gRPC code and message.
  kEmptyKey,
  kKeyNotFound,
  kValueProvided,
  kLeaseProvided,
  kTooManyOps,
  kDuplicateKey,
  kCompacted,
  kFutureRev,
  kNoSpace,
  kLeaseNotFound,
  kLeaseExist,
  kLeaseTTLTooLarge,
  kMemberExist,
  kPeerURLExist,
  kMemberNotEnoughStarted,
  kMemberBadURLs,
  kMemberNotFound,
  kMemberNotLearner,
  kLearnerNotReady,
  kTooManyLearners,
  kRequestTooLarge,
  kTooManyRequests,
  kRootUserNotExist,
  kRootRoleNotExist,
  kUserAlreadyExist,
  kUserEmpty,
  kUserNotFound,
  kRoleAlreadyExist,
  kRoleNotFound,
  kRoleEmpty,
  kAuthFailed,
  kPermissionDenied,
  kRoleNotGranted,
  kPermissionNotGranted,
  kAuthNotEnabled,
  kInvalidAuthToken,
  kInvalidAuthMgmt,
  kAuthOldRevision,
  kNoLeader,
  kNotLeader,
  kLeaderChanged,
  kNotCapable,
  kStopped,
  kTimeout,
  kTimeoutDueToLeaderFail,
  kTimeoutDueToConnectionLost,
  kUnhealthy,
  kCorrupt,
  kNotSupportedForLearner,
  kBadLeaderTransferee,
  kTimeoutLeaderTransfer,
  kCodeCount,  // Not a code: the number of codes.
};

class [[nodiscard]] Status {
 public:
  // OK. Cheap: no allocation.
  Status() = default;
  // `message` may be empty for the etcd codes: the API layer supplies
  // etcd's text for them.
  explicit Status(Code code, std::string message = {});

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, msg); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status Unimplemented(std::string msg) { return Status(Code::kUnimplemented, msg); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // The caller's message; empty for an etcd code raised without one.
  const std::string& message() const { return message_; }
  // "CodeName: message" (or just the name), for logs.
  std::string ToString() const;

  bool operator==(const Status& other) const {
    return code_ == other.code_ && message_ == other.message_;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// "NoLeader", "IOError", ...: stable, used in logs and on the peer wire.
std::string_view CodeName(Code code);

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design.
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "Result needs a value or an error");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace etcdpp

// Returns early with the error of an expression yielding a Status.
#define ETCDPP_RETURN_IF_ERROR(expr) \
  do {                               \
    ::etcdpp::Status _st = (expr);   \
    if (!_st.ok()) return _st;       \
  } while (0)

// Status and Result<T>: the only error channel across etcdpp's modules.
//
// Codes form a closed set. Each etcd-specific code has exactly one gRPC code
// and one message, the ones etcd's clients match on (clientv3's rpctypes), so
// the API layer converts a Status to a grpc::Status without a table of its
// own. Generic codes (kIOError, kCorruption, ...) carry a free-form message.
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

// Numeric gRPC status codes (grpc::StatusCode), kept here so modules below
// the API layer need no gRPC headers.
enum class GrpcCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

class [[nodiscard]] Status {
 public:
  // OK. Cheap: no allocation.
  Status() = default;
  // An etcd error with its fixed message, or a generic code with `message`.
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
  // The message clients see: etcd's text for etcd codes.
  const std::string& message() const { return message_; }
  GrpcCode grpc_code() const;
  // "CodeName: message", for logs.
  std::string ToString() const;

  bool operator==(const Status& other) const {
    return code_ == other.code_ && message_ == other.message_;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// etcd's client-visible message for an etcd code ("etcdserver: ..."), empty
// for generic codes.
std::string_view EtcdMessage(Code code);
GrpcCode ToGrpcCode(Code code);
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

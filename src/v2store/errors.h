// The v2 API's errors: etcd's numeric codes, their fixed messages and the
// HTTP status each maps to. Clients parse `errorCode`, so the numbers and
// messages are facts carried over from etcd v2, not wording of our own.
#pragma once

#include <cstdint>
#include <string>

namespace etcdpp::v2store {

enum class ErrorCode : int {
  kKeyNotFound = 100,
  kTestFailed = 101,
  kNotFile = 102,
  kNotDir = 104,
  kNodeExist = 105,
  kRootReadOnly = 107,
  kDirNotEmpty = 108,
  kPrevValueRequired = 201,
  kTtlNaN = 202,
  kIndexNaN = 203,
  kInvalidField = 209,
  kInvalidForm = 210,
  kRefreshValue = 211,
  kRefreshTtlRequired = 212,
  kRaftInternal = 300,
  kLeaderElect = 301,
  kWatcherCleared = 400,
  kEventIndexCleared = 401,
};

// One failed v2 operation. `index` is the store's index when it failed (0
// for a request rejected before reaching the store).
struct Error {
  ErrorCode code = ErrorCode::kRaftInternal;
  std::string cause;
  uint64_t index = 0;
};

// etcd's message for the code ("Key not found", ...).
const char* ErrorMessage(ErrorCode code);
// 404, 403, 412, 500 ... (400 for codes without their own status).
int ErrorHttpStatus(ErrorCode code);

}  // namespace etcdpp::v2store

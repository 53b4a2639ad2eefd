#include "v2store/errors.h"

namespace etcdpp::v2store {

const char* ErrorMessage(ErrorCode code) {
  switch (code) {
    case ErrorCode::kKeyNotFound:
      return "Key not found";
    case ErrorCode::kTestFailed:
      return "Compare failed";
    case ErrorCode::kNotFile:
      return "Not a file";
    case ErrorCode::kNotDir:
      return "Not a directory";
    case ErrorCode::kNodeExist:
      return "Key already exists";
    case ErrorCode::kRootReadOnly:
      return "Root is read only";
    case ErrorCode::kDirNotEmpty:
      return "Directory not empty";
    case ErrorCode::kPrevValueRequired:
      return "PrevValue is Required in POST form";
    case ErrorCode::kTtlNaN:
      return "The given TTL in POST form is not a number";
    case ErrorCode::kIndexNaN:
      return "The given index in POST form is not a number";
    case ErrorCode::kInvalidField:
      return "Invalid field";
    case ErrorCode::kInvalidForm:
      return "Invalid POST form";
    case ErrorCode::kRefreshValue:
      return "Value provided on refresh";
    case ErrorCode::kRefreshTtlRequired:
      return "A TTL must be provided on refresh";
    case ErrorCode::kRaftInternal:
      return "Raft Internal Error";
    case ErrorCode::kLeaderElect:
      return "During Leader Election";
    case ErrorCode::kWatcherCleared:
      return "watcher is cleared due to etcd recovery";
    case ErrorCode::kEventIndexCleared:
      return "The event in requested index is outdated and cleared";
  }
  return "Raft Internal Error";
}

int ErrorHttpStatus(ErrorCode code) {
  switch (code) {
    case ErrorCode::kKeyNotFound:
      return 404;
    case ErrorCode::kNotFile:
    case ErrorCode::kDirNotEmpty:
      return 403;
    case ErrorCode::kTestFailed:
    case ErrorCode::kNodeExist:
      return 412;
    case ErrorCode::kRaftInternal:
    case ErrorCode::kLeaderElect:
      return 500;
    default:
      return 400;
  }
}

}  // namespace etcdpp::v2store

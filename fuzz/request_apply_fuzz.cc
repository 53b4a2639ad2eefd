// libFuzzer target for request handling: arbitrary bytes are decoded as an
// InternalRaftRequest (what a Raft entry carries), validated as the gRPC layer
// validates before proposing, and the valid ones applied by KvApplier to one
// store in a temporary directory that lives for the whole run (so requests
// meet the state earlier ones left). Must never crash, hang or touch memory
// out of bounds; a refused request must carry an etcd error (a code with
// etcd's message and gRPC code), never an internal, I/O or corruption status.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "base/status.h"
#include "etcdpppb/internal.pb.h"
#include "mvcc/kv_store.h"
#include "server/kv_applier.h"
#include "server/request_validation.h"

namespace {

using etcdpp::Code;
using etcdpp::Status;

etcdpp::mvcc::KvStore* Store() {
  static std::unique_ptr<etcdpp::mvcc::KvStore> store = [] {
    std::string dir =
        (std::filesystem::temp_directory_path() / "etcdpp-request-fuzz-XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) std::abort();
    static std::string to_remove = dir;
    std::atexit([] { std::filesystem::remove_all(to_remove); });
    etcdpp::mvcc::Options options;
    options.quota_bytes = uint64_t{64} << 20;  // A full store must refuse, not crash.
    options.apply_headroom_bytes = uint64_t{32} << 20;
    auto opened = etcdpp::mvcc::KvStore::Open(dir, options);
    if (!opened.ok()) std::abort();
    return std::move(opened.value());
  }();
  return store.get();
}

// A status a client may see for a bad request or a full store.
void RequireEtcdError(const Status& st) {
  if (st.ok()) return;
  switch (st.code()) {
    case Code::kInternal:
    case Code::kIOError:
    case Code::kCorruption:
    case Code::kUnimplemented:
      std::abort();
    default:
      // A generic code must say what went wrong; the etcd codes get etcd's
      // text from the API layer (api/grpc_status.h).
      if (st.code() < Code::kEmptyKey && st.message().empty()) std::abort();
  }
}

template <typename Apply>
void ApplyWrite(Apply apply) {
  auto txn = Store()->Write();
  if (!txn.ok()) std::abort();
  Status st = apply(**txn);
  RequireEtcdError(st);
  if (st.ok()) {
    Status committed = (*txn)->Commit();
    if (!committed.ok() && committed.code() != Code::kNoSpace) std::abort();
  }
  // Not committed: the WriteTxn aborts on destruction.
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace server = etcdpp::server;
  etcdpp::internalpb::InternalRaftRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return 0;
  server::KvApplier applier;  // No lease index: requests naming a lease are refused.
  using R = etcdpp::internalpb::InternalRaftRequest;
  switch (req.request_case()) {
    case R::kRange: {
      Status st = server::ValidateRange(req.range());
      RequireEtcdError(st);
      if (!st.ok()) break;
      auto view = Store()->Read();
      if (!view.ok()) std::abort();
      etcdserverpb::RangeResponse resp;
      RequireEtcdError(server::KvApplier::Range(**view, req.range(), &resp));
      break;
    }
    case R::kPut: {
      Status st = server::ValidatePut(req.put());
      RequireEtcdError(st);
      if (!st.ok()) break;
      etcdserverpb::PutResponse resp;
      ApplyWrite([&](auto& txn) { return applier.Put(txn, req.put(), &resp); });
      break;
    }
    case R::kDeleteRange: {
      Status st = server::ValidateDeleteRange(req.delete_range());
      RequireEtcdError(st);
      if (!st.ok()) break;
      etcdserverpb::DeleteRangeResponse resp;
      ApplyWrite([&](auto& txn) { return applier.DeleteRange(txn, req.delete_range(), &resp); });
      break;
    }
    case R::kTxn: {
      Status st = server::ValidateTxn(req.txn());
      RequireEtcdError(st);
      if (!st.ok()) break;
      etcdserverpb::TxnResponse resp;
      ApplyWrite([&](auto& txn) { return applier.Txn(txn, req.txn(), &resp); });
      break;
    }
    case R::kCompaction: {
      etcdserverpb::CompactionResponse resp;
      ApplyWrite([&](auto& txn) { return applier.Compact(txn, req.compaction(), &resp); });
      break;
    }
    default:
      break;  // Lease, alarm and membership requests have their own appliers.
  }
  return 0;
}

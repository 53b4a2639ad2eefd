#include "api/write_fence.h"

#include <charconv>

namespace etcdpp::api {
namespace {

std::optional<std::string> OneValue(const grpc::ServerContextBase& context, const char* name) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(name);
  if (it == metadata.end()) return std::nullopt;
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

Result<std::optional<WriteFence>> FenceOf(const grpc::ServerContextBase& context) {
  return FenceFrom(OneValue(context, kFenceKeyMetadata), OneValue(context, kFenceRevisionMetadata));
}

Result<std::optional<WriteFence>> FenceFrom(std::optional<std::string> key,
                                            std::optional<std::string> revision) {
  if (!key && !revision) return std::optional<WriteFence>();
  if (!key || !revision || key->empty()) {
    return Status::InvalidArgument(std::string("etcdpp: a fenced write needs both ") +
                                   kFenceKeyMetadata + " and " + kFenceRevisionMetadata);
  }
  WriteFence fence{*key, 0};
  const char* end = revision->data() + revision->size();
  auto [ptr, ec] = std::from_chars(revision->data(), end, fence.create_revision);
  if (ec != std::errc() || ptr != end || fence.create_revision <= 0) {
    return Status::InvalidArgument(std::string("etcdpp: ") + kFenceRevisionMetadata +
                                   " must be a positive revision");
  }
  return std::optional<WriteFence>(std::move(fence));
}

etcdserverpb::TxnRequest FencedTxn(const WriteFence& fence, etcdserverpb::RequestOp op) {
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* holds = txn.add_compare();
  holds->set_key(fence.key);
  holds->set_target(etcdserverpb::Compare::CREATE);
  holds->set_result(etcdserverpb::Compare::EQUAL);
  holds->set_create_revision(fence.create_revision);
  *txn.add_success() = std::move(op);
  return txn;
}

grpc::Status StaleFenceStatus() {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, kErrStaleFence);
}

}  // namespace etcdpp::api

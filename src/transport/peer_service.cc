#include "transport/peer_service.h"

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/crc32c.h"
#include "metrics/member_stats.h"
#include "transport/peer_call.h"
#include "transport/rtt_probe.h"
#include "transport/wire.h"

namespace etcdpp::transport {
namespace {

// Peer-facing errors only; clients never see these.
grpc::Status ToGrpc(const Status& s) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (s.code()) {
    case Code::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case Code::kNotFound:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case Code::kUnavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case Code::kCancelled:
      code = grpc::StatusCode::CANCELLED;
      break;
    case Code::kFailedPrecondition:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case Code::kCorruption:
      code = grpc::StatusCode::DATA_LOSS;
      break;
    default:
      break;
  }
  return grpc::Status(code, s.message());
}

}  // namespace

PeerService::PeerService(Transport* transport, Handler* handler, const TransportOptions& options)
    : transport_(transport), handler_(handler), options_(options) {}

grpc::Status PeerService::Admit(const grpc::ServerContext& ctx, uint64_t* from) const {
  if (!PeerCertificateAllowed(ctx, options_.tls)) {
    spdlog::warn("transport: refused a peer call: its certificate's common name is not {}",
                 options_.tls.allowed_common_name);
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "etcdpp transport: peer certificate common name not allowed");
  }
  std::optional<Handshake> hs = ReadHandshake(ctx);
  if (!hs) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "etcdpp transport: missing or malformed handshake metadata");
  }
  Status s = transport_->CheckInbound(hs->from, hs->cluster_id, hs->to);
  if (!s.ok()) {
    spdlog::warn("transport: refused call from peer {:x}: {}", hs->from, s.message());
    return ToGrpc(s);
  }
  *from = hs->from;
  return grpc::Status::OK;
}

grpc::Status PeerService::Stream(grpc::ServerContext* ctx,
                                 grpc::ServerReader<transportpb::MessageBatch>* reader,
                                 transportpb::StreamAck* /*ack*/) {
  uint64_t from = 0;
  grpc::Status admitted = Admit(*ctx, &from);
  if (!admitted.ok()) return admitted;
  ctx->AddInitialMetadata(kAcceptedKey, "1");
  reader->SendInitialMetadata();

  transportpb::MessageBatch batch;
  while (reader->Read(&batch)) {
    if (batch.from() != from || batch.cluster_id() != transport_->cluster_id()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "etcdpp transport: batch sender or cluster id differs from handshake");
    }
    // The peer may have been removed while its stream was open.
    if (transport_->IsRemoved(from)) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "etcdpp transport: " + RemovedMemberMessage(from));
    }
    transport_->DeliverInbound(batch);
  }
  return grpc::Status::OK;
}

grpc::Status PeerService::Members(grpc::ServerContext* ctx, const transportpb::MembersRequest*,
                                  transportpb::MembersResponse* response) {
  if (!PeerCertificateAllowed(*ctx, options_.tls)) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "etcdpp transport: peer certificate common name not allowed");
  }
  response->set_cluster_id(transport_->cluster_id());
  response->set_membership(handler_->MembershipForPeers());
  return grpc::Status::OK;
}

grpc::Status PeerService::Snapshot(grpc::ServerContext* ctx,
                                   grpc::ServerReader<transportpb::SnapshotChunk>* reader,
                                   transportpb::SnapshotAck* /*ack*/) {
  uint64_t from = 0;
  grpc::Status admitted = Admit(*ctx, &from);
  if (!admitted.ok()) return admitted;
  if (options_.snapshot_dir.empty()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "etcdpp transport: this member accepts no snapshots (no snapshot_dir)");
  }
  raftpb::Message msg;
  std::string path;
  grpc::Status received = ReceiveSnapshotFile(from, reader, &msg, &path);
  if (!received.ok()) {
    spdlog::warn("transport: snapshot from peer {:x} failed: {}", from, received.error_message());
    return received;
  }
  spdlog::info("transport: received snapshot [term {}, index {}] from peer {:x} into {}",
               msg.snapshot().metadata().term(), msg.snapshot().metadata().index(), from, path);
  handler_->OnSnapshot(std::move(msg), std::move(path));
  return grpc::Status::OK;
}

grpc::Status PeerService::Call(grpc::ServerContext* ctx, const transportpb::PeerCall* request,
                               transportpb::PeerCallReply* reply) {
  uint64_t from = 0;
  grpc::Status admitted = Admit(*ctx, &from);
  if (!admitted.ok()) return admitted;
  if (request->method() == kRttProbeMethod) return grpc::Status::OK;  // an empty, OK reply
  // Shared: the handler may answer after this call gave up waiting.
  auto answer = std::make_shared<std::promise<Result<std::string>>>();
  std::future<Result<std::string>> future = answer->get_future();
  handler_->OnCall(from, request->method(), request->body(),
                   [answer](Result<std::string> r) { answer->set_value(std::move(r)); });
  while (future.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    if (ctx->IsCancelled()) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "etcdpp transport: call cancelled");
    }
  }
  EncodeCallResult(future.get(), reply);
  return grpc::Status::OK;
}

grpc::Status PeerService::ReceiveSnapshotFile(
    uint64_t from, grpc::ServerReader<transportpb::SnapshotChunk>* reader, raftpb::Message* msg,
    std::string* path) {
  transportpb::SnapshotChunk chunk;
  if (!reader->Read(&chunk)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "etcdpp transport: snapshot stream ended");
  }
  if (chunk.from() != from || chunk.cluster_id() != transport_->cluster_id() ||
      !chunk.has_message() || chunk.message().type() != raftpb::MSG_SNAP ||
      chunk.message().to() != transport_->self_id()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "etcdpp transport: first snapshot chunk must carry a MsgSnap for this "
                        "member, sender and cluster of the handshake");
  }
  *msg = std::move(*chunk.mutable_message());
  const uint64_t total = chunk.total_size();
  const auto& meta = msg->snapshot().metadata();
  *path =
      JoinPath(options_.snapshot_dir, fmt::format("{:016x}-{:016x}.snap.recv-{:x}-{}", meta.term(),
                                                  meta.index(), from, next_file_seq_.fetch_add(1)));
  Env* env = options_.env;
  auto file = env->NewWritableFile(*path);
  if (!file.ok()) {
    return grpc::Status(grpc::StatusCode::INTERNAL, file.status().ToString());
  }
  auto fail = [&](grpc::StatusCode code, std::string why) {
    (void)(*file)->Close();
    (void)env->RemoveFile(*path);
    return grpc::Status(code, "etcdpp transport: " + why);
  };
  uint64_t written = 0;
  uint32_t crc = 0;
  for (;;) {
    const std::string& data = chunk.data();
    if (written + data.size() > total) {
      return fail(grpc::StatusCode::DATA_LOSS, "snapshot longer than announced");
    }
    if (Status s = (*file)->Append(data); !s.ok()) {
      return fail(grpc::StatusCode::INTERNAL, s.ToString());
    }
    crc = crc32c::Extend(crc, data.data(), data.size());
    written += data.size();
    if (chunk.last()) break;
    if (!reader->Read(&chunk)) {
      return fail(grpc::StatusCode::CANCELLED, "snapshot stream ended before the last chunk");
    }
  }
  if (written != total || crc != chunk.crc32c()) {
    return fail(grpc::StatusCode::DATA_LOSS,
                fmt::format("snapshot corrupt: {} of {} bytes, crc {:08x} want {:08x}", written,
                            total, crc, chunk.crc32c()));
  }
  Status s = (*file)->Sync();
  if (s.ok()) s = (*file)->Close();
  if (s.ok()) s = env->SyncDir(options_.snapshot_dir);
  if (!s.ok()) return fail(grpc::StatusCode::INTERNAL, s.ToString());
  if (transport_->IsRemoved(from)) {
    return fail(grpc::StatusCode::FAILED_PRECONDITION,
                fmt::format("member {:x} was removed", from));
  }
  return grpc::Status::OK;
}

}  // namespace etcdpp::transport

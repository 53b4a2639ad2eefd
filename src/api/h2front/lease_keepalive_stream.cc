#include "api/h2front/lease_keepalive_stream.h"

#include <utility>

#include "api/call_gate.h"
#include "api/grpc_status.h"
#include "api/h2front/grpc_wire.h"
#include "api/lease_keepalive.h"

namespace etcdpp::api::h2front {

Result<std::unique_ptr<KeepAliveStream>> KeepAliveStream::Open(const LeaseServiceDeps* member,
                                                               LeaderMonitor* monitor,
                                                               bool requires_leader,
                                                               uint32_t max_receive_message_bytes,
                                                               Hooks hooks) {
  // As the gRPC service: no auth check (etcd checks no permission on a
  // keep-alive), only the learner and "hasleader" refusals.
  Status st = CheckCall(*member->cluster, requires_leader, LearnerServes::kNo);
  if (!st.ok()) return st;
  std::unique_ptr<KeepAliveStream> stream(
      new KeepAliveStream(member, max_receive_message_bytes, std::move(hooks)));
  if (requires_leader && monitor != nullptr) {
    // The callback runs on the monitor's thread with its lock held: it only
    // posts. Unregister (destructor) returns only once it cannot run.
    stream->monitor_ = monitor;
    stream->monitor_token_ = monitor->Register(
        [post = stream->hooks_.post] { post([](KeepAliveStream& s) { s.OnNoLeader(); }); });
  }
  return stream;
}

KeepAliveStream::KeepAliveStream(const LeaseServiceDeps* member, uint32_t max_receive, Hooks hooks)
    : member_(member), max_receive_(max_receive), hooks_(std::move(hooks)) {}

KeepAliveStream::~KeepAliveStream() {
  if (monitor_ != nullptr) monitor_->Unregister(monitor_token_);
}

void KeepAliveStream::Received(std::string_view data) {
  if (ended_) return;
  inbound_.append(data);
  Pump();
}

void KeepAliveStream::HalfClosed() {
  half_closed_ = true;
  Pump();
}

void KeepAliveStream::Writable() {
  paused_ = false;
  Pump();
}

void KeepAliveStream::Pump() {
  if (pumping_) return;
  pumping_ = true;
  while (!ended_ && !renewing_ && !paused_) {
    if (no_leader_) {
      End(ToGrpcStatus(Status(Code::kNoLeader)));
      break;
    }
    auto cut = CutMessage(inbound_, max_receive_);
    if (cut.result == MessageCut::Result::kIncomplete) {
      // The gRPC reactor's read fails at the client's end: etcd returns nil.
      // A partial message left at the end is a broken request.
      if (half_closed_) {
        if (inbound_.empty()) {
          End(grpc::Status::OK);
        } else {
          Fail(grpc::StatusCode::INTERNAL, "the request ended inside a message");
        }
      }
      break;
    }
    if (auto refusal = RefusalOf(cut, max_receive_)) {
      Fail(refusal->error_code(), refusal->error_message());
      break;
    }
    etcdserverpb::LeaseKeepAliveRequest request;
    if (!request.ParseFromArray(cut.payload.data(), static_cast<int>(cut.payload.size()))) {
      Fail(grpc::StatusCode::INTERNAL, "cannot parse the request message");
      break;
    }
    inbound_.erase(0, cut.consumed);
    renewing_ = true;
    // The response lives with the renewal; the answer comes back through
    // post, inline when the lessor answered on this thread (then the loop
    // goes on here rather than recursing).
    auto response = std::make_shared<etcdserverpb::LeaseKeepAliveResponse>();
    KeepAliveOnce(member_, request.id(), response.get(),
                  [post = hooks_.post, response](const Status& st) {
                    post([response, st](KeepAliveStream& s) { s.OnRenewed(*response, st); });
                  });
  }
  pumping_ = false;
}

void KeepAliveStream::OnRenewed(const etcdserverpb::LeaseKeepAliveResponse& response,
                                const Status& renewed) {
  renewing_ = false;
  if (ended_) return;
  if (!renewed.ok()) return End(ToGrpcStatus(renewed));
  // The monitor asked while the renewal was out: the stream ends instead
  // of answering (as the gRPC reactor does).
  if (no_leader_) return End(ToGrpcStatus(Status(Code::kNoLeader)));
  paused_ = !hooks_.write(response);
  Pump();
}

void KeepAliveStream::OnNoLeader() {
  no_leader_ = true;
  // With a renewal out, its answer ends the stream (OnRenewed).
  if (!renewing_ && !ended_) End(ToGrpcStatus(Status(Code::kNoLeader)));
}

void KeepAliveStream::End(const grpc::Status& status) {
  if (ended_) return;
  ended_ = true;
  hooks_.finish(status);
}

void KeepAliveStream::Fail(grpc::StatusCode code, const std::string& message) {
  if (ended_) return;
  ended_ = true;
  inbound_.clear();
  hooks_.fail(grpc::Status(code, message));
}

}  // namespace etcdpp::api::h2front

#include "api/concurrency/self_client.h"

#include <grpcpp/alarm.h>

#include <cstdio>
#include <utility>

namespace etcdpp::api::concurrency {
namespace {

// Starts `start(context, request, response, callback)` with the request and
// response kept alive, together with the context, until `done` has run.
template <typename Request, typename Response, typename Start>
void CallUnary(std::shared_ptr<grpc::ClientContext> context, Request request,
               SelfClient::Done<Response> done, Start start) {
  struct Call {
    Request request;
    Response response;
  };
  auto call = std::make_shared<Call>();
  call->request = std::move(request);
  grpc::ClientContext* raw_context = context.get();
  start(raw_context, &call->request, &call->response,
        [context = std::move(context), call, done = std::move(done)](grpc::Status status) {
          done(status, call->response);
        });
}

}  // namespace

std::shared_ptr<SelfClient> Admit(const SelfClientSlot& slot, const CallGate& gate,
                                  const grpc::CallbackServerContext& context,
                                  grpc::Status* refusal) {
  grpc::Status gate_status = gate ? gate(context) : grpc::Status::OK;
  if (!gate_status.ok()) {
    *refusal = gate_status;
    return nullptr;
  }
  std::shared_ptr<SelfClient> client = slot.Get();
  if (!client) {
    *refusal = grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: server not ready");
  }
  return client;
}

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  // Every byte was 0xff: the range runs to the end of the key space.
  return std::string(1, '\0');
}

std::string LeaseHex(int64_t lease) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(lease));
  return buf;
}

grpc::Status AsRecipeError(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return status;
    default:
      return grpc::Status(grpc::StatusCode::UNKNOWN, status.error_message());
  }
}

bool OutcomeUnknown(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
      return true;
    default:
      return false;
  }
}

bool IsTransient(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE &&
         status.error_message() != kErrStopped;
}

SelfClient::SelfClient(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)),
      kv_(etcdserverpb::KV::NewStub(channel_)),
      lease_(etcdserverpb::Lease::NewStub(channel_)),
      watch_(etcdserverpb::Watch::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> SelfClient::ChildContext(
    const grpc::CallbackServerContext& parent) {
  return grpc::ClientContext::FromCallbackServerContext(parent);
}

std::unique_ptr<grpc::ClientContext> SelfClient::DetachedContext(
    std::chrono::milliseconds timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  return context;
}

bool SelfClient::BeginStart() {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return false;
  ++starting_;
  return true;
}

void SelfClient::EndStart() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--starting_ == 0) no_starts_.notify_all();
}

void SelfClient::Close() {
  std::unique_lock<std::mutex> lock(mu_);
  closed_ = true;
  no_starts_.wait(lock, [this] { return starting_ == 0; });
}

template <typename Response, typename Start>
void SelfClient::Gated(Done<Response>& done, Start start) {
  if (!BeginStart()) {
    Response none;
    done(grpc::Status(grpc::StatusCode::UNAVAILABLE, kErrStopped), none);
    return;
  }
  start();
  EndStart();
}

void SelfClient::Txn(std::shared_ptr<grpc::ClientContext> context, etcdserverpb::TxnRequest request,
                     Done<etcdserverpb::TxnResponse> done) {
  Gated(done, [&] {
    CallUnary(std::move(context), std::move(request), std::move(done),
              [this](auto* c, auto* req, auto* resp, auto cb) {
                kv_->async()->Txn(c, req, resp, std::move(cb));
              });
  });
}

void SelfClient::Range(std::shared_ptr<grpc::ClientContext> context,
                       etcdserverpb::RangeRequest request, Done<etcdserverpb::RangeResponse> done) {
  Gated(done, [&] {
    CallUnary(std::move(context), std::move(request), std::move(done),
              [this](auto* c, auto* req, auto* resp, auto cb) {
                kv_->async()->Range(c, req, resp, std::move(cb));
              });
  });
}

void SelfClient::DeleteRange(std::shared_ptr<grpc::ClientContext> context,
                             etcdserverpb::DeleteRangeRequest request,
                             Done<etcdserverpb::DeleteRangeResponse> done) {
  Gated(done, [&] {
    CallUnary(std::move(context), std::move(request), std::move(done),
              [this](auto* c, auto* req, auto* resp, auto cb) {
                kv_->async()->DeleteRange(c, req, resp, std::move(cb));
              });
  });
}

void SelfClient::LeaseGrant(std::shared_ptr<grpc::ClientContext> context,
                            etcdserverpb::LeaseGrantRequest request,
                            Done<etcdserverpb::LeaseGrantResponse> done) {
  Gated(done, [&] {
    CallUnary(std::move(context), std::move(request), std::move(done),
              [this](auto* c, auto* req, auto* resp, auto cb) {
                lease_->async()->LeaseGrant(c, req, resp, std::move(cb));
              });
  });
}

bool SelfClient::OpenWatch(grpc::ClientContext* context, WatchReactor* reactor,
                           const std::function<void()>& start) {
  if (!BeginStart()) return false;
  watch_->async()->Watch(context, reactor);
  start();
  EndStart();
  return true;
}

void RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) {
  // gRPC holds its own reference to the alarm while the callback runs, so
  // the callback may delete it; the closure (and `fn`) are freed after it returns.
  auto* alarm = new grpc::Alarm();
  alarm->Set(std::chrono::system_clock::now() + delay, [alarm, fn = std::move(fn)](bool) {
    delete alarm;
    fn();
  });
}

namespace {

constexpr int kReleaseAttempts = 8;
constexpr std::chrono::milliseconds kReleaseTimeout{5000};
constexpr std::chrono::milliseconds kFirstReleasePause{100};

void TryRelease(std::shared_ptr<SelfClient> client, std::string key, int64_t create_rev,
                int attempt) {
  etcdserverpb::TxnRequest txn;
  if (create_rev != 0) {
    auto* same_key = txn.add_compare();
    same_key->set_key(key);
    same_key->set_target(etcdserverpb::Compare::CREATE);
    same_key->set_result(etcdserverpb::Compare::EQUAL);
    same_key->set_create_revision(create_rev);
  }
  txn.add_success()->mutable_request_delete_range()->set_key(key);
  SelfClient* raw = client.get();
  raw->Txn(SelfClient::DetachedContext(kReleaseTimeout), std::move(txn),
           [client = std::move(client), key = std::move(key), create_rev, attempt](
               const grpc::Status& status, etcdserverpb::TxnResponse&) mutable {
             if (status.ok() || !IsTransient(status) || attempt + 1 >= kReleaseAttempts) return;
             auto pause = kFirstReleasePause * (1 << attempt);
             RunAfter(pause, [client = std::move(client), key = std::move(key), create_rev,
                              attempt]() mutable {
               TryRelease(std::move(client), std::move(key), create_rev, attempt + 1);
             });
           });
}

}  // namespace

void ReleaseKey(std::shared_ptr<SelfClient> client, std::string key, int64_t create_rev) {
  TryRelease(std::move(client), std::move(key), create_rev, 0);
}

void EnsureLease(SelfClient& client, const grpc::CallbackServerContext& parent, int64_t lease,
                 std::function<void(const grpc::Status&, int64_t lease)> done) {
  if (lease != 0) {
    done(grpc::Status::OK, lease);
    return;
  }
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(kDefaultSessionTtl);
  client.LeaseGrant(SelfClient::ChildContext(parent), std::move(grant),
                    [done = std::move(done)](const grpc::Status& status,
                                             etcdserverpb::LeaseGrantResponse& response) {
                      done(status, status.ok() ? response.id() : 0);
                    });
}

void SelfClientSlot::Connect(std::shared_ptr<grpc::Channel> channel) {
  auto client = std::make_shared<SelfClient>(std::move(channel));
  std::lock_guard<std::mutex> lock(mu_);
  client_ = std::move(client);
}

void SelfClientSlot::Close() {
  std::shared_ptr<SelfClient> client = Get();
  if (client) client->Close();
}

std::shared_ptr<SelfClient> SelfClientSlot::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return client_;
}

}  // namespace etcdpp::api::concurrency

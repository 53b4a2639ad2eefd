#include "http/health.h"

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "etcdserverpb/rpc.grpc.pb.h"

namespace etcdpp::http {
namespace {

constexpr auto kStepTimeout = std::chrono::seconds(1);

// One check: Status (is a leader known?), then Alarm GET (none raised?),
// then a linearizable Range. Deletes itself after calling `done`.
struct HealthProbe {
  std::function<void(bool)> done;
  std::function<void()> ended;
  etcdserverpb::Maintenance::Stub* maintenance;
  etcdserverpb::KV::Stub* kv;

  grpc::ClientContext status_context, alarm_context, range_context;
  etcdserverpb::StatusRequest status_request;
  etcdserverpb::StatusResponse status_reply;
  etcdserverpb::AlarmRequest alarm_request;
  etcdserverpb::AlarmResponse alarm_reply;
  etcdserverpb::RangeRequest range_request;
  etcdserverpb::RangeResponse range_reply;

  static void Deadline(grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() + kStepTimeout);
  }

  void Finish(bool healthy) {
    auto on_ended = std::move(ended);
    {
      // Destroyed before on_ended(): what it holds (an HTTP session) must
      // be gone before the checker may be destroyed.
      auto on_done = std::move(done);
      delete this;
      on_done(healthy);
    }
    on_ended();
  }

  void Start() {
    Deadline(status_context);
    maintenance->async()->Status(&status_context, &status_request, &status_reply,
                                 [this](grpc::Status s) {
                                   if (!s.ok() || status_reply.leader() == 0) return Finish(false);
                                   CheckAlarms();
                                 });
  }

  void CheckAlarms() {
    Deadline(alarm_context);
    alarm_request.set_action(etcdserverpb::AlarmRequest::GET);
    maintenance->async()->Alarm(&alarm_context, &alarm_request, &alarm_reply,
                                [this](grpc::Status s) {
                                  if (!s.ok() || alarm_reply.alarms_size() > 0) {
                                    return Finish(false);
                                  }
                                  CheckRead();
                                });
  }

  void CheckRead() {
    Deadline(range_context);
    range_request.set_key("health");  // any key: what matters is the read index
    kv->async()->Range(&range_context, &range_request, &range_reply,
                       [this](grpc::Status s) { Finish(s.ok()); });
  }
};

}  // namespace

struct HealthChecker::Impl {
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  metrics::Counter* successes;
  metrics::Counter* failures;
  std::mutex mu;
  std::condition_variable idle;
  int checks = 0;  // guarded by mu: in flight, waited for by the destructor
};

HealthChecker::HealthChecker(std::shared_ptr<grpc::Channel> channel, metrics::Registry& registry)
    : impl_(new Impl()) {
  impl_->maintenance = etcdserverpb::Maintenance::NewStub(channel);
  impl_->kv = etcdserverpb::KV::NewStub(channel);
  impl_->successes = &registry.AddCounter("etcd_server_health_success",
                                          "Health checks that found this member able to serve.");
  impl_->failures = &registry.AddCounter("etcd_server_health_failures",
                                         "Health checks that found this member unable to serve.");
}

HealthChecker::~HealthChecker() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->idle.wait(lock, [this] { return impl_->checks == 0; });
}

void HealthChecker::Check(std::function<void(bool)> done) {
  Impl* impl = impl_.get();
  {
    std::lock_guard<std::mutex> lock(impl->mu);
    ++impl->checks;
  }
  auto* check = new HealthProbe();
  check->maintenance = impl->maintenance.get();
  check->kv = impl->kv.get();
  check->done = [impl, done = std::move(done)](bool healthy) {
    (healthy ? impl->successes : impl->failures)->Inc();
    done(healthy);
  };
  check->ended = [impl] {
    std::lock_guard<std::mutex> lock(impl->mu);
    if (--impl->checks == 0) impl->idle.notify_all();
  };
  check->Start();
}

}  // namespace etcdpp::http

#include "metrics/grpc_metrics.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/interceptor.h>

#include <array>
#include <chrono>
#include <string_view>
#include <unordered_map>

namespace etcdpp::metrics {
namespace {

using grpc::experimental::InterceptionHookPoints;

// grpc::StatusCode 0..16 spelled as Go's codes.Code.String().
constexpr std::array<const char*, 17> kCodeNames = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

// Lets the per-call lookup take the method's C string without building a
// std::string (an allocation on every call).
struct PathHash {
  using is_transparent = void;
  size_t operator()(std::string_view path) const { return std::hash<std::string_view>{}(path); }
};

struct MethodCounters {
  Counter* started = nullptr;
  std::array<Counter*, kCodeNames.size()> handled{};
  Counter* received = nullptr;
  Counter* sent = nullptr;
  Histogram* handling_seconds = nullptr;  // null unless --metrics=extensive
};

// One per call; the counters it points to live as long as the registry.
class CallCounter final : public grpc::experimental::Interceptor {
 public:
  explicit CallCounter(const MethodCounters* counters) : counters_(counters) {
    if (counters_->handling_seconds != nullptr) started_ = std::chrono::steady_clock::now();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      counters_->received->Inc();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      counters_->sent->Inc();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const size_t code = static_cast<size_t>(methods->GetSendStatus().error_code());
      if (code < kCodeNames.size()) counters_->handled[code]->Inc();
      if (counters_->handling_seconds != nullptr) {
        counters_->handling_seconds->Observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
      }
    }
    methods->Proceed();
  }

 private:
  const MethodCounters* const counters_;
  std::chrono::steady_clock::time_point started_;  // set only for the histogram
};

using CountersByPath = std::unordered_map<std::string, MethodCounters, PathHash, std::equal_to<>>;

// Registers every method's series once; not modified afterwards, so
// lookups need no lock.
std::shared_ptr<const CountersByPath> RegisterCounters(Registry& registry,
                                                       const std::vector<std::string>& services,
                                                       bool handling_seconds) {
  auto by_path = std::make_shared<CountersByPath>();
  const std::vector<std::string> labels = {"grpc_method", "grpc_service", "grpc_type"};
  auto& started =
      registry.AddCounterFamily("grpc_server_started_total", "RPCs the server has begun.", labels);
  auto& handled = registry.AddCounterFamily(
      "grpc_server_handled_total", "RPCs the server has finished, by status code.",
      {"grpc_code", "grpc_method", "grpc_service", "grpc_type"});
  auto& received = registry.AddCounterFamily("grpc_server_msg_received_total",
                                             "Stream messages the server has received.", labels);
  auto& sent = registry.AddCounterFamily("grpc_server_msg_sent_total",
                                         "Stream messages the server has sent.", labels);
  // go-grpc-prometheus' default buckets (Prometheus' DefBuckets).
  Family<Histogram>* handling =
      handling_seconds ? &registry.AddHistogramFamily(
                             "grpc_server_handling_seconds",
                             "Time from an RPC's start to its status, in seconds.", labels,
                             {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})
                       : nullptr;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& service_name : services) {
    const auto* service = pool->FindServiceByName(service_name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      const char* type = method->client_streaming()
                             ? (method->server_streaming() ? "bidi_stream" : "client_stream")
                             : (method->server_streaming() ? "server_stream" : "unary");
      const std::vector<std::string> values = {method->name(), service_name, type};
      MethodCounters& c = (*by_path)["/" + service_name + "/" + method->name()];
      c.started = &started.WithLabels(values);
      c.received = &received.WithLabels(values);
      c.sent = &sent.WithLabels(values);
      if (handling != nullptr) c.handling_seconds = &handling->WithLabels(values);
      for (size_t code = 0; code < kCodeNames.size(); ++code) {
        c.handled[code] =
            &handled.WithLabels({kCodeNames[code], method->name(), service_name, type});
      }
    }
  }
  return by_path;
}

class GrpcServerMetricsFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit GrpcServerMetricsFactory(std::shared_ptr<const CountersByPath> by_path)
      : by_path_(std::move(by_path)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    auto it = by_path_->find(std::string_view(info->method()));
    if (it == by_path_->end()) return nullptr;
    it->second.started->Inc();
    return new CallCounter(&it->second);
  }

 private:
  const std::shared_ptr<const CountersByPath> by_path_;
};

class Recorder final : public UnaryCallRecorder {
 public:
  explicit Recorder(std::shared_ptr<const CountersByPath> by_path) : by_path_(std::move(by_path)) {}

  void Started(std::string_view path) const override {
    auto it = by_path_->find(path);
    if (it != by_path_->end()) it->second.started->Inc();
  }

  void Record(std::string_view path, grpc::StatusCode code,
              std::chrono::steady_clock::duration elapsed) const override {
    auto it = by_path_->find(path);
    if (it == by_path_->end()) return;
    const MethodCounters& c = it->second;
    c.received->Inc();
    if (code == grpc::StatusCode::OK) c.sent->Inc();
    const auto index = static_cast<size_t>(code);
    if (index < kCodeNames.size()) c.handled[index]->Inc();
    if (c.handling_seconds != nullptr) {
      c.handling_seconds->Observe(std::chrono::duration<double>(elapsed).count());
    }
  }

 private:
  const std::shared_ptr<const CountersByPath> by_path_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeGrpcServerMetrics(
    Registry& registry, const std::vector<std::string>& services, bool handling_seconds) {
  return MakeGrpcServerMetricsWithRecorder(registry, services, handling_seconds).interceptors;
}

GrpcServerMetrics MakeGrpcServerMetricsWithRecorder(Registry& registry,
                                                    const std::vector<std::string>& services,
                                                    bool handling_seconds) {
  auto by_path = RegisterCounters(registry, services, handling_seconds);
  return {std::make_unique<GrpcServerMetricsFactory>(by_path), std::make_shared<Recorder>(by_path)};
}

}  // namespace etcdpp::metrics

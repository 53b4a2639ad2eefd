// member list, endpoint health, endpoint status, version.
#include "cmd/etcdppctl/commands.h"

#include <fmt/format.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "cmd/etcdppctl/go_format.h"

namespace etcdpp::ctl {
namespace {

// What `etcdctl version` reports; etcdppctl speaks the same API.
constexpr const char* kEtcdctlVersion = "3.4.23";
constexpr const char* kApiVersion = "3.4";

class MemberListCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::MemberListResponse resp;
    grpc::Status rpc = inv.client().MemberList(etcdserverpb::MemberListRequest(), &resp);
    if (!rpc.ok()) return inv.RpcFailure(rpc);
    auto printer = inv.MakePrinter();
    if (!printer->SupportsCluster()) return inv.Unsupported();
    printer->MemberList(resp);
    return kExitSuccess;
  }
};

// etcdctl's endpointsFromCluster: --endpoints, or with --cluster every
// member's client URLs.
std::optional<std::vector<std::string>> TargetEndpoints(Invocation& inv, int* rc) {
  if (!inv.global().cluster) return inv.global().endpoints;
  etcdserverpb::MemberListResponse resp;
  grpc::Status rpc = inv.client().MemberList(etcdserverpb::MemberListRequest(), &resp);
  if (!rpc.ok()) {
    *rc = inv.Fail(CtlStatus::Fail(
        kExitError, "failed to fetch endpoints from etcd cluster member list: " + ErrorText(rpc)));
    return std::nullopt;
  }
  std::vector<std::string> eps;
  for (const auto& m : resp.members()) {
    for (const auto& url : m.clienturls()) eps.push_back(url);
  }
  return eps;
}

// One endpoint's health, as etcdctl 3.4's epHealthCommandFunc probes it: a
// linearizable Get of "health" succeeds (permission denied counts as
// healthy). 3.4 does not look at alarms: listing them is a Raft proposal.
EndpointHealthRow CheckHealth(Client& client, const std::string& ep, grpc::Status* get_error) {
  etcdserverpb::RangeRequest req;
  req.set_key("health");
  etcdserverpb::RangeResponse resp;
  auto start = std::chrono::steady_clock::now();
  grpc::Status rpc = client.RangeOn(ep, req, &resp);
  EndpointHealthRow row;
  row.endpoint = ep;
  row.took = FormatGoDuration(std::chrono::steady_clock::now() - start);
  if (rpc.ok() || rpc.error_message() == "etcdserver: permission denied") {
    row.healthy = true;
  } else {
    *get_error = rpc;
    row.error = ErrorText(rpc);
  }
  return row;
}

class EndpointHealthCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc = inv.PrepareClient()) return *rc;
    int rc = kExitSuccess;
    std::optional<std::vector<std::string>> eps = TargetEndpoints(inv, &rc);
    if (!eps) return rc;
    // Endpoints are probed concurrently, each with its own client, and listed
    // in the order their probes finish, as etcdctl does.
    struct Probe {
      EndpointHealthRow row;
      grpc::Status get_error;
    };
    std::vector<Probe> finished;
    std::mutex mu;
    std::vector<std::thread> threads;
    for (const std::string& ep : *eps) {
      threads.emplace_back([&, ep] {
        ClientOptions opts = inv.client().options();
        opts.endpoints = {ep};
        Client client(opts);
        Probe probe;
        probe.row = CheckHealth(client, ep, &probe.get_error);
        std::lock_guard<std::mutex> lock(mu);
        finished.push_back(std::move(probe));
      });
    }
    for (auto& t : threads) t.join();
    std::vector<EndpointHealthRow> rows;
    bool unhealthy = false;
    for (auto& probe : finished) {
      if (!probe.get_error.ok()) {
        inv.LogRpcFailure(probe.get_error, Invocation::ClientTargetFor(probe.row.endpoint));
      }
      unhealthy = unhealthy || !probe.row.error.empty();
      rows.push_back(std::move(probe.row));
    }
    auto printer = inv.MakePrinter();
    if (!printer->SupportsEndpoints()) return inv.Unsupported();
    printer->EndpointHealth(rows);
    if (unhealthy) return inv.Fail(CtlStatus::Fail(kExitError, "unhealthy cluster"));
    return kExitSuccess;
  }
};

class EndpointStatusCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc = inv.PrepareClient()) return *rc;
    int rc = kExitSuccess;
    std::optional<std::vector<std::string>> eps = TargetEndpoints(inv, &rc);
    if (!eps) return rc;
    std::vector<EndpointStatusRow> rows;
    bool failed = false;
    for (const std::string& ep : *eps) {
      EndpointStatusRow row;
      row.endpoint = ep;
      grpc::Status rpc = inv.client().StatusOf(ep, &row.status);
      if (!rpc.ok()) {
        inv.LogRpcFailure(rpc, "passthrough:///" + StripScheme(ep));
        inv.io().err << "Failed to get the status of endpoint " << ep << " (" << ErrorText(rpc)
                     << ")\n";
        failed = true;
        continue;
      }
      rows.push_back(std::move(row));
    }
    auto printer = inv.MakePrinter();
    if (!printer->SupportsEndpoints()) return inv.Unsupported();
    printer->EndpointStatus(rows);
    return failed ? kExitError : kExitSuccess;
  }
};

class VersionCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    inv.io().out << "etcdctl version: " << kEtcdctlVersion << "\n";
    inv.io().out << "API version: " << kApiVersion << "\n";
    return kExitSuccess;
  }
};

}  // namespace

std::unique_ptr<Command> NewClusterCommand(const std::string& path) {
  if (path == "member list") return std::make_unique<MemberListCommand>();
  if (path == "endpoint health") return std::make_unique<EndpointHealthCommand>();
  if (path == "endpoint status") return std::make_unique<EndpointStatusCommand>();
  if (path == "version") return std::make_unique<VersionCommand>();
  return nullptr;
}

std::unique_ptr<Command> NewCommand(const std::string& path) {
  if (auto c = NewKvCommand(path)) return c;
  if (auto c = NewClusterCommand(path)) return c;
  if (auto c = NewLeaseCommand(path)) return c;
  return NewWatchCommand(path);
}

}  // namespace etcdpp::ctl

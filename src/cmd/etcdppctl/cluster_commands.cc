// member *, move-leader, endpoint health and status, version.
#include "cmd/etcdppctl/commands.h"

#include <fmt/format.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "cmd/etcdppctl/go_format.h"
#include "cmd/version/version.h"

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

// The items separated by `sep`. (fmt::join trips a GCC 12 -O3 false
// -Wstringop-overflow inside fmt.)
template <typename Strings>
std::string Join(const Strings& items, std::string_view sep) {
  std::string out;
  bool first = true;
  for (const auto& item : items) {
    if (!first) out.append(sep);
    out.append(item);
    first = false;
  }
  return out;
}

// Splits --peer-urls as etcdctl does (strings.Split on ",").
std::vector<std::string> SplitUrls(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

// Go's strconv.ParseUint for bases up to 16 (no sign, no prefix).
std::optional<uint64_t> GoParseUint(const std::string& s, int base, std::string* error) {
  auto fail = [&](const char* why) -> std::optional<uint64_t> {
    *error = "strconv.ParseUint: parsing " + GoQuote(s) + ": " + why;
    return std::nullopt;
  };
  if (s.empty()) return fail("invalid syntax");
  unsigned __int128 v = 0;
  bool overflow = false;
  for (char c : s) {
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    if (d < 0 || d >= base) return fail("invalid syntax");
    v = v * static_cast<unsigned>(base) + static_cast<unsigned>(d);
    if (v > UINT64_MAX) overflow = true;
  }
  if (overflow) return fail("value out of range");
  return static_cast<uint64_t>(v);
}

// etcdctl's member ID argument: hexadecimal.
std::optional<uint64_t> MemberIdArg(Invocation& inv, int* rc) {
  if (inv.args().size() != 1) {
    *rc = inv.Fail(CtlStatus::Fail(kExitBadArgs, "member ID is not provided"));
    return std::nullopt;
  }
  std::string why;
  std::optional<uint64_t> id = GoParseUint(inv.args()[0], 16, &why);
  if (!id) {
    *rc = inv.Fail(
        CtlStatus::Fail(kExitBadArgs, "bad member ID arg (" + why + "), expecting ID in Hex"));
  }
  return id;
}

// Prints a member change's answer; etcdctl makes the change first, so a
// format that cannot print it fails only afterwards.
template <typename PrintFn>
int PrintMemberChange(Invocation& inv, PrintFn print) {
  auto printer = inv.MakePrinter();
  if (!printer->SupportsMemberChange()) return inv.Unsupported();
  print(*printer);
  return kExitSuccess;
}

class MemberAddCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddString("peer-urls", 0, &peer_urls_, "",
                 "the new member's peer URLs, comma-separated (required)");
    f->AddBool("learner", 0, &learner_, false,
               "add a non-voting learner, to be promoted once it has caught up");
  }
  int Run(Invocation& inv) override {
    if (inv.args().empty()) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "member name not provided"));
    }
    if (inv.args().size() > 1) {
      std::string why = "too many arguments";
      for (const std::string& a : inv.args()) {
        std::string lower = a;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower.rfind("http", 0) == 0) why += ", did you mean --peer-urls=" + a;
      }
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, why));
    }
    const std::string name = inv.args()[0];
    if (peer_urls_.empty()) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "member peer urls not provided"));
    }
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::MemberAddRequest req;
    for (const std::string& u : SplitUrls(peer_urls_)) req.add_peerurls(u);
    req.set_islearner(learner_);
    etcdserverpb::MemberAddResponse resp;
    grpc::Status rpc = inv.client().MemberAdd(req, &resp);
    if (!rpc.ok()) return inv.RpcFailure(rpc);
    int printed = PrintMemberChange(inv, [&](Printer& p) { p.MemberAdd(resp); });
    if (printed != kExitSuccess || inv.printer_options().format != OutputFormat::kSimple) {
      return printed;
    }
    std::ostream& out = inv.io().out;
    // The list as the answering member sees it once it applied the change
    // (etcdctl's quorum Get loop when another member answers).
    etcdserverpb::MemberListResponse list;
    rpc = inv.client().MemberList(etcdserverpb::MemberListRequest(), &list);
    while (rpc.ok() && list.header().member_id() != resp.header().member_id()) {
      etcdserverpb::RangeRequest get;
      get.set_key("_");
      etcdserverpb::RangeResponse got;
      rpc = inv.client().Range(get, &got);
      if (!rpc.ok()) break;
      resp.mutable_header()->set_member_id(got.header().member_id());
      rpc = inv.client().MemberList(etcdserverpb::MemberListRequest(), &list);
    }
    if (!rpc.ok()) return inv.RpcFailure(rpc);
    std::vector<std::string> conf;
    for (const auto& m : list.members()) {
      for (const std::string& u : m.peerurls()) {
        conf.push_back((m.id() == resp.member().id() ? name : m.name()) + "=" + u);
      }
    }
    out << "\n";
    out << "ETCD_NAME=" << GoQuote(name) << "\n";
    out << "ETCD_INITIAL_CLUSTER=" << GoQuote(Join(conf, ",")) << "\n";
    out << "ETCD_INITIAL_ADVERTISE_PEER_URLS=" << GoQuote(Join(resp.member().peerurls(), ","))
        << "\n";
    out << "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n";
    return kExitSuccess;
  }

 private:
  std::string peer_urls_;
  bool learner_ = false;
};

// Sends a change to member `id` (remove, update, promote) and prints the
// answer with `print` (a Printer method).
template <typename Request, typename Response>
int SendMemberChange(Invocation& inv, uint64_t id, Request req,
                     grpc::Status (Client::*call)(const Request&, Response*),
                     void (Printer::*print)(uint64_t, const Response&)) {
  if (auto rc = inv.PrepareClient()) return *rc;
  req.set_id(id);
  Response resp;
  grpc::Status rpc = (inv.client().*call)(req, &resp);
  if (!rpc.ok()) return inv.RpcFailure(rpc);
  return PrintMemberChange(inv, [&](Printer& p) { (p.*print)(id, resp); });
}

class MemberRemoveCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    int rc = kExitSuccess;
    std::optional<uint64_t> id = MemberIdArg(inv, &rc);
    if (!id) return rc;
    return SendMemberChange(inv, *id, etcdserverpb::MemberRemoveRequest(), &Client::MemberRemove,
                            &Printer::MemberRemove);
  }
};

class MemberUpdateCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddString("peer-urls", 0, &peer_urls_, "",
                 "the member's new peer URLs, comma-separated (required)");
  }
  int Run(Invocation& inv) override {
    int rc = kExitSuccess;
    std::optional<uint64_t> id = MemberIdArg(inv, &rc);
    if (!id) return rc;
    if (peer_urls_.empty()) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "member peer urls not provided"));
    }
    etcdserverpb::MemberUpdateRequest req;
    for (const std::string& u : SplitUrls(peer_urls_)) req.add_peerurls(u);
    return SendMemberChange(inv, *id, std::move(req), &Client::MemberUpdate,
                            &Printer::MemberUpdate);
  }

 private:
  std::string peer_urls_;
};

class MemberPromoteCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    int rc = kExitSuccess;
    std::optional<uint64_t> id = MemberIdArg(inv, &rc);
    if (!id) return rc;
    return SendMemberChange(inv, *id, etcdserverpb::MemberPromoteRequest(), &Client::MemberPromote,
                            &Printer::MemberPromote);
  }
};

// etcdctl's move-leader: finds the leader among --endpoints (Status of each
// in turn) and asks it to hand leadership to the target.
class MoveLeaderCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (inv.args().size() != 1) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "move-leader command needs 1 argument"));
    }
    std::string why;
    std::optional<uint64_t> target = GoParseUint(inv.args()[0], 16, &why);
    if (!target) return inv.Fail(CtlStatus::Fail(kExitBadArgs, why));
    if (auto rc = inv.PrepareClient()) return *rc;
    std::optional<std::string> leader_ep;
    uint64_t leader_id = 0;
    for (const std::string& ep : inv.global().endpoints) {
      etcdserverpb::StatusResponse status;
      grpc::Status rpc = inv.client().StatusOf(ep, &status);
      if (!rpc.ok()) return inv.RpcFailure(rpc);
      if (status.header().member_id() == status.leader()) {
        leader_ep = ep;
        leader_id = status.leader();
        break;
      }
    }
    if (!leader_ep) {
      return inv.Fail(CtlStatus::Fail(
          kExitBadArgs, "no leader endpoint given at [" + Join(inv.global().endpoints, " ") + "]"));
    }
    etcdserverpb::MoveLeaderResponse resp;
    grpc::Status rpc = inv.client().MoveLeaderOn(*leader_ep, *target, &resp);
    if (!rpc.ok()) return inv.RpcFailure(rpc);
    return PrintMemberChange(inv, [&](Printer& p) { p.MoveLeader(leader_id, *target, resp); });
  }
};

}  // namespace

std::optional<std::vector<std::string>> TargetEndpoints(Invocation& inv, bool cluster, int* rc) {
  if (!cluster) return inv.global().endpoints;
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

namespace {

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
    std::optional<std::vector<std::string>> eps = TargetEndpoints(inv, inv.global().cluster, &rc);
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
    std::optional<std::vector<std::string>> eps = TargetEndpoints(inv, inv.global().cluster, &rc);
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
    // Scripts parse the two lines above; what this build is follows them.
    inv.io().out << "etcdppctl version: " << version::Release() << "\n";
    inv.io().out << "Git SHA: " << version::GitCommit() << "\n";
    inv.io().out << "Compiler: " << version::Compiler() << "\n";
    return kExitSuccess;
  }
};

}  // namespace

std::vector<CommandSpec> ClusterCommandSpecs() {
  return {
      {"member list", "", "list the cluster's members",
       "Simple output has one comma-separated line per member: ID, status,\n"
       "name, peer URLs, client URLs, whether it is a learner.",
       Make<MemberListCommand>},
      {"member add", "<name>", "add a member to the cluster",
       "Prints the new member's ID and, in simple format, the ETCD_* settings to\n"
       "start it with (it joins an existing cluster).",
       Make<MemberAddCommand>},
      {"member remove", "<member ID (hex)>", "remove a member from the cluster", "",
       Make<MemberRemoveCommand>},
      {"member update", "<member ID (hex)>", "change a member's peer URLs", "",
       Make<MemberUpdateCommand>},
      {"member promote", "<member ID (hex)>", "make a learner a voting member",
       "The learner must have caught up with the leader's log.", Make<MemberPromoteCommand>},
      {"move-leader", "<member ID (hex)>", "hand the leadership to another member",
       "--endpoints must include the current leader: its status is asked of\n"
       "each endpoint to find it.",
       Make<MoveLeaderCommand>},
      {"endpoint health", "", "check that each endpoint serves a linearizable read",
       "Exits 1 when any endpoint is unhealthy.", Make<EndpointHealthCommand>},
      {"endpoint status", "", "show each endpoint's version, database size and raft state", "",
       Make<EndpointStatusCommand>},
      {"version", "", "print the etcdctl version etcdppctl is compatible with, and the API version",
       "", Make<VersionCommand>},
  };
}

}  // namespace etcdpp::ctl

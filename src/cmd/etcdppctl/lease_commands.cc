// lease grant, revoke, timetolive, list, keep-alive.
#include "cmd/etcdppctl/commands.h"

#include <fmt/format.h>

#include <optional>

#include "cmd/etcdppctl/go_format.h"

namespace etcdpp::ctl {
namespace {

// etcdctl's leaseFromArgs.
std::optional<int64_t> LeaseFromArg(Invocation& inv, const std::string& arg, int* rc) {
  std::string why;
  std::optional<int64_t> id = GoParseInt(arg, 16, &why);
  if (!id) {
    *rc = inv.Fail(
        CtlStatus::Fail(kExitBadArgs, "bad lease ID arg (" + why + "), expecting ID in Hex"));
  }
  return id;
}

class LeaseGrantCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (inv.args().size() != 1) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "lease grant command needs TTL argument"));
    }
    std::string why;
    std::optional<int64_t> ttl = GoParseInt(inv.args()[0], 10, &why);
    if (!ttl) return inv.Fail(CtlStatus::Fail(kExitBadArgs, "bad TTL (" + why + ")"));
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(*ttl);
    etcdserverpb::LeaseGrantResponse resp;
    grpc::Status rpc = inv.client().LeaseGrant(req, &resp);
    if (!rpc.ok()) {
      inv.LogRpcFailure(rpc, inv.ClientTarget());
      // etcdctl's message ends with its own newline.
      return inv.Fail(
          CtlStatus::Fail(kExitError, "failed to grant lease (" + ErrorText(rpc) + ")\n"));
    }
    auto printer = inv.MakePrinter();
    if (!printer->SupportsLeaseAndWatch()) return inv.Unsupported();
    printer->Grant(resp);
    return kExitSuccess;
  }
};

class LeaseRevokeCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (inv.args().size() != 1) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "lease revoke command needs 1 argument"));
    }
    int rc = kExitSuccess;
    std::optional<int64_t> id = LeaseFromArg(inv, inv.args()[0], &rc);
    if (!id) return rc;
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(*id);
    etcdserverpb::LeaseRevokeResponse resp;
    grpc::Status rpc = inv.client().LeaseRevoke(req, &resp);
    if (!rpc.ok()) {
      inv.LogRpcFailure(rpc, inv.ClientTarget());
      return inv.Fail(
          CtlStatus::Fail(kExitError, "failed to revoke lease (" + ErrorText(rpc) + ")"));
    }
    auto printer = inv.MakePrinter();
    if (!printer->SupportsLeaseAndWatch()) return inv.Unsupported();
    printer->Revoke(*id, resp);
    return kExitSuccess;
  }
};

class LeaseTimeToLiveCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddBool("keys", 0, &lease_keys_, false, "also list the keys attached to the lease");
  }

  int Run(Invocation& inv) override {
    if (inv.args().size() != 1) {
      return inv.Fail(
          CtlStatus::Fail(kExitBadArgs, "lease timetolive command needs lease ID as argument"));
    }
    int rc = kExitSuccess;
    std::optional<int64_t> id = LeaseFromArg(inv, inv.args()[0], &rc);
    if (!id) return rc;
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::LeaseTimeToLiveRequest req;
    req.set_id(*id);
    req.set_keys(lease_keys_);
    etcdserverpb::LeaseTimeToLiveResponse resp;
    grpc::Status rpc = inv.client().LeaseTimeToLive(req, &resp);
    if (!rpc.ok()) {
      inv.LogRpcFailure(rpc, inv.ClientTarget());
      return inv.Fail(CtlStatus::Fail(kExitBadConnection, ErrorText(rpc)));
    }
    auto printer = inv.MakePrinter();
    if (!printer->SupportsLeaseAndWatch()) return inv.Unsupported();
    printer->TimeToLive(resp, lease_keys_);
    return kExitSuccess;
  }

 private:
  bool lease_keys_ = false;
};

class LeaseListCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::LeaseLeasesResponse resp;
    grpc::Status rpc = inv.client().LeaseLeases(&resp);
    if (!rpc.ok()) {
      inv.LogRpcFailure(rpc, inv.ClientTarget());
      return inv.Fail(CtlStatus::Fail(kExitBadConnection, ErrorText(rpc)));
    }
    auto printer = inv.MakePrinter();
    if (!printer->SupportsLeaseAndWatch()) return inv.Unsupported();
    printer->Leases(resp);
    return kExitSuccess;
  }
};

class LeaseKeepAliveCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddBool("once", 0, &lease_once_, false, "renew the lease once and exit");
  }

  int Run(Invocation& inv) override {
    if (inv.args().size() != 1) {
      return inv.Fail(
          CtlStatus::Fail(kExitBadArgs, "lease keep-alive command needs lease ID as argument"));
    }
    int rc = kExitSuccess;
    std::optional<int64_t> id = LeaseFromArg(inv, inv.args()[0], &rc);
    if (!id) return rc;
    if (auto rc = inv.PrepareClient()) return *rc;
    auto printer = inv.MakePrinter();
    if (lease_once_) {
      etcdserverpb::LeaseKeepAliveResponse resp;
      grpc::Status rpc = inv.client().LeaseKeepAliveOnce(*id, &resp);
      if (!rpc.ok()) return inv.Fail(CtlStatus::Fail(kExitBadConnection, ErrorText(rpc)));
      if (!printer->SupportsLeaseAndWatch()) return inv.Unsupported();
      printer->KeepAlive(resp);
      return kExitSuccess;
    }
    if (!printer->SupportsLeaseAndWatch()) return inv.Unsupported();
    grpc::Status rpc =
        inv.client().LeaseKeepAliveLoop(*id, [&](const etcdserverpb::LeaseKeepAliveResponse& resp) {
          printer->KeepAlive(resp);
          inv.io().out.flush();
        });
    if (!rpc.ok()) return inv.Fail(CtlStatus::Fail(kExitBadConnection, ErrorText(rpc)));
    if (inv.printer_options().format == OutputFormat::kSimple) {
      inv.io().out << fmt::format("lease {:016x} expired or revoked.\n", *id);
    }
    return kExitSuccess;
  }

 private:
  bool lease_once_ = false;
};

}  // namespace

std::vector<CommandSpec> LeaseCommandSpecs() {
  return {
      {"lease grant", "<ttl seconds>", "create a lease", "Prints the new lease's ID (hexadecimal).",
       Make<LeaseGrantCommand>},
      {"lease revoke", "<lease ID (hex)>", "revoke a lease, deleting the keys attached to it", "",
       Make<LeaseRevokeCommand>},
      {"lease timetolive", "<lease ID (hex)>", "show a lease's granted and remaining TTL", "",
       Make<LeaseTimeToLiveCommand>},
      {"lease list", "", "list the IDs of all leases", "", Make<LeaseListCommand>},
      {"lease keep-alive", "<lease ID (hex)>", "keep renewing a lease",
       "Renews the lease every third of its TTL and prints each renewal, until\n"
       "the lease expires or is revoked.",
       Make<LeaseKeepAliveCommand>},
  };
}

}  // namespace etcdpp::ctl

// put, get, del, txn, compaction: etcdctl's KV commands.
#include "cmd/etcdppctl/commands.h"

#include <fmt/format.h>

#include <iterator>
#include <optional>

#include "cmd/etcdppctl/go_format.h"
#include "cmd/etcdppctl/kv_ops.h"
#include "cmd/etcdppctl/txn_parser.h"

namespace etcdpp::ctl {
namespace {

class PutCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override { put_.Register(f); }

  int Run(Invocation& inv) override {
    etcdserverpb::PutRequest req;
    auto read_stdin = [&inv]() -> std::optional<std::string> {
      return std::string(std::istreambuf_iterator<char>(inv.io().in), {});
    };
    CtlStatus st = BuildPut(inv.args(), put_, read_stdin, &req);
    if (!st.ok()) return inv.Fail(st);
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::PutResponse resp;
    grpc::Status rpc = inv.client().Put(req, &resp);
    if (!rpc.ok()) return inv.RpcFailure(rpc);
    auto printer = inv.MakePrinter();
    if (!printer->SupportsKV()) return inv.Unsupported();
    printer->Put(resp);
    return kExitSuccess;
  }

 private:
  PutFlags put_;
};

class GetCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override { get_.Register(f); }

  int Run(Invocation& inv) override {
    etcdserverpb::RangeRequest req;
    CtlStatus st = BuildGet(inv.args(), get_, &req);
    if (!st.ok()) return inv.Fail(st);
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::RangeResponse resp;
    grpc::Status rpc = inv.client().Range(req, &resp);
    if (!rpc.ok()) return inv.RpcFailure(rpc);
    if (get_.count_only && inv.printer_options().format != OutputFormat::kFields) {
      return inv.Fail(
          CtlStatus::Fail(kExitBadArgs, "--count-only is only for `--write-out=fields`"));
    }
    if (get_.print_value_only) {
      if (inv.printer_options().format != OutputFormat::kSimple) {
        return inv.Fail(
            CtlStatus::Fail(kExitBadArgs, "print-value-only is only for `--write-out=simple`"));
      }
      inv.printer_options().value_only = true;
    }
    auto printer = inv.MakePrinter();
    if (!printer->SupportsKV()) return inv.Unsupported();
    printer->Get(resp);
    return kExitSuccess;
  }

 private:
  GetFlags get_;
};

class DelCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override { del_.Register(f); }

  int Run(Invocation& inv) override {
    etcdserverpb::DeleteRangeRequest req;
    CtlStatus st = BuildDel(inv.args(), del_, &req);
    if (!st.ok()) return inv.Fail(st);
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::DeleteRangeResponse resp;
    grpc::Status rpc = inv.client().DeleteRange(req, &resp);
    if (!rpc.ok()) return inv.RpcFailure(rpc);
    auto printer = inv.MakePrinter();
    if (!printer->SupportsKV()) return inv.Unsupported();
    printer->Del(resp);
    return kExitSuccess;
  }

 private:
  DelFlags del_;
};

class TxnCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override { f->AddBool("interactive", 'i', &interactive_, false); }

  int Run(Invocation& inv) override {
    if (!inv.args().empty()) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "txn command does not accept argument"));
    }
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::TxnRequest req;
    CtlStatus st = ReadTxn(inv.io().in, interactive_, inv.io().out, &req);
    if (!st.ok()) return inv.Fail(st);
    etcdserverpb::TxnResponse resp;
    grpc::Status rpc = inv.client().Txn(req, &resp);
    if (!rpc.ok()) return inv.RpcFailure(rpc);
    auto printer = inv.MakePrinter();
    if (!printer->SupportsKV()) return inv.Unsupported();
    printer->Txn(resp);
    return kExitSuccess;
  }

 private:
  bool interactive_ = false;
};

class CompactionCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override { f->AddBool("physical", 0, &physical_, false); }

  int Run(Invocation& inv) override {
    if (inv.args().size() != 1) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "compaction command needs 1 argument"));
    }
    std::string why;
    std::optional<int64_t> rev = GoParseInt(inv.args()[0], 10, &why);
    if (!rev) return inv.Fail(CtlStatus::Fail(kExitError, why));
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::CompactionRequest req;
    req.set_revision(*rev);
    req.set_physical(physical_);
    etcdserverpb::CompactionResponse resp;
    grpc::Status rpc = inv.client().Compact(req, &resp);
    if (!rpc.ok()) return inv.RpcFailure(rpc);
    inv.io().out << "compacted revision " << *rev << "\n";
    return kExitSuccess;
  }

 private:
  bool physical_ = false;
};

}  // namespace

std::unique_ptr<Command> NewKvCommand(const std::string& path) {
  if (path == "put") return std::make_unique<PutCommand>();
  if (path == "get") return std::make_unique<GetCommand>();
  if (path == "del") return std::make_unique<DelCommand>();
  if (path == "txn") return std::make_unique<TxnCommand>();
  if (path == "compaction") return std::make_unique<CompactionCommand>();
  return nullptr;
}

}  // namespace etcdpp::ctl

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
  void AddFlags(FlagSet* f) override {
    f->AddBool("interactive", 'i', &interactive_, false,
               "prompt for each of the three sections of the input");
  }

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
  void AddFlags(FlagSet* f) override {
    f->AddBool("physical", 0, &physical_, false,
               "return only once every member has removed the old revisions from disk");
  }

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

std::vector<CommandSpec> KvCommandSpecs() {
  return {
      {"put", "<key> [value]", "write a key",
       "Without [value], the value is all of standard input. A value that starts\n"
       "with '-' must follow `--`: etcdppctl put -- key -value.\n"
       "Prints OK (and with --prev-kv the key as it was before).",
       Make<PutCommand>},
      {"get", "<key> [range_end]", "read a key, or the keys of a range",
       "With [range_end], reads every key in [key, range_end), in byte order.\n"
       "Prints each key on one line and its value on the next.",
       Make<GetCommand>},
      {"del", "<key> [range_end]", "delete a key, or the keys of a range",
       "With [range_end], deletes every key in [key, range_end). Prints how many\n"
       "keys were deleted.",
       Make<DelCommand>},
      {"txn", "", "run a transaction read from standard input",
       "The input has three sections, each ended by an empty line: compares,\n"
       "then the requests to run when every compare holds, then those to run\n"
       "otherwise.\n"
       "\n"
       "  A compare: <target>(\"<key>\") <op> \"<value>\", where <target> is one of\n"
       "  ver/version, c/create, m/mod (revisions), val/value or lease (hex ID)\n"
       "  and <op> one of = != < >.\n"
       "  A request: a put, get or del line with the flags those commands take.\n"
       "\n"
       "Example:\n"
       "  mod(\"k1\") > \"0\"\n"
       "\n"
       "  put k1 \"new value\"\n"
       "\n"
       "  get k1\n"
       "\n"
       "Prints SUCCESS or FAILURE, then each request's result.",
       Make<TxnCommand>},
      {"compaction", "<revision>", "discard the history older than a revision",
       "Keys keep their latest value; reads and watches of revisions before\n"
       "<revision> fail afterwards.",
       Make<CompactionCommand>},
  };
}

}  // namespace etcdpp::ctl

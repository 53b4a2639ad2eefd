// alarm list|disarm, defrag, endpoint hashkv and snapshot save: etcdctl's
// commands on the Maintenance service.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "cmd/etcdppctl/commands.h"
#include "cmd/etcdppctl/go_format.h"

namespace etcdpp::ctl {
namespace {

class AlarmListCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (!inv.args().empty()) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "alarm list command accepts no arguments"));
    }
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AlarmResponse resp;
    grpc::Status rpc = inv.client().AlarmList(&resp);
    if (!rpc.ok()) return inv.RpcFailure(rpc);
    auto printer = inv.MakePrinter();
    if (!printer->SupportsAlarm()) return inv.Unsupported();
    printer->Alarm(resp);
    return kExitSuccess;
  }
};

// Clears every active alarm and prints those it cleared.
class AlarmDisarmCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (!inv.args().empty()) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "alarm disarm command accepts no arguments"));
    }
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AlarmResponse active;
    grpc::Status rpc = inv.client().AlarmList(&active);
    if (!rpc.ok()) return inv.RpcFailure(rpc);
    etcdserverpb::AlarmResponse cleared;
    rpc = inv.client().AlarmDisarmAll(active, &cleared);
    if (!rpc.ok()) return inv.RpcFailure(rpc);
    auto printer = inv.MakePrinter();
    if (!printer->SupportsAlarm()) return inv.Unsupported();
    printer->Alarm(cleared);
    return kExitSuccess;
  }
};

// Each endpoint in turn; the output format does not apply (etcdctl prints
// the same lines whatever -w says).
class DefragCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddBool("cluster", 0, &cluster_, false,
               "defragment every member (the client URLs of `member list`) instead of "
               "--endpoints");
  }

  int Run(Invocation& inv) override {
    if (auto rc = inv.PrepareClient()) return *rc;
    int rc = kExitSuccess;
    std::optional<std::vector<std::string>> eps = TargetEndpoints(inv, cluster_, &rc);
    if (!eps) return rc;
    bool failed = false;
    for (const std::string& ep : *eps) {
      etcdserverpb::DefragmentResponse resp;
      grpc::Status rpc = inv.client().DefragmentOn(ep, &resp);
      if (rpc.ok()) {
        inv.io().out << "Finished defragmenting etcd member[" << ep << "]\n";
        continue;
      }
      inv.LogRpcFailure(rpc, "passthrough:///" + StripScheme(ep));
      inv.io().err << "Failed to defragment etcd member[" << ep << "] (" << ErrorText(rpc) << ")\n";
      failed = true;
    }
    return failed ? kExitError : kExitSuccess;
  }

 private:
  bool cluster_ = false;
};

class EndpointHashKVCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddInt64("rev", 0, &rev_, 0, "hash the history up to this revision (0: all of it)");
  }

  int Run(Invocation& inv) override {
    if (auto rc = inv.PrepareClient()) return *rc;
    int rc = kExitSuccess;
    std::optional<std::vector<std::string>> eps = TargetEndpoints(inv, inv.global().cluster, &rc);
    if (!eps) return rc;
    std::vector<EndpointHashKVRow> rows;
    grpc::Status last_error;
    for (const std::string& ep : *eps) {
      EndpointHashKVRow row;
      row.endpoint = ep;
      grpc::Status rpc = inv.client().HashKVOn(ep, rev_, &row.hash);
      if (!rpc.ok()) {
        inv.LogRpcFailure(rpc, "passthrough:///" + StripScheme(ep));
        inv.io().err << "Failed to get the hash of endpoint " << ep << " (" << ErrorText(rpc)
                     << ")\n";
        last_error = rpc;
        continue;
      }
      rows.push_back(std::move(row));
    }
    auto printer = inv.MakePrinter();
    if (!printer->SupportsEndpoints()) return inv.Unsupported();
    printer->EndpointHashKV(rows);
    if (!last_error.ok()) return inv.Fail(CtlStatus::Fail(kExitError, ErrorText(last_error)));
    return kExitSuccess;
  }

 private:
  int64_t rev_ = 0;
};

// Go's text for a failed system call on a file: "open x: no such file or
// directory".
std::string OsError(const char* op, const std::string& path, int err) {
  std::string text = strerror(err);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return std::string(op) + " " + path + ": " + text;
}

// Streams one member's database into <file>: written to <file>.part,
// synced, then renamed, so <file> is either absent or complete. The parent
// directory is synced too, so the rename survives a crash.
class SnapshotSaveCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (inv.args().size() != 1) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "snapshot save expects one argument"));
    }
    const std::string& path = inv.args()[0];
    if (auto rc = inv.PrepareClient()) return *rc;
    const std::vector<std::string>& eps = inv.global().endpoints;
    if (eps.size() != 1) {
      std::string list;
      for (const std::string& ep : eps) list += (list.empty() ? "" : " ") + ep;
      return Interrupted(
          inv, "snapshot must be requested to one selected node, not multiple [" + list + "]");
    }
    const std::string part = path + ".part";
    int fd = open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Interrupted(inv, "could not open " + part + " (" + OsError("open", part, errno) + ")");
    }
    std::string write_error;
    // Without --command-timeout the stream may take as long as it needs
    // (a large database), as with etcdctl.
    std::chrono::nanoseconds timeout{0};
    if (inv.flags().Changed("command-timeout")) timeout = inv.global().command_timeout;
    grpc::Status rpc = inv.client().Snapshot(timeout, [&](const std::string& blob) {
      size_t done = 0;
      while (done < blob.size()) {
        ssize_t n = write(fd, blob.data() + done, blob.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          write_error = OsError("write", part, errno);
          return false;
        }
        done += static_cast<size_t>(n);
      }
      return true;
    });
    if (write_error.empty() && rpc.ok() && fsync(fd) != 0) {
      write_error = OsError("sync", part, errno);
    }
    if (close(fd) != 0 && write_error.empty() && rpc.ok()) {
      write_error = OsError("close", part, errno);
    }
    if (!write_error.empty() || !rpc.ok()) {
      unlink(part.c_str());
      return Interrupted(inv, write_error.empty() ? ErrorText(rpc) : write_error);
    }
    if (rename(part.c_str(), path.c_str()) != 0) {
      std::string why = OsError("rename", part + " " + path, errno);
      unlink(part.c_str());
      return Interrupted(inv, "could not rename " + part + " to " + path + " (" + why + ")");
    }
    SyncParentDirectory(path);
    inv.io().out << "Snapshot saved at " << path << "\n";
    return kExitSuccess;
  }

 private:
  // etcdctl reports every failure of snapshot save with this exit code.
  static int Interrupted(Invocation& inv, const std::string& message) {
    return inv.Fail(CtlStatus::Fail(kExitInterrupted, message));
  }

  static void SyncParentDirectory(const std::string& path) {
    size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return;
    (void)fsync(dfd);
    close(dfd);
  }
};

}  // namespace

std::vector<CommandSpec> MaintenanceCommandSpecs() {
  return {
      {"alarm list", "", "list the active alarms",
       "An alarm (NOSPACE: the database reached its quota; CORRUPT: members'\n"
       "data differ) stops writes until it is cleared.",
       Make<AlarmListCommand>},
      {"alarm disarm", "", "clear every active alarm, printing those cleared",
       "Clear NOSPACE only once space was freed (compaction, then defrag), or\n"
       "the next write raises it again.",
       Make<AlarmDisarmCommand>},
      {"defrag", "", "give each endpoint's unused database space back to the file system",
       "Compacted history leaves free pages in a member's database file;\n"
       "defragmenting rewrites the file without them. A member serves no\n"
       "requests while it defragments, so do one member at a time.",
       Make<DefragCommand>},
      {"endpoint hashkv", "", "print a hash of each endpoint's key-value history",
       "Members that applied the same history have the same hash: a differing\n"
       "hash means corrupted or diverged data.",
       Make<EndpointHashKVCommand>},
      {"snapshot save", "<file>", "save a backup of a member's database to a file",
       "Streams the database of the member at --endpoints (exactly one) into\n"
       "<file>. The file appears only once complete: it is written as\n"
       "<file>.part first, then renamed.",
       Make<SnapshotSaveCommand>},
  };
}

}  // namespace etcdpp::ctl

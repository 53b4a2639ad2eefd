// alarm list|disarm, defrag, endpoint hashkv and snapshot save: etcdctl's
// commands on the Maintenance service; snapshot status and restore, which
// work on a saved file without a server.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "cmd/etcdppctl/commands.h"
#include "cmd/etcdppctl/go_format.h"
#include "cmd/etcdppctl/printer.h"
#include "server/restore.h"

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

// The summary etcdctl's `snapshot status` prints, in its formats; the
// values are etcdpp's (the hash is HashBackend's, the key count every
// record of every table).
class SnapshotStatusCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (inv.args().size() != 1) {
      return inv.Fail(
          CtlStatus::Fail(kExitBadArgs, "snapshot status requires exactly one argument"));
    }
    OutputFormat format;
    if (!ParseOutputFormat(inv.global().write_out, &format)) {
      return inv.Fail(CtlStatus::Fail(kExitBadFeature, "unsupported output format"));
    }
    if (format == OutputFormat::kProtobuf) {
      return inv.Fail(CtlStatus::Fail(kExitBadFeature, "not supported for protobuf output format"));
    }
    std::string data;
    Status st = server::ReadSnapshotFile(inv.args()[0], /*skip_hash_check=*/true, &data);
    if (!st.ok()) return inv.Fail(CtlStatus::Fail(kExitError, st.message()));
    auto scratch = ScratchDir();
    if (!scratch.ok()) return inv.Fail(CtlStatus::Fail(kExitError, scratch.status().message()));
    auto summary = server::SummarizeSnapshot(data, *scratch);
    if (!summary.ok()) return inv.Fail(CtlStatus::Fail(kExitError, summary.status().message()));
    std::ostream& out = inv.io().out;
    char hash[16];
    std::snprintf(hash, sizeof(hash), "%x", summary->hash);
    switch (format) {
      case OutputFormat::kJson:
        out << "{\"hash\":" << summary->hash << ",\"revision\":" << summary->revision
            << ",\"totalKey\":" << summary->total_keys << ",\"totalSize\":" << summary->total_size
            << "}\n";
        break;
      case OutputFormat::kFields:
        out << "\"Hash\" : " << summary->hash << "\n\"Revision\" : " << summary->revision
            << "\n\"Keys\" : " << summary->total_keys << "\n\"Size\" : " << summary->total_size
            << "\n";
        break;
      case OutputFormat::kTable:
        out << RenderTable(
            {"hash", "revision", "total keys", "total size"},
            {{hash, std::to_string(summary->revision), std::to_string(summary->total_keys),
              HumanizeBytes(summary->total_size)}});
        break;
      default:
        out << hash << ", " << summary->revision << ", " << summary->total_keys << ", "
            << HumanizeBytes(summary->total_size) << "\n";
    }
    return kExitSuccess;
  }

 private:
  static Result<std::string> ScratchDir() {
    std::error_code ec;
    std::filesystem::path base = std::filesystem::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string dir = (base / "etcdppctl-snapshot-XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) {
      return Status::IOError("create a scratch directory: " + std::string(strerror(errno)));
    }
    // SummarizeSnapshot creates the store directory itself.
    return dir + "/db";
  }
};

// Builds a data dir for a member of a new cluster from a snapshot file, as
// etcdctl does for etcd: the same flags, a new cluster and new member IDs
// (derived by the member from --initial-cluster and the token at its first
// start, as for any new cluster).
class SnapshotRestoreCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddString("data-dir", 0, &data_dir_, "",
                 "where to create the member's data (default: <name>.etcd); must not exist");
    f->AddString("wal-dir", 0, &wal_dir_, "", "not supported: the WAL lives in the data dir");
    f->AddString("name", 0, &name_, "default", "the name of the member being restored");
    f->AddString("initial-cluster", 0, &initial_cluster_, "default=http://localhost:2380",
                 "every member of the new cluster, name=peer-url,...");
    f->AddString("initial-cluster-token", 0, &token_, "etcd-cluster",
                 "the new cluster's token (start every member with the same one)");
    f->AddString("initial-advertise-peer-urls", 0, &peer_urls_, "http://localhost:2380",
                 "this member's peer URLs, as named in --initial-cluster");
    f->AddBool("skip-hash-check", 0, &skip_hash_check_, false,
               "accept a file without (or with a wrong) SHA-256 at its end");
  }

  int Run(Invocation& inv) override {
    if (inv.args().size() != 1) {
      return inv.Fail(
          CtlStatus::Fail(kExitBadArgs, "snapshot restore requires exactly one argument"));
    }
    if (!wal_dir_.empty()) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs,
                                      "--wal-dir is not supported: etcdpp keeps the WAL in the "
                                      "data dir"));
    }
    Status st = CheckMembership();
    if (!st.ok()) return inv.Fail(CtlStatus::Fail(kExitBadArgs, st.message()));
    const std::string data_dir = data_dir_.empty() ? name_ + ".etcd" : data_dir_;
    std::error_code ec;
    if (std::filesystem::exists(data_dir, ec)) {
      return inv.Fail(CtlStatus::Fail(kExitError, "data-dir \"" + data_dir + "\" exists"));
    }
    std::string data;
    st = server::ReadSnapshotFile(inv.args()[0], skip_hash_check_, &data);
    if (!st.ok()) return inv.Fail(CtlStatus::Fail(kExitError, st.message()));
    // The layout the member expects (server/bootstrap.h): the store at
    // member/snap/db; no WAL yet, so it starts as a founder.
    st = server::WriteRestoredStore(data, data_dir + "/member/snap/db");
    if (!st.ok()) {
      std::filesystem::remove_all(data_dir, ec);
      return inv.Fail(CtlStatus::Fail(kExitError, st.message()));
    }
    inv.io().err << "restored snapshot " << inv.args()[0] << " into " << data_dir << " for member "
                 << name_ << " of a new cluster (" << initial_cluster_ << ")\n";
    return kExitSuccess;
  }

 private:
  static std::vector<std::string> SplitSorted(const std::string& list) {
    std::vector<std::string> out;
    std::stringstream in(list);
    for (std::string item; std::getline(in, item, ',');) {
      if (!item.empty()) out.push_back(item);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // This member must be in --initial-cluster with exactly its peer URLs,
  // or the new cluster would not find it at its first start.
  Status CheckMembership() const {
    std::map<std::string, std::vector<std::string>> members;
    for (const std::string& entry : SplitSorted(initial_cluster_)) {
      const size_t eq = entry.find('=');
      if (eq == std::string::npos || eq == 0) {
        return Status::InvalidArgument("--initial-cluster entry \"" + entry + "\" is not name=url");
      }
      members[entry.substr(0, eq)].push_back(entry.substr(eq + 1));
    }
    auto self = members.find(name_);
    if (self == members.end()) {
      return Status::InvalidArgument("member \"" + name_ + "\" is not in --initial-cluster");
    }
    std::sort(self->second.begin(), self->second.end());
    if (self->second != SplitSorted(peer_urls_)) {
      return Status::InvalidArgument("--initial-cluster gives member \"" + name_ +
                                     "\" other peer URLs than --initial-advertise-peer-urls");
    }
    return Status::OK();
  }

  std::string data_dir_;
  std::string wal_dir_;
  std::string name_;
  std::string initial_cluster_;
  std::string token_;
  std::string peer_urls_;
  bool skip_hash_check_ = false;
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
       "defragmenting rewrites the file without them. Writes wait while a\n"
       "member defragments (etcd also stops serving reads), so do one member\n"
       "at a time.",
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
      {"snapshot status", "<file>", "print the hash, revision, key count and size of a backup",
       "Reads a file written by `snapshot save` from etcdpp. etcd's files hold\n"
       "another database format and cannot be read.",
       Make<SnapshotStatusCommand>},
      {"snapshot restore", "<file>", "create a new member's data dir from a backup",
       "Run it once per member of the new cluster, with the same\n"
       "--initial-cluster and --initial-cluster-token and each member's own\n"
       "--name and --initial-advertise-peer-urls; then start each member with\n"
       "those flags and its --data-dir. The new cluster has every key,\n"
       "revision and lease of the backup, a new cluster ID and new member IDs.",
       Make<SnapshotRestoreCommand>},
  };
}

}  // namespace etcdpp::ctl

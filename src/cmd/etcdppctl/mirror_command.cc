// make-mirror: copies a key range of one cluster into another and keeps the
// copy current by watching the source, as etcdctl 3.4's make-mirror does.
//
// The copy is a snapshot at one source revision R (read page by page at R,
// so later writes cannot tear it), followed by a watch from R + 1: every
// write after R reaches the destination exactly once. Events of one source
// revision are applied in one destination transaction, so a source
// transaction stays atomic on the other side.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "cmd/etcdppctl/commands.h"
#include "cmd/etcdppctl/kv_ops.h"
#include "tls/grpc_credentials.h"

namespace etcdpp::ctl {
namespace {

// etcdctl prints the running total this often; ETCDPPCTL_MIRROR_REPORT_INTERVAL
// (whole seconds) shortens it for tests.
constexpr std::chrono::seconds kDefaultReportInterval{30};
// etcdctl's mirror calls have no deadline: an unreachable source or
// destination is waited for, not given up on. Ours end after this long
// (a bound far enough away to mean "never" yet safe to add to a clock).
constexpr std::chrono::hours kNoDeadline{24 * 365 * 10};
// Keys per Range page of the initial copy.
constexpr int64_t kPageSize = 1000;

class MakeMirrorCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddString("prefix", 0, &prefix_, "", "copy only the keys that start with this prefix");
    f->AddString("dest-prefix", 0, &dest_prefix_, "",
                 "write the copies under this prefix instead of --prefix");
    f->AddBool("no-dest-prefix", 0, &no_dest_prefix_, false,
               "drop --prefix from the copied keys' names");
    f->AddString("dest-cacert", 0, &dest_cacert_, "",
                 "PEM file of the CAs the destination's certificate must chain to");
    f->AddString("dest-cert", 0, &dest_cert_, "",
                 "PEM client certificate to present to the destination");
    f->AddString("dest-key", 0, &dest_key_, "", "PEM private key of --dest-cert");
    f->AddBool("dest-insecure-transport", 0, &dest_insecure_transport_, true,
               "with false, use TLS to the destination even without certificate flags");
  }

  int Run(Invocation& inv) override {
    if (inv.args().size() != 1) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "make-mirror takes one destination argument"));
    }
    if (no_dest_prefix_ && !dest_prefix_.empty()) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs,
                                      "`--dest-prefix` and `--no-dest-prefix` cannot be set at "
                                      "the same time, choose one"));
    }
    // Without either flag a key keeps its name.
    if (!no_dest_prefix_ && dest_prefix_.empty()) dest_prefix_ = prefix_;

    ClientOptions dest;
    dest.endpoints = {inv.args()[0]};
    dest.dial_timeout = inv.global().dial_timeout;
    dest.command_timeout = kNoDeadline;
    dest.cacert_file = dest_cacert_;
    dest.cert_file = dest_cert_;
    dest.key_file = dest_key_;
    dest.insecure_transport = dest_insecure_transport_;
    if (!dest_cacert_.empty() || !dest_cert_.empty() || !dest_key_.empty()) {
      auto checked = tls::ClientChannelCredentials({dest_cacert_, dest_cert_, dest_key_, false});
      if (!checked.ok()) return inv.Fail(CtlStatus::Fail(kExitBadArgs, checked.status().message()));
    }
    if (auto rc = inv.PrepareClient()) return *rc;
    Client destination(dest);
    ClientOptions source_options = inv.client().options();
    source_options.command_timeout = kNoDeadline;
    Client source(source_options);

    std::chrono::seconds interval = ReportInterval(inv);
    Canceller stop_reports;
    std::thread reporter([&] {
      while (!stop_reports.WaitFor(interval)) {
        inv.io().out << copied_.load() << "\n";
        inv.io().out.flush();
      }
    });
    grpc::Status st = Mirror(source, destination);
    stop_reports.Cancel();
    reporter.join();
    return inv.Fail(CtlStatus::Fail(kExitError, ErrorText(st)));
  }

 private:
  std::chrono::seconds ReportInterval(Invocation& inv) const {
    const std::string name = "ETCDPPCTL_MIRROR_REPORT_INTERVAL=";
    for (const std::string& entry : inv.io().environ) {
      if (entry.rfind(name, 0) != 0) continue;
      long seconds = std::strtol(entry.c_str() + name.size(), nullptr, 10);
      if (seconds > 0) return std::chrono::seconds(seconds);
    }
    return kDefaultReportInterval;
  }

  // The destination's name for a source key: the first occurrence of
  // --prefix replaced by the destination prefix (etcdctl replaces the first
  // occurrence, which for keys selected by the prefix is its start).
  std::string DestinationKey(const std::string& key) const {
    if (prefix_.empty()) return dest_prefix_ + key;
    size_t at = key.find(prefix_);
    if (at == std::string::npos) return key;
    return key.substr(0, at) + dest_prefix_ + key.substr(at + prefix_.size());
  }

  // Runs until a call fails; returns that failure.
  grpc::Status Mirror(Client& source, Client& destination) {
    // The revision the copy is taken at.
    etcdserverpb::RangeRequest probe;
    probe.set_key("foo");
    etcdserverpb::RangeResponse probed;
    grpc::Status st = source.Range(probe, &probed);
    if (!st.ok()) return st;
    const int64_t revision = probed.header().revision();

    const std::string range_start = prefix_.empty() ? std::string(1, '\0') : prefix_;
    const std::string range_end = prefix_.empty() ? std::string(1, '\0') : PrefixRangeEnd(prefix_);
    etcdserverpb::RangeRequest page;
    page.set_key(range_start);
    page.set_range_end(range_end);
    page.set_revision(revision);
    page.set_limit(kPageSize);
    while (true) {
      etcdserverpb::RangeResponse got;
      st = source.Range(page, &got);
      if (!st.ok()) return st;
      for (const auto& kv : got.kvs()) {
        etcdserverpb::PutRequest put;
        put.set_key(DestinationKey(kv.key()));
        put.set_value(kv.value());
        etcdserverpb::PutResponse put_resp;
        st = destination.Put(put, &put_resp);
        if (!st.ok()) return st;
        copied_.fetch_add(1);
      }
      if (!got.more() || got.kvs_size() == 0) break;
      page.set_key(got.kvs(got.kvs_size() - 1).key() + std::string(1, '\0'));
    }

    etcdserverpb::WatchCreateRequest create;
    create.set_key(range_start);
    create.set_range_end(range_end);
    create.set_start_revision(revision + 1);
    grpc::Status failure = grpc::Status::OK;
    st = source.Watch(create, [&](const etcdserverpb::WatchResponse& resp) {
      if (resp.compact_revision() != 0) {
        failure = grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                               "etcdserver: mvcc: required revision has been compacted");
        return false;
      }
      etcdserverpb::TxnRequest txn;
      int64_t txn_revision = 0;
      auto commit = [&]() -> bool {
        if (txn.success_size() == 0) return true;
        etcdserverpb::TxnResponse txn_resp;
        failure = destination.Txn(txn, &txn_resp);
        txn.Clear();
        return failure.ok();
      };
      for (const auto& event : resp.events()) {
        if (event.kv().mod_revision() != txn_revision && !commit()) return false;
        txn_revision = event.kv().mod_revision();
        etcdserverpb::RequestOp* op = txn.add_success();
        if (event.type() == mvccpb::Event::PUT) {
          op->mutable_request_put()->set_key(DestinationKey(event.kv().key()));
          op->mutable_request_put()->set_value(event.kv().value());
        } else {
          op->mutable_request_delete_range()->set_key(DestinationKey(event.kv().key()));
        }
        copied_.fetch_add(1);
      }
      if (!commit()) return false;
      if (resp.canceled()) {
        failure = grpc::Status(grpc::StatusCode::CANCELLED, resp.cancel_reason());
        return false;
      }
      return true;
    });
    if (!failure.ok()) return failure;
    if (!st.ok()) return st;
    return grpc::Status(grpc::StatusCode::CANCELLED, "watch is canceled by the server");
  }

  std::string prefix_, dest_prefix_;
  bool no_dest_prefix_ = false;
  std::string dest_cacert_, dest_cert_, dest_key_;
  bool dest_insecure_transport_ = true;
  // Keys written and deleted on the destination so far; read by the
  // reporting thread.
  std::atomic<int64_t> copied_{0};
};

}  // namespace

std::vector<CommandSpec> MirrorCommandSpecs() {
  return {
      {"make-mirror", "<destination>", "copy keys to another cluster and keep the copy current",
       "Copies every key (or those under --prefix) from the cluster of --endpoints\n"
       "to the cluster at <destination>, then applies each later change as it\n"
       "happens, one destination transaction per source revision. Runs until\n"
       "interrupted or until a request fails. Every 30 seconds it prints how\n"
       "many puts and deletes it has applied so far.\n"
       "\n"
       "Keys keep their names, unless --dest-prefix puts the copies under another\n"
       "prefix or --no-dest-prefix strips --prefix from them.",
       Make<MakeMirrorCommand>},
  };
}

}  // namespace etcdpp::ctl

// lock and elect: etcdctl 3.4's distributed lock and leader election, on the
// server's Lock and Election services (v3lockpb, v3electionpb).
//
// Both hold a lease for as long as they run (a "session"): the lock's key
// or the candidate's key is attached to it, so a crashed etcdppctl lets go
// once the lease expires. Both end cleanly on SIGINT or SIGTERM (unlock or
// resign, exit 0) and fail when the lease is lost.
#include <pthread.h>

#include <atomic>
#include <csignal>
#include <functional>
#include <thread>

#include "cmd/etcdppctl/child_process.h"
#include "cmd/etcdppctl/commands.h"
#include "cmd/etcdppctl/go_format.h"

namespace etcdpp::ctl {
namespace {

// Turns SIGINT and SIGTERM into a call of `on_interrupt` on a thread of its
// own, so a command can clean up before exiting. The signals are blocked in
// the constructing thread, and so in every thread created after it: build it
// before the command's first RPC (which starts gRPC's threads).
class InterruptWatch {
 public:
  explicit InterruptWatch(std::function<void()> on_interrupt) {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    sigaddset(&signals_, kStopSignal);
    pthread_sigmask(SIG_BLOCK, &signals_, &old_mask_);
    thread_ = std::thread([this, on_interrupt = std::move(on_interrupt)] {
      while (true) {
        int sig = 0;
        if (sigwait(&signals_, &sig) != 0) continue;
        if (sig == kStopSignal && stopping_.load()) return;
        if (sig == SIGINT || sig == SIGTERM) on_interrupt();
      }
    });
  }

  ~InterruptWatch() {
    stopping_.store(true);
    pthread_kill(thread_.native_handle(), kStopSignal);
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }

  InterruptWatch(const InterruptWatch&) = delete;
  InterruptWatch& operator=(const InterruptWatch&) = delete;

 private:
  // Sent to the watching thread alone to end it.
  static constexpr int kStopSignal = SIGUSR2;

  sigset_t signals_;
  sigset_t old_mask_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// Why a command holding a lock or a leadership stops waiting. Written by the
// signal and keep-alive threads, read by the command's thread; `wake`
// cancels whatever the command thread is blocked in. Thread-safe.
struct StopReasons {
  std::atomic<bool> interrupted{false};
  std::atomic<bool> lease_lost{false};
  Canceller wake;
};

// A lease granted for the command and renewed by a thread of its own, like
// clientv3's concurrency.Session. Owned by the command's thread; the
// keep-alive thread uses its own Client (Client is single-threaded).
class Session {
 public:
  Session(const ClientOptions& options, StopReasons* reasons)
      : options_(options), reasons_(reasons) {}

  ~Session() { Stop(); }

  // Grants the lease with `client` and starts renewing it.
  grpc::Status Open(Client& client, int64_t ttl) {
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(ttl);
    etcdserverpb::LeaseGrantResponse resp;
    grpc::Status st = client.LeaseGrant(req, &resp);
    if (!st.ok()) return st;
    lease_ = resp.id();
    keeper_ = std::thread([this] {
      Client keeper(options_);
      grpc::Status end = keeper.LeaseKeepAliveLoop(
          lease_, [](const etcdserverpb::LeaseKeepAliveResponse&) {}, &stop_keeping_);
      if (!stop_keeping_.cancelled()) {
        // Expired, revoked, or the stream failed for good: whatever the
        // lease held is no longer ours.
        (void)end;
        reasons_->lease_lost.store(true);
        reasons_->wake.Cancel();
      }
    });
    return grpc::Status::OK;
  }

  int64_t lease() const { return lease_; }

  // Stops renewing and revokes the lease, so what it held goes at once
  // rather than after its TTL.
  void Close(Client& client) {
    Stop();
    if (lease_ == 0) return;
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(lease_);
    etcdserverpb::LeaseRevokeResponse resp;
    (void)client.LeaseRevoke(req, &resp);
    lease_ = 0;
  }

 private:
  void Stop() {
    stop_keeping_.Cancel();
    if (keeper_.joinable()) keeper_.join();
  }

  ClientOptions options_;
  StopReasons* reasons_;
  int64_t lease_ = 0;
  Canceller stop_keeping_;
  std::thread keeper_;
};

// Prints the key `key` as `get` would (etcdctl shows the lock's or the
// leader's key this way). Returns an exit code when it could not.
std::optional<int> PrintKey(Invocation& inv, const std::string& key, const char* when_missing) {
  etcdserverpb::RangeRequest req;
  req.set_key(key);
  etcdserverpb::RangeResponse resp;
  grpc::Status st = inv.client().Range(req, &resp);
  if (!st.ok()) return inv.RpcFailure(st);
  if (resp.kvs_size() == 0) return inv.Fail(CtlStatus::Fail(kExitError, when_missing));
  auto printer = inv.MakePrinter();
  if (!printer->SupportsKV()) return inv.Unsupported();
  printer->Get(resp);
  inv.io().out.flush();
  return std::nullopt;
}

// The text etcdctl prints for a failed call of a waiting command.
int CallFailure(Invocation& inv, const grpc::Status& st) {
  return inv.Fail(CtlStatus::Fail(kExitError, ErrorText(st)));
}

class LockCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddInt64("ttl", 0, &ttl_, 10,
                "seconds the lock outlives etcdppctl if it dies without unlocking (the "
                "session lease's TTL)");
  }

  int Run(Invocation& inv) override {
    if (inv.args().empty()) {
      return inv.Fail(CtlStatus::Fail(
          kExitBadArgs, "lock takes a lock name argument and an optional command to execute"));
    }
    const std::string& name = inv.args()[0];
    std::vector<std::string> program(inv.args().begin() + 1, inv.args().end());
    StopReasons reasons;
    InterruptWatch interrupts([&reasons] {
      reasons.interrupted.store(true);
      reasons.wake.Cancel();
    });
    if (auto rc = inv.PrepareClient()) return *rc;
    Session session(inv.client().options(), &reasons);
    if (grpc::Status st = session.Open(inv.client(), ttl_); !st.ok()) {
      return CallFailure(inv, st);
    }
    v3lockpb::LockRequest req;
    req.set_name(name);
    req.set_lease(session.lease());
    v3lockpb::LockResponse locked;
    if (grpc::Status st = inv.client().Lock(req, &reasons.wake, &locked); !st.ok()) {
      session.Close(inv.client());
      return CallFailure(inv, st);
    }
    int rc = program.empty() ? HoldUntilStopped(inv, locked.key(), reasons)
                             : RunHoldingLock(inv, program, locked);
    session.Close(inv.client());
    return rc;
  }

 private:
  // `lock <name> <program...>`: runs the program while holding the lock,
  // with ETCD_LOCK_KEY and ETCD_LOCK_REV set, then unlocks. Its failure is
  // the command's (exit 1).
  int RunHoldingLock(Invocation& inv, const std::vector<std::string>& program,
                     const v3lockpb::LockResponse& locked) {
    std::vector<std::string> env = {"ETCD_LOCK_KEY=" + locked.key(),
                                    "ETCD_LOCK_REV=" + std::to_string(locked.header().revision())};
    env.insert(env.end(), inv.io().environ.begin(), inv.io().environ.end());
    std::optional<std::string> failed = RunChild(program, env);
    grpc::Status unlocked = Unlock(inv, locked.key());
    if (failed) return inv.Fail(CtlStatus::Fail(kExitError, *failed));
    if (!unlocked.ok()) return CallFailure(inv, unlocked);
    return kExitSuccess;
  }

  // `lock <name>`: prints the lock's key and holds the lock until
  // interrupted (then unlocks, exit 0) or until the lease is lost.
  int HoldUntilStopped(Invocation& inv, const std::string& key, StopReasons& reasons) {
    if (auto rc = PrintKey(inv, key, "lock lost on init")) return *rc;
    while (!reasons.wake.WaitFor(std::chrono::hours(24))) {
    }
    if (reasons.lease_lost.load() && !reasons.interrupted.load()) {
      return inv.Fail(CtlStatus::Fail(kExitError, "session expired"));
    }
    grpc::Status unlocked = Unlock(inv, key);
    if (!unlocked.ok()) return CallFailure(inv, unlocked);
    return kExitSuccess;
  }

  static grpc::Status Unlock(Invocation& inv, const std::string& key) {
    v3lockpb::UnlockRequest req;
    req.set_key(key);
    v3lockpb::UnlockResponse resp;
    return inv.client().Unlock(req, &resp);
  }

  int64_t ttl_ = 10;
};

class ElectCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddBool("listen", 'l', &listen_, false,
               "observe: print each leader's proposal as leadership changes, without "
               "campaigning");
  }

  int Run(Invocation& inv) override {
    if (inv.args().size() != 1 && inv.args().size() != 2) {
      return inv.Fail(CtlStatus::Fail(
          kExitBadArgs,
          "elect takes one election name argument and an optional proposal argument"));
    }
    if (inv.args().size() == 1 && !listen_) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "no proposal argument but -l not set"));
    }
    StopReasons reasons;
    InterruptWatch interrupts([&reasons] {
      reasons.interrupted.store(true);
      reasons.wake.Cancel();
    });
    if (auto rc = inv.PrepareClient()) return *rc;
    if (inv.args().size() == 1) return Observe(inv, inv.args()[0], reasons);
    return Campaign(inv, inv.args()[0], inv.args()[1], reasons);
  }

 private:
  // Prints every leader the election has, as `get` prints a key, until
  // interrupted (exit 0). The stream ending otherwise is a failure.
  int Observe(Invocation& inv, const std::string& name, StopReasons& reasons) {
    auto printer = inv.MakePrinter();
    if (!printer->SupportsKV()) return inv.Unsupported();
    v3electionpb::LeaderRequest req;
    req.set_name(name);
    grpc::Status st =
        inv.client().Observe(req, &reasons.wake, [&](const v3electionpb::LeaderResponse& leader) {
          // etcdctl prints a response holding just the header and the key.
          etcdserverpb::RangeResponse as_get;
          *as_get.mutable_header() = leader.header();
          *as_get.add_kvs() = leader.kv();
          printer->Get(as_get);
          inv.io().out.flush();
        });
    if (reasons.interrupted.load()) return kExitSuccess;
    (void)st;
    return inv.Fail(CtlStatus::Fail(kExitError, "elect: observer lost"));
  }

  // Campaigns with `proposal`; once leader, prints the leader key and stays
  // leader until interrupted (then resigns, exit 0) or the lease is lost.
  int Campaign(Invocation& inv, const std::string& name, const std::string& proposal,
               StopReasons& reasons) {
    Session session(inv.client().options(), &reasons);
    if (grpc::Status st = session.Open(inv.client(), kSessionTtlSeconds); !st.ok()) {
      return CallFailure(inv, st);
    }
    v3electionpb::CampaignRequest req;
    req.set_name(name);
    req.set_lease(session.lease());
    req.set_value(proposal);
    v3electionpb::CampaignResponse elected;
    if (grpc::Status st = inv.client().Campaign(req, &reasons.wake, &elected); !st.ok()) {
      session.Close(inv.client());
      return CallFailure(inv, st);
    }
    int rc = kExitSuccess;
    if (auto failed = PrintKey(inv, elected.leader().key(), "elect: leader key lost")) {
      rc = *failed;
    } else {
      while (!reasons.wake.WaitFor(std::chrono::hours(24))) {
      }
      if (reasons.lease_lost.load() && !reasons.interrupted.load()) {
        rc = inv.Fail(CtlStatus::Fail(kExitError, "elect: session expired"));
      } else {
        v3electionpb::ResignRequest resign;
        *resign.mutable_leader() = elected.leader();
        v3electionpb::ResignResponse resigned;
        grpc::Status st = inv.client().Resign(resign, &resigned);
        if (!st.ok()) rc = CallFailure(inv, st);
      }
    }
    session.Close(inv.client());
    return rc;
  }

  // etcdctl's elect has no --ttl: its session keeps clientv3's default.
  static constexpr int64_t kSessionTtlSeconds = 60;

  bool listen_ = false;
};

}  // namespace

std::vector<CommandSpec> ConcurrencyCommandSpecs() {
  return {
      {"lock", "<name> [-- <command> [args...]]", "take a distributed lock",
       "Waits until the lock called <name> is free and takes it. Without a\n"
       "command, prints the lock's key and holds the lock until interrupted\n"
       "(Ctrl-C or SIGTERM), then releases it. With a command, runs it while\n"
       "holding the lock, with ETCD_LOCK_KEY and ETCD_LOCK_REV in its\n"
       "environment, releases the lock when it ends and fails if it failed.\n"
       "Put `--` before a command that has flags of its own.",
       Make<LockCommand>},
      {"elect", "<election> [proposal]", "campaign for leadership, or watch who leads",
       "With [proposal], waits to become the leader of <election>, prints the\n"
       "leader key and its proposal, and stays leader until interrupted (then\n"
       "resigns). With -l and no proposal, prints each leader's key and\n"
       "proposal as leadership changes, until interrupted.",
       Make<ElectCommand>},
  };
}

}  // namespace etcdpp::ctl

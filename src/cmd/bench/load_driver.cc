#include "cmd/bench/load_driver.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <grpcpp/alarm.h>

#include "cmd/bench/stream_channel.h"

namespace etcdpp::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Slot;

// What the queue yields for a slot: its call ended, or its paced wait did.
struct SlotTag {
  Slot* slot;
  bool due;  // the alarm of a request waiting for its turn (LoadOptions::rate)
};

// A client: one Call and the bookkeeping of its current request.
struct Slot {
  std::unique_ptr<Call> call;
  etcdserverpb::KV::Stub* stub = nullptr;
  // gRPC forbids reusing a context; emplacing a new one in place at least
  // spares a heap allocation per request.
  std::optional<grpc::ClientContext> context;
  Clock::time_point started;
  // A paced request waits for its turn on this alarm; `waiting_seq` is its number.
  grpc::Alarm alarm;
  int64_t waiting_seq = -1;
  SlotTag call_tag{this, false};
  SlotTag due_tag{this, true};
};

// Drives the slots of one completion queue until none has work left.
void RunWorker(std::vector<Slot*> slots, LoadProgress* shared, ThreadResult* result) {
  grpc::CompletionQueue queue;
  auto send = [&](Slot* slot, int64_t seq) {
    slot->context.reset();
    slot->context.emplace();
    slot->started = Clock::now();
    slot->context->set_deadline(std::chrono::system_clock::now() + shared->request_timeout);
    slot->call->Start(slot->stub, &*slot->context, seq, &queue, &slot->call_tag);
  };
  // Claims the next request number and sends it, or sets the slot's alarm
  // for when it is due; false when the load is done.
  auto start_next = [&](Slot* slot) {
    int64_t seq = shared->next_seq.fetch_add(1, std::memory_order_relaxed);
    if (seq >= shared->total) return false;
    if (shared->rate > 0) {
      const Clock::time_point due = shared->DueTime(seq);
      const Clock::time_point now = Clock::now();
      if (due > now) {
        slot->waiting_seq = seq;
        slot->alarm.Set(
            &queue,
            std::chrono::system_clock::now() +
                std::chrono::duration_cast<std::chrono::system_clock::duration>(due - now),
            &slot->due_tag);
        return true;
      }
    }
    send(slot, seq);
    return true;
  };
  // Room for every request this thread could complete, so recording a
  // latency never reallocates during the load.
  result->latencies_s.reserve(static_cast<size_t>(shared->total));
  // Slots with a call or an alarm outstanding.
  int64_t in_flight = 0;
  for (Slot* slot : slots) {
    if (start_next(slot)) ++in_flight;
  }
  void* tag = nullptr;
  bool ok = false;
  while (in_flight > 0 && queue.Next(&tag, &ok)) {
    const SlotTag& slot_tag = *static_cast<SlotTag*>(tag);
    Slot* slot = slot_tag.slot;
    if (slot_tag.due) {
      send(slot, slot->waiting_seq);
      slot->waiting_seq = -1;
      continue;
    }
    Clock::time_point now = Clock::now();
    result->last_completion = now;
    --in_flight;
    const grpc::Status& status = slot->call->status();
    if (ok && status.ok()) {
      result->latencies_s.push_back(std::chrono::duration<double>(now - slot->started).count());
    } else {
      ++result->errors[ok ? ErrorMessage(status) : "completion queue failure"];
    }
    if (start_next(slot)) ++in_flight;
  }
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
}

}  // namespace

std::string ErrorMessage(const grpc::Status& status) {
  static const char* const kCodeNames[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  int code = static_cast<int>(status.error_code());
  const char* name = code >= 0 && code <= 16 ? kCodeNames[code] : "Unknown";
  return fmt::format("rpc error: code = {} desc = {}", name, status.error_message());
}

std::string LoadOptionsError(const LoadOptions& options) {
  if (options.endpoints.empty() || options.conns < 1 || options.clients < 1 ||
      options.threads < 1 || options.total < 1) {
    return "endpoints, conns, clients, threads and total must be positive";
  }
  if (!(options.rate >= 0)) return "rate must not be negative";
  return "";
}

void MergeThreadResults(const std::vector<ThreadResult>& threads, Clock::time_point start,
                        LoadResult* result) {
  Clock::time_point end = start;
  for (const ThreadResult& t : threads) {
    end = std::max(end, t.last_completion);
    result->latencies_s.insert(result->latencies_s.end(), t.latencies_s.begin(),
                               t.latencies_s.end());
    for (const auto& [message, count] : t.errors) result->errors[message] += count;
  }
  result->total_s = std::chrono::duration<double>(end - start).count();
}

LoadResult RunLoad(const LoadOptions& options, const CallFactory& make_call) {
  LoadResult result;
  result.setup_error = LoadOptionsError(options);
  if (!result.setup_error.empty()) return result;

  // Distinct channel arguments and a local subchannel pool give every
  // channel its own TCP connection, like etcd's --conns.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;
  for (int i = 0; i < options.conns; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("etcdpp.bench.connection_index", i);
    // A failed request counts as failed, as in etcd's tool; gRPC's retry
    // layer (on by default) would only add its per-call bookkeeping:
    // measured about 20 % of the benchmark's CPU per request (BENCHMARKS.md).
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    const std::string target = StripScheme(options.endpoints[i % options.endpoints.size()]);
    auto channel = grpc::CreateCustomChannel(
        target,
        options.credentials != nullptr ? options.credentials : grpc::InsecureChannelCredentials(),
        args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + options.connect_timeout)) {
      result.setup_error = fmt::format("cannot connect to {}", target);
      return result;
    }
    stubs.push_back(etcdserverpb::KV::NewStub(channel));
    channels.push_back(std::move(channel));
  }

  std::vector<Slot> slots(static_cast<size_t>(options.clients));
  for (int i = 0; i < options.clients; ++i) {
    slots[i].call = make_call(i);
    slots[i].stub = stubs[i % stubs.size()].get();
  }

  LoadProgress shared;
  shared.total = options.total;
  shared.request_timeout = options.request_timeout;
  shared.rate = options.rate;
  const int threads = std::min(options.threads, options.clients);
  std::vector<std::vector<Slot*>> slots_by_thread(static_cast<size_t>(threads));
  for (int i = 0; i < options.clients; ++i) slots_by_thread[i % threads].push_back(&slots[i]);
  std::vector<ThreadResult> worker_results(static_cast<size_t>(threads));

  const Clock::time_point start = Clock::now();
  shared.start = start;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back(RunWorker, slots_by_thread[t], &shared, &worker_results[t]);
  }
  for (auto& w : workers) w.join();

  MergeThreadResults(worker_results, start, &result);
  return result;
}

}  // namespace etcdpp::bench

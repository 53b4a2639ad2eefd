#include "cmd/bench/h2_load_driver.h"

#include <algorithm>
#include <atomic>
#include <queue>
#include <thread>

#include <fmt/format.h>

#include "cmd/bench/h2_client.h"
#include "cmd/bench/stream_channel.h"

namespace etcdpp::bench {
namespace {

using Clock = std::chrono::steady_clock;

// How often a loop looks for calls past their deadline.
constexpr auto kDeadlineScan = std::chrono::milliseconds(50);

// One client: its Call and the HTTP/2 stream of its current request.
struct Client : H2Call {
  std::unique_ptr<Call> call;
  H2Connection* connection = nullptr;
  Clock::time_point started;
  bool in_flight = false;
  bool past_deadline = false;
};

// One thread: its connections and their clients.
class Loop final : public H2CallObserver {
 public:
  Loop(LoadProgress* progress, ThreadResult* result) : progress_(progress), result_(result) {}

  void Add(std::unique_ptr<H2Connection> connection) {
    connections_.push_back(std::move(connection));
  }
  void AddClient(Client* client) { clients_.push_back(client); }
  void Run();

  // The call on a client ended; its next one starts once the connection's
  // input has been taken.
  void OnClose(H2Call& call, uint32_t error_code) override;

 private:
  // Claims the next request number and submits it, or parks the client
  // until the number is due (LoadOptions::rate); false when the load is done.
  bool StartNext(Client& client);
  // Sends request `seq` on the client's connection; false if it is dead.
  bool Submit(Client& client, int64_t seq);
  // Submits the parked clients whose request is due by `now`; how many.
  int SubmitDue(Clock::time_point now);
  void Fail(const std::string& error) { ++result_->errors[error]; }
  void ScanDeadlines(Clock::time_point now);

  LoadProgress* const progress_;
  ThreadResult* const result_;
  std::vector<std::unique_ptr<H2Connection>> connections_;
  std::vector<Client*> clients_;
  std::vector<Client*> done_;  // completed during the last input, to restart
  // Clients whose next request is not yet due, soonest first, with its number.
  using Parked = std::pair<Clock::time_point, std::pair<int64_t, Client*>>;
  std::priority_queue<Parked, std::vector<Parked>, std::greater<>> parked_;
  int64_t in_flight_ = 0;
  bool lost_connection_ = false;  // the calls of dead connections are yet to be failed
};

bool Loop::StartNext(Client& client) {
  if (!client.connection->alive()) return false;
  const int64_t seq = progress_->next_seq.fetch_add(1, std::memory_order_relaxed);
  if (seq >= progress_->total) return false;
  if (progress_->rate > 0) {
    const Clock::time_point due = progress_->DueTime(seq);
    if (due > Clock::now()) {
      parked_.push({due, {seq, &client}});
      return true;
    }
  }
  return Submit(client, seq);
}

int Loop::SubmitDue(Clock::time_point now) {
  int submitted = 0;
  while (!parked_.empty() && parked_.top().first <= now) {
    const auto [seq, client] = parked_.top().second;
    parked_.pop();
    if (Submit(*client, seq)) {
      ++submitted;
    } else {
      // Its request number is spent: counted as failed, as a call of a
      // connection that died in flight is.
      Fail("rpc error: code = Unavailable desc = connection lost");
    }
  }
  return submitted;
}

bool Loop::Submit(Client& client, int64_t seq) {
  if (!client.connection->alive()) return false;
  client.out.clear();
  client.sent = 0;
  AppendFramed(client.call->Prepare(seq), &client.out);
  client.past_deadline = false;
  client.started = Clock::now();
  if (!client.connection->Submit(client.call->path(), client)) {
    Fail("rpc error: code = Unavailable desc = the connection refused a stream");
    return false;
  }
  client.in_flight = true;
  ++in_flight_;
  return true;
}

void Loop::OnClose(H2Call& call, uint32_t error_code) {
  Client& client = static_cast<Client&>(call);
  if (!client.in_flight) return;
  client.in_flight = false;
  --in_flight_;
  const Clock::time_point now = Clock::now();
  result_->last_completion = now;
  done_.push_back(&client);
  if (client.past_deadline) {
    return Fail(ErrorMessage(
        grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "context deadline exceeded")));
  }
  if (client.grpc_status.empty()) {
    return Fail(
        ErrorMessage(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                  fmt::format("stream ended without a status (HTTP/2 error {})",
                                              nghttp2_http2_strerror(error_code)))));
  }
  if (client.grpc_status != "0") {
    const int code = std::atoi(client.grpc_status.c_str());
    return Fail(
        ErrorMessage(grpc::Status(static_cast<grpc::StatusCode>(code), client.grpc_message)));
  }
  // One uncompressed message of the method's response type, nothing else.
  std::string_view message;
  size_t consumed = 0;
  bool bad = false;
  if (!CutMessage(client.in, &message, &consumed, &bad) || consumed != client.in.size() ||
      !client.call->response().ParseFromArray(message.data(), static_cast<int>(message.size()))) {
    return Fail(ErrorMessage(grpc::Status(grpc::StatusCode::INTERNAL,
                                          "the reply is not one message of the method's "
                                          "response type")));
  }
  result_->latencies_s.push_back(std::chrono::duration<double>(now - client.started).count());
}

void Loop::ScanDeadlines(Clock::time_point now) {
  for (Client* client : clients_) {
    if (!client->in_flight || client->past_deadline) continue;
    if (now - client->started < progress_->request_timeout) continue;
    // Its stream's close (after the reset) counts it as past its deadline.
    client->past_deadline = true;
    client->connection->Cancel(*client);
  }
}

void Loop::Run() {
  result_->latencies_s.reserve(static_cast<size_t>(progress_->total));
  H2Poller poller;
  for (auto& conn : connections_) poller.Add(conn.get());
  // Every client starts as if its previous call had just ended.
  done_ = clients_;
  auto next_scan = Clock::now() + kDeadlineScan;
  for (;;) {
    // Ended calls make way for their clients' next ones; a flush may end
    // more (a reset going out closes its stream), hence the loop.
    do {
      std::vector<Client*> done;
      done.swap(done_);
      for (Client* client : done) StartNext(*client);
      if (poller.FlushAll()) lost_connection_ = true;
    } while (!done_.empty());
    if (lost_connection_) {
      // A dead connection's calls end here, failed, and are not replaced.
      lost_connection_ = false;
      for (Client* client : clients_) {
        if (client->in_flight && !client->connection->alive()) {
          client->in_flight = false;
          --in_flight_;
          Fail("rpc error: code = Unavailable desc = connection lost");
        }
      }
    }
    int timeout_ms = static_cast<int>(kDeadlineScan.count());
    if (!parked_.empty()) {
      const Clock::time_point now = Clock::now();
      if (SubmitDue(now) > 0 && poller.FlushAll()) lost_connection_ = true;
      if (!parked_.empty()) {
        // Rounded up: woken before the next is due, the loop would only wait again.
        const auto until_due =
            std::chrono::ceil<std::chrono::milliseconds>(parked_.top().first - now);
        timeout_ms = std::min(timeout_ms, static_cast<int>(until_due.count()));
      }
    }
    if (in_flight_ == 0 && parked_.empty()) break;
    // Input: ended calls land in done_.
    if (poller.Poll(timeout_ms)) lost_connection_ = true;
    const auto now = Clock::now();
    if (now >= next_scan) {
      ScanDeadlines(now);  // the resets go out with the next flush
      next_scan = now + kDeadlineScan;
    }
  }
}

}  // namespace

LoadResult RunLoadOverH2(const LoadOptions& options, const CallFactory& make_call) {
  LoadResult result;
  result.setup_error = LoadOptionsError(options);
  if (!result.setup_error.empty()) return result;
  LoadProgress progress;
  progress.total = options.total;
  progress.request_timeout = options.request_timeout;
  progress.rate = options.rate;
  const int threads = std::min({options.threads, options.conns, options.clients});
  std::vector<ThreadResult> loop_results(static_cast<size_t>(threads));
  std::vector<std::unique_ptr<Loop>> loops;
  for (int t = 0; t < threads; ++t) {
    loops.push_back(std::make_unique<Loop>(&progress, &loop_results[static_cast<size_t>(t)]));
  }
  std::vector<H2Connection*> connections;
  for (int i = 0; i < options.conns; ++i) {
    const std::string target = StripScheme(options.endpoints[i % options.endpoints.size()]);
    std::string error;
    const int fd = ConnectTcp(target, options.connect_timeout, &error);
    if (fd < 0) {
      result.setup_error = error;
      return result;
    }
    auto conn =
        std::make_unique<H2Connection>(fd, target, GrpcTimeoutHeader(options.request_timeout),
                                       loops[static_cast<size_t>(i % threads)].get());
    connections.push_back(conn.get());
    loops[static_cast<size_t>(i % threads)]->Add(std::move(conn));
  }
  std::vector<Client> clients(static_cast<size_t>(options.clients));
  for (int i = 0; i < options.clients; ++i) {
    Client& client = clients[static_cast<size_t>(i)];
    client.call = make_call(i);
    const int c = i % options.conns;
    client.connection = connections[static_cast<size_t>(c)];
    loops[static_cast<size_t>(c % threads)]->AddClient(&client);
  }

  const Clock::time_point start = Clock::now();
  progress.start = start;
  std::vector<std::thread> workers;
  for (auto& loop : loops) workers.emplace_back([&loop] { loop->Run(); });
  for (auto& w : workers) w.join();

  MergeThreadResults(loop_results, start, &result);
  return result;
}

}  // namespace etcdpp::bench

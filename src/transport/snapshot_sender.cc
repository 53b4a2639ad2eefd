#include "transport/snapshot_sender.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>

#include "base/crc32c.h"
#include "transport/wire.h"
#include "transportpb/transport.grpc.pb.h"

namespace etcdpp::transport {
namespace {

// Closes a file descriptor on scope exit.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

SnapshotSender::SnapshotSender(uint64_t self_id, uint64_t cluster_id, std::string address,
                               raftpb::Message msg, std::string data_file_path,
                               const TransportOptions& options, std::function<void(bool ok)> done)
    : self_id_(self_id),
      cluster_id_(cluster_id),
      address_(std::move(address)),
      msg_(std::move(msg)),
      path_(std::move(data_file_path)),
      tls_(options.tls),
      chunk_bytes_(std::max<size_t>(options.snapshot_chunk_bytes, 1)),
      base_timeout_(options.snapshot_base_timeout),
      min_bytes_per_second_(std::max<uint64_t>(options.snapshot_min_bytes_per_second, 1)),
      done_(std::move(done)),
      thread_([this] {
        const bool ok = Transfer();
        if (done_) done_(ok);
        finished_.store(true, std::memory_order_release);
      }) {}

SnapshotSender::~SnapshotSender() {
  Cancel();
  Join();
}

void SnapshotSender::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  if (ctx_ != nullptr) ctx_->TryCancel();
}

void SnapshotSender::Join() {
  if (thread_.joinable()) thread_.join();
}

bool SnapshotSender::Transfer() {
  const uint64_t to = msg_.to();
  if (address_.empty()) {
    spdlog::warn("transport: cannot send snapshot to unknown peer {:x}", to);
    return false;
  }
  FdCloser file{::open(path_.c_str(), O_RDONLY | O_CLOEXEC)};
  struct stat st;
  if (file.fd < 0 || ::fstat(file.fd, &st) != 0) {
    spdlog::error("transport: cannot read snapshot file {}: {}", path_, std::strerror(errno));
    return false;
  }
  const uint64_t total = static_cast<uint64_t>(st.st_size);

  grpc::ClientContext ctx;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return false;
    ctx_ = &ctx;
  }
  AddHandshake(&ctx, Handshake{cluster_id_, self_id_, to});
  ctx.set_deadline(std::chrono::system_clock::now() + base_timeout_ +
                   std::chrono::seconds(total / min_bytes_per_second_));
  auto stub = transportpb::RaftPeer::NewStub(NewPeerChannel(address_, tls_));
  transportpb::SnapshotAck ack;
  auto writer = stub->Snapshot(&ctx, &ack);

  transportpb::SnapshotChunk chunk;
  chunk.set_from(self_id_);
  chunk.set_cluster_id(cluster_id_);
  *chunk.mutable_message() = std::move(msg_);
  chunk.set_total_size(total);
  uint64_t sent = 0;
  uint32_t crc = 0;
  bool write_ok = true;
  std::string read_error;
  for (;;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk_bytes_, total - sent));
    std::string* data = chunk.mutable_data();
    data->resize(want);
    size_t got = 0;
    while (got < want) {
      ssize_t n = ::read(file.fd, data->data() + got, want - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    if (got < want) {
      read_error = "snapshot file shrank or read failed";
      break;
    }
    crc = crc32c::Extend(crc, data->data(), data->size());
    sent += want;
    const bool last = sent == total;
    chunk.set_last(last);
    if (last) chunk.set_crc32c(crc);
    if (!writer->Write(chunk)) {
      write_ok = false;
      break;
    }
    if (last) break;
    chunk.Clear();
  }
  if (read_error.empty() && write_ok) {
    writer->WritesDone();
  } else {
    ctx.TryCancel();
  }
  grpc::Status status = writer->Finish();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ctx_ = nullptr;
  }
  if (!read_error.empty()) {
    spdlog::error("transport: snapshot to peer {:x}: {} ({})", to, read_error, path_);
    return false;
  }
  if (!status.ok()) {
    spdlog::warn("transport: snapshot to peer {:x} at {} failed: {}", to, address_,
                 status.error_message());
    return false;
  }
  spdlog::info("transport: sent snapshot ({} bytes) to peer {:x}", total, to);
  return true;
}

}  // namespace etcdpp::transport

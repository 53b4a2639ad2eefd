#include "transport/batch_stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "base/coding.h"

namespace etcdpp::transport {

std::string EncodeHello(const Handshake& hs) {
  std::string out(kHelloBytes, '\0');
  std::memcpy(out.data(), kBatchStreamMagic.data(), kBatchStreamMagic.size());
  char* p = out.data() + kBatchStreamMagic.size();
  PutBE64(p, hs.cluster_id);
  PutBE64(p + 8, hs.from);
  PutBE64(p + 16, hs.to);
  return out;
}

bool DecodeHello(std::string_view bytes, Handshake* hs) {
  if (bytes.size() != kHelloBytes || !bytes.starts_with(kBatchStreamMagic)) return false;
  const char* p = bytes.data() + kBatchStreamMagic.size();
  hs->cluster_id = GetBE64(p);
  hs->from = GetBE64(p + 8);
  hs->to = GetBE64(p + 16);
  return true;
}

void EncodeFrame(uint64_t from, uint64_t cluster_id, std::span<const raftpb::Message> messages,
                 std::string* frame) {
  using google::protobuf::io::CodedOutputStream;
  using WireFormat = google::protobuf::internal::WireFormatLite;
  // MessageBatch's fields: from = 1, cluster_id = 2 (varints), messages = 3
  // (length-delimited, repeated).
  constexpr uint32_t kFromTag = (1 << 3) | WireFormat::WIRETYPE_VARINT;
  constexpr uint32_t kClusterTag = (2 << 3) | WireFormat::WIRETYPE_VARINT;
  constexpr uint32_t kMessageTag = (3 << 3) | WireFormat::WIRETYPE_LENGTH_DELIMITED;
  size_t body =
      1 + CodedOutputStream::VarintSize64(from) + 1 + CodedOutputStream::VarintSize64(cluster_id);
  for (const raftpb::Message& m : messages) {
    const size_t size = m.ByteSizeLong();  // cached for the serialization below
    body += 1 + CodedOutputStream::VarintSize64(size) + size;
  }
  frame->resize(4 + body);
  auto* out = reinterpret_cast<uint8_t*>(frame->data());
  PutBE32(frame->data(), static_cast<uint32_t>(body));
  out += 4;
  out = CodedOutputStream::WriteVarint32ToArray(kFromTag, out);
  out = CodedOutputStream::WriteVarint64ToArray(from, out);
  out = CodedOutputStream::WriteVarint32ToArray(kClusterTag, out);
  out = CodedOutputStream::WriteVarint64ToArray(cluster_id, out);
  for (const raftpb::Message& m : messages) {
    out = CodedOutputStream::WriteVarint32ToArray(kMessageTag, out);
    out = CodedOutputStream::WriteVarint64ToArray(m.GetCachedSize(), out);
    out = m.SerializeWithCachedSizesToArray(out);
  }
}

Status WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::Unavailable(std::string("batch stream write: ") + std::strerror(errno));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::OK();
}

Status ReadFull(int fd, char* data, size_t n) {
  while (n > 0) {
    const ssize_t r = ::recv(fd, data, n, 0);
    if (r == 0) return Status::Unavailable("batch stream ended");
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::Unavailable(std::string("batch stream read: ") + std::strerror(errno));
    }
    data += r;
    n -= static_cast<size_t>(r);
  }
  return Status::OK();
}

void EnableKeepalive(int fd) {
  const int on = 1, idle_s = 10, interval_s = 5, probes = 1;
  const unsigned int unacknowledged_ms = 15'000;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &unacknowledged_ms, sizeof unacknowledged_ms);
}

bool SplitHostPort(std::string_view address, std::string* host, std::string* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == address.size()) return false;
  std::string_view h = address.substr(0, colon);
  if (h.starts_with('[')) {
    if (!h.ends_with(']') || h.size() < 3) return false;
    h = h.substr(1, h.size() - 2);
  }
  host->assign(h);
  port->assign(address.substr(colon + 1));
  return true;
}

void SetReceiveTimeout(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

}  // namespace etcdpp::transport

// The batch stream: how Raft messages travel between plaintext peers without
// gRPC. Internal to the transport module (docs/transport.md, "The batch
// stream").
//
// A sender opens a TCP connection to the peer port and writes its hello:
//
//   "etcdppB1"  cluster id  from  to          (8 bytes, then 3 x u64 big-endian)
//
// The receiver answers one byte: kAccepted, or kRefused followed by a u32
// big-endian length and the reason, after which it closes the connection.
// Then, for as long as the connection lives, the sender writes frames and
// the receiver never writes again:
//
//   length (u32 big-endian)  MessageBatch (length bytes)
//
// The peer port tells the two protocols apart by the first bytes: gRPC's
// HTTP/2 preface begins "PRI * ", the batch stream kBatchStreamMagic. A
// member that serves only gRPC answers a hello with its HTTP/2 SETTINGS
// frame (first byte 0) and closes: the sender then uses gRPC's Stream with
// that peer.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "transport/wire.h"
#include "transportpb/transport.pb.h"

namespace etcdpp::transport {

inline constexpr std::string_view kBatchStreamMagic = "etcdppB1";
inline constexpr size_t kHelloBytes = kBatchStreamMagic.size() + 3 * 8;
inline constexpr char kAccepted = 'A';
inline constexpr char kRefused = 'R';
// A frame longer than this ends the stream: no Raft message batch comes near
// it (batches stop at TransportOptions::max_batch_bytes past one message,
// and a request is at most --max-request-bytes), so it is a broken peer.
inline constexpr uint32_t kMaxFrameBytes = 1u << 30;
// A refusal's reason is short; a longer one is cut.
inline constexpr uint32_t kMaxReasonBytes = 4096;

std::string EncodeHello(const Handshake& hs);
// The frame of MessageBatch{from, cluster_id, messages}, its length then
// its bytes, in place of `*frame` (whose capacity is reused). Encoded
// straight from the messages: no MessageBatch is built, nothing is copied
// but into the frame.
void EncodeFrame(uint64_t from, uint64_t cluster_id, std::span<const raftpb::Message> messages,
                 std::string* frame);
// `bytes` must be kHelloBytes long and begin with the magic.
bool DecodeHello(std::string_view bytes, Handshake* hs);

// Blocking I/O on a socket, retried on EINTR. kUnavailable on an error or
// end of stream (ReadFull: before `n` bytes came).
Status WriteAll(int fd, const char* data, size_t n);
Status ReadFull(int fd, char* data, size_t n);

// TCP keepalive probes on an idle stream, and a bound on how long written
// data may stay unacknowledged: a peer whose host vanished is noticed within
// about as long as the gRPC stream's keepalive pings take (wire.cc).
void EnableKeepalive(int fd);

// "host:port" or "[v6 host]:port" into its parts; false if malformed.
bool SplitHostPort(std::string_view address, std::string* host, std::string* port);

// Sets or clears (zero) the socket's receive timeout: a blocking read that
// waits longer fails.
void SetReceiveTimeout(int fd, std::chrono::milliseconds timeout);

}  // namespace etcdpp::transport

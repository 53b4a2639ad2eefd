// ReplyBytes: a stream's reply bytes that nghttp2 has not taken yet, in the
// order they were written.
//
// A watch write hands over a batch of framed responses (up to
// kWriteBatchBytes) it has just assembled; a contiguous buffer would copy
// each batch once more whenever the one before it is still queued, which
// under a fan-out is most of the time. Here a large buffer moves in whole
// and the bytes are copied once on their way out, into the connection's
// output behind their DATA frame's header (Connection::SendReplyData). A
// small write (a keep-alive answer, a unary reply) is copied onto the last
// buffer instead, so a stream of tiny replies stays one buffer.
//
// Invariant: size() is the sum of the lengths of buffers_[first_..] minus
// the bytes already taken from buffers_[first_]; none of them is empty, and
// only that one is partly taken. The buffers before first_ are spent (empty).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace etcdpp::api::h2front {

class ReplyBytes {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Queues `bytes` behind what is queued.
  void Append(std::string&& bytes);
  void Append(std::string_view bytes);
  // Queues `n` bytes the caller fills at once through the pointer
  // returned (contiguous, valid until the next call on this object).
  char* Extend(size_t n);
  // Appends the first `n` queued bytes (n <= size()) to `out` and drops them.
  void MoveFrontTo(size_t n, std::string* out);
  void Clear();

 private:
  // Below this a write is copied onto the last buffer rather than queued
  // as a buffer of its own.
  static constexpr size_t kCopyBelowBytes = 4096;

  // A vector, not a deque: an empty one allocates nothing, and most
  // streams (a unary call's reply) never hold more than one buffer.
  std::vector<std::string> buffers_;
  size_t first_ = 0;        // the buffer bytes leave from
  size_t first_taken_ = 0;  // bytes of buffers_[first_] already moved out
  size_t size_ = 0;
};

}  // namespace etcdpp::api::h2front

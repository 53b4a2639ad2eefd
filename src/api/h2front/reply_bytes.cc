#include "api/h2front/reply_bytes.h"

#include <algorithm>
#include <utility>

namespace etcdpp::api::h2front {

void ReplyBytes::Append(std::string&& bytes) {
  if (bytes.empty()) return;
  size_ += bytes.size();
  if (first_ < buffers_.size() && bytes.size() < kCopyBelowBytes) {
    buffers_.back().append(bytes);
  } else {
    buffers_.push_back(std::move(bytes));
  }
}

void ReplyBytes::Append(std::string_view bytes) {
  if (bytes.empty()) return;
  size_ += bytes.size();
  if (first_ == buffers_.size()) buffers_.emplace_back();
  buffers_.back().append(bytes);
}

char* ReplyBytes::Extend(size_t n) {
  if (first_ == buffers_.size()) {
    if (n == 0) return nullptr;
    buffers_.emplace_back();
  }
  std::string& last = buffers_.back();
  const size_t start = last.size();
  last.resize(start + n);
  size_ += n;
  return last.data() + start;
}

void ReplyBytes::MoveFrontTo(size_t n, std::string* out) {
  while (n > 0) {
    std::string& first = buffers_[first_];
    const size_t take = std::min(n, first.size() - first_taken_);
    out->append(first, first_taken_, take);
    first_taken_ += take;
    size_ -= take;
    n -= take;
    if (first_taken_ < first.size()) break;
    // Spent: its memory goes now, its slot once the queue empties or the
    // spent slots are half of them (so a stream that never drains does
    // not grow the vector without bound).
    std::string().swap(first);
    first_taken_ = 0;
    if (++first_ == buffers_.size()) {
      buffers_.clear();
      first_ = 0;
    } else if (2 * first_ >= buffers_.size()) {
      buffers_.erase(buffers_.begin(), buffers_.begin() + static_cast<std::ptrdiff_t>(first_));
      first_ = 0;
    }
  }
}

void ReplyBytes::Clear() {
  buffers_.clear();
  first_ = 0;
  first_taken_ = 0;
  size_ = 0;
}

}  // namespace etcdpp::api::h2front

#include "http/json_stream.h"

namespace etcdpp::http {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

std::optional<std::string> JsonValueSplitter::Next() {
  size_t start = 0;
  while (start < pending_.size() && IsSpace(pending_[start])) ++start;
  if (start == pending_.size()) {
    pending_.clear();
    return std::nullopt;
  }
  const char first = pending_[start];
  size_t end = start;
  if (first == '{' || first == '[') {
    // Bracket depth outside strings; inside a string only `\` and `"` matter.
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (; end < pending_.size(); ++end) {
      const char c = pending_[end];
      if (in_string) {
        if (escaped) {
          escaped = false;
        } else if (c == '\\') {
          escaped = true;
        } else if (c == '"') {
          in_string = false;
        }
        continue;
      }
      if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) break;
      }
    }
    if (end == pending_.size()) return std::nullopt;  // not complete yet
    ++end;
  } else {
    while (end < pending_.size() && !IsSpace(pending_[end])) ++end;
    if (end == pending_.size()) return std::nullopt;  // the token may continue
  }
  std::string value = pending_.substr(start, end - start);
  pending_.erase(0, end);
  return value;
}

std::optional<std::string> JsonValueSplitter::TakeRest() {
  if (auto value = Next()) return value;
  size_t start = 0;
  while (start < pending_.size() && IsSpace(pending_[start])) ++start;
  std::optional<std::string> rest;
  if (start < pending_.size()) rest = pending_.substr(start);
  pending_.clear();
  return rest;
}

}  // namespace etcdpp::http

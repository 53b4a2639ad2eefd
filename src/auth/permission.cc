#include "auth/permission.h"

#include <algorithm>

namespace etcdpp::auth {
namespace {

// a < b where nullopt is +infinity.
bool EndLess(const std::optional<std::string>& a, const std::optional<std::string>& b) {
  if (!a) return false;
  if (!b) return true;
  return *a < *b;
}

}  // namespace

KeyIntervalSet::Interval KeyIntervalSet::FromWire(std::string_view key,
                                                  std::string_view range_end) {
  Interval in{std::string(key), std::nullopt};
  if (range_end.empty()) {
    // The single key: [key, key + "\0").
    in.end = std::string(key) + '\0';
  } else if (range_end != std::string_view("\0", 1)) {
    in.end = std::string(range_end);
  }
  return in;
}

void KeyIntervalSet::Add(std::string_view key, std::string_view range_end) {
  Interval in = FromWire(key, range_end);
  if (in.end && *in.end <= in.begin) return;  // grants nothing
  // Keep the list sorted by begin, then fold every interval that overlaps
  // or touches the new one into it.
  auto pos = std::lower_bound(intervals_.begin(), intervals_.end(), in.begin,
                              [](const Interval& i, const std::string& b) { return i.begin < b; });
  pos = intervals_.insert(pos, std::move(in));
  std::vector<Interval> merged;
  merged.reserve(intervals_.size());
  for (Interval& i : intervals_) {
    if (!merged.empty()) {
      Interval& last = merged.back();
      // Touching or overlapping: i.begin <= last.end.
      if (!last.end || i.begin <= *last.end) {
        if (EndLess(last.end, i.end)) last.end = std::move(i.end);
        continue;
      }
    }
    merged.push_back(std::move(i));
  }
  intervals_ = std::move(merged);
}

bool KeyIntervalSet::Covers(std::string_view key, std::string_view range_end) const {
  Interval want = FromWire(key, range_end);
  if (want.end && *want.end <= want.begin) return false;
  // The last interval beginning at or before want.begin is the only one
  // that can hold it, since the set is disjoint and non-adjacent.
  auto it = std::upper_bound(intervals_.begin(), intervals_.end(), want.begin,
                             [](const std::string& b, const Interval& i) { return b < i.begin; });
  if (it == intervals_.begin()) return false;
  const Interval& holder = *std::prev(it);
  if (holder.end && !(want.begin < *holder.end)) return false;
  return !EndLess(holder.end, want.end);
}

}  // namespace etcdpp::auth

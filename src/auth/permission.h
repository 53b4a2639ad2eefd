// Key permissions: which keys a user may read or write, as the union of the
// ranges its roles grant. etcd's rules for a range, on the wire and here:
//   range_end empty   the single key `key`
//   range_end "\0"    every key >= `key` (no upper bound)
//   otherwise         [key, range_end)
// A request is permitted when its whole range lies inside the union of the
// granted ranges of the right type (READWRITE counts as both).
//
// Plain values, no threads: AuthState builds one per user and never changes
// it afterwards, so any thread may read it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace etcdpp::auth {

enum class Access { kRead, kWrite };

// Sorted, disjoint, non-adjacent half-open intervals of keys; an interval
// without `end` reaches past every key.
class KeyIntervalSet {
 public:
  // Adds the range (etcd's encoding above) to the union.
  void Add(std::string_view key, std::string_view range_end);
  // True when the request's range (same encoding) is covered entirely.
  // An empty range (end <= key) asks for nothing and is not permitted,
  // as etcd refuses it.
  bool Covers(std::string_view key, std::string_view range_end) const;
  bool empty() const { return intervals_.empty(); }

 private:
  struct Interval {
    std::string begin;
    std::optional<std::string> end;  // nullopt: unbounded
  };
  // [begin, end) for etcd's encoding; end nullopt when unbounded.
  static Interval FromWire(std::string_view key, std::string_view range_end);

  std::vector<Interval> intervals_;
};

// What one user may do with keys.
struct UserPermissions {
  bool root = false;  // the root role: every key, every admin call
  KeyIntervalSet read;
  KeyIntervalSet write;

  bool Permits(Access access, std::string_view key, std::string_view range_end) const {
    if (root) return true;
    return (access == Access::kRead ? read : write).Covers(key, range_end);
  }
};

}  // namespace etcdpp::auth

// HashKV's checksum over a key space's history.
//
// Members compare it (Maintenance.HashKV, the corruption check), so it must
// not depend on how a member's store lays records out: a cluster upgraded
// one member at a time holds several key layouts at once. It is defined on
// key layout 4's `key` table (escaped_key_codec.h), the last layout whose
// table order it follows, and layout 3's record bytes:
//
//   CRC-32C of "key", then for each record in layout 4's table order:
//     its layout 4 table key, its 25-byte header, then
//     a long key (layout 4's): the key's length (4 bytes) and bytes, and the value;
//     an inline key: the value, unless the record is a tombstone.
//
// Records arrive in the current layout's order. That order differs from
// layout 4's only inside layout 4's buckets: each bucket of the current
// layout lies inside one of layout 4's (its 479 encoded bytes cover a user
// prefix that escapes to more than 477 bytes), and both orders are user key
// order outside their buckets. So a layout 4 bucket's records arrive
// together, and sorting them is all the reordering needed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mvcc/revision.h"

namespace etcdpp::mvcc {

class KeySpaceHash {
 public:
  KeySpaceHash();

  // One record that belongs to the hashed history, in the current `key`
  // table's order. `header` is the record's 25 bytes; `value` is its `rev`
  // record's value (empty for a tombstone).
  void Add(std::string_view user_key, Revision rev, std::string_view header,
           std::string_view value);
  uint32_t Finish();

 private:
  struct Pending {
    std::string table_key;  // layout 4's
    std::string hashed;     // what follows it in the hash
  };
  void FlushBucket();

  uint32_t crc_;
  std::string table_key_;  // scratch
  std::string bucket_;     // layout 4 bucket of pending_
  std::vector<Pending> pending_;
};

}  // namespace etcdpp::mvcc

// Revision: the position of one change in etcd's MVCC history.
//
// `main` is the store-wide revision a client sees (it grows by one per
// committed write request that changed something); `sub` orders the changes
// made by one request (a Txn putting three keys writes main R with subs 0, 1,
// 2). Both are non-negative; revision (0, 0) is never written.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

namespace etcdpp::mvcc {

struct Revision {
  int64_t main = 0;
  int64_t sub = 0;

  friend auto operator<=>(const Revision&, const Revision&) = default;
};

// Size of a revision on disk: main and sub, 8 bytes big-endian each.
inline constexpr size_t kRevisionBytes = 16;

inline void PutBigEndian64(uint64_t v, char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

inline uint64_t GetBigEndian64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

// `rev` table key: main || sub, big-endian, so keys sort by revision.
inline void EncodeRevision(Revision rev, char out[kRevisionBytes]) {
  PutBigEndian64(static_cast<uint64_t>(rev.main), out);
  PutBigEndian64(static_cast<uint64_t>(rev.sub), out + 8);
}

inline Revision DecodeRevision(const char in[kRevisionBytes]) {
  return Revision{static_cast<int64_t>(GetBigEndian64(in)),
                  static_cast<int64_t>(GetBigEndian64(in + 8))};
}

// `key` table key suffix: ~main || ~sub, big-endian, so that among the
// records of one user key the NEWEST revision sorts first.
inline void EncodeInvertedRevision(Revision rev, char out[kRevisionBytes]) {
  PutBigEndian64(~static_cast<uint64_t>(rev.main), out);
  PutBigEndian64(~static_cast<uint64_t>(rev.sub), out + 8);
}

inline void AppendInvertedRevision(Revision rev, std::string* out) {
  char buf[kRevisionBytes];
  EncodeInvertedRevision(rev, buf);
  out->append(buf, kRevisionBytes);
}

inline Revision DecodeInvertedRevision(const char in[kRevisionBytes]) {
  return Revision{static_cast<int64_t>(~GetBigEndian64(in)),
                  static_cast<int64_t>(~GetBigEndian64(in + 8))};
}

}  // namespace etcdpp::mvcc

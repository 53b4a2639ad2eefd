// The v2 tree in the member's LMDB store, so it survives restarts and
// travels in Raft snapshots (a snapshot is a copy of the LMDB file).
//
// Table `v2`: one record per node, keyed by its store key ("/a/b"; the root
// is implicit; a key over 400 bytes by a 383-byte prefix, '#' and 16 hex
// digits of its FNV-1a hash, since LMDB keys end at 511 bytes), and the
// store's index under "index" (keys not starting with '/' are not nodes).
// A node record is
//     flags (1 byte: bit 0 = directory) | created index (8, big-endian) |
//     modified index (8) | expiry, Unix ns (8, 0 = never) |
//     key length (4) | key | value
// The event history is kept beside the tree: the event at index i under
// "event/" and i in 20 zero-padded digits (so table order is index order),
// its value an internalpb::V2EventRecord; events that left the history are
// deleted in the same transaction. Restarted, the store has the history as
// of the consistent index, and the WAL replay adds the events after it.
// Writes go into the apply loop's transaction, which also records the
// consistent index, so the tree and the applied Raft index never disagree.
#pragma once

#include "base/status.h"
#include "mvcc/kv_store.h"
#include "v2store/store.h"

namespace etcdpp::v2store {

inline constexpr char kV2Table[] = "v2";

// Writes what changed since the last call, and the index.
Status SaveChanges(Store& store, mvcc::WriteTxn& txn);
// Replaces the store's contents with what `store_db` holds (empty if the
// table does not exist yet).
Status LoadStore(Store& store, const mvcc::KvStore& store_db);

}  // namespace etcdpp::v2store

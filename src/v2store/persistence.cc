#include "v2store/persistence.h"

#include <algorithm>
#include <cstdio>

#include "base/coding.h"
#include "etcdpppb/internal.pb.h"

namespace etcdpp::v2store {
namespace {

constexpr char kIndexKey[] = "index";
constexpr char kEventPrefix[] = "event/";
constexpr size_t kHeaderBytes = 1 + 8 + 8 + 8 + 4;
// LMDB refuses keys over 511 bytes; longer store keys are shortened to a
// prefix and a hash (the record holds the whole key).
constexpr size_t kMaxTableKey = 400;

std::string TableKey(const std::string& key) {
  if (key.size() <= kMaxTableKey) return key;
  uint64_t h = 14695981039346656037ull;  // FNV-1a: stable across builds
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  char hash[24];
  std::snprintf(hash, sizeof hash, "#%016llx", static_cast<unsigned long long>(h));
  return key.substr(0, kMaxTableKey - 17) + hash;
}

std::string Encode(const std::string& key, const NodeRecord& r) {
  std::string out(kHeaderBytes, '\0');
  out[0] = r.dir ? 1 : 0;
  PutBE64(out.data() + 1, r.created_index);
  PutBE64(out.data() + 9, r.modified_index);
  PutBE64(out.data() + 17, static_cast<uint64_t>(r.expire_ns));
  const auto n = static_cast<uint32_t>(key.size());
  out[25] = static_cast<char>(n >> 24);
  out[26] = static_cast<char>(n >> 16);
  out[27] = static_cast<char>(n >> 8);
  out[28] = static_cast<char>(n);
  out.append(key);
  out.append(r.value);
  return out;
}

Result<std::pair<std::string, NodeRecord>> Decode(std::string_view bytes) {
  auto bad = [] { return Status::Corruption("v2: malformed node record"); };
  if (bytes.size() < kHeaderBytes || (bytes[0] & ~1) != 0) return bad();
  NodeRecord r;
  r.dir = bytes[0] == 1;
  r.created_index = GetBE64(bytes.data() + 1);
  r.modified_index = GetBE64(bytes.data() + 9);
  r.expire_ns = static_cast<int64_t>(GetBE64(bytes.data() + 17));
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + 25);
  const size_t key_size = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
  if (bytes.size() - kHeaderBytes < key_size) return bad();
  std::string key(bytes.substr(kHeaderBytes, key_size));
  if (!key.starts_with('/')) return bad();
  r.value = std::string(bytes.substr(kHeaderBytes + key_size));
  return std::make_pair(std::move(key), std::move(r));
}

std::string EventTableKey(uint64_t index) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(index));
  return kEventPrefix + std::string(digits);
}

void ToRecord(const NodeView& v, internalpb::V2NodeViewRecord* r) {
  r->set_key(v.key);
  r->set_has_value(v.value.has_value());
  if (v.value) r->set_value(*v.value);
  r->set_dir(v.dir);
  r->set_expiration_ns(v.expiration_ns);
  r->set_ttl(v.ttl);
  r->set_modified_index(v.modified_index);
  r->set_created_index(v.created_index);
}

NodeView FromRecord(const internalpb::V2NodeViewRecord& r) {
  NodeView v;
  v.key = r.key();
  if (r.has_value()) v.value = r.value();
  v.dir = r.dir();
  v.expiration_ns = r.expiration_ns();
  v.ttl = r.ttl();
  v.modified_index = r.modified_index();
  v.created_index = r.created_index();
  return v;
}

std::string EncodeEvent(const Event& e) {
  internalpb::V2EventRecord r;
  r.set_action(e.action);
  ToRecord(e.node, r.mutable_node());
  if (e.prev_node) ToRecord(*e.prev_node, r.mutable_prev_node());
  r.set_etcd_index(e.etcd_index);
  r.set_refresh(e.refresh);
  return r.SerializeAsString();
}

Result<Event> DecodeEvent(std::string_view bytes) {
  internalpb::V2EventRecord r;
  if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::Corruption("v2: malformed event record");
  }
  Event e;
  e.action = r.action();
  e.node = FromRecord(r.node());
  if (r.has_prev_node()) e.prev_node = FromRecord(r.prev_node());
  e.etcd_index = r.etcd_index();
  e.refresh = r.refresh();
  return e;
}

}  // namespace

Status SaveChanges(Store& store, mvcc::WriteTxn& txn) {
  auto table = txn.OpenTable(kV2Table);
  if (!table.ok()) return table.status();
  for (const auto& [key, record] : store.TakeChanges()) {
    if (record) {
      ETCDPP_RETURN_IF_ERROR(table->Put(TableKey(key), Encode(key, *record)));
    } else {
      ETCDPP_RETURN_IF_ERROR(table->Delete(TableKey(key)));
    }
  }
  uint64_t oldest_kept = 0;
  for (const Event& e : store.TakeNewEvents(&oldest_kept)) {
    ETCDPP_RETURN_IF_ERROR(table->Put(EventTableKey(e.index()), EncodeEvent(e)));
  }
  // Events that left the history: normally the one the newest pushed out.
  const std::string first_kept = oldest_kept == 0 ? std::string() : EventTableKey(oldest_kept);
  std::vector<std::string> stale;
  mvcc::Cursor c = table->NewCursor();
  for (bool on = c.Seek(kEventPrefix); on && c.key().starts_with(kEventPrefix); on = c.Next()) {
    if (!first_kept.empty() && c.key() >= first_kept) break;
    stale.emplace_back(c.key());
  }
  ETCDPP_RETURN_IF_ERROR(c.status());
  for (const std::string& key : stale) ETCDPP_RETURN_IF_ERROR(table->Delete(key));
  std::string index(8, '\0');
  PutBE64(index.data(), store.index());
  return table->Put(kIndexKey, index);
}

Status LoadStore(Store& store, const mvcc::KvStore& store_db) {
  auto read = store_db.Read();
  if (!read.ok()) return read.status();
  std::vector<std::pair<std::string, NodeRecord>> records;
  std::vector<Event> history;  // table order: oldest first
  uint64_t index = 0;
  auto table = (*read)->OpenTable(kV2Table);
  if (table.ok()) {
    mvcc::Cursor c = table->NewCursor();
    for (bool on = c.SeekFirst(); on; on = c.Next()) {
      const std::string_view key = c.key();
      if (key == kIndexKey) {
        if (c.value().size() != 8) return Status::Corruption("v2: malformed index record");
        index = GetBE64(c.value().data());
        continue;
      }
      if (key.starts_with(kEventPrefix)) {
        auto event = DecodeEvent(c.value());
        if (!event.ok()) return event.status();
        history.push_back(std::move(event.value()));
        continue;
      }
      if (!key.starts_with('/')) continue;
      auto record = Decode(c.value());
      if (!record.ok()) return record.status();
      records.push_back(std::move(record.value()));
    }
    ETCDPP_RETURN_IF_ERROR(c.status());
    // Parents before children (shortened table keys may break table order).
    std::sort(records.begin(), records.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
  } else if (table.status().code() != Code::kNotFound) {
    return table.status();
  }
  store.Restore(index, records, std::move(history));
  return Status::OK();
}

}  // namespace etcdpp::v2store

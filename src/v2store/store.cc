#include "v2store/store.h"

#include <cstdio>
#include <vector>

namespace etcdpp::v2store {

// A file or a directory. Owned by its parent's `children`; the root by the
// store.
struct Store::Node {
  std::string key;  // "" for the root
  bool dir = false;
  std::string value;
  uint64_t created_index = 0;
  uint64_t modified_index = 0;
  int64_t expire_ns = 0;
  Node* parent = nullptr;
  std::map<std::string, std::unique_ptr<Node>> children;  // by name

  std::string name() const { return key.substr(key.rfind('/') + 1); }
  bool hidden() const { return key.rfind('/') + 1 < key.size() && key[key.rfind('/') + 1] == '_'; }
};

namespace {

// Expiry times before 2000 are taken as "never" (etcd does the same for
// times that did not survive a round trip through JSON).
constexpr int64_t kMinExpireNs = int64_t{946684800} * 1000000000;

std::vector<std::string> Split(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 1;
  while (start <= key.size() && !key.empty()) {
    const size_t slash = key.find('/', start);
    const size_t end = slash == std::string::npos ? key.size() : slash;
    parts.push_back(key.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

std::string ParentKey(const std::string& key) { return key.substr(0, key.rfind('/')); }

// Which of prevValue / prevIndex failed, worded as etcd's cause.
std::string CompareFailure(bool value_ok, bool index_ok, const std::string& prev_value,
                           uint64_t prev_index, const std::string& value, uint64_t index) {
  const std::string on_index =
      "[" + std::to_string(prev_index) + " != " + std::to_string(index) + "]";
  const std::string on_value = "[" + prev_value + " != " + value + "]";
  if (!value_ok && !index_ok) return on_value + " " + on_index;
  return value_ok ? on_index : on_value;
}

}  // namespace

std::string CleanKey(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = i;
    while (j < path.size() && path[j] != '/') ++j;
    const std::string_view part = path.substr(i, j - i);
    if (part.empty() || part == ".") {
      // nothing
    } else if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else {
      parts.push_back(part);
    }
    i = j;
  }
  std::string key;
  for (std::string_view p : parts) {
    key.push_back('/');
    key.append(p);
  }
  return key;
}

Store::Store(std::function<int64_t()> now_ns)
    : now_ns_(std::move(now_ns)), root_(std::make_unique<Node>()) {
  root_->dir = true;
}

Store::~Store() = default;

uint64_t Store::index() const {
  std::lock_guard<std::mutex> lock(mu_);
  return index_;
}

bool Store::HasTtlKeys() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !ttl_.empty();
}

StoreStats Store::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  StoreStats s = stats_;
  s.watchers = hub_.count();
  return s;
}

Store::Node* Store::Find(const std::string& key, Error* error) {
  Node* n = root_.get();
  for (const std::string& name : Split(key)) {
    if (!n->dir) {
      *error = ErrorAt(ErrorCode::kNotDir, n->key);
      return nullptr;
    }
    auto it = n->children.find(name);
    if (it == n->children.end()) {
      *error = ErrorAt(ErrorCode::kKeyNotFound, n->key + "/" + name);
      return nullptr;
    }
    n = it->second.get();
  }
  return n;
}

Store::Node* Store::EnsureDir(const std::string& key, Error* error) {
  Node* n = root_.get();
  for (const std::string& name : Split(key)) {
    auto it = n->children.find(name);
    if (it != n->children.end()) {
      if (!it->second->dir) {
        *error = ErrorAt(ErrorCode::kNotDir, it->second->key);
        return nullptr;
      }
      n = it->second.get();
      continue;
    }
    // Missing parents are made on the way, without events of their own.
    auto dir = std::make_unique<Node>();
    dir->key = n->key + "/" + name;
    dir->dir = true;
    dir->created_index = dir->modified_index = index_ + 1;
    dir->parent = n;
    Touch(dir->key);
    n = (n->children[name] = std::move(dir)).get();
  }
  return n;
}

void Store::ExpiryAndTtl(const Node& n, NodeView* view) const {
  if (n.expire_ns == 0) return;
  view->expiration_ns = n.expire_ns;
  // Seconds left, rounded up (1..n while the node lives).
  const int64_t left = n.expire_ns - now_ns_();
  view->ttl = left / 1000000000 + (left % 1000000000 > 0 ? 1 : 0);
}

NodeView Store::Repr(const Node& n, bool recursive, bool sorted) const {
  NodeView v;
  v.key = n.key;
  v.modified_index = n.modified_index;
  v.created_index = n.created_index;
  if (n.dir) {
    v.dir = true;
    if (recursive) {
      for (const auto& [name, child] : n.children) {
        if (!child->hidden()) v.nodes.push_back(Repr(*child, true, sorted));
      }
    }
  } else {
    v.value = n.value;
  }
  ExpiryAndTtl(n, &v);
  return v;
}

void Store::SetExpiry(Node* n, int64_t expire_ns) {
  if (n->expire_ns != 0) ttl_.erase({n->expire_ns, n->key});
  n->expire_ns = expire_ns;
  if (expire_ns != 0) ttl_.insert({expire_ns, n->key});
}

void Store::RemoveNode(Node* n, const Event& e, bool notify) {
  while (!n->children.empty()) RemoveNode(n->children.begin()->second.get(), e, notify);
  const std::string key = n->key;
  if (n->expire_ns != 0) ttl_.erase({n->expire_ns, key});
  Touch(key);
  if (notify) hub_.NotifyRemoved(e, key);
  if (n->parent != nullptr) n->parent->children.erase(n->name());  // destroys n
}

Outcome Store::Get(const std::string& key, bool recursive, bool sorted) {
  std::lock_guard<std::mutex> lock(mu_);
  Outcome out;
  Error error;
  Node* n = Find(key, &error);
  if (n == nullptr) {
    ++stats_.gets_fail;
    out.error = error;
    return out;
  }
  ++stats_.gets_success;
  out.event.action = kActionGet;
  NodeView& v = out.event.node;
  v.key = n->key;
  v.modified_index = n->modified_index;
  v.created_index = n->created_index;
  if (n->dir) {
    // A directory lists its children even when not recursive.
    v.dir = true;
    for (const auto& [name, child] : n->children) {
      if (!child->hidden()) v.nodes.push_back(Repr(*child, recursive, sorted));
    }
  } else {
    v.value = n->value;
  }
  ExpiryAndTtl(*n, &v);
  out.event.etcd_index = index_;
  return out;
}

Outcome Store::InternalCreate(const std::string& requested, bool dir, const std::string& value,
                              bool unique, bool replace, int64_t expire_ns, const char* action) {
  Outcome out;
  const uint64_t next = index_ + 1;
  std::string key = requested;
  if (unique) {
    char name[32];
    std::snprintf(name, sizeof name, "/%020llu", static_cast<unsigned long long>(next));
    key = CleanKey(key + name);
  }
  if (key.empty()) {
    out.error = ErrorAt(ErrorCode::kRootReadOnly, "/");
    return out;
  }
  if (expire_ns < kMinExpireNs) expire_ns = 0;
  Error error;
  Node* parent = EnsureDir(ParentKey(key), &error);
  if (parent == nullptr) {
    out.error = error;
    return out;
  }
  const std::string name = key.substr(key.rfind('/') + 1);
  auto existing = parent->children.find(name);
  if (existing != parent->children.end()) {
    Node* old = existing->second.get();
    if (!replace) {
      out.error = ErrorAt(ErrorCode::kNodeExist, key);
      return out;
    }
    if (old->dir) {
      out.error = ErrorAt(ErrorCode::kNotFile, key);
      return out;
    }
    out.event.prev_node = Repr(*old, false, false);
    if (old->expire_ns != 0) ttl_.erase({old->expire_ns, key});
    parent->children.erase(existing);
  }
  auto node = std::make_unique<Node>();
  node->key = key;
  node->dir = dir;
  if (!dir) node->value = value;
  node->created_index = node->modified_index = next;
  node->parent = parent;
  Node* n = (parent->children[name] = std::move(node)).get();
  SetExpiry(n, expire_ns);
  Touch(key);

  out.event.action = action;
  NodeView& v = out.event.node;
  v.key = key;
  v.modified_index = v.created_index = next;
  if (dir) {
    v.dir = true;
  } else {
    v.value = value;
  }
  ExpiryAndTtl(*n, &v);
  index_ = next;
  out.event.etcd_index = index_;
  return out;
}

Outcome Store::Set(const std::string& key, bool dir, const std::string& value_in, int64_t expire_ns,
                   bool refresh) {
  std::lock_guard<std::mutex> lock(mu_);
  Outcome out;
  Error error;
  Node* n = Find(key, &error);
  if (n == nullptr && error.code != ErrorCode::kKeyNotFound) {
    ++stats_.sets_fail;
    out.error = error;
    return out;
  }
  std::string value = value_in;
  if (refresh) {
    if (n == nullptr) {
      ++stats_.sets_fail;
      out.error = error;
      return out;
    }
    value = n->value;
  }
  // The previous node as a get would show it (taken before it is replaced).
  std::optional<NodeView> prev;
  if (n != nullptr && !n->dir) prev = Repr(*n, false, false);
  out = InternalCreate(key, dir, value, false, true, expire_ns, kActionSet);
  if (!out.ok()) {
    ++stats_.sets_fail;
    return out;
  }
  ++stats_.sets_success;
  out.event.prev_node = prev;
  if (refresh) {
    out.event.refresh = true;
    hub_.AddSilent(out.event);
  } else {
    hub_.Notify(out.event);
  }
  return out;
}

Outcome Store::Create(const std::string& key, bool dir, const std::string& value, bool unique,
                      int64_t expire_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  Outcome out = InternalCreate(key, dir, value, unique, false, expire_ns, kActionCreate);
  if (!out.ok()) {
    ++stats_.create_fail;
    return out;
  }
  ++stats_.create_success;
  hub_.Notify(out.event);
  return out;
}

Outcome Store::Update(const std::string& key, const std::string& value_in, int64_t expire_ns,
                      bool refresh) {
  std::lock_guard<std::mutex> lock(mu_);
  Outcome out;
  auto fail = [&](Error e) {
    ++stats_.update_fail;
    out.error = std::move(e);
    return out;
  };
  if (key.empty()) return fail(ErrorAt(ErrorCode::kRootReadOnly, "/"));
  Error error;
  Node* n = Find(key, &error);
  if (n == nullptr) return fail(error);
  if (n->dir && !value_in.empty()) return fail(ErrorAt(ErrorCode::kNotFile, key));
  const std::string value = refresh ? n->value : value_in;
  const uint64_t next = index_ + 1;
  out.event.action = kActionUpdate;
  out.event.prev_node = Repr(*n, false, false);
  // A directory keeps its modified index: only its TTL can change.
  if (!n->dir) {
    n->value = value;
    n->modified_index = next;
  }
  SetExpiry(n, expire_ns);
  Touch(key);
  NodeView& v = out.event.node;
  v.key = key;
  v.modified_index = next;
  v.created_index = n->created_index;
  if (n->dir) {
    v.dir = true;
  } else {
    v.value = value;
  }
  ExpiryAndTtl(*n, &v);
  index_ = next;
  out.event.etcd_index = next;
  ++stats_.update_success;
  if (refresh) {
    out.event.refresh = true;
    hub_.AddSilent(out.event);
  } else {
    hub_.Notify(out.event);
  }
  return out;
}

Outcome Store::CompareAndSwap(const std::string& key, const std::string& prev_value,
                              uint64_t prev_index, const std::string& value_in, int64_t expire_ns,
                              bool refresh) {
  std::lock_guard<std::mutex> lock(mu_);
  Outcome out;
  auto fail = [&](Error e) {
    ++stats_.compare_and_swap_fail;
    out.error = std::move(e);
    return out;
  };
  if (key.empty()) return fail(ErrorAt(ErrorCode::kRootReadOnly, "/"));
  Error error;
  Node* n = Find(key, &error);
  if (n == nullptr) return fail(error);
  if (n->dir) return fail(ErrorAt(ErrorCode::kNotFile, key));
  const bool value_ok = prev_value.empty() || n->value == prev_value;
  const bool index_ok = prev_index == 0 || n->modified_index == prev_index;
  if (!value_ok || !index_ok) {
    return fail(ErrorAt(
        ErrorCode::kTestFailed,
        CompareFailure(value_ok, index_ok, prev_value, prev_index, n->value, n->modified_index)));
  }
  const std::string value = refresh ? n->value : value_in;
  ++index_;
  out.event.action = kActionCompareAndSwap;
  out.event.prev_node = Repr(*n, false, false);
  n->value = value;
  n->modified_index = index_;
  SetExpiry(n, expire_ns);
  Touch(key);
  NodeView& v = out.event.node;
  v.key = key;
  v.value = value;
  v.modified_index = index_;
  v.created_index = n->created_index;
  ExpiryAndTtl(*n, &v);
  out.event.etcd_index = index_;
  ++stats_.compare_and_swap_success;
  if (refresh) {
    out.event.refresh = true;
    hub_.AddSilent(out.event);
  } else {
    hub_.Notify(out.event);
  }
  return out;
}

Outcome Store::Delete(const std::string& key, bool dir, bool recursive) {
  std::lock_guard<std::mutex> lock(mu_);
  Outcome out;
  auto fail = [&](Error e) {
    ++stats_.delete_fail;
    out.error = std::move(e);
    return out;
  };
  if (key.empty()) return fail(ErrorAt(ErrorCode::kRootReadOnly, "/"));
  if (recursive) dir = true;
  Error error;
  Node* n = Find(key, &error);
  if (n == nullptr) return fail(error);
  if (n->dir && !dir) return fail(ErrorAt(ErrorCode::kNotFile, key));
  if (n->dir && !n->children.empty() && !recursive) {
    return fail(ErrorAt(ErrorCode::kDirNotEmpty, key));
  }
  const uint64_t next = index_ + 1;
  out.event.action = kActionDelete;
  out.event.node.key = key;
  out.event.node.dir = n->dir;
  out.event.node.modified_index = next;
  out.event.node.created_index = n->created_index;
  out.event.prev_node = Repr(*n, false, false);
  out.event.etcd_index = next;
  RemoveNode(n, out.event, true);
  index_ = next;
  ++stats_.delete_success;
  hub_.Notify(out.event);
  return out;
}

Outcome Store::CompareAndDelete(const std::string& key, const std::string& prev_value,
                                uint64_t prev_index) {
  std::lock_guard<std::mutex> lock(mu_);
  Outcome out;
  auto fail = [&](Error e) {
    ++stats_.compare_and_delete_fail;
    out.error = std::move(e);
    return out;
  };
  Error error;
  Node* n = Find(key, &error);
  if (n == nullptr) return fail(error);
  if (n->dir) return fail(ErrorAt(ErrorCode::kNotFile, key));
  const bool value_ok = prev_value.empty() || n->value == prev_value;
  const bool index_ok = prev_index == 0 || n->modified_index == prev_index;
  if (!value_ok || !index_ok) {
    return fail(ErrorAt(
        ErrorCode::kTestFailed,
        CompareFailure(value_ok, index_ok, prev_value, prev_index, n->value, n->modified_index)));
  }
  ++index_;
  out.event.action = kActionCompareAndDelete;
  out.event.node.key = key;
  out.event.node.modified_index = index_;
  out.event.node.created_index = n->created_index;
  out.event.prev_node = Repr(*n, false, false);
  out.event.etcd_index = index_;
  RemoveNode(n, out.event, true);
  ++stats_.compare_and_delete_success;
  hub_.Notify(out.event);
  return out;
}

void Store::DeleteExpired(int64_t cutoff_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  while (!ttl_.empty() && ttl_.begin()->first <= cutoff_ns) {
    const std::string key = ttl_.begin()->second;
    Error error;
    Node* n = Find(key, &error);
    if (n == nullptr) {  // cannot happen: removal keeps ttl_ in step
      ttl_.erase(ttl_.begin());
      continue;
    }
    ++index_;
    Event e;
    e.action = kActionExpire;
    e.node.key = key;
    e.node.dir = n->dir;
    e.node.modified_index = index_;
    e.node.created_index = n->created_index;
    e.prev_node = Repr(*n, false, false);
    e.etcd_index = index_;
    RemoveNode(n, e, true);
    ++stats_.expire_count;
    hub_.Notify(e);
  }
}

Store::WatchStart Store::Watch(const std::string& key, bool recursive, bool stream,
                               uint64_t since_index, WatchCallback deliver) {
  std::lock_guard<std::mutex> lock(mu_);
  WatchStart start;
  start.etcd_index = index_;
  if (since_index == 0) since_index = index_ + 1;
  EventHistory::ScanResult found = hub_.history().Scan(key, recursive, since_index);
  if (found.error) {
    start.error = found.error;
    start.error->index = index_;
    return start;
  }
  if (found.event) {
    start.immediate = std::move(found.event);
    start.immediate->etcd_index = index_;
    return start;
  }
  start.id = hub_.Add(key, recursive, stream, since_index, std::move(deliver));
  return start;
}

void Store::CancelWatch(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  hub_.Cancel(id);
}

std::vector<std::pair<std::string, std::optional<NodeRecord>>> Store::TakeChanges() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, std::optional<NodeRecord>>> changes;
  for (const std::string& key : dirty_) {
    Error ignored;
    const Node* n = Find(key, &ignored);
    if (n == nullptr) {
      changes.emplace_back(key, std::nullopt);
    } else {
      changes.emplace_back(
          key, NodeRecord{n->dir, n->value, n->created_index, n->modified_index, n->expire_ns});
    }
  }
  dirty_.clear();
  return changes;
}

std::vector<Event> Store::TakeNewEvents(uint64_t* oldest_kept) {
  std::lock_guard<std::mutex> lock(mu_);
  *oldest_kept = hub_.history().first_index();
  return hub_.history().TakeUnsaved();
}

void Store::Restore(uint64_t index, const std::vector<std::pair<std::string, NodeRecord>>& records,
                    std::vector<Event> history) {
  std::lock_guard<std::mutex> lock(mu_);
  root_ = std::make_unique<Node>();
  root_->dir = true;
  ttl_.clear();
  dirty_.clear();
  hub_.history().Restore(std::move(history));
  index_ = index;
  for (const auto& [key, record] : records) {
    Error ignored;
    Node* parent = EnsureDir(ParentKey(key), &ignored);
    if (parent == nullptr) continue;  // a record under a file: not written by us
    auto node = std::make_unique<Node>();
    node->key = key;
    node->dir = record.dir;
    node->value = record.value;
    node->created_index = record.created_index;
    node->modified_index = record.modified_index;
    node->parent = parent;
    const std::string name = key.substr(key.rfind('/') + 1);
    auto& slot = parent->children[name];
    if (slot) {
      // An ancestor made by EnsureDir above: keep its children.
      node->children = std::move(slot->children);
      for (auto& [n, child] : node->children) child->parent = node.get();
    }
    slot = std::move(node);
    SetExpiry(slot.get(), record.expire_ns);
  }
  dirty_.clear();
}

}  // namespace etcdpp::v2store

#include "v2store/apply.h"

#include "v2store/json.h"

namespace etcdpp::v2store {
namespace {

Outcome Dispatch(Store& store, const internalpb::V2Request& r) {
  const std::string key = CleanKey(r.path());
  if (r.method() == "POST") return store.Create(key, r.dir(), r.value(), true, r.expiration());
  if (r.method() == "DELETE") {
    if (r.prev_index() > 0 || !r.prev_value().empty()) {
      return store.CompareAndDelete(key, r.prev_value(), r.prev_index());
    }
    return store.Delete(key, r.dir(), r.recursive());
  }
  if (r.method() == "PUT") {
    const bool compare = r.prev_index() > 0 || !r.prev_value().empty();
    if (r.has_prev_exist()) {
      if (!r.prev_exist()) return store.Create(key, r.dir(), r.value(), false, r.expiration());
      if (!compare) return store.Update(key, r.value(), r.expiration(), r.refresh());
    }
    if (compare) {
      return store.CompareAndSwap(key, r.prev_value(), r.prev_index(), r.value(), r.expiration(),
                                  r.refresh());
    }
    return store.Set(key, r.dir(), r.value(), r.expiration(), r.refresh());
  }
  Outcome unknown;
  unknown.error = Error{ErrorCode::kRaftInternal, "unknown method " + r.method(), store.index()};
  return unknown;
}

}  // namespace

void ApplyV2Request(Store& store, const internalpb::V2Request& request,
                    internalpb::V2Response* response) {
  if (request.method() == "SYNC") {
    store.DeleteExpired(request.time());
    if (response != nullptr) response->set_etcd_index(store.index());
    return;
  }
  const Outcome out = Dispatch(store, request);
  if (response == nullptr) return;
  if (!out.ok()) {
    response->set_error_code(static_cast<int32_t>(out.error->code));
    response->set_error_cause(out.error->cause);
    response->set_error_index(out.error->index);
    return;
  }
  response->set_event_json(EventJson(out.event));
  response->set_action(out.event.action);
  response->set_has_prev_node(out.event.prev_node.has_value());
  response->set_etcd_index(out.event.etcd_index);
  response->set_refresh(out.event.refresh);
}

}  // namespace etcdpp::v2store

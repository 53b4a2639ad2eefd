// A committed V2Request applied to the store, with etcd's dispatch: PUT is
// set, create (prevExist=false), update (prevExist=true) or compare-and-swap
// (prevValue / prevIndex); POST creates an in-order key; DELETE deletes or
// compare-and-deletes; SYNC expires what is due at the leader's time.
#pragma once

#include "etcdpppb/internal.pb.h"
#include "v2store/store.h"

namespace etcdpp::v2store {

// Fills `response` (may be null when nobody waits) with the outcome.
void ApplyV2Request(Store& store, const internalpb::V2Request& request,
                    internalpb::V2Response* response);

}  // namespace etcdpp::v2store

// Waiting for writes a member answered before its backend commit.
#pragma once

#include <future>

#include "base/status.h"
#include "server/interfaces.h"

namespace etcdpp::api {

// Returns once every write the member answered is in its store. A member
// may answer before the backend commit (docs/durability.md, "Answering
// before the backend commit"); a call that reads the store's contents for
// a client (a hash, a snapshot, a watch's start and compaction check) must
// see what clients were told. Blocks the calling thread for at most the
// commit in flight: the apply thread never waits for a gRPC thread, so this
// cannot deadlock. `barrier` may be null (nothing to wait for).
inline void WaitForAnsweredWrites(server::ReadBarrier* barrier) {
  if (barrier == nullptr || barrier->AnsweredWritesVisible()) return;
  std::promise<Status> committed;
  barrier->WaitAnsweredWrites([&committed](const Status& st) { committed.set_value(st); });
  committed.get_future().wait();
}

}  // namespace etcdpp::api

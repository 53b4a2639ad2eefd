// Hand-offs through code ThreadSanitizer cannot see into, restated for it.
//
// Debian's gRPC (and the abseil it locks with) is not built with TSan. When
// our code gives an object to gRPC on one thread (a message to write, a
// reactor to call back, a client call's state) and gRPC gives it back on
// another (the reaction, the completion callback), gRPC's own locks order
// the two, but TSan does not see them and reports every access on either
// side as a race. The pair below tells it the ordering gRPC guarantees:
//
//   HandingOff(obj);   // on our side, just before the gRPC call that
//   StartWrite(obj);   // publishes obj to another thread
//   ...
//   void OnWriteDone(bool ok) {
//     TookBack(obj);   // first thing in the reaction that gRPC promises
//     ...              // runs after it
//
// Everything between a TookBack and the next HandingOff is checked as
// usual, so races inside our reactors (a hub thread against a gRPC
// reaction, say) are still found. Each pair must name the same address and
// stand for an ordering the library documents; a HandingOff placed before
// the call that publishes can only hide a race, never invent one, which is
// the safe side for a sanitizer.
//
// Without TSan both compile to nothing.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define ETCDPP_TSAN_HANDOFF 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ETCDPP_TSAN_HANDOFF 1
#endif
#endif

#if defined(ETCDPP_TSAN_HANDOFF)
#include <sanitizer/tsan_interface.h>
#endif

namespace etcdpp::tsan {

#if defined(ETCDPP_TSAN_HANDOFF)
// Everything this thread did so far happens before whatever follows a
// TookBack(object) on any thread.
inline void HandingOff(const void* object) { __tsan_release(const_cast<void*>(object)); }
// Everything before earlier HandingOff(object) calls happens before what
// this thread does next.
inline void TookBack(const void* object) { __tsan_acquire(const_cast<void*>(object)); }
#else
inline void HandingOff(const void*) {}
inline void TookBack(const void*) {}
#endif

// A gRPC reaction (OnReadDone, OnWriteDone, OnCancel...) of a reactor that
// overrides OnDone: it runs after the operation it completes (`operation`,
// the address handed off when it started), and it has returned before
// gRPC calls OnDone, which takes back `reactor`. Declare one as the first
// statement of every reaction, and call HandingOff(reactor) before Finish.
class Reaction {
 public:
  // `operation` may be null (OnCancel completes none).
  Reaction(const void* operation, const void* reactor) : reactor_(reactor) {
    if (operation != nullptr) TookBack(operation);
  }
  ~Reaction() { HandingOff(reactor_); }
  Reaction(const Reaction&) = delete;
  Reaction& operator=(const Reaction&) = delete;

 private:
  const void* const reactor_;
};

}  // namespace etcdpp::tsan

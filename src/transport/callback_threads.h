// gRPC's C++ callback API (the reactors and the std::function unary calls
// used by the peer caller, the Lock and Election services' self client, the
// HTTP gateway and the health check) runs its callbacks on a thread pool
// that Debian's gRPC (1.51, no background poller) shares between every
// channel and server of the process and reference-counts: the first user
// starts the threads, the last one to go stops them and frees the queue.
//
// That last release must not happen on one of the pool's own threads. A
// ClientContext keeps its channel alive, so destroying one inside its
// completion callback can drop the channel's last reference there; gRPC
// then cannot join the thread it runs on, frees the queue anyway, and the
// thread goes on polling freed memory (a double free in
// grpc_cq_internal_unref, or "assertion failed: prior > 0"; gRPC issue
// 32584 describes the same trap). Every caller ordering its releases is
// fragile, so the process holds one reference of its own for its lifetime:
// a server with a callback service and no port, never destroyed.
#pragma once

namespace etcdpp::transport {

// Makes the callback pool live until the process exits. Idempotent and
// thread-safe; call it before the first callback-API channel or server.
void KeepGrpcCallbackThreads();

}  // namespace etcdpp::transport

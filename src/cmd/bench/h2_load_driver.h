// RunLoadOverH2: the load of load_driver.h (the same clients, connections,
// request numbering, deadlines and report) sent as gRPC calls over HTTP/2
// by the generator itself (nghttp2), without gRPC C++'s client.
//
// Why: gRPC C++'s per-call machinery cost the generator 27-36 µs of CPU per
// request on the project's 2-core machine, more than etcdpp's server spends
// on a put, so the generator, not the server, capped every unary load. On
// the wire nothing changes: each request is a gRPC call on its own HTTP/2
// stream (the headers gRPC clients send, one length-prefixed message, the
// status in the trailers), so etcd and etcdpp serve it as any client's.
//
// Scope: plaintext connections only, no per-call metadata (the caller keeps
// gRPC's driver for TLS and --user). A call past its deadline is reset
// (RST_STREAM CANCEL) and counted as etcd's client counts it.
//
// Threading: `threads` event loops, each owning the connections c with
// c % threads == its index and the clients on them; nothing is shared
// between loops but the request counter.
#ifndef ETCDPP_CMD_BENCH_H2_LOAD_DRIVER_H_
#define ETCDPP_CMD_BENCH_H2_LOAD_DRIVER_H_

#include "cmd/bench/load_driver.h"

namespace etcdpp::bench {

LoadResult RunLoadOverH2(const LoadOptions& options, const CallFactory& make_call);

}  // namespace etcdpp::bench

#endif  // ETCDPP_CMD_BENCH_H2_LOAD_DRIVER_H_

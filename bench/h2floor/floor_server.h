// What h2floor_server and h2floor_grpc_twin share, so that the two differ
// only in the transport: the reply header and the command line.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <thread>

#include "etcdserverpb/rpc.pb.h"

namespace h2floor {

// Every reply's header: fixed values, as from a one-member cluster that
// never writes.
inline void FillHeader(etcdserverpb::ResponseHeader* header) {
  header->set_cluster_id(0x1c3a8d2e5f6b7a90);
  header->set_member_id(0x6a1f2e3d4c5b6a79);
  header->set_revision(1);
  header->set_raft_term(2);
}

struct ServerFlags {
  int port = 0;  // 0: any free port (the server prints the one it bound)
  int threads = static_cast<int>(std::thread::hardware_concurrency());
};

// Parses `[--port P] [--threads N]`; false (after printing the usage) on
// anything else. threads is at least 1 afterwards.
inline bool ParseServerFlags(int argc, char** argv, const char* program, ServerFlags* flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--port" && i + 1 < argc) {
      flags->port = std::atoi(argv[++i]);
    } else if (arg == "--threads" && i + 1 < argc) {
      flags->threads = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--port P] [--threads N]\n", program);
      return false;
    }
  }
  if (flags->threads < 1) flags->threads = 1;
  return true;
}

}  // namespace h2floor

// Loopback ports for the servers a test starts.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <set>

namespace etcdpp::testing {

// A TCP port on 127.0.0.1 that nobody listened on a moment ago, and that
// this process has not been given before. The kernel may give a closed
// probe's port out again at once, so without the second condition a test
// picking a member's peer and client ports in a row can get one port for
// both (seen in lease_service_test: "cannot listen on the client URLs").
// Another process may still take the port before the caller binds it.
inline int FreePort() {
  static std::mutex mu;
  static std::set<int> given;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) break;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                       ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    ::close(fd);
    if (!bound) continue;
    const int port = ntohs(addr.sin_port);
    std::lock_guard<std::mutex> lock(mu);
    if (given.insert(port).second) return port;
  }
  ADD_FAILURE() << "no free loopback port";
  return 0;
}

}  // namespace etcdpp::testing

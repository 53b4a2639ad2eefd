// Loopback ports for the servers a test starts.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <random>
#include <set>

namespace etcdpp::testing {

namespace free_port_detail {

// Ports [first, last] that no outgoing connection can be given: those below
// or above the kernel's ephemeral range. A member restarted on its old port
// must find it free, but while the member is down any connect() on the
// machine may take that port as its local end if it lies in the ephemeral
// range (seen in CI: a restart failing with "address already in use").
// Returns false when the ephemeral range leaves no room.
inline bool ListenRange(int* first, int* last) {
  int low = 32768, high = 60999;
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  if (!(range >> low >> high)) low = 32768, high = 60999;
  constexpr int kLowest = 10000;
  const int below = low - kLowest;  // ports [kLowest, low)
  const int above = 65535 - high;   // ports (high, 65535]
  if (below <= 0 && above <= 0) return false;
  if (below >= above) {
    *first = kLowest, *last = low - 1;
  } else {
    *first = std::max(kLowest, high + 1), *last = 65535;
  }
  return *first <= *last;
}

// Binds 127.0.0.1:port (0: the kernel picks) and returns the bound port, or
// 0 if that port is taken.
inline int ProbeBind(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  socklen_t len = sizeof(addr);
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  return bound ? ntohs(addr.sin_port) : 0;
}

}  // namespace free_port_detail

// A TCP port on 127.0.0.1 that nobody listened on a moment ago, outside the
// ephemeral range, and that this process has not been given before. The
// kernel may give a closed probe's port out again at once, so without the
// last condition a test picking a member's peer and client ports in a row
// can get one port for both (seen in lease_service_test: "cannot listen on
// the client URLs"). Picked at random so that test processes running in
// parallel rarely try the same port; another process may still take it
// before the caller binds it.
inline int FreePort() {
  static std::mutex mu;
  static std::set<int> given;
  static std::mt19937 random{std::random_device{}()};
  int first = 0, last = 0;
  const bool ranged = free_port_detail::ListenRange(&first, &last);
  std::lock_guard<std::mutex> lock(mu);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int wanted = ranged ? std::uniform_int_distribution<int>(first, last)(random) : 0;
    if (wanted != 0 && given.count(wanted) != 0) continue;
    const int port = free_port_detail::ProbeBind(wanted);
    if (port != 0 && given.insert(port).second) return port;
  }
  ADD_FAILURE() << "no free loopback port";
  return 0;
}

}  // namespace etcdpp::testing

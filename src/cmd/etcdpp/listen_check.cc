#include "cmd/etcdpp/listen_check.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "server/membership.h"

namespace etcdpp::cmd {

Status CheckCanListen(const std::string& url, const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument("listen URL " + url + " has no port");
  }
  std::string host = host_port.substr(0, colon);
  const std::string port = host_port.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    return Status::InvalidArgument("cannot listen on " + url + ": " + gai_strerror(rc));
  }
  Status result = Status::OK();
  for (addrinfo* a = found; a != nullptr && result.ok(); a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;  // An address family this machine lacks; gRPC skips it too.
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0) {
      const int err = errno;
      std::string message = "cannot listen on " + url + ": " + std::strerror(err);
      if (err == EADDRINUSE) message += " (port " + port + " is taken by another program)";
      result = Status::Unavailable(message);
    }
    close(fd);
  }
  freeaddrinfo(found);
  return result;
}

namespace {

Status CheckAll(const std::string& urls_flag) {
  auto urls = server::ParseUrls(urls_flag);
  if (!urls.ok()) return urls.status();
  for (const std::string& url : *urls) {
    auto host_port = server::HostPort(url);
    if (!host_port.ok()) return host_port.status();
    if (Status st = CheckCanListen(url, *host_port); !st.ok()) return st;
  }
  return Status::OK();
}

}  // namespace

Status CheckListenUrls(const std::string& listen_client_urls, const std::string& listen_peer_urls,
                       const std::string& initial_cluster) {
  if (Status st = CheckAll(listen_client_urls); !st.ok()) return st;
  std::set<std::string> names;
  size_t begin = 0;
  while (begin < initial_cluster.size()) {
    const size_t end = std::min(initial_cluster.find(',', begin), initial_cluster.size());
    const std::string entry = initial_cluster.substr(begin, end - begin);
    names.insert(entry.substr(0, entry.find('=')));
    begin = end + 1;
  }
  if (names.size() > 1) return CheckAll(listen_peer_urls);
  return Status::OK();
}

}  // namespace etcdpp::cmd

#include "server/membership.h"

#include <openssl/sha.h>

#include <algorithm>
#include <sstream>

namespace etcdpp::server {
namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

uint64_t FirstEightBytesBigEndian(const unsigned char* digest) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | digest[i];
  return v;
}

}  // namespace

Result<std::string> HostPort(const std::string& url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    return Status::InvalidArgument("URL must have a scheme (http:// or https://): " + url);
  }
  std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https" && scheme != "unix" && scheme != "unixs") {
    return Status::InvalidArgument("URL scheme must be http or https: " + url);
  }
  std::string rest = url.substr(scheme_end + 3);
  size_t slash = rest.find('/');
  if (slash != std::string::npos) rest = rest.substr(0, slash);
  if (rest.empty() || rest.rfind(':') == std::string::npos) {
    return Status::InvalidArgument("URL must have a host and a port: " + url);
  }
  return rest;
}

Result<std::vector<std::string>> ParseUrls(const std::string& s) {
  std::vector<std::string> urls = Split(s, ',');
  if (urls.empty()) return Status::InvalidArgument("no URL given");
  for (const std::string& u : urls) {
    Result<std::string> hp = HostPort(u);
    if (!hp.ok()) return hp.status();
  }
  return urls;
}

Result<std::map<std::string, std::vector<std::string>>> ParseInitialCluster(const std::string& s) {
  std::map<std::string, std::vector<std::string>> members;
  for (const std::string& item : Split(s, ',')) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      return Status::InvalidArgument("--initial-cluster: expected name=url, got \"" + item + "\"");
    }
    std::string url = item.substr(eq + 1);
    Result<std::string> hp = HostPort(url);
    if (!hp.ok()) return Status::InvalidArgument("--initial-cluster: " + hp.status().message());
    members[item.substr(0, eq)].push_back(url);
  }
  if (members.empty()) return Status::InvalidArgument("--initial-cluster is empty");
  return members;
}

uint64_t ComputeMemberId(std::vector<std::string> peer_urls, const std::string& cluster_token) {
  std::sort(peer_urls.begin(), peer_urls.end());
  std::string b;
  for (const std::string& u : peer_urls) b += u;
  b += cluster_token;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(b.data()), b.size(), digest);
  return FirstEightBytesBigEndian(digest);
}

uint64_t ComputeClusterId(std::vector<uint64_t> member_ids) {
  std::sort(member_ids.begin(), member_ids.end());
  std::string b;
  for (uint64_t id : member_ids) {
    for (int shift = 56; shift >= 0; shift -= 8) b.push_back(static_cast<char>(id >> shift));
  }
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(b.data()), b.size(), digest);
  return FirstEightBytesBigEndian(digest);
}

Result<std::vector<Member>> InitialMembers(const std::string& initial_cluster,
                                           const std::string& cluster_token) {
  auto parsed = ParseInitialCluster(initial_cluster);
  if (!parsed.ok()) return parsed.status();
  std::vector<Member> members;
  for (const auto& [name, urls] : *parsed) {
    Member m;
    m.name = name;
    m.peer_urls = urls;
    m.id = ComputeMemberId(urls, cluster_token);
    members.push_back(std::move(m));
  }
  return members;
}

}  // namespace etcdpp::server

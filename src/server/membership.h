// Cluster membership as the bootstrap flags describe it, and etcd's rules for
// deriving member and cluster IDs from it.
//
// IDs are derived exactly like etcd's (SHA-1 of the sorted peer URLs and the
// cluster token; cluster ID from the sorted member IDs), so a cluster started
// with the same --initial-cluster and --initial-cluster-token has the same
// IDs under etcd and etcdpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace etcdpp::server {

struct Member {
  uint64_t id = 0;
  std::string name;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
  bool is_learner = false;
};

// Parses "--initial-cluster": "name1=url1,name1=url2,name2=url3". A name may
// repeat to give one member several peer URLs.
Result<std::map<std::string, std::vector<std::string>>> ParseInitialCluster(const std::string& s);

// Splits a comma-separated URL list ("--listen-client-urls") and checks each is
// http:// or https:// with a host and port.
Result<std::vector<std::string>> ParseUrls(const std::string& s);

// "http://127.0.0.1:2379" -> "127.0.0.1:2379" (what a socket binds to).
Result<std::string> HostPort(const std::string& url);

uint64_t ComputeMemberId(std::vector<std::string> peer_urls, const std::string& cluster_token);
uint64_t ComputeClusterId(std::vector<uint64_t> member_ids);

// The bootstrap membership: every member of --initial-cluster with its ID.
Result<std::vector<Member>> InitialMembers(const std::string& initial_cluster,
                                           const std::string& cluster_token);

}  // namespace etcdpp::server

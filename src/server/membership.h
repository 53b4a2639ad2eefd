// Cluster membership as the bootstrap flags describe it, and etcd's rules for
// deriving member and cluster IDs from it.
//
// IDs are derived exactly like etcd's (SHA-1 of the sorted peer URLs and the
// cluster token; cluster ID from the sorted member IDs), so a cluster started
// with the same --initial-cluster and --initial-cluster-token has the same
// IDs under etcd and etcdpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "etcdpppb/internal.pb.h"
#include "raftpb/raft.pb.h"

namespace etcdpp::server {

// The key of the applied membership in the store's meta table. The store
// keeps a copy so that data dirs whose snapshots predate membership in
// snapshot data still find it.
inline constexpr char kMembershipMetaKey[] = "membership/state";

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

internalpb::MemberInfo ToProto(const Member& m);
Member FromProto(const internalpb::MemberInfo& p);

// The applied membership of the cluster: a pure value, changed only by
// committed Raft entries (ConfChange entries and MemberAttributesRequests),
// so every member holds the same one at the same applied index.
// Not thread-safe: SharedMembership (below) wraps it for the server.
//
// Changes are single-server Raft conf changes, one at a time (see
// docs/membership.md); Validate implements etcd 3.4's
// ValidateConfigurationChange with etcd's client errors.
class Membership {
 public:
  // At most this many learners (etcd 3.4's maxLearners).
  static constexpr size_t kMaxLearners = 1;

  Membership() = default;
  static Result<Membership> Decode(const std::string& data);
  std::string Encode() const;

  // Members in ascending id order.
  std::vector<Member> List() const;
  const Member* Find(uint64_t id) const;
  bool IsRemoved(uint64_t id) const { return removed_.count(id) != 0; }
  bool empty() const { return members_.empty(); }
  size_t size() const { return members_.size(); }
  std::vector<uint64_t> VoterIds() const;

  // Whether `cc` (with its decoded context) may be applied now. Errors:
  // kMemberNotFound (unknown or removed id), kMemberExist, kPeerURLExist,
  // kMemberNotLearner, kTooManyLearners.
  Status Validate(const raftpb::ConfChange& cc, const internalpb::ConfChangeContext& ctx) const;
  // Applies a change Validate accepted.
  void Apply(const raftpb::ConfChange& cc, const internalpb::ConfChangeContext& ctx);
  // A member's published name and client URLs; unknown ids are ignored.
  void SetAttributes(const internalpb::MemberAttributesRequest& attrs);

  // etcd's strict reconfiguration checks ("started" = has published its
  // name): adding a voter keeps a quorum of started voters; removing voter
  // `id` leaves one.
  bool IsReadyToAddVoter() const;
  bool IsReadyToRemoveVoter(uint64_t id) const;
  bool IsReadyToPromote(uint64_t id) const;

 private:
  std::map<uint64_t, Member> members_;
  std::set<uint64_t> removed_;
};

// The applied Membership shared between threads: the apply thread changes
// it (conf change entries, published attributes, snapshot installs); the
// raft loop, the reconfiguration checks and the API read copies. mu_ guards
// the value; whether this member is a learner is mirrored in an atomic so
// the per-request learner check takes no lock.
class SharedMembership {
 public:
  explicit SharedMembership(uint64_t self_id) : self_id_(self_id) {}

  Membership Copy() const;
  std::vector<Member> List() const;
  std::string Encode() const;
  bool self_is_learner() const { return self_is_learner_.load(std::memory_order_acquire); }

  // Apply thread only, below.
  void Replace(Membership membership);
  // Validates `cc` and applies it when valid; *encoded is the membership
  // after it (untouched when refused).
  Status ValidateAndApply(const raftpb::ConfChange& cc, const internalpb::ConfChangeContext& ctx,
                          std::string* encoded);
  // Returns the membership after the attributes, encoded.
  std::string SetAttributes(const internalpb::MemberAttributesRequest& attrs);

 private:
  void NoteSelfLocked();

  const uint64_t self_id_;
  mutable std::mutex mu_;
  Membership membership_;  // guarded by mu_
  std::atomic<bool> self_is_learner_{false};
};

}  // namespace etcdpp::server

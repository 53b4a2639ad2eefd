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

internalpb::MemberInfo ToProto(const Member& m) {
  internalpb::MemberInfo p;
  p.set_id(m.id);
  p.set_name(m.name);
  for (const std::string& u : m.peer_urls) p.add_peer_urls(u);
  for (const std::string& u : m.client_urls) p.add_client_urls(u);
  p.set_is_learner(m.is_learner);
  return p;
}

Member FromProto(const internalpb::MemberInfo& p) {
  Member m;
  m.id = p.id();
  m.name = p.name();
  m.peer_urls.assign(p.peer_urls().begin(), p.peer_urls().end());
  m.client_urls.assign(p.client_urls().begin(), p.client_urls().end());
  m.is_learner = p.is_learner();
  return m;
}

Result<Membership> Membership::Decode(const std::string& data) {
  internalpb::MembershipState state;
  if (!state.ParseFromString(data)) {
    return Status::Corruption("membership: undecodable membership state");
  }
  Membership out;
  for (const auto& m : state.members()) out.members_[m.id()] = FromProto(m);
  out.removed_.insert(state.removed().begin(), state.removed().end());
  return out;
}

std::string Membership::Encode() const {
  internalpb::MembershipState state;
  for (const auto& [id, m] : members_) *state.add_members() = ToProto(m);
  for (uint64_t id : removed_) state.add_removed(id);
  return state.SerializeAsString();
}

std::vector<Member> Membership::List() const {
  std::vector<Member> out;
  for (const auto& [id, m] : members_) out.push_back(m);
  return out;
}

const Member* Membership::Find(uint64_t id) const {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : &it->second;
}

std::vector<uint64_t> Membership::VoterIds() const {
  std::vector<uint64_t> out;
  for (const auto& [id, m] : members_) {
    if (!m.is_learner) out.push_back(id);
  }
  return out;
}

Status Membership::Validate(const raftpb::ConfChange& cc,
                            const internalpb::ConfChangeContext& ctx) const {
  const uint64_t id = cc.node_id();
  if (removed_.count(id)) return Status(Code::kMemberNotFound);
  const Member* existing = Find(id);
  switch (cc.type()) {
    case raftpb::CONF_CHANGE_ADD_NODE:
    case raftpb::CONF_CHANGE_ADD_LEARNER_NODE: {
      if (ctx.is_promote()) {
        if (existing == nullptr) return Status(Code::kMemberNotFound);
        if (!existing->is_learner) return Status(Code::kMemberNotLearner);
        return Status::OK();
      }
      if (existing != nullptr) return Status(Code::kMemberExist);
      for (const auto& [other_id, m] : members_) {
        for (const std::string& u : m.peer_urls) {
          for (const std::string& n : ctx.member().peer_urls()) {
            if (u == n) return Status(Code::kPeerURLExist);
          }
        }
      }
      if (cc.type() == raftpb::CONF_CHANGE_ADD_LEARNER_NODE || ctx.member().is_learner()) {
        size_t learners = 0;
        for (const auto& [other_id, m] : members_) learners += m.is_learner ? 1 : 0;
        if (learners + 1 > kMaxLearners) return Status(Code::kTooManyLearners);
      }
      return Status::OK();
    }
    case raftpb::CONF_CHANGE_REMOVE_NODE:
      if (existing == nullptr) return Status(Code::kMemberNotFound);
      return Status::OK();
    case raftpb::CONF_CHANGE_UPDATE_NODE:
      if (existing == nullptr) return Status(Code::kMemberNotFound);
      for (const auto& [other_id, m] : members_) {
        if (other_id == id) continue;
        for (const std::string& u : m.peer_urls) {
          for (const std::string& n : ctx.member().peer_urls()) {
            if (u == n) return Status(Code::kPeerURLExist);
          }
        }
      }
      return Status::OK();
    default:
      return Status::InvalidArgument("membership: unknown conf change type");
  }
}

void Membership::Apply(const raftpb::ConfChange& cc, const internalpb::ConfChangeContext& ctx) {
  const uint64_t id = cc.node_id();
  switch (cc.type()) {
    case raftpb::CONF_CHANGE_ADD_NODE:
    case raftpb::CONF_CHANGE_ADD_LEARNER_NODE:
      if (ctx.is_promote()) {
        members_[id].is_learner = false;
      } else {
        Member m = FromProto(ctx.member());
        m.id = id;
        m.is_learner = cc.type() == raftpb::CONF_CHANGE_ADD_LEARNER_NODE;
        members_[id] = std::move(m);
      }
      break;
    case raftpb::CONF_CHANGE_REMOVE_NODE:
      members_.erase(id);
      removed_.insert(id);
      break;
    case raftpb::CONF_CHANGE_UPDATE_NODE:
      members_[id].peer_urls.assign(ctx.member().peer_urls().begin(),
                                    ctx.member().peer_urls().end());
      break;
    default:
      break;
  }
}

void Membership::SetAttributes(const internalpb::MemberAttributesRequest& attrs) {
  auto it = members_.find(attrs.member_id());
  if (it == members_.end()) return;
  it->second.name = attrs.name();
  it->second.client_urls.assign(attrs.client_urls().begin(), attrs.client_urls().end());
}

bool Membership::IsReadyToAddVoter() const {
  size_t voters = 1;  // the one being added
  size_t started = 0;
  for (const auto& [id, m] : members_) {
    if (m.is_learner) continue;
    ++voters;
    if (!m.name.empty()) ++started;
  }
  // Adding a second member to a one-member cluster is how a cluster is grown
  // from a restored backup: allowed although it loses quorum until the new
  // member starts.
  if (started == 1 && voters == 2) return true;
  return started >= voters / 2 + 1;
}

bool Membership::IsReadyToRemoveVoter(uint64_t id) const {
  size_t voters = 0;
  size_t started = 0;
  for (const auto& [mid, m] : members_) {
    if (m.is_learner || mid == id) continue;
    ++voters;
    if (!m.name.empty()) ++started;
  }
  return started >= voters / 2 + 1;
}

bool Membership::IsReadyToPromote(uint64_t) const {
  // The learner counts as a started voter of the future cluster.
  size_t voters = 1;
  size_t started = 1;
  for (const auto& [id, m] : members_) {
    if (m.is_learner) continue;
    ++voters;
    if (!m.name.empty()) ++started;
  }
  return started >= voters / 2 + 1;
}

Membership SharedMembership::Copy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return membership_;
}

std::vector<Member> SharedMembership::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  return membership_.List();
}

std::string SharedMembership::Encode() const {
  std::lock_guard<std::mutex> lock(mu_);
  return membership_.Encode();
}

void SharedMembership::Replace(Membership membership) {
  std::lock_guard<std::mutex> lock(mu_);
  membership_ = std::move(membership);
  NoteSelfLocked();
}

Status SharedMembership::ValidateAndApply(const raftpb::ConfChange& cc,
                                          const internalpb::ConfChangeContext& ctx,
                                          std::string* encoded) {
  std::lock_guard<std::mutex> lock(mu_);
  Status st = membership_.Validate(cc, ctx);
  if (!st.ok()) return st;
  membership_.Apply(cc, ctx);
  NoteSelfLocked();
  *encoded = membership_.Encode();
  return Status::OK();
}

std::string SharedMembership::SetAttributes(const internalpb::MemberAttributesRequest& attrs) {
  std::lock_guard<std::mutex> lock(mu_);
  membership_.SetAttributes(attrs);
  return membership_.Encode();
}

void SharedMembership::NoteSelfLocked() {
  const Member* self = membership_.Find(self_id_);
  self_is_learner_.store(self != nullptr && self->is_learner, std::memory_order_release);
}

}  // namespace etcdpp::server

// server::Membership: etcd 3.4's validation of conf changes, the strict
// reconfiguration rules, and the encoding kept in snapshots and the store.
#include "server/membership.h"

#include <gtest/gtest.h>

namespace etcdpp::server {
namespace {

raftpb::ConfChange Change(raftpb::ConfChangeType type, uint64_t id) {
  raftpb::ConfChange cc;
  cc.set_type(type);
  cc.set_node_id(id);
  return cc;
}

internalpb::ConfChangeContext Context(uint64_t id, std::vector<std::string> urls,
                                      bool promote = false) {
  internalpb::ConfChangeContext ctx;
  ctx.mutable_member()->set_id(id);
  for (const std::string& u : urls) ctx.mutable_member()->add_peer_urls(u);
  ctx.set_is_promote(promote);
  return ctx;
}

// Applies `cc` after checking it validates.
void MustApply(Membership& m, const raftpb::ConfChange& cc,
               const internalpb::ConfChangeContext& ctx) {
  Status st = m.Validate(cc, ctx);
  ASSERT_TRUE(st.ok()) << st.ToString();
  m.Apply(cc, ctx);
}

void Publish(Membership& m, uint64_t id, const std::string& name) {
  internalpb::MemberAttributesRequest attrs;
  attrs.set_member_id(id);
  attrs.set_name(name);
  attrs.add_client_urls("http://127.0.0.1:" + std::to_string(2379 + id));
  m.SetAttributes(attrs);
}

class MembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (uint64_t id = 1; id <= 3; ++id) {
      MustApply(m_, Change(raftpb::CONF_CHANGE_ADD_NODE, id),
                Context(id, {"http://10.0.0." + std::to_string(id) + ":2380"}));
    }
  }
  Membership m_;
};

TEST_F(MembershipTest, AddErrorsAreEtcds) {
  // Same id.
  EXPECT_EQ(m_.Validate(Change(raftpb::CONF_CHANGE_ADD_NODE, 2), Context(2, {"http://x:1"})).code(),
            Code::kMemberExist);
  // A peer URL another member has.
  EXPECT_EQ(
      m_.Validate(Change(raftpb::CONF_CHANGE_ADD_NODE, 9), Context(9, {"http://10.0.0.1:2380"}))
          .code(),
      Code::kPeerURLExist);
  // One learner at most (etcd 3.4's maxLearners).
  MustApply(m_, Change(raftpb::CONF_CHANGE_ADD_LEARNER_NODE, 4), Context(4, {"http://l:1"}));
  EXPECT_TRUE(m_.Find(4)->is_learner);
  EXPECT_EQ(m_.Validate(Change(raftpb::CONF_CHANGE_ADD_LEARNER_NODE, 5), Context(5, {"http://l:2"}))
                .code(),
            Code::kTooManyLearners);
}

TEST_F(MembershipTest, RemovedIdsAreNeverReused) {
  MustApply(m_, Change(raftpb::CONF_CHANGE_REMOVE_NODE, 3), Context(3, {}));
  EXPECT_EQ(m_.size(), 2u);
  EXPECT_TRUE(m_.IsRemoved(3));
  EXPECT_EQ(m_.Validate(Change(raftpb::CONF_CHANGE_REMOVE_NODE, 3), Context(3, {})).code(),
            Code::kMemberNotFound);
  EXPECT_EQ(
      m_.Validate(Change(raftpb::CONF_CHANGE_ADD_NODE, 3), Context(3, {"http://new:1"})).code(),
      Code::kMemberNotFound);
  // Its peer URL is free again for a new member.
  EXPECT_TRUE(
      m_.Validate(Change(raftpb::CONF_CHANGE_ADD_NODE, 7), Context(7, {"http://10.0.0.3:2380"}))
          .ok());
}

TEST_F(MembershipTest, PromoteAndUpdate) {
  EXPECT_EQ(m_.Validate(Change(raftpb::CONF_CHANGE_ADD_NODE, 1), Context(1, {}, true)).code(),
            Code::kMemberNotLearner);
  EXPECT_EQ(m_.Validate(Change(raftpb::CONF_CHANGE_ADD_NODE, 8), Context(8, {}, true)).code(),
            Code::kMemberNotFound);
  MustApply(m_, Change(raftpb::CONF_CHANGE_ADD_LEARNER_NODE, 4), Context(4, {"http://l:1"}));
  MustApply(m_, Change(raftpb::CONF_CHANGE_ADD_NODE, 4), Context(4, {}, true));
  EXPECT_FALSE(m_.Find(4)->is_learner);
  EXPECT_EQ(m_.Find(4)->peer_urls, std::vector<std::string>{"http://l:1"});

  // Update: its own URLs may stay, another member's may not be taken.
  EXPECT_TRUE(m_.Validate(Change(raftpb::CONF_CHANGE_UPDATE_NODE, 1),
                          Context(1, {"http://10.0.0.1:2380", "http://b:2"}))
                  .ok());
  EXPECT_EQ(
      m_.Validate(Change(raftpb::CONF_CHANGE_UPDATE_NODE, 1), Context(1, {"http://10.0.0.2:2380"}))
          .code(),
      Code::kPeerURLExist);
  EXPECT_EQ(
      m_.Validate(Change(raftpb::CONF_CHANGE_UPDATE_NODE, 9), Context(9, {"http://z:1"})).code(),
      Code::kMemberNotFound);
  MustApply(m_, Change(raftpb::CONF_CHANGE_UPDATE_NODE, 1), Context(1, {"http://b:2"}));
  EXPECT_EQ(m_.Find(1)->peer_urls, std::vector<std::string>{"http://b:2"});
}

TEST_F(MembershipTest, StrictReconfigurationNeedsStartedMembers) {
  // Nobody has published yet: adding a voter to 3 needs 3 started of 4.
  EXPECT_FALSE(m_.IsReadyToAddVoter());
  Publish(m_, 1, "a");
  Publish(m_, 2, "b");
  EXPECT_FALSE(m_.IsReadyToAddVoter());
  Publish(m_, 3, "c");
  EXPECT_TRUE(m_.IsReadyToAddVoter());
  // Removing 3 leaves 1 and 2 started: a quorum of two.
  EXPECT_TRUE(m_.IsReadyToRemoveVoter(3));

  Membership one;
  MustApply(one, Change(raftpb::CONF_CHANGE_ADD_NODE, 1), Context(1, {"http://a:1"}));
  Publish(one, 1, "a");
  // Growing a one-member cluster is allowed although it loses quorum.
  EXPECT_TRUE(one.IsReadyToAddVoter());
}

TEST_F(MembershipTest, EncodingRoundTrips) {
  Publish(m_, 2, "b");
  MustApply(m_, Change(raftpb::CONF_CHANGE_REMOVE_NODE, 3), Context(3, {}));
  auto decoded = Membership::Decode(m_.Encode());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->Encode(), m_.Encode());
  EXPECT_EQ(decoded->Find(2)->name, "b");
  EXPECT_EQ(decoded->Find(2)->client_urls, std::vector<std::string>{"http://127.0.0.1:2381"});
  EXPECT_TRUE(decoded->IsRemoved(3));
  EXPECT_EQ(decoded->VoterIds(), (std::vector<uint64_t>{1, 2}));
  EXPECT_FALSE(Membership::Decode("\xff\xff\xff").ok());
}

}  // namespace
}  // namespace etcdpp::server

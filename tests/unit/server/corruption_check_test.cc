// The corruption checks' decisions: which members a round flags, what the
// start-up check refuses, and the peer call's encoding.
#include "server/corruption_check.h"

#include <gtest/gtest.h>

#include <future>
#include <map>
#include <memory>
#include <thread>

#include "base/clock.h"

namespace etcdpp::server {
namespace {

KvHash Hash(uint64_t member, uint32_t hash, int64_t revision = 10, int64_t compact = 0) {
  return KvHash{member, revision, compact, hash};
}

PeerHash Answer(KvHash h) { return PeerHash{h.member_id, h}; }

TEST(CorruptionCheckTest, AMinorityPeerIsFlagged) {
  const KvHash leader = Hash(1, 0xaaaa);
  EXPECT_EQ(MembersToFlag(leader, {Answer(Hash(2, 0xaaaa)), Answer(Hash(3, 0xbbbb))}),
            std::vector<uint64_t>({3}));
}

TEST(CorruptionCheckTest, ADamagedLeaderFlagsItselfNotItsFollowers) {
  const KvHash leader = Hash(1, 0xbbbb);
  EXPECT_EQ(MembersToFlag(leader, {Answer(Hash(2, 0xaaaa)), Answer(Hash(3, 0xaaaa))}),
            std::vector<uint64_t>({1}));
}

TEST(CorruptionCheckTest, WithoutAMajorityThePeersThatDifferFromTheLeaderAreFlagged) {
  const KvHash leader = Hash(1, 0xaaaa);
  EXPECT_EQ(MembersToFlag(leader, {Answer(Hash(2, 0xbbbb))}), std::vector<uint64_t>({2}));
  EXPECT_EQ(MembersToFlag(leader, {Answer(Hash(3, 0xcccc)), Answer(Hash(2, 0xbbbb))}),
            std::vector<uint64_t>({2, 3}));
}

TEST(CorruptionCheckTest, OnlyTheSameRevisionAndCompactRevisionAreCompared) {
  const KvHash leader = Hash(1, 0xaaaa, 10, 4);
  const std::vector<PeerHash> peers = {
      Answer(Hash(2, 0xbbbb, 9, 4)),          // another revision
      Answer(Hash(3, 0xcccc, 10, 5)),         // compacted further
      PeerHash{4, Status(Code::kFutureRev)},  // behind the revision
      PeerHash{5, Status(Code::kTimeout)},    // silent
  };
  EXPECT_TRUE(MembersToFlag(leader, peers).empty());
  EXPECT_TRUE(PeersThatDiffer(leader, peers).empty());
}

TEST(CorruptionCheckTest, AgreeingMembersFlagNobody) {
  const KvHash leader = Hash(1, 0xaaaa);
  EXPECT_TRUE(MembersToFlag(leader, {Answer(Hash(2, 0xaaaa)), Answer(Hash(3, 0xaaaa))}).empty());
}

TEST(CorruptionCheckTest, TheCallAndReplyRoundTrip) {
  auto revision = DecodeHashKvCall(EncodeHashKvCall(12345));
  ASSERT_TRUE(revision.ok());
  EXPECT_EQ(*revision, 12345);
  EXPECT_FALSE(DecodeHashKvCall("short").ok());
  auto decoded = DecodeKvHash(EncodeKvHash(Hash(7, 0xdeadbeef, 42, 17)));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->member_id, 7u);
  EXPECT_EQ(decoded->revision, 42);
  EXPECT_EQ(decoded->compact_revision, 17);
  EXPECT_EQ(decoded->hash, 0xdeadbeefu);
}

// Sources over a fixed table of member hashes; a member missing from the
// table never answers.
HashSources FixedSources(uint64_t self, std::map<uint64_t, KvHash> hashes,
                         std::vector<uint64_t> peers) {
  HashSources sources;
  sources.local = [self, hashes](int64_t) -> Result<KvHash> { return hashes.at(self); };
  sources.peers = [peers] { return peers; };
  sources.ask_peer = [hashes](uint64_t peer, int64_t, std::function<void(Result<KvHash>)> done) {
    auto it = hashes.find(peer);
    if (it == hashes.end()) return;  // silent: the round's timeout decides
    done(it->second);
  };
  sources.peer_timeout = std::chrono::milliseconds(200);
  return sources;
}

TEST(CorruptionCheckTest, StartupRefusesAMemberThatDiffersFromAPeer) {
  const Status st = CheckStartupConsistency(
      1,
      FixedSources(1, {{1, Hash(1, 0xbbbb)}, {2, Hash(2, 0xaaaa)}, {3, Hash(3, 0xaaaa)}}, {2, 3}));
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.ToString().find("refusing to start"), std::string::npos) << st.ToString();
}

TEST(CorruptionCheckTest, StartupPassesWhenPeersAgreeOrCannotAnswer) {
  EXPECT_TRUE(CheckStartupConsistency(
                  1, FixedSources(1, {{1, Hash(1, 0xaaaa)}, {2, Hash(2, 0xaaaa)}}, {2, 3}))
                  .ok());
}

TEST(CorruptionCheckTest, TheMonitorRaisesForEachFlaggedMemberWhileLeading) {
  std::vector<uint64_t> raised;
  CorruptionMonitor monitor(
      FixedSources(1, {{1, Hash(1, 0xaaaa)}, {2, Hash(2, 0xaaaa)}, {3, Hash(3, 0xbbbb)}}, {2, 3}),
      Clock::Real(), std::chrono::hours(1), [] { return true; },
      [&raised](uint64_t member) { raised.push_back(member); });
  EXPECT_EQ(monitor.CheckOnce(), std::vector<uint64_t>({3}));
  EXPECT_EQ(raised, std::vector<uint64_t>({3}));
}

// A stopping member must not wait out the peer timeout of a round in flight.
// The peer here never answers and the round's timeout is an hour: Stop can
// only return because it cancels the round, and that round flags nobody.
TEST(CorruptionCheckTest, StopCancelsARoundWaitingForAPeer) {
  FakeClock clock;
  HashSources sources = FixedSources(1, {{1, Hash(1, 0xaaaa)}}, {2});
  sources.peer_timeout = std::chrono::hours(1);
  std::promise<void> asked;
  auto held = std::make_shared<std::function<void(Result<KvHash>)>>();
  sources.ask_peer = [&asked, held](uint64_t, int64_t, std::function<void(Result<KvHash>)> done) {
    *held = std::move(done);  // kept, never called before Stop
    asked.set_value();
  };
  std::vector<uint64_t> raised;
  CorruptionMonitor monitor(
      sources, &clock, std::chrono::seconds(1), [] { return true; },
      [&raised](uint64_t member) { raised.push_back(member); });
  monitor.Start();
  clock.Advance(std::chrono::seconds(2));
  asked.get_future().wait();  // the round is now waiting for member 2
  monitor.Stop();
  EXPECT_TRUE(raised.empty());
  // The peer's late answer lands in the abandoned round harmlessly.
  (*held)(Hash(2, 0xbbbb));
  EXPECT_TRUE(raised.empty());
  EXPECT_TRUE(monitor.CheckOnce().empty());
}

TEST(CorruptionCheckTest, ACancelledRoundAsksNobodyAndMarksThePeersCancelled) {
  RoundCancel cancel;
  cancel.Cancel();
  bool asked = false;
  HashSources sources = FixedSources(1, {{1, Hash(1, 0xaaaa)}, {2, Hash(2, 0xaaaa)}}, {2});
  sources.ask_peer = [&asked](uint64_t, int64_t, std::function<void(Result<KvHash>)>) {
    asked = true;
  };
  const std::vector<PeerHash> answers = CollectPeerHashes(sources, 10, &cancel);
  EXPECT_FALSE(asked);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].hash.status().code(), Code::kCancelled);
}

}  // namespace
}  // namespace etcdpp::server

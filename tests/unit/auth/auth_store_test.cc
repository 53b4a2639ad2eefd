#include "auth/auth_store.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "mvcc/kv_store.h"
#include "unit/mvcc/temp_dir.h"

namespace etcdpp::auth {
namespace {

using namespace std::chrono_literals;
using internalpb::InternalRaftRequest;

const std::string kOpen("\0", 1);

class AuthStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = mvcc::KvStore::Open(dir_.path());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    auth_ = std::make_unique<AuthStore>(300s, &clock_);
    ASSERT_TRUE(auth_->Load(*store_).ok());
  }

  // Applies one request in its own committed transaction, as `sender`.
  Status Apply(InternalRaftRequest r, const AuthInfo& sender = {},
               google::protobuf::Message* response = nullptr) {
    if (sender.revision != 0) {
      r.mutable_header()->set_username(sender.username);
      r.mutable_header()->set_auth_revision(sender.revision);
    }
    auto txn = store_->Write();
    EXPECT_TRUE(txn.ok());
    Status st = auth_->Apply(**txn, r, response, ++index_);
    EXPECT_TRUE((*txn)->Commit().ok());
    return st;
  }

  Status AddUser(const std::string& name, const AuthInfo& as = {}) {
    InternalRaftRequest r;
    r.mutable_user_add()->set_name(name);
    r.mutable_user_add()->set_password_hash("$2b$04$hash-of-" + name);
    return Apply(r, as);
  }
  Status AddRole(const std::string& name, const AuthInfo& as = {}) {
    InternalRaftRequest r;
    r.mutable_role_add()->set_name(name);
    return Apply(r, as);
  }
  Status Grant(const std::string& user, const std::string& role, const AuthInfo& as = {}) {
    InternalRaftRequest r;
    r.mutable_user_grant_role()->set_user(user);
    r.mutable_user_grant_role()->set_role(role);
    return Apply(r, as);
  }
  Status GrantPerm(const std::string& role, authpb::Permission::Type type, const std::string& key,
                   const std::string& end, const AuthInfo& as = {}) {
    InternalRaftRequest r;
    auto* g = r.mutable_role_grant_permission();
    g->set_name(role);
    g->mutable_perm()->set_permtype(type);
    g->mutable_perm()->set_key(key);
    g->mutable_perm()->set_range_end(end);
    return Apply(r, as);
  }
  Status Enable(const AuthInfo& as = {}) {
    InternalRaftRequest r;
    r.mutable_auth_enable();
    return Apply(r, as);
  }
  // Authenticates `user` and returns the sender its token stands for.
  AuthInfo Login(const std::string& user) {
    InternalRaftRequest r;
    r.mutable_authenticate()->set_name(user);
    r.mutable_authenticate()->set_token_prefix(NewTokenSecret());
    etcdserverpb::AuthenticateResponse resp;
    Status st = Apply(r, {}, &resp);
    EXPECT_TRUE(st.ok()) << st.ToString();
    auto info = auth_->InfoFromToken(resp.token());
    EXPECT_TRUE(info.ok());
    return info.ok() ? *info : AuthInfo{};
  }

  // root with the root role, a role "app" with READWRITE on prefix "app/",
  // a user "alice" holding it; auth enabled.
  void SetUpWalkthrough() {
    ASSERT_TRUE(AddUser("root").ok());
    ASSERT_TRUE(AddRole("root").ok());
    ASSERT_TRUE(Grant("root", "root").ok());
    ASSERT_TRUE(AddRole("app").ok());
    ASSERT_TRUE(GrantPerm("app", authpb::Permission::READWRITE, "app/", "app0").ok());
    ASSERT_TRUE(AddUser("alice").ok());
    ASSERT_TRUE(Grant("alice", "app").ok());
    ASSERT_TRUE(Enable().ok());
  }

  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<mvcc::KvStore> store_;
  std::unique_ptr<AuthStore> auth_;
  uint64_t index_ = 0;
};

TEST_F(AuthStoreTest, EnableNeedsRootUserWithRootRole) {
  EXPECT_EQ(Enable().code(), Code::kRootUserNotExist);
  ASSERT_TRUE(AddUser("root").ok());
  EXPECT_EQ(Enable().code(), Code::kRootRoleNotExist);
  // The root role needs no record to be granted.
  ASSERT_TRUE(Grant("root", "root").ok());
  EXPECT_TRUE(Enable().ok());
  EXPECT_TRUE(auth_->state()->enabled);
}

TEST_F(AuthStoreTest, RevisionGrowsWithEveryChangeOnly) {
  EXPECT_EQ(auth_->state()->revision, 1u);
  ASSERT_TRUE(AddUser("u").ok());
  EXPECT_EQ(auth_->state()->revision, 2u);
  EXPECT_EQ(AddUser("u").code(), Code::kUserAlreadyExist);
  EXPECT_EQ(auth_->state()->revision, 2u);
  ASSERT_TRUE(AddRole("r").ok());
  ASSERT_TRUE(Grant("u", "r").ok());
  EXPECT_EQ(auth_->state()->revision, 4u);
  ASSERT_TRUE(Grant("u", "r").ok());  // already granted: no change
  EXPECT_EQ(auth_->state()->revision, 4u);
}

TEST_F(AuthStoreTest, EtcdErrorsForMissingNamesAndGrants) {
  EXPECT_EQ(AddUser("").code(), Code::kUserEmpty);
  EXPECT_EQ(AddRole("").code(), Code::kRoleEmpty);
  EXPECT_EQ(Grant("nobody", "r").code(), Code::kUserNotFound);
  ASSERT_TRUE(AddUser("u").ok());
  EXPECT_EQ(Grant("u", "nothing").code(), Code::kRoleNotFound);
  ASSERT_TRUE(AddRole("r").ok());
  EXPECT_EQ(AddRole("r").code(), Code::kRoleAlreadyExist);
  InternalRaftRequest revoke;
  revoke.mutable_user_revoke_role()->set_name("u");
  revoke.mutable_user_revoke_role()->set_role("r");
  EXPECT_EQ(Apply(revoke).code(), Code::kRoleNotGranted);
  InternalRaftRequest revoke_perm;
  revoke_perm.mutable_role_revoke_permission()->set_role("r");
  revoke_perm.mutable_role_revoke_permission()->set_key("k");
  EXPECT_EQ(Apply(revoke_perm).code(), Code::kPermissionNotGranted);
  InternalRaftRequest del;
  del.mutable_role_delete()->set_role("missing");
  EXPECT_EQ(Apply(del).code(), Code::kRoleNotFound);
}

TEST_F(AuthStoreTest, WalkthroughPermissionsAndAdminChecks) {
  SetUpWalkthrough();
  const AuthInfo alice = Login("alice");
  const AuthInfo root = Login("root");
  std::shared_ptr<const AuthState> s = auth_->state();
  EXPECT_TRUE(s->CheckKeys(alice, Access::kRead, "app/x", "").ok());
  EXPECT_TRUE(s->CheckKeys(alice, Access::kWrite, "app/", "app0").ok());
  EXPECT_EQ(s->CheckKeys(alice, Access::kRead, "other", "").code(), Code::kPermissionDenied);
  EXPECT_EQ(s->CheckKeys(alice, Access::kRead, "app/", kOpen).code(), Code::kPermissionDenied);
  EXPECT_EQ(s->CheckKeys(AuthInfo{}, Access::kRead, "app/x", "").code(), Code::kUserEmpty);
  EXPECT_TRUE(s->CheckKeys(root, Access::kWrite, "", kOpen).ok());
  EXPECT_EQ(s->CheckAdmin(alice).code(), Code::kPermissionDenied);
  EXPECT_TRUE(s->CheckAdmin(root).ok());
  // Only root manages users once auth is on.
  EXPECT_EQ(AddUser("mallory", alice).code(), Code::kPermissionDenied);
  EXPECT_EQ(AddUser("mallory").code(), Code::kUserEmpty);
  EXPECT_TRUE(AddUser("bob", root).ok());
}

TEST_F(AuthStoreTest, TxnNeedsReadForComparesAndBothBranchesNestedToo) {
  SetUpWalkthrough();
  const AuthInfo alice = Login("alice");
  std::shared_ptr<const AuthState> s = auth_->state();
  etcdserverpb::TxnRequest txn;
  txn.add_compare()->set_key("app/a");
  txn.add_success()->mutable_request_put()->set_key("app/b");
  txn.add_failure()->mutable_request_range()->set_key("app/c");
  EXPECT_TRUE(s->CheckTxn(alice, txn).ok());
  // An op outside the grant on the branch that would not run still counts.
  etcdserverpb::TxnRequest outside_failure = txn;
  outside_failure.add_failure()->mutable_request_delete_range()->set_key("secret");
  EXPECT_EQ(s->CheckTxn(alice, outside_failure).code(), Code::kPermissionDenied);
  etcdserverpb::TxnRequest outside_compare = txn;
  outside_compare.add_compare()->set_key("secret");
  EXPECT_EQ(s->CheckTxn(alice, outside_compare).code(), Code::kPermissionDenied);
  etcdserverpb::TxnRequest nested = txn;
  nested.add_success()->mutable_request_txn()->add_success()->mutable_request_put()->set_key("x");
  EXPECT_EQ(s->CheckTxn(alice, nested).code(), Code::kPermissionDenied);
}

TEST_F(AuthStoreTest, WriteCheckedWithAnOldRevisionIsRefused) {
  SetUpWalkthrough();
  const AuthInfo alice = Login("alice");
  InternalRaftRequest put;
  put.mutable_put()->set_key("app/k");
  put.mutable_header()->set_username(alice.username);
  put.mutable_header()->set_auth_revision(alice.revision);
  EXPECT_TRUE(auth_->CheckWrite(put).ok());
  // Any change to the store in between makes the stamped revision stale.
  ASSERT_TRUE(AddRole("other", Login("root")).ok());
  EXPECT_EQ(auth_->CheckWrite(put).code(), Code::kAuthOldRevision);
  InternalRaftRequest anonymous;
  anonymous.mutable_put()->set_key("app/k");
  EXPECT_EQ(auth_->CheckWrite(anonymous).code(), Code::kUserEmpty);
}

TEST_F(AuthStoreTest, TokensFollowUserChangesAndDisable) {
  SetUpWalkthrough();
  const AuthInfo root = Login("root");
  InternalRaftRequest r;
  r.mutable_authenticate()->set_name("alice");
  r.mutable_authenticate()->set_token_prefix("abcdefghijklmnop");
  etcdserverpb::AuthenticateResponse resp;
  ASSERT_TRUE(Apply(r, {}, &resp).ok());
  EXPECT_EQ(resp.token(), "abcdefghijklmnop." + std::to_string(index_));
  ASSERT_TRUE(auth_->InfoFromToken(resp.token()).ok());
  InternalRaftRequest passwd;
  passwd.mutable_user_change_password()->set_name("alice");
  passwd.mutable_user_change_password()->set_password_hash("$2b$04$new");
  ASSERT_TRUE(Apply(passwd, root).ok());
  EXPECT_EQ(auth_->InfoFromToken(resp.token()).status().code(), Code::kInvalidAuthToken);
  // Tokens expire on the fake clock.
  const std::string alice_token = resp.token();
  resp.Clear();
  ASSERT_TRUE(Apply(r, {}, &resp).ok());
  clock_.Advance(301s);
  EXPECT_EQ(auth_->InfoFromToken(resp.token()).status().code(), Code::kInvalidAuthToken);
  // Disabling drops every token; Authenticate then fails.
  const AuthInfo fresh_root = Login("root");
  InternalRaftRequest disable;
  disable.mutable_auth_disable();
  ASSERT_TRUE(Apply(disable, fresh_root).ok());
  EXPECT_FALSE(auth_->InfoFromToken(std::string("x")).ok());
  EXPECT_EQ(Apply(r).code(), Code::kAuthNotEnabled);
}

TEST_F(AuthStoreTest, RootCannotLoseRootWhileEnabled) {
  SetUpWalkthrough();
  const AuthInfo root = Login("root");
  InternalRaftRequest del;
  del.mutable_user_delete()->set_name("root");
  EXPECT_EQ(Apply(del, root).code(), Code::kInvalidAuthMgmt);
  InternalRaftRequest revoke;
  revoke.mutable_user_revoke_role()->set_name("root");
  revoke.mutable_user_revoke_role()->set_role("root");
  EXPECT_EQ(Apply(revoke, root).code(), Code::kInvalidAuthMgmt);
  InternalRaftRequest del_role;
  del_role.mutable_role_delete()->set_role("root");
  EXPECT_EQ(Apply(del_role, root).code(), Code::kInvalidAuthMgmt);
}

TEST_F(AuthStoreTest, RoleDeleteTakesItFromUsersAndGrantReplacesType) {
  ASSERT_TRUE(AddUser("u").ok());
  ASSERT_TRUE(AddRole("r").ok());
  ASSERT_TRUE(Grant("u", "r").ok());
  ASSERT_TRUE(GrantPerm("r", authpb::Permission::READ, "k", "").ok());
  ASSERT_TRUE(GrantPerm("r", authpb::Permission::WRITE, "k", "").ok());
  ASSERT_TRUE(GrantPerm("r", authpb::Permission::READ, "a", "").ok());
  const authpb::Role& role = auth_->state()->roles.at("r");
  ASSERT_EQ(role.keypermission_size(), 2);
  EXPECT_EQ(role.keypermission(0).key(), "a");  // sorted by key
  EXPECT_EQ(role.keypermission(1).permtype(), authpb::Permission::WRITE);
  InternalRaftRequest del;
  del.mutable_role_delete()->set_role("r");
  ASSERT_TRUE(Apply(del).ok());
  EXPECT_FALSE(auth_->state()->UserHasRole("u", "r"));
}

TEST_F(AuthStoreTest, StateSurvivesReopeningTheStore) {
  SetUpWalkthrough();
  const uint64_t revision = auth_->state()->revision;
  auth_ = std::make_unique<AuthStore>(300s, &clock_);
  store_.reset();
  auto s = mvcc::KvStore::Open(dir_.path());
  ASSERT_TRUE(s.ok());
  store_ = std::move(*s);
  ASSERT_TRUE(auth_->Load(*store_).ok());
  std::shared_ptr<const AuthState> state = auth_->state();
  EXPECT_TRUE(state->enabled);
  EXPECT_EQ(state->revision, revision);
  EXPECT_TRUE(state->UserHasRole("alice", "app"));
  EXPECT_EQ(state->users.at("alice").password(), "$2b$04$hash-of-alice");
  EXPECT_TRUE(state->permissions.at("root").root);
  // Tokens live in memory only.
  EXPECT_EQ(auth_->tokens().size(), 0u);
}

}  // namespace
}  // namespace etcdpp::auth

// libFuzzer target for the authentication paths: arbitrary bytes are
// (1) decoded as an InternalRaftRequest and applied by AuthStore to one
// store that lives for the whole run (users, roles, grants, enable,
// authenticate, in any order and with any names and ranges), then every
// permission check runs for the sender the bytes name; (2) looked up as a
// token; (3) checked as a password against a fixed bcrypt hash and used as
// a hash setting; (4) verified as a JWT by ES256 and HS256 verifiers, and
// used as edits (position, byte) to a genuine token, which must then fail
// unless the edits left its header and claims unchanged. Must never crash or touch memory out
// of bounds; refusals
// must be etcd's errors, and a permission check must agree with the
// AuthState it ran on (root passes, a user without grants never does).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/auth_store.h"
#include "auth/jwt.h"
#include "auth/password.h"
#include "etcdpppb/internal.pb.h"
#include "mvcc/kv_store.h"

namespace {

using etcdpp::Code;
using etcdpp::Status;

struct World {
  std::unique_ptr<etcdpp::mvcc::KvStore> store;
  std::unique_ptr<etcdpp::auth::AuthStore> auth;
  std::string hash;
  uint64_t index = 0;
  std::unique_ptr<etcdpp::auth::JwtTokens> es256;
  std::unique_ptr<etcdpp::auth::JwtTokens> hs256;
  std::unique_ptr<etcdpp::auth::AuthStore> jwt_auth;
  std::string genuine;  // an ES256 token for "alice" at revision 3
};

std::string PrivateKeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) != 1) std::abort();
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(length));
  BIO_free(bio);
  return pem;
}

World& TheWorld() {
  static World world = [] {
    World w;
    // Invalid UTF-8 in string fields is an ordinary parse failure here.
    google::protobuf::SetLogHandler(nullptr);
    std::string dir = (std::filesystem::temp_directory_path() / "etcdpp-auth-fuzz-XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) std::abort();
    static std::string to_remove = dir;
    std::atexit([] { std::filesystem::remove_all(to_remove); });
    auto opened = etcdpp::mvcc::KvStore::Open(dir);
    if (!opened.ok()) std::abort();
    w.store = std::move(opened.value());
    w.auth = std::make_unique<etcdpp::auth::AuthStore>();
    if (!w.auth->Load(*w.store).ok()) std::abort();
    auto hash = etcdpp::auth::HashPassword("fuzz", 4);
    if (!hash.ok()) std::abort();
    w.hash = *hash;
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (key == nullptr) std::abort();
    etcdpp::auth::JwtOptions es;
    es.sign_method = "ES256";
    es.private_key_pem = PrivateKeyPem(key);
    EVP_PKEY_free(key);
    auto es256 = etcdpp::auth::JwtTokens::Create(es);
    etcdpp::auth::JwtOptions hs;
    hs.sign_method = "HS256";
    hs.private_key_pem = "fuzz secret";
    auto hs256 = etcdpp::auth::JwtTokens::Create(hs);
    if (!es256.ok() || !hs256.ok()) std::abort();
    w.es256 = std::move(*es256);
    w.hs256 = std::move(*hs256);
    auto genuine = w.es256->Sign("alice", 3);
    if (!genuine.ok()) std::abort();
    w.genuine = *genuine;
    auto shared = etcdpp::auth::JwtTokens::Create(es);
    if (!shared.ok()) std::abort();
    w.jwt_auth = std::make_unique<etcdpp::auth::AuthStore>(
        std::chrono::seconds(300), etcdpp::Clock::Real(),
        std::shared_ptr<const etcdpp::auth::JwtTokens>(std::move(*shared)));
    return w;
  }();
  return world;
}

void RequireEtcdError(const Status& st) {
  if (st.ok()) return;
  switch (st.code()) {
    case Code::kInternal:
    case Code::kIOError:
    case Code::kCorruption:
    case Code::kUnimplemented:
      std::abort();
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = TheWorld();
  const std::string bytes(reinterpret_cast<const char*>(data), size);

  etcdpp::internalpb::InternalRaftRequest request;
  if (request.ParseFromString(bytes)) {
    if (etcdpp::auth::AuthStore::IsAuthRequest(request)) {
      auto txn = w.store->Write();
      if (!txn.ok()) std::abort();
      etcdserverpb::AuthenticateResponse resp;
      Status st =
          w.auth->Apply(**txn, request, request.has_authenticate() ? &resp : nullptr, ++w.index);
      RequireEtcdError(st);
      if (!(*txn)->Commit().ok()) std::abort();
    } else {
      RequireEtcdError(w.auth->CheckWrite(request));
    }
    auto state = w.auth->state();
    const etcdpp::auth::AuthInfo sender{request.header().username(), state->revision};
    const auto& r = request.range();
    const Status read = state->CheckRange(sender, r);
    RequireEtcdError(read);
    if (state->enabled) {
      auto perms = state->permissions.find(sender.username);
      const bool root = perms != state->permissions.end() && perms->second.root;
      if (root && !read.ok()) std::abort();
      if (perms == state->permissions.end() && read.ok()) std::abort();
    } else if (!read.ok()) {
      std::abort();
    }
    RequireEtcdError(state->CheckTxn(sender, request.txn()));
  }

  // Token lookups: unknown bytes never name a user.
  auto info = w.auth->InfoFromToken(bytes);
  if (info.ok() && info->username.empty()) std::abort();

  // JWTs: arbitrary bytes never verify (no key signed them).
  if (w.es256->Verify(bytes).has_value() && bytes != w.genuine) std::abort();
  if (w.hs256->Verify(bytes).has_value()) std::abort();
  auto jwt_info = w.jwt_auth->InfoFromToken(bytes);
  if (jwt_info.ok() && bytes != w.genuine) std::abort();
  // The bytes as edits of the genuine token: any change breaks it.
  std::string edited = w.genuine;
  for (size_t i = 0; i + 1 < size; i += 2) {
    edited[data[i] % edited.size()] = static_cast<char>(data[i + 1]);
  }
  const auto claims = w.es256->Verify(edited);
  // ECDSA signatures have a second valid form, so only the signed part
  // (header and claims) must be exactly the genuine one.
  const size_t signed_length = w.genuine.rfind('.') + 1;
  if (claims && edited.compare(0, signed_length, w.genuine, 0, signed_length) != 0) std::abort();
  if (!claims && edited == w.genuine) std::abort();
  if (claims && (claims->username != "alice" || claims->revision != 3)) std::abort();

  // Password checks: only "fuzz" matches; the bytes as a hash setting must
  // not crash libcrypt's parser (short inputs keep bcrypt rounds cheap).
  if (size <= 80) {
    if (etcdpp::auth::CheckPassword(w.hash, bytes) != (bytes == "fuzz")) std::abort();
    (void)etcdpp::auth::CheckPassword(bytes, "fuzz");
  }
  return 0;
}

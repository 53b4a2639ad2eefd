#include "auth/jwt.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

namespace etcdpp::auth {
namespace {

// Longer tokens are refused before any parsing: ours are a few hundred bytes
// (an RS512 signature with a 4096-bit key is 683 characters).
constexpr size_t kMaxTokenBytes = 8192;
// JSON numbers are doubles; past 2^53 a revision or time is not exact.
constexpr double kMaxExactInteger = 9007199254740992.0;

enum class Family { kRsa, kRsaPss, kEcdsa, kHmac };

struct Method {
  const char* name;
  Family family;
  const EVP_MD* (*digest)();
  int curve_nid;      // kEcdsa only
  size_t coordinate;  // kEcdsa only: bytes of r and of s in the JWS form
};

constexpr Method kMethods[] = {
    {"RS256", Family::kRsa, EVP_sha256, 0, 0},
    {"RS384", Family::kRsa, EVP_sha384, 0, 0},
    {"RS512", Family::kRsa, EVP_sha512, 0, 0},
    {"PS256", Family::kRsaPss, EVP_sha256, 0, 0},
    {"PS384", Family::kRsaPss, EVP_sha384, 0, 0},
    {"PS512", Family::kRsaPss, EVP_sha512, 0, 0},
    {"ES256", Family::kEcdsa, EVP_sha256, NID_X9_62_prime256v1, 32},
    {"ES384", Family::kEcdsa, EVP_sha384, NID_secp384r1, 48},
    {"ES512", Family::kEcdsa, EVP_sha512, NID_secp521r1, 66},
    {"HS256", Family::kHmac, EVP_sha256, 0, 0},
    {"HS384", Family::kHmac, EVP_sha384, 0, 0},
    {"HS512", Family::kHmac, EVP_sha512, 0, 0},
};

const Method* FindMethod(std::string_view name) {
  for (const Method& m : kMethods) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// Never prompts for a passphrase: an encrypted key file is refused.
int NoPassphrase(char*, int, int, void*) { return 0; }

Pkey ReadPrivateKey(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return nullptr;
  Pkey key(PEM_read_bio_PrivateKey(bio, nullptr, NoPassphrase, nullptr));
  BIO_free(bio);
  return key;
}

// A "PUBLIC KEY" block, or a certificate whose key is taken.
Pkey ReadPublicKey(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return nullptr;
  Pkey key(PEM_read_bio_PUBKEY(bio, nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    (void)BIO_reset(bio);
    if (X509* cert = PEM_read_bio_X509(bio, nullptr, NoPassphrase, nullptr)) {
      key.reset(X509_get_pubkey(cert));
      X509_free(cert);
    }
  }
  BIO_free(bio);
  return key;
}

bool KeyFitsMethod(EVP_PKEY* key, const Method& method) {
  const int type = EVP_PKEY_get_base_id(key);
  switch (method.family) {
    case Family::kRsa:
      return type == EVP_PKEY_RSA;
    case Family::kRsaPss:
      return type == EVP_PKEY_RSA || type == EVP_PKEY_RSA_PSS;
    case Family::kEcdsa: {
      if (type != EVP_PKEY_EC) return false;
      char group[64] = {};
      size_t length = 0;
      if (EVP_PKEY_get_group_name(key, group, sizeof(group), &length) != 1) return false;
      return std::string_view(group, length) == OBJ_nid2sn(method.curve_nid);
    }
    case Family::kHmac:
      return false;
  }
  return false;
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (byte < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", byte);
      out += escaped;
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

std::optional<google::protobuf::Struct> ParseJsonObject(std::string_view json) {
  google::protobuf::Struct object;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &object);
  if (!status.ok()) return std::nullopt;
  return object;
}

// A claim that must be a whole number in [0, 2^53].
std::optional<double> WholeNumber(const google::protobuf::Value& value) {
  if (value.kind_case() != google::protobuf::Value::kNumberValue) return std::nullopt;
  const double number = value.number_value();
  if (!std::isfinite(number) || number < 0 || number > kMaxExactInteger) return std::nullopt;
  if (number != std::floor(number)) return std::nullopt;
  return number;
}

// ECDSA signatures: OpenSSL speaks DER, JWS the two coordinates side by side.
std::optional<std::string> DerToRaw(const std::string& der, size_t coordinate) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) return std::nullopt;
  std::string raw(2 * coordinate, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  const bool ok =
      BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, static_cast<int>(coordinate)) > 0 &&
      BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + coordinate, static_cast<int>(coordinate)) > 0;
  ECDSA_SIG_free(sig);
  if (!ok) return std::nullopt;
  return raw;
}

std::optional<std::string> RawToDer(std::string_view raw, size_t coordinate) {
  if (raw.size() != 2 * coordinate) return std::nullopt;
  const auto* in = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(in, static_cast<int>(coordinate), nullptr);
  BIGNUM* s = BN_bin2bn(in + coordinate, static_cast<int>(coordinate), nullptr);
  ECDSA_SIG* sig = ECDSA_SIG_new();
  if (r == nullptr || s == nullptr || sig == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  const int length = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (length <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

// Sets PSS padding on a sign or verify context.
bool UsePss(EVP_PKEY_CTX* pctx, int salt_length) {
  return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt_length) > 0;
}

// A Go duration ("5m", "1h30m", "90s", "1.5h"), whole seconds (rounded down).
// The HMAC of `signed_part` under `secret`; nullopt if OpenSSL fails.
std::optional<std::string> HmacOf(const EVP_MD* digest, std::string_view secret,
                                  std::string_view signed_part) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(digest, secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac,
           &length) == nullptr) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<char*>(mac), length);
}

std::optional<std::chrono::seconds> ParseTtl(std::string_view text) {
  static const std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1e-9}, {"us", 1e-6}, {"\u00b5s", 1e-6}, {"ms", 1e-3},
      {"s", 1},     {"m", 60},    {"h", 3600}};
  if (text.empty()) return std::nullopt;
  double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && ((text[j] >= '0' && text[j] <= '9') || text[j] == '.')) ++j;
    if (j == i) return std::nullopt;
    double value = 0;
    if (std::sscanf(std::string(text.substr(i, j - i)).c_str(), "%lf", &value) != 1) {
      return std::nullopt;
    }
    size_t k = j;
    while (k < text.size() && !((text[k] >= '0' && text[k] <= '9') || text[k] == '.')) ++k;
    const std::string_view unit = text.substr(j, k - j);
    bool known = false;
    for (const auto& [name, seconds] : kUnits) {
      if (unit == name) {
        total += value * seconds;
        known = true;
      }
    }
    if (!known) return std::nullopt;
    i = k;
  }
  if (total < 1 || total > 1e9) return std::nullopt;
  return std::chrono::seconds(static_cast<int64_t>(total));
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("cannot read auth token key file " + path);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

}  // namespace

// ---------------------------------------------------------------------------
// base64url

std::string Base64UrlEncode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = (uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                       (uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) |
                       uint32_t{static_cast<unsigned char>(bytes[i + 2])};
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back(kAlphabet[n & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t n = uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    if (rest == 2) n |= uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    if (rest == 2) out.push_back(kAlphabet[(n >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t bits = 0;
  int bit_count = 0;
  for (char c : text) {
    const int v = value_of(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out.push_back(static_cast<char>((bits >> bit_count) & 0xff));
    }
  }
  // Leftover bits (2 or 4) must be zero, or two spellings would decode alike.
  if ((bits & ((1u << bit_count) - 1)) != 0) return std::nullopt;
  return out;
}

// ---------------------------------------------------------------------------
// --auth-token

Result<AuthTokenConfig> ParseAuthTokenFlag(std::string_view flag) {
  AuthTokenConfig config;
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t comma = flag.find(',', start);
    parts.push_back(flag.substr(start, comma == std::string_view::npos ? comma : comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  const std::string_view kind = parts[0];
  std::map<std::string, std::string, std::less<>> options;
  for (size_t i = 1; i < parts.size(); ++i) {
    const size_t eq = parts[i].find('=');
    if (eq == std::string_view::npos || parts[i].find('=', eq + 1) != std::string_view::npos) {
      return Status::InvalidArgument("invalid --auth-token option \"" + std::string(parts[i]) +
                                     "\" (want key=value)");
    }
    std::string key(parts[i].substr(0, eq));
    if (!options.emplace(key, std::string(parts[i].substr(eq + 1))).second) {
      return Status::InvalidArgument("--auth-token option " + key + " given twice");
    }
  }
  if (kind == "simple") {
    if (!options.empty()) return Status::InvalidArgument("--auth-token simple takes no options");
    return config;
  }
  if (kind != "jwt") {
    return Status::InvalidArgument("unknown --auth-token kind \"" + std::string(kind) +
                                   "\" (simple or jwt)");
  }
  config.kind = AuthTokenConfig::Kind::kJwt;
  for (const auto& [key, value] : options) {
    if (key == "sign-method") {
      config.jwt.sign_method = value;
    } else if (key == "ttl") {
      auto ttl = ParseTtl(value);
      if (!ttl) return Status::InvalidArgument("invalid --auth-token ttl \"" + value + "\"");
      config.jwt.ttl = *ttl;
    } else if (key == "pub-key" || key == "priv-key") {
      auto contents = ReadWholeFile(value);
      if (!contents.ok()) return contents.status();
      (key == "pub-key" ? config.jwt.public_key_pem : config.jwt.private_key_pem) =
          std::move(*contents);
    } else {
      return Status::InvalidArgument("unknown --auth-token option \"" + key + "\"");
    }
  }
  if (FindMethod(config.jwt.sign_method) == nullptr) {
    return Status::InvalidArgument(
        "--auth-token jwt needs sign-method=<RS256|RS384|RS512|PS256|"
        "PS384|PS512|ES256|ES384|ES512|HS256|HS384|HS512>, got \"" +
        config.jwt.sign_method + "\"");
  }
  return config;
}

// ---------------------------------------------------------------------------
// JwtTokens

struct JwtTokens::Keys {
  const Method* method = nullptr;
  Pkey signing;    // private key; null on a verify-only member (and for HMAC)
  Pkey verifying;  // public key (or the private one, which holds it)
  std::string hmac_secret;
};

JwtTokens::JwtTokens(std::unique_ptr<Keys> keys, std::chrono::seconds ttl, Clock* clock)
    : keys_(std::move(keys)), ttl_(ttl), clock_(clock) {}

JwtTokens::~JwtTokens() = default;

Result<std::unique_ptr<JwtTokens>> JwtTokens::Create(const JwtOptions& options, Clock* clock) {
  auto keys = std::make_unique<Keys>();
  keys->method = FindMethod(options.sign_method);
  if (keys->method == nullptr) {
    return Status::InvalidArgument("unknown JWT sign method \"" + options.sign_method + "\"");
  }
  if (keys->method->family == Family::kHmac) {
    if (options.private_key_pem.empty()) {
      return Status::InvalidArgument("JWT " + options.sign_method + " needs priv-key (the secret)");
    }
    keys->hmac_secret = options.private_key_pem;
  } else {
    if (options.private_key_pem.empty() && options.public_key_pem.empty()) {
      return Status::InvalidArgument("--auth-token jwt needs pub-key, priv-key or both");
    }
    if (!options.private_key_pem.empty()) {
      keys->signing = ReadPrivateKey(options.private_key_pem);
      if (!keys->signing) return Status::InvalidArgument("JWT priv-key is not a PEM private key");
      if (!KeyFitsMethod(keys->signing.get(), *keys->method)) {
        return Status::InvalidArgument("JWT priv-key does not fit sign-method " +
                                       options.sign_method);
      }
    }
    if (!options.public_key_pem.empty()) {
      keys->verifying = ReadPublicKey(options.public_key_pem);
      if (!keys->verifying) {
        return Status::InvalidArgument("JWT pub-key is not a PEM public key or certificate");
      }
      if (!KeyFitsMethod(keys->verifying.get(), *keys->method)) {
        return Status::InvalidArgument("JWT pub-key does not fit sign-method " +
                                       options.sign_method);
      }
      if (keys->signing && EVP_PKEY_eq(keys->signing.get(), keys->verifying.get()) != 1) {
        return Status::InvalidArgument("JWT pub-key and priv-key are not one key pair");
      }
    } else {
      EVP_PKEY_up_ref(keys->signing.get());
      keys->verifying.reset(keys->signing.get());
    }
  }
  return std::unique_ptr<JwtTokens>(new JwtTokens(std::move(keys), options.ttl, clock));
}

bool JwtTokens::can_sign() const {
  return keys_->method->family == Family::kHmac || keys_->signing != nullptr;
}

Result<std::string> JwtTokens::Sign(std::string_view username, uint64_t revision) const {
  if (!can_sign()) {
    return Status(Code::kFailedPrecondition,
                  "auth: this member holds only the JWT public key and cannot sign tokens");
  }
  const Method& method = *keys_->method;
  const int64_t expires =
      std::chrono::duration_cast<std::chrono::seconds>(clock_->WallNow().time_since_epoch() + ttl_)
          .count();
  const std::string header = std::string(R"({"alg":")") + method.name + R"(","typ":"JWT"})";
  const std::string claims = "{\"exp\":" + std::to_string(expires) +
                             ",\"revision\":" + std::to_string(revision) +
                             ",\"username\":" + JsonString(username) + "}";
  const std::string signed_part = Base64UrlEncode(header) + "." + Base64UrlEncode(claims);
  const auto* data = reinterpret_cast<const unsigned char*>(signed_part.data());

  std::string signature;
  if (method.family == Family::kHmac) {
    auto mac = HmacOf(method.digest(), keys_->hmac_secret, signed_part);
    if (!mac) return Status::Internal("JWT: HMAC failed");
    signature = std::move(*mac);
  } else {
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;
    size_t length = 0;
    if (!ctx ||
        EVP_DigestSignInit(ctx.get(), &pctx, method.digest(), nullptr, keys_->signing.get()) != 1 ||
        (method.family == Family::kRsaPss && !UsePss(pctx, RSA_PSS_SALTLEN_DIGEST)) ||
        EVP_DigestSign(ctx.get(), nullptr, &length, data, signed_part.size()) != 1) {
      return Status::Internal("JWT: cannot start signing");
    }
    signature.resize(length);
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, data,
                       signed_part.size()) != 1) {
      return Status::Internal("JWT: signing failed");
    }
    signature.resize(length);
    if (method.family == Family::kEcdsa) {
      auto raw = DerToRaw(signature, method.coordinate);
      if (!raw) return Status::Internal("JWT: malformed ECDSA signature");
      signature = std::move(*raw);
    }
  }
  return signed_part + "." + Base64UrlEncode(signature);
}

double JwtTokens::WallSeconds() const {
  return static_cast<double>(
      std::chrono::duration_cast<std::chrono::seconds>(clock_->WallNow().time_since_epoch())
          .count());
}

std::optional<JwtClaims> JwtTokens::Verify(std::string_view token) const {
  if (token.size() > kMaxTokenBytes) return std::nullopt;
  const double now = WallSeconds();
  {
    std::shared_lock lock(verified_mu_);
    auto it = verified_.find(token);
    if (it != verified_.end()) {
      if (it->second.expires && now > *it->second.expires) return std::nullopt;
      return it->second.claims;
    }
  }
  std::optional<Verified> verified = VerifySignatureAndClaims(token, now);
  if (!verified) return std::nullopt;
  std::unique_lock lock(verified_mu_);
  if (verified_.size() >= kMaxVerifiedTokens) verified_.clear();
  verified_.emplace(std::string(token), *verified);
  return verified->claims;
}

std::optional<JwtTokens::Verified> JwtTokens::VerifySignatureAndClaims(std::string_view token,
                                                                       double now) const {
  const size_t first_dot = token.find('.');
  if (first_dot == std::string_view::npos) return std::nullopt;
  const size_t second_dot = token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos) return std::nullopt;
  if (token.find('.', second_dot + 1) != std::string_view::npos) return std::nullopt;
  const std::string_view signed_part = token.substr(0, second_dot);
  const auto header_json = Base64UrlDecode(token.substr(0, first_dot));
  const auto claims_json = Base64UrlDecode(token.substr(first_dot + 1, second_dot - first_dot - 1));
  const auto signature = Base64UrlDecode(token.substr(second_dot + 1));
  if (!header_json || !claims_json || !signature) return std::nullopt;

  // The header names the method; only ours is accepted, so a token cannot
  // choose a weaker check ("none", or HMAC keyed with our public key).
  const Method& method = *keys_->method;
  const auto header = ParseJsonObject(*header_json);
  if (!header) return std::nullopt;
  auto alg = header->fields().find("alg");
  if (alg == header->fields().end() || alg->second.string_value() != method.name) {
    return std::nullopt;
  }

  const auto* data = reinterpret_cast<const unsigned char*>(signed_part.data());
  if (method.family == Family::kHmac) {
    auto mac = HmacOf(method.digest(), keys_->hmac_secret, signed_part);
    if (!mac || signature->size() != mac->size() ||
        CRYPTO_memcmp(mac->data(), signature->data(), mac->size()) != 0) {
      return std::nullopt;
    }
  } else {
    std::string der_or_raw = *signature;
    if (method.family == Family::kEcdsa) {
      auto der = RawToDer(*signature, method.coordinate);
      if (!der) return std::nullopt;
      der_or_raw = std::move(*der);
    }
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;
    if (!ctx ||
        EVP_DigestVerifyInit(ctx.get(), &pctx, method.digest(), nullptr, keys_->verifying.get()) !=
            1 ||
        (method.family == Family::kRsaPss && !UsePss(pctx, RSA_PSS_SALTLEN_AUTO))) {
      return std::nullopt;
    }
    if (EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(der_or_raw.data()),
                         der_or_raw.size(), data, signed_part.size()) != 1) {
      return std::nullopt;
    }
  }

  // Only a token this cluster's key signed gets here; its claims are still
  // checked for shape, as a key may sign tokens of other programs too.
  const auto claims = ParseJsonObject(*claims_json);
  if (!claims) return std::nullopt;
  const auto& fields = claims->fields();
  auto username = fields.find("username");
  auto revision = fields.find("revision");
  if (username == fields.end() ||
      username->second.kind_case() != google::protobuf::Value::kStringValue ||
      revision == fields.end()) {
    return std::nullopt;
  }
  const auto revision_number = WholeNumber(revision->second);
  if (!revision_number) return std::nullopt;
  // Time claims, as etcd's JWT library checks them: absent is no limit.
  // Only "exp" can turn a valid token invalid later; the cache re-checks it.
  std::optional<double> expires;
  for (const char* name : {"exp", "nbf", "iat"}) {
    auto claim = fields.find(name);
    if (claim == fields.end()) continue;
    const auto when = WholeNumber(claim->second);
    if (!when) return std::nullopt;
    const bool is_exp = std::string_view(name) == "exp";
    if (is_exp ? now > *when : now < *when) return std::nullopt;
    if (is_exp) expires = *when;
  }
  return Verified{
      JwtClaims{username->second.string_value(), static_cast<uint64_t>(*revision_number)}, expires};
}

}  // namespace etcdpp::auth

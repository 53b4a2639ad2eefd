#include "auth/password.h"

#include <crypt.h>
#include <openssl/crypto.h>

#include <memory>

namespace etcdpp::auth {
namespace {

// bcrypt reads at most 72 bytes and stops at a NUL; a password holding a
// NUL would silently lose its tail, so it is refused rather than weakened.
bool UsablePassword(std::string_view password) {
  return password.find('\0') == std::string_view::npos;
}

}  // namespace

Result<std::string> HashPassword(std::string_view password, int cost) {
  if (!UsablePassword(password)) return Status::InvalidArgument("password contains a NUL byte");
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  // Null random bytes: libcrypt draws the salt from the kernel itself.
  if (crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost), nullptr, 0, setting,
                       sizeof(setting)) == nullptr) {
    return Status::Internal("bcrypt salt generation failed");
  }
  auto data = std::make_unique<crypt_data>();
  const std::string phrase(password);
  const char* hashed = crypt_rn(phrase.c_str(), setting, data.get(), sizeof(crypt_data));
  if (hashed == nullptr || hashed[0] == '*') return Status::Internal("bcrypt hashing failed");
  return std::string(hashed);
}

bool CheckPassword(std::string_view hash, std::string_view password) {
  if (hash.empty() || !UsablePassword(password)) return false;
  auto data = std::make_unique<crypt_data>();
  const std::string phrase(password);
  const std::string setting(hash);
  const char* hashed = crypt_rn(phrase.c_str(), setting.c_str(), data.get(), sizeof(crypt_data));
  if (hashed == nullptr || hashed[0] == '*') return false;
  const std::string_view computed(hashed);
  return computed.size() == hash.size() &&
         CRYPTO_memcmp(computed.data(), hash.data(), hash.size()) == 0;
}

}  // namespace etcdpp::auth

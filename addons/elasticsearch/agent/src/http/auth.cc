#include "http/auth.h"

#include <openssl/evp.h>

#include <cctype>

#include "crypto/crypto.h"

namespace agent::http {
namespace {

constexpr size_t kMaxHeader = 8192;  // no real Basic header is longer

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

std::optional<std::string> DecodeBase64(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes: drop one byte per '='.
  size_t padding = (in.back() == '=') + (in.size() > 1 && in[in.size() - 2] == '=');
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

std::string EncodeBase64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace

std::optional<BasicCredentials> ParseBasicAuthorization(std::string_view header) {
  if (header.size() > kMaxHeader || !StartsWithIgnoreCase(header, "basic ")) return std::nullopt;
  std::string_view encoded = header.substr(6);
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  while (!encoded.empty() && encoded.back() == ' ') encoded.remove_suffix(1);
  auto decoded = DecodeBase64(encoded);
  if (!decoded) return std::nullopt;
  size_t colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  BasicCredentials creds{decoded->substr(0, colon), decoded->substr(colon + 1)};
  crypto::Cleanse(*decoded);
  return creds;
}

std::string BasicAuthorization(const BasicCredentials& credentials) {
  std::string plain = credentials.user + ":" + credentials.password;
  std::string header = "Basic " + EncodeBase64(plain);
  crypto::Cleanse(plain);
  return header;
}

bool Authenticator::Allows(std::string_view authorization_header) const {
  if (!expected_) return true;
  auto presented = ParseBasicAuthorization(authorization_header);
  BasicCredentials empty;
  const BasicCredentials& got = presented ? *presented : empty;
  // Both comparisons always run, so the time does not tell which part was wrong.
  bool user_ok = crypto::ConstantTimeEquals(got.user, expected_->user);
  bool password_ok = crypto::ConstantTimeEquals(got.password, expected_->password);
  bool ok = presented.has_value() && user_ok && password_ok;
  if (presented) crypto::Cleanse(presented->password);
  return ok;
}

}  // namespace agent::http

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

std::optional<AuthMode> ParseAuthMode(std::string_view name) {
  if (name == "static") return AuthMode::kStatic;
  if (name == "passthrough") return AuthMode::kPassthrough;
  if (name == "none") return AuthMode::kNone;
  return std::nullopt;
}

const char* AuthModeName(AuthMode mode) {
  switch (mode) {
    case AuthMode::kStatic:
      return "static";
    case AuthMode::kPassthrough:
      return "passthrough";
    case AuthMode::kNone:
      return "none";
  }
  return "?";
}

Authenticator Authenticator::Static(BasicCredentials expected) {
  Authenticator a(AuthMode::kStatic);
  a.expected_ = std::move(expected);
  return a;
}

Authenticator Authenticator::Passthrough(CallerCheck check) {
  Authenticator a(AuthMode::kPassthrough);
  a.check_ = std::move(check);
  return a;
}

Authenticator Authenticator::None() { return Authenticator(AuthMode::kNone); }

bool Authenticator::MatchesExpected(std::string_view authorization_header) const {
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

Result<Caller> Authenticator::Authenticate(const std::string& authorization) const {
  switch (mode_) {
    case AuthMode::kNone:
      return Caller{};
    case AuthMode::kStatic:
      if (!MatchesExpected(authorization)) {
        return MakeError(kUnauthorized, "missing or wrong Basic credentials");
      }
      return Caller{expected_->user, ""};
    case AuthMode::kPassthrough:
      break;
  }
  if (authorization.size() > kMaxHeader || !(StartsWithIgnoreCase(authorization, "basic ") ||
                                             StartsWithIgnoreCase(authorization, "apikey ") ||
                                             StartsWithIgnoreCase(authorization, "bearer "))) {
    return MakeError(kUnauthorized, "an Authorization header (Basic, ApiKey or Bearer) is needed");
  }
  auto user = check_(authorization);
  if (!user.ok()) return user.error();
  // The node's calls for this caller carry the caller's own header, so the node decides.
  return Caller{user.value(), authorization};
}

}  // namespace agent::http

// HTTP Basic authentication of callers: the expected user and password come from the
// environment; a presented header is compared in constant time.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace agent::http {

struct BasicCredentials {
  std::string user;
  std::string password;
};

// Decodes "Basic <base64(user:password)>"; nullopt for any other or malformed header.
std::optional<BasicCredentials> ParseBasicAuthorization(std::string_view header);

// "Basic <base64(user:password)>", for the agent's own calls to its node.
std::string BasicAuthorization(const BasicCredentials& credentials);

class Authenticator {
 public:
  // With no expected credentials every caller is accepted (the agent warns at start).
  explicit Authenticator(std::optional<BasicCredentials> expected)
      : expected_(std::move(expected)) {}

  bool required() const { return expected_.has_value(); }
  // True when no credentials are required or the header carries the expected ones.
  bool Allows(std::string_view authorization_header) const;

 private:
  std::optional<BasicCredentials> expected_;
};

}  // namespace agent::http

// Who may call the agent: static Basic credentials compared in constant time, the caller's
// own header checked by the node (passthrough), or, chosen explicitly, anyone (none).
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace agent::http {

struct BasicCredentials {
  std::string user;
  std::string password;
};

// Decodes "Basic <base64(user:password)>"; nullopt for any other or malformed header.
std::optional<BasicCredentials> ParseBasicAuthorization(std::string_view header);

// "Basic <base64(user:password)>", for the agent's own calls to its node.
std::string BasicAuthorization(const BasicCredentials& credentials);

enum class AuthMode { kStatic, kPassthrough, kNone };
std::optional<AuthMode> ParseAuthMode(std::string_view name);  // "static", "passthrough", "none"
const char* AuthModeName(AuthMode mode);

inline constexpr char kUnauthorized[] = "UNAUTHORIZED";
inline constexpr char kForbidden[] = "FORBIDDEN";
inline constexpr char kSecurityCheckPending[] = "NODE_SECURITY_CHECK_PENDING";

// Passthrough's start-up check that the node's security is on runs while the agent already
// serves (a liveness probe must find it alive while a slow node starts); until it passes,
// callers and /ready get NODE_SECURITY_CHECK_PENDING (503).
class SecurityCheckGate {
 public:
  void Pass() { passed_.store(true); }
  Status Check() const {
    if (passed_.load()) return Ok{};
    return MakeError(kSecurityCheckPending,
                     "the agent is still checking that its node's security is on "
                     "(--auth-mode passthrough); retry shortly");
  }

 private:
  std::atomic<bool> passed_{false};
};

// Who a caller is, and what the agent sends its node when it acts for that caller.
struct Caller {
  std::string user;                // for the log; empty in mode none
  std::string node_authorization;  // empty: the agent's own credentials
};

// Passthrough: asks the node whether an Authorization header belongs to a user who may
// reload secure settings. The user name, or UNAUTHORIZED, FORBIDDEN or the node's error.
using CallerCheck = std::function<Result<std::string>(const std::string& authorization)>;

class Authenticator {
 public:
  static Authenticator Static(BasicCredentials expected);
  static Authenticator Passthrough(CallerCheck check);
  static Authenticator None();

  AuthMode mode() const { return mode_; }
  // The caller, or why not: UNAUTHORIZED (401), FORBIDDEN (403), or the node's error.
  Result<Caller> Authenticate(const std::string& authorization) const;

 private:
  explicit Authenticator(AuthMode mode) : mode_(mode) {}
  bool MatchesExpected(std::string_view authorization) const;  // constant time

  AuthMode mode_;
  std::optional<BasicCredentials> expected_;  // static
  CallerCheck check_;                         // passthrough
};

}  // namespace agent::http

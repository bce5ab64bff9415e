// The body of POST /keystore: S3 client credentials, parsed and validated before anything
// touches the keystore. Pure: JSON text in, a request or a named error out.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace agent::service {

inline constexpr char kNotJson[] = "REQUEST_NOT_JSON";
inline constexpr char kFieldMissing[] = "FIELD_MISSING";
inline constexpr char kFieldInvalid[] = "FIELD_INVALID";
inline constexpr char kFieldUnknown[] = "FIELD_UNKNOWN";
inline constexpr char kClientNameInvalid[] = "CLIENT_NAME_INVALID";

struct S3Credentials {
  std::string client = "default";  // the repository's `client`: s3.client.<client>.*
  std::string access_key;
  std::string secret_key;
  std::optional<std::string> session_token;
  bool reload = false;  // "reload": true asks for the node's reload after the save

  // "s3.client.<client>.access_key" and so on.
  std::string SettingName(std::string_view suffix) const;
  ~S3Credentials();  // wipes the secrets
  S3Credentials() = default;
  S3Credentials(S3Credentials&&) = default;
  S3Credentials& operator=(S3Credentials&&) = default;
};

// Accepts {"access_key_id", "secret_access_key"} (required, non-empty strings without control
// characters), "session_token" (optional), "client" (optional, [a-z0-9_-]+, at most 64) and
// "reload" (optional boolean).
// Anything else is refused, naming the field; a message never repeats a value.
Result<S3Credentials> ParseS3Credentials(std::string_view body);

struct ClientQuery {
  std::string client;
  bool reload = false;
};

// The query of DELETE /keystore?client=NAME[&reload=true|false]: exactly one `client`, a
// valid name; `reload` at most once.
Result<ClientQuery> ParseClientQuery(std::string_view query);

}  // namespace agent::service

#include "service/credentials.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "crypto/crypto.h"

namespace agent::service {
namespace {

using nlohmann::json;

constexpr size_t kMaxClientName = 64;

bool HasControlCharacter(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

bool IsValidClientName(std::string_view s) {
  return !s.empty() && s.size() <= kMaxClientName && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// Reads one string field; `required` decides whether absence is an error.
Result<std::optional<std::string>> StringField(const json& body, const char* name, bool required) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    if (required) {
      return MakeError(kFieldMissing, std::string("field \"") + name + "\" is required");
    }
    return std::optional<std::string>();
  }
  if (!it->is_string()) {
    return MakeError(kFieldInvalid, std::string("field \"") + name + "\" must be a string");
  }
  const std::string& value = it->get_ref<const std::string&>();
  if (value.empty()) {
    return MakeError(kFieldInvalid, std::string("field \"") + name + "\" must not be empty");
  }
  if (HasControlCharacter(value)) {
    return MakeError(kFieldInvalid,
                     std::string("field \"") + name + "\" contains a control character");
  }
  if (value.find_first_not_of(' ') == std::string::npos) {  // a key of spaces is a mistake
    return MakeError(kFieldInvalid, std::string("field \"") + name + "\" is blank");
  }
  return std::optional<std::string>(value);
}

}  // namespace

std::string S3Credentials::SettingName(std::string_view suffix) const {
  return "s3.client." + client + "." + std::string(suffix);
}

S3Credentials::~S3Credentials() {
  crypto::Cleanse(access_key);
  crypto::Cleanse(secret_key);
  if (session_token) crypto::Cleanse(*session_token);
}

Result<S3Credentials> ParseS3Credentials(std::string_view text) {
  // Parse without exceptions; invalid UTF-8 in a string is a parse error too. A key given
  // twice in the top-level object would silently win: it is noticed and refused.
  bool duplicate = false;
  std::vector<std::string> seen;
  auto watch = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key) {
      const std::string& key = parsed.get_ref<const std::string&>();
      duplicate = duplicate || std::find(seen.begin(), seen.end(), key) != seen.end();
      seen.push_back(key);
    }
    return true;
  };
  json body = json::parse(text, watch, /*allow_exceptions=*/false);
  if (body.is_discarded()) return MakeError(kNotJson, "request body is not valid JSON");
  if (duplicate) return MakeError(kFieldInvalid, "a field is given twice in the request body");
  if (!body.is_object()) return MakeError(kNotJson, "request body must be a JSON object");

  static const char* const kKnown[] = {"access_key_id", "secret_access_key", "session_token",
                                       "client", "reload"};
  for (const auto& [key, unused] : body.items()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      // The name is shown only when it looks like a field name (lower case and '_', at most
      // 32), so that a secret pasted in the wrong place is not echoed.
      bool printable = key.size() <= 32 && std::all_of(key.begin(), key.end(), [](char c) {
                         return (c >= 'a' && c <= 'z') || c == '_';
                       });
      return MakeError(kFieldUnknown, "unknown field" + (printable ? " \"" + key + "\"" : "") +
                                          "; allowed: access_key_id, secret_access_key, "
                                          "session_token, client, reload");
    }
  }

  S3Credentials creds;
  auto access = StringField(body, "access_key_id", true);
  if (!access.ok()) return access.error();
  auto secret = StringField(body, "secret_access_key", true);
  if (!secret.ok()) return secret.error();
  auto token = StringField(body, "session_token", false);
  if (!token.ok()) return token.error();
  auto client = StringField(body, "client", false);
  if (!client.ok()) return client.error();

  if (body.contains("reload")) {
    if (!body["reload"].is_boolean()) {
      return MakeError(kFieldInvalid, "field \"reload\" must be true or false");
    }
    creds.reload = body["reload"].get<bool>();
  }
  creds.access_key = std::move(*access.value());
  creds.secret_key = std::move(*secret.value());
  creds.session_token = std::move(token.value());
  if (client.value()) {
    if (!IsValidClientName(*client.value())) {
      return MakeError(kClientNameInvalid,
                       "field \"client\" must match [a-z0-9_-]+ and be at most 64 characters");
    }
    creds.client = *client.value();
  }
  return creds;
}

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A query value as a URL carries it: "%6b" is "k", "+" a space (which no valid name holds).
std::optional<std::string> PercentDecode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] != '%') {
      out += in[i];
    } else {
      if (i + 2 >= in.size()) return std::nullopt;  // "%" needs two hex digits after it
      int hi = HexDigit(in[i + 1]), lo = HexDigit(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return out;
}

}  // namespace

Result<ClientQuery> ParseClientQuery(std::string_view query) {
  std::optional<std::string> client;
  std::optional<bool> reload;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (param.rfind("client=", 0) == 0) {
      if (client) return MakeError(kFieldInvalid, "query parameter client is given twice");
      client = PercentDecode(param.substr(7));
      if (!client) {
        return MakeError(kFieldInvalid, "query parameter client has a malformed %-escape");
      }
    } else if (param.rfind("reload=", 0) == 0) {
      if (reload) return MakeError(kFieldInvalid, "query parameter reload is given twice");
      std::optional<std::string> value = PercentDecode(param.substr(7));
      if (value != "true" && value != "false") {
        return MakeError(kFieldInvalid, "query parameter reload must be true or false");
      }
      reload = value == "true";
    } else {
      return MakeError(kFieldUnknown,
                       "DELETE /keystore takes the query parameters client and reload only");
    }
  }
  if (!client) return MakeError(kFieldMissing, "DELETE /keystore needs ?client=NAME");
  if (!IsValidClientName(*client)) {
    return MakeError(kClientNameInvalid,
                     "client must match [a-z0-9_-]+ and be at most 64 characters");
  }
  return ClientQuery{*client, reload.value_or(false)};
}

}  // namespace agent::service

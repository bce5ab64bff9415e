#include "http/routes.h"

#include <nlohmann/json.hpp>

namespace agent::http {
namespace {

using nlohmann::json;

// Bad input is the caller's to fix (4xx); the keystore's own state blocks the write (409);
// the node is not there to ask (503); anything else is the agent's failure (500).
int StatusFor(const std::string& code) {
  if (code == "REQUEST_NOT_JSON" || code.rfind("FIELD_", 0) == 0 || code == "CLIENT_NAME_INVALID") {
    return 400;
  }
  if (code == "KEYSTORE_CORRUPT" || code == "KEYSTORE_PASSWORD_INCORRECT" ||
      code == "KEYSTORE_FORMAT_TOO_OLD" || code == "KEYSTORE_FORMAT_UNSUPPORTED" ||
      code == "KEYSTORE_OWNER_MISMATCH") {
    return 409;
  }
  if (code == "ENGINE_UNKNOWN" || code == "NODE_UNREACHABLE") return 503;
  return 500;
}

std::string PathOf(const std::string& target) { return target.substr(0, target.find('?')); }

}  // namespace

Response ErrorResponse(int status, const std::string& code, const std::string& message) {
  Response r;
  r.status = status;
  r.error_code = code;
  r.body = json{{"error", {{"code", code}, {"message", message}}}}.dump();
  return r;
}

Response Router::Handle(const Request& request) {
  const std::string path = PathOf(request.target);
  const char* allowed = path == "/health" ? "GET" : path == "/keystore" ? "POST" : nullptr;
  if (allowed == nullptr) return ErrorResponse(404, "NOT_FOUND", "no such endpoint: " + path);
  if (request.method != allowed) {
    Response r = ErrorResponse(405, "METHOD_NOT_ALLOWED",
                               path + " accepts " + allowed + ", not " + request.method);
    r.allow = allowed;
    return r;
  }
  if (path == "/health") return Health();
  if (!auth_.Allows(request.authorization)) {
    return ErrorResponse(401, "UNAUTHORIZED", "missing or wrong Basic credentials");
  }
  return WriteKeystore(request);
}

Response Router::Health() {
  service::KeystoreHealth h = keystore_.Health();
  json keystore = {{"path", h.path ? json(h.path->string()) : json(nullptr)},
                   {"exists", h.exists},
                   {"format_version", h.format_version ? json(*h.format_version) : json(nullptr)}};
  Response r;
  r.body = json{{"status", "ok"}, {"keystore", keystore}}.dump();
  return r;
}

Response Router::WriteKeystore(const Request& request) {
  auto credentials = service::ParseS3Credentials(request.body);
  if (!credentials.ok()) {
    return ErrorResponse(StatusFor(credentials.error().code), credentials.error().code,
                         credentials.error().message);
  }
  auto written = keystore_.WriteS3Credentials(credentials.value());
  if (!written.ok()) {
    return ErrorResponse(StatusFor(written.error().code), written.error().code,
                         written.error().message);
  }
  const service::WriteResult& w = written.value();
  Response r;
  r.body = json{{"keystore", w.keystore.string()},
                {"settings", w.settings},
                {"sha256", w.sha256},
                {"format_version", w.format_version},
                {"created", w.created}}
               .dump();
  return r;
}

}  // namespace agent::http

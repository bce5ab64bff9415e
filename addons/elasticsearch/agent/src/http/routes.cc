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
  if (code == "ENGINE_UNKNOWN" || code == "NODE_UNREACHABLE" || code == "NODE_ERROR" ||
      code == "KEYSTORE_LOCK_TIMEOUT") {
    return 503;
  }
  if (code == "KEYSTORE_NOT_A_FILE") return 409;
  return 500;
}

std::string PathOf(const std::string& target) { return target.substr(0, target.find('?')); }

// Whether `method` is one of the comma-separated methods in `allowed` ("GET, POST").
bool ListsMethod(std::string_view allowed, std::string_view method) {
  while (!allowed.empty()) {
    size_t comma = allowed.find(',');
    if (allowed.substr(0, comma) == method) return true;
    if (comma == std::string_view::npos) break;
    allowed.remove_prefix(comma + 1);
    while (!allowed.empty() && allowed.front() == ' ') allowed.remove_prefix(1);
  }
  return false;
}

std::string QueryOf(const std::string& target) {
  size_t q = target.find('?');
  return q == std::string::npos ? "" : target.substr(q + 1);
}

Response WriteAnswer(const service::WriteResult& w) {
  Response r;
  r.body =
      json{{"keystore", w.keystore.string()},    {"settings", w.settings}, {"sha256", w.sha256},
           {"format_version", w.format_version}, {"created", w.created},   {"changed", w.changed}}
          .dump();
  return r;
}

}  // namespace

Response ErrorResponse(int status, const std::string& code, const std::string& message) {
  Response r;
  r.status = status;
  r.error_code = code;
  // A message may quote a path the caller sent: replace invalid UTF-8 rather than throw.
  r.body = json{{"error", {{"code", code}, {"message", message}}}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
  return r;
}

Response Router::Handle(const Request& request) {
  const std::string path = PathOf(request.target);
  const char* allowed = path == "/health" || path == "/ready" ? "GET"
                        : path == "/keystore"                 ? "GET, POST, DELETE"
                                                              : nullptr;
  if (allowed == nullptr) return ErrorResponse(404, "NOT_FOUND", "no such endpoint: " + path);
  const bool known_method = ListsMethod(allowed, request.method);
  if (!known_method) {
    Response r = ErrorResponse(405, "METHOD_NOT_ALLOWED",
                               path + " accepts " + allowed + ", not " + request.method);
    r.headers.emplace_back("Allow", allowed);
    return r;
  }
  if (path == "/health") return Health();
  if (path == "/ready") return Ready();
  if (!auth_.Allows(request.authorization)) {
    Response r = ErrorResponse(401, "UNAUTHORIZED", "missing or wrong Basic credentials");
    r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"es-agent\"");
    return r;
  }
  if (request.method != "DELETE" && !QueryOf(request.target).empty()) {
    return ErrorResponse(400, "FIELD_UNKNOWN",
                         request.method + " /keystore takes no query parameters");
  }
  if (request.method == "GET") return DescribeKeystore();
  if (request.method == "DELETE") return DeleteClient(request);
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

Response Router::Ready() {
  Status ready = keystore_.CheckReady();
  if (!ready.ok()) return ErrorResponse(503, ready.error().code, ready.error().message);
  Response r;
  r.body = json{{"status", "ready"}}.dump();
  return r;
}

Response Router::DescribeKeystore() {
  auto d = keystore_.Describe();
  if (!d.ok()) return ErrorResponse(StatusFor(d.error().code), d.error().code, d.error().message);
  const service::KeystoreDescription& k = d.value();
  json body = {{"keystore", k.path.string()}, {"exists", k.exists}};
  if (k.exists) {
    body["format_version"] = k.format_version;
    body["has_password"] = k.has_password;
    body["settings"] = k.names;
    body["sha256"] = k.sha256;
  }
  Response r;
  r.body = body.dump();
  return r;
}

Response Router::DeleteClient(const Request& request) {
  auto client = service::ParseClientQuery(QueryOf(request.target));
  if (!client.ok()) {
    return ErrorResponse(400, client.error().code, client.error().message);
  }
  auto removed = keystore_.RemoveS3Client(client.value());
  if (!removed.ok()) {
    return ErrorResponse(StatusFor(removed.error().code), removed.error().code,
                         removed.error().message);
  }
  return WriteAnswer(removed.value());
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
  return WriteAnswer(written.value());
}

}  // namespace agent::http

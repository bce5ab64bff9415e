#include "http/routes.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string_view>

#include "crypto/crypto.h"

namespace agent::http {
namespace {

using nlohmann::json;

// Bad input is the caller's to fix (4xx); the keystore's own state blocks the write (409);
// the node is not there to ask (503); anything else is the agent's failure (500).
int StatusFor(const std::string& code) {
  if (code == kUnauthorized) return 401;
  if (code == kForbidden) return 403;
  if (code == "NODE_RELOAD_FAILED") return 502;
  if (code == "NODE_HAS_NO_S3_REPOSITORY") return 409;
  if (code == "KEYSTORE_CLI_TIMEOUT") return 504;
  if (code == "KEYSTORE_CLI_VALUE_UNSUPPORTED") return 400;
  if (code == "REQUEST_NOT_JSON" || code.rfind("FIELD_", 0) == 0 || code == "CLIENT_NAME_INVALID") {
    return 400;
  }
  if (code == "KEYSTORE_CORRUPT" || code == "KEYSTORE_PASSWORD_INCORRECT" ||
      code == "KEYSTORE_FORMAT_TOO_OLD" || code == "KEYSTORE_FORMAT_UNSUPPORTED" ||
      code == "KEYSTORE_OWNER_MISMATCH") {
    return 409;
  }
  if (code == "ENGINE_UNKNOWN" || code == "NODE_UNREACHABLE" || code == "NODE_ERROR" ||
      code == kSecurityCheckPending || code == "NODE_TLS_FAILED" ||
      code == "KEYSTORE_LOCK_TIMEOUT") {
    return 503;
  }
  if (code == "KEYSTORE_NOT_A_FILE") return 409;
  return 500;
}

std::string PathOf(const std::string& target) { return target.substr(0, target.find('?')); }

// What a request names goes into messages and the log bounded, as the log bounds a route.
constexpr size_t kMaxEchoed = 200;

// The methods an endpoint takes (HEAD wherever GET is), or nullptr for no such endpoint.
const char* AllowedMethods(std::string_view path) {
  if (path == "/health" || path == "/ready" || path == "/metrics") return "GET, HEAD";
  if (path == "/keystore") return "GET, HEAD, POST, DELETE";
  return nullptr;
}

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

json WriteAnswer(const service::WriteResult& w) {
  return json{
      {"keystore", w.keystore.string()},    {"settings", w.settings}, {"sha256", w.sha256},
      {"format_version", w.format_version}, {"created", w.created},   {"changed", w.changed}};
}

Response Failure(const Error& e) { return ErrorResponse(StatusFor(e.code), e.code, e.message); }

// The fixed set of route labels for the metrics: a caller cannot invent new ones.
std::string RouteLabel(std::string_view path) {
  for (const char* known : {"/health", "/ready", "/metrics", "/keystore"}) {
    if (path == known) return std::string(path);
  }
  return "other";
}

std::string MethodLabel(std::string_view method) {
  for (const char* known : {"GET", "POST", "DELETE", "PUT", "HEAD"}) {
    if (method == known) return std::string(method);
  }
  return "other";
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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
  Response r = Route(request);
  metrics_.CountRequest(RouteLabel(PathOf(request.target)), MethodLabel(request.method), r.status);
  return r;
}

void Router::CountServerAnswer(std::string_view target, std::string_view method, int status) {
  metrics_.CountRequest(RouteLabel(target.substr(0, target.find('?'))), MethodLabel(method),
                        status);
}

bool Router::Authenticates(const Request& request) const {
  const std::string path = PathOf(request.target);
  const char* allowed = AllowedMethods(path);
  return path == "/keystore" && ListsMethod(allowed, request.method);
}

Response Router::Route(const Request& request) {
  const std::string path = PathOf(request.target);
  const char* allowed = AllowedMethods(path);
  if (allowed == nullptr) return ErrorResponse(404, "NOT_FOUND", "no such endpoint: " + path);
  const bool known_method = ListsMethod(allowed, request.method);
  if (!known_method) {
    Response r = ErrorResponse(
        405, "METHOD_NOT_ALLOWED",
        path + " accepts " + allowed + ", not " + request.method.substr(0, kMaxEchoed));
    r.headers.emplace_back("Allow", allowed);
    return r;
  }
  if (path == "/health") return Health();
  if (path == "/ready") return Ready();
  if (path == "/metrics") return RenderMetrics();
  auto caller = auth_.Authenticate(request.authorization);
  if (!caller.ok()) {
    Response r = Failure(caller.error());
    if (caller.error().code == kUnauthorized) {
      r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"es-agent\"");
    }
    return r;
  }
  if (request.method != "DELETE" && !QueryOf(request.target).empty()) {
    return ErrorResponse(400, "FIELD_UNKNOWN",
                         request.method + " /keystore takes no query parameters");
  }
  // HEAD is answered as GET; the server sends the headers alone.
  if (request.method == "GET" || request.method == "HEAD") return DescribeKeystore();
  if (request.method == "DELETE") return DeleteClient(request, caller.value());
  return WriteKeystore(request, caller.value());
}

// What /health and /ready say of the keystore: its header's facts, read without decrypting.
Response Router::StatusWithKeystore(const char* status) {
  service::KeystoreHealth h = keystore_.Health();
  json keystore = {{"path", h.path ? json(h.path->string()) : json(nullptr)},
                   {"exists", h.exists},
                   {"format_version", h.format_version ? json(*h.format_version) : json(nullptr)},
                   {"has_password", h.has_password ? json(*h.has_password) : json(nullptr)}};
  if (h.problem) keystore["problem"] = *h.problem;
  Response r;
  r.body = json{{"status", status}, {"keystore", keystore}}.dump(-1, ' ', false,
                                                                 json::error_handler_t::replace);
  return r;
}

Response Router::Health() { return StatusWithKeystore("ok"); }

Response Router::Ready() {
  Status ready = node_.ready ? node_.ready() : Status(Ok{});
  if (ready.ok()) ready = keystore_.CheckReady();
  if (!ready.ok()) return ErrorResponse(503, ready.error().code, ready.error().message);
  // has_password here spares the jobs a GET /keystore, which decrypts (a key derivation).
  return StatusWithKeystore("ready");
}

Response Router::RenderMetrics() {
  Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics_.Render();
  return r;
}

Response Router::DescribeKeystore() {
  auto d = keystore_.Describe();
  if (!d.ok()) return Failure(d.error());
  const service::KeystoreDescription& k = d.value();
  json body = {{"keystore", k.path.string()}, {"exists", k.exists}};
  if (k.exists) {
    body["format_version"] = k.format_version;
    body["has_password"] = k.has_password;
    body["settings"] = k.names;
    body["sha256"] = k.sha256;
  }
  Response r;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);  // a path need not be UTF-8
  return r;
}

Status Router::CheckNodeHasS3Repository(const Caller& caller) {
  if (!node_.has_s3_repository) return Ok{};
  auto has = node_.has_s3_repository(caller.node_authorization);
  if (!has.ok()) return has.error();
  if (!has.value()) {
    return MakeError("NODE_HAS_NO_S3_REPOSITORY",
                     "the node has no repository-s3 module or plugin: it would refuse to start "
                     "with s3.client.* settings in its keystore, so nothing was written (install "
                     "the plugin, or start the agent with --allow-without-s3-repository)");
  }
  return Ok{};
}

Response Router::Change(const char* operation,
                        const std::function<Result<service::WriteResult>()>& save, bool reload,
                        const Caller& caller) {
  const auto started = std::chrono::steady_clock::now();
  auto saved = save();
  metrics_.ObserveKeystoreChange(operation, saved.ok(), SecondsSince(started));
  if (!saved.ok()) return Failure(saved.error());
  json body = WriteAnswer(saved.value());
  Response r;
  if (reload) {
    // The save stands whatever the reload does; the answer says both.
    auto password = keystore_.ReloadPassword();
    Result<node::ReloadOutcome> outcome =
        password.ok() ? node_.reload(caller.node_authorization, password.value())
                      : Result<node::ReloadOutcome>(password.error());
    if (password.ok()) crypto::Cleanse(password.value());
    std::optional<Error> failure;
    if (!outcome.ok()) {
      failure = outcome.error();
      body["reload"] = {{"reloaded", false}};
    } else {
      const node::ReloadOutcome& o = outcome.value();
      body["reload"] = {{"node", o.node_name}, {"reloaded", o.reloaded}};
      if (!o.reloaded) {
        body["reload"]["failure"] = o.failure;
        failure =
            MakeError("NODE_RELOAD_FAILED",
                      "node " + o.node_name + " did not reload its secure settings: " + o.failure);
      } else if (!o.keystore_digest.empty()) {
        body["reload"]["keystore_digest"] = o.keystore_digest;
        failure = CheckReloadedDigest(o, saved.value(), std::string_view(operation) == "delete");
      }
    }
    metrics_.CountReload(!failure);
    if (failure) {
      r.status = StatusFor(failure->code);
      r.error_code = failure->code;
      const std::string what = saved.value().changed ? "the keystore was saved" : "nothing changed";
      body["error"] = {{"code", failure->code},
                       {"message", what + ", but the reload failed: " + failure->message}};
    }
  }
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

namespace {

bool IsSha256Hex(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Whether a keystore's names still say what a change said: its settings there (a write), or
// none of them (a removal).
bool StillSays(const std::vector<std::string>& names, const std::vector<std::string>& settings,
               bool removed) {
  return std::all_of(settings.begin(), settings.end(), [&](const std::string& setting) {
    const bool there = std::find(names.begin(), names.end(), setting) != names.end();
    return there != removed;
  });
}

}  // namespace

// The node (Elasticsearch 9.3+) says which keystore it loaded: the one just saved, or a later
// save (another caller's, which keeps every other entry) that still says what this change
// said; else the node read another file. A digest in another form is not judged.
std::optional<Error> Router::CheckReloadedDigest(const node::ReloadOutcome& outcome,
                                                 const service::WriteResult& saved, bool removed) {
  if (!IsSha256Hex(outcome.keystore_digest) || outcome.keystore_digest == saved.sha256) {
    return std::nullopt;
  }
  auto now = keystore_.Describe();  // decrypts: only on a mismatch
  if (now.ok() && outcome.keystore_digest == now.value().sha256 &&
      StillSays(now.value().names, saved.settings, removed)) {
    return std::nullopt;
  }
  return MakeError("NODE_RELOAD_FAILED",
                   "node " + outcome.node_name + " reloaded a keystore with digest " +
                       outcome.keystore_digest + ", not the file the agent saved (" + saved.sha256 +
                       ") nor a later save that keeps this change");
}

Response Router::DeleteClient(const Request& request, const Caller& caller) {
  auto query = service::ParseClientQuery(QueryOf(request.target));
  if (!query.ok()) return Failure(query.error());
  const std::string client = query.value().client;
  return Change(
      "delete", [&] { return keystore_.RemoveS3Client(client); }, query.value().reload, caller);
}

Response Router::WriteKeystore(const Request& request, const Caller& caller) {
  auto credentials = service::ParseS3Credentials(request.body);
  if (!credentials.ok()) return Failure(credentials.error());
  if (Status s = CheckNodeHasS3Repository(caller); !s.ok()) return Failure(s.error());
  return Change(
      "write", [&] { return keystore_.WriteS3Credentials(credentials.value()); },
      credentials.value().reload, caller);
}

}  // namespace agent::http

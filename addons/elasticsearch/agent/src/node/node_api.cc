#include "node/node_api.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "crypto/crypto.h"

namespace agent::node {
namespace {

using http::kForbidden;
using http::kUnauthorized;

using nlohmann::json;

// The reload probe of OpenSearch's passthrough: a node id no node has, so the action is
// authorized (or refused) by the security plugin and then runs on no node at all.
constexpr char kNoSuchNode[] = "es-agent-permission-check";

// The probe of "does the node answer, and whom": every engine build serves it (GET / is a
// module of its own from Elasticsearch 8.9, absent from minimal distributions).
constexpr char kProbe[] = "/_nodes/_local?filter_path=nodes.*.version";

json ParseObject(const std::string& body) {
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  return doc.is_object() ? doc : json();
}

std::string StringAt(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Every reason in an engine's exception: its own, its causes' and those it suppressed (a
// reload that fails in several plugins reports the first and suppresses the rest), each once,
// joined by "; " and bounded, so that the answer names them all without growing unbounded.
void CollectReasons(const json& e, std::vector<std::string>& reasons, int depth) {
  if (!e.is_object() || depth > 8 || reasons.size() >= 16) return;
  if (std::string reason = StringAt(e, "reason");
      !reason.empty() && std::find(reasons.begin(), reasons.end(), reason) == reasons.end()) {
    reasons.push_back(std::move(reason));
  }
  if (auto cause = e.find("caused_by"); cause != e.end())
    CollectReasons(*cause, reasons, depth + 1);
  if (auto suppressed = e.find("suppressed"); suppressed != e.end() && suppressed->is_array()) {
    for (const json& other : *suppressed) CollectReasons(other, reasons, depth + 1);
  }
}

std::string ReloadFailureReasons(const json& exception) {
  constexpr size_t kMaxLength = 2000;
  std::vector<std::string> reasons;
  CollectReasons(exception, reasons, 0);
  std::string joined;
  for (const std::string& reason : reasons) {
    if (!joined.empty()) joined += "; ";
    joined += reason;
  }
  if (joined.size() > kMaxLength) joined = joined.substr(0, kMaxLength) + "...";
  return joined;
}

// NodeClient::Send's `authorization`: empty is the agent's own, "-" none, else a caller's.
bool IsCallers(const std::string& authorization) {
  return !authorization.empty() && authorization != "-";
}

}  // namespace

Result<service::EngineInfo> ParseEngineInfo(const std::string& body) {
  json doc = ParseObject(body);
  const json* version = doc.contains("version") ? &doc["version"] : nullptr;
  if (!version || !version->is_object() || StringAt(*version, "number").empty()) {
    return MakeError(kNodeError, "node's GET / answer has no version.number");
  }
  service::EngineInfo info;
  info.version = StringAt(*version, "number");
  // OpenSearch says so in version.distribution; Elasticsearch has no such field.
  info.product = StringAt(*version, "distribution") == "opensearch"
                     ? keystore::Product::kOpenSearch
                     : keystore::Product::kElasticsearch;
  return info;
}

Result<bool> ParseHasS3Repository(const std::string& body) {
  json doc = ParseObject(body);
  if (!doc.contains("nodes") || !doc["nodes"].is_object() || doc["nodes"].empty()) {
    return MakeError(kNodeError, "node's plugins answer names no node");
  }
  for (const auto& [id, node] : doc["nodes"].items()) {
    for (const char* kind : {"modules", "plugins"}) {
      if (!node.contains(kind) || !node[kind].is_array()) continue;
      for (const json& component : node[kind]) {
        if (component.is_object() && StringAt(component, "name") == "repository-s3") return true;
      }
    }
  }
  return false;
}

Result<ReloadOutcome> ParseReloadAnswer(const std::string& body) {
  json doc = ParseObject(body);
  if (!doc.contains("nodes") || !doc["nodes"].is_object() || doc["nodes"].size() != 1) {
    return MakeError(kNodeError, "node's reload answer does not hold exactly the local node");
  }
  const json& node = doc["nodes"].begin().value();
  ReloadOutcome outcome;
  outcome.node_name = node.is_object() ? StringAt(node, "name") : "";
  if (node.is_object() && node.contains("reload_exception")) {
    outcome.failure = ReloadFailureReasons(node["reload_exception"]);
    if (outcome.failure.empty()) outcome.failure = "the node reported a reload_exception";
    return outcome;
  }
  outcome.reloaded = true;
  outcome.keystore_digest = StringAt(node, "keystore_digest");
  for (char& c : outcome.keystore_digest) c = static_cast<char>(std::tolower(c));
  return outcome;
}

Error NodeApi::Unexpected(const std::string& what, const NodeReply& reply,
                          const std::string& authorization) const {
  // A refusal of the caller's own header is the caller's to fix (401/403), not the node's.
  if (IsCallers(authorization) && reply.status == 401) {
    return MakeError(kUnauthorized, "the node did not accept the caller's credentials (" + what +
                                        " answered HTTP 401)");
  }
  if (IsCallers(authorization) && reply.status == 403) {
    return MakeError(kForbidden, "the caller's credentials lack the privilege for " + what +
                                     " (the node answered HTTP 403)");
  }
  std::string hint;
  if (reply.status == 401) hint = " (the agent's credentials were rejected)";
  if (reply.status == 403) hint = " (the agent's user lacks the privilege)";
  return MakeError(kNodeError, client_.Describe() + " answered " + what + " with HTTP " +
                                   std::to_string(reply.status) + hint);
}

Result<service::EngineInfo> NodeApi::FetchEngineInfo(const std::string& authorization) const {
  auto reply = client_.Send("GET", "/", "", authorization);
  if (!reply.ok()) return reply.error();
  if (reply.value().status != 200) return Unexpected("GET /", reply.value(), authorization);
  auto info = ParseEngineInfo(reply.value().body);
  if (!info.ok()) return MakeError(kNodeError, client_.Describe() + ": " + info.error().message);
  return info;
}

Status NodeApi::CheckAnswers(bool need_ok) const {
  auto reply = client_.Send("GET", kProbe, "", need_ok ? "" : "-");
  if (!reply.ok()) return reply.error();
  if (need_ok && reply.value().status != 200)
    return Unexpected("GET /_nodes/_local", reply.value(), "");
  return Ok{};
}

Result<bool> NodeApi::HasS3Repository(const std::string& authorization) const {
  auto reply = client_.Send(
      "GET", "/_nodes/_local/plugins?filter_path=nodes.*.plugins.name,nodes.*.modules.name", "",
      authorization);
  if (!reply.ok()) return reply.error();
  if (reply.value().status != 200) {
    return Unexpected("GET /_nodes/_local/plugins", reply.value(), authorization);
  }
  auto has = ParseHasS3Repository(reply.value().body);
  if (!has.ok()) return MakeError(kNodeError, client_.Describe() + ": " + has.error().message);
  return has;
}

Result<ReloadOutcome> NodeApi::ReloadSecureSettings(const std::string& authorization,
                                                    const std::string& keystore_password) const {
  // The engines take a password only on a request for the local node (unless transport TLS
  // is on), which is what this is.
  std::string body;
  if (!keystore_password.empty())
    body = json{{"secure_settings_password", keystore_password}}.dump();
  auto reply = client_.Send("POST", "/_nodes/_local/reload_secure_settings", body, authorization);
  crypto::Cleanse(body);
  if (!reply.ok()) return reply.error();
  if (reply.value().status != 200) {
    return Unexpected("POST /_nodes/_local/reload_secure_settings", reply.value(), authorization);
  }
  auto outcome = ParseReloadAnswer(reply.value().body);
  if (!outcome.ok()) {
    return MakeError(kNodeError, client_.Describe() + ": " + outcome.error().message);
  }
  return outcome;
}

Status NodeApi::CheckSecurityOn() const {
  auto reply = client_.Send("GET", kProbe, "", "-");
  if (!reply.ok()) return reply.error();
  // 401, or 403 for an anonymous user the node knows but does not let in: it checks callers.
  if (reply.value().status == 401 || reply.value().status == 403) return Ok{};
  if (reply.value().status == 200) {
    return MakeError(kNodeSecurityOff,
                     client_.Describe() +
                         " answers GET /_nodes/_local without credentials: its security is off, so "
                         "passthrough has no one to check callers against (choose "
                         "--auth-mode static, or turn the node's security on)");
  }
  return Unexpected("GET /_nodes/_local without credentials", reply.value(), "-");
}

Status NodeApi::WaitForSecurityOn(std::chrono::milliseconds max_wait,
                                  std::chrono::milliseconds step, const std::atomic<bool>& stopping,
                                  const std::function<void(const Error&)>& on_retry) const {
  const auto deadline = std::chrono::steady_clock::now() + max_wait;
  for (;;) {
    Status on = CheckSecurityOn();
    if (on.ok() || on.error().code == kNodeSecurityOff ||
        std::chrono::steady_clock::now() + step > deadline) {
      return on;
    }
    on_retry(on.error());
    // In slices, so that a SIGTERM is noticed within 100 ms.
    for (auto waited = std::chrono::milliseconds(0); waited < step;
         waited += std::chrono::milliseconds(100)) {
      if (stopping.load()) return Ok{};
      std::this_thread::sleep_for(std::min(step - waited, std::chrono::milliseconds(100)));
    }
  }
}

Result<std::string> NodeApi::AuthorizeCaller(keystore::Product product,
                                             const std::string& authorization) const {
  if (authorization.empty()) {
    return MakeError(kUnauthorized, "no Authorization header (Basic, ApiKey or Bearer)");
  }
  return product == keystore::Product::kOpenSearch ? AuthorizeOnOpenSearch(authorization)
                                                   : AuthorizeOnElasticsearch(authorization);
}

Result<std::string> NodeApi::AuthorizeOnElasticsearch(const std::string& authorization) const {
  // One call both authenticates the caller and answers for the privilege that covers
  // reload_secure_settings.
  auto reply = client_.Send("POST", "/_security/user/_has_privileges",
                            json{{"cluster", {"manage"}}}.dump(), authorization);
  if (!reply.ok()) return reply.error();
  if (reply.value().status == 401) {
    return MakeError(kUnauthorized, "the node did not accept the caller's credentials");
  }
  if (reply.value().status != 200) {
    return Unexpected("POST /_security/user/_has_privileges", reply.value(), authorization);
  }
  json doc = ParseObject(reply.value().body);
  const std::string user = StringAt(doc, "username");
  if (!doc.contains("has_all_requested") || !doc["has_all_requested"].is_boolean()) {
    return MakeError(kNodeError, client_.Describe() +
                                     ": _has_privileges answer has no "
                                     "has_all_requested");
  }
  if (!doc["has_all_requested"].get<bool>()) {
    return MakeError(kForbidden, "user \"" + user + "\" lacks the cluster privilege \"manage\"");
  }
  return user;
}

Result<std::string> NodeApi::AuthorizeOnOpenSearch(const std::string& authorization) const {
  auto who = client_.Send("GET", "/_plugins/_security/authinfo", "", authorization);
  if (!who.ok()) return who.error();
  if (who.value().status == 401) {
    return MakeError(kUnauthorized, "the node did not accept the caller's credentials");
  }
  if (who.value().status != 200) {
    return Unexpected("GET /_plugins/_security/authinfo", who.value(), authorization);
  }
  const std::string user = StringAt(ParseObject(who.value().body), "user_name");
  // OpenSearch has no privilege-check API: the reload action itself, aimed at no node, is
  // allowed or refused by the security plugin without touching any keystore.
  auto probe = client_.Send(
      "POST", std::string("/_nodes/") + kNoSuchNode + "/reload_secure_settings", "", authorization);
  if (!probe.ok()) return probe.error();
  if (probe.value().status == 403) {
    return MakeError(kForbidden, "user \"" + user +
                                     "\" lacks the permission "
                                     "cluster:admin/nodes/reload_secure_settings");
  }
  if (probe.value().status == 401) {
    return MakeError(kUnauthorized, "the node did not accept the caller's credentials");
  }
  if (probe.value().status != 200) {
    return Unexpected("the reload permission probe", probe.value(), authorization);
  }
  return user;
}

}  // namespace agent::node

// NodeApi: what the agent asks its own node, over NodeClient: the engine and its version,
// whether the S3 repository is installed, a reload of secure settings, and who a caller is.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "common/result.h"
#include "http/auth.h"
#include "keystore/format.h"
#include "node/node_client.h"
#include "service/keystore_service.h"

namespace agent::node {

inline constexpr char kNodeSecurityOff[] = "NODE_SECURITY_OFF";

// The node's own answer to a reload of its secure settings.
struct ReloadOutcome {
  std::string node_name;
  bool reloaded = false;
  std::string failure;  // the node's reload_exception reason, when not reloaded
  // SHA-256 (hex) of the keystore file the node loaded: Elasticsearch 9.3+; empty before.
  std::string keystore_digest;
};

// Parsers of the node's answers, pure so that they can be tested on recorded bodies.
Result<service::EngineInfo> ParseEngineInfo(const std::string& body);
Result<bool> ParseHasS3Repository(const std::string& body);
Result<ReloadOutcome> ParseReloadAnswer(const std::string& body);

class NodeApi {
 public:
  explicit NodeApi(const NodeClient& client) : client_(client) {}

  // GET /. `authorization` as in NodeClient::Send (empty: the agent's own).
  Result<service::EngineInfo> FetchEngineInfo(const std::string& authorization = "") const;
  // Whether the node answers HTTP at all; with `need_ok`, with success (so that the agent's
  // own credentials are known to work). Asks GET /_nodes/_local, which every build serves.
  Status CheckAnswers(bool need_ok) const;
  // True when the node has the repository-s3 module or plugin (GET /_nodes/_local/plugins).
  Result<bool> HasS3Repository(const std::string& authorization) const;
  // POST /_nodes/_local/reload_secure_settings, with the keystore password when there is one.
  Result<ReloadOutcome> ReloadSecureSettings(const std::string& authorization,
                                             const std::string& keystore_password) const;
  // Ok when the node refuses a request without credentials (its security is on);
  // NODE_SECURITY_OFF when it serves one.
  Status CheckSecurityOn() const;
  // Asks CheckSecurityOn every `step` until it gives a verdict (Ok, or NODE_SECURITY_OFF) or
  // `max_wait` is over (then its last error): a node that does not answer yet, or answers 503
  // while its security initialises (OpenSearch), is waited for. Ok at once when `stopping`.
  Status WaitForSecurityOn(std::chrono::milliseconds max_wait, std::chrono::milliseconds step,
                           const std::atomic<bool>& stopping,
                           const std::function<void(const Error&)>& on_retry) const;
  // Passthrough authentication: asks the node who `authorization` is and whether it may
  // reload secure settings. The user name, or UNAUTHORIZED / FORBIDDEN / NODE_* errors.
  Result<std::string> AuthorizeCaller(keystore::Product product,
                                      const std::string& authorization) const;

 private:
  Result<std::string> AuthorizeOnElasticsearch(const std::string& authorization) const;
  Result<std::string> AuthorizeOnOpenSearch(const std::string& authorization) const;
  // The error for an answer other than the expected one; `authorization` as sent, so that a
  // 401 or 403 to the caller's own header is UNAUTHORIZED or FORBIDDEN, not NODE_ERROR.
  Error Unexpected(const std::string& what, const NodeReply& reply,
                   const std::string& authorization) const;

  const NodeClient& client_;
};

}  // namespace agent::node

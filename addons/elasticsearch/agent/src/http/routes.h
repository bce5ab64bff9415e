// The agent's HTTP API as plain functions from a request to a response, independent of the
// server library: GET /health, /ready, /metrics, and GET, POST and DELETE /keystore.
// Handlers stay thin: authenticate, parse, call, map.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "http/auth.h"
#include "http/metrics.h"
#include "node/node_api.h"
#include "service/keystore_service.h"

namespace agent::http {

struct Request {
  std::string method;  // "GET"
  std::string target;  // "/keystore?x=y"
  std::string authorization;
  std::string body;
};

struct Response {
  int status = 200;
  std::string body;  // JSON, unless content_type
  std::string content_type = "application/json";
  std::string error_code;                                    // for the access log; empty on success
  std::vector<std::pair<std::string, std::string>> headers;  // Allow, WWW-Authenticate
};

// A JSON error response: {"error": {"code": ..., "message": ...}}.
Response ErrorResponse(int status, const std::string& code, const std::string& message);

// What the router asks of the local node on a caller's behalf (`authorization` is the
// caller's node_authorization). main wires node::NodeApi in; a test can wire its own.
struct NodeHooks {
  // Extra readiness, checked first by /ready: e.g. passthrough's start-up check of the node.
  std::function<Status()> ready;
  // Whether the node has the S3 repository; unset: not checked (--allow-without-s3-repository).
  std::function<Result<bool>(const std::string& authorization)> has_s3_repository;
  std::function<Result<node::ReloadOutcome>(const std::string& authorization,
                                            const std::string& keystore_password)>
      reload;
};

class Router {
 public:
  Router(service::KeystoreService& keystore, const Authenticator& auth, NodeHooks node,
         Metrics& metrics)
      : keystore_(keystore), auth_(auth), node_(std::move(node)), metrics_(metrics) {}

  Response Handle(const Request& request);
  // Whether Handle authenticates this request (a method /keystore takes); only those care
  // about its Authorization header, and the server refuses them two such headers.
  bool Authenticates(const Request& request) const;
  // For answers the server gives itself, before or instead of Handle (a request too large to
  // read, not HTTP, or over the connection cap), so that /metrics counts every answer.
  // `target` and `method` are empty when the request line was not read.
  void CountServerAnswer(std::string_view target, std::string_view method, int status);
  void CountConnectionRefused(bool answered) { metrics_.CountConnectionRefused(answered); }

 private:
  Response Route(const Request& request);
  Response StatusWithKeystore(const char* status);
  std::optional<Error> CheckReloadedDigest(const node::ReloadOutcome& outcome,
                                           const service::WriteResult& saved, bool removed);
  Response Health();
  Response Ready();
  Response RenderMetrics();
  Response DescribeKeystore();
  Response WriteKeystore(const Request& request, const Caller& caller);
  Response DeleteClient(const Request& request, const Caller& caller);
  Status CheckNodeHasS3Repository(const Caller& caller);
  // Times a keystore change for the metrics and turns it into the answer, with the node's
  // reload after it when asked for.
  Response Change(const char* operation, const std::function<Result<service::WriteResult>()>& save,
                  bool reload, const Caller& caller);

  service::KeystoreService& keystore_;
  const Authenticator& auth_;
  NodeHooks node_;
  Metrics& metrics_;
};

}  // namespace agent::http

// The agent's HTTP API as plain functions from a request to a response, independent of the
// server library: GET /health, GET /ready, and GET, POST and DELETE /keystore. Handlers stay
// thin: parse, call, map.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "http/auth.h"
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
  std::string body;                                          // JSON
  std::string error_code;                                    // for the access log; empty on success
  std::vector<std::pair<std::string, std::string>> headers;  // Allow, WWW-Authenticate
};

// A JSON error response: {"error": {"code": ..., "message": ...}}.
Response ErrorResponse(int status, const std::string& code, const std::string& message);

class Router {
 public:
  Router(service::KeystoreService& keystore, const Authenticator& auth)
      : keystore_(keystore), auth_(auth) {}

  Response Handle(const Request& request);

 private:
  Response Health();
  Response Ready();
  Response DescribeKeystore();
  Response WriteKeystore(const Request& request);
  Response DeleteClient(const Request& request);

  service::KeystoreService& keystore_;
  const Authenticator& auth_;
};

}  // namespace agent::http

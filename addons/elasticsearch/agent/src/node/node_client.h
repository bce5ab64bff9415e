// NodeClient: the agent's calls to its own search-engine node over HTTP. Today one call:
// GET / for the engine (Elasticsearch or OpenSearch) and its version.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/result.h"
#include "http/auth.h"
#include "service/keystore_service.h"

namespace agent::node {

inline constexpr char kNodeUnreachable[] = "NODE_UNREACHABLE";
inline constexpr char kNodeError[] = "NODE_ERROR";

struct NodeAddress {
  std::string host;  // numeric: "127.0.0.1" or "::1" (no name lookup)
  unsigned short port = 9200;
  std::string ToString() const;
};

// Parses "127.0.0.1:9200" or "[::1]:9200"; the host must be a numeric address.
Result<NodeAddress> ParseNodeAddress(const std::string& text);

// Parses the body of GET / into the engine and its version.
Result<service::EngineInfo> ParseEngineInfo(const std::string& body);

class NodeClient {
 public:
  NodeClient(NodeAddress address, std::optional<http::BasicCredentials> credentials,
             std::chrono::milliseconds timeout)
      : address_(std::move(address)), credentials_(std::move(credentials)), timeout_(timeout) {}

  Result<service::EngineInfo> FetchEngineInfo() const;

 private:
  NodeAddress address_;
  std::optional<http::BasicCredentials> credentials_;
  std::chrono::milliseconds timeout_;
};

}  // namespace agent::node

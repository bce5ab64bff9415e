// NodeClient: one HTTP or HTTPS request from the agent to its own search-engine node (or, for
// `es-agent health`, to the agent itself). It connects by number and, over HTTPS, verifies the
// peer's certificate against a DNS name.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "common/result.h"

namespace agent::node {

inline constexpr char kNodeUnreachable[] = "NODE_UNREACHABLE";
inline constexpr char kNodeError[] = "NODE_ERROR";
inline constexpr char kNodeTlsFailed[] = "NODE_TLS_FAILED";

struct NodeAddress {
  std::string host;  // numeric: "127.0.0.1" or "::1" (no name lookup)
  unsigned short port = 9200;
  std::string ToString() const;
};

// Parses "127.0.0.1:9200" or "[::1]:9200"; the host must be a numeric address.
Result<NodeAddress> ParseNodeAddress(const std::string& text);

struct NodeEndpoint {
  NodeAddress address;
  bool https = false;
  // HTTPS: the name the node's certificate must carry (the pod's DNS name), sent as SNI.
  std::string server_name;
  // HTTPS: the CA that signed the node's certificate; read at each call, so a renewed file
  // is used without a restart.
  std::filesystem::path ca_file;
  // HTTPS, optional: a client certificate and key to present (the health probe's, for an
  // agent that requires client certificates).
  std::filesystem::path client_cert_file;
  std::filesystem::path client_key_file;
  std::chrono::milliseconds timeout{5000};  // connect, handshake, write and read together
  std::string label = "node";               // what the messages call the peer
};

struct NodeReply {
  int status = 0;
  std::string body;
};

class NodeClient {
 public:
  // `authorization` is the agent's own Authorization header for its node (empty: none).
  NodeClient(NodeEndpoint endpoint, std::string authorization)
      : endpoint_(std::move(endpoint)), authorization_(std::move(authorization)) {}

  // Sends one request and returns whatever HTTP status the node answered with. A non-empty
  // `authorization` is sent instead of the agent's own; "-" sends none at all.
  Result<NodeReply> Send(const std::string& method, const std::string& target,
                         const std::string& json_body, const std::string& authorization) const;

  std::string Describe() const;  // "node https://127.0.0.1:9200", for messages

 private:
  NodeEndpoint endpoint_;
  std::string authorization_;
};

}  // namespace agent::node

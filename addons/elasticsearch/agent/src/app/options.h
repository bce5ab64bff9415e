// The options of `es-agent serve`: each flag has an environment variable, flags win.
// Secrets (the Basic password) come only from the environment, never from a flag.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/result.h"
#include "http/auth.h"
#include "keystore/format.h"

namespace agent::app {

struct Options {
  std::string listen_address = "0.0.0.0";                                // AGENT_LISTEN_ADDRESS
  uint16_t port = 8080;                                                  // AGENT_PORT
  std::filesystem::path config_dir = "/usr/share/elasticsearch/config";  // AGENT_CONFIG_DIR
  std::optional<keystore::Product> engine;                               // AGENT_ENGINE
  std::optional<std::string> engine_version;                             // AGENT_ENGINE_VERSION
  std::string node_address = "127.0.0.1:9200";                           // AGENT_NODE_ADDRESS
  std::optional<std::filesystem::path> keystore_password_file;  // AGENT_KEYSTORE_PASSWORD_FILE
  int threads = 2;                                              // AGENT_THREADS
  int max_connections = 128;                                    // AGENT_MAX_CONNECTIONS
  LogLevel log_level = LogLevel::kInfo;                         // AGENT_LOG_LEVEL
  std::optional<http::BasicCredentials> credentials;  // ELASTIC_USERNAME / ELASTIC_PASSWORD
  bool help = false;
};

using EnvLookup = std::function<std::optional<std::string>(const char* name)>;

// Parses the arguments after "serve". Unknown flags and bad values are named in the error.
Result<Options> ParseServeOptions(const std::vector<std::string>& args, const EnvLookup& env);

// Checks what can be checked before serving, so that a wrong value fails at start, not at
// the first request: a numeric listen address, an existing config directory, a readable
// password file, an engine version whose keystore format is known.
Status ValidateServeOptions(const Options& options);

std::string ServeUsage();

}  // namespace agent::app

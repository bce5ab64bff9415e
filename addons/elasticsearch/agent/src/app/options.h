// The options of `es-agent serve`: each flag has an environment variable, flags win.
// Secrets (the Basic password) come only from the environment or files, never from a flag.
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

  // Who may call: unset means static when credentials are configured, else refuse to start.
  std::optional<http::AuthMode> auth_mode;               // AGENT_AUTH_MODE
  std::optional<std::filesystem::path> credentials_dir;  // AGENT_CREDENTIALS_DIR
  std::optional<http::BasicCredentials> credentials;     // ELASTIC_USERNAME / _PASSWORD, or
                                                         // credentials_dir/{username,password}
  // HTTPS served by the agent; all three files or none.
  std::optional<std::filesystem::path> tls_cert_file;  // AGENT_TLS_CERT_FILE
  std::optional<std::filesystem::path> tls_key_file;   // AGENT_TLS_KEY_FILE
  std::optional<std::filesystem::path> tls_ca_file;    // AGENT_TLS_CA_FILE
  bool tls_require_client_cert = false;                // AGENT_TLS_CLIENT_AUTH=require
  // The local node over HTTPS, verified against a name.
  bool node_https = false;                                // AGENT_NODE_SCHEME=https
  std::optional<std::filesystem::path> node_ca_file;      // AGENT_NODE_CA_FILE (else TLS CA)
  std::string node_server_name;                           // AGENT_NODE_SERVER_NAME
  bool allow_without_s3_repository = false;               // AGENT_ALLOW_WITHOUT_S3_REPOSITORY
  bool cli_backend = false;                               // AGENT_KEYSTORE_BACKEND=cli
  std::optional<std::filesystem::path> engine_home;       // AGENT_ENGINE_HOME
  std::optional<std::filesystem::path> engine_java_home;  // AGENT_ENGINE_JAVA_HOME
  bool help = false;
};

using EnvLookup = std::function<std::optional<std::string>(const char* name)>;

// Parses the arguments after "serve". Unknown flags and bad values are named in the error.
Result<Options> ParseServeOptions(const std::vector<std::string>& args, const EnvLookup& env);

// Reads credentials_dir/username and credentials_dir/password into `credentials`, when the
// directory is given (a mounted Secret). The environment and the directory exclude each other.
Status LoadCredentialFiles(Options& options);

// The auth mode the agent serves with: the chosen one, checked against the credentials, or
// static when credentials are configured; otherwise an error saying what to choose.
Result<http::AuthMode> ResolveAuthMode(const Options& options);

// Checks what can be checked before serving, so that a wrong value fails at start, not at
// the first request: a numeric listen address, an existing config directory, a readable
// password file, an engine version whose keystore format is known.
Status ValidateServeOptions(const Options& options);

std::string ServeUsage();

}  // namespace agent::app

#include "app/options.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>

#include "service/keystore_service.h"
#include "storage/keystore_file.h"

namespace agent::app {
namespace {

Error Invalid(const std::string& what) { return MakeError("OPTION_INVALID", what); }

template <typename Int>
Result<Int> ParseInt(const std::string& name, const std::string& text, Int min, Int max) {
  Int v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
    return Invalid(name + " must be a whole number from " + std::to_string(min) + " to " +
                   std::to_string(max) + ", got \"" + text + "\"");
  }
  return v;
}

Result<bool> ParseBool(const std::string& name, const std::string& text) {
  if (text == "true") return true;
  if (text == "false") return false;
  return Invalid(name + " must be true or false, got \"" + text + "\"");
}

// Flags that stand alone ("--allow-without-s3-repository" means =true).
bool IsSwitch(const std::string& name) { return name == "allow-without-s3-repository"; }

// Applies one named setting, from a flag or from its environment variable.
Status Apply(Options& o, const std::string& name, const std::string& value) {
  if (name == "listen-address") {
    o.listen_address = value;
  } else if (name == "port") {
    auto port = ParseInt<uint16_t>("--port", value, 1, 65535);
    if (!port.ok()) return port.error();
    o.port = port.value();
  } else if (name == "config-dir") {
    o.config_dir = value;
  } else if (name == "engine") {
    o.engine = keystore::ParseProduct(value);
    if (!o.engine)
      return Invalid("--engine must be elasticsearch or opensearch, got \"" + value + "\"");
  } else if (name == "engine-version") {
    o.engine_version = value;
  } else if (name == "node-address") {
    o.node_address = value;
  } else if (name == "keystore-password-file") {
    o.keystore_password_file = value;
  } else if (name == "threads") {
    auto threads = ParseInt<int>("--threads", value, 1, 64);
    if (!threads.ok()) return threads.error();
    o.threads = threads.value();
  } else if (name == "log-level") {
    auto level = ParseLogLevel(value);
    if (!level)
      return Invalid("--log-level must be debug, info, warn or error, got \"" + value + "\"");
    o.log_level = *level;
  } else if (name == "auth-mode") {
    o.auth_mode = http::ParseAuthMode(value);
    if (!o.auth_mode) {
      return Invalid("--auth-mode must be static, passthrough or none, got \"" + value + "\"");
    }
  } else if (name == "credentials-dir") {
    o.credentials_dir = value;
  } else if (name == "tls-cert-file") {
    o.tls_cert_file = value;
  } else if (name == "tls-key-file") {
    o.tls_key_file = value;
  } else if (name == "tls-ca-file") {
    o.tls_ca_file = value;
  } else if (name == "tls-client-auth") {
    if (value != "none" && value != "require") {
      return Invalid("--tls-client-auth must be none or require, got \"" + value + "\"");
    }
    o.tls_require_client_cert = value == "require";
  } else if (name == "node-scheme") {
    if (value != "http" && value != "https") {
      return Invalid("--node-scheme must be http or https, got \"" + value + "\"");
    }
    o.node_https = value == "https";
  } else if (name == "node-ca-file") {
    o.node_ca_file = value;
  } else if (name == "node-server-name") {
    o.node_server_name = value;
  } else if (name == "allow-without-s3-repository") {
    auto flag = ParseBool("--allow-without-s3-repository", value);
    if (!flag.ok()) return flag.error();
    o.allow_without_s3_repository = flag.value();
  } else if (name == "keystore-backend") {
    if (value != "native" && value != "cli") {
      return Invalid("--keystore-backend must be native or cli, got \"" + value + "\"");
    }
    o.cli_backend = value == "cli";
  } else if (name == "engine-home") {
    o.engine_home = value;
  } else if (name == "engine-java-home") {
    o.engine_java_home = value;
  } else if (name == "max-connections") {
    auto max = ParseInt<int>("--max-connections", value, 1, 65536);
    if (!max.ok()) return max.error();
    o.max_connections = max.value();
  } else {
    return Invalid("unknown option --" + name + " (see es-agent serve --help)");
  }
  return Ok{};
}

struct EnvBinding {
  const char* variable;
  const char* option;
};
constexpr EnvBinding kEnvBindings[] = {
    {"AGENT_LISTEN_ADDRESS", "listen-address"},
    {"AGENT_PORT", "port"},
    {"AGENT_CONFIG_DIR", "config-dir"},
    {"AGENT_ENGINE", "engine"},
    {"AGENT_ENGINE_VERSION", "engine-version"},
    {"AGENT_NODE_ADDRESS", "node-address"},
    {"AGENT_KEYSTORE_PASSWORD_FILE", "keystore-password-file"},
    {"AGENT_THREADS", "threads"},
    {"AGENT_MAX_CONNECTIONS", "max-connections"},
    {"AGENT_LOG_LEVEL", "log-level"},
    {"AGENT_AUTH_MODE", "auth-mode"},
    {"AGENT_CREDENTIALS_DIR", "credentials-dir"},
    {"AGENT_TLS_CERT_FILE", "tls-cert-file"},
    {"AGENT_TLS_KEY_FILE", "tls-key-file"},
    {"AGENT_TLS_CA_FILE", "tls-ca-file"},
    {"AGENT_TLS_CLIENT_AUTH", "tls-client-auth"},
    {"AGENT_NODE_SCHEME", "node-scheme"},
    {"AGENT_NODE_CA_FILE", "node-ca-file"},
    {"AGENT_NODE_SERVER_NAME", "node-server-name"},
    {"AGENT_ALLOW_WITHOUT_S3_REPOSITORY", "allow-without-s3-repository"},
    {"AGENT_KEYSTORE_BACKEND", "keystore-backend"},
    {"AGENT_ENGINE_HOME", "engine-home"},
    {"AGENT_ENGINE_JAVA_HOME", "engine-java-home"},
};

}  // namespace

Result<Options> ParseServeOptions(const std::vector<std::string>& args, const EnvLookup& env) {
  Options o;
  for (const EnvBinding& b : kEnvBindings) {
    auto value = env(b.variable);
    if (!value || value->empty()) continue;
    if (Status s = Apply(o, b.option, *value); !s.ok()) {
      return Invalid(std::string(b.variable) + ": " + s.error().message);
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      o.help = true;
      return o;
    }
    if (arg.rfind("--", 0) != 0) return Invalid("unexpected argument \"" + arg + "\"");
    std::string name = arg.substr(2);
    std::string value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (IsSwitch(name)) {
      value = "true";
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return Invalid("option --" + name + " needs a value");
    }
    if (Status s = Apply(o, name, value); !s.ok()) return s.error();
  }

  auto user = env("ELASTIC_USERNAME");
  auto password = env("ELASTIC_PASSWORD");
  const bool has_user = user && !user->empty();
  const bool has_password = password && !password->empty();
  if (has_user != has_password) {
    const char* empty = has_user ? "ELASTIC_PASSWORD" : "ELASTIC_USERNAME";
    return Invalid(std::string(empty) + " is " +
                   ((has_user ? password : user) ? "empty" : "unset") +
                   ": set both ELASTIC_USERNAME and ELASTIC_PASSWORD, or neither");
  }
  if (has_user) o.credentials = http::BasicCredentials{*user, *password};
  return o;
}

namespace {

// A Secret's file: its content, without the one newline an editor adds.
Result<std::string> ReadCredentialFile(const std::filesystem::path& path) {
  auto bytes = storage::ReadFileIfExists(path, storage::Links::kFollow);
  if (!bytes.ok()) return Invalid("--credentials-dir: " + bytes.error().message);
  if (!bytes.value()) return Invalid("--credentials-dir: " + path.string() + " does not exist");
  std::string text = std::move(*bytes.value());
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) return Invalid("--credentials-dir: " + path.string() + " is empty");
  return text;
}

Status CheckReadable(const char* flag, const std::optional<std::filesystem::path>& file) {
  if (file && ::access(file->c_str(), R_OK) != 0) {
    return Invalid(std::string(flag) + " " + file->string() + " cannot be read");
  }
  return Ok{};
}

}  // namespace

Status LoadCredentialFiles(Options& o) {
  if (!o.credentials_dir) return Ok{};
  if (o.credentials) {
    return Invalid("set ELASTIC_USERNAME/ELASTIC_PASSWORD or --credentials-dir, not both");
  }
  auto user = ReadCredentialFile(*o.credentials_dir / "username");
  if (!user.ok()) return user.error();
  auto password = ReadCredentialFile(*o.credentials_dir / "password");
  if (!password.ok()) return password.error();
  o.credentials = http::BasicCredentials{std::move(user.value()), std::move(password.value())};
  return Ok{};
}

Result<http::AuthMode> ResolveAuthMode(const Options& o) {
  if (!o.auth_mode) {
    if (o.credentials) return http::AuthMode::kStatic;
    return Invalid(
        "no credentials for callers: set ELASTIC_USERNAME and ELASTIC_PASSWORD or "
        "--credentials-dir, or choose --auth-mode passthrough (the node checks each caller) or "
        "--auth-mode none (anyone who reaches the port may write)");
  }
  if (*o.auth_mode == http::AuthMode::kStatic && !o.credentials) {
    return Invalid(
        "--auth-mode static needs credentials: ELASTIC_USERNAME and ELASTIC_PASSWORD, or "
        "--credentials-dir");
  }
  return *o.auth_mode;
}

Status ValidateServeOptions(const Options& o) {
  unsigned char buf[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, o.listen_address.c_str(), buf) != 1 &&
      inet_pton(AF_INET6, o.listen_address.c_str(), buf) != 1) {
    return Invalid("--listen-address must be a numeric IPv4 or IPv6 address, got \"" +
                   o.listen_address + "\"");
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(o.config_dir, ec)) {
    return Invalid("--config-dir " + o.config_dir.string() + " is not a directory");
  }
  if (o.keystore_password_file && ::access(o.keystore_password_file->c_str(), R_OK) != 0) {
    return Invalid("--keystore-password-file " + o.keystore_password_file->string() +
                   " cannot be read");
  }
  // HTTP Basic sends "user:password": a user name holding ':' could never match.
  if (o.credentials && o.credentials->user.find(':') != std::string::npos) {
    return Invalid(
        "the agent's user name (ELASTIC_USERNAME or --credentials-dir/username) "
        "cannot contain ':' (HTTP Basic separates user and password with it)");
  }
  if (o.tls_cert_file.has_value() != o.tls_key_file.has_value()) {
    return Invalid("--tls-cert-file and --tls-key-file go together");
  }
  if (o.tls_ca_file && !o.tls_cert_file) {
    return Invalid("--tls-ca-file is for HTTPS: give --tls-cert-file and --tls-key-file too");
  }
  if (o.tls_require_client_cert && !o.tls_ca_file) {
    return Invalid("--tls-client-auth require needs --tls-ca-file (the CA of the clients)");
  }
  for (auto [flag, file] :
       {std::pair{"--tls-cert-file", &o.tls_cert_file},
        std::pair{"--tls-key-file", &o.tls_key_file}, std::pair{"--tls-ca-file", &o.tls_ca_file},
        std::pair{"--node-ca-file", &o.node_ca_file}}) {
    if (Status s = CheckReadable(flag, *file); !s.ok()) return s;
  }
  if (o.node_https) {
    if (o.node_server_name.empty()) {
      return Invalid(
          "--node-scheme https needs --node-server-name (the name in the node's certificate, "
          "e.g. the pod's DNS name)");
    }
    if (!o.node_ca_file && !o.tls_ca_file) {
      return Invalid("--node-scheme https needs --node-ca-file or --tls-ca-file");
    }
  }
  if (o.cli_backend) {
    if (!o.engine_home || !std::filesystem::is_directory(*o.engine_home, ec)) {
      return Invalid("--keystore-backend cli needs --engine-home, the engine's home directory");
    }
  }
  if (o.engine_version) {
    // Without --engine, the engine the service will detect from the config directory.
    auto product =
        o.engine
            ? *o.engine
            : service::DetectProductIn(o.config_dir).value_or(keystore::Product::kElasticsearch);
    if (!keystore::FormatWrittenBy(product, *o.engine_version)) {
      return Invalid("--engine-version \"" + *o.engine_version + "\" is not a release whose " +
                     std::string(keystore::ProductName(product)) +
                     " keystore format the agent knows (6.3 or newer; X.Y.Z)");
    }
  }
  return Ok{};
}

std::string ServeUsage() {
  return R"(usage: es-agent serve [options]

Serves the keystore API of the node whose config directory it is given: GET /health,
GET /ready, GET /metrics, and GET, POST and DELETE /keystore.
Every option can also be set by the environment variable in brackets; a flag wins.

  --listen-address ADDR        numeric address to listen on [AGENT_LISTEN_ADDRESS] (0.0.0.0)
  --port PORT                  port to listen on [AGENT_PORT] (8080)
  --config-dir DIR             the node's config directory [AGENT_CONFIG_DIR]
                               (/usr/share/elasticsearch/config)
  --engine NAME                elasticsearch or opensearch [AGENT_ENGINE]
                               (default: from the keystore or config file found in DIR,
                               else from the node's GET /)
  --engine-version X.Y.Z       the engine's version, which decides a new keystore's format
                               [AGENT_ENGINE_VERSION] (default: from the node's GET /)
  --node-address IP:PORT       the local node's HTTP address, numeric [AGENT_NODE_ADDRESS]
                               (127.0.0.1:9200)
  --keystore-password-file F   file holding the keystore password (it must exist; an empty
                               file means none) [AGENT_KEYSTORE_PASSWORD_FILE]
  --threads N                  worker threads for the handlers [AGENT_THREADS] (2)
  --max-connections N          connections served at once; more get 503
                               [AGENT_MAX_CONNECTIONS] (128)
  --log-level LEVEL            debug, info, warn or error [AGENT_LOG_LEVEL] (info); one
                               JSON object per line on standard output

  --auth-mode MODE             static, passthrough or none [AGENT_AUTH_MODE] (static when
                               credentials are set; without them the agent refuses to start)
  --credentials-dir DIR        files DIR/username and DIR/password (a mounted Secret), instead
                               of ELASTIC_USERNAME / ELASTIC_PASSWORD [AGENT_CREDENTIALS_DIR]
  --tls-cert-file F            serve HTTPS with this certificate (PEM) [AGENT_TLS_CERT_FILE]
  --tls-key-file F             ... and this private key (PEM) [AGENT_TLS_KEY_FILE]
  --tls-ca-file F              the CA (PEM) of client certificates and, by default, of the
                               node [AGENT_TLS_CA_FILE]; renewed files are picked up
  --tls-client-auth MODE       none or require: require a client certificate signed by the
                               CA [AGENT_TLS_CLIENT_AUTH] (none)
  --node-scheme SCHEME         http or https, how to reach the node [AGENT_NODE_SCHEME] (http)
  --node-ca-file F             the CA of the node's certificate [AGENT_NODE_CA_FILE]
                               (default: --tls-ca-file)
  --node-server-name NAME      the name the node's certificate must carry (the pod's DNS
                               name; the node is reached by number) [AGENT_NODE_SERVER_NAME]
  --allow-without-s3-repository
                               write S3 settings even when the node has no repository-s3
                               [AGENT_ALLOW_WITHOUT_S3_REPOSITORY=true]
  --keystore-backend NAME      native, or cli: run the engine's own keystore tool
                               [AGENT_KEYSTORE_BACKEND] (native)
  --engine-home DIR            the engine's home (bin, lib, jdk), for the cli backend
                               [AGENT_ENGINE_HOME]
  --engine-java-home DIR       the Java the engine's tool runs on, when the home has no
                               bundled jdk [AGENT_ENGINE_JAVA_HOME]

Auth modes. static: callers send HTTP Basic with the configured credentials (ELASTIC_USERNAME
and ELASTIC_PASSWORD from the environment, or --credentials-dir); the agent also uses them on
its node. passthrough: the caller's Authorization header (Basic, ApiKey or Bearer) is checked
by the node (the user needs the cluster privilege manage on Elasticsearch, the reload
permission on OpenSearch); the node's security must be on. none: anyone who reaches the port
may write; the agent warns at start.
)";
}

}  // namespace agent::app

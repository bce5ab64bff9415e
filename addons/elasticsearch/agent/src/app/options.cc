#include "app/options.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>

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
    return Invalid("set both ELASTIC_USERNAME and ELASTIC_PASSWORD, or neither");
  }
  if (has_user) o.credentials = http::BasicCredentials{*user, *password};
  return o;
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
  if (o.engine_version) {
    auto product = o.engine.value_or(keystore::Product::kElasticsearch);
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
GET /ready, and GET, POST and DELETE /keystore.
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

Credentials, from the environment only: ELASTIC_USERNAME and ELASTIC_PASSWORD. Callers of
/keystore must present them (HTTP Basic); the agent uses them on its node. With neither set,
/keystore accepts any caller and the agent warns at start.
)";
}

}  // namespace agent::app

// es-agent: a sidecar that writes S3 client credentials into its node's secure settings
// keystore. main reads like a table of contents: parse options, build the parts, serve.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "app/health_probe.h"
#include "app/keystore_cli.h"
#include "app/options.h"
#include "app/self_install.h"
#include "common/log.h"
#include "http/auth.h"
#include "http/metrics.h"
#include "http/routes.h"
#include "http/server.h"
#include "node/node_api.h"
#include "node/node_client.h"
#include "service/keystore_service.h"

namespace {

constexpr auto kNodeTimeout = std::chrono::seconds(5);
// How long passthrough waits at start for its node to answer (the node starts beside it).
constexpr auto kPassthroughNodeWait = std::chrono::milliseconds(120'000);

std::optional<std::string> GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::optional<std::string>(v) : std::nullopt;
}

int Fail(int exit_code, const std::string& message) {
  std::fprintf(stderr, "es-agent: error: %s\n", message.c_str());
  return exit_code;
}

// A start-up error with its code first, as docs/security.md lists them: "CODE: message".
int Fail(int exit_code, const agent::Error& error, const std::string& context = "") {
  return Fail(exit_code, error.code + ": " + context + error.message);
}

agent::node::NodeEndpoint NodeEndpointFrom(const agent::app::Options& o,
                                           agent::node::NodeAddress address) {
  agent::node::NodeEndpoint e;
  e.address = std::move(address);
  e.https = o.node_https;
  e.server_name = o.node_server_name;
  if (o.node_https) e.ca_file = o.node_ca_file ? *o.node_ca_file : *o.tls_ca_file;
  e.timeout = kNodeTimeout;
  return e;
}

// Runs passthrough's check beside the server: on success it opens the gate; on failure it
// keeps the reason and stops the server, whose Run then returns.
class SecurityCheck {
 public:
  SecurityCheck(const agent::node::NodeApi& api, agent::Logger& log,
                agent::http::SecurityCheckGate& gate)
      : api_(api), log_(log), gate_(gate) {}
  ~SecurityCheck() {
    stopping_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  void Start(agent::http::Server& server) {
    thread_ = std::thread([this, &server] {
      // Passthrough is only as good as the node's own checks: wait for the node (it starts
      // beside the agent) and refuse to serve when it lets anyone in.
      agent::Status secure = api_.WaitForSecurityOn(
          kPassthroughNodeWait, std::chrono::seconds(2), stopping_, [this](const agent::Error& e) {
            log_.Info("passthrough: waiting for the node to check callers", {{"error", e.message}});
          });
      if (stopping_.load()) return;
      if (secure.ok()) {
        gate_.Pass();
        log_.Info("passthrough: the node checks its callers; serving /keystore");
        return;
      }
      failure_ = secure.error();
      failed_.store(true);
      server.Stop();
    });
  }
  // After the server stopped: the reason the check failed, if it did.
  std::optional<agent::Error> Failure() {
    stopping_.store(true);
    if (thread_.joinable()) thread_.join();
    return failed_.load() ? std::optional<agent::Error>(failure_) : std::nullopt;
  }

 private:
  const agent::node::NodeApi& api_;
  agent::Logger& log_;
  agent::http::SecurityCheckGate& gate_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> failed_{false};
  agent::Error failure_;  // written before failed_ is set
  std::thread thread_;
};

int Serve(const std::vector<std::string>& args) {
  auto parsed = agent::app::ParseServeOptions(args, GetEnv);
  if (!parsed.ok()) return Fail(2, parsed.error());
  agent::app::Options& options = parsed.value();
  agent::Logger log(options.log_level);
  if (options.help) {
    std::fputs(agent::app::ServeUsage().c_str(), stdout);
    return 0;
  }
  if (auto loaded = agent::app::LoadCredentialFiles(options); !loaded.ok()) {
    return Fail(2, loaded.error());
  }
  if (auto valid = agent::app::ValidateServeOptions(options); !valid.ok()) {
    return Fail(2, valid.error());
  }
  auto mode = agent::app::ResolveAuthMode(options);
  if (!mode.ok()) return Fail(2, mode.error());
  auto node_address = agent::node::ParseNodeAddress(options.node_address);
  if (!node_address.ok()) return Fail(2, node_address.error());

  const bool own_credentials = options.credentials.has_value();
  agent::node::NodeClient node(
      NodeEndpointFrom(options, node_address.value()),
      own_credentials ? agent::http::BasicAuthorization(*options.credentials) : "");
  agent::node::NodeApi node_api(node);
  agent::service::ServiceOptions service_options;
  service_options.config_dir = options.config_dir;
  service_options.product = options.engine;
  service_options.engine_version = options.engine_version;
  service_options.password_file = options.keystore_password_file;
  service_options.fetch_engine_info = [&node_api] { return node_api.FetchEngineInfo(); };
  // Without credentials of its own, an answer (even a 401) is all the agent can ask for; in
  // passthrough, that the node still checks callers (it may have restarted with security off).
  const bool passthrough = mode.value() == agent::http::AuthMode::kPassthrough;
  service_options.check_node = [&node_api, own_credentials, passthrough] {
    if (passthrough && !own_credentials) return node_api.CheckSecurityOn();
    return node_api.CheckAnswers(/*need_ok=*/own_credentials);
  };
  if (options.cli_backend) {
    agent::cli_backend::CliKeystoreOptions cli;
    cli.engine_home = *options.engine_home;
    cli.java_home = options.engine_java_home;
    cli.config_dir = options.config_dir;
    if (options.engine) cli.product = *options.engine;
    // At start, so that a missing tool or Java is found now, not at the first backup.
    if (auto usable = agent::cli_backend::CheckCliBackend(cli); !usable.ok()) {
      return Fail(2, usable.error(), "--keystore-backend cli: ");
    }
    service_options.cli = cli;
  }
  agent::service::KeystoreService keystore(service_options);
  if (auto stale = keystore.RemoveStaleTemporaries(); !stale.ok()) {
    log.Warn("cannot clean up stale temporary keystore files",
             {{"code", stale.error().code}, {"error", stale.error().message}});
  } else if (stale.value() > 0) {
    log.Info("removed temporary keystore files left by an interrupted write",
             {{"count", stale.value()}});
  }

  std::optional<agent::http::Authenticator> auth;
  agent::http::SecurityCheckGate gate;  // passthrough only
  agent::http::NodeHooks hooks;
  switch (mode.value()) {
    case agent::http::AuthMode::kStatic:
      auth = agent::http::Authenticator::Static(*options.credentials);
      break;
    case agent::http::AuthMode::kNone:
      auth = agent::http::Authenticator::None();
      log.Warn("--auth-mode none: any caller that reaches the port may write the keystore");
      break;
    case agent::http::AuthMode::kPassthrough: {
      auto product = keystore.KnownProduct();
      if (!product) {
        return Fail(2,
                    "OPTION_INVALID: "
                    "--auth-mode passthrough needs to know the engine: give --engine, or a "
                    "config directory holding its keystore or config file");
      }
      auth = agent::http::Authenticator::Passthrough(
          [&node_api, &gate,
           p = *product](const std::string& header) -> agent::Result<std::string> {
            if (agent::Status open = gate.Check(); !open.ok()) return open.error();
            return node_api.AuthorizeCaller(p, header);
          });
      hooks.ready = [&gate] { return gate.Check(); };
      break;
    }
  }

  // A yes is kept: a module or plugin cannot go away without the node restarting, and a
  // node restarted without it fails at its own start, whatever the agent does.
  std::atomic<bool> has_s3{false};  // lives as long as the server, which runs in this frame
  if (!options.allow_without_s3_repository) {
    hooks.has_s3_repository = [&node_api, &has_s3](const std::string& authorization) {
      if (has_s3.load()) return agent::Result<bool>(true);
      auto has = node_api.HasS3Repository(authorization);
      if (has.ok() && has.value()) has_s3.store(true);
      return has;
    };
  }
  hooks.reload = [&node_api](const std::string& authorization, const std::string& password) {
    return node_api.ReloadSecureSettings(authorization, password);
  };
  agent::http::Metrics metrics;
  agent::http::Router router(keystore, *auth, std::move(hooks), metrics);
  agent::http::ServerOptions server_options;
  server_options.address = options.listen_address;
  server_options.port = options.port;
  server_options.threads = options.threads;
  server_options.max_connections = options.max_connections;
  if (options.tls_cert_file) {
    agent::http::TlsOptions tls;
    tls.cert_file = options.tls_cert_file->string();
    tls.key_file = options.tls_key_file->string();
    if (options.tls_ca_file) tls.ca_file = options.tls_ca_file->string();
    tls.require_client_cert = options.tls_require_client_cert;
    server_options.tls = tls;
  }
  auto server = agent::http::Server::Listen(server_options, router, log);
  if (!server.ok()) {
    // Bad TLS files are a configuration error (2), like a bad flag; a busy port is not (1).
    const bool config = server.error().code == agent::http::kTlsConfigInvalid;
    return Fail(config ? 2 : 1, server.error());
  }

  log.Info("listening", {{"version", AGENT_VERSION},
                         {"address", options.listen_address},
                         {"port", server.value()->port()},
                         {"auth_mode", agent::http::AuthModeName(mode.value())},
                         {"tls", options.tls_cert_file.has_value()},
                         {"config_dir", options.config_dir.string()},
                         {"node", node.Describe()},
                         {"uid", ::geteuid()}});
  SecurityCheck security_check(node_api, log, gate);
  if (mode.value() == agent::http::AuthMode::kPassthrough) security_check.Start(*server.value());
  const int still_running = server.value()->Run(/*handle_signals=*/true);
  if (auto failure = security_check.Failure()) {
    return Fail(2, *failure, "--auth-mode passthrough: ");
  }
  if (still_running > 0) {
    // The grace period is over: exit now rather than wait for the handlers. A write cut here
    // leaves the old keystore (the new one only ever replaces it by rename) and a temporary
    // file that the next start removes.
    log.Warn("exiting with requests still running", {{"requests", still_running}});
    std::fflush(stdout);
    std::_Exit(0);
  }
  return 0;
}

void PrintUsage(FILE* out) {
  std::fputs(
      "usage: es-agent serve [options]   serve the keystore API (es-agent serve --help)\n"
      "       es-agent health [options]   exit 0 when the agent these serve options describe is "
      "alive\n"
      "       es-agent keystore COMMAND   list|add|remove|create|passwd (es-agent keystore "
      "--help)\n"
      "       es-agent install PATH       copy this executable to PATH, atomically (for an "
      "image without cp)\n"
      "       es-agent --version\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    PrintUsage(stderr);
    return 2;
  }
  if (args[0] == "serve") return Serve({args.begin() + 1, args.end()});
  if (args[0] == "health") {
    return agent::app::RunHealthProbe({args.begin() + 1, args.end()}, GetEnv, std::cout, std::cerr);
  }
  if (args[0] == "keystore") {
    return agent::app::RunKeystoreCommand({args.begin() + 1, args.end()}, GetEnv, std::cin,
                                          std::cout, std::cerr);
  }
  if (args[0] == "install") {
    return agent::app::RunInstallCommand({args.begin() + 1, args.end()}, std::cout, std::cerr);
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::puts("es-agent " AGENT_VERSION);
    return 0;
  }
  if (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    PrintUsage(stdout);
    return 0;
  }
  std::fprintf(stderr, "es-agent: error: unknown command \"%s\"\n", args[0].c_str());
  PrintUsage(stderr);
  return 2;
}

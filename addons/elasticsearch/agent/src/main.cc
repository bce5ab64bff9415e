// es-agent: a sidecar that writes S3 client credentials into its node's secure settings
// keystore. main reads like a table of contents: parse options, build the parts, serve.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "app/keystore_cli.h"
#include "app/options.h"
#include "common/log.h"
#include "http/auth.h"
#include "http/routes.h"
#include "http/server.h"
#include "node/node_client.h"
#include "service/keystore_service.h"

namespace {

constexpr auto kNodeTimeout = std::chrono::seconds(5);

std::optional<std::string> GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::optional<std::string>(v) : std::nullopt;
}

int Serve(const std::vector<std::string>& args) {
  auto parsed = agent::app::ParseServeOptions(args, GetEnv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "es-agent: error: %s\n", parsed.error().message.c_str());
    return 2;
  }
  const agent::app::Options& options = parsed.value();
  agent::Logger log(options.log_level);
  if (options.help) {
    std::fputs(agent::app::ServeUsage().c_str(), stdout);
    return 0;
  }
  if (auto valid = agent::app::ValidateServeOptions(options); !valid.ok()) {
    std::fprintf(stderr, "es-agent: error: %s\n", valid.error().message.c_str());
    return 2;
  }
  auto node_address = agent::node::ParseNodeAddress(options.node_address);
  if (!node_address.ok()) {
    std::fprintf(stderr, "es-agent: error: %s\n", node_address.error().message.c_str());
    return 2;
  }

  agent::node::NodeClient node(node_address.value(), options.credentials, kNodeTimeout);
  agent::service::ServiceOptions service_options;
  service_options.config_dir = options.config_dir;
  service_options.product = options.engine;
  service_options.engine_version = options.engine_version;
  service_options.password_file = options.keystore_password_file;
  service_options.fetch_engine_info = [&node] { return node.FetchEngineInfo(); };
  agent::service::KeystoreService keystore(service_options);
  if (auto stale = keystore.RemoveStaleTemporaries(); !stale.ok()) {
    log.Warn("cannot clean up stale temporary keystore files",
             {{"code", stale.error().code}, {"error", stale.error().message}});
  } else if (stale.value() > 0) {
    log.Info("removed temporary keystore files left by an interrupted write",
             {{"count", stale.value()}});
  }

  agent::http::Authenticator auth(options.credentials);
  agent::http::Router router(keystore, auth);
  agent::http::ServerOptions server_options;
  server_options.address = options.listen_address;
  server_options.port = options.port;
  server_options.threads = options.threads;
  server_options.max_connections = options.max_connections;
  auto server = agent::http::Server::Listen(server_options, router, log);
  if (!server.ok()) {
    std::fprintf(stderr, "es-agent: error: %s\n", server.error().message.c_str());
    return 1;
  }

  if (!auth.required()) {
    log.Warn("ELASTIC_USERNAME/ELASTIC_PASSWORD are not set: POST /keystore accepts any caller");
  }
  log.Info("listening", {{"version", AGENT_VERSION},
                         {"address", options.listen_address},
                         {"port", server.value()->port()},
                         {"config_dir", options.config_dir.string()},
                         {"node", node_address.value().ToString()},
                         {"uid", ::geteuid()}});
  server.value()->Run(/*handle_signals=*/true);
  return 0;
}

void PrintUsage(FILE* out) {
  std::fputs(
      "usage: es-agent serve [options]   serve the keystore API (es-agent serve --help)\n"
      "       es-agent keystore COMMAND   list|add|remove|create|passwd (es-agent keystore "
      "--help)\n"
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
  if (args[0] == "keystore") {
    return agent::app::RunKeystoreCommand({args.begin() + 1, args.end()}, GetEnv, std::cin,
                                          std::cout, std::cerr);
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

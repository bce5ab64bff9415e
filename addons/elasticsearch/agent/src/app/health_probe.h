// `es-agent health`: the agent's liveness probe, for an exec probe in its container. It reads
// the options `serve` reads, asks the running agent's GET /health as it serves, and says so.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "app/options.h"
#include "common/result.h"
#include "node/node_client.h"

namespace agent::app {

// Where and how the serving agent answers: its port on the loopback address for a wildcard
// listen address; over HTTPS verified against its CA and its own certificate's first DNS
// name, presenting that certificate as the client's when it requires client certificates.
Result<node::NodeEndpoint> HealthProbeEndpoint(const Options& options);

// Exit code: 0 when the agent answers GET /health with 200 {"status": "ok"}, 1 when not (the
// reason on `err`), 2 for bad options.
int RunHealthProbe(const std::vector<std::string>& args, const EnvLookup& env, std::ostream& out,
                   std::ostream& err);

}  // namespace agent::app

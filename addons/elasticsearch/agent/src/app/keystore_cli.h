// `es-agent keystore list|add|remove|create|passwd`: the operator's commands on a config
// directory, inside the pod, through the same locked, atomic writes as the API. Values and
// passwords are read from standard input, never from the command line.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "app/options.h"

namespace agent::app {

// Runs one command; returns the exit code (0 ok, 1 the command failed, 2 bad usage).
int RunKeystoreCommand(const std::vector<std::string>& args, const EnvLookup& env, std::istream& in,
                       std::ostream& out, std::ostream& err);

std::string KeystoreUsage();

}  // namespace agent::app

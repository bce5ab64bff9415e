// The fallback keystore backend (--keystore-backend=cli): changes the keystore by running the
// engine's own tool (bin/elasticsearch-keystore, bin/opensearch-keystore) from its home.
//
// For a keystore format the native codec does not know yet. It needs the engine's home (bin,
// lib and its bundled JDK, or a Java home) mounted read-only in the agent's container. All
// settings of a write go to the tool in one `add --force NAME...` run, so the tool saves the
// keystore once. What the tools do (Elasticsearch 8.19 and OpenSearch 3.6, tried here):
//  - stdin carries the keystore password first, only when the keystore has one, then one
//    value per line in the order of the names; a missing keystore is created by
//    `add --force` without a password, so a protected one is made by `create -p` first;
//  - `--stdin` is not used: OpenSearch's tool (like Elasticsearch 7's) then reads the values
//    through a second buffered reader, which finds nothing after the password line that the
//    first one read, and it stores empty values and exits 0. Without it, the password and the
//    values come through the same reader (Elasticsearch 8's `--stdin` does no more than that);
//  - the tools echo some of what they read (an unexpected "y/N" answer) into their output, so
//    every secret is scrubbed from what an error message quotes;
//  - input is decoded in the JVM's default charset (ASCII on JDK 17 without a UTF-8 locale):
//    only printable ASCII passes through unchanged everywhere, so nothing else is accepted.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "keystore/format.h"

namespace agent::cli_backend {

inline constexpr char kCliMissing[] = "KEYSTORE_CLI_MISSING";  // no tool, lib or Java
inline constexpr char kCliFailed[] = "KEYSTORE_CLI_FAILED";    // the tool said no
inline constexpr char kCliTimeout[] = "KEYSTORE_CLI_TIMEOUT";  // the tool was killed
inline constexpr char kCliValueUnsupported[] = "KEYSTORE_CLI_VALUE_UNSUPPORTED";
inline constexpr char kCliNameInvalid[] = "KEYSTORE_CLI_NAME_INVALID";

struct CliKeystoreOptions {
  std::filesystem::path engine_home;  // holds bin/, lib/ and, unless java_home is set, jdk/
  keystore::Product product = keystore::Product::kElasticsearch;
  std::filesystem::path config_dir;          // where the keystore lives (ES_PATH_CONF)
  std::chrono::milliseconds timeout{60000};  // for each run of the tool
  // ES_JAVA_HOME / OPENSEARCH_JAVA_HOME for the tool; without it, the engine's bundled JDK.
  std::optional<std::filesystem::path> java_home;
};

// name, value
using CliSetting = std::pair<std::string, std::string>;

// bin/elasticsearch-keystore or bin/opensearch-keystore under the engine's home.
std::filesystem::path CliToolPath(const CliKeystoreOptions& options);

// For start-up: the tool, the engine's lib directory and a Java exist (KEYSTORE_CLI_MISSING,
// naming the path), and the tool runs (`--help`) with them (KEYSTORE_CLI_FAILED with its
// message, e.g. a Java that is too old). Starts the tool once, so it takes about a second.
Status CheckCliBackend(const CliKeystoreOptions& options);

// Sets every setting in one run of `add --force`, creating the keystore when there is
// none (protected by `keystore_password` when that is not empty). An empty password means the
// keystore has none. Names must match [A-Za-z0-9_.-]+; values and the password must be
// printable ASCII (KEYSTORE_CLI_VALUE_UNSUPPORTED, before anything runs). A keystore without
// a password stays without one, as with the native backend.
Status CliAddSettings(const CliKeystoreOptions& options, const std::vector<CliSetting>& settings,
                      const std::string& keystore_password);

// Removes the settings in one run of `remove`. Every name must be in the keystore: the tool
// refuses otherwise and removes none (KEYSTORE_CLI_FAILED). No keystore: nothing to do.
Status CliRemoveSettings(const CliKeystoreOptions& options, const std::vector<std::string>& names,
                         const std::string& keystore_password);

// The setting names (`list`), as the tool prints them (sorted); none when there is no keystore.
Result<std::vector<std::string>> CliListSettings(const CliKeystoreOptions& options,
                                                 const std::string& keystore_password);

}  // namespace agent::cli_backend

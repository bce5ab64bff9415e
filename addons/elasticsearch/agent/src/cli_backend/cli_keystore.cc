#include "cli_backend/cli_keystore.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string_view>

#include "cli_backend/subprocess.h"
#include "crypto/crypto.h"
#include "keystore/bytes.h"
#include "keystore/codec.h"
#include "storage/keystore_file.h"

namespace agent::cli_backend {
namespace {

namespace fs = std::filesystem;
using keystore::Product;

// Fixed, not inherited: the tools' scripts need only the basic utilities (dirname, uname).
constexpr char kToolSearchPath[] =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr char kRedacted[] = "[redacted]";
constexpr size_t kQuotedOutput = 600;    // bytes of the tool's output that an error quotes
constexpr int kExitWithoutPassword = 1;  // has-passwd: no password (or no file)

enum class KeystoreState { kMissing, kWithoutPassword, kWithPassword };

// Holds stdin for the tool (the password, the values) and wipes it on every path. Its size
// is reserved up front, so that growing it leaves no copies behind.
struct SecretInput {
  explicit SecretInput(size_t size) { bytes.reserve(size); }
  ~SecretInput() { crypto::Cleanse(bytes); }
  SecretInput(const SecretInput&) = delete;
  SecretInput& operator=(const SecretInput&) = delete;
  void AddLine(std::string_view line) {
    bytes.append(line);
    bytes.push_back('\n');
  }
  std::string bytes;
};

std::string ToolName(Product product) {
  return std::string(keystore::ProductName(product)) + "-keystore";
}

// "NAME=" of the environment variables that the tools' scripts read.
const char* JavaHomeAssignment(Product product) {
  return product == Product::kElasticsearch ? "ES_JAVA_HOME=" : "OPENSEARCH_JAVA_HOME=";
}

const char* ConfigDirAssignment(Product product) {
  return product == Product::kElasticsearch ? "ES_PATH_CONF=" : "OPENSEARCH_PATH_CONF=";
}

// The Java the tool's script will pick: the given home, else the bundled one (OpenSearch's
// script prefers a bundled jre/ over jdk/).
fs::path JavaPath(const CliKeystoreOptions& options) {
  if (options.java_home) return *options.java_home / "bin" / "java";
  std::error_code ec;
  if (options.product == Product::kOpenSearch &&
      fs::is_directory(options.engine_home / "jre", ec)) {
    return options.engine_home / "jre" / "bin" / "java";
  }
  return options.engine_home / "jdk" / "bin" / "java";
}

bool IsExecutableFile(const fs::path& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

Status CheckInstalled(const CliKeystoreOptions& options) {
  const fs::path tool = CliToolPath(options);
  if (!IsExecutableFile(tool)) {
    return MakeError(kCliMissing, "the engine's keystore tool " + tool.string() +
                                      " is missing or not executable: the cli keystore backend "
                                      "needs the engine's home (bin, lib and its JDK) mounted, "
                                      "read-only is enough");
  }
  std::error_code ec;
  if (!fs::is_directory(options.engine_home / "lib", ec)) {
    return MakeError(kCliMissing, "the engine's lib directory " +
                                      (options.engine_home / "lib").string() +
                                      " is missing: the keystore tool cannot run without it");
  }
  const fs::path java = JavaPath(options);
  if (!IsExecutableFile(java)) {
    return MakeError(kCliMissing,
                     "no executable Java at " + java.string() +
                         (options.java_home ? std::string()
                                            : std::string(" (the engine's bundled JDK; give the "
                                                          "agent a Java home if it has none)")));
  }
  return Ok{};
}

// The tool's whole environment: nothing of the agent's own is inherited.
std::vector<std::string> ToolEnvironment(const CliKeystoreOptions& options) {
  std::vector<std::string> env{kToolSearchPath};
  if (options.java_home) {
    env.push_back(JavaHomeAssignment(options.product) + options.java_home->string());
  }
  std::error_code ec;
  fs::path config_dir = fs::absolute(options.config_dir, ec);
  if (ec) config_dir = options.config_dir;
  env.push_back(ConfigDirAssignment(options.product) + config_dir.string());
  return env;
}

// Printable ASCII: what survives a text line read in any JVM default charset.
bool IsLineSafe(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

Status CheckName(const std::string& name) {
  if (keystore::IsValidSettingName(name)) return Ok{};
  return MakeError(kCliNameInvalid, "setting name [" + name + "] does not match [A-Za-z0-9_.-]+");
}

Status CheckPassword(const std::string& password) {
  if (IsLineSafe(password)) return Ok{};
  return MakeError(kCliValueUnsupported,
                   "the keystore password has a line break, a control character or a non-ASCII "
                   "byte: the engine's keystore tool reads it as one text line, so the cli "
                   "keystore backend takes printable ASCII only");
}

Status CheckSetting(const CliSetting& setting) {
  if (auto s = CheckName(setting.first); !s.ok()) return s;
  if (IsLineSafe(setting.second)) return Ok{};
  return MakeError(kCliValueUnsupported,
                   "the value of " + setting.first +
                       " has a line break, a control character or a non-ASCII byte: the "
                       "engine's keystore tool reads one value per text line, so the cli "
                       "keystore backend takes printable ASCII only");
}

// Replaces every occurrence of every secret, the longest first (one secret may hold another).
void Scrub(std::string& text, std::vector<std::string_view> secrets) {
  std::sort(secrets.begin(), secrets.end(),
            [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
  for (std::string_view secret : secrets) {
    if (secret.empty()) continue;
    for (size_t at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + sizeof kRedacted - 1)) {
      text.replace(at, secret.size(), kRedacted);
    }
  }
}

bool IsNoise(std::string_view line) {
  // The JVM's and the launch scripts' warnings (native access, no-jdk distribution).
  return line.empty() || line.rfind("WARNING:", 0) == 0 || line.rfind("warning:", 0) == 0;
}

// What an error may quote of a stream: secrets replaced, warnings left out, lines joined, the
// last kQuotedOutput bytes. A truncated capture starts mid-line, where a secret may have been
// cut in two: that first line goes before scrubbing. (Values have no line breaks.)
std::string Quotable(const CapturedStream& stream, const std::vector<std::string_view>& secrets) {
  std::string text = stream.bytes;
  if (stream.truncated) {
    size_t nl = text.find('\n');
    text.erase(0, nl == std::string::npos ? text.size() : nl + 1);
  }
  Scrub(text, secrets);
  std::string joined;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (!IsNoise(line)) {
      if (!joined.empty()) joined += " | ";
      joined.append(line);
    }
    start = end + 1;
  }
  if (joined.size() > kQuotedOutput) joined = "..." + joined.substr(joined.size() - kQuotedOutput);
  return joined;
}

// Runs `tool command args...` once with `input` on stdin. A run that ends, whatever its exit
// code, is a value; a run that does not start or is killed at the deadline is an Error.
Result<ProcessOutcome> RunTool(const CliKeystoreOptions& options, const std::string& command,
                               const std::vector<std::string>& args, std::string_view input) {
  if (auto s = CheckInstalled(options); !s.ok()) return s.error();
  ProcessSpec spec;
  spec.argv = {CliToolPath(options).string(), command};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = ToolEnvironment(options);
  spec.stdin_bytes = input;
  spec.timeout = options.timeout;
  auto outcome = RunProcess(spec);
  if (!outcome.ok()) {
    return MakeError(kCliFailed,
                     ToolName(options.product) + " " + command + ": " + outcome.error().message);
  }
  if (outcome.value().timed_out) {
    return MakeError(kCliTimeout, ToolName(options.product) + " " + command +
                                      " did not finish within " +
                                      std::to_string(options.timeout.count()) +
                                      " ms and was killed; the keystore is as the tool left it "
                                      "(it replaces the file in one rename)");
  }
  return outcome;
}

Status ExpectSuccess(const CliKeystoreOptions& options, const std::string& command,
                     const ProcessOutcome& run, const std::vector<std::string_view>& secrets) {
  if (run.exit_code == 0) return Ok{};
  std::string how = run.exit_code >= 0 ? "exit code " + std::to_string(run.exit_code)
                                       : "signal " + std::to_string(run.signal);
  std::string said = Quotable(run.err, secrets);
  if (said.empty()) said = Quotable(run.out, secrets);
  return MakeError(kCliFailed, ToolName(options.product) + " " + command + " failed (" + how + ")" +
                                   (said.empty() ? std::string() : ": " + said));
}

// Whether the keystore exists and has a password: this decides whether the tool reads a
// password line first. Read from the file's header, without a JVM; a header that does not
// parse is left to the tool (`has-passwd`).
Result<KeystoreState> Probe(const CliKeystoreOptions& options) {
  auto file = storage::ReadFileIfExists(options.config_dir / keystore::FileName(options.product));
  if (!file.ok()) return file.error();
  if (!file.value()) return KeystoreState::kMissing;
  if (auto header = keystore::PeekHeader(*file.value(), options.product)) {
    return header->has_password ? KeystoreState::kWithPassword : KeystoreState::kWithoutPassword;
  }
  auto run = RunTool(options, "has-passwd", {}, {});
  if (!run.ok()) return run.error();
  if (run.value().exit_code == 0) return KeystoreState::kWithPassword;
  if (run.value().exit_code == kExitWithoutPassword) return KeystoreState::kWithoutPassword;
  return ExpectSuccess(options, "has-passwd", run.value(), {}).error();
}

// The tool reads a password line only from a protected keystore. An empty password for one
// still goes, as an empty line: the tool then refuses it, instead of taking the first value
// for the password.
void AddPasswordLine(KeystoreState state, const std::string& password, SecretInput& input) {
  if (state == KeystoreState::kWithPassword) input.AddLine(password);
}

// `add --force` would create the keystore without a password; `create -p` asks for the
// password twice (the second time to confirm it).
Status CreateWithPassword(const CliKeystoreOptions& options, const std::string& password) {
  SecretInput input(2 * (password.size() + 1));
  input.AddLine(password);
  input.AddLine(password);
  auto run = RunTool(options, "create", {"-p"}, input.bytes);
  if (!run.ok()) return run.error();
  return ExpectSuccess(options, "create", run.value(), {password});
}

std::vector<std::string> NamesAfterOptions(std::vector<std::string> options,
                                           const std::vector<std::string>& names) {
  options.push_back("--");  // a name can never be taken for an option
  options.insert(options.end(), names.begin(), names.end());
  return options;
}

}  // namespace

fs::path CliToolPath(const CliKeystoreOptions& options) {
  return options.engine_home / "bin" / ToolName(options.product);
}

Status CheckCliBackend(const CliKeystoreOptions& options) {
  auto run = RunTool(options, "--help", {}, {});
  if (!run.ok()) return run.error();
  return ExpectSuccess(options, "--help", run.value(), {});
}

Status CliAddSettings(const CliKeystoreOptions& options, const std::vector<CliSetting>& settings,
                      const std::string& keystore_password) {
  if (settings.empty()) return Ok{};
  if (auto s = CheckPassword(keystore_password); !s.ok()) return s;
  size_t input_size = keystore_password.size() + 1;
  std::vector<std::string> names;
  std::vector<std::string_view> secrets{keystore_password};
  for (const CliSetting& setting : settings) {
    if (auto s = CheckSetting(setting); !s.ok()) return s;
    names.push_back(setting.first);
    secrets.push_back(setting.second);
    input_size += setting.second.size() + 1;
  }
  auto state = Probe(options);
  if (!state.ok()) return state.error();
  if (state.value() == KeystoreState::kMissing && !keystore_password.empty()) {
    if (auto s = CreateWithPassword(options, keystore_password); !s.ok()) return s;
    state = KeystoreState::kWithPassword;
  }
  SecretInput input(input_size);
  AddPasswordLine(state.value(), keystore_password, input);
  for (const CliSetting& setting : settings) input.AddLine(setting.second);
  // No --stdin: see the header. --force: no "overwrite?" question, and no "create?" either.
  auto run = RunTool(options, "add", NamesAfterOptions({"--force"}, names), input.bytes);
  if (!run.ok()) return run.error();
  return ExpectSuccess(options, "add", run.value(), secrets);
}

Status CliRemoveSettings(const CliKeystoreOptions& options, const std::vector<std::string>& names,
                         const std::string& keystore_password) {
  if (names.empty()) return Ok{};
  if (auto s = CheckPassword(keystore_password); !s.ok()) return s;
  for (const std::string& name : names) {
    if (auto s = CheckName(name); !s.ok()) return s;
  }
  auto state = Probe(options);
  if (!state.ok()) return state.error();
  if (state.value() == KeystoreState::kMissing) return Ok{};
  SecretInput input(keystore_password.size() + 1);
  AddPasswordLine(state.value(), keystore_password, input);
  auto run = RunTool(options, "remove", NamesAfterOptions({}, names), input.bytes);
  if (!run.ok()) return run.error();
  return ExpectSuccess(options, "remove", run.value(), {keystore_password});
}

Result<std::vector<std::string>> CliListSettings(const CliKeystoreOptions& options,
                                                 const std::string& keystore_password) {
  if (auto s = CheckPassword(keystore_password); !s.ok()) return s.error();
  auto state = Probe(options);
  if (!state.ok()) return state.error();
  if (state.value() == KeystoreState::kMissing) return std::vector<std::string>{};
  SecretInput input(keystore_password.size() + 1);
  AddPasswordLine(state.value(), keystore_password, input);
  auto run = RunTool(options, "list", {}, input.bytes);
  if (!run.ok()) return run.error();
  if (auto s = ExpectSuccess(options, "list", run.value(), {keystore_password}); !s.ok()) {
    return s.error();
  }
  if (run.value().out.truncated) {
    return MakeError(kCliFailed, ToolName(options.product) + " list printed more than it may");
  }
  // One name a line; anything that is not a setting name is not part of the list.
  std::vector<std::string> names;
  const std::string& out = run.value().out.bytes;
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    std::string line = out.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (keystore::IsValidSettingName(line)) names.push_back(std::move(line));
    start = end + 1;
  }
  return names;
}

}  // namespace agent::cli_backend

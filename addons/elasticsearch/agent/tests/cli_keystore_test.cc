// The cli keystore backend against the engines' real keystore tools, Elasticsearch 8.19 and
// OpenSearch 3.6, and against small fake tools (declared below) for what the real ones cannot
// be made to show: a hang, an echo of stdin, a run that must not happen.
//
// Environment: AGENT_TEST_ES_HOME and AGENT_TEST_OPENSEARCH_HOME (default: the engines that
// `make e2e-deps` caches in .cache/e2e), AGENT_TEST_JAVA_HOME (default: Temurin 25; OpenSearch
// 3 needs Java 21+). When one is missing, the tests that need it skip and say which.
#include "cli_backend/cli_keystore.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "cli_backend/subprocess.h"
#include "crypto/crypto.h"
#include "keystore/codec.h"
#include "service/keystore_service.h"
#include "test_util.h"

namespace agent::cli_backend {
namespace {

namespace fs = std::filesystem;
using keystore::Product;
using std::chrono::milliseconds;

constexpr char kAccessKey[] = "s3.client.default.access_key";
constexpr char kSecretKey[] = "s3.client.default.secret_key";
constexpr char kAccessValue[] = "AKIAEXAMPLEACCESS123";
constexpr char kSecretValue[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr char kPassword[] = "keystore-Pass-0rd";
constexpr char kOldAccessKey[] = "s3.client.old.access_key";
constexpr char kOldSecretKey[] = "s3.client.old.secret_key";

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

fs::path EngineHome(Product product) {
  if (product == Product::kElasticsearch) {
    return EnvOr("AGENT_TEST_ES_HOME", std::string(AGENT_E2E_CACHE_DIR) + "/elasticsearch-8.19.21");
  }
  return EnvOr("AGENT_TEST_OPENSEARCH_HOME",
               std::string(AGENT_E2E_CACHE_DIR) + "/opensearch-3.6.0");
}

// The release in an engine home, from its server jar (lib/elasticsearch-8.19.21.jar): the
// oracle for the keystore format its tool writes.
std::string EngineVersion(const fs::path& home, Product product) {
  const std::string prefix = std::string(keystore::ProductName(product)) + "-";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(home / "lib", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && name.size() > prefix.size() + 4 &&
        std::isdigit(static_cast<unsigned char>(name[prefix.size()])) && name.ends_with(".jar")) {
      return name.substr(prefix.size(), name.size() - prefix.size() - 4);
    }
  }
  return "";
}

fs::path JavaHome() { return EnvOr("AGENT_TEST_JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"); }

const char* ConfigVariable(Product product) {
  return product == Product::kElasticsearch ? "ES_PATH_CONF" : "OPENSEARCH_PATH_CONF";
}

void WriteExecutable(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  testing::WriteFile(path, text);
  fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
}

std::string Names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += n + " ";
  return out;
}

std::string EngineName(const ::testing::TestParamInfo<Product>& param) {
  return std::string(keystore::ProductName(param.param));
}

// --- the real tools ----------------------------------------------------------------------

class RealTool : public ::testing::TestWithParam<Product> {
 protected:
  void SetUp() override {
    product_ = GetParam();
    home_ = EngineHome(product_);
    options_ = {home_, product_, dir_.path(), milliseconds(60000), JavaHome()};
    if (!fs::exists(CliToolPath(options_))) {
      GTEST_SKIP() << "no " << keystore::ProductName(product_) << " home at " << home_
                   << " (run `make e2e-deps`, or set AGENT_TEST_ES_HOME / "
                      "AGENT_TEST_OPENSEARCH_HOME)";
    }
    if (!fs::exists(JavaHome() / "bin" / "java")) {
      GTEST_SKIP() << "no Java at " << JavaHome() << " (set AGENT_TEST_JAVA_HOME)";
    }
  }

  // Runs the engine's tool directly: the test's own setup and checks.
  ProcessOutcome Tool(const std::vector<std::string>& args, std::string_view input = {}) {
    ProcessSpec spec;
    spec.argv = {CliToolPath(options_).string()};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = {"PATH=/usr/bin:/bin",
                std::string(product_ == Product::kElasticsearch ? "ES_JAVA_HOME="
                                                                : "OPENSEARCH_JAVA_HOME=") +
                    JavaHome().string(),
                std::string(ConfigVariable(product_)) + "=" + dir_.path().string()};
    spec.stdin_bytes = input;
    spec.timeout = milliseconds(60000);
    auto run = RunProcess(spec);
    EXPECT_TRUE(run.ok()) << run.error().message;
    if (!run.ok()) return {};
    EXPECT_EQ(run.value().exit_code, 0) << Names(args) << ": " << run.value().err.bytes;
    return std::move(run.value());
  }

  fs::path KeystorePath() const { return dir_.path() / keystore::FileName(product_); }
  std::string KeystoreBytes() const { return testing::ReadFileOrEmpty(KeystorePath()); }

  // Decrypted with the agent's own codec: a second, independent reader of the tool's file.
  keystore::Keystore Decrypt(const std::string& password) {
    auto ks = keystore::Open(KeystoreBytes(), product_, password);
    EXPECT_TRUE(ks.ok()) << ks.error().message;
    return ks.ok() ? std::move(ks.value()) : keystore::Keystore{};
  }

  static std::string ValueOf(const keystore::Keystore& ks, const std::string& name) {
    const keystore::Entry* e = ks.Find(name);
    return e != nullptr ? e->value : "<absent>";
  }

  // A keystore as an operator would have made it: the tool's `create`, then other entries
  // through the tool, in one run (without --stdin, which OpenSearch's tool gets wrong after a
  // password line).
  void CreateWithTool(const std::string& password) {
    const std::string pw_line = password.empty() ? "" : password + "\n";
    if (password.empty()) {
      Tool({"create"});
    } else {
      Tool({"create", "-p"}, pw_line + pw_line);
    }
    Tool({"add", "bootstrap.password", kOldAccessKey, kOldSecretKey},
         pw_line + "bootstrap-Value-1\nold-access-Value\nold-secret-Value\n");
  }

  // Puts a wrapper in front of the real tool that logs each run's arguments: a transparent
  // test double, to count runs and to see that no secret reaches a command line.
  fs::path WrapToolWithRunLog() {
    const fs::path wrapper_home = wrapper_dir_.path();
    fs::create_directory_symlink(home_ / "lib", wrapper_home / "lib");
    const fs::path log = dir_.path() / "runs.log";
    WriteExecutable(wrapper_home / "bin" / CliToolPath(options_).filename(),
                    "#!/bin/sh\necho \"$*\" >> \"" + log.string() + "\"\nexec \"" +
                        CliToolPath(options_).string() + "\" \"$@\"\n");
    options_.engine_home = wrapper_home;
    return log;
  }

  Product product_ = Product::kElasticsearch;
  fs::path home_;
  testing::TempDir dir_;
  testing::TempDir wrapper_dir_;
  CliKeystoreOptions options_;
};

INSTANTIATE_TEST_SUITE_P(Engines, RealTool,
                         ::testing::Values(Product::kElasticsearch, Product::kOpenSearch),
                         EngineName);

TEST_P(RealTool, CheckPassesForAnInstalledEngine) {
  auto s = CheckCliBackend(options_);
  EXPECT_TRUE(s.ok()) << s.error().message;
}

TEST_P(RealTool, AddsSettingsInOneRunAndKeepsTheOtherEntries) {
  CreateWithTool("");
  const std::string seed_before = ValueOf(Decrypt(""), "keystore.seed");
  const fs::path log = WrapToolWithRunLog();

  // Two new settings, and one that exists (overwritten).
  auto s = CliAddSettings(
      options_,
      {{kAccessKey, kAccessValue}, {kSecretKey, kSecretValue}, {kOldAccessKey, "new-access-Value"}},
      "");
  ASSERT_TRUE(s.ok()) << s.error().message;

  EXPECT_EQ(testing::ReadFileOrEmpty(log), std::string("add --force -- ") + kAccessKey + " " +
                                               kSecretKey + " " + kOldAccessKey + "\n")
      << "one run of the tool, names only on its command line";
  auto names = CliListSettings(options_, "");
  ASSERT_TRUE(names.ok()) << names.error().message;
  EXPECT_EQ(names.value(),
            (std::vector<std::string>{"bootstrap.password", "keystore.seed", kAccessKey, kSecretKey,
                                      kOldAccessKey, kOldSecretKey}));
  keystore::Keystore ks = Decrypt("");
  EXPECT_FALSE(ks.has_password);
  EXPECT_EQ(ValueOf(ks, kAccessKey), kAccessValue);
  EXPECT_EQ(ValueOf(ks, kSecretKey), kSecretValue);
  EXPECT_EQ(ValueOf(ks, kOldAccessKey), "new-access-Value");
  EXPECT_EQ(ValueOf(ks, kOldSecretKey), "old-secret-Value");
  EXPECT_EQ(ValueOf(ks, "bootstrap.password"), "bootstrap-Value-1");
  EXPECT_EQ(ValueOf(ks, "keystore.seed"), seed_before);
  if (product_ == Product::kElasticsearch) {  // OpenSearch's tool has no `show`
    EXPECT_EQ(Tool({"show", kSecretKey}).out.bytes, kSecretValue);  // printed without a newline
  }
}

// OpenSearch's `add --stdin` stores empty values here (see cli_keystore.h): this test is the
// one that would catch a return to it.
TEST_P(RealTool, PasswordProtectedKeystore) {
  CreateWithTool(kPassword);
  auto s =
      CliAddSettings(options_, {{kAccessKey, kAccessValue}, {kSecretKey, kSecretValue}}, kPassword);
  ASSERT_TRUE(s.ok()) << s.error().message;
  keystore::Keystore ks = Decrypt(kPassword);
  EXPECT_TRUE(ks.has_password);
  EXPECT_EQ(ValueOf(ks, kAccessKey), kAccessValue);
  EXPECT_EQ(ValueOf(ks, kSecretKey), kSecretValue);
  EXPECT_EQ(ValueOf(ks, "bootstrap.password"), "bootstrap-Value-1");

  // Two removed in one run.
  s = CliRemoveSettings(options_, {kOldAccessKey, kOldSecretKey}, kPassword);
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto names = CliListSettings(options_, kPassword);
  ASSERT_TRUE(names.ok()) << names.error().message;
  EXPECT_EQ(names.value(), (std::vector<std::string>{"bootstrap.password", "keystore.seed",
                                                     kAccessKey, kSecretKey}));

  // The wrong password: refused, nothing changed, no secret in the message.
  const std::string before = KeystoreBytes();
  const std::string wrong = "not-the-Password-42";
  s = CliAddSettings(options_, {{kAccessKey, "other-access"}, {kSecretKey, "other-secret"}}, wrong);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kCliFailed);
  const std::string& message = s.error().message;
  EXPECT_NE(message.find("exit code 65"), std::string::npos) << message;
  EXPECT_NE(message.find("password was incorrect"), std::string::npos) << message;
  for (const std::string& secret :
       {wrong, std::string(kPassword), std::string("other-access"), std::string("other-secret")}) {
    EXPECT_EQ(message.find(secret), std::string::npos) << "message shows a secret: " << message;
  }
  EXPECT_EQ(KeystoreBytes(), before) << "a refused write changed the keystore";
}

TEST_P(RealTool, CreatesAMissingKeystoreWithThePassword) {
  auto s =
      CliAddSettings(options_, {{kAccessKey, kAccessValue}, {kSecretKey, kSecretValue}}, kPassword);
  ASSERT_TRUE(s.ok()) << s.error().message;
  keystore::Keystore ks = Decrypt(kPassword);
  EXPECT_TRUE(ks.has_password);
  EXPECT_EQ(ValueOf(ks, kAccessKey), kAccessValue);
  EXPECT_EQ(ValueOf(ks, kSecretKey), kSecretValue);
  EXPECT_NE(ks.Find("keystore.seed"), nullptr);

  // No password configured for it: refused, and the first value is not taken for the
  // password (this one would open the keystore).
  const std::string before = KeystoreBytes();
  s = CliAddSettings(options_, {{kAccessKey, kPassword}, {kSecretKey, kSecretValue}}, "");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kCliFailed);
  EXPECT_NE(s.error().message.find("password was incorrect"), std::string::npos)
      << s.error().message;
  EXPECT_EQ(KeystoreBytes(), before);
}

// The cases below behave alike on both tools; they run on Elasticsearch's only, to keep the
// suite short (every run of a tool starts a JVM: seconds of CPU).
class ElasticsearchTool : public RealTool {};
INSTANTIATE_TEST_SUITE_P(Engines, ElasticsearchTool, ::testing::Values(Product::kElasticsearch),
                         EngineName);

TEST_P(ElasticsearchTool, KeystoreWithoutPassword) {
  // Created by `add --force` when there is none.
  auto s = CliAddSettings(options_, {{kAccessKey, kAccessValue}}, "");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_FALSE(Decrypt("").has_password);

  // Stays without one when a password is configured, as with the native backend: the
  // password is for protected keystores.
  s = CliAddSettings(options_, {{kSecretKey, kSecretValue}}, kPassword);
  ASSERT_TRUE(s.ok()) << s.error().message;
  keystore::Keystore ks = Decrypt("");
  EXPECT_FALSE(ks.has_password);
  EXPECT_EQ(ValueOf(ks, kAccessKey), kAccessValue);
  EXPECT_EQ(ValueOf(ks, kSecretKey), kSecretValue);

  // A name that is not there: the tool removes none of them.
  s = CliRemoveSettings(options_, {kAccessKey, "s3.client.default.session_token"}, "");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kCliFailed);
  EXPECT_NE(s.error().message.find("session_token"), std::string::npos) << s.error().message;
  EXPECT_EQ(ValueOf(Decrypt(""), kAccessKey), kAccessValue);
}

// The service with the cli backend: the API's write and delete, through the tool, under the
// agent's lock; a stale session token of the client goes when a write brings none.
TEST_P(ElasticsearchTool, TheServiceWritesAndRemovesAClientThroughTheTool) {
  CreateWithTool(kPassword);
  testing::WriteFile(dir_.path() / "pw", std::string(kPassword) + "\n");
  const fs::path runs = WrapToolWithRunLog();
  auto run_count = [&runs] {
    std::string log = testing::ReadFileOrEmpty(runs);
    return std::count(log.begin(), log.end(), '\n');
  };
  service::ServiceOptions so{dir_.path(),
                             Product::kElasticsearch,
                             EngineVersion(home_, product_),
                             dir_.path() / "pw",
                             nullptr,
                             nullptr,
                             options_};
  service::KeystoreService svc(so);
  service::S3Credentials with_token;
  with_token.client = "kb";
  with_token.access_key = kAccessValue;
  with_token.secret_key = kSecretValue;
  with_token.session_token = "session-Token-1";
  fs::permissions(KeystorePath(), fs::perms(0640));  // an operator's choice, kept by the write
  auto first = svc.WriteS3Credentials(with_token);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(fs::status(KeystorePath()).permissions() & fs::perms::mask, fs::perms(0640));
  EXPECT_EQ(first.value().sha256, crypto::Sha256Hex(KeystoreBytes()));
  EXPECT_EQ(first.value().format_version,
            keystore::FormatWrittenBy(product_, EngineVersion(home_, product_)).value_or(-1));
  EXPECT_EQ(ValueOf(Decrypt(kPassword), "s3.client.kb.session_token"), "session-Token-1");
  EXPECT_EQ(run_count(), 1);  // one `add` with every setting

  service::S3Credentials without_token;
  without_token.client = "kb";
  without_token.access_key = "AKIASECONDKEY";
  without_token.secret_key = kSecretValue;
  ASSERT_TRUE(svc.WriteS3Credentials(without_token).ok());
  EXPECT_EQ(run_count(), 3);  // `add`, then `remove` of the stale token (the tool has no swap)
  ASSERT_TRUE(svc.WriteS3Credentials(without_token).ok());
  EXPECT_EQ(run_count(), 4);  // nothing stale (the names read natively): one `add` alone
  {
    keystore::Keystore ks = Decrypt(kPassword);
    EXPECT_EQ(ValueOf(ks, "s3.client.kb.access_key"), "AKIASECONDKEY");
    EXPECT_EQ(ValueOf(ks, "s3.client.kb.session_token"), "<absent>");
    EXPECT_EQ(ValueOf(ks, "bootstrap.password"), "bootstrap-Value-1");
  }
  auto described = svc.Describe();
  ASSERT_TRUE(described.ok()) << described.error().message;
  EXPECT_TRUE(described.value().has_password);

  auto removed = svc.RemoveS3Client("kb");
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_EQ(removed.value().settings,
            (std::vector<std::string>{"s3.client.kb.access_key", "s3.client.kb.secret_key"}));
  keystore::Keystore after = Decrypt(kPassword);
  EXPECT_EQ(ValueOf(after, "s3.client.kb.access_key"), "<absent>");
  EXPECT_EQ(ValueOf(after, kOldAccessKey), "old-access-Value");
}

TEST_P(ElasticsearchTool, BrokenJavaIsReportedByTheCheck) {
  // The tool's script checks the Java version first; this "Java" fails that check.
  testing::TempDir fake_java;
  WriteExecutable(fake_java.path() / "bin" / "java", "#!/bin/sh\necho 'not a JVM' >&2\nexit 1\n");
  options_.java_home = fake_java.path();
  auto s = CheckCliBackend(options_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kCliFailed) << s.error().message;
}

// Without a keystore, listing and removing need no tool run at all.
TEST(CliKeystore, NoKeystoreMeansNothingToListOrRemove) {
  testing::TempDir config;
  CliKeystoreOptions options{"/no/engine/home", Product::kElasticsearch, config.path(),
                             milliseconds(1000), std::nullopt};
  auto names = CliListSettings(options, "");
  ASSERT_TRUE(names.ok()) << names.error().message;
  EXPECT_TRUE(names.value().empty());
  EXPECT_TRUE(CliRemoveSettings(options, {kAccessKey}, "").ok());
}

// --- fake tools: test doubles for what the real ones cannot show ---------------------------

class FakeTool : public ::testing::Test {
 protected:
  // An engine home whose keystore tool is `script` (sh), with lib/ and a bundled jdk/ whose
  // `java` does nothing, so that the backend's checks pass.
  void Install(const std::string& script) {
    fs::create_directories(home_.path() / "lib");
    WriteExecutable(home_.path() / "jdk" / "bin" / "java", "#!/bin/sh\nexit 0\n");
    WriteExecutable(home_.path() / "bin" / "elasticsearch-keystore", "#!/bin/sh\n" + script);
  }

  CliKeystoreOptions Options(milliseconds timeout = milliseconds(10000)) const {
    return {home_.path(), Product::kElasticsearch, config_.path(), timeout, std::nullopt};
  }

  fs::path Marker() const { return config_.path() / "tool-ran"; }

  testing::TempDir home_;
  testing::TempDir config_;
};

TEST_F(FakeTool, HangingToolIsKilledWithEverythingItStarted) {
  // A hang the real tool cannot be made to show: it ignores SIGTERM, and so does its child.
  Install("trap '' TERM\nsleep 300 &\necho $$ $! > \"$ES_PATH_CONF/pids\"\nwait\n");
  const auto start = std::chrono::steady_clock::now();
  auto s = CliAddSettings(Options(milliseconds(500)), {{kAccessKey, kAccessValue}}, "");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kCliTimeout) << s.error().message;
  EXPECT_NE(s.error().message.find("500 ms"), std::string::npos) << s.error().message;
  EXPECT_LT(took, milliseconds(5000));
  std::istringstream pids(testing::ReadFileOrEmpty(config_.path() / "pids"));
  pid_t shell = 0, sleeper = 0;
  ASSERT_TRUE(pids >> shell >> sleeper);
  EXPECT_TRUE(testing::EndsWithin(shell, milliseconds(3000)));
  EXPECT_TRUE(testing::EndsWithin(sleeper, milliseconds(3000)));
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD) << "a zombie is left";
}

TEST_F(FakeTool, EchoedSecretsAreScrubbedFromTheError) {
  // The real tool echoes an unexpected answer ("Did not understand answer '...'"); this one
  // echoes all of stdin, and its environment, to both streams.
  Install("input=$(cat)\necho \"read: $input\"\necho \"read: $input\" >&2\nenv >&2\nexit 65\n");
  auto s = CliAddSettings(Options(), {{kAccessKey, kAccessValue}, {kSecretKey, kSecretValue}}, "");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kCliFailed);
  const std::string& message = s.error().message;
  EXPECT_NE(message.find("exit code 65"), std::string::npos) << message;
  EXPECT_NE(message.find("[redacted]"), std::string::npos) << message;
  EXPECT_EQ(message.find(kAccessValue), std::string::npos) << message;
  EXPECT_EQ(message.find(kSecretValue), std::string::npos) << message;
}

TEST_F(FakeTool, ToolGetsACleanEnvironment) {
  ::setenv("AWS_SECRET_ACCESS_KEY", "must-not-leak", 1);
  Install("env | sort >&2\nexit 1\n");
  auto s = CliAddSettings(Options(), {{kAccessKey, kAccessValue}}, "");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ASSERT_FALSE(s.ok());
  const std::string& message = s.error().message;
  EXPECT_EQ(message.find("must-not-leak"), std::string::npos) << message;
  EXPECT_NE(message.find("ES_PATH_CONF=" + config_.path().string()), std::string::npos) << message;
  EXPECT_EQ(message.find("JAVA_HOME"), std::string::npos) << "none was given: " << message;
}

TEST_F(FakeTool, SecretCutByTheOutputLimitLeavesNoFragment) {
  // The capture keeps the last 64 KiB: a value whose start falls before that is cut in two.
  // Warning lines are not quoted, so the cut fragment would be all an error shows.
  const std::string value = "FRAGMENT-start-0123456789-FRAGMENT-end";
  const std::string padding_line = "WARNING: " + std::string(90, 'w') + "\n";  // 100 bytes
  // 655 lines of 100 bytes after "<fragment>\n": the 64 KiB window starts 15 bytes before
  // the end of the value.
  Install("read v\nprintf '%s\\n' \"$v\" >&2\ni=0\nwhile [ $i -lt 655 ]; do printf '%s' '" +
          padding_line.substr(0, padding_line.size() - 1) +
          "' >&2; echo >&2; i=$((i+1)); done\nexit 2\n");
  auto s = CliAddSettings(Options(), {{kAccessKey, value}}, "");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message.find("FRAGMENT-end"), std::string::npos) << s.error().message;
  EXPECT_EQ(s.error().message.find("0123456789"), std::string::npos) << s.error().message;
}

TEST_F(FakeTool, UnsupportedValuesAreRefusedBeforeAnythingRuns) {
  Install("touch \"$ES_PATH_CONF/tool-ran\"\nexit 0\n");
  for (const std::string bad : {"two\nlines", "carriage\rreturn", "tab\there", "caf\xc3\xa9"}) {
    auto s = CliAddSettings(Options(), {{kAccessKey, kAccessValue}, {kSecretKey, bad}}, "");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, kCliValueUnsupported);
    EXPECT_NE(s.error().message.find(kSecretKey), std::string::npos) << s.error().message;
    EXPECT_EQ(s.error().message.find(bad), std::string::npos) << s.error().message;
  }
  auto s = CliAddSettings(Options(), {{kAccessKey, kAccessValue}}, "pass\nword");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kCliValueUnsupported);
  EXPECT_EQ(s.error().message.find("pass\nword"), std::string::npos);
  for (const std::string bad_name : {"", "bad name", "a=b", "s3.client.x\n"}) {
    auto r = CliAddSettings(Options(), {{bad_name, kAccessValue}}, "");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, kCliNameInvalid);
  }
  auto r = CliRemoveSettings(Options(), {"--force"}, "");
  EXPECT_TRUE(r.ok()) << "no keystore: nothing to remove, nothing run";
  EXPECT_FALSE(fs::exists(Marker())) << "the tool ran for refused input";
}

TEST_F(FakeTool, NameThatLooksLikeAnOptionStaysAName) {
  Install("echo \"$*\" > \"$ES_PATH_CONF/args\"\ncat > /dev/null\nexit 0\n");
  auto s = CliAddSettings(Options(), {{"-x", kAccessValue}}, "");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(testing::ReadFileOrEmpty(config_.path() / "args"), "add --force -- -x\n");
}

TEST_F(FakeTool, MissingToolOrJavaIsNamed) {
  auto s = CheckCliBackend(Options());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kCliMissing);
  const std::string tool = (home_.path() / "bin" / "elasticsearch-keystore").string();
  EXPECT_NE(s.error().message.find(tool), std::string::npos) << s.error().message;
  auto add = CliAddSettings(Options(), {{kAccessKey, kAccessValue}}, "");
  ASSERT_FALSE(add.ok());
  EXPECT_EQ(add.error().code, kCliMissing);

  Install("exit 0\n");
  fs::remove(home_.path() / "jdk" / "bin" / "java");
  s = CheckCliBackend(Options());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kCliMissing);
  EXPECT_NE(s.error().message.find((home_.path() / "jdk" / "bin" / "java").string()),
            std::string::npos)
      << s.error().message;
}

// --- timing: how long one run of each real tool takes ----------------------------------------
// Run with --gtest_also_run_disabled_tests --gtest_filter='*ToolRunTime*'.

TEST_P(RealTool, DISABLED_ToolRunTime) {
  CreateWithTool("");
  std::vector<double> seconds;
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto s = CliAddSettings(options_, {{kAccessKey, kAccessValue}, {kSecretKey, kSecretValue}}, "");
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    ASSERT_TRUE(s.ok()) << s.error().message;
  }
  std::sort(seconds.begin(), seconds.end());
  std::printf("%s: one add run, median of 5: %.2f s (min %.2f, max %.2f)\n",
              std::string(keystore::ProductName(product_)).c_str(), seconds[2], seconds[0],
              seconds[4]);
}

}  // namespace
}  // namespace agent::cli_backend

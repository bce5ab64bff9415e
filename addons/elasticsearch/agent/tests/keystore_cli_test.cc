// `es-agent keystore ...`: the operator's commands, on a real config directory, with values
// and passwords from standard input.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "app/keystore_cli.h"
#include "keystore/codec.h"
#include "test_util.h"

namespace agent::app {
namespace {

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

class KeystoreCli : public ::testing::Test {
 protected:
  CliRun Cli(std::vector<std::string> args, const std::string& stdin_text = "") {
    std::vector<std::string> full = {"--config-dir",  dir_.path().string(), "--engine",
                                     "elasticsearch", "--engine-version",   "8.10.0"};
    full.insert(full.end(), args.begin(), args.end());
    std::istringstream in(stdin_text);
    std::ostringstream out, err;
    EnvLookup env = [this](const char* name) -> std::optional<std::string> {
      auto it = env_.find(name);
      return it == env_.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    int code = RunKeystoreCommand(full, env, in, out, err);
    return {code, out.str(), err.str()};
  }
  keystore::Keystore Load(const std::string& password = "") {
    auto ks =
        keystore::Open(agent::testing::ReadFileOrEmpty(dir_.path() / "elasticsearch.keystore"),
                       keystore::Product::kElasticsearch, password);
    EXPECT_TRUE(ks.ok()) << ks.error().message;
    return std::move(ks.value());
  }
  agent::testing::TempDir dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(KeystoreCli, CreateAddListRemove) {
  EXPECT_EQ(Cli({"create"}).code, 0);
  EXPECT_EQ(Load().version, 5);
  EXPECT_EQ(Cli({"create"}).code, 1);  // never over an existing keystore
  CliRun add = Cli({"add", "a.one", "b.two"}, "first value\r\nsecond\n");
  ASSERT_EQ(add.code, 0) << add.err;
  EXPECT_EQ(Load().Find("a.one")->value, "first value");
  EXPECT_EQ(Load().Find("b.two")->value, "second");
  EXPECT_EQ(Cli({"list"}).out, "a.one\nb.two\nkeystore.seed\n");

  CliRun partial = Cli({"remove", "a.one", "missing.one"});
  EXPECT_EQ(partial.code, 1);
  EXPECT_NE(partial.err.find("missing.one"), std::string::npos);
  EXPECT_NE(Load().Find("a.one"), nullptr);  // all or nothing
  EXPECT_EQ(Cli({"remove", "a.one"}).code, 0);
  EXPECT_EQ(Cli({"list"}).out, "b.two\nkeystore.seed\n");
}

TEST_F(KeystoreCli, AddWithFewerLinesThanNamesChangesNothing) {
  ASSERT_EQ(Cli({"create"}).code, 0);
  const std::string before =
      agent::testing::ReadFileOrEmpty(dir_.path() / "elasticsearch.keystore");
  CliRun short_input = Cli({"add", "a.one", "b.two"}, "only-one\n");
  EXPECT_EQ(short_input.code, 1);
  EXPECT_NE(short_input.err.find("VALUE_MISSING"), std::string::npos) << short_input.err;
  EXPECT_EQ(short_input.err.find("only-one"), std::string::npos);  // never echoes a value
  EXPECT_EQ(Cli({"add", "a.one"}, "").code, 1);                    // no input at all
  EXPECT_EQ(agent::testing::ReadFileOrEmpty(dir_.path() / "elasticsearch.keystore"), before);
}

TEST_F(KeystoreCli, PasswdThenThePasswordFileOpensIt) {
  ASSERT_EQ(Cli({"create"}).code, 0);
  ASSERT_EQ(Cli({"passwd"}, "n3w-pässword\n").code, 0);
  EXPECT_TRUE(Load("n3w-pässword").has_password);
  EXPECT_EQ(Cli({"list"}).code, 1);  // no password configured now
  agent::testing::WriteFile(dir_.path() / "pw", "n3w-pässword\n");
  env_["AGENT_KEYSTORE_PASSWORD_FILE"] = (dir_.path() / "pw").string();
  EXPECT_EQ(Cli({"list"}).out, "keystore.seed\n");
  // No input at all (kubectl exec without -i) is not an empty password: refused, unchanged.
  const std::string before =
      agent::testing::ReadFileOrEmpty(dir_.path() / "elasticsearch.keystore");
  auto no_input = Cli({"passwd"}, "");
  EXPECT_EQ(no_input.code, 1);
  EXPECT_NE(no_input.err.find("VALUE_MISSING"), std::string::npos) << no_input.err;
  EXPECT_EQ(agent::testing::ReadFileOrEmpty(dir_.path() / "elasticsearch.keystore"), before);
  ASSERT_EQ(Cli({"passwd"}, "\n").code, 0);  // an empty line removes the password
  EXPECT_FALSE(Load().has_password);
}

TEST_F(KeystoreCli, PasswdWithoutAKeystoreFailsAsListAndRemoveDo) {
  for (const auto& [args, input] :
       {std::pair<std::vector<std::string>, std::string>{{"passwd"}, "n3w\n"},
        {{"list"}, ""},
        {{"remove", "a.one"}, ""}}) {
    CliRun r = Cli(args, input);
    EXPECT_EQ(r.code, 1) << args[0];
    EXPECT_NE(r.err.find("KEYSTORE_MISSING"), std::string::npos) << args[0] << ": " << r.err;
    EXPECT_EQ(r.err.find("password changed"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "elasticsearch.keystore"));
}

TEST_F(KeystoreCli, BadUsageExitsWith2AndNamesTheProblem) {
  const std::pair<std::vector<std::string>, const char*> cases[] = {
      {{}, "no command"},
      {{"frob"}, "frob"},
      {{"add"}, "at least one"},
      {{"list", "x"}, "no setting names"},
      {{"add", "s3.client.a.secret_key", "sEcr3t/value+"}, "setting name 2 of 2 does not match"},
      {{"--bogus", "list"}, "--bogus"},
  };
  for (const auto& [args, phrase] : cases) {
    CliRun r = Cli(args);
    EXPECT_EQ(r.code, 2) << phrase;
    EXPECT_NE(r.err.find(phrase), std::string::npos) << r.err;
  }
  // A value typed where a name goes is not echoed.
  CliRun r = Cli({"add", "sEcr3t/value+"});
  EXPECT_EQ(r.err.find("sEcr3t"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace agent::app

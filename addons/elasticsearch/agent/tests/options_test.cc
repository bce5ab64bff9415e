// Options of `es-agent serve`: defaults, environment, flags over environment, errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <map>

#include "app/options.h"

namespace agent::app {
namespace {

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

TEST(Options, Defaults) {
  auto o = ParseServeOptions({}, Env({}));
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o.value().listen_address, "0.0.0.0");
  EXPECT_EQ(o.value().port, 8080);
  EXPECT_EQ(o.value().config_dir, "/usr/share/elasticsearch/config");
  EXPECT_EQ(o.value().node_address, "127.0.0.1:9200");
  EXPECT_FALSE(o.value().engine.has_value());
  EXPECT_FALSE(o.value().credentials.has_value());
}

TEST(Options, EnvironmentThenFlags) {
  auto o = ParseServeOptions({"--port", "9000", "--engine=opensearch"},
                             Env({{"AGENT_PORT", "8181"},
                                  {"AGENT_CONFIG_DIR", "/cfg"},
                                  {"ELASTIC_USERNAME", "elastic"},
                                  {"ELASTIC_PASSWORD", "pw"}}));
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o.value().port, 9000);
  EXPECT_EQ(o.value().config_dir, "/cfg");
  EXPECT_EQ(o.value().engine, keystore::Product::kOpenSearch);
  ASSERT_TRUE(o.value().credentials.has_value());
  EXPECT_EQ(o.value().credentials->user, "elastic");
}

TEST(Options, BadValuesAreNamed) {
  struct Case {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    const char* phrase;
  };
  const Case cases[] = {
      {{"--port", "0"}, {}, "--port"},
      {{"--port", "80x"}, {}, "--port"},
      {{"--engine", "solr"}, {}, "--engine"},
      {{"--bogus", "1"}, {}, "--bogus"},
      {{"--port"}, {}, "needs a value"},
      {{"stray"}, {}, "stray"},
      {{}, {{"AGENT_PORT", "99999"}}, "AGENT_PORT"},
      {{}, {{"ELASTIC_USERNAME", "elastic"}}, "ELASTIC_PASSWORD"},
      {{}, {{"ELASTIC_PASSWORD", "pw"}}, "ELASTIC_USERNAME"},
  };
  for (const Case& c : cases) {
    auto o = ParseServeOptions(c.args, Env(c.env));
    ASSERT_FALSE(o.ok()) << c.phrase;
    EXPECT_NE(o.error().message.find(c.phrase), std::string::npos) << o.error().message;
  }
}

TEST(Options, ValidationCatchesWhatWouldFailAtTheFirstRequest) {
  Options o;
  o.config_dir = "/";
  EXPECT_TRUE(ValidateServeOptions(o).ok());
  struct Case {
    std::function<void(Options&)> change;
    const char* phrase;
  };
  const Case cases[] = {
      {[](Options& x) { x.listen_address = "localhost"; }, "--listen-address"},
      {[](Options& x) { x.config_dir = "/no/such/dir"; }, "--config-dir"},
      {[](Options& x) { x.keystore_password_file = "/no/such/file"; }, "--keystore-password-file"},
      {[](Options& x) { x.engine_version = "2.x"; }, "--engine-version"},
      {[](Options& x) { x.engine_version = "6.2.4"; }, "--engine-version"},
  };
  for (const Case& c : cases) {
    Options bad;
    bad.config_dir = "/";
    c.change(bad);
    Status s = ValidateServeOptions(bad);
    ASSERT_FALSE(s.ok()) << c.phrase;
    EXPECT_NE(s.error().message.find(c.phrase), std::string::npos) << s.error().message;
  }
  Options os;
  os.config_dir = "/";
  os.engine = keystore::Product::kOpenSearch;
  os.engine_version = "2.19.1";
  EXPECT_TRUE(ValidateServeOptions(os).ok());
}

TEST(Options, HelpStopsParsing) {
  auto o = ParseServeOptions({"--help", "--bogus"}, Env({}));
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o.value().help);
}

}  // namespace
}  // namespace agent::app

namespace agent {
namespace {

TEST(Logger, WritesOneJsonObjectPerLineAboveItsLevel) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Logger log(LogLevel::kInfo, f);
    log.Debug("hidden");
    log.Info("request", {{"route", "/keystore"}, {"status", 200}});
    log.Warn("bad \xff path");
  }
  std::rewind(f);
  char line[512];
  std::vector<nlohmann::json> lines;
  while (std::fgets(line, sizeof line, f)) lines.push_back(nlohmann::json::parse(line));
  std::fclose(f);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_EQ(lines[0]["msg"], "request");
  EXPECT_EQ(lines[0]["route"], "/keystore");
  EXPECT_EQ(lines[0]["status"], 200);
  EXPECT_TRUE(lines[0]["time"].is_string());
  EXPECT_EQ(lines[1]["level"], "warn");  // the invalid byte was replaced, not thrown on
  EXPECT_EQ(ParseLogLevel("verbose"), std::nullopt);
}

}  // namespace
}  // namespace agent

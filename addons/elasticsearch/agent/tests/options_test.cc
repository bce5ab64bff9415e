// Options of `es-agent serve`: defaults, environment, flags over environment, errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
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
      {{"--auth-mode", "open"}, {}, "--auth-mode"},
      {{"--tls-client-auth", "optional"}, {}, "--tls-client-auth"},
      {{"--node-scheme", "ftp"}, {}, "--node-scheme"},
      {{"--keystore-backend", "jvm"}, {}, "--keystore-backend"},
      {{"--allow-without-s3-repository=yes"}, {}, "true or false"},
      {{}, {{"AGENT_ALLOW_WITHOUT_S3_REPOSITORY", "1"}}, "AGENT_ALLOW_WITHOUT_S3_REPOSITORY"},
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
      {[](Options& x) { x.tls_cert_file = "/etc/hostname"; }, "--tls-key-file go together"},
      {[](Options& x) { x.tls_ca_file = "/etc/hostname"; }, "--tls-ca-file is for HTTPS"},
      {[](Options& x) {
         x.tls_cert_file = x.tls_key_file = "/etc/hostname";
         x.tls_require_client_cert = true;
       },
       "--tls-client-auth require needs --tls-ca-file"},
      {[](Options& x) {
         x.tls_cert_file = "/no/cert.pem";
         x.tls_key_file = "/etc/hostname";
       },
       "--tls-cert-file /no/cert.pem cannot be read"},
      {[](Options& x) {
         x.node_https = true;
         x.node_ca_file = "/etc/hostname";
       },
       "--node-server-name"},
      {[](Options& x) {
         x.node_https = true;
         x.node_server_name = "es-0";
       },
       "--node-ca-file or --tls-ca-file"},
      {[](Options& x) { x.cli_backend = true; }, "--engine-home"},
      {[](Options& x) {
         x.credentials = http::BasicCredentials{"ops:team", "pw"};
       },
       "cannot contain ':'"},
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

TEST(Options, SwitchesTakeNoValue) {
  auto o = ParseServeOptions({"--allow-without-s3-repository", "--port", "81"}, Env({}));
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_TRUE(o.value().allow_without_s3_repository);
  EXPECT_EQ(o.value().port, 81);
  auto env = ParseServeOptions({}, Env({{"AGENT_ALLOW_WITHOUT_S3_REPOSITORY", "true"}}));
  EXPECT_TRUE(env.value().allow_without_s3_repository);
  auto off = ParseServeOptions({"--allow-without-s3-repository=false"}, Env({}));
  EXPECT_FALSE(off.value().allow_without_s3_repository);
}

TEST(Options, TheAuthModeDefaultsToStaticOnlyWithCredentials) {
  Options o;
  auto refused = ResolveAuthMode(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("--auth-mode none"), std::string::npos);
  o.auth_mode = http::AuthMode::kStatic;
  EXPECT_FALSE(ResolveAuthMode(o).ok());  // static without credentials
  o.auth_mode = http::AuthMode::kNone;
  EXPECT_EQ(ResolveAuthMode(o).value(), http::AuthMode::kNone);
  o.auth_mode = http::AuthMode::kPassthrough;
  EXPECT_EQ(ResolveAuthMode(o).value(), http::AuthMode::kPassthrough);
  o.auth_mode.reset();
  o.credentials = http::BasicCredentials{"u", "p"};
  EXPECT_EQ(ResolveAuthMode(o).value(), http::AuthMode::kStatic);
}

TEST(Options, CredentialsComeFromAMountedSecretDirectory) {
  char tmpl[] = "/tmp/agent-creds-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  auto write = [&](const char* name, const std::string& text) {
    FILE* f = std::fopen((dir + "/" + name).c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
  };
  Options o;
  o.credentials_dir = dir;
  EXPECT_NE(LoadCredentialFiles(o).error().message.find("username does not exist"),
            std::string::npos);
  write("username", "agent\n");
  write("password", "");
  EXPECT_NE(LoadCredentialFiles(o).error().message.find("password is empty"), std::string::npos);
  write("password", "pa:ss\n");
  ASSERT_TRUE(LoadCredentialFiles(o).ok());
  EXPECT_EQ(o.credentials->user, "agent");
  EXPECT_EQ(o.credentials->password, "pa:ss");
  // A mounted Secret's files are links into ..data/ (kubelet's layout): they are followed.
  std::filesystem::create_directory(dir + "/..data");
  std::filesystem::rename(dir + "/username", dir + "/..data/username");
  std::filesystem::create_symlink("..data/username", dir + "/username");
  o.credentials.reset();
  ASSERT_TRUE(LoadCredentialFiles(o).ok());
  EXPECT_EQ(o.credentials->user, "agent");
  // The environment and the directory exclude each other.
  Options both;
  both.credentials_dir = dir;
  both.credentials = http::BasicCredentials{"elastic", "pw"};
  EXPECT_NE(LoadCredentialFiles(both).error().message.find("not both"), std::string::npos);
  std::filesystem::remove_all(dir);
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

// The agent's calls to its node: the parsers of the engines' answers (recorded bodies), and
// the requests NodeApi sends, seen by a recording test double of a node over real HTTP. The
// real engines' behaviour is tested end to end in tests/e2e/test_agent_security.sh.
#include <gtest/gtest.h>

#include <utility>  // before Asio: Boost 1.74 under C++20 with GCC 12 needs it

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "http/auth.h"
#include "node/node_api.h"
#include "node/node_client.h"

namespace agent::node {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using nlohmann::json;

// Test double of a node: answers each "METHOD /path" from a table and records what it got.
class RecordingNode {
 public:
  struct Seen {
    std::string method, target, authorization, body;
  };
  explicit RecordingNode(std::map<std::string, std::pair<int, std::string>> answers)
      : answers_(std::move(answers)), acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~RecordingNode() {
    stopping_ = true;
    boost::system::error_code ec;
    asio::ip::tcp::socket poke(ioc_);
    poke.connect(acceptor_.local_endpoint(), ec);  // wakes the accept
    thread_.join();
  }
  NodeEndpoint endpoint() const {
    NodeEndpoint e;
    e.address = {"127.0.0.1", acceptor_.local_endpoint().port()};
    e.timeout = std::chrono::milliseconds(3000);
    return e;
  }
  std::vector<Seen> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  void Serve() {
    while (!stopping_) {
      asio::ip::tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) return;
      boost::beast::flat_buffer buffer;
      bhttp::request<bhttp::string_body> req;
      bhttp::read(socket, buffer, req, ec);
      if (ec) continue;
      const std::string target(req.target());
      const std::string key =
          std::string(req.method_string()) + " " + target.substr(0, target.find('?'));
      {
        std::lock_guard lock(mutex_);
        seen_.push_back({std::string(req.method_string()), target,
                         std::string(req[bhttp::field::authorization]), req.body()});
      }
      auto it = answers_.find(key);
      bhttp::response<bhttp::string_body> res{
          static_cast<bhttp::status>(it == answers_.end() ? 404 : it->second.first), 11};
      res.body() = it == answers_.end() ? "{}" : it->second.second;
      res.prepare_payload();
      bhttp::write(socket, res, ec);
    }
  }

  std::map<std::string, std::pair<int, std::string>> answers_;
  asio::io_context ioc_;
  asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::vector<Seen> seen_;
  std::thread thread_;
};

TEST(NodeParsers, EngineInfo) {
  auto es = ParseEngineInfo(
      R"({"name":"n","version":{"number":"8.15.2","build_flavor":"default"},"tagline":"You Know, for Search"})");
  ASSERT_TRUE(es.ok());
  EXPECT_EQ(es.value().product, keystore::Product::kElasticsearch);
  EXPECT_EQ(es.value().version, "8.15.2");
  auto os = ParseEngineInfo(R"({"version":{"distribution":"opensearch","number":"2.19.1"}})");
  ASSERT_TRUE(os.ok());
  EXPECT_EQ(os.value().product, keystore::Product::kOpenSearch);
  EXPECT_FALSE(ParseEngineInfo("{}").ok());
  EXPECT_FALSE(ParseEngineInfo("<html>").ok());
}

TEST(NodeParsers, S3RepositoryAsModuleOrPlugin) {
  EXPECT_TRUE(
      ParseHasS3Repository(
          R"({"nodes":{"a":{"modules":[{"name":"x-pack-core"},{"name":"repository-s3"}]}}})")
          .value());
  EXPECT_TRUE(
      ParseHasS3Repository(R"({"nodes":{"a":{"plugins":[{"name":"repository-s3"}]}}})").value());
  // filter_path drops an empty list altogether.
  EXPECT_FALSE(ParseHasS3Repository(R"({"nodes":{"a":{"modules":[{"name":"apm"}]}}})").value());
  EXPECT_FALSE(ParseHasS3Repository(R"({"nodes":{"a":{}}})").value());
  EXPECT_FALSE(ParseHasS3Repository(R"({"nodes":{}})").ok());
  EXPECT_FALSE(ParseHasS3Repository("not json").ok());
}

TEST(NodeParsers, ReloadAnswer) {
  auto ok = ParseReloadAnswer(
      R"({"_nodes":{"total":1,"successful":1,"failed":0},"cluster_name":"c","nodes":{"id1":{"name":"node-1"}}})");
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok.value().reloaded);
  EXPECT_EQ(ok.value().node_name, "node-1");
  auto failed = ParseReloadAnswer(
      R"({"nodes":{"id1":{"name":"node-1","reload_exception":{"type":"security_exception","reason":"Provided keystore password was incorrect"}}}})");
  ASSERT_TRUE(failed.ok());
  EXPECT_FALSE(failed.value().reloaded);
  EXPECT_EQ(failed.value().failure, "Provided keystore password was incorrect");
  EXPECT_FALSE(ParseReloadAnswer(R"({"nodes":{}})").ok());  // the local node did not answer
  EXPECT_EQ(ok.value().keystore_digest, "");                // before Elasticsearch 9.3
}

TEST(NodeParsers, ReloadAnswerOfElasticsearch93NamesTheDigest) {
  // The node entry's shape from 9.3 on (the reload API's specification; no 9.3 node runs here).
  auto ok = ParseReloadAnswer(R"({"nodes":{"id1":{"name":"node-1",
      "secure_setting_names":["s3.client.kb.access_key"],"keystore_path":"/c/elasticsearch.keystore",
      "keystore_digest":"ABCDEF0123","keystore_last_modified_time":"2026-01-01T00:00:00Z"}}})");
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok.value().reloaded);
  EXPECT_EQ(ok.value().keystore_digest, "abcdef0123");  // compared in lower case
}

TEST(NodeParsers, AReloadFailureNamesEveryReason) {
  // The shape an engine gives when several plugins fail: the first, its cause, the rest
  // suppressed (a repeated reason is said once).
  auto failed = ParseReloadAnswer(R"({"nodes":{"id1":{"name":"node-1","reload_exception":{
      "type":"illegal_state_exception","reason":"repository-s3 failed",
      "caused_by":{"type":"x","reason":"bad endpoint"},
      "suppressed":[{"type":"y","reason":"azure failed"},{"type":"z","reason":"bad endpoint"}]}}}})");
  ASSERT_TRUE(failed.ok());
  EXPECT_FALSE(failed.value().reloaded);
  EXPECT_EQ(failed.value().failure, "repository-s3 failed; bad endpoint; azure failed");
}

TEST(NodeClient, AnUnreachableNodeIsNamedByAddress) {
  // Port 1 on loopback: nothing listens there, so the connection is refused.
  NodeEndpoint e;
  e.address = {"127.0.0.1", 1};
  NodeClient client(e, "");
  auto info = NodeApi(client).FetchEngineInfo();
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, kNodeUnreachable);
  EXPECT_NE(info.error().message.find("127.0.0.1:1"), std::string::npos);
}

TEST(NodeClient, AMissingCaFileIsATlsFailureNamingTheFile) {
  NodeEndpoint e;
  e.address = {"127.0.0.1", 1};
  e.https = true;
  e.server_name = "es-0.es-headless";
  e.ca_file = "/nonexistent/ca.pem";
  NodeClient client(e, "");
  auto info = NodeApi(client).FetchEngineInfo();
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, kNodeTlsFailed);
  EXPECT_NE(info.error().message.find("/nonexistent/ca.pem"), std::string::npos);
}

TEST(NodeApi, ReloadTargetsTheLocalNodeAndSendsThePasswordInTheBody) {
  RecordingNode node(
      {{"POST /_nodes/_local/reload_secure_settings", {200, R"({"nodes":{"x":{"name":"n1"}}})"}}});
  NodeClient client(node.endpoint(), "Basic b3duOmNyZWQ=");
  NodeApi api(client);
  auto outcome = api.ReloadSecureSettings("", "keystore-pw");
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  EXPECT_TRUE(outcome.value().reloaded);
  auto again = api.ReloadSecureSettings("Bearer caller-token", "");
  ASSERT_TRUE(again.ok());
  auto seen = node.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].authorization, "Basic b3duOmNyZWQ=");  // the agent's own
  EXPECT_EQ(json::parse(seen[0].body), json({{"secure_settings_password", "keystore-pw"}}));
  EXPECT_EQ(seen[1].authorization, "Bearer caller-token");  // the caller's, in passthrough
  EXPECT_EQ(seen[1].body, "");                              // no password: no body
}

TEST(NodeApi, ElasticsearchPassthroughAsksForManage) {
  RecordingNode node(
      {{"POST /_security/user/_has_privileges",
        {200, R"({"username":"ops","has_all_requested":false,"cluster":{"manage":false}})"}}});
  NodeClient client(node.endpoint(), "");
  auto user = NodeApi(client).AuthorizeCaller(keystore::Product::kElasticsearch, "ApiKey k");
  ASSERT_FALSE(user.ok());
  EXPECT_EQ(user.error().code, http::kForbidden);
  EXPECT_NE(user.error().message.find("\"ops\""), std::string::npos);
  auto seen = node.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(json::parse(seen[0].body), json({{"cluster", {"manage"}}}));
  EXPECT_EQ(seen[0].authorization, "ApiKey k");
}

TEST(NodeApi, OpenSearchPassthroughProbesTheReloadPermissionOnNoNode) {
  RecordingNode node({{"GET /_plugins/_security/authinfo", {200, R"({"user_name":"ops"})"}},
                      {"POST /_nodes/es-agent-permission-check/reload_secure_settings",
                       {403, R"({"error":"no permissions"})"}}});
  NodeClient client(node.endpoint(), "");
  auto user = NodeApi(client).AuthorizeCaller(keystore::Product::kOpenSearch, "Basic x");
  ASSERT_FALSE(user.ok());
  EXPECT_EQ(user.error().code, http::kForbidden);
  EXPECT_EQ(node.seen().size(), 2u);
}

TEST(NodeApi, ARefusalOfTheCallersHeaderIsTheCallersNotTheAgents) {
  const std::string refused = R"({"error":"no permissions"})";
  for (int status : {401, 403}) {
    const char* code = status == 401 ? http::kUnauthorized : http::kForbidden;
    RecordingNode es({{"POST /_security/user/_has_privileges", {status, refused}}});
    NodeClient to_es(es.endpoint(), "");
    auto user = NodeApi(to_es).AuthorizeCaller(keystore::Product::kElasticsearch, "ApiKey k");
    ASSERT_FALSE(user.ok());
    EXPECT_EQ(user.error().code, code) << status;
    EXPECT_EQ(user.error().message.find("agent's"), std::string::npos) << user.error().message;

    RecordingNode os({{"GET /_plugins/_security/authinfo", {status, refused}}});
    NodeClient to_os(os.endpoint(), "");
    user = NodeApi(to_os).AuthorizeCaller(keystore::Product::kOpenSearch, "Basic x");
    ASSERT_FALSE(user.ok());
    EXPECT_EQ(user.error().code, code) << status;

    RecordingNode plugins({{"GET /_nodes/_local/plugins", {status, refused}}});
    NodeClient to_plugins(plugins.endpoint(), "Basic b3duOmNyZWQ=");
    auto has = NodeApi(to_plugins).HasS3Repository("Bearer caller-token");
    ASSERT_FALSE(has.ok());
    EXPECT_EQ(has.error().code, code) << status;
    if (status == 403) {
      EXPECT_NE(has.error().message.find("caller's credentials lack the privilege"),
                std::string::npos)
          << has.error().message;
    }
    // The agent's own credentials refused: the agent's problem, the node's error.
    auto own = NodeApi(to_plugins).HasS3Repository("");
    ASSERT_FALSE(own.ok());
    EXPECT_EQ(own.error().code, kNodeError) << status;
  }
}

TEST(NodeApi, SecurityOffIsNamed) {
  RecordingNode open({{"GET /_nodes/_local", {200, R"({"nodes":{"a":{"version":"8.19.0"}}})"}}});
  NodeClient client(open.endpoint(), "Basic b3duOmNyZWQ=");
  auto status = NodeApi(client).CheckSecurityOn();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, kNodeSecurityOff);
  EXPECT_EQ(open.seen().at(0).authorization, "");  // asked without any credentials
}

TEST(NodeApi, TheStartUpWaitRetriesAnythingButAVerdict) {
  std::atomic<bool> stopping{false};
  int retries = 0;
  auto count = [&retries](const Error&) { ++retries; };
  using std::chrono::milliseconds;
  // OpenSearch answers 503 while its security plugin initialises: waited out, not a verdict.
  RecordingNode starting({{"GET /_nodes/_local", {503, R"({"error":"not initialized"})"}}});
  NodeClient to_starting(starting.endpoint(), "");
  Status waited =
      NodeApi(to_starting).WaitForSecurityOn(milliseconds(900), milliseconds(200), stopping, count);
  ASSERT_FALSE(waited.ok());
  EXPECT_EQ(waited.error().code, kNodeError);  // the last answer, once the wait is over
  EXPECT_GE(retries, 2);
  EXPECT_GE(starting.seen().size(), 3u);
  // 200 without credentials is the verdict "security off": no retry.
  retries = 0;
  RecordingNode open({{"GET /_nodes/_local", {200, R"({"nodes":{"a":{}}})"}}});
  NodeClient to_open(open.endpoint(), "");
  Status off =
      NodeApi(to_open).WaitForSecurityOn(milliseconds(900), milliseconds(200), stopping, count);
  ASSERT_FALSE(off.ok());
  EXPECT_EQ(off.error().code, kNodeSecurityOff);
  EXPECT_EQ(retries, 0);
  // 401 and 403 (an anonymous user the node knows) both mean the node checks callers.
  for (int status : {401, 403}) {
    RecordingNode secure({{"GET /_nodes/_local", {status, R"({"error":"no"})"}}});
    NodeClient to_secure(secure.endpoint(), "");
    EXPECT_TRUE(NodeApi(to_secure)
                    .WaitForSecurityOn(milliseconds(900), milliseconds(200), stopping, count)
                    .ok())
        << status;
  }
  // SIGTERM during the wait ends it at once.
  stopping = true;
  EXPECT_TRUE(NodeApi(to_starting)
                  .WaitForSecurityOn(milliseconds(60000), milliseconds(200), stopping, count)
                  .ok());
}

}  // namespace
}  // namespace agent::node

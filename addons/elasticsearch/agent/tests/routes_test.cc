// The router's decisions that depend on the node: the S3 repository check, the reload after
// a save, passthrough's 403, and /metrics. The node is a pair of functions here (NodeHooks);
// over real HTTP against a real node these are tested in tests/e2e/test_agent_security.sh.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "crypto/crypto.h"
#include "http/routes.h"
#include "test_util.h"

namespace agent::http {
namespace {

using nlohmann::json;

const std::string kBody = R"({"access_key_id":"AK","secret_access_key":"SK","client":"kb"})";
const std::string kReloadBody =
    R"({"access_key_id":"AK","secret_access_key":"SK","client":"kb","reload":true})";

class RoutesTest : public ::testing::Test {
 protected:
  Router MakeRouter(NodeHooks hooks) { return Router(service_, auth_, std::move(hooks), metrics_); }
  Request Post(const std::string& body) { return {"POST", "/keystore", auth_header_, body}; }
  std::string keystore_bytes() const {
    return agent::testing::ReadFileOrEmpty(dir_.path() / "elasticsearch.keystore");
  }
  void WritePasswordFile(const std::string& password) {
    agent::testing::WriteFile(dir_.path() / "pw", password);
  }

  agent::testing::TempDir dir_;
  service::KeystoreService service_{
      service::ServiceOptions{dir_.path(), keystore::Product::kElasticsearch, "8.10.0",
                              dir_.path() / "pw", nullptr, nullptr, std::nullopt}};
  Authenticator auth_ = Authenticator::Static({"elastic", "s3cr3t"});
  const std::string auth_header_ = BasicAuthorization({"elastic", "s3cr3t"});
  Metrics metrics_;
};

TEST_F(RoutesTest, ANodeWithoutTheS3RepositoryGetsNothingWritten) {
  WritePasswordFile("");
  std::vector<std::string> asked_with;
  NodeHooks hooks;
  hooks.has_s3_repository = [&](const std::string& authorization) {
    asked_with.push_back(authorization);
    return Result<bool>(false);
  };
  Router router = MakeRouter(hooks);
  Response r = router.Handle(Post(kBody));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.error_code, "NODE_HAS_NO_S3_REPOSITORY");
  EXPECT_NE(r.body.find("--allow-without-s3-repository"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "elasticsearch.keystore"));
  EXPECT_EQ(asked_with, std::vector<std::string>{""});  // static mode: the agent's own creds
  // Deleting needs no check: removing S3 settings is always safe.
  EXPECT_EQ(router.Handle({"DELETE", "/keystore?client=kb", auth_header_, ""}).status, 200);
}

TEST_F(RoutesTest, AnUnreachableNodeBlocksTheWriteWith503) {
  WritePasswordFile("");
  NodeHooks hooks;
  hooks.has_s3_repository = [](const std::string&) {
    return Result<bool>(MakeError("NODE_UNREACHABLE", "node 127.0.0.1:9200 did not answer"));
  };
  Response r = MakeRouter(hooks).Handle(Post(kBody));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.error_code, "NODE_UNREACHABLE");
  EXPECT_TRUE(keystore_bytes().empty());
}

TEST_F(RoutesTest, ReloadGetsTheKeystorePasswordAndItsAnswerIsReturned) {
  WritePasswordFile("ks-pass\n");
  std::string password_seen;
  NodeHooks hooks;
  hooks.reload = [&](const std::string&, const std::string& password) {
    password_seen = password;
    return Result<node::ReloadOutcome>(node::ReloadOutcome{"node-1", true, "", ""});
  };
  Response r = MakeRouter(hooks).Handle(Post(kReloadBody));
  ASSERT_EQ(r.status, 200) << r.body;
  json body = json::parse(r.body);
  EXPECT_EQ(body["reload"], json({{"node", "node-1"}, {"reloaded", true}}));
  EXPECT_EQ(body["sha256"], crypto::Sha256Hex(keystore_bytes()));
  EXPECT_EQ(password_seen, "ks-pass");
  EXPECT_EQ(r.body.find("ks-pass"), std::string::npos);
}

TEST_F(RoutesTest, AFailedReloadIs502AndStillReportsTheSave) {
  WritePasswordFile("");
  NodeHooks hooks;
  hooks.reload = [](const std::string&, const std::string&) {
    return Result<node::ReloadOutcome>(node::ReloadOutcome{
        "node-1", false, "unknown secure setting [s3.client.kb.access_key]", ""});
  };
  Router router = MakeRouter(hooks);
  Response r = router.Handle(Post(kReloadBody));
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(r.error_code, "NODE_RELOAD_FAILED");
  json body = json::parse(r.body);
  EXPECT_EQ(body["error"]["code"], "NODE_RELOAD_FAILED");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("the keystore was saved"),
            std::string::npos);
  EXPECT_EQ(body["reload"]["failure"], "unknown secure setting [s3.client.kb.access_key]");
  EXPECT_EQ(body["sha256"], crypto::Sha256Hex(keystore_bytes()));  // the save stands
  // DELETE with reload=true goes the same way.
  Response d = router.Handle({"DELETE", "/keystore?client=kb&reload=true", auth_header_, ""});
  EXPECT_EQ(d.status, 502);
  EXPECT_EQ(json::parse(d.body)["settings"],
            json::array({"s3.client.kb.access_key", "s3.client.kb.secret_key"}));
}

TEST_F(RoutesTest, AReloadedDigestMustBeTheSavedFileOrALaterOne) {
  // Elasticsearch 9.3+ names the digest of the keystore it loaded (no such node runs here:
  // the hook answers as its reload API's specification says).
  WritePasswordFile("");
  std::string digest;
  NodeHooks hooks;
  hooks.reload = [&](const std::string&, const std::string&) {
    node::ReloadOutcome outcome{"node-1", true, "", ""};
    outcome.keystore_digest = digest.empty() ? crypto::Sha256Hex(keystore_bytes()) : digest;
    return Result<node::ReloadOutcome>(outcome);
  };
  Router router = MakeRouter(hooks);
  Response same = router.Handle(Post(kReloadBody));
  ASSERT_EQ(same.status, 200) << same.body;
  EXPECT_EQ(json::parse(same.body)["reload"]["keystore_digest"],
            crypto::Sha256Hex(keystore_bytes()));
  // A digest in another form is passed on, not judged.
  digest = "not-a-sha256";
  EXPECT_EQ(router.Handle(Post(kReloadBody)).status, 200);
  digest.clear();
  // Another caller saved after this one (keeping its entries): the node loaded that file.
  hooks.reload = [&](const std::string&, const std::string&) {
    EXPECT_TRUE(service_
                    .WriteS3Credentials(
                        service::ParseS3Credentials(
                            R"({"access_key_id":"A2","secret_access_key":"S2","client":"other"})")
                            .value())
                    .ok());
    node::ReloadOutcome outcome{"node-1", true, "", ""};
    outcome.keystore_digest = crypto::Sha256Hex(keystore_bytes());
    return Result<node::ReloadOutcome>(outcome);
  };
  EXPECT_EQ(MakeRouter(hooks).Handle(Post(kReloadBody)).status, 200);
  // A later save that dropped this change's keys does not explain it.
  hooks.reload = [&](const std::string&, const std::string&) {
    EXPECT_TRUE(service_.RemoveS3Client("kb").ok());
    node::ReloadOutcome outcome{"node-1", true, "", ""};
    outcome.keystore_digest = crypto::Sha256Hex(keystore_bytes());
    return Result<node::ReloadOutcome>(outcome);
  };
  EXPECT_EQ(MakeRouter(hooks).Handle(Post(kReloadBody)).status, 502);
  // A digest of neither: the node read some other file.
  digest = std::string(64, 'a');
  hooks.reload = [&](const std::string&, const std::string&) {
    node::ReloadOutcome outcome{"node-1", true, "", ""};
    outcome.keystore_digest = digest;
    return Result<node::ReloadOutcome>(outcome);
  };
  Response other = MakeRouter(hooks).Handle(
      Post(R"({"access_key_id":"AK3","secret_access_key":"SK3","client":"kb","reload":true})"));
  EXPECT_EQ(other.status, 502);
  EXPECT_EQ(other.error_code, "NODE_RELOAD_FAILED");
  EXPECT_NE(json::parse(other.body)["error"]["message"].get<std::string>().find(
                "reloaded a keystore with digest " + digest),
            std::string::npos);
}

TEST_F(RoutesTest, AReloadSendsNoPasswordForAKeystoreThatHasNone) {
  WritePasswordFile("");
  ASSERT_EQ(MakeRouter(NodeHooks{}).Handle(Post(kBody)).status, 200);  // made without one
  WritePasswordFile("configured-but-unused");  // the node would refuse it for this keystore
  std::string password_seen = "unset";
  NodeHooks hooks;
  hooks.reload = [&](const std::string&, const std::string& password) {
    password_seen = password;
    return Result<node::ReloadOutcome>(node::ReloadOutcome{"node-1", true, "", ""});
  };
  EXPECT_EQ(MakeRouter(hooks)
                .Handle({"DELETE", "/keystore?client=nobody&reload=true", auth_header_, ""})
                .status,
            200);
  EXPECT_EQ(password_seen, "");
}

TEST_F(RoutesTest, WithoutReloadTheNodeIsNotAskedToReload) {
  WritePasswordFile("");
  bool reloaded = false;
  NodeHooks hooks;
  hooks.reload = [&](const std::string&, const std::string&) {
    reloaded = true;
    return Result<node::ReloadOutcome>(node::ReloadOutcome{"n", true, "", ""});
  };
  EXPECT_EQ(MakeRouter(hooks).Handle(Post(kBody)).status, 200);
  EXPECT_FALSE(reloaded);
}

TEST_F(RoutesTest, PassthroughForbiddenIs403AndUnauthorizedIs401WithAChallenge) {
  WritePasswordFile("");
  Authenticator passthrough = Authenticator::Passthrough([](const std::string& header) {
    if (header == "Bearer monitor-only") {
      return Result<std::string>(MakeError(kForbidden, "user lacks manage"));
    }
    return Result<std::string>(MakeError(kUnauthorized, "not accepted"));
  });
  Router router(service_, passthrough, NodeHooks{}, metrics_);
  Response forbidden = router.Handle({"POST", "/keystore", "Bearer monitor-only", kBody});
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_EQ(forbidden.error_code, "FORBIDDEN");
  Response unknown = router.Handle({"POST", "/keystore", "Bearer nobody", kBody});
  EXPECT_EQ(unknown.status, 401);
  ASSERT_EQ(unknown.headers.size(), 1u);
  EXPECT_EQ(unknown.headers[0].first, "WWW-Authenticate");
  EXPECT_TRUE(keystore_bytes().empty());
}

TEST_F(RoutesTest, MetricsCountEveryRouteAndNeedNoCredentials) {
  WritePasswordFile("");
  Router router = MakeRouter(NodeHooks{});
  EXPECT_EQ(router.Handle(Post(kBody)).status, 200);
  EXPECT_EQ(router.Handle({"POST", "/keystore", "", kBody}).status, 401);
  EXPECT_EQ(router.Handle({"GET", "/no/such/path/abc", "", ""}).status, 404);
  Response m = router.Handle({"GET", "/metrics", "", ""});
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(
      m.body.find(R"(es_agent_http_requests_total{route="/keystore",method="POST",code="200"} 1)"),
      std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find(R"(route="other",method="GET",code="404"} 1)"), std::string::npos);
  EXPECT_EQ(m.body.find("/no/such/path"), std::string::npos);  // unknown paths are not labels
  EXPECT_NE(m.body.find(R"(es_agent_keystore_changes_total{operation="write",result="ok"} 1)"),
            std::string::npos);
}

}  // namespace
}  // namespace agent::http

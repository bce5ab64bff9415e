// The agent over real HTTP on a loopback port: status codes, JSON errors, limits, and that
// the keystore is untouched by every refused request.
#include <gtest/gtest.h>

#include <utility>  // before Asio: Boost 1.74 under C++20 with GCC 12 needs it

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "crypto/crypto.h"
#include "http/server.h"
#include "keystore/codec.h"
#include "storage/keystore_file.h"
#include "test_util.h"

namespace agent::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using nlohmann::json;

struct Reply {
  int status = 0;
  json body;
  std::string allow;
  std::string www_authenticate;
};

// One request on a fresh connection, as a job's curl would send it.
Reply Send(uint16_t port, bhttp::verb verb, const std::string& target, const std::string& body,
           const std::string& authorization = "", const std::string& extra_header = "") {
  asio::io_context ioc;
  asio::ip::tcp::socket socket(ioc);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  bhttp::request<bhttp::string_body> req{verb, target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  if (!authorization.empty()) req.set(bhttp::field::authorization, authorization);
  if (!extra_header.empty()) req.set("X-Padding", extra_header);
  req.body() = body;
  req.prepare_payload();
  bhttp::write(socket, req);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(socket, buffer, res);
  Reply r;
  r.status = res.result_int();
  r.body = json::parse(res.body(), nullptr, false);
  r.allow = std::string(res[bhttp::field::allow]);
  r.www_authenticate = std::string(res[bhttp::field::www_authenticate]);
  return r;
}

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    service_ = std::make_unique<service::KeystoreService>(
        service::ServiceOptions{dir_.path(), keystore::Product::kElasticsearch, "8.10.0",
                                std::nullopt, nullptr, nullptr, std::nullopt});
    router_ = std::make_unique<Router>(*service_, auth_, NodeHooks{}, metrics_);
    ServerOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    options.max_connections = max_connections_;
    auto server = Server::Listen(options, *router_, log_);
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server.value());
    thread_ = std::thread([this] { server_->Run(false); });
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (thread_.joinable()) thread_.join();
  }
  uint16_t port() const { return server_->port(); }
  std::string keystore_bytes() const {
    return agent::testing::ReadFileOrEmpty(dir_.path() / "elasticsearch.keystore");
  }

  const std::string good_auth_ = BasicAuthorization({"elastic", "s3cr3t"});
  int max_connections_ = 256;
  agent::testing::TempDir dir_;
  std::string LogText() const { return agent::testing::ReadFileOrEmpty(log_path_); }

  // Requests are logged to a file of their own, not the tests' output (nor the config dir).
  agent::testing::TempDir log_dir_;
  const std::filesystem::path log_path_ = log_dir_.path() / "agent.log";
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> log_file_{std::fopen(log_path_.c_str(), "w"),
                                                            &std::fclose};
  Logger log_{LogLevel::kInfo, log_file_.get()};
  Authenticator auth_ = Authenticator::Static({"elastic", "s3cr3t"});
  Metrics metrics_;
  std::unique_ptr<service::KeystoreService> service_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

const std::string kBody = R"({"access_key_id":"AK","secret_access_key":"SK","client":"kb"})";

TEST_F(HttpTest, HealthNeedsNoCredentials) {
  Reply r = Send(port(), bhttp::verb::get, "/health", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body["status"], "ok");
  EXPECT_EQ(r.body["keystore"]["exists"], false);
  EXPECT_EQ(r.body["keystore"]["path"], (dir_.path() / "elasticsearch.keystore").string());
  EXPECT_TRUE(r.body["keystore"]["format_version"].is_null());
}

TEST_F(HttpTest, PostKeystoreWritesAndAnswersWithTheDigest) {
  Reply r = Send(port(), bhttp::verb::post, "/keystore", kBody, good_auth_);
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["settings"],
            json::array({"s3.client.kb.access_key", "s3.client.kb.secret_key"}));
  EXPECT_EQ(r.body["sha256"], crypto::Sha256Hex(keystore_bytes()));
  EXPECT_EQ(r.body["format_version"], 5);
  Reply h = Send(port(), bhttp::verb::get, "/health", "");
  EXPECT_EQ(h.body["keystore"]["format_version"], 5);
}

TEST_F(HttpTest, RefusedRequestsGetTheirStatusAndLeaveTheKeystoreAlone) {
  ASSERT_EQ(Send(port(), bhttp::verb::post, "/keystore", kBody, good_auth_).status, 200);
  const std::string before = keystore_bytes();
  struct Case {
    bhttp::verb verb;
    const char* target;
    std::string body;
    std::string auth;
    int status;
    const char* code;
  };
  const Case cases[] = {
      {bhttp::verb::post, "/keystore", kBody, "", 401, "UNAUTHORIZED"},
      {bhttp::verb::post, "/keystore", kBody, BasicAuthorization({"elastic", "wrong"}), 401,
       "UNAUTHORIZED"},
      {bhttp::verb::post, "/keystore", "{nope", good_auth_, 400, "REQUEST_NOT_JSON"},
      {bhttp::verb::post, "/keystore", R"({"access_key_id":"AK"})", good_auth_, 400,
       "FIELD_MISSING"},
      {bhttp::verb::post, "/keystore",
       R"({"access_key_id":"AK","secret_access_key":"SK","client":"A B"})", good_auth_, 400,
       "CLIENT_NAME_INVALID"},
      {bhttp::verb::post, "/keystore", std::string(70 * 1024, ' '), good_auth_, 413,
       "BODY_TOO_LARGE"},
      {bhttp::verb::put, "/keystore", kBody, good_auth_, 405, "METHOD_NOT_ALLOWED"},
      {bhttp::verb::post, "/keystore?x=1", kBody, good_auth_, 400, "FIELD_UNKNOWN"},
      {bhttp::verb::get, "/keystore?x=1", "", good_auth_, 400, "FIELD_UNKNOWN"},
      {bhttp::verb::get, "/keystore", "", "", 401, "UNAUTHORIZED"},
      {bhttp::verb::delete_, "/keystore?client=kb", "", "", 401, "UNAUTHORIZED"},
      {bhttp::verb::delete_, "/keystore", "", good_auth_, 400, "FIELD_MISSING"},
      {bhttp::verb::delete_, "/keystore?client=Bad", "", good_auth_, 400, "CLIENT_NAME_INVALID"},
      {bhttp::verb::delete_, "/keystore?client=a&client=b", "", good_auth_, 400, "FIELD_INVALID"},
      {bhttp::verb::delete_, "/keystore?name=x", "", good_auth_, 400, "FIELD_UNKNOWN"},
      {bhttp::verb::post, "/health", "", "", 405, "METHOD_NOT_ALLOWED"},
      {bhttp::verb::get, "/nope", "", "", 404, "NOT_FOUND"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.target) + " " + std::to_string(c.status));
    Reply r = Send(port(), c.verb, c.target, c.body, c.auth);
    EXPECT_EQ(r.status, c.status);
    EXPECT_EQ(r.body["error"]["code"], c.code);
    EXPECT_TRUE(r.body["error"]["message"].is_string());
  }
  EXPECT_EQ(keystore_bytes(), before);
  // Every answer is counted, the server's own (413) as well as the router's.
  const std::string metrics = metrics_.Render();
  for (const char* line :
       {"es_agent_http_requests_total{route=\"/keystore\",method=\"POST\",code=\"413\"} 1",
        "es_agent_http_requests_total{route=\"/keystore\",method=\"POST\",code=\"401\"} 2",
        "es_agent_http_requests_total{route=\"other\",method=\"GET\",code=\"404\"} 1"}) {
    EXPECT_NE(metrics.find(line), std::string::npos) << line << " in\n" << metrics;
  }
}

TEST_F(HttpTest, ReadsAreAnsweredWhileWritesWaitForTheLock) {
  ASSERT_EQ(Send(port(), bhttp::verb::post, "/keystore", kBody, good_auth_).status, 200);
  // Another writer (the engines' tool, say) holds the lock: the agent's writes queue on it.
  auto held = storage::FileLock::Acquire(dir_.path() / "elasticsearch.keystore.lock",
                                         std::chrono::milliseconds(0));
  ASSERT_TRUE(held.ok());
  std::optional<storage::FileLock> lock(std::move(held.value()));
  std::atomic<int> writes_done{0};
  std::vector<std::thread> writers;
  for (int i = 0; i < 4; ++i) {  // more than the writer threads
    writers.emplace_back([&] {
      Send(port(), bhttp::verb::post, "/keystore", kBody, good_auth_);
      ++writes_done;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let them queue
  EXPECT_EQ(Send(port(), bhttp::verb::get, "/keystore", "", good_auth_).status, 200);
  EXPECT_EQ(Send(port(), bhttp::verb::get, "/ready", "").status, 200);
  EXPECT_EQ(Send(port(), bhttp::verb::get, "/metrics", "").status, 200);
  // All three came back while every write still waited (the lock is held 10 s at least).
  EXPECT_EQ(writes_done.load(), 0);
  lock.reset();  // the other writer is done: the queued writes go through
  for (auto& t : writers) t.join();
  EXPECT_EQ(writes_done.load(), 4);
}

TEST_F(HttpTest, ConcurrentWritesEndWithOneMatchingPair) {
  // 200 callers at once, each with its own key pair for the same client: the writes are
  // serialised, so the keystore ends with the access and secret key of one and the same call.
  constexpr int kCallers = 200;
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      const std::string n = std::to_string(i);
      json body = {{"access_key_id", "AK" + n}, {"secret_access_key", "SK" + n}};
      if (Send(port(), bhttp::verb::post, "/keystore", body.dump(), good_auth_).status == 200) {
        ++ok;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(ok.load(), kCallers);
  auto ks = keystore::Open(keystore_bytes(), keystore::Product::kElasticsearch, "");
  ASSERT_TRUE(ks.ok()) << ks.error().message;
  const std::string access = ks.value().Find("s3.client.default.access_key")->value;
  const std::string secret = ks.value().Find("s3.client.default.secret_key")->value;
  EXPECT_EQ(access.substr(2), secret.substr(2));
  EXPECT_EQ(ks.value().entries.size(), 3u);
}

class HttpCapTest : public HttpTest {
 protected:
  void SetUp() override {
    max_connections_ = 8;
    HttpTest::SetUp();
  }
};

TEST_F(HttpCapTest, ConnectionsOverTheCapGet503AndTheAgentStaysHealthy) {
  asio::io_context ioc;
  std::vector<asio::ip::tcp::socket> idle;
  for (int i = 0; i < 8; ++i) {  // fill the cap with connections that send nothing
    idle.emplace_back(ioc);
    idle.back().connect({asio::ip::make_address("127.0.0.1"), port()});
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the server count them
  Reply refused = Send(port(), bhttp::verb::get, "/health", "");
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.body["error"]["code"], "TOO_MANY_CONNECTIONS");
  EXPECT_NE(metrics_.Render().find("es_agent_connections_refused_total{answer=\"503\"} 1"),
            std::string::npos);
  idle.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(Send(port(), bhttp::verb::get, "/health", "").status, 200);
}

// A raw request on a fresh connection; the answer's status line, or "" when the connection
// closed without one.
std::string RawStatusLine(uint16_t port, const std::string& bytes) {
  asio::io_context ioc;
  asio::ip::tcp::socket socket(ioc);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  boost::system::error_code ec;
  asio::write(socket, asio::buffer(bytes), ec);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(socket, buffer, res, ec);
  if (ec) return "";
  return std::to_string(res.result_int()) + " " +
         nlohmann::json::parse(res.body(), nullptr, false).value("/error/code"_json_pointer, "");
}

TEST_F(HttpTest, ChunkedBodiesAreRefusedBeforeTheirTrailerIsRead) {
  // A trailer field of 70,000 bytes once threw out of the parser and ended the process.
  const std::string huge_trailer =
      "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
      "\r\n\r\n0\r\nX: " +
      std::string(70000, 'a') + "\r\n\r\n";
  EXPECT_EQ(RawStatusLine(port(), huge_trailer), "411 LENGTH_REQUIRED");
  const std::string chunked_post =
      "POST /keystore HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n";
  EXPECT_EQ(RawStatusLine(port(), chunked_post), "411 LENGTH_REQUIRED");
  EXPECT_EQ(Send(port(), bhttp::verb::get, "/health", "").status, 200);  // still alive
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "elasticsearch.keystore"));
}

TEST_F(HttpTest, TwoAuthorizationHeadersAreRefused) {
  const std::string two = "GET /keystore HTTP/1.1\r\nHost: x\r\nAuthorization: " + good_auth_ +
                          "\r\nAuthorization: Basic eDp5\r\n\r\n";
  EXPECT_EQ(RawStatusLine(port(), two), "400 FIELD_INVALID");
}

// Sends `bytes` on one connection and reads `count` responses from it, the first `heads` of
// them as answers to HEAD (headers only), as a keep-alive client would.
std::vector<bhttp::response<bhttp::string_body>> Exchange(uint16_t port, const std::string& bytes,
                                                          int heads, int count) {
  asio::io_context ioc;
  asio::ip::tcp::socket socket(ioc);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(socket, asio::buffer(bytes));
  beast::flat_buffer buffer;
  std::vector<bhttp::response<bhttp::string_body>> responses;
  for (int i = 0; i < count; ++i) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.skip(i < heads);  // a HEAD answer has no body, whatever its Content-Length says
    boost::system::error_code ec;
    bhttp::read(socket, buffer, parser, ec);
    if (ec) break;
    responses.push_back(parser.release());
  }
  return responses;
}

TEST_F(HttpTest, EndpointsWithoutCredentialsIgnoreAuthorizationHeaders) {
  for (const char* path : {"/health", "/metrics", "/ready"}) {
    const std::string two = std::string("GET ") + path +
                            " HTTP/1.1\r\nHost: x\r\nAuthorization: Basic eDp5\r\n"
                            "Authorization: Basic eTp6\r\n\r\n";
    auto r = Exchange(port(), two, 0, 1);
    ASSERT_EQ(r.size(), 1u) << path;
    EXPECT_EQ(r[0].result_int(), 200) << path << ": " << r[0].body();
  }
}

TEST_F(HttpTest, HeadIsAnsweredAsGetWithoutABodyAndKeepsTheConnection) {
  ASSERT_EQ(Send(port(), bhttp::verb::post, "/keystore", kBody, good_auth_).status, 200);
  const std::string head_health = "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string head_keystore =
      "HEAD /keystore HTTP/1.1\r\nHost: x\r\nAuthorization: " + good_auth_ + "\r\n\r\n";
  const std::string head_refused = "HEAD /keystore HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string get_health = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string get_keystore =
      "GET /keystore HTTP/1.1\r\nHost: x\r\nAuthorization: " + good_auth_ + "\r\n\r\n";
  auto r = Exchange(port(), head_health + head_keystore + head_refused + get_health + get_keystore,
                    3, 5);
  ASSERT_EQ(r.size(), 5u);  // a body after a HEAD answer would have broken the next one
  EXPECT_EQ(r[0].result_int(), 200);
  EXPECT_EQ(r[1].result_int(), 200);
  EXPECT_EQ(r[2].result_int(), 401);
  EXPECT_EQ(r[3].result_int(), 200);
  EXPECT_EQ(r[4].result_int(), 200);
  // The Content-Length GET's body has.
  EXPECT_EQ(r[0][bhttp::field::content_length], std::to_string(r[3].body().size()));
  EXPECT_EQ(r[1][bhttp::field::content_length], std::to_string(r[4].body().size()));
  EXPECT_EQ(r[0][bhttp::field::content_type], "application/json");
  EXPECT_TRUE(r[0].body().empty());
  EXPECT_EQ(json::parse(r[4].body())["exists"], true);
}

TEST_F(HttpTest, ALongMethodIsCutInTheAnswerAndTheLog) {
  const std::string method(8000, 'Q');
  asio::io_context ioc;
  asio::ip::tcp::socket socket(ioc);
  socket.connect({asio::ip::make_address("127.0.0.1"), port()});
  asio::write(socket, asio::buffer(method + " /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(socket, buffer, res);
  EXPECT_EQ(res.result_int(), 405);
  const std::string message = json::parse(res.body())["error"]["message"];
  EXPECT_NE(message.find(std::string(200, 'Q')), std::string::npos) << message;
  EXPECT_EQ(message.find(std::string(201, 'Q')), std::string::npos) << message.size();
  const std::string log = LogText();
  EXPECT_NE(log.find("\"method\":\"" + std::string(200, 'Q') + "\""), std::string::npos) << log;
  EXPECT_EQ(log.find(std::string(201, 'Q')), std::string::npos) << log.size();
}

TEST_F(HttpTest, OversizedHeadersAreRefused) {
  Reply r = Send(port(), bhttp::verb::get, "/health", "", "", std::string(20 * 1024, 'x'));
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(r.body["error"]["code"], "HEADER_TOO_LARGE");
}

TEST_F(HttpTest, A405NamesTheAllowedMethods) {
  EXPECT_EQ(Send(port(), bhttp::verb::put, "/keystore", "").allow, "GET, HEAD, POST, DELETE");
  EXPECT_EQ(Send(port(), bhttp::verb::post, "/ready", "").allow, "GET, HEAD");
}

TEST_F(HttpTest, A401ChallengesForBasicCredentials) {
  Reply r = Send(port(), bhttp::verb::post, "/keystore", kBody);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.www_authenticate, "Basic realm=\"es-agent\"");
}

TEST_F(HttpTest, GetKeystoreListsNamesAndDigestButNoValue) {
  EXPECT_EQ(Send(port(), bhttp::verb::get, "/keystore", "", good_auth_).body["exists"], false);
  ASSERT_EQ(Send(port(), bhttp::verb::post, "/keystore", kBody, good_auth_).status, 200);
  Reply r = Send(port(), bhttp::verb::get, "/keystore", "", good_auth_);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["settings"],
            json::array({"keystore.seed", "s3.client.kb.access_key", "s3.client.kb.secret_key"}));
  EXPECT_EQ(r.body["sha256"], crypto::Sha256Hex(keystore_bytes()));
  EXPECT_EQ(r.body["format_version"], 5);
  EXPECT_EQ(r.body["has_password"], false);
  EXPECT_EQ(r.body.dump().find("\"SK\""), std::string::npos);
}

TEST_F(HttpTest, DeleteRemovesOneClientInOneSave) {
  const std::string other = R"({"access_key_id":"AK2","secret_access_key":"SK2","client":"other"})";
  ASSERT_EQ(Send(port(), bhttp::verb::post, "/keystore", kBody, good_auth_).status, 200);
  ASSERT_EQ(Send(port(), bhttp::verb::post, "/keystore", other, good_auth_).status, 200);
  Reply r = Send(port(), bhttp::verb::delete_, "/keystore?client=kb", "", good_auth_);
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["settings"],
            json::array({"s3.client.kb.access_key", "s3.client.kb.secret_key"}));
  EXPECT_EQ(r.body["changed"], true);
  EXPECT_EQ(r.body["sha256"], crypto::Sha256Hex(keystore_bytes()));
  auto ks = keystore::Open(keystore_bytes(), keystore::Product::kElasticsearch, "");
  ASSERT_TRUE(ks.ok());
  EXPECT_EQ(ks.value().Find("s3.client.kb.access_key"), nullptr);
  EXPECT_EQ(ks.value().Find("s3.client.other.secret_key")->value, "SK2");

  // Deleting again changes nothing and saves nothing.
  const std::string before = keystore_bytes();
  Reply again = Send(port(), bhttp::verb::delete_, "/keystore?client=kb", "", good_auth_);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body["changed"], false);
  EXPECT_EQ(keystore_bytes(), before);
}

TEST_F(HttpTest, DeleteOnAMissingKeystoreCreatesNothing) {
  Reply r = Send(port(), bhttp::verb::delete_, "/keystore?client=kb", "", good_auth_);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body["changed"], false);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "elasticsearch.keystore"));
}

TEST_F(HttpTest, ReadyChecksTheKeystoreWithoutDecrypting) {
  Reply none = Send(port(), bhttp::verb::get, "/ready", "");
  EXPECT_EQ(none.status, 200);
  EXPECT_EQ(none.body["status"], "ready");
  EXPECT_EQ(none.body["keystore"]["exists"], false);
  EXPECT_TRUE(none.body["keystore"]["has_password"].is_null());
  ASSERT_EQ(Send(port(), bhttp::verb::post, "/keystore", kBody, good_auth_).status, 200);
  Reply written = Send(port(), bhttp::verb::get, "/ready", "");
  EXPECT_EQ(written.status, 200);
  EXPECT_EQ(written.body["keystore"]["exists"], true);
  EXPECT_EQ(written.body["keystore"]["format_version"], 5);
  EXPECT_EQ(written.body["keystore"]["has_password"], false);
  std::string damaged = keystore_bytes();
  damaged[damaged.size() - 1] ^= 1;  // the CRC
  agent::testing::WriteFile(dir_.path() / "elasticsearch.keystore", damaged);
  Reply r = Send(port(), bhttp::verb::get, "/ready", "");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body["error"]["code"], "KEYSTORE_CORRUPT");
  EXPECT_EQ(Send(port(), bhttp::verb::get, "/health", "").status, 200);  // still alive
}

}  // namespace
}  // namespace agent::http

// The agent over real HTTPS on a loopback port, with certificates made for each test: the
// handshake and its verification, client certificates, renewal without a restart (in place
// and by a `..data` symlink swap), bad files at start, and the limits over TLS.
#include <gtest/gtest.h>

#include <utility>  // before Asio: Boost 1.74 under C++20 with GCC 12 needs it

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "app/health_probe.h"
#include "http/server.h"
#include "node/node_client.h"
#include "test_pki.h"
#include "test_util.h"

namespace agent::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
namespace fs = std::filesystem;
using agent::testing::CertSpec;
using agent::testing::MakeCa;
using agent::testing::MakeCertificate;
using agent::testing::MakeClientCert;
using agent::testing::PemPair;
using agent::testing::SerialOfPem;
using agent::testing::WriteFile;
using nlohmann::json;

constexpr auto kClientTimeout = std::chrono::seconds(10);
constexpr char kDnsName[] = "es-0.es-headless.default.svc.cluster.local";

// Runs one asynchronous operation on `ioc` until it ends, or its stream's deadline ends it.
template <class Start>
beast::error_code RunOne(asio::io_context& ioc, Start start) {
  beast::error_code result;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

// What a client trusts and shows: the CA that must have signed the server's certificate, the
// name (IP or DNS) that certificate must carry, and optionally a certificate of its own.
struct ClientConfig {
  std::string ca_pem;
  std::string verify_name = "127.0.0.1";
  const PemPair* identity = nullptr;
  int max_version = 0;  // e.g. TLS1_1_VERSION, to try an old protocol
};

struct HttpsReply {
  std::string error;  // empty when a response was read; else the step and its cause
  int status = 0;
  json body;
};

// One HTTPS connection with a verifying client, for one request or several (keep-alive).
class HttpsConnection {
 public:
  HttpsConnection(uint16_t port, const ClientConfig& config)
      : port_(port), context_(ssl::context::tls_client) {
    context_.set_verify_mode(ssl::verify_peer);
    context_.add_certificate_authority(asio::buffer(config.ca_pem));
    if (config.identity) {
      context_.use_certificate_chain(asio::buffer(config.identity->cert));
      context_.use_private_key(asio::buffer(config.identity->key), ssl::context::pem);
    }
    if (config.max_version != 0) {
      SSL_CTX_set_security_level(context_.native_handle(), 0);  // let the old protocol try
      SSL_CTX_set_min_proto_version(context_.native_handle(), 0);
      SSL_CTX_set_max_proto_version(context_.native_handle(), config.max_version);
    }
    stream_.emplace(ioc_, context_);
    SSL* ssl = stream_->native_handle();
    beast::error_code ec;
    asio::ip::make_address(config.verify_name, ec);
    if (!ec) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), config.verify_name.c_str());
    } else {
      SSL_set1_host(ssl, config.verify_name.c_str());
      SSL_set_tlsext_host_name(ssl, config.verify_name.c_str());
    }
  }

  // Empty on success, else "connect: ..." or "handshake: ...".
  std::string Connect() {
    auto& tcp = beast::get_lowest_layer(*stream_);
    tcp.expires_after(kClientTimeout);
    const asio::ip::tcp::endpoint server(asio::ip::make_address("127.0.0.1"), port_);
    if (auto ec = RunOne(ioc_, [&](auto handler) { tcp.async_connect(server, handler); })) {
      return "connect: " + ec.message();
    }
    tcp.expires_after(kClientTimeout);
    if (auto ec = RunOne(ioc_, [&](auto handler) {
          stream_->async_handshake(ssl::stream_base::client, handler);
        })) {
      return "handshake: " + ec.message();
    }
    return "";
  }

  HttpsReply Send(bhttp::verb verb, const std::string& target, const std::string& body = "",
                  const std::string& padding = "") {
    bhttp::request<bhttp::string_body> req{verb, target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    if (!padding.empty()) req.set("X-Padding", padding);
    req.body() = body;
    req.prepare_payload();
    auto& tcp = beast::get_lowest_layer(*stream_);
    HttpsReply reply;
    tcp.expires_after(kClientTimeout);
    if (auto ec = RunOne(ioc_, [&](auto h) { bhttp::async_write(*stream_, req, h); })) {
      reply.error = "write: " + ec.message();
      return reply;
    }
    bhttp::response<bhttp::string_body> res;
    tcp.expires_after(kClientTimeout);
    if (auto ec = RunOne(ioc_, [&](auto h) { bhttp::async_read(*stream_, buffer_, res, h); })) {
      reply.error = "read: " + ec.message();
      return reply;
    }
    reply.status = res.result_int();
    reply.body = json::parse(res.body(), nullptr, false);
    return reply;
  }

  // The serial of the certificate the server presented, in hex.
  std::string ServerSerial() {
    X509* cert = SSL_get1_peer_certificate(stream_->native_handle());
    if (!cert) return "";
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
    char* hex = BN_bn2hex(bn);
    std::string serial = hex;
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(cert);
    return serial;
  }

 private:
  uint16_t port_;
  asio::io_context ioc_;
  ssl::context context_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;  // after context_ is set up
  beast::flat_buffer buffer_;
};

struct Fetched {
  HttpsReply reply;
  std::string serial;  // of the server's certificate; empty when no handshake was made
};

Fetched Fetch(uint16_t port, const ClientConfig& config, bhttp::verb verb = bhttp::verb::get,
              const std::string& target = "/health", const std::string& body = "",
              const std::string& padding = "") {
  HttpsConnection connection(port, config);
  Fetched fetched;
  if (std::string error = connection.Connect(); !error.empty()) {
    fetched.reply.error = error;
    return fetched;
  }
  fetched.serial = connection.ServerSerial();
  fetched.reply = connection.Send(verb, target, body, padding);
  return fetched;
}

// A plain HTTP request to `port`: the status, or 0 when no HTTP response came back.
int PlainHttpStatus(uint16_t port) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(kClientTimeout);
  const asio::ip::tcp::endpoint server(asio::ip::make_address("127.0.0.1"), port);
  if (RunOne(ioc, [&](auto h) { stream.async_connect(server, h); })) return 0;
  bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/health", 11};
  req.set(bhttp::field::host, "127.0.0.1");
  if (RunOne(ioc, [&](auto h) { bhttp::async_write(stream, req, h); })) return 0;
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  if (RunOne(ioc, [&](auto h) { bhttp::async_read(stream, buffer, res, h); })) return 0;
  return res.result_int();
}

// curl's %{http_code} ("000" when no response came) for the URL and options in `args`.
std::string CurlStatus(const std::string& args) {
  const std::string command =
      "curl --silent --connect-timeout 5 --max-time 10 -o /dev/null -w '%{http_code}' " + args;
  std::FILE* out = ::popen(command.c_str(), "r");
  if (!out) return "popen failed";
  char buf[64] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, out);
  ::pclose(out);
  return std::string(buf, n);
}

bool HaveCurl() { return std::system("curl --version >/dev/null 2>&1") == 0; }

class TlsTest : public ::testing::Test {
 protected:
  TlsTest()
      : ca_(MakeCa("test CA")),
        other_ca_(MakeCa("unrelated CA")),
        server_(ServerCert(1001, ca_)),
        client_(MakeClientCert("backup job", 2001, ca_)),
        stranger_(MakeClientCert("stranger", 3001, other_ca_)) {
    fs::create_directories(tls_dir());
    WriteFile(tls_dir() / "cert.pem", server_.cert);
    WriteFile(tls_dir() / "key.pem", server_.key);
    WriteFile(tls_dir() / "ca.pem", ca_.cert);
  }
  void TearDown() override {
    if (server_handle_) server_handle_->Stop();
    if (thread_.joinable()) thread_.join();
  }

  static PemPair ServerCert(long serial, const PemPair& ca) {
    return MakeCertificate({.common_name = "es-0",
                            .serial = serial,
                            .dns_names = {kDnsName},
                            .ip_addresses = {"127.0.0.1"}},
                           &ca);
  }
  fs::path tls_dir() const { return dir_.path() / "tls"; }

  TlsOptions Tls(bool require_client_cert = false) const {
    TlsOptions tls;
    tls.cert_file = (tls_dir() / "cert.pem").string();
    tls.key_file = (tls_dir() / "key.pem").string();
    tls.ca_file = (tls_dir() / "ca.pem").string();
    tls.require_client_cert = require_client_cert;
    tls.reload_check_interval = std::chrono::seconds(0);  // every connection looks
    return tls;
  }
  ServerOptions Options(TlsOptions tls) const {
    ServerOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    options.tls = std::move(tls);
    return options;
  }
  Result<std::unique_ptr<Server>> Listen(const ServerOptions& options) {
    service_ = std::make_unique<service::KeystoreService>(
        service::ServiceOptions{dir_.path(), keystore::Product::kElasticsearch, "8.10.0",
                                std::nullopt, nullptr, nullptr, std::nullopt});
    router_ = std::make_unique<Router>(*service_, auth_, NodeHooks{}, metrics_);
    return Server::Listen(options, *router_, log_);
  }
  void Start(const ServerOptions& options) {
    auto server = Listen(options);
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_handle_ = std::move(server.value());
    thread_ = std::thread([this] { server_handle_->Run(false); });
  }
  uint16_t port() const { return server_handle_->port(); }
  ClientConfig Trusting(const PemPair& ca, const PemPair* identity = nullptr) const {
    ClientConfig config;
    config.ca_pem = ca.cert;
    config.identity = identity;
    return config;
  }

  // Lines of the agent's log that contain `text`.
  int LogLinesWith(const std::string& text) const {
    std::ifstream in(log_path_);
    int n = 0;
    for (std::string line; std::getline(in, line);) n += line.find(text) != std::string::npos;
    return n;
  }
  std::string LogText() const { return agent::testing::ReadFileOrEmpty(log_path_); }

  // Replaces a file as most tools do: a new file renamed over the old one.
  static void Replace(const fs::path& path, const std::string& bytes) {
    WriteFile(path.string() + ".new", bytes);
    fs::rename(path.string() + ".new", path);
  }

  agent::testing::TempDir dir_;
  const fs::path log_path_ = dir_.path() / "agent.log";
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> log_file_{std::fopen(log_path_.c_str(), "w"),
                                                            &std::fclose};
  Logger log_{LogLevel::kInfo, log_file_.get()};
  Authenticator auth_ = Authenticator::Static({"elastic", "s3cr3t"});
  Metrics metrics_;
  PemPair ca_, other_ca_, server_, client_, stranger_;
  std::unique_ptr<service::KeystoreService> service_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<Server> server_handle_;
  std::thread thread_;
};

TEST_F(TlsTest, HealthOverHttpsAnswers200WithACertificateThatVerifiesAgainstTheCa) {
  ASSERT_NO_FATAL_FAILURE(Start(Options(Tls())));
  Fetched f = Fetch(port(), Trusting(ca_));
  ASSERT_EQ(f.reply.error, "");
  EXPECT_EQ(f.reply.status, 200);
  EXPECT_EQ(f.reply.body["status"], "ok");
  EXPECT_EQ(f.serial, SerialOfPem(server_.cert));
  EXPECT_EQ(f.serial, "03E9");  // 1001

  // The client really verifies: another CA, or another name, and the handshake fails.
  EXPECT_EQ(Fetch(port(), Trusting(other_ca_)).reply.error.rfind("handshake:", 0), 0u);
  ClientConfig wrong_name = Trusting(ca_);
  wrong_name.verify_name = "es-1.example";
  EXPECT_EQ(Fetch(port(), wrong_name).reply.error.rfind("handshake:", 0), 0u);
  EXPECT_EQ(Fetch(port(), Trusting(ca_)).reply.status, 200);
}

TEST_F(TlsTest, CurlVerifiesTheCertificatesDnsNameAndGets200) {
  if (!HaveCurl()) GTEST_SKIP() << "curl is not installed";
  ASSERT_NO_FATAL_FAILURE(Start(Options(Tls())));
  const std::string url = std::string("https://") + kDnsName + ":" + std::to_string(port());
  const std::string resolve =
      std::string(" --resolve ") + kDnsName + ":" + std::to_string(port()) + ":127.0.0.1 ";
  EXPECT_EQ(CurlStatus("--cacert " + (tls_dir() / "ca.pem").string() + resolve + url + "/health"),
            "200");
  EXPECT_EQ(CurlStatus("--cacert " + (tls_dir() / "ca.pem").string() +
                       " https://127.0.0.1:" + std::to_string(port()) + "/health"),
            "200");
  // A body over the limit: curl gets the 413 although the agent stops reading early.
  WriteFile(dir_.path() / "big.json", std::string(70 * 1024, ' '));
  EXPECT_EQ(CurlStatus("--cacert " + (tls_dir() / "ca.pem").string() + " --data-binary @" +
                       (dir_.path() / "big.json").string() +
                       " https://127.0.0.1:" + std::to_string(port()) + "/keystore"),
            "413");
  // Without the CA curl refuses the certificate; plain HTTP gets no answer at all.
  EXPECT_EQ(CurlStatus(resolve + url + "/health"), "000");
  EXPECT_EQ(CurlStatus("http://127.0.0.1:" + std::to_string(port()) + "/health"), "000");
}

// `es-agent health` as an exec liveness probe: it finds the agent from the serve options,
// verifies it against its CA and its own certificate's name, and shows that certificate where
// client certificates are required.
TEST_F(TlsTest, TheHealthProbeReachesAnAgentThatRequiresClientCertificates) {
  const PemPair both = MakeCertificate({.common_name = "es-0",
                                        .serial = 1002,
                                        .also_client = true,
                                        .dns_names = {kDnsName},
                                        .ip_addresses = {}},
                                       &ca_);
  WriteFile(tls_dir() / "cert.pem", both.cert);
  WriteFile(tls_dir() / "key.pem", both.key);
  Start(Options(Tls(/*require_client_cert=*/true)));
  std::map<std::string, std::string> env = {
      {"AGENT_LISTEN_ADDRESS", "127.0.0.1"},
      {"AGENT_PORT", std::to_string(port())},
      {"AGENT_TLS_CERT_FILE", (tls_dir() / "cert.pem").string()},
      {"AGENT_TLS_KEY_FILE", (tls_dir() / "key.pem").string()},
      {"AGENT_TLS_CA_FILE", (tls_dir() / "ca.pem").string()},
      {"AGENT_TLS_CLIENT_AUTH", "require"}};
  auto lookup = [&env](const char* name) -> std::optional<std::string> {
    auto it = env.find(name);
    return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  std::ostringstream out, err;
  EXPECT_EQ(app::RunHealthProbe({}, lookup, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), "ok\n");
  // Without the client certificate the same agent refuses the probe: the probe's own check.
  auto parsed = app::ParseServeOptions({}, lookup);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  auto endpoint = app::HealthProbeEndpoint(parsed.value());
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  EXPECT_EQ(endpoint.value().server_name, kDnsName);
  EXPECT_EQ(endpoint.value().address.host, "127.0.0.1");
  node::NodeEndpoint anonymous = endpoint.value();
  anonymous.client_cert_file.clear();
  EXPECT_FALSE(node::NodeClient(anonymous, "").Send("GET", "/health", "", "-").ok());
  // A stopped agent: exit 1, the reason named.
  server_handle_->Stop();
  thread_.join();
  server_handle_.reset();
  std::ostringstream out2, err2;
  EXPECT_EQ(app::RunHealthProbe({}, lookup, out2, err2), 1);
  EXPECT_NE(err2.str().find("did not answer"), std::string::npos) << err2.str();
}

TEST_F(TlsTest, PlainHttpToTheTlsPortIsClosedAndTheServerStaysHealthy) {
  ASSERT_NO_FATAL_FAILURE(Start(Options(Tls())));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(PlainHttpStatus(port()), 0);
  EXPECT_EQ(Fetch(port(), Trusting(ca_)).reply.status, 200);
  // Said once, not three times.
  EXPECT_EQ(LogLinesWith("plain HTTP sent to the HTTPS port"), 1) << LogText();
}

TEST_F(TlsTest, OldProtocolsAreRefused) {
  ASSERT_NO_FATAL_FAILURE(Start(Options(Tls())));
  ClientConfig old = Trusting(ca_);
  old.max_version = TLS1_1_VERSION;
  EXPECT_EQ(Fetch(port(), old).reply.error.rfind("handshake:", 0), 0u);
  ClientConfig tls12 = Trusting(ca_);
  tls12.max_version = TLS1_2_VERSION;
  EXPECT_EQ(Fetch(port(), tls12).reply.status, 200);
}

TEST_F(TlsTest, RequiredClientCertificatesAreCheckedAtTheHandshake) {
  ASSERT_NO_FATAL_FAILURE(Start(Options(Tls(/*require_client_cert=*/true))));
  // TLS 1.3 lets the client finish its side before the server checks its certificate, so the
  // refusal shows on the first read; either way no HTTP answer comes.
  for (int i = 0; i < 2; ++i) {
    Fetched none = Fetch(port(), Trusting(ca_));
    EXPECT_EQ(none.reply.status, 0);
    EXPECT_NE(none.reply.error, "");
    Fetched stranger = Fetch(port(), Trusting(ca_, &stranger_));
    EXPECT_EQ(stranger.reply.status, 0);
    EXPECT_NE(stranger.reply.error, "");
  }
  ClientConfig tls12 = Trusting(ca_);
  tls12.max_version = TLS1_2_VERSION;
  EXPECT_EQ(Fetch(port(), tls12).reply.error.rfind("handshake:", 0), 0u);

  Fetched right = Fetch(port(), Trusting(ca_, &client_));
  EXPECT_EQ(right.reply.error, "");
  EXPECT_EQ(right.reply.status, 200);

  // Why, once per reason however often it happens.
  EXPECT_EQ(LogLinesWith("the client sent no certificate"), 1) << LogText();
  EXPECT_EQ(LogLinesWith("client certificate not accepted: unable to get local issuer"), 1)
      << LogText();
  EXPECT_EQ(LogLinesWith("TLS_HANDSHAKE_FAILED"), 2) << LogText();
}

TEST_F(TlsTest, CurlWithAndWithoutAClientCertificate) {
  if (!HaveCurl()) GTEST_SKIP() << "curl is not installed";
  ASSERT_NO_FATAL_FAILURE(Start(Options(Tls(/*require_client_cert=*/true))));
  WriteFile(dir_.path() / "client.pem", client_.cert);
  WriteFile(dir_.path() / "client-key.pem", client_.key);
  const std::string base = "--cacert " + (tls_dir() / "ca.pem").string() +
                           " https://127.0.0.1:" + std::to_string(port()) + "/health";
  EXPECT_EQ(CurlStatus("--cert " + (dir_.path() / "client.pem").string() + " --key " +
                       (dir_.path() / "client-key.pem").string() + " " + base),
            "200");
  EXPECT_EQ(CurlStatus(base), "000");
}

TEST_F(TlsTest, ARenewedCertificateIsServedToNewConnectionsWithoutARestart) {
  ASSERT_NO_FATAL_FAILURE(Start(Options(Tls())));
  HttpsConnection held(port(), Trusting(ca_));  // in flight across the renewal
  ASSERT_EQ(held.Connect(), "");
  ASSERT_EQ(held.Send(bhttp::verb::get, "/health").status, 200);
  EXPECT_EQ(held.ServerSerial(), "03E9");

  const PemPair renewed = ServerCert(1002, ca_);
  Replace(tls_dir() / "key.pem", renewed.key);
  Replace(tls_dir() / "cert.pem", renewed.cert);
  Fetched f = Fetch(port(), Trusting(ca_));
  EXPECT_EQ(f.reply.status, 200);
  EXPECT_EQ(f.serial, "03EA");
  EXPECT_EQ(Fetch(port(), Trusting(ca_)).serial, "03EA");
  EXPECT_EQ(LogLinesWith("TLS certificate reloaded"), 1) << LogText();

  // The connection made before keeps its session and its context.
  EXPECT_EQ(held.Send(bhttp::verb::get, "/health").status, 200);
  EXPECT_EQ(held.ServerSerial(), "03E9");
}

TEST_F(TlsTest, ASymlinkSwapOfTheSecretVolumeIsPickedUp) {
  agent::testing::SecretVolume volume(dir_.path() / "volume");
  volume.Renew({{"cert.pem", server_.cert}, {"key.pem", server_.key}, {"ca.pem", ca_.cert}});
  TlsOptions tls = Tls(/*require_client_cert=*/true);
  tls.cert_file = volume.Path("cert.pem").string();
  tls.key_file = volume.Path("key.pem").string();
  tls.ca_file = volume.Path("ca.pem").string();
  ASSERT_NO_FATAL_FAILURE(Start(Options(tls)));
  EXPECT_EQ(Fetch(port(), Trusting(ca_, &client_)).serial, "03E9");

  // Same CA, new server certificate.
  const PemPair renewed = ServerCert(1002, ca_);
  volume.Renew({{"cert.pem", renewed.cert}, {"key.pem", renewed.key}, {"ca.pem", ca_.cert}});
  Fetched f = Fetch(port(), Trusting(ca_, &client_));
  EXPECT_EQ(f.reply.status, 200);
  EXPECT_EQ(f.serial, "03EA");

  // A new CA: the server's certificate and the clients' come from it, the old client is out.
  const PemPair new_ca = MakeCa("next CA");
  const PemPair new_server = ServerCert(1003, new_ca);
  const PemPair new_client = MakeClientCert("backup job", 2002, new_ca);
  volume.Renew(
      {{"cert.pem", new_server.cert}, {"key.pem", new_server.key}, {"ca.pem", new_ca.cert}});
  Fetched next = Fetch(port(), Trusting(new_ca, &new_client));
  EXPECT_EQ(next.reply.status, 200);
  EXPECT_EQ(next.serial, "03EB");
  EXPECT_EQ(Fetch(port(), Trusting(new_ca, &client_)).reply.status, 0);
}

TEST_F(TlsTest, ABrokenRenewalKeepsTheOldCertificateAndWarnsOncePerChange) {
  ASSERT_NO_FATAL_FAILURE(Start(Options(Tls())));
  const PemPair renewed = ServerCert(1002, ca_);
  const PemPair unrelated = ServerCert(1009, ca_);

  // Half renewed: the new certificate with a key that is not its own.
  Replace(tls_dir() / "cert.pem", renewed.cert);
  Replace(tls_dir() / "key.pem", unrelated.key);
  for (int i = 0; i < 3; ++i) {
    Fetched f = Fetch(port(), Trusting(ca_));
    EXPECT_EQ(f.reply.status, 200);
    EXPECT_EQ(f.serial, "03E9");
  }
  const std::string key_path = (tls_dir() / "key.pem").string();
  EXPECT_EQ(LogLinesWith(key_path + " does not match the certificate in"), 1) << LogText();

  // Another change, still broken (the key gone): one more warning, the old certificate.
  fs::remove(tls_dir() / "key.pem");
  EXPECT_EQ(Fetch(port(), Trusting(ca_)).serial, "03E9");
  EXPECT_EQ(Fetch(port(), Trusting(ca_)).serial, "03E9");
  EXPECT_EQ(LogLinesWith(key_path + ": cannot open: No such file or directory"), 1) << LogText();
  EXPECT_EQ(LogLinesWith("still serving the previous certificate"), 2) << LogText();

  // The renewal completed: served at once.
  Replace(tls_dir() / "key.pem", renewed.key);
  EXPECT_EQ(Fetch(port(), Trusting(ca_)).serial, "03EA");

  // No key ever reaches the log.
  const std::string log = LogText();
  EXPECT_EQ(log.find("PRIVATE KEY"), std::string::npos);
  for (const PemPair* pair : {static_cast<const PemPair*>(&server_), &renewed, &unrelated}) {
    const std::string body_line = pair->key.substr(pair->key.find('\n') + 1, 40);
    EXPECT_EQ(log.find(body_line), std::string::npos);
  }
}

TEST_F(TlsTest, TheFilesAreLookedAtAtMostOncePerInterval) {
  TlsOptions tls = Tls();
  tls.reload_check_interval = std::chrono::seconds(3600);
  ASSERT_NO_FATAL_FAILURE(Start(Options(tls)));
  const PemPair renewed = ServerCert(1002, ca_);
  Replace(tls_dir() / "key.pem", renewed.key);
  Replace(tls_dir() / "cert.pem", renewed.cert);
  EXPECT_EQ(Fetch(port(), Trusting(ca_)).serial, "03E9");
}

TEST_F(TlsTest, BadFilesAtStartFailListenNamingTheFile) {
  const fs::path cert = tls_dir() / "cert.pem";
  const fs::path key = tls_dir() / "key.pem";
  const fs::path ca = tls_dir() / "ca.pem";
  const PemPair other = ServerCert(1009, ca_);
  struct Case {
    const char* name;
    std::function<void(TlsOptions&)> arrange;
    std::string expected;  // in the message
  };
  const Case cases[] = {
      {"no cert file", [&](TlsOptions& o) { o.cert_file = (tls_dir() / "nope.pem").string(); },
       (tls_dir() / "nope.pem").string() + ": cannot open: No such file or directory"},
      {"cert not PEM", [&](TlsOptions&) { WriteFile(cert, "hello\n"); },
       "TLS certificate file " + cert.string() + ": no PEM certificate in it"},
      {"cert is a directory", [&](TlsOptions& o) { o.cert_file = tls_dir().string(); },
       tls_dir().string() + ": not a regular file"},
      {"key of another cert", [&](TlsOptions&) { WriteFile(key, other.key); },
       "TLS key file " + key.string() + " does not match the certificate in " + cert.string()},
      {"key file holds a cert", [&](TlsOptions&) { WriteFile(key, server_.cert); },
       "TLS key file " + key.string() + ": no unencrypted PEM private key in it"},
      {"encrypted key",
       [&](TlsOptions&) { WriteFile(key, agent::testing::EncryptKey(server_, "pass")); },
       "TLS key file " + key.string() + ": no unencrypted PEM private key in it"},
      {"no key file named", [&](TlsOptions& o) { o.key_file.clear(); }, "without a key file"},
      {"client certs without a CA",
       [&](TlsOptions& o) {
         o.require_client_cert = true;
         o.ca_file.clear();
       },
       "no CA file"},
      {"CA not PEM",
       [&](TlsOptions& o) {
         o.require_client_cert = true;
         WriteFile(ca, "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n");
       },
       "TLS CA file " + ca.string() + ": malformed certificate"},
      {"CA empty",
       [&](TlsOptions& o) {
         o.require_client_cert = true;
         WriteFile(ca, "");
       },
       "TLS CA file " + ca.string() + ": no PEM certificate in it"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    WriteFile(cert, server_.cert);
    WriteFile(key, server_.key);
    WriteFile(ca, ca_.cert);
    TlsOptions tls = Tls();
    c.arrange(tls);
    auto server = Listen(Options(tls));
    ASSERT_FALSE(server.ok());
    EXPECT_EQ(server.error().code, "TLS_CONFIG_INVALID");
    EXPECT_NE(server.error().message.find(c.expected), std::string::npos) << server.error().message;
    EXPECT_EQ(server.error().message.find("PRIVATE KEY"), std::string::npos);
  }
}

TEST_F(TlsTest, OverTheConnectionCapA503ComesOverTls) {
  ServerOptions options = Options(Tls());
  options.max_connections = 2;
  ASSERT_NO_FATAL_FAILURE(Start(options));
  asio::io_context ioc;
  std::vector<asio::ip::tcp::socket> idle;  // connected, no handshake: each holds a slot
  for (int i = 0; i < 2; ++i) {
    idle.emplace_back(ioc);
    idle.back().connect({asio::ip::make_address("127.0.0.1"), port()});
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Fetched refused = Fetch(port(), Trusting(ca_));
  ASSERT_EQ(refused.reply.error, "");
  EXPECT_EQ(refused.serial, "03E9");
  EXPECT_EQ(refused.reply.status, 503);
  EXPECT_EQ(refused.reply.body["error"]["code"], "TOO_MANY_CONNECTIONS");
  idle.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(Fetch(port(), Trusting(ca_)).reply.status, 200);
}

TEST_F(TlsTest, RefusalsAreCappedTooAndEndWithinTheirDeadline) {
  ServerOptions options = Options(Tls());
  options.max_connections = 1;
  ASSERT_NO_FATAL_FAILURE(Start(options));
  asio::io_context ioc;
  std::vector<asio::ip::tcp::socket> idle;  // one session, then one refusal that never shakes
  for (int i = 0; i < 2; ++i) {
    idle.emplace_back(ioc);
    idle.back().connect({asio::ip::make_address("127.0.0.1"), port()});
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  Fetched closed = Fetch(port(), Trusting(ca_));  // beyond both caps: just closed
  EXPECT_EQ(closed.reply.status, 0);
  EXPECT_EQ(closed.reply.error.rfind("handshake:", 0), 0u) << closed.reply.error;
  std::this_thread::sleep_for(std::chrono::milliseconds(2300));  // the refusal's deadline
  EXPECT_EQ(Fetch(port(), Trusting(ca_)).reply.status, 503);
  idle.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(Fetch(port(), Trusting(ca_)).reply.status, 200);
}

TEST_F(TlsTest, BodyAndHeaderLimitsAnswerOverTls) {
  ASSERT_NO_FATAL_FAILURE(Start(Options(Tls())));
  Fetched big =
      Fetch(port(), Trusting(ca_), bhttp::verb::post, "/keystore", std::string(70 * 1024, ' '));
  EXPECT_EQ(big.reply.status, 413) << big.reply.error;
  EXPECT_EQ(big.reply.body["error"]["code"], "BODY_TOO_LARGE");
  Fetched headers =
      Fetch(port(), Trusting(ca_), bhttp::verb::get, "/health", "", std::string(20 * 1024, 'x'));
  EXPECT_EQ(headers.reply.status, 431) << headers.reply.error;
  EXPECT_EQ(headers.reply.body["error"]["code"], "HEADER_TOO_LARGE");
  EXPECT_EQ(Fetch(port(), Trusting(ca_)).reply.status, 200);
}

}  // namespace
}  // namespace agent::http

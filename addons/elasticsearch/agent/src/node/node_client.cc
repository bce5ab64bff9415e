#include "node/node_client.h"

#include <utility>  // before Asio: Boost 1.74 under C++20 with GCC 12 needs it

#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>

#include "crypto/crypto.h"

namespace agent::node {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace {
// The path of a target, for messages: a query may hold anything.
std::string PathOnly(const std::string& target) { return target.substr(0, target.find('?')); }
}  // namespace

std::string NodeAddress::ToString() const {
  return host.find(':') == std::string::npos ? host + ":" + std::to_string(port)
                                             : "[" + host + "]:" + std::to_string(port);
}

Result<NodeAddress> ParseNodeAddress(const std::string& text) {
  NodeAddress a;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return MakeError("OPTION_INVALID", "node address " + text + " is not [IPv6]:port");
    }
    a.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      return MakeError("OPTION_INVALID", "node address " + text + " has no :port");
    }
    a.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  beast::error_code ec;
  asio::ip::make_address(a.host, ec);
  if (ec) return MakeError("OPTION_INVALID", "node address " + text + " is not a numeric address");
  auto [end, perr] = std::from_chars(port.data(), port.data() + port.size(), a.port);
  if (perr != std::errc() || end != port.data() + port.size() || a.port == 0) {
    return MakeError("OPTION_INVALID", "node address " + text + " has an invalid port");
  }
  return a;
}

namespace {

struct Exchange {
  bhttp::request<bhttp::string_body> request;
  bhttp::response<bhttp::string_body> response;
  beast::error_code error;
  const char* stage = "connect";  // where it failed, for the message
};

// Writes the request and reads the answer on a connected stream (plain or TLS).
template <typename Stream>
asio::awaitable<void> WriteAndRead(Stream& stream, Exchange& x) {
  x.stage = "send the request";
  co_await bhttp::async_write(stream, x.request,
                              asio::redirect_error(asio::use_awaitable, x.error));
  if (x.error) co_return;
  x.stage = "read the answer";
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(8 * 1024 * 1024);  // the node's answers here are small; stop a runaway one
  co_await bhttp::async_read(stream, buffer, parser,
                             asio::redirect_error(asio::use_awaitable, x.error));
  if (!x.error) x.response = parser.release();
}

asio::awaitable<void> ExchangePlain(beast::tcp_stream& stream, tcp::endpoint at, Exchange& x) {
  co_await stream.async_connect(at, asio::redirect_error(asio::use_awaitable, x.error));
  if (x.error) co_return;
  co_await WriteAndRead(stream, x);
}

asio::awaitable<void> ExchangeTls(beast::ssl_stream<beast::tcp_stream>& stream, tcp::endpoint at,
                                  Exchange& x) {
  co_await beast::get_lowest_layer(stream).async_connect(
      at, asio::redirect_error(asio::use_awaitable, x.error));
  if (x.error) co_return;
  x.stage = "complete the TLS handshake";
  co_await stream.async_handshake(asio::ssl::stream_base::client,
                                  asio::redirect_error(asio::use_awaitable, x.error));
  if (x.error) co_return;
  co_await WriteAndRead(stream, x);
}

// The TLS client context: the node's CA as the only trust anchor, TLS 1.2 or newer.
Result<std::unique_ptr<asio::ssl::context>> ClientContext(const NodeEndpoint& e) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  beast::error_code ec;
  ctx->set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                       asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1,
                   ec);
  ctx->load_verify_file(e.ca_file.string(), ec);
  if (ec) {
    return MakeError(kNodeTlsFailed,
                     "cannot read the node's CA file " + e.ca_file.string() + ": " + ec.message());
  }
  ctx->set_verify_mode(asio::ssl::verify_peer);
  if (!e.client_cert_file.empty()) {
    ctx->use_certificate_chain_file(e.client_cert_file.string(), ec);
    if (!ec) ctx->use_private_key_file(e.client_key_file.string(), asio::ssl::context::pem, ec);
    if (ec) {
      return MakeError(kNodeTlsFailed, "cannot load the client certificate " +
                                           e.client_cert_file.string() + ": " + ec.message());
    }
  }
  return ctx;
}

}  // namespace

std::string NodeClient::Describe() const {
  return endpoint_.label + " " + (endpoint_.https ? "https://" : "http://") +
         endpoint_.address.ToString();
}

Result<NodeReply> NodeClient::Send(const std::string& method, const std::string& target,
                                   const std::string& json_body,
                                   const std::string& authorization) const {
  Exchange x;
  x.request = {bhttp::string_to_verb(method), target, 11};
  x.request.set(bhttp::field::host,
                endpoint_.https ? endpoint_.server_name : endpoint_.address.ToString());
  x.request.set(bhttp::field::user_agent, "es-agent/" AGENT_VERSION);
  const std::string& auth = authorization.empty() ? authorization_ : authorization;
  if (!auth.empty() && auth != "-") x.request.set(bhttp::field::authorization, auth);
  if (!json_body.empty()) {
    x.request.set(bhttp::field::content_type, "application/json");
    x.request.body() = json_body;
  }
  x.request.prepare_payload();

  // Each call has its own io_context: a blocking call from a handler thread, bounded by one
  // deadline that covers connect, handshake, write and read.
  asio::io_context ioc;
  const tcp::endpoint at(asio::ip::make_address(endpoint_.address.host), endpoint_.address.port);
  std::unique_ptr<asio::ssl::context> ctx;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  if (endpoint_.https) {
    auto made = ClientContext(endpoint_);
    if (!made.ok()) return made.error();
    ctx = std::move(made.value());
    tls.emplace(ioc, *ctx);
    // SNI, and the name the certificate must carry: the node is reached by number, but its
    // certificate names the pod.
    SSL_set_tlsext_host_name(tls->native_handle(), endpoint_.server_name.c_str());
    tls->set_verify_callback(asio::ssl::host_name_verification(endpoint_.server_name));
    beast::get_lowest_layer(*tls).expires_after(endpoint_.timeout);
    asio::co_spawn(ioc, ExchangeTls(*tls, at, x), asio::detached);
  } else {
    plain.emplace(ioc);
    plain->expires_after(endpoint_.timeout);
    asio::co_spawn(ioc, ExchangePlain(*plain, at, x), asio::detached);
  }
  ioc.run();
  crypto::Cleanse(x.request.body());  // it may hold the keystore password (a reload)
  if (x.error) {
    const bool tls_failure = x.error.category() == asio::error::get_ssl_category() ||
                             x.error == asio::ssl::error::stream_truncated;
    std::string cause = x.error.message();
    if (tls && tls_failure) {
      // "certificate verify failed" alone does not say why: OpenSSL's verdict does.
      const long verdict = SSL_get_verify_result(tls->native_handle());
      if (verdict != X509_V_OK) {
        cause += " (" + std::string(X509_verify_cert_error_string(verdict)) + ")";
      }
    }
    if (tls_failure && endpoint_.https) {
      return MakeError(kNodeTlsFailed, Describe() + ": TLS with \"" + endpoint_.server_name +
                                           "\" failed: " + cause);
    }
    return MakeError(kNodeUnreachable, Describe() + " did not answer " + method + " " +
                                           PathOnly(target) + ": could not " + x.stage + ": " +
                                           cause);
  }
  return NodeReply{static_cast<int>(x.response.result_int()), std::move(x.response.body())};
}

}  // namespace agent::node

#include "node/node_client.h"

#include <utility>  // before Asio: Boost 1.74 under C++20 with GCC 12 needs it

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <nlohmann/json.hpp>

namespace agent::node {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

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

Result<service::EngineInfo> ParseEngineInfo(const std::string& body) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  const auto* version = doc.is_object() && doc.contains("version") ? &doc["version"] : nullptr;
  if (!version || !version->is_object() || !version->contains("number") ||
      !(*version)["number"].is_string()) {
    return MakeError(kNodeError, "node's GET / answer has no version.number");
  }
  service::EngineInfo info;
  info.version = (*version)["number"].get<std::string>();
  // OpenSearch says so in version.distribution; Elasticsearch has no such field.
  bool opensearch = version->contains("distribution") &&
                    (*version)["distribution"] == nlohmann::json("opensearch");
  info.product = opensearch ? keystore::Product::kOpenSearch : keystore::Product::kElasticsearch;
  return info;
}

Result<service::EngineInfo> NodeClient::FetchEngineInfo() const {
  const std::string where = "node " + address_.ToString();
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  beast::error_code result;

  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/", 11};
  req.set(bhttp::field::host, address_.ToString());
  req.set(bhttp::field::user_agent, "es-agent");
  if (credentials_) req.set(bhttp::field::authorization, http::BasicAuthorization(*credentials_));

  // One deadline covers connect, write and read; the chain runs on a private io_context.
  stream.expires_after(timeout_);
  tcp::endpoint endpoint(asio::ip::make_address(address_.host), address_.port);
  stream.async_connect(endpoint, [&](beast::error_code ec) {
    if (ec) {
      result = ec;
      return;
    }
    bhttp::async_write(stream, req, [&](beast::error_code ec2, size_t) {
      if (ec2) {
        result = ec2;
        return;
      }
      bhttp::async_read(stream, buffer, res, [&](beast::error_code ec3, size_t) { result = ec3; });
    });
  });
  ioc.run();
  if (result)
    return MakeError(kNodeUnreachable, where + " did not answer GET /: " + result.message());
  if (res.result_int() != 200) {
    return MakeError(kNodeError, where + " answered GET / with HTTP " +
                                     std::to_string(res.result_int()) +
                                     (res.result_int() == 401 ? " (the agent's credentials were "
                                                                "rejected)"
                                                              : ""));
  }
  auto info = ParseEngineInfo(res.body());
  if (!info.ok()) return MakeError(kNodeError, where + ": " + info.error().message);
  return info;
}

}  // namespace agent::node

#include "http/server.h"

#include <utility>  // before Asio: Boost 1.74 under C++20 with GCC 12 needs it

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

namespace agent::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

namespace {

// A connection refused over the cap gets this long for its handshake and its 503 together.
constexpr std::chrono::seconds kRefusalDeadline{2};
// The wait for the client's close_notify after ours: a client that never sends it must not
// hold the connection's slot.
constexpr std::chrono::seconds kTlsCloseDeadline{1};
constexpr std::chrono::seconds kHandshakeWarningInterval{60};
// After answering a request that was not read to its end (413, 431, 400, 503), what the client
// still sends is read and dropped, up to this long and this much: closing with unread data
// would reset the connection, and a client still sending would lose the answer.
constexpr std::chrono::seconds kLingerDeadline{2};
constexpr size_t kLingerBytes = 1024 * 1024;
// Threads for the reading handlers: /ready's node call and GET /keystore's key derivation.
constexpr size_t kReaderThreads = 2;

// One connection counted in `counter` (open sessions, or refusals being answered) for as long
// as it lives; counted when accepted, before its coroutine first runs.
class Slot {
 public:
  explicit Slot(std::atomic<int>& counter) : counter_(&counter) { ++*counter_; }
  Slot(Slot&& other) noexcept : counter_(std::exchange(other.counter_, nullptr)) {}
  Slot& operator=(Slot&&) = delete;
  ~Slot() {
    if (counter_) --*counter_;
  }

 private:
  std::atomic<int>* counter_;
};

// Why TLS handshakes fail, in the log: one warning per reason and minute, with how many
// were not logged, so that a scanner or a misconfigured client cannot flood the log.
class HandshakeFailureLog {
 public:
  void Report(Logger& log, const std::string& reason, const std::string& peer) {
    log.Debug("TLS handshake failed", {{"peer", peer}, {"reason", reason}});
    const auto now = std::chrono::steady_clock::now();
    if (reasons_.size() > 64) reasons_.clear();  // reasons are few; bound the map anyway
    Entry& entry = reasons_[reason];
    if (entry.logged && now - entry.last_logged < kHandshakeWarningInterval) {
      ++entry.not_logged;
      return;
    }
    log.Warn("TLS handshake refused", {{"code", "TLS_HANDSHAKE_FAILED"},
                                       {"peer", peer},
                                       {"reason", reason},
                                       {"similar_not_logged", entry.not_logged}});
    entry = Entry{true, now, 0};
  }

 private:
  struct Entry {
    bool logged = false;
    std::chrono::steady_clock::time_point last_logged{};
    int not_logged = 0;
  };
  std::map<std::string, Entry> reasons_;
};

}  // namespace

struct Server::Impl {
  ServerOptions options;
  Router& router;
  Logger& log;
  // Declared before ioc, so that they outlive the coroutines it destroys (whose slots count
  // down in them).
  std::atomic<int> connections{0};  // sessions open now
  std::atomic<int> refusals{0};     // connections over the cap being answered now
  std::atomic<int> in_flight{0};    // requests being handled now
  asio::io_context ioc;             // the network: accepting, reading, writing; never blocks
  tcp::acceptor acceptor;
  // Handlers that touch files, locks, keys or the node run on pools, so that a blocked file or
  // a slow node cannot stall the network thread (and /health with it). Changes (POST and
  // DELETE /keystore) have theirs, since they wait for the keystore lock; reads (/ready, GET
  // /keystore) have another, so that queued writes never hold them back.
  asio::thread_pool writers;
  asio::thread_pool readers;
  std::unique_ptr<TlsContextProvider> tls;  // null: plain HTTP
  HandshakeFailureLog handshake_failures;   // network thread only
  std::chrono::steady_clock::time_point last_accept_warning{};
  std::atomic<uint64_t> request_count{0};

  // "r-000001f4": unique within the process, to find one request's lines in the log.
  std::string NextRequestId() {
    char id[24];
    std::snprintf(id, sizeof id, "r-%08llx", static_cast<unsigned long long>(++request_count));
    return id;
  }

  Impl(ServerOptions o, Router& r, Logger& l)
      : options(std::move(o)),
        router(r),
        log(l),
        ioc(1),
        acceptor(ioc),
        writers(static_cast<size_t>(options.threads)),
        readers(kReaderThreads) {}

  asio::awaitable<void> Accept();
  asio::awaitable<void> Serve(tcp::socket socket, Slot slot, bool refuse);
  asio::awaitable<void> OpenAndConverse(tcp::socket socket, const std::string& peer, bool refuse,
                                        std::chrono::seconds deadline);
  template <class Stream>
  asio::awaitable<void> Converse(Stream& stream, const std::string& peer, bool refuse);
  template <class Stream>
  asio::awaitable<void> Session(Stream& stream, const std::string& peer);
  template <class Stream>
  asio::awaitable<void> AnswerTooManyConnections(Stream& stream);
  asio::awaitable<void> Drain();
  bhttp::response<bhttp::string_body> Dispatch(const bhttp::request<bhttp::string_body>& req,
                                               const std::string& peer);
};

namespace {

// `head`: the answer to a HEAD request, which has the GET's headers, its Content-Length
// included, and no body (a body there would be read as the next response).
bhttp::response<bhttp::string_body> ToBeast(const Response& r, unsigned version, bool keep_alive,
                                            bool head = false) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), version};
  res.set(bhttp::field::server, "es-agent");
  res.set(bhttp::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) res.set(name, value);
  res.keep_alive(keep_alive);
  if (head) {
    res.content_length(r.body.size());
  } else {
    res.body() = r.body;
    res.prepare_payload();
  }
  return res;
}

// The error that a request which could not be read as HTTP gets, if any.
std::optional<Response> ReadErrorResponse(const beast::error_code& ec) {
  if (ec == bhttp::error::end_of_stream) return std::nullopt;  // the peer closed between requests
  if (ec == bhttp::error::body_limit) {
    return ErrorResponse(413, "BODY_TOO_LARGE", "request body is larger than the limit");
  }
  if (ec == bhttp::error::header_limit) {
    return ErrorResponse(431, "HEADER_TOO_LARGE", "request headers are larger than the limit");
  }
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
    return ErrorResponse(400, "BAD_HTTP", "request is not valid HTTP/1.1");
  }
  return std::nullopt;  // the peer went away or timed out: nothing to answer
}

template <class Stream>
asio::awaitable<void> DiscardInput(Stream& stream) {
  beast::get_lowest_layer(stream).expires_after(kLingerDeadline);
  std::vector<char> scratch(16 * 1024);
  beast::error_code ec;
  for (size_t total = 0; total < kLingerBytes && !ec;) {
    total += co_await stream.async_read_some(asio::buffer(scratch),
                                             asio::redirect_error(asio::use_awaitable, ec));
  }
}

// The end of a connection: plain, the FIN after the last response.
asio::awaitable<void> Close(beast::tcp_stream& stream) {
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  co_return;
}

// Over TLS, close_notify first, so that the client can tell a whole response from a cut one.
asio::awaitable<void> Close(TlsStream& stream) {
  beast::error_code ec;
  beast::get_lowest_layer(stream).expires_after(kTlsCloseDeadline);
  co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
  stream.next_layer().socket().shutdown(tcp::socket::shutdown_send, ec);
}

// Why a TLS handshake failed, in words an operator can act on; nullopt when the client merely
// went away (a TCP probe), which is not worth a warning.
std::optional<std::string> HandshakeFailureReason(const beast::error_code& ec, SSL* ssl) {
  if (ec == asio::error::eof || ec == ssl::error::stream_truncated ||
      ec == asio::error::connection_reset) {
    return std::nullopt;
  }
  if (ec == beast::error::timeout) return "the handshake did not finish in time";
  if (const long verify = SSL_get_verify_result(ssl); verify != X509_V_OK) {
    return std::string("client certificate not accepted: ") + X509_verify_cert_error_string(verify);
  }
  if (ec.category() == asio::error::get_ssl_category()) {
    const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST) {
      return "plain HTTP sent to the HTTPS port";
    }
    if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
      return "the client sent no certificate; one signed by the client CA is required";
    }
  }
  return "TLS handshake failed: " + ec.message();
}

}  // namespace

asio::awaitable<void> Server::Impl::Accept() {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket =
        co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors (EMFILE) and the like: wait before trying again, and say so once
      // a second at most, rather than spinning and flooding the log.
      const auto now = std::chrono::steady_clock::now();
      if (now - last_accept_warning > std::chrono::seconds(1)) {
        log.Warn("accept failed; retrying", {{"error", ec.message()}});
        last_accept_warning = now;
      }
      asio::steady_timer pause(ioc, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (connections.load() < options.max_connections) {
      asio::co_spawn(ioc, Serve(std::move(socket), Slot(connections), false), asio::detached);
    } else if (refusals.load() < options.max_connections) {
      router.CountConnectionRefused(/*answered=*/true);
      asio::co_spawn(ioc, Serve(std::move(socket), Slot(refusals), true), asio::detached);
    } else {
      router.CountConnectionRefused(/*answered=*/false);
      socket.close(ec);  // a flood: even the 503s are capped, and the rest just closed
    }
  }
}

// One connection, plain or TLS: the handshake (under the I/O timeout, or the refusal's short
// deadline), then the same conversation over either stream.
// `slot` counts the connection for as long as this coroutine lives.
asio::awaitable<void> Server::Impl::Serve(tcp::socket socket, [[maybe_unused]] Slot slot,
                                          bool refuse) {
  beast::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  const std::string peer = ec ? "?" : remote.address().to_string();
  const auto deadline = refuse ? kRefusalDeadline : options.io_timeout;
  try {
    co_await OpenAndConverse(std::move(socket), peer, refuse, deadline);
  } catch (const std::exception& e) {
    // A parser or stream failure the error codes do not carry must cost this connection
    // only, never the process (the socket closes as the stream goes).
    log.Warn("connection dropped after an unexpected error", {{"peer", peer}, {"error", e.what()}});
  }
}

asio::awaitable<void> Server::Impl::OpenAndConverse(tcp::socket socket, const std::string& peer,
                                                    bool refuse, std::chrono::seconds deadline) {
  beast::error_code ec;
  if (!tls) {
    beast::tcp_stream stream(std::move(socket));
    stream.expires_after(deadline);
    co_await Converse(stream, peer, refuse);
    co_return;
  }
  // Held for the whole connection: a renewal builds a new context and leaves this one alone.
  const std::shared_ptr<ssl::context> context = tls->Current();
  TlsStream stream(std::move(socket), *context);
  beast::get_lowest_layer(stream).expires_after(deadline);
  co_await stream.async_handshake(ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    if (auto reason = HandshakeFailureReason(ec, stream.native_handle())) {
      handshake_failures.Report(log, *reason, peer);
    }
    co_return;
  }
  co_await Converse(stream, peer, refuse);
}

template <class Stream>
asio::awaitable<void> Server::Impl::Converse(Stream& stream, const std::string& peer, bool refuse) {
  if (refuse) {
    co_await AnswerTooManyConnections(stream);
  } else {
    co_await Session(stream, peer);
  }
  co_await Close(stream);
}

// A refusal ends quickly whatever the client does: the handshake and the answer under the
// deadline Serve set, the request read and dropped under the linger deadline.
template <class Stream>
asio::awaitable<void> Server::Impl::AnswerTooManyConnections(Stream& stream) {
  auto res =
      ToBeast(ErrorResponse(503, "TOO_MANY_CONNECTIONS",
                            "the agent serves at most " + std::to_string(options.max_connections) +
                                (options.max_connections == 1 ? " connection" : " connections") +
                                " at once; retry"),
              11, false);
  router.CountServerAnswer("", "", 503);  // the request itself is never read
  beast::error_code ec;
  co_await bhttp::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) co_await DiscardInput(stream);  // the request the client sent meanwhile
}

// After SIGTERM: no new connections; stop once no request is in flight, or at the deadline.
asio::awaitable<void> Server::Impl::Drain() {
  beast::error_code ec;
  acceptor.close(ec);
  const auto deadline = std::chrono::steady_clock::now() + options.grace_period;
  asio::steady_timer timer(ioc);
  while (in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (in_flight.load() > 0) log.Warn("grace period over with a request in flight: stopping");
  ioc.stop();
}

// Requests and responses on one connection until either side ends it.
template <class Stream>
asio::awaitable<void> Server::Impl::Session(Stream& stream, const std::string& peer) {
  beast::error_code ec;
  beast::flat_buffer buffer;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(options.body_limit);
    parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
    beast::get_lowest_layer(stream).expires_after(options.io_timeout);
    // The header first: a chunked body is refused before any of it is read, since no limit
    // bounds its trailer fields (and nothing the agent serves needs one).
    co_await bhttp::async_read_header(stream, buffer, parser,
                                      asio::redirect_error(asio::use_awaitable, ec));
    std::optional<Response> refusal;
    if (!ec && parser.chunked()) {
      refusal = ErrorResponse(411, "LENGTH_REQUIRED",
                              "chunked request bodies are not accepted: send Content-Length");
    } else if (!ec) {
      co_await bhttp::async_read(stream, buffer, parser,
                                 asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec || refusal) {
      if (auto answer = refusal ? refusal : ReadErrorResponse(ec)) {
        // The request line is parsed first: a body or header too large still names its route
        // (empty when even that line was not read).
        const std::string target(parser.get().target());
        router.CountServerAnswer(target, parser.get().method_string(), answer->status);
        log.Info("request", {{"request_id", NextRequestId()},
                             {"peer", peer},
                             {"route", target.substr(0, std::min<size_t>(target.find('?'), 200))},
                             {"status", answer->status},
                             {"code", answer->error_code}});
        auto res = ToBeast(*answer, 11, false);
        co_await bhttp::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
        if (!ec) co_await DiscardInput(stream);
      }
      break;
    }
    ++in_flight;
    // /health and /metrics answer on the network thread (they touch no lock that a handler
    // holds long), so they stay live whatever the pools wait for; every other handler runs on
    // a pool, and this coroutine resumes here after it.
    // (Ifs, not ?: : GCC 12 miscompiles co_await inside a conditional expression.)
    bhttp::response<bhttp::string_body> res;
    const auto& req = parser.get();
    const std::string_view path = req.target().substr(0, req.target().find('?'));
    if (path == "/health" || path == "/metrics") {
      res = Dispatch(req, peer);
    } else {
      const bool change = path == "/keystore" && (req.method() == bhttp::verb::post ||
                                                  req.method() == bhttp::verb::delete_);
      asio::thread_pool& pool = change ? writers : readers;
      res = co_await asio::co_spawn(
          pool.get_executor(),
          [this, &req, &peer]() -> asio::awaitable<bhttp::response<bhttp::string_body>> {
            co_return Dispatch(req, peer);
          },
          asio::use_awaitable);
    }
    --in_flight;
    beast::get_lowest_layer(stream).expires_after(options.io_timeout);
    co_await bhttp::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !res.keep_alive()) break;
  }
}

bhttp::response<bhttp::string_body> Server::Impl::Dispatch(
    const bhttp::request<bhttp::string_body>& req, const std::string& peer) {
  const auto started = std::chrono::steady_clock::now();
  Request request;
  request.method = std::string(req.method_string());
  request.target = std::string(req.target());
  request.authorization = std::string(req[bhttp::field::authorization]);
  request.body = req.body();
  Response response;
  try {
    if (req.count(bhttp::field::authorization) > 1 && router.Authenticates(request)) {
      // Ambiguous (a proxy and the client may each add one): which is the caller's is not the
      // agent's to guess. Endpoints that need no credentials ignore the header altogether.
      response = ErrorResponse(400, "FIELD_INVALID", "the request has two Authorization headers");
      router.CountServerAnswer(request.target, request.method, response.status);
    } else {
      response = router.Handle(request);
    }
  } catch (const std::exception& e) {
    // A bug must cost one request, not the process; the log says what was thrown.
    log.Error("unhandled exception in a request handler", {{"error", e.what()}});
    response = ErrorResponse(500, "INTERNAL_ERROR", "the agent failed unexpectedly; see its log");
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  // The access log names the caller, the call and the outcome; never a header, a body or a
  // query string (whatever a caller puts there).
  const std::string path =
      request.target.substr(0, std::min<size_t>(request.target.find('?'), 200));
  const std::string id = NextRequestId();
  nlohmann::json fields = {{"request_id", id},
                           {"peer", peer},
                           {"method", request.method.substr(0, 200)},  // bounded as the route
                           {"route", path},
                           {"status", response.status},
                           {"duration_ms", ms}};
  if (!response.error_code.empty()) fields["code"] = response.error_code;
  log.Info("request", std::move(fields));
  response.headers.emplace_back("X-Request-Id", id);
  return ToBeast(response, req.version(), req.keep_alive(), req.method() == bhttp::verb::head);
}

Result<std::unique_ptr<Server>> Server::Listen(const ServerOptions& options, Router& router,
                                               Logger& log) {
  auto impl = std::make_unique<Impl>(options, router, log);
  if (options.tls) {
    auto tls = TlsContextProvider::Create(*options.tls, log);
    if (!tls.ok()) return tls.error();
    impl->tls = std::move(tls.value());
  }
  const std::string where = options.address + ":" + std::to_string(options.port);
  beast::error_code ec;
  auto address = asio::ip::make_address(options.address, ec);
  if (ec)
    return MakeError("LISTEN_FAILED", "listen address " + options.address + " is not numeric");
  tcp::endpoint endpoint(address, options.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return MakeError("LISTEN_FAILED", "cannot listen on " + where + ": " + ec.message());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

uint16_t Server::port() const { return impl_->acceptor.local_endpoint().port(); }

int Server::Run(bool handle_signals) {
  asio::signal_set signals(impl_->ioc);
  if (handle_signals) {
    signals.add(SIGINT);
    signals.add(SIGTERM);
    signals.async_wait([this](const beast::error_code& ec, int signo) {
      if (!ec) {
        impl_->log.Info("stopping: finishing requests in flight", {{"signal", signo}});
        asio::co_spawn(impl_->ioc, impl_->Drain(), asio::detached);
      }
    });
  }
  asio::co_spawn(impl_->ioc, impl_->Accept(), asio::detached);
  impl_->ioc.run();
  return impl_->in_flight.load();
}

void Server::Stop() { impl_->ioc.stop(); }

}  // namespace agent::http

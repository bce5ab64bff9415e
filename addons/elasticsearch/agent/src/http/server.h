// The HTTP(S) server: Boost.Beast on Asio coroutines; one network thread, one coroutine per
// connection, handlers on a pool of workers; limits on body and header size and on
// connections, and a deadline on every read and write. With TLS it speaks HTTPS only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/log.h"
#include "common/result.h"
#include "http/routes.h"
#include "http/tls_context.h"

namespace agent::http {

struct ServerOptions {
  std::string address = "0.0.0.0";  // numeric IPv4 or IPv6
  uint16_t port = 8080;             // 0 picks a free port (tests)
  int threads = 2;  // for keystore changes (the network has a thread of its own, reads two)
  size_t body_limit = 64 * 1024;
  size_t header_limit = 16 * 1024;
  std::chrono::seconds io_timeout{30};    // whole request read, and whole response write
  int max_connections = 128;              // more at once get 503 and are closed
  std::chrono::seconds grace_period{10};  // on SIGTERM: time for requests in flight to end
  std::optional<TlsOptions> tls;          // set: HTTPS only (TLS 1.2+) on the same port
};

class Server {
 public:
  // Loads the TLS files, if any (TLS_CONFIG_INVALID naming the file and the cause), and binds
  // the listening socket (LISTEN_FAILED naming the address and the cause).
  static Result<std::unique_ptr<Server>> Listen(const ServerOptions& options, Router& router,
                                                Logger& log);
  ~Server();

  uint16_t port() const;
  // Serves until Stop() is called or, when handle_signals is set, SIGINT/SIGTERM arrives:
  // then it stops accepting, lets requests in flight finish (up to the grace period) and
  // returns how many still run (their handlers hold worker threads that the server's
  // destruction would wait for: a caller bound by the grace period exits without it).
  int Run(bool handle_signals);
  void Stop();  // at once: requests in flight are abandoned (a keystore write is atomic)

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace agent::http

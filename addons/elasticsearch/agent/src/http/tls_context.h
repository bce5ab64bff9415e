// The server's TLS context, built from PEM files (certificate chain, key, client CA) and
// rebuilt for new connections when the files are renewed; a broken renewal keeps the old one.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/result.h"

namespace boost::asio::ssl {
class context;  // declared only, so that the server's users need not include Asio
}

namespace agent::http {

inline constexpr char kTlsConfigInvalid[] = "TLS_CONFIG_INVALID";

struct TlsOptions {
  std::string cert_file;  // PEM: the server's certificate, then any intermediate CAs
  std::string key_file;   // PEM: its private key, unencrypted
  std::string ca_file;    // PEM: the CAs that sign client certificates (require_client_cert)
  bool require_client_cert = false;  // refuse, at the handshake, clients without such a cert
  // The files are looked at (stat) at most this often, when a connection arrives.
  std::chrono::seconds reload_check_interval{5};
};

// Hands out the context for each new connection. Connections keep the context they started
// with (the shared_ptr), so a renewal never disturbs one in flight. Thread-safe.
class TlsContextProvider {
 public:
  using Context = boost::asio::ssl::context;

  // Loads the files; fails with TLS_CONFIG_INVALID naming the file and the cause.
  static Result<std::unique_ptr<TlsContextProvider>> Create(const TlsOptions& options, Logger& log);

  // The current context; first rebuilt from the files if they changed since it was built
  // and the last check is older than reload_check_interval. A set that cannot be loaded
  // (a key that does not match, a missing file) is warned about once and the old context
  // stays.
  std::shared_ptr<Context> Current();

  // What the files looked like (stat, following links) when last checked.
  struct FileStamp {
    int error = 0;  // errno of stat(2); 0 when it succeeded
    unsigned long long device = 0, inode = 0;
    long long size = 0, mtime_ns = 0, ctime_ns = 0;
    bool operator==(const FileStamp&) const = default;
  };
  using FilesStamp = std::vector<FileStamp>;

 private:
  TlsContextProvider(const TlsOptions& options, Logger& log, std::shared_ptr<Context> context,
                     FilesStamp stamp);

  TlsOptions options_;
  Logger& log_;
  std::mutex mutex_;  // guards everything below
  std::shared_ptr<Context> context_;
  FilesStamp loaded_stamp_;  // the files behind context_
  FilesStamp failed_stamp_;  // the last set that failed to load (already warned about)
  std::chrono::steady_clock::time_point next_check_;
};

}  // namespace agent::http

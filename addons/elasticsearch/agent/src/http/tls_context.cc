#include "http/tls_context.h"

#include <utility>  // before Asio: Boost 1.74 under C++20 with GCC 12 needs it

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ssl/context.hpp>
#include <cstring>
#include <ctime>

#include "crypto/crypto.h"
#include "storage/keystore_file.h"

namespace agent::http {

namespace {

namespace ssl = boost::asio::ssl;
using FileStamp = TlsContextProvider::FileStamp;
using FilesStamp = TlsContextProvider::FilesStamp;

constexpr size_t kMaxPemSize = 1024 * 1024;  // far above any certificate chain

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// What a freshly built context serves, for the log.
struct Built {
  std::shared_ptr<ssl::context> context;
  std::string serial;     // hex
  std::string not_after;  // 2026-01-31T12:00:00Z
  bool expired = false;
};

Error Invalid(const std::string& message) { return MakeError(kTlsConfigInvalid, message); }

// OpenSSL's reason for the last failure ("key values mismatch"), and a clear queue.
std::string OpenSslReason() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  const char* reason = code == 0 ? nullptr : ERR_reason_error_string(code);
  return reason ? reason : "unknown OpenSSL error";
}

FileStamp Stamp(const std::string& path) {
  FileStamp stamp;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {  // follows links: a `..data` swap changes the inode
    stamp.error = errno;
    return stamp;
  }
  stamp.device = st.st_dev;
  stamp.inode = st.st_ino;
  stamp.size = st.st_size;
  stamp.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  stamp.ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
  return stamp;
}

std::vector<std::string> WatchedFiles(const TlsOptions& options) {
  std::vector<std::string> files = {options.cert_file, options.key_file};
  if (options.require_client_cert) files.push_back(options.ca_file);
  return files;
}

FilesStamp StampFiles(const TlsOptions& options) {
  FilesStamp stamps;
  for (const std::string& file : WatchedFiles(options)) stamps.push_back(Stamp(file));
  return stamps;
}

// The file's bytes; `role` names it in errors ("certificate", "key", "CA").
Result<std::string> ReadPem(const std::string& path, const std::string& role) {
  const std::string what = "TLS " + role + " file " + path;
  // O_NONBLOCK: a FIFO put there by mistake must not block the open.
  storage::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return Invalid(what + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Invalid(what + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return Invalid(what + ": not a regular file");
  std::string bytes;
  char buf[16 * 1024];
  ssize_t n = 0;
  do {
    n = ::read(fd.get(), buf, sizeof buf);
    if (n > 0) bytes.append(buf, static_cast<size_t>(n));
  } while ((n > 0 && bytes.size() <= kMaxPemSize) || (n < 0 && errno == EINTR));
  const int read_errno = errno;
  OPENSSL_cleanse(buf, sizeof buf);  // it may have held part of a key
  if (n < 0) {
    crypto::Cleanse(bytes);
    return Invalid(what + ": cannot read: " + std::strerror(read_errno));
  }
  if (bytes.size() > kMaxPemSize) {
    crypto::Cleanse(bytes);
    return Invalid(what + ": larger than 1 MiB: not a PEM file");
  }
  return bytes;
}

BioPtr MemoryBio(const std::string& bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

// PEM_read_* stop at the end of the input with "no start line": that is no error.
bool OnlyEndOfInput() {
  const unsigned long code = ERR_peek_last_error();
  const bool end = code == 0 || (ERR_GET_LIB(code) == ERR_LIB_PEM &&
                                 ERR_GET_REASON(code) == PEM_R_NO_START_LINE);
  if (end) ERR_clear_error();
  return end;
}

// The leaf certificate, then the intermediates, in the order the file has them.
Status UseCertificateChain(SSL_CTX* ctx, const std::string& pem, const std::string& path) {
  const std::string what = "TLS certificate file " + path;
  BioPtr bio = MemoryBio(pem);
  X509Ptr leaf(PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr));
  if (!leaf) return Invalid(what + ": no PEM certificate in it (" + OpenSslReason() + ")");
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1) {
    return Invalid(what + ": certificate not usable (" + OpenSslReason() + ")");
  }
  SSL_CTX_clear_chain_certs(ctx);
  while (X509Ptr next{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    if (SSL_CTX_add1_chain_cert(ctx, next.get()) != 1) {
      return Invalid(what + ": intermediate certificate not usable (" + OpenSslReason() + ")");
    }
  }
  if (!OnlyEndOfInput()) {
    return Invalid(what + ": malformed certificate after the first (" + OpenSslReason() + ")");
  }
  return Ok{};
}

// No passphrase prompt, ever: the agent has no terminal, and takes unencrypted keys only.
int RefusePassphrase(char*, int, int, void*) { return -1; }

Status UsePrivateKey(SSL_CTX* ctx, const std::string& pem, const TlsOptions& options) {
  const std::string what = "TLS key file " + options.key_file;
  BioPtr bio = MemoryBio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, RefusePassphrase, nullptr));
  if (!key) {
    return Invalid(what + ": no unencrypted PEM private key in it (" + OpenSslReason() + ")");
  }
  if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), key.get()) != 1) {
    ERR_clear_error();
    return Invalid(what + " does not match the certificate in " + options.cert_file);
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
    return Invalid(what + ": key not usable (" + OpenSslReason() + ")");
  }
  return Ok{};
}

// Trusts every certificate in the CA file for client certificates, and names them in the
// handshake's certificate request so that a client can pick its certificate.
Status RequireClientCertificates(SSL_CTX* ctx, const std::string& pem, const std::string& path) {
  const std::string what = "TLS CA file " + path;
  BioPtr bio = MemoryBio(pem);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int count = 0;
  while (X509Ptr ca{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    if (X509_STORE_add_cert(store, ca.get()) != 1 || SSL_CTX_add_client_CA(ctx, ca.get()) != 1) {
      return Invalid(what + ": CA certificate not usable (" + OpenSslReason() + ")");
    }
    ++count;
  }
  if (!OnlyEndOfInput()) return Invalid(what + ": malformed certificate (" + OpenSslReason() + ")");
  if (count == 0) return Invalid(what + ": no PEM certificate in it");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  // Resuming a session needs an id context once peers are verified (OpenSSL refuses
  // otherwise).
  static constexpr unsigned char kSessionContext[] = "es-agent";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  return Ok{};
}

std::string SerialHex(X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  char* hex = bn ? BN_bn2hex(bn) : nullptr;
  std::string serial = hex ? hex : "?";
  OPENSSL_free(hex);
  BN_free(bn);
  return serial;
}

std::string NotAfter(X509* cert) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return "?";
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// TLS 1.2 and 1.3 only; no renegotiation (a client could make the server spend CPU on it).
void ConfigureProtocol(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // The same floor (2048-bit RSA, no SHA-1 signatures) in every image, whatever its
  // openssl.cnf says.
  SSL_CTX_set_security_level(ctx, 2);
}

Result<Built> BuildContext(const TlsOptions& options) {
  ERR_clear_error();
  auto cert_pem = ReadPem(options.cert_file, "certificate");
  if (!cert_pem.ok()) return cert_pem.error();
  auto key_pem = ReadPem(options.key_file, "key");
  if (!key_pem.ok()) return key_pem.error();
  struct Wipe {  // the key's bytes leave memory with this function
    std::string& bytes;
    ~Wipe() { crypto::Cleanse(bytes); }
  } wipe{key_pem.value()};

  Built built;
  built.context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* ctx = built.context->native_handle();
  ConfigureProtocol(ctx);
  if (Status s = UseCertificateChain(ctx, cert_pem.value(), options.cert_file); !s.ok()) {
    return s.error();
  }
  if (Status s = UsePrivateKey(ctx, key_pem.value(), options); !s.ok()) return s.error();
  if (options.require_client_cert) {
    auto ca_pem = ReadPem(options.ca_file, "CA");
    if (!ca_pem.ok()) return ca_pem.error();
    if (Status s = RequireClientCertificates(ctx, ca_pem.value(), options.ca_file); !s.ok()) {
      return s.error();
    }
  }
  X509* leaf = SSL_CTX_get0_certificate(ctx);
  built.serial = SerialHex(leaf);
  built.not_after = NotAfter(leaf);
  built.expired = X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0;
  return built;
}

Status Validate(const TlsOptions& options) {
  if (options.cert_file.empty()) return Invalid("TLS is configured without a certificate file");
  if (options.key_file.empty()) return Invalid("TLS is configured without a key file");
  if (options.require_client_cert && options.ca_file.empty()) {
    return Invalid("client certificates are required, but no CA file is given to verify them");
  }
  return Ok{};
}

void LogLoaded(Logger& log, const char* msg, const TlsOptions& options, const Built& built) {
  nlohmann::json fields = {{"cert_file", options.cert_file},
                           {"serial", built.serial},
                           {"not_after", built.not_after},
                           {"client_auth", options.require_client_cert ? "require" : "none"}};
  if (built.expired) {
    log.Warn(std::string(msg) + "; the certificate has expired", std::move(fields));
  } else {
    log.Info(msg, std::move(fields));
  }
}

}  // namespace

Result<std::unique_ptr<TlsContextProvider>> TlsContextProvider::Create(const TlsOptions& options,
                                                                       Logger& log) {
  if (Status s = Validate(options); !s.ok()) return s.error();
  FilesStamp stamp = StampFiles(options);  // before reading: a change while reading is seen
  auto built = BuildContext(options);
  if (!built.ok()) return built.error();
  LogLoaded(log, "TLS certificate loaded", options, built.value());
  return std::unique_ptr<TlsContextProvider>(
      new TlsContextProvider(options, log, std::move(built.value().context), std::move(stamp)));
}

TlsContextProvider::TlsContextProvider(const TlsOptions& options, Logger& log,
                                       std::shared_ptr<Context> context, FilesStamp stamp)
    : options_(options),
      log_(log),
      context_(std::move(context)),
      loaded_stamp_(std::move(stamp)),
      next_check_(std::chrono::steady_clock::now() + options.reload_check_interval) {}

std::shared_ptr<TlsContextProvider::Context> TlsContextProvider::Current() {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return context_;
  next_check_ = now + options_.reload_check_interval;
  FilesStamp stamp = StampFiles(options_);
  if (stamp == loaded_stamp_ || stamp == failed_stamp_) return context_;
  auto built = BuildContext(options_);
  if (!built.ok()) {
    // Often a renewal half done (the certificate replaced, the key not yet): the next
    // change is tried again; until then this set is not warned about again.
    failed_stamp_ = std::move(stamp);
    log_.Warn("TLS files changed but cannot be used; still serving the previous certificate",
              {{"code", built.error().code}, {"error", built.error().message}});
    return context_;
  }
  context_ = std::move(built.value().context);
  loaded_stamp_ = std::move(stamp);
  failed_stamp_.clear();
  LogLoaded(log_, "TLS certificate reloaded", options_, built.value());
  return context_;
}

}  // namespace agent::http

// Real X.509 certificates for the TLS tests, made with OpenSSL's API: CAs, server and client
// certificates (P-256 keys, SHA-256 signatures), as PEM; and the files a Kubernetes secret
// volume shows, renewed by a `..data` symlink swap as the kubelet does it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace agent::testing {

struct PemPair {
  std::string cert;
  std::string key;  // unencrypted PKCS#8
};

struct CertSpec {
  std::string common_name;
  long serial = 1;
  bool is_ca = false;
  bool client = false;       // extendedKeyUsage clientAuth, else serverAuth (not for a CA)
  bool also_client = false;  // serverAuth and clientAuth, as KubeBlocks issues its certificates
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
};

// Signed by `issuer`, or self-signed when issuer is null. Throws std::runtime_error if
// OpenSSL fails (a test then fails with the message).
PemPair MakeCertificate(const CertSpec& spec, const PemPair* issuer);

// Shorthands: a self-signed CA; a client certificate (clientAuth) signed by `ca`.
PemPair MakeCa(const std::string& common_name);
PemPair MakeClientCert(const std::string& common_name, long serial, const PemPair& ca);

// The key of `pair` encrypted with AES-256-CBC under `passphrase`, as PEM.
std::string EncryptKey(const PemPair& pair, const std::string& passphrase);

// The serial number in hex (uppercase, as OpenSSL prints it), of a PEM certificate.
std::string SerialOfPem(const std::string& cert_pem);

// A secret volume as the kubelet writes it: dir/..<version>/{files}, dir/..data a link to the
// current version, and dir/<name> a link to ..data/<name> for each file. Renew() writes a new
// version and swaps ..data atomically (rename of a new link over the old one).
class SecretVolume {
 public:
  explicit SecretVolume(std::filesystem::path dir) : dir_(std::move(dir)) {}
  void Renew(const std::vector<std::pair<std::string, std::string>>& files);  // name, bytes
  std::filesystem::path Path(const std::string& name) const { return dir_ / name; }

 private:
  std::filesystem::path dir_;
  int version_ = 0;
};

}  // namespace agent::testing

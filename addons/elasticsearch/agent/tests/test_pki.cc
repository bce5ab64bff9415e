#include "test_pki.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>

#include "test_util.h"

namespace agent::testing {

namespace {

namespace fs = std::filesystem;

struct Free {
  void operator()(BIO* b) const { BIO_free(b); }
  void operator()(X509* x) const { X509_free(x); }
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Free>;

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("OpenSSL failed: ") + what);
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

Ptr<X509> ParseCert(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Ptr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  Check(cert != nullptr, "PEM_read_bio_X509");
  return cert;
}

Ptr<EVP_PKEY> ParseKey(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Ptr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  Check(key != nullptr, "PEM_read_bio_PrivateKey");
  return key;
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ptr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  Check(ext != nullptr, "X509V3_EXT_conf_nid");
  Check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

std::string SubjectAltNames(const CertSpec& spec) {
  std::string names;
  for (const auto& dns : spec.dns_names) names += (names.empty() ? "DNS:" : ",DNS:") + dns;
  for (const auto& ip : spec.ip_addresses) names += (names.empty() ? "IP:" : ",IP:") + ip;
  return names;
}

void AddExtensions(X509* cert, X509* issuer, const CertSpec& spec) {
  AddExtension(cert, issuer, NID_subject_key_identifier, "hash");
  AddExtension(cert, issuer, NID_authority_key_identifier, "keyid:always");
  if (spec.is_ca) {
    AddExtension(cert, issuer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    return;
  }
  AddExtension(cert, issuer, NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert, issuer, NID_key_usage, "critical,digitalSignature");
  AddExtension(cert, issuer, NID_ext_key_usage,
               spec.also_client ? "serverAuth,clientAuth"
               : spec.client    ? "clientAuth"
                                : "serverAuth");
  if (const std::string san = SubjectAltNames(spec); !san.empty()) {
    AddExtension(cert, issuer, NID_subject_alt_name, san);
  }
}

}  // namespace

PemPair MakeCertificate(const CertSpec& spec, const PemPair* issuer) {
  Ptr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  Check(key != nullptr, "EVP_EC_gen");
  Ptr<X509> cert(X509_new());
  Check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");
  Check(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), spec.serial) == 1, "serial");
  Check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr, "notBefore");
  Check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 86400) != nullptr, "notAfter");
  Check(X509_set_pubkey(cert.get(), key.get()) == 1, "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  Check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(spec.common_name.c_str()),
                                   -1, -1, 0) == 1,
        "subject");
  Ptr<X509> issuer_cert = issuer ? ParseCert(issuer->cert) : nullptr;
  Ptr<EVP_PKEY> issuer_key = issuer ? ParseKey(issuer->key) : nullptr;
  X509* signer = issuer ? issuer_cert.get() : cert.get();
  Check(X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) == 1, "issuer");
  AddExtensions(cert.get(), signer, spec);
  Check(X509_sign(cert.get(), issuer ? issuer_key.get() : key.get(), EVP_sha256()) > 0, "sign");

  Ptr<BIO> cert_out(BIO_new(BIO_s_mem()));
  Ptr<BIO> key_out(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_X509(cert_out.get(), cert.get()) == 1, "PEM_write_bio_X509");
  Check(PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) ==
            1,
        "PEM_write_bio_PrivateKey");
  return PemPair{BioText(cert_out.get()), BioText(key_out.get())};
}

PemPair MakeCa(const std::string& common_name) {
  CertSpec spec;
  spec.common_name = common_name;
  spec.is_ca = true;
  return MakeCertificate(spec, nullptr);
}

PemPair MakeClientCert(const std::string& common_name, long serial, const PemPair& ca) {
  CertSpec spec;
  spec.common_name = common_name;
  spec.serial = serial;
  spec.client = true;
  return MakeCertificate(spec, &ca);
}

std::string EncryptKey(const PemPair& pair, const std::string& passphrase) {
  Ptr<EVP_PKEY> key = ParseKey(pair.key);
  Ptr<BIO> out(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_PKCS8PrivateKey(out.get(), key.get(), EVP_aes_256_cbc(), passphrase.data(),
                                      static_cast<int>(passphrase.size()), nullptr, nullptr) == 1,
        "PEM_write_bio_PKCS8PrivateKey");
  return BioText(out.get());
}

std::string SerialOfPem(const std::string& cert_pem) {
  Ptr<X509> cert = ParseCert(cert_pem);
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string serial = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  return serial;
}

void SecretVolume::Renew(const std::vector<std::pair<std::string, std::string>>& files) {
  const std::string version = "..v" + std::to_string(++version_);
  fs::create_directories(dir_ / version);
  for (const auto& [name, bytes] : files) WriteFile(dir_ / version / name, bytes);
  fs::create_directory_symlink(version, dir_ / "..data_tmp");
  fs::rename(dir_ / "..data_tmp", dir_ / "..data");  // rename(2): the swap is atomic
  if (version_ > 1) fs::remove_all(dir_ / ("..v" + std::to_string(version_ - 1)));
  for (const auto& [name, bytes] : files) {
    if (!fs::is_symlink(dir_ / name)) fs::create_symlink(fs::path("..data") / name, dir_ / name);
  }
}

}  // namespace agent::testing

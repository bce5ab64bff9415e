#include "crypto/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>

namespace agent::crypto {
namespace {

constexpr size_t kGcmTagSize = 16;  // 128-bit tag, as the engines use

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* Bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

Error CryptoError(const char* what) {
  return MakeError("CRYPTO_FAILED", std::string("OpenSSL failed in ") + what);
}

const EVP_CIPHER* GcmCipherFor(size_t key_len) {
  if (key_len == 16) return EVP_aes_128_gcm();
  if (key_len == 32) return EVP_aes_256_gcm();
  return nullptr;
}

// Creates a context for AES-GCM with the given key and IV (of any length) and feeds the AAD.
Result<CipherCtx> StartGcm(bool encrypt, std::string_view key, std::string_view iv,
                           std::string_view aad) {
  const EVP_CIPHER* cipher = GcmCipherFor(key.size());
  if (cipher == nullptr) return CryptoError("AES-GCM: key must be 16 or 32 bytes");
  if (iv.empty()) return CryptoError("AES-GCM: empty IV");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return CryptoError("EVP_CIPHER_CTX_new");
  auto init = encrypt ? EVP_EncryptInit_ex : EVP_DecryptInit_ex;
  if (init(ctx.get(), cipher, nullptr, nullptr, nullptr) != 1) return CryptoError("GCM init");
  // The engines read any IV length from the file; set it explicitly (not only 96 bits).
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                          nullptr) != 1) {
    return CryptoError("GCM set IV length");
  }
  if (init(ctx.get(), nullptr, nullptr, Bytes(key), Bytes(iv)) != 1) return CryptoError("GCM key");
  int unused = 0;
  auto update = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate;
  if (!aad.empty() &&
      update(ctx.get(), nullptr, &unused, Bytes(aad), static_cast<int>(aad.size())) != 1) {
    return CryptoError("GCM AAD");
  }
  return ctx;
}

}  // namespace

Result<std::string> Pbkdf2Sha512(std::string_view password, std::string_view salt, int iterations,
                                 size_t key_len) {
  std::string key(key_len, '\0');
  // An empty password is legal (every unprotected keystore uses it); OpenSSL accepts length 0.
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), Bytes(salt),
                        static_cast<int>(salt.size()), iterations, EVP_sha512(),
                        static_cast<int>(key_len), Bytes(key)) != 1) {
    return CryptoError("PBKDF2");
  }
  return key;
}

Result<std::string> AesGcmEncrypt(std::string_view key, std::string_view iv, std::string_view aad,
                                  std::string_view plaintext) {
  auto ctx = StartGcm(true, key, iv, aad);
  if (!ctx.ok()) return ctx.error();
  std::string out(plaintext.size() + kGcmTagSize, '\0');
  int len = 0;
  if (EVP_EncryptUpdate(ctx.value().get(), Bytes(out), &len, Bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1) {
    return CryptoError("GCM encrypt");
  }
  int tail = 0;
  if (EVP_EncryptFinal_ex(ctx.value().get(), Bytes(out) + len, &tail) != 1) {
    return CryptoError("GCM final");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.value().get(), EVP_CTRL_GCM_GET_TAG, kGcmTagSize,
                          Bytes(out) + plaintext.size()) != 1) {
    return CryptoError("GCM get tag");
  }
  return out;
}

Result<std::string> AesGcmDecrypt(std::string_view key, std::string_view iv, std::string_view aad,
                                  std::string_view ciphertext_and_tag) {
  if (ciphertext_and_tag.size() < kGcmTagSize) {
    return MakeError("GCM_TAG_MISMATCH", "ciphertext shorter than its authentication tag");
  }
  auto ctx = StartGcm(false, key, iv, aad);
  if (!ctx.ok()) return ctx.error();
  const size_t ct_len = ciphertext_and_tag.size() - kGcmTagSize;
  std::string tag(ciphertext_and_tag.substr(ct_len));
  std::string out(ct_len, '\0');
  int len = 0;
  if (EVP_DecryptUpdate(ctx.value().get(), Bytes(out), &len, Bytes(ciphertext_and_tag),
                        static_cast<int>(ct_len)) != 1) {
    return CryptoError("GCM decrypt");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.value().get(), EVP_CTRL_GCM_SET_TAG, kGcmTagSize, Bytes(tag)) != 1) {
    return CryptoError("GCM set tag");
  }
  int tail = 0;
  if (EVP_DecryptFinal_ex(ctx.value().get(), Bytes(out) + len, &tail) != 1) {
    Cleanse(out);
    return MakeError("GCM_TAG_MISMATCH", "authentication tag does not verify");
  }
  return out;
}

Result<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(Bytes(out), static_cast<int>(n)) != 1) return CryptoError("RAND_bytes");
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(Bytes(data), data.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * SHA256_DIGEST_LENGTH);
  for (unsigned char byte : digest) {
    hex.push_back(kHex[byte >> 4]);
    hex.push_back(kHex[byte & 0xf]);
  }
  return hex;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Comparing fixed-size digests hides both the contents and the length of the secret.
  unsigned char da[SHA256_DIGEST_LENGTH];
  unsigned char db[SHA256_DIGEST_LENGTH];
  SHA256(Bytes(a), a.size(), da);
  SHA256(Bytes(b), b.size(), db);
  return CRYPTO_memcmp(da, db, SHA256_DIGEST_LENGTH) == 0;
}

void Cleanse(std::string& secret) { OPENSSL_cleanse(secret.data(), secret.size()); }

}  // namespace agent::crypto

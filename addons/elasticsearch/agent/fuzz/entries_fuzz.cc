// libFuzzer target: the plaintext (entries) decoder. The input is encrypted under a fixed,
// fuzz-only key, framed as a keystore of each format, and opened with that key, so the
// fuzzer's time goes to the entry parser rather than to key derivation.
#include <cstddef>
#include <cstdint>
#include <string>

#include "crypto/crypto.h"
#include "keystore/codec.h"

namespace {

const std::string kSalt(64, '\x5a');
const std::string kIv(12, '\x3c');
const std::string kKey128(16, '\x11');  // fixed key: fuzzing only
const std::string kKey256(32, '\x22');

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using agent::keystore::Product;
  std::string plaintext(reinterpret_cast<const char*>(data), size);
  for (int version : {3, 4, 7}) {
    const std::string& key = version >= 7 ? kKey256 : kKey128;
    agent::keystore::Envelope env;
    env.version = version;
    env.salt = kSalt;
    env.iv = kIv;
    env.ciphertext = agent::crypto::AesGcmEncrypt(key, kIv, kSalt, plaintext).value();
    auto ks = agent::keystore::Decrypt(env, Product::kElasticsearch, key);
    if (ks.ok()) {
      // Entries that decode must seal and open again to the same entries.
      auto sealed = agent::keystore::Seal(ks.value(), kIv);
      if (!sealed.ok()) continue;  // e.g. a name too long to re-encode: a clean error
      auto envelope = agent::keystore::DecodeEnvelope(sealed.value(), Product::kElasticsearch);
      if (!envelope.ok()) __builtin_trap();
      auto again = agent::keystore::Decrypt(envelope.value(), Product::kElasticsearch, key);
      if (!again.ok() || again.value().entries.size() != ks.value().entries.size()) {
        __builtin_trap();
      }
    }
  }
  return 0;
}

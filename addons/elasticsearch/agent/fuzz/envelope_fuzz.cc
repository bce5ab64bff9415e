// libFuzzer target: the envelope decoder (header, lengths, footer, CRC) on arbitrary bytes,
// for both engines' file names. It must return a value or a clean error, never crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "keystore/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view file(reinterpret_cast<const char*>(data), size);
  for (auto product :
       {agent::keystore::Product::kElasticsearch, agent::keystore::Product::kOpenSearch}) {
    auto envelope = agent::keystore::DecodeEnvelope(file, product);
    if (envelope.ok()) {
      // What decodes must frame again into a file that decodes to the same fields.
      std::string again = agent::keystore::EncodeEnvelope(product, envelope.value());
      auto back = agent::keystore::DecodeEnvelope(again, product);
      if (!back.ok() || back.value().ciphertext != envelope.value().ciphertext ||
          back.value().salt != envelope.value().salt || back.value().iv != envelope.value().iv) {
        __builtin_trap();
      }
    }
  }
  return 0;
}

// What distinguishes the keystore format versions and the two engines' files: names, byte
// order, key-derivation cost and key size, and which format an engine release writes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace agent::keystore {

enum class Product { kElasticsearch, kOpenSearch };

// "elasticsearch.keystore" / "opensearch.keystore": both the file name and the codec name.
std::string_view FileName(Product product);
std::string_view ProductName(Product product);  // "elasticsearch" / "opensearch"
std::optional<Product> ParseProduct(std::string_view name);

constexpr int kOldestReadableFormat = 3;  // 1 and 2 are Java PKCS#12 containers: refused
constexpr int kNewestElasticsearchFormat = 7;
constexpr int kNewestOpenSearchFormat = 4;  // every OpenSearch release writes 4
int NewestFormat(Product product);

// The parameters that a format version implies; nothing in the file states them.
struct FormatTraits {
  bool little_endian_lengths;  // ES 8.0+ (v5+) write the four outer length ints LE
  int kdf_iterations;          // 10,000 up to v5, 210,000 from v6
  size_t key_len;              // AES-128 up to v6, AES-256 from v7
  bool has_entry_types;        // v3 stores "STRING"/"FILE" after each name
};
FormatTraits TraitsFor(Product product, int version);

// The format that a given engine release writes for a new keystore, from its version string
// ("8.15.2"); nullopt for a release that writes no supported format (before 6.3) or a version
// string that does not parse.
std::optional<int> FormatWrittenBy(Product product, std::string_view engine_version);

}  // namespace agent::keystore

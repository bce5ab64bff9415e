#include "keystore/format.h"

#include <charconv>

namespace agent::keystore {
namespace {

struct MajorMinor {
  int major = 0;
  int minor = 0;
};

std::optional<MajorMinor> ParseMajorMinor(std::string_view version) {
  MajorMinor mm;
  const char* end = version.data() + version.size();
  auto [p, ec] = std::from_chars(version.data(), end, mm.major);
  if (ec != std::errc() || p == end || *p != '.') return std::nullopt;
  auto [q, ec2] = std::from_chars(p + 1, end, mm.minor);
  if (ec2 != std::errc()) return std::nullopt;
  return mm;
}

}  // namespace

std::string_view FileName(Product product) {
  return product == Product::kOpenSearch ? "opensearch.keystore" : "elasticsearch.keystore";
}

std::string_view ProductName(Product product) {
  return product == Product::kOpenSearch ? "opensearch" : "elasticsearch";
}

std::optional<Product> ParseProduct(std::string_view name) {
  if (name == "elasticsearch") return Product::kElasticsearch;
  if (name == "opensearch") return Product::kOpenSearch;
  return std::nullopt;
}

int NewestFormat(Product product) {
  return product == Product::kOpenSearch ? kNewestOpenSearchFormat : kNewestElasticsearchFormat;
}

FormatTraits TraitsFor(Product product, int version) {
  FormatTraits t;
  // OpenSearch runs on Lucene 9 but keeps Lucene 8's big-endian ints for this file.
  t.little_endian_lengths = product == Product::kElasticsearch && version >= 5;
  t.kdf_iterations = version >= 6 ? 210000 : 10000;
  t.key_len = version >= 7 ? 32 : 16;
  t.has_entry_types = version == 3;
  return t;
}

std::optional<int> FormatWrittenBy(Product product, std::string_view engine_version) {
  auto mm = ParseMajorMinor(engine_version);
  if (!mm) return std::nullopt;
  if (product == Product::kOpenSearch) return mm->major >= 1 ? std::optional<int>(4) : std::nullopt;
  const int v = mm->major * 100 + mm->minor;  // 8.14 -> 814
  if (v < 603) return std::nullopt;           // PKCS#12 era (formats 1 and 2)
  if (v == 608) return 4;                     // 6.8 already writes 4, while 7.0 still writes 3
  if (v < 701) return 3;
  if (v < 800) return 4;
  if (v < 814) return 5;
  if (v < 818) return 6;
  return 7;
}

}  // namespace agent::keystore

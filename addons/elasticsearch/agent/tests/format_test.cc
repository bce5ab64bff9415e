// Which keystore format each engine release writes for a new keystore.
#include <gtest/gtest.h>

#include "keystore/format.h"

namespace agent::keystore {
namespace {

TEST(Format, ElasticsearchReleasesMapToTheirFormats) {
  const std::pair<const char*, int> cases[] = {
      {"6.3.0", 3},   {"6.7.2", 3},  {"6.8.23", 4}, {"7.0.1", 3},  {"7.1.0", 4},
      {"7.17.25", 4}, {"8.0.0", 5},  {"8.13.4", 5}, {"8.14.0", 6}, {"8.17.10", 6},
      {"8.18.0", 7},  {"8.19.3", 7}, {"9.0.0", 7},  {"9.3.1", 7},
  };
  for (const auto& [version, format] : cases) {
    EXPECT_EQ(FormatWrittenBy(Product::kElasticsearch, version), format) << version;
  }
}

TEST(Format, OpenSearchAlwaysWritesFormat4) {
  for (const char* v : {"1.3.20", "2.19.1", "3.0.0"}) {
    EXPECT_EQ(FormatWrittenBy(Product::kOpenSearch, v), 4) << v;
  }
}

TEST(Format, UnsupportedOrMalformedVersionsGiveNothing) {
  EXPECT_EQ(FormatWrittenBy(Product::kElasticsearch, "6.2.4"), std::nullopt);
  EXPECT_EQ(FormatWrittenBy(Product::kElasticsearch, "5.6.0"), std::nullopt);
  EXPECT_EQ(FormatWrittenBy(Product::kElasticsearch, "eight"), std::nullopt);
  EXPECT_EQ(FormatWrittenBy(Product::kElasticsearch, "8"), std::nullopt);
  EXPECT_EQ(FormatWrittenBy(Product::kElasticsearch, ""), std::nullopt);
}

TEST(Format, NamesAndProducts) {
  EXPECT_EQ(FileName(Product::kElasticsearch), "elasticsearch.keystore");
  EXPECT_EQ(FileName(Product::kOpenSearch), "opensearch.keystore");
  EXPECT_EQ(ParseProduct("opensearch"), Product::kOpenSearch);
  EXPECT_EQ(ParseProduct("OpenSearch"), std::nullopt);
}

}  // namespace
}  // namespace agent::keystore

// The codec on keystores it writes itself: round trips in every format, the byte order each
// format uses, corruption at each layer, and entry semantics.
#include <gtest/gtest.h>

#include <chrono>

#include "crypto/crypto.h"
#include "keystore/bytes.h"
#include "keystore/codec.h"
#include "test_util.h"

namespace agent::keystore {
namespace {

using agent::testing::ByteRange;

struct Format {
  Product product;
  int version;
};
const Format kFormats[] = {{Product::kElasticsearch, 3}, {Product::kElasticsearch, 4},
                           {Product::kElasticsearch, 5}, {Product::kElasticsearch, 6},
                           {Product::kElasticsearch, 7}, {Product::kOpenSearch, 3},
                           {Product::kOpenSearch, 4}};

std::string Sample(Product product, int version, const std::string& password) {
  auto ks = CreateEmpty(product, version, password, ByteRange(1, 64));
  EXPECT_TRUE(ks.ok());
  ks.value().Set("keystore.seed", "seed-value-01234567");
  ks.value().Set("s3.client.default.access_key", "AKIA-TEST");
  ks.value().Set("s3.client.default.secret_key", std::string(4096, 'x'));
  auto bytes = Seal(ks.value(), ByteRange(9, 12));
  EXPECT_TRUE(bytes.ok());
  return bytes.value();
}

TEST(Codec, RoundTripsEveryFormatWithAndWithoutPassword) {
  for (const Format& f : kFormats) {
    for (const std::string password : {"", "pässwörd"}) {
      SCOPED_TRACE(std::to_string(f.version) + std::string(ProductName(f.product)) + password);
      const std::string bytes = Sample(f.product, f.version, password);
      auto ks = Open(bytes, f.product, password);
      ASSERT_TRUE(ks.ok()) << ks.error().message;
      EXPECT_EQ(ks.value().version, f.version);
      EXPECT_EQ(ks.value().has_password, !password.empty());
      ASSERT_EQ(ks.value().entries.size(), 3u);
      EXPECT_EQ(ks.value().Find("s3.client.default.access_key")->value, "AKIA-TEST");
      EXPECT_EQ(ks.value().Find("s3.client.default.secret_key")->value, std::string(4096, 'x'));
      // Sealing again with the same IV gives the same bytes: nothing is lost or reordered.
      EXPECT_EQ(Seal(ks.value(), ByteRange(9, 12)).value(), bytes);
    }
  }
}

TEST(Codec, OuterLengthsAreLittleEndianOnlyFromElasticsearchFormat5) {
  // dataLen sits right after the hasPassword byte: at 32 (ES) or 29 (OpenSearch).
  auto data_len_bytes = [](const std::string& file, size_t at) { return file.substr(at, 4); };
  const std::string v4 = Sample(Product::kElasticsearch, 4, "");
  const std::string v5 = Sample(Product::kElasticsearch, 5, "");
  const std::string os = Sample(Product::kOpenSearch, 4, "");
  EXPECT_EQ(data_len_bytes(v4, 32)[0], '\0');  // big-endian: high byte first
  EXPECT_NE(data_len_bytes(v5, 32)[0], '\0');  // little-endian: low byte first
  EXPECT_EQ(data_len_bytes(os, 29)[0], '\0');
  EXPECT_EQ(v4[31], '\0');  // hasPassword
}

TEST(Codec, KeyLengthAndIterationsFollowTheVersion) {
  EXPECT_EQ(TraitsFor(Product::kElasticsearch, 5).kdf_iterations, 10000);
  EXPECT_EQ(TraitsFor(Product::kElasticsearch, 6).kdf_iterations, 210000);
  EXPECT_EQ(TraitsFor(Product::kElasticsearch, 6).key_len, 16u);
  EXPECT_EQ(TraitsFor(Product::kElasticsearch, 7).key_len, 32u);
  EXPECT_FALSE(TraitsFor(Product::kOpenSearch, 4).little_endian_lengths);
  EXPECT_TRUE(TraitsFor(Product::kElasticsearch, 3).has_entry_types);
  EXPECT_FALSE(TraitsFor(Product::kElasticsearch, 4).has_entry_types);
}

TEST(Codec, WrongPasswordIsRefused) {
  const std::string bytes = Sample(Product::kElasticsearch, 7, "right");
  auto ks = Open(bytes, Product::kElasticsearch, "wrong");
  ASSERT_FALSE(ks.ok());
  EXPECT_EQ(ks.error().code, kPasswordIncorrect);
}

TEST(Codec, EveryTruncationIsCleanlyRefused) {
  const std::string bytes = Sample(Product::kElasticsearch, 5, "");
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto ks = Open(bytes.substr(0, n), Product::kElasticsearch, "");
    ASSERT_FALSE(ks.ok()) << "prefix of " << n << " bytes was accepted";
    EXPECT_EQ(ks.error().code, kCorrupt) << n;
  }
}

TEST(Codec, EveryFlippedBitIsDetected) {
  const std::string bytes = Sample(Product::kOpenSearch, 4, "");
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x10);
    auto ks = Open(damaged, Product::kOpenSearch, "");
    EXPECT_FALSE(ks.ok()) << "flip at byte " << i << " was not detected";
  }
}

// Frames a plaintext in a valid, correctly encrypted envelope, so that only the entry
// parser can object to it.
std::string WithPlaintext(const std::string& plaintext, int version = 5) {
  const std::string salt = ByteRange(0, 64);
  const std::string iv = ByteRange(0, 12);
  auto ks = CreateEmpty(Product::kElasticsearch, version, "", salt);
  Envelope env;
  env.version = version;
  env.salt = salt;
  env.iv = iv;
  env.ciphertext = crypto::AesGcmEncrypt(ks.value().key, iv, salt, plaintext).value();
  return EncodeEnvelope(Product::kElasticsearch, env);
}

std::string Plaintext(int count, const std::vector<std::pair<std::string, std::string>>& entries) {
  ByteWriter w;
  w.WriteInt32(count, false);
  for (const auto& [name, value] : entries) {
    w.WriteJavaUtf(name);
    w.WriteSizedBytes(value, false);
  }
  return w.Release();
}

TEST(Codec, PlaintextMustBeConsumedExactly) {
  auto ok = Open(WithPlaintext(Plaintext(1, {{"a", "b"}})), Product::kElasticsearch, "");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok.value().Find("a")->value, "b");

  auto trailing =
      Open(WithPlaintext(Plaintext(1, {{"a", "b"}}) + "x"), Product::kElasticsearch, "");
  EXPECT_EQ(trailing.error().code, kCorrupt);
  auto short_count = Open(WithPlaintext(Plaintext(2, {{"a", "b"}})), Product::kElasticsearch, "");
  EXPECT_EQ(short_count.error().code, kCorrupt);
  auto negative = Open(WithPlaintext(Plaintext(-1, {})), Product::kElasticsearch, "");
  EXPECT_EQ(negative.error().code, kCorrupt);
  auto huge = Open(WithPlaintext(Plaintext(0x7fffffff, {{"a", "b"}})), Product::kElasticsearch, "");
  EXPECT_EQ(huge.error().code, kCorrupt);
}

TEST(Codec, ADuplicateNameKeepsTheLaterValueAsTheEnginesDo) {
  auto ks = Open(WithPlaintext(Plaintext(2, {{"a", "first"}, {"a", "second"}})),
                 Product::kElasticsearch, "");
  ASSERT_TRUE(ks.ok());
  ASSERT_EQ(ks.value().entries.size(), 1u);
  EXPECT_EQ(ks.value().Find("a")->value, "second");
}

TEST(Codec, ManyEntriesDecodeInLinearTime) {
  constexpr int kCount = 100000;
  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 0; i < kCount; ++i) {
    std::string n = std::to_string(i);
    entries.emplace_back("s.name." + std::string(6 - n.size(), '0') + n, "v" + n);
  }
  entries.emplace_back("s.name.000007", "later");  // a duplicate still replaces the earlier
  const std::string file = WithPlaintext(Plaintext(kCount + 1, entries));
  const auto started = std::chrono::steady_clock::now();
  auto ks = Open(file, Product::kElasticsearch, "");
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(ks.ok()) << ks.error().message;
  ASSERT_EQ(ks.value().entries.size(), static_cast<size_t>(kCount));
  EXPECT_EQ(ks.value().Find("s.name.000007")->value, "later");
  EXPECT_EQ(ks.value().entries[7].name, "s.name.000007");  // in its first place
  // A comparison of each name with every earlier one took 7-25 s here; a linear decode takes
  // milliseconds, so even a loaded machine stays far under this bound.
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(Codec, Format3RefusesAnUnknownTypeTag) {
  ByteWriter w;
  w.WriteInt32(1, false);
  w.WriteJavaUtf("a");
  w.WriteJavaUtf("BLOB");
  w.WriteSizedBytes("v", false);
  auto ks = Open(WithPlaintext(w.Release(), 3), Product::kElasticsearch, "");
  ASSERT_FALSE(ks.ok());
  EXPECT_EQ(ks.error().code, kCorrupt);
}

TEST(Codec, NegativeOuterLengthIsRefusedBeforeAllocating) {
  std::string bytes = Sample(Product::kElasticsearch, 4, "");
  bytes[36] = '\xff';  // saltLen (big-endian in format 4) becomes negative
  auto ks = Open(bytes, Product::kElasticsearch, "");
  ASSERT_FALSE(ks.ok());
  EXPECT_EQ(ks.error().code, kCorrupt);
}

TEST(Codec, FormatsOutsideThreeToSevenAreRefusedOnCreate) {
  EXPECT_EQ(CreateEmpty(Product::kElasticsearch, 2, "", ByteRange(0, 64)).error().code,
            kFormatUnsupported);
  EXPECT_EQ(CreateEmpty(Product::kElasticsearch, 8, "", ByteRange(0, 64)).error().code,
            kFormatUnsupported);
  EXPECT_EQ(CreateEmpty(Product::kOpenSearch, 5, "", ByteRange(0, 64)).error().code,
            kFormatUnsupported);
}

TEST(Codec, SetReplacesInPlaceAndRemoveDeletes) {
  auto ks = CreateEmpty(Product::kElasticsearch, 7, "", ByteRange(0, 64));
  ks.value().Set("a", "1");
  ks.value().Set("b", "2");
  ks.value().Set("a", "3");
  ASSERT_EQ(ks.value().entries.size(), 2u);
  EXPECT_EQ(ks.value().entries[0].name, "a");
  EXPECT_EQ(ks.value().entries[0].value, "3");
  EXPECT_TRUE(ks.value().Remove("a"));
  EXPECT_FALSE(ks.value().Remove("a"));
  EXPECT_EQ(ks.value().entries.size(), 1u);
}

TEST(Codec, SettingNamesFollowTheEnginesPattern) {
  EXPECT_TRUE(IsValidSettingName("s3.client.kb_x-1.access_key"));
  EXPECT_FALSE(IsValidSettingName(""));
  EXPECT_FALSE(IsValidSettingName("a b"));
  EXPECT_FALSE(IsValidSettingName("a/b"));
}

}  // namespace
}  // namespace agent::keystore

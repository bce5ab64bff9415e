// Reads every keystore in ../shared/testdata/keystore (written by the engines, or generated
// deterministically) and checks each entry against MANIFEST.md. Skips when ../shared is absent.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "keystore/codec.h"
#include "test_util.h"

namespace agent::keystore {
namespace {

namespace fs = std::filesystem;
using agent::testing::ByteRange;
using agent::testing::ReadFileOrEmpty;

const fs::path kTestdata = AGENT_SHARED_TESTDATA;

struct Vector {
  const char* file;
  Product product;
  const char* password;
  int version;
  std::map<std::string, std::string> entries;
  bool deterministic;  // synthetic: fixed salt 00..3f and IV a0..ab, entries in listed order
  std::vector<std::string> order;
};

const std::string kFile256 = ByteRange(0, 256);
const std::string kUnicodeValue = "h\xc3\xa9llo \xf0\x9d\x84\x9e";
const std::string kUnicodePassword = "p\xc3\xa4ssw\xc3\xb6rd\xe2\x82\xac\xf0\x9d\x84\x9e";

std::vector<Vector> Vectors() {
  const auto es = Product::kElasticsearch;
  const auto os = Product::kOpenSearch;
  return {
      {"upstream/format-v3-elasticsearch.keystore",
       es,
       "",
       3,
       {{"keystore.seed", "5ehK4*A3US#G-E9jQrq*"},
        {"string_setting", "string_value"},
        {"file_setting", "file_value"}},
       false,
       {}},
      {"real/es-v3-nopassword-seedonly.keystore",
       es,
       "",
       3,
       {{"keystore.seed", "ZIPTy_b&-%fE8fixkf8%"}},
       false,
       {}},
      {"real/es-v4-nopassword-asdf.keystore",
       es,
       "",
       4,
       {{"asdf", "zxcv"}, {"keystore.seed", "eJbq^==M4*ARllJmvkm_"}},
       false,
       {}},
      {"real/es-v4-nopassword-seedonly.keystore",
       es,
       "",
       4,
       {{"keystore.seed", "s&OQY!H_64Bx@Jtm-H!+"}},
       false,
       {}},
      {"real/es-v5-nopassword-seedonly.keystore",
       es,
       "",
       5,
       {{"keystore.seed", "oT8gm1mqOTK9aVyDBs3r"}},
       false,
       {}},
      {"real/es-v5-nopassword-s3example.keystore",
       es,
       "",
       5,
       {{"s3.client.default.access_key", "AKIAIOSFODNN7EXAMPLE"},
        {"s3.client.default.secret_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
        {"keystore.seed", "+q0yVZgCJLi_A%wBPKMY"}},
       false,
       {}},
      {"real/es-v6-nopassword-seedonly.keystore",
       es,
       "",
       6,
       {{"keystore.seed", "+ihjN$g9Lm%RFwQ!jePl"}},
       false,
       {}},
      {"real/opensearch-v4-nopassword-seedonly.keystore",
       os,
       "",
       4,
       {{"keystore.seed", "yR%2=bszR9b=PE9vf55H"}},
       false,
       {}},
      {"synthetic/synthetic-v3-password.keystore",
       es,
       "keystorepassword",
       3,
       {{"keystore.seed", "Synth3tic_Seed-00003"},
        {"string_setting", "string_value"},
        {"file_setting", kFile256}},
       true,
       {"keystore.seed", "string_setting", "file_setting"}},
      {"synthetic/synthetic-v4-password.keystore",
       es,
       "keystorepassword",
       4,
       {{"keystore.seed", "Synth3tic_Seed-00004"},
        {"string_setting", "string_value"},
        {"file_setting", kFile256}},
       true,
       {"keystore.seed", "string_setting", "file_setting"}},
      {"synthetic/synthetic-v5-password-unicode.keystore",
       es,
       kUnicodePassword.c_str(),
       5,
       {{"keystore.seed", "Synth3tic_Seed-00005"},
        {"unicode_setting", kUnicodeValue},
        {"file_setting", kFile256}},
       true,
       {"keystore.seed", "unicode_setting", "file_setting"}},
      {"synthetic/synthetic-v6-password.keystore",
       es,
       "keystorepassword",
       6,
       {{"keystore.seed", "Synth3tic_Seed-00006"}, {"string_setting", "string_value"}},
       true,
       {"keystore.seed", "string_setting"}},
      {"synthetic/synthetic-v7-password.keystore",
       es,
       "keystorepassword",
       7,
       {{"keystore.seed", "Synth3tic_Seed-00007"},
        {"string_setting", "string_value"},
        {"file_setting", kFile256}},
       true,
       {"keystore.seed", "string_setting", "file_setting"}},
      {"synthetic/synthetic-v7-nopassword.keystore",
       es,
       "",
       7,
       {{"keystore.seed", "Synth3tic_Seed-0007n"}},
       true,
       {"keystore.seed"}},
      {"synthetic/synthetic-opensearch-v4-password.keystore",
       os,
       "keystorepassword",
       4,
       {{"keystore.seed", "Synth3tic_Seed-0S004"}, {"string_setting", "string_value"}},
       true,
       {"keystore.seed", "string_setting"}},
  };
}

class TestdataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTestdata / "MANIFEST.md")) {
      GTEST_SKIP() << "skipped: " << kTestdata.string()
                   << " is absent (it sits beside the project, not in a user's clone)";
    }
  }
};

TEST_F(TestdataTest, EveryVectorDecodesToItsManifestEntries) {
  for (const Vector& v : Vectors()) {
    SCOPED_TRACE(v.file);
    const std::string bytes = ReadFileOrEmpty(kTestdata / v.file);
    ASSERT_FALSE(bytes.empty());
    auto ks = Open(bytes, v.product, v.password);
    ASSERT_TRUE(ks.ok()) << ks.error().code << ": " << ks.error().message;
    EXPECT_EQ(ks.value().version, v.version);
    std::map<std::string, std::string> got;
    for (const Entry& e : ks.value().entries) got[e.name] = e.value;
    EXPECT_EQ(got, v.entries);
  }
}

TEST_F(TestdataTest, WriterReproducesDeterministicVectorsByteForByte) {
  for (const Vector& v : Vectors()) {
    if (!v.deterministic) continue;
    SCOPED_TRACE(v.file);
    auto ks = CreateEmpty(v.product, v.version, v.password, ByteRange(0x00, 64));
    ASSERT_TRUE(ks.ok());
    for (const std::string& name : v.order) ks.value().Set(name, v.entries.at(name));
    if (v.version == 3) {  // format 3 keeps each entry's type tag
      for (Entry& e : ks.value().entries) e.is_file = e.name == "file_setting";
    }
    auto sealed = Seal(ks.value(), ByteRange(0xa0, 12));
    ASSERT_TRUE(sealed.ok());
    EXPECT_EQ(sealed.value(), ReadFileOrEmpty(kTestdata / v.file));
  }
}

TEST_F(TestdataTest, V3TypeTagsAreKept) {
  auto ks = Open(ReadFileOrEmpty(kTestdata / "upstream/format-v3-elasticsearch.keystore"),
                 Product::kElasticsearch, "");
  ASSERT_TRUE(ks.ok());
  EXPECT_TRUE(ks.value().Find("file_setting")->is_file);
  EXPECT_FALSE(ks.value().Find("string_setting")->is_file);
}

TEST_F(TestdataTest, LegacyFormat2IsRefusedAsTooOld) {
  auto ks = Open(ReadFileOrEmpty(kTestdata / "real/es-v2-nopassword.keystore"),
                 Product::kElasticsearch, "");
  ASSERT_FALSE(ks.ok());
  EXPECT_EQ(ks.error().code, kFormatTooOld);
  EXPECT_NE(ks.error().message.find("version 2"), std::string::npos);
  EXPECT_NE(ks.error().message.find("recreate"), std::string::npos);
}

TEST_F(TestdataTest, EachNegativeVectorGivesItsError) {
  struct Case {
    const char* file;
    const char* code;
    const char* phrase;
  };
  const Case cases[] = {
      {"neg-bad-crc.keystore", kCorrupt, "checksum mismatch"},
      {"neg-haspassword-byte-2.keystore", kCorrupt, "hasPassword"},
      {"neg-version-8-too-new.keystore", kFormatUnsupported, "version 8"},
      {"neg-version-2-header-only.keystore", kFormatTooOld, "version 2"},
      {"neg-ciphertext-bitflip.keystore", kPasswordIncorrect, "incorrect"},
      {"neg-trailing-byte.keystore", kCorrupt, "file extended"},
      {"neg-codec-name-mismatch.keystore", kCorrupt, "codec name"},
      {"neg-datalen-too-long.keystore", kCorrupt, "truncated"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    const std::string bytes = ReadFileOrEmpty(kTestdata / "synthetic/negative" / c.file);
    ASSERT_FALSE(bytes.empty());
    auto ks = Open(bytes, Product::kElasticsearch, "");
    ASSERT_FALSE(ks.ok());
    EXPECT_EQ(ks.error().code, c.code);
    EXPECT_NE(ks.error().message.find(c.phrase), std::string::npos) << ks.error().message;
  }
}

TEST_F(TestdataTest, WrongPasswordIsReportedAsSuch) {
  auto ks = Open(ReadFileOrEmpty(kTestdata / "synthetic/synthetic-v4-password.keystore"),
                 Product::kElasticsearch, "not-the-password");
  ASSERT_FALSE(ks.ok());
  EXPECT_EQ(ks.error().code, kPasswordIncorrect);
  auto none = Open(ReadFileOrEmpty(kTestdata / "synthetic/synthetic-v4-password.keystore"),
                   Product::kElasticsearch, "");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no keystore password is configured"), std::string::npos);
}

TEST_F(TestdataTest, AnElasticsearchFileIsNotAnOpenSearchKeystore) {
  auto ks = Open(ReadFileOrEmpty(kTestdata / "real/es-v4-nopassword-seedonly.keystore"),
                 Product::kOpenSearch, "");
  ASSERT_FALSE(ks.ok());
  EXPECT_EQ(ks.error().code, kCorrupt);
}

}  // namespace
}  // namespace agent::keystore

// Writes a seed corpus for the fuzzers: keystores of every format made by the agent's own
// writer (the engines' files are added by run.sh when ../shared is present), and plaintexts.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "keystore/bytes.h"
#include "keystore/codec.h"

namespace {

void Write(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace

int main(int argc, char** argv) {
  using agent::keystore::Product;
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_seeds ENVELOPE_DIR ENTRIES_DIR\n");
    return 2;
  }
  const std::filesystem::path envelopes = argv[1];
  const std::filesystem::path entries = argv[2];
  std::filesystem::create_directories(envelopes);
  std::filesystem::create_directories(entries);
  const std::string salt(64, '\x01');
  const std::string iv(12, '\x02');
  for (auto [product, version] : {std::pair{Product::kElasticsearch, 3},
                                  {Product::kElasticsearch, 4},
                                  {Product::kElasticsearch, 5},
                                  {Product::kElasticsearch, 6},
                                  {Product::kElasticsearch, 7},
                                  {Product::kOpenSearch, 4}}) {
    auto ks = agent::keystore::CreateEmpty(product, version, "", salt);
    ks.value().Set("keystore.seed", "0123456789abcdefghij");
    ks.value().Set("s3.client.default.access_key", "AK");
    std::string name =
        std::string(agent::keystore::ProductName(product)) + "-v" + std::to_string(version);
    Write(envelopes / name, agent::keystore::Seal(ks.value(), iv).value());
  }
  agent::keystore::ByteWriter plain;
  plain.WriteInt32(2, false);
  plain.WriteJavaUtf("keystore.seed");
  plain.WriteSizedBytes("0123456789abcdefghij", false);
  plain.WriteJavaUtf("s3.client.default.secret_key");
  plain.WriteSizedBytes("SK", false);
  Write(entries / "two-entries", plain.Release());
  agent::keystore::ByteWriter typed;
  typed.WriteInt32(1, false);
  typed.WriteJavaUtf("file_setting");
  typed.WriteJavaUtf("FILE");
  typed.WriteSizedBytes("file_value", false);
  Write(entries / "v3-typed", typed.Release());
  return 0;
}

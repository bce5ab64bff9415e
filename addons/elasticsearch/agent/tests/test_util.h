// Small helpers shared by the unit tests: reading files, temporary directories, byte strings.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace agent::testing {

inline std::string ReadFileOrEmpty(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Bytes first, first+1, ... (count of them), e.g. the fixed salt 00..3f of the test vectors.
inline std::string ByteRange(int first, int count) {
  std::string s;
  for (int i = 0; i < count; ++i) s.push_back(static_cast<char>(first + i));
  return s;
}

// A fresh directory under the system's temp dir, removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "agent-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace agent::testing

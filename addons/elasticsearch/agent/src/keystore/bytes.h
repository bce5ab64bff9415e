// ByteReader and ByteWriter: bounds-checked reading and writing of the primitive encodings that
// the keystore format uses (big/little-endian int32, Lucene VInt, Java writeUTF strings).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace agent::keystore {

// Consumes a byte string from the front. Every read checks the remaining length first and
// returns nullopt instead of reading past the end.
class ByteReader {
 public:
  explicit ByteReader(std::string_view data) : data_(data) {}

  size_t remaining() const { return data_.size(); }
  bool empty() const { return data_.empty(); }

  std::optional<uint8_t> ReadU8();
  std::optional<int32_t> ReadInt32(bool little_endian);
  std::optional<int64_t> ReadBE64();
  std::optional<uint32_t> ReadVInt();  // Lucene VInt: 7 bits a byte, low group first, <= 5 bytes
  std::optional<std::string_view> ReadBytes(size_t n);
  // A length-prefixed array: int32 length (checked: not negative, not past the end), then bytes.
  std::optional<std::string_view> ReadSizedBytes(bool little_endian);
  // Java DataOutputStream.writeUTF: big-endian u16 byte length, then the (modified UTF-8) bytes.
  std::optional<std::string_view> ReadJavaUtf();

 private:
  std::string_view data_;
};

// Appends encodings to a string.
class ByteWriter {
 public:
  void WriteU8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void WriteInt32(int32_t v, bool little_endian);
  void WriteBE64(int64_t v);
  void WriteVInt(uint32_t v);
  void WriteBytes(std::string_view bytes) { out_.append(bytes); }
  // The caller guarantees that the bytes fit an int32 length (checked before encoding starts).
  void WriteSizedBytes(std::string_view bytes, bool little_endian);
  // The caller guarantees bytes.size() <= 65535.
  void WriteJavaUtf(std::string_view bytes);

  const std::string& data() const { return out_; }
  std::string Release() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace agent::keystore

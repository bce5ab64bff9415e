#include "keystore/bytes.h"

namespace agent::keystore {

std::optional<uint8_t> ByteReader::ReadU8() {
  if (data_.empty()) return std::nullopt;
  uint8_t v = static_cast<uint8_t>(data_[0]);
  data_.remove_prefix(1);
  return v;
}

std::optional<int32_t> ByteReader::ReadInt32(bool little_endian) {
  if (data_.size() < 4) return std::nullopt;
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    uint32_t byte = static_cast<uint8_t>(data_[little_endian ? 3 - i : i]);
    v = (v << 8) | byte;
  }
  data_.remove_prefix(4);
  return static_cast<int32_t>(v);
}

std::optional<int64_t> ByteReader::ReadBE64() {
  if (data_.size() < 8) return std::nullopt;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(data_[i]);
  data_.remove_prefix(8);
  return static_cast<int64_t>(v);
}

std::optional<uint32_t> ByteReader::ReadVInt() {
  uint32_t v = 0;
  for (int shift = 0; shift < 35; shift += 7) {
    auto byte = ReadU8();
    if (!byte) return std::nullopt;
    v |= static_cast<uint32_t>(*byte & 0x7f) << shift;
    if ((*byte & 0x80) == 0) return v;
  }
  return std::nullopt;  // more than 5 bytes: not a valid int32 VInt
}

std::optional<std::string_view> ByteReader::ReadBytes(size_t n) {
  if (data_.size() < n) return std::nullopt;
  std::string_view v = data_.substr(0, n);
  data_.remove_prefix(n);
  return v;
}

std::optional<std::string_view> ByteReader::ReadSizedBytes(bool little_endian) {
  auto len = ReadInt32(little_endian);
  if (!len || *len < 0) return std::nullopt;
  return ReadBytes(static_cast<size_t>(*len));
}

std::optional<std::string_view> ByteReader::ReadJavaUtf() {
  auto hi = ReadU8();
  auto lo = ReadU8();
  if (!hi || !lo) return std::nullopt;
  return ReadBytes((static_cast<size_t>(*hi) << 8) | *lo);
}

void ByteWriter::WriteInt32(int32_t v, bool little_endian) {
  uint32_t u = static_cast<uint32_t>(v);
  for (int i = 0; i < 4; ++i) {
    int shift = little_endian ? 8 * i : 8 * (3 - i);
    WriteU8(static_cast<uint8_t>(u >> shift));
  }
}

void ByteWriter::WriteBE64(int64_t v) {
  uint64_t u = static_cast<uint64_t>(v);
  for (int shift = 56; shift >= 0; shift -= 8) WriteU8(static_cast<uint8_t>(u >> shift));
}

void ByteWriter::WriteVInt(uint32_t v) {
  while (v >= 0x80) {
    WriteU8(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  WriteU8(static_cast<uint8_t>(v));
}

void ByteWriter::WriteSizedBytes(std::string_view bytes, bool little_endian) {
  WriteInt32(static_cast<int32_t>(bytes.size()), little_endian);
  WriteBytes(bytes);
}

void ByteWriter::WriteJavaUtf(std::string_view bytes) {
  WriteU8(static_cast<uint8_t>(bytes.size() >> 8));
  WriteU8(static_cast<uint8_t>(bytes.size() & 0xff));
  WriteBytes(bytes);
}

}  // namespace agent::keystore

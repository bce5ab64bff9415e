#include "keystore/codec.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <unordered_map>

#include "crypto/crypto.h"
#include "keystore/bytes.h"

namespace agent::keystore {
namespace {

constexpr int32_t kCodecMagic = 0x3FD76C17;     // Lucene CodecUtil.CODEC_MAGIC
constexpr int32_t kFooterMagic = ~kCodecMagic;  // Lucene CodecUtil.FOOTER_MAGIC
constexpr size_t kFooterSize = 16;              // magic + algorithm id + 64-bit checksum
constexpr size_t kGcmTagSize = 16;
constexpr size_t kMaxJavaUtfBytes = 65535;  // writeUTF's u16 length

Error Corrupt(const std::string& why) { return MakeError(kCorrupt, "keystore is corrupt: " + why); }

uint32_t Crc32(std::string_view bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes a uInt length; keystores are small, but feed it in safe chunks regardless.
  while (!bytes.empty()) {
    uInt n = static_cast<uInt>(std::min<size_t>(bytes.size(), 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), n);
    bytes.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
}

// Header: magic, codec name, version, hasPassword. Checks each in the engines' order.
Status DecodeHeader(ByteReader& in, Product product, Envelope& out) {
  auto magic = in.ReadInt32(false);
  if (!magic) return Corrupt("file is too short for a header");
  if (*magic != kCodecMagic) return Corrupt("codec header mismatch (not a keystore file)");
  auto name_len = in.ReadVInt();
  if (!name_len) return Corrupt("truncated codec name");
  auto name = in.ReadBytes(*name_len);
  if (!name) return Corrupt("truncated codec name");
  if (*name != FileName(product)) {
    return Corrupt("codec name is not \"" + std::string(FileName(product)) + "\"");
  }
  auto version = in.ReadInt32(false);
  if (!version) return Corrupt("truncated format version");
  if (*version < kOldestReadableFormat) {
    return MakeError(kFormatTooOld, "keystore format version " + std::to_string(*version) +
                                        " is too old; delete and recreate the keystore with the "
                                        "engine's keystore tool to upgrade it");
  }
  if (*version > NewestFormat(product)) {
    return MakeError(kFormatUnsupported, "keystore format version " + std::to_string(*version) +
                                             " is newer than this agent supports (up to " +
                                             std::to_string(NewestFormat(product)) + " for " +
                                             std::string(ProductName(product)) + ")");
  }
  out.version = *version;
  auto has_password = in.ReadU8();
  if (!has_password) return Corrupt("truncated header");
  if (*has_password > 1) return Corrupt("hasPassword byte is neither 0 nor 1");
  out.has_password = *has_password == 1;
  return Ok{};
}

// Body: dataLen, then salt, IV and ciphertext as length-prefixed arrays filling dataLen exactly.
Status DecodeBody(ByteReader& in, bool little_endian, Envelope& out) {
  auto data = in.ReadSizedBytes(little_endian);
  if (!data) return Corrupt("data length runs past the end of the file (file truncated?)");
  if (in.remaining() != kFooterSize) {
    return Corrupt(in.remaining() > kFooterSize ? "misplaced codec footer (file extended?)"
                                                : "misplaced codec footer (file truncated?)");
  }
  ByteReader body(*data);
  auto salt = body.ReadSizedBytes(little_endian);
  auto iv = salt ? body.ReadSizedBytes(little_endian) : std::nullopt;
  auto ciphertext = iv ? body.ReadSizedBytes(little_endian) : std::nullopt;
  if (!ciphertext || !body.empty()) return Corrupt("salt, IV and ciphertext do not fill the data");
  if (iv->empty()) return Corrupt("empty IV");
  if (ciphertext->size() < kGcmTagSize) return Corrupt("ciphertext shorter than its GCM tag");
  out.salt = *salt;
  out.iv = *iv;
  out.ciphertext = *ciphertext;
  return Ok{};
}

Status CheckFooter(ByteReader& in, std::string_view file) {
  auto magic = in.ReadInt32(false);
  auto algorithm = in.ReadInt32(false);
  auto checksum = in.ReadBE64();
  if (!magic || !algorithm || !checksum) return Corrupt("truncated footer");
  if (*magic != kFooterMagic) return Corrupt("codec footer mismatch (file truncated?)");
  if (*algorithm != 0) return Corrupt("unknown checksum algorithm in footer");
  if ((static_cast<uint64_t>(*checksum) >> 32) != 0) return Corrupt("illegal CRC-32 checksum");
  if (static_cast<uint32_t>(*checksum) != Crc32(file.substr(0, file.size() - 8))) {
    return Corrupt("checksum mismatch (file damaged?)");
  }
  return Ok{};
}

// Plaintext (big-endian in every version): count, then name [, type], value for each entry.
Result<std::vector<Entry>> DecodeEntries(std::string_view plaintext, bool has_entry_types) {
  ByteReader in(plaintext);
  auto count = in.ReadInt32(false);
  if (!count || *count < 0) return Corrupt("bad entry count");
  std::vector<Entry> entries;
  // Each entry takes at least 6 bytes (two lengths): bounds the count before reserving.
  if (static_cast<size_t>(*count) > in.remaining() / 6) return Corrupt("entry count too large");
  entries.reserve(static_cast<size_t>(*count));
  std::unordered_map<std::string, size_t> index_of;  // name -> its place in entries
  index_of.reserve(static_cast<size_t>(*count));
  for (int32_t i = 0; i < *count; ++i) {
    Entry e;
    auto name = in.ReadJavaUtf();
    if (!name) return Corrupt("truncated setting name");
    e.name = *name;
    if (has_entry_types) {
      auto type = in.ReadJavaUtf();
      if (!type || (*type != "STRING" && *type != "FILE")) return Corrupt("bad entry type");
      e.is_file = *type == "FILE";
    }
    auto value = in.ReadSizedBytes(false);
    if (!value) return Corrupt("truncated value of a setting");
    e.value = *value;
    // A duplicate name replaces the earlier entry, as the engines' map insert does. Found by
    // a hash of the names, so that a keystore of many entries decodes in linear time.
    auto [same, inserted] = index_of.try_emplace(e.name, entries.size());
    if (inserted) {
      entries.push_back(std::move(e));
    } else {
      crypto::Cleanse(entries[same->second].value);
      entries[same->second] = std::move(e);
    }
  }
  if (!in.empty()) return Corrupt("trailing bytes after the last entry");
  return entries;
}

Result<std::string> EncodeEntries(const std::vector<Entry>& entries, bool has_entry_types) {
  ByteWriter out;
  out.WriteInt32(static_cast<int32_t>(entries.size()), false);
  for (const Entry& e : entries) {
    if (e.name.size() > kMaxJavaUtfBytes) {
      return MakeError(kEntryInvalid, "a setting name is longer than 65535 bytes");
    }
    if (e.value.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
      return MakeError(kEntryInvalid, "the value of " + e.name + " is too large");
    }
    out.WriteJavaUtf(e.name);
    if (has_entry_types) out.WriteJavaUtf(e.is_file ? "FILE" : "STRING");
    out.WriteSizedBytes(e.value, false);
  }
  return out.Release();
}

}  // namespace

std::optional<Header> PeekHeader(std::string_view file, Product product) {
  ByteReader in(file);
  auto magic = in.ReadInt32(false);
  if (!magic || *magic != kCodecMagic) return std::nullopt;
  auto name_len = in.ReadVInt();
  auto name = name_len ? in.ReadBytes(*name_len) : std::nullopt;
  if (!name || *name != FileName(product)) return std::nullopt;
  auto version = in.ReadInt32(false);
  auto flag = in.ReadU8();
  if (!version || !flag || *flag > 1) return std::nullopt;
  return Header{*version, *flag == 1};
}

Result<Envelope> DecodeEnvelope(std::string_view file, Product product) {
  ByteReader in(file);
  Envelope envelope;
  if (Status s = DecodeHeader(in, product, envelope); !s.ok()) return s.error();
  const bool le = TraitsFor(product, envelope.version).little_endian_lengths;
  if (Status s = DecodeBody(in, le, envelope); !s.ok()) return s.error();
  if (Status s = CheckFooter(in, file); !s.ok()) return s.error();
  return envelope;
}

std::string EncodeEnvelope(Product product, const Envelope& envelope) {
  const bool le = TraitsFor(product, envelope.version).little_endian_lengths;
  ByteWriter out;
  out.WriteInt32(kCodecMagic, false);
  out.WriteVInt(static_cast<uint32_t>(FileName(product).size()));
  out.WriteBytes(FileName(product));
  out.WriteInt32(envelope.version, false);
  out.WriteU8(envelope.has_password ? 1 : 0);
  const size_t data_len = 12 + envelope.salt.size() + envelope.iv.size() +
                          envelope.ciphertext.size();  // three int32 lengths + their bytes
  out.WriteInt32(static_cast<int32_t>(data_len), le);
  out.WriteSizedBytes(envelope.salt, le);
  out.WriteSizedBytes(envelope.iv, le);
  out.WriteSizedBytes(envelope.ciphertext, le);
  out.WriteInt32(kFooterMagic, false);
  out.WriteInt32(0, false);  // checksum algorithm: zlib CRC-32
  out.WriteBE64(Crc32(out.data()));
  return out.Release();
}

const Entry* Keystore::Find(std::string_view name) const {
  for (const Entry& e : entries) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

void Keystore::Set(std::string_view name, std::string_view value) {
  for (Entry& e : entries) {
    if (e.name == name) {
      crypto::Cleanse(e.value);
      e.value = value;
      e.is_file = false;
      return;
    }
  }
  entries.push_back(Entry{std::string(name), std::string(value), false});
}

bool Keystore::Remove(std::string_view name) {
  auto it =
      std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.name == name; });
  if (it == entries.end()) return false;
  crypto::Cleanse(it->value);
  entries.erase(it);
  return true;
}

Keystore::~Keystore() {
  crypto::Cleanse(key);
  for (Entry& e : entries) crypto::Cleanse(e.value);
}

Result<Keystore> Open(std::string_view file, Product product, std::string_view password) {
  auto envelope = DecodeEnvelope(file, product);
  if (!envelope.ok()) return envelope.error();
  const Envelope& env = envelope.value();
  // As the engines do: a keystore whose header says "no password" is opened with the empty
  // password, whatever password is configured.
  if (!env.has_password) password = "";
  const FormatTraits traits = TraitsFor(product, env.version);
  auto key = crypto::Pbkdf2Sha512(password, env.salt, traits.kdf_iterations, traits.key_len);
  if (!key.ok()) return key.error();
  auto ks = Decrypt(env, product, std::move(key.value()));
  if (!ks.ok() && ks.error().code == kPasswordIncorrect && env.has_password && password.empty()) {
    return MakeError(kPasswordIncorrect,
                     "keystore is password-protected and no keystore password is configured");
  }
  if (ks.ok()) ks.value().has_password = !password.empty();
  return ks;
}

Result<Keystore> Decrypt(const Envelope& envelope, Product product, std::string key) {
  Keystore ks;
  ks.product = product;
  ks.version = envelope.version;
  ks.has_password = envelope.has_password;
  ks.salt = envelope.salt;
  ks.key = std::move(key);
  auto plaintext = crypto::AesGcmDecrypt(ks.key, envelope.iv, envelope.salt, envelope.ciphertext);
  if (!plaintext.ok()) {
    if (plaintext.error().code != "GCM_TAG_MISMATCH") return plaintext.error();
    return MakeError(kPasswordIncorrect,
                     "keystore password is incorrect (or the keystore was tampered with)");
  }
  auto entries =
      DecodeEntries(plaintext.value(), TraitsFor(product, envelope.version).has_entry_types);
  crypto::Cleanse(plaintext.value());
  if (!entries.ok()) return entries.error();
  ks.entries = std::move(entries.value());
  return ks;
}

Result<Keystore> CreateEmpty(Product product, int version, std::string_view password,
                             std::string salt) {
  if (version < kOldestReadableFormat || version > NewestFormat(product)) {
    return MakeError(kFormatUnsupported,
                     "cannot write keystore format version " + std::to_string(version));
  }
  const FormatTraits traits = TraitsFor(product, version);
  auto key = crypto::Pbkdf2Sha512(password, salt, traits.kdf_iterations, traits.key_len);
  if (!key.ok()) return key.error();
  Keystore ks;
  ks.product = product;
  ks.version = version;
  ks.has_password = !password.empty();
  ks.salt = std::move(salt);
  ks.key = std::move(key.value());
  return ks;
}

Status Rekey(Keystore& keystore, std::string_view password, std::string salt) {
  const FormatTraits traits = TraitsFor(keystore.product, keystore.version);
  auto key = crypto::Pbkdf2Sha512(password, salt, traits.kdf_iterations, traits.key_len);
  if (!key.ok()) return key.error();
  crypto::Cleanse(keystore.key);
  keystore.key = std::move(key.value());
  keystore.salt = std::move(salt);
  keystore.has_password = !password.empty();
  return Ok{};
}

Result<std::string> Seal(const Keystore& keystore, std::string_view iv) {
  const FormatTraits traits = TraitsFor(keystore.product, keystore.version);
  auto plaintext = EncodeEntries(keystore.entries, traits.has_entry_types);
  if (!plaintext.ok()) return plaintext.error();
  auto ciphertext = crypto::AesGcmEncrypt(keystore.key, iv, keystore.salt, plaintext.value());
  crypto::Cleanse(plaintext.value());
  if (!ciphertext.ok()) return ciphertext.error();
  Envelope env;
  env.version = keystore.version;
  env.has_password = keystore.has_password;
  env.salt = keystore.salt;
  env.iv = iv;
  env.ciphertext = std::move(ciphertext.value());
  return EncodeEnvelope(keystore.product, env);
}

bool IsValidSettingName(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

}  // namespace agent::keystore

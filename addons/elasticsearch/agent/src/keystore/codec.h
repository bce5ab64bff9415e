// The keystore codec: turns the bytes of an elasticsearch.keystore / opensearch.keystore file
// (formats 3 to 7) into entries and back. It knows nothing about files, paths or locks.
//
// File layout (see docs/keystore-format.md): Lucene codec header, a hasPassword byte, the
// salt, IV and AES-GCM ciphertext of the entries, and a Lucene footer with a CRC-32.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "keystore/format.h"

namespace agent::keystore {

// Error codes returned by the codec.
inline constexpr char kCorrupt[] = "KEYSTORE_CORRUPT";
inline constexpr char kFormatTooOld[] = "KEYSTORE_FORMAT_TOO_OLD";
inline constexpr char kFormatUnsupported[] = "KEYSTORE_FORMAT_UNSUPPORTED";
inline constexpr char kPasswordIncorrect[] = "KEYSTORE_PASSWORD_INCORRECT";
inline constexpr char kEntryInvalid[] = "KEYSTORE_ENTRY_INVALID";

// One secure setting. Values are opaque bytes (string settings are UTF-8, file settings raw).
struct Entry {
  std::string name;
  std::string value;
  bool is_file = false;  // only stored by format 3 ("FILE" type tag); kept for round trips
};

// The parts of a keystore file that can be checked without the password: header fields and
// the encrypted payload, after the length, footer and checksum checks have passed.
struct Envelope {
  int version = 0;
  bool has_password = false;
  std::string salt;
  std::string iv;
  std::string ciphertext;  // includes the 16-byte GCM tag
};

Result<Envelope> DecodeEnvelope(std::string_view file, Product product);

// The header's format version and hasPassword byte, read with no other check: for formats
// the codec does not know (the cli backend) and for reports. nullopt when it does not parse.
struct Header {
  int version = 0;
  bool has_password = false;
};
std::optional<Header> PeekHeader(std::string_view file, Product product);
// PeekHeader reads at most this many bytes from a file's start (magic, the name with its
// length, version, hasPassword: 36 for the longer name), so a prefix this long is enough.
inline constexpr size_t kHeaderPeekBytes = 64;
std::string EncodeEnvelope(Product product, const Envelope& envelope);

// A decrypted keystore, with the key derived from its password and salt so that it can be
// sealed again without another (expensive) key derivation.
struct Keystore {
  Product product = Product::kElasticsearch;
  int version = 0;
  bool has_password = false;
  std::string salt;
  std::string key;
  std::vector<Entry> entries;  // in file order; names are unique

  const Entry* Find(std::string_view name) const;
  void Set(std::string_view name, std::string_view value);  // replaces in place, or appends
  bool Remove(std::string_view name);

  Keystore() = default;
  Keystore(Keystore&&) = default;
  Keystore& operator=(Keystore&&) = default;
  Keystore(const Keystore&) = delete;  // holds a key and secrets: move, do not copy
  Keystore& operator=(const Keystore&) = delete;
  ~Keystore();  // wipes the key and the values
};

// Decodes and decrypts a keystore file. An empty password is the password of every keystore
// that is not password-protected.
Result<Keystore> Open(std::string_view file, Product product, std::string_view password);

// Decrypts an envelope with a key derived beforehand (Open derives it from the password).
// For callers that already hold the key: fuzzing and benchmarks skip the key derivation.
Result<Keystore> Decrypt(const Envelope& envelope, Product product, std::string key);

// A keystore with no entries, in the given format, keyed from the password and salt.
Result<Keystore> CreateEmpty(Product product, int version, std::string_view password,
                             std::string salt);

// Gives the keystore a new password: a new salt and the key derived from both, for its format.
Status Rekey(Keystore& keystore, std::string_view password, std::string salt);

// Encrypts the entries with the keystore's key and the given IV and frames the file.
Result<std::string> Seal(const Keystore& keystore, std::string_view iv);

// Setting names as the engines allow them on write: [A-Za-z0-9_.-]+ (lower case only in 6.x).
bool IsValidSettingName(std::string_view name);

// The engines' sizes for new keystores.
inline constexpr size_t kSaltSize = 64;
inline constexpr size_t kIvSize = 12;

}  // namespace agent::keystore

// Thin, checked wrappers over OpenSSL for what the keystore needs: PBKDF2-HMAC-SHA512,
// AES-GCM, a CSPRNG, SHA-256 and constant-time comparison. Bytes in, bytes out; no I/O.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace agent::crypto {

// Derives `key_len` bytes with PBKDF2-HMAC-SHA512 (the engines' "PBKDF2WithHmacSHA512").
Result<std::string> Pbkdf2Sha512(std::string_view password, std::string_view salt, int iterations,
                                 size_t key_len);

// AES-GCM with a 128-bit tag appended to the ciphertext (Java's layout). Key is 16 or 32 bytes.
Result<std::string> AesGcmEncrypt(std::string_view key, std::string_view iv, std::string_view aad,
                                  std::string_view plaintext);
// Fails with code "GCM_TAG_MISMATCH" when the tag does not verify (wrong key or tampering).
Result<std::string> AesGcmDecrypt(std::string_view key, std::string_view iv, std::string_view aad,
                                  std::string_view ciphertext_and_tag);

// `n` bytes from OpenSSL's CSPRNG.
Result<std::string> RandomBytes(size_t n);

std::string Sha256Hex(std::string_view data);

// Equal contents, in time that depends only on the lengths of the SHA-256 digests (fixed).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Overwrites a buffer that held a secret, in a way the compiler may not elide.
void Cleanse(std::string& secret);

}  // namespace agent::crypto

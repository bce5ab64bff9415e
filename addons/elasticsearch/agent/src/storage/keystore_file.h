// File handling for the keystore: an exclusive lock, reading the file, and replacing it
// atomically (temporary file in the same directory, fsync, rename, fsync of the directory).
// Knows nothing of the format: it moves bytes.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "common/result.h"

namespace agent::storage {

inline constexpr char kReadFailed[] = "KEYSTORE_READ_FAILED";
inline constexpr char kWriteFailed[] = "KEYSTORE_WRITE_FAILED";
inline constexpr char kOwnerMismatch[] = "KEYSTORE_OWNER_MISMATCH";
inline constexpr char kLockFailed[] = "KEYSTORE_LOCK_FAILED";
inline constexpr char kLockTimeout[] = "KEYSTORE_LOCK_TIMEOUT";
inline constexpr char kNotAFile[] = "KEYSTORE_NOT_A_FILE";

// Owns a file descriptor; closes it when destroyed.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release();

 private:
  int fd_ = -1;
};

// An exclusive flock(2) on a lock file beside the keystore, held until destroyed. Each
// acquisition opens its own descriptor, so it serialises threads of this process as well as
// other processes. The engines' own keystore tool does not take this lock.
class FileLock {
 public:
  // Waits at most `timeout` for the lock (KEYSTORE_LOCK_TIMEOUT after that). The lock file
  // is created with mode 0660; one that another user created is opened read-only, which
  // flock(2) accepts.
  static Result<FileLock> Acquire(const std::filesystem::path& lock_path,
                                  std::chrono::milliseconds timeout);

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing the descriptor releases the lock
};

// The file's bytes, or nullopt when it does not exist. Anything but a regular file (a link, a
// directory, a FIFO, a device) is refused as KEYSTORE_NOT_A_FILE, without blocking on it.
// Secret files (the keystore password, credentials) are read through links, as Kubernetes
// mounts them (`password -> ..data/password`); the keystore never is (the agent replaces it).
enum class Links { kRefuse, kFollow };
Result<std::optional<std::string>> ReadFileIfExists(const std::filesystem::path& path,
                                                    Links links = Links::kRefuse);
// The first `length` bytes of the keystore (fewer if it is shorter), refused as
// ReadFileIfExists refuses: for what needs its header only, without reading a large file.
Result<std::optional<std::string>> ReadFilePrefixIfExists(const std::filesystem::path& path,
                                                          size_t length);
// Ok when nothing is at `path` or a regular file that the agent can open; else the error
// ReadFileIfExists would give (KEYSTORE_NOT_A_FILE for a link, a socket, a FIFO, ...).
Status CheckRegularFileOrAbsent(const std::filesystem::path& path);

// Replaces `path` with `bytes` so that readers see either the old or the new file, never a
// mix: write a temporary file in the same directory (mode 0660), fsync it, rename it over
// `path`, fsync the directory. The new file keeps the old one's mode and group. Refuses (writing
// nothing) when the existing file belongs to another user, since replacing it would change its
// owner.
Status ReplaceAtomically(const std::filesystem::path& path, const std::string& bytes);

// Writes `bytes` at `path` with `mode`, atomically as ReplaceAtomically (temporary file,
// fsync, rename, fsync of the directory), without its owner check or kept mode: for a file
// the agent makes for itself (its own executable's copy, `es-agent install`).
Status WriteAtomically(const std::filesystem::path& path, const std::string& bytes, unsigned mode);

// The mode and group a keystore keeps across a rewrite: those of the file it replaces (an
// operator's 0640, or a group the engine reads through), else the engines' own 0660.
struct FileAccess {
  unsigned mode = 0660;
  std::optional<unsigned> group;
};
FileAccess AccessToKeep(const std::filesystem::path& path);
// Puts a mode and group back after another program (the engine's keystore tool, which sets
// its own) rewrote the file; best effort, as ReplaceAtomically's group.
void RestoreAccess(const std::filesystem::path& path, const FileAccess& access);

// Ok when `path` does not exist or belongs to the process's user (KEYSTORE_OWNER_MISMATCH).
Status CheckOwner(const std::filesystem::path& path);

// Deletes the temporary files that an interrupted ReplaceAtomically of `path` left behind
// (a killed process cannot clean up). Call it holding the lock, so no live write is hit.
// Returns how many it removed.
Result<int> RemoveStaleTemporaries(const std::filesystem::path& path);

}  // namespace agent::storage

#include "storage/keystore_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace agent::storage {
namespace {

namespace fs = std::filesystem;

constexpr mode_t kKeystoreMode = 0660;          // the mode the engines give their keystore
constexpr size_t kMaxKeystoreSize = 64u << 20;  // far above any real keystore; bounds memory

std::string Describe(const fs::path& path, const char* what) {
  return std::string(what) + " " + path.string() + ": " + std::strerror(errno);
}

Status WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return MakeError(kWriteFailed, std::string("cannot write: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Ok{};
}

Status FsyncDirectory(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) {
    return MakeError(kWriteFailed, Describe(dir, "cannot fsync directory"));
  }
  return Ok{};
}

}  // namespace

Status CheckOwner(const fs::path& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Ok{};
    return MakeError(kReadFailed, Describe(path, "cannot stat"));
  }
  if (st.st_uid != ::geteuid()) {
    return MakeError(kOwnerMismatch, "will not replace " + path.string() + ": it is owned by uid " +
                                         std::to_string(st.st_uid) + ", the agent runs as uid " +
                                         std::to_string(::geteuid()) +
                                         " (run the agent as the engine's user)");
  }
  return Ok{};
}

namespace {

// Temporary files are ".<name>.agent-XXXXXX": hidden, and recognisable as ours alone.
std::string TemporaryPrefix(const fs::path& path) {
  return "." + path.filename().string() + ".agent-";
}

// Writes the bytes to a new temporary file beside `path` and returns its name.
Result<fs::path> WriteTemporary(const fs::path& path, const std::string& bytes,
                                const FileAccess& access) {
  std::string tmpl = (path.parent_path() / (TemporaryPrefix(path) + "XXXXXX")).string();
  UniqueFd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!fd.valid()) {
    return MakeError(kWriteFailed, Describe(path.parent_path(), "cannot create a file in"));
  }
  const fs::path tmp = tmpl;
  Status s = WriteAll(fd.get(), bytes);
  if (!s.ok()) s = MakeError(kWriteFailed, tmp.string() + ": " + s.error().message);
  if (s.ok() && access.group && ::fchown(fd.get(), static_cast<uid_t>(-1), *access.group) != 0) {
    // Not a failure: the process may set only its own groups (root any), and where it cannot
    // the file takes the process's group; the owner check makes that the engine's user's.
  }
  if (s.ok() && ::fchmod(fd.get(), access.mode) != 0) {
    s = MakeError(kWriteFailed, Describe(tmp, "cannot chmod"));
  }
  if (s.ok() && ::fsync(fd.get()) != 0) s = MakeError(kWriteFailed, Describe(tmp, "cannot fsync"));
  if (s.ok() && ::close(fd.Release()) != 0) {
    s = MakeError(kWriteFailed, Describe(tmp, "cannot close"));
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s.error();
  }
  return tmp;
}

}  // namespace

FileAccess AccessToKeep(const fs::path& path) {
  struct stat st;
  FileAccess access;
  if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    // The owner keeps read and write, or the agent could not read its own next write.
    access.mode = (st.st_mode & 0777) | S_IRUSR | S_IWUSR;
    access.group = st.st_gid;
  }
  return access;
}

void RestoreAccess(const fs::path& path, const FileAccess& access) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  if (access.group && st.st_gid != *access.group &&
      ::chown(path.c_str(), static_cast<uid_t>(-1), *access.group) != 0) {
    // As in WriteTemporary: a group the process may not set is left as it is.
  }
  if ((st.st_mode & 0777) != access.mode) ::chmod(path.c_str(), access.mode);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.Release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

int UniqueFd::Release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

Result<FileLock> FileLock::Acquire(const fs::path& lock_path, std::chrono::milliseconds timeout) {
  UniqueFd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, kKeystoreMode));
  if (fd.valid()) {
    struct stat st;
    // Whoever creates it, the engine's group can use it (the umask would take g+w away).
    if (::fstat(fd.get(), &st) == 0 && st.st_uid == ::geteuid()) ::fchmod(fd.get(), kKeystoreMode);
  } else if (errno == EACCES) {
    fd = UniqueFd(::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  }
  if (!fd.valid()) return MakeError(kLockFailed, Describe(lock_path, "cannot open lock file"));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      return MakeError(kLockFailed, Describe(lock_path, "cannot lock"));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return MakeError(kLockTimeout, "another writer has held " + lock_path.string() + " for " +
                                         std::to_string(timeout.count()) + " ms; try again");
    }
    ::usleep(10000);  // 10 ms: a write takes milliseconds, except its key derivation
  }
  return FileLock(std::move(fd));
}

namespace {

Error NotAFile(const fs::path& path) {
  return MakeError(kNotAFile, path.string() + " is not a regular file");
}

// Whether the failed open of `path` (errno) met something other than a regular file: a UNIX
// socket gives ENXIO, an unreadable FIFO or device EACCES; lstat (or stat, through links)
// tells, where errno alone does not.
bool OpenMetNonFile(const fs::path& path, Links links) {
  if (errno == ENXIO) return true;
  const int open_errno = errno;
  struct stat st;
  const int r = links == Links::kFollow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st);
  errno = open_errno;  // for the message of any other failure
  return r == 0 && !S_ISREG(st.st_mode);
}

// `path` opened for reading, or nullopt when it does not exist; anything but a regular file
// is KEYSTORE_NOT_A_FILE.
Result<std::optional<UniqueFd>> OpenRegularFile(const fs::path& path, Links links) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: a link is refused.
  const int follow = links == Links::kFollow ? 0 : O_NOFOLLOW;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | follow));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::optional<UniqueFd>();
    if (errno == ELOOP) {
      return MakeError(kNotAFile, path.string() + " is a symbolic link; the agent replaces " +
                                      "files, not links");
    }
    if (OpenMetNonFile(path, links)) return NotAFile(path);
    return MakeError(kReadFailed, Describe(path, "cannot open"));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return MakeError(kReadFailed, Describe(path, "cannot stat"));
  if (!S_ISREG(st.st_mode)) return NotAFile(path);
  return std::optional<UniqueFd>(std::move(fd));
}

// Up to `limit` bytes from the start of `fd`; `*more` says whether the file goes on.
Result<std::string> ReadUpTo(int fd, const fs::path& path, size_t limit, bool* more) {
  std::string bytes;
  char buf[64 * 1024];
  *more = false;
  for (;;) {
    // One byte past the limit, to tell a file of exactly `limit` bytes from a longer one.
    const size_t want = std::min(sizeof buf, limit + 1 - bytes.size());
    ssize_t n = ::read(fd, buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return MakeError(kReadFailed, Describe(path, "cannot read"));
    if (n == 0) return bytes;
    bytes.append(buf, static_cast<size_t>(n));
    if (bytes.size() > limit) {
      bytes.resize(limit);
      *more = true;
      return bytes;
    }
  }
}

Error TooLarge(const fs::path& path) {
  return MakeError(kReadFailed, path.string() + " is larger than 64 MiB: not a keystore");
}

// Told by fstat before reading: a huge file is refused without reading it.
bool IsTooLarge(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 && static_cast<size_t>(st.st_size) > kMaxKeystoreSize;
}

}  // namespace

Result<std::optional<std::string>> ReadFileIfExists(const fs::path& path, Links links) {
  auto fd = OpenRegularFile(path, links);
  if (!fd.ok()) return fd.error();
  if (!fd.value()) return std::optional<std::string>();
  if (IsTooLarge(fd.value()->get())) return TooLarge(path);
  bool more = false;
  auto bytes = ReadUpTo(fd.value()->get(), path, kMaxKeystoreSize, &more);
  if (!bytes.ok()) return bytes.error();
  if (more) return TooLarge(path);
  return std::optional<std::string>(std::move(bytes.value()));
}

Result<std::optional<std::string>> ReadFilePrefixIfExists(const fs::path& path, size_t length) {
  auto fd = OpenRegularFile(path, Links::kRefuse);
  if (!fd.ok()) return fd.error();
  if (!fd.value()) return std::optional<std::string>();
  if (IsTooLarge(fd.value()->get())) return TooLarge(path);  // as a whole read would find
  bool more = false;
  auto bytes = ReadUpTo(fd.value()->get(), path, length, &more);
  if (!bytes.ok()) return bytes.error();
  return std::optional<std::string>(std::move(bytes.value()));
}

Status CheckRegularFileOrAbsent(const fs::path& path) {
  auto fd = OpenRegularFile(path, Links::kRefuse);
  if (!fd.ok()) return fd.error();
  return Ok{};
}

namespace {

// Writes the temporary file and renames it over `path` (removed if the rename fails), then
// syncs the directory.
Status WriteAndRename(const fs::path& path, const std::string& bytes, const FileAccess& access) {
  auto tmp = WriteTemporary(path, bytes, access);
  if (!tmp.ok()) return tmp.error();
  if (::rename(tmp.value().c_str(), path.c_str()) != 0) {
    Error e = MakeError(kWriteFailed, Describe(path, "cannot rename over"));
    ::unlink(tmp.value().c_str());
    return e;
  }
  return FsyncDirectory(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

}  // namespace

Status ReplaceAtomically(const fs::path& path, const std::string& bytes) {
  if (Status s = CheckOwner(path); !s.ok()) return s;
  return WriteAndRename(path, bytes, AccessToKeep(path));
}

Status WriteAtomically(const fs::path& path, const std::string& bytes, unsigned mode) {
  FileAccess access;
  access.mode = mode;
  return WriteAndRename(path, bytes, access);
}

Result<int> RemoveStaleTemporaries(const fs::path& path) {
  const std::string prefix = TemporaryPrefix(path);
  std::error_code ec;
  fs::directory_iterator it(path.parent_path(), ec);
  if (ec)
    return MakeError(kReadFailed,
                     "cannot list " + path.parent_path().string() + ": " + ec.message());
  int removed = 0;
  for (const fs::directory_entry& entry : it) {
    const std::string name = entry.path().filename().string();
    if (name.size() != prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0) continue;
    if (::unlink(entry.path().c_str()) == 0) ++removed;
  }
  return removed;
}

}  // namespace agent::storage

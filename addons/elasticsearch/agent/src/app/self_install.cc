#include "app/self_install.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "storage/keystore_file.h"

namespace agent::app {
namespace {

namespace fs = std::filesystem;

constexpr mode_t kExecutableMode = 0755;
constexpr size_t kCopyChunk = 64 * 1024;

// INSTALL_FAILED: "WHAT PATH: the cause errno gives". Call it right after the failed call.
Error Failure(const std::string& what, const fs::path& path) {
  return MakeError(kInstallFailed, what + " " + path.string() + ": " + std::strerror(errno));
}

fs::path DirectoryOf(const fs::path& path) {
  return path.parent_path().empty() ? fs::path(".") : path.parent_path();
}

Result<storage::UniqueFd> OpenSource(const fs::path& source) {
  storage::UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Failure("cannot open", source);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Failure("cannot stat", source);
  if (!S_ISREG(st.st_mode)) {
    return MakeError(kInstallFailed, "cannot copy " + source.string() + ": not a regular file");
  }
  return fd;
}

Status WriteAll(int fd, const char* data, size_t size, const fs::path& path) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Failure("cannot write", path);
    done += static_cast<size_t>(n);
  }
  return Ok{};
}

Status CopyContents(int from, const fs::path& source, int to, const fs::path& target) {
  std::string buffer(kCopyChunk, '\0');
  for (;;) {
    const ssize_t n = ::read(from, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Failure("cannot read", source);
    if (n == 0) return Ok{};
    if (Status s = WriteAll(to, buffer.data(), static_cast<size_t>(n), target); !s.ok()) return s;
  }
}

// Temporary files are ".<name>.install-XXXXXX", beside the copy: hidden, on the same file
// system, so that the rename is atomic.
std::string TemporaryTemplate(const fs::path& dest) {
  return (DirectoryOf(dest) / ("." + dest.filename().string() + ".install-XXXXXX")).string();
}

// The whole copy, executable and synced, in a new temporary file beside `dest`; its name.
Result<fs::path> WriteTemporaryCopy(int source_fd, const fs::path& source, const fs::path& dest) {
  std::string tmpl = TemporaryTemplate(dest);
  storage::UniqueFd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!fd.valid()) return Failure("cannot create a file in", DirectoryOf(dest));
  const fs::path tmp = tmpl;
  Status s = CopyContents(source_fd, source, fd.get(), tmp);
  if (s.ok() && ::fchmod(fd.get(), kExecutableMode) != 0) s = Failure("cannot chmod", tmp);
  if (s.ok() && ::fsync(fd.get()) != 0) s = Failure("cannot fsync", tmp);
  if (s.ok() && ::close(fd.Release()) != 0) s = Failure("cannot close", tmp);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s.error();
  }
  return tmp;
}

Status FsyncDirectory(const fs::path& dir) {
  storage::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) return Failure("cannot fsync directory", dir);
  return Ok{};
}

}  // namespace

Status InstallExecutable(const fs::path& source, const fs::path& dest) {
  if (dest.empty() || !dest.has_filename()) {
    return MakeError(kInstallFailed, "'" + dest.string() +
                                         "' names no file: give the copy's path, not a directory");
  }
  auto from = OpenSource(source);
  if (!from.ok()) return from.error();
  auto tmp = WriteTemporaryCopy(from.value().get(), source, dest);
  if (!tmp.ok()) return tmp.error();
  if (::rename(tmp.value().c_str(), dest.c_str()) != 0) {
    Error error = Failure("cannot rename " + tmp.value().string() + " to", dest);
    ::unlink(tmp.value().c_str());
    return error;
  }
  return FsyncDirectory(DirectoryOf(dest));
}

int RunInstallCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    out << InstallUsage();
    return 0;
  }
  if (args.size() != 1 || args[0].empty() || args[0][0] == '-') {
    err << "es-agent install: error: give one PATH, the copy's\n" << InstallUsage();
    return 2;
  }
  if (Status s = InstallExecutable(kSelfExecutable, args[0]); !s.ok()) {
    err << "es-agent install: error: " << s.error().code << ": " << s.error().message << "\n";
    return 1;
  }
  out << "es-agent installed at " << args[0] << "\n";
  return 0;
}

std::string InstallUsage() {
  return R"(usage: es-agent install PATH

Copies this es-agent executable to PATH (its directory must exist), mode 0755, atomically: a
temporary file beside PATH, synced, then renamed over it. For images without cp: an init
container brings the static agent into a volume, from which it runs in another image.
)";
}

}  // namespace agent::app

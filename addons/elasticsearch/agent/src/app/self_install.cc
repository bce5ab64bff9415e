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

constexpr unsigned kExecutableMode = 0755;
constexpr size_t kReadChunk = 64 * 1024;

// INSTALL_FAILED: "WHAT PATH: the cause errno gives". Call it right after the failed call.
Error Failure(const std::string& what, const fs::path& path) {
  return MakeError(kInstallFailed, what + " " + path.string() + ": " + std::strerror(errno));
}

// The whole of a regular file.
Result<std::string> ReadExecutable(const fs::path& source) {
  storage::UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Failure("cannot open", source);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Failure("cannot stat", source);
  if (!S_ISREG(st.st_mode)) {
    return MakeError(kInstallFailed, "cannot copy " + source.string() + ": not a regular file");
  }
  std::string bytes;
  std::string buffer(kReadChunk, '\0');
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Failure("cannot read", source);
    if (n == 0) return bytes;
    bytes.append(buffer.data(), static_cast<size_t>(n));
  }
}

}  // namespace

Status InstallExecutable(const fs::path& source, const fs::path& dest) {
  if (dest.empty() || !dest.has_filename()) {
    return MakeError(kInstallFailed, "'" + dest.string() +
                                         "' names no file: give the copy's path, not a directory");
  }
  auto bytes = ReadExecutable(source);
  if (!bytes.ok()) return bytes.error();
  // The storage module's atomic write (a hidden temporary file beside dest, so the rename
  // stays on one file system), under this command's error code.
  if (Status s = storage::WriteAtomically(dest, bytes.value(), kExecutableMode); !s.ok()) {
    return MakeError(kInstallFailed, s.error().message);
  }
  return Ok{};
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

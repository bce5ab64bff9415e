// `es-agent install PATH`: copies the agent's own executable to PATH, atomically. The agent's
// image holds the static binary alone (no shell, no cp); an init container runs this to bring
// the binary into a volume, from which the agent then runs in another image (the engine's, for
// the cli keystore backend, whose tool needs the engine's bash, glibc and JDK).
#pragma once

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "common/result.h"

namespace agent::app {

inline constexpr char kInstallFailed[] = "INSTALL_FAILED";

// The running executable, as the kernel knows it (the file itself, even when renamed).
inline constexpr char kSelfExecutable[] = "/proc/self/exe";

// Copies `source` to `dest` so that `dest` is either what it was or the whole copy, never a
// part: a temporary file in dest's directory (which must exist), fsync, mode 0755, rename over
// dest, fsync of the directory. On failure the temporary file is removed and INSTALL_FAILED
// names the path and the cause. A running executable at `dest` is replaced, not written into.
Status InstallExecutable(const std::filesystem::path& source, const std::filesystem::path& dest);

// Runs `install PATH` (the arguments after "install"); returns the exit code (0 installed, 1
// failed, 2 bad usage).
int RunInstallCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

std::string InstallUsage();

}  // namespace agent::app

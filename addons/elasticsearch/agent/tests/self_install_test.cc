// `es-agent install PATH`: the copy is whole, executable and atomic, failures name the path and
// leave nothing behind; the installed copy of the real binary runs (Process.*, which start the
// binary as a child).
#include "app/self_install.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cli_backend/subprocess.h"
#include "test_util.h"

namespace agent::app {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileOrEmpty;
using testing::TempDir;
using testing::WriteFile;

constexpr uid_t kNobody = 65534;

size_t CountEntries(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

unsigned ModeOf(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(SelfInstall, CopiesTheWholeFileWithMode0755AndNothingElse) {
  TempDir dir;
  const fs::path dest = dir.path() / "es-agent";
  ASSERT_TRUE(InstallExecutable(AGENT_BINARY, dest).ok());
  EXPECT_EQ(ReadFileOrEmpty(dest), ReadFileOrEmpty(AGENT_BINARY));
  EXPECT_EQ(ModeOf(dest), 0755u);
  EXPECT_EQ(CountEntries(dir.path()), 1u) << "a temporary file was left";
}

TEST(SelfInstall, ReplacesAFileAlreadyThereWhole) {
  TempDir dir;
  const fs::path dest = dir.path() / "es-agent";
  WriteFile(dest, "an older copy");
  ASSERT_EQ(::chmod(dest.c_str(), 0600), 0);
  ASSERT_TRUE(InstallExecutable(AGENT_BINARY, dest).ok());
  EXPECT_EQ(ReadFileOrEmpty(dest), ReadFileOrEmpty(AGENT_BINARY));
  EXPECT_EQ(ModeOf(dest), 0755u);
  EXPECT_EQ(CountEntries(dir.path()), 1u);
}

TEST(SelfInstall, AnUnwritableDirectoryFailsNamingItAndLeavesNothing) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "skipped: root writes any directory (Process.InstallInto"
                    "AnUnwritableDirectoryExits1 runs the binary as another user instead)";
  }
  TempDir dir;
  const fs::path ro = dir.path() / "ro";
  fs::create_directory(ro);
  ASSERT_EQ(::chmod(ro.c_str(), 0555), 0);
  Status s = InstallExecutable(AGENT_BINARY, ro / "es-agent");
  ::chmod(ro.c_str(), 0755);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kInstallFailed);
  EXPECT_NE(s.error().message.find("cannot create a file in " + ro.string()), std::string::npos)
      << s.error().message;
  EXPECT_EQ(CountEntries(ro), 0u);
}

TEST(SelfInstall, AMissingDirectoryFailsNamingIt) {
  TempDir dir;
  const fs::path missing = dir.path() / "no-such-dir";
  Status s = InstallExecutable(AGENT_BINARY, missing / "es-agent");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kInstallFailed);
  EXPECT_NE(s.error().message.find(missing.string()), std::string::npos) << s.error().message;
  EXPECT_FALSE(fs::exists(missing));
}

TEST(SelfInstall, ADirectoryAtThePathIsLeftAsItIsAndTheTemporaryFileRemoved) {
  TempDir dir;
  const fs::path dest = dir.path() / "es-agent";
  fs::create_directory(dest);  // rename(2) of a file over a directory fails
  Status s = InstallExecutable(AGENT_BINARY, dest);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kInstallFailed);
  EXPECT_NE(s.error().message.find("cannot rename"), std::string::npos) << s.error().message;
  EXPECT_TRUE(fs::is_directory(dest));
  EXPECT_EQ(CountEntries(dir.path()), 1u);
}

TEST(SelfInstall, AMissingOrNonRegularSourceFailsBeforeAnythingIsWritten) {
  TempDir dir;
  Status missing = InstallExecutable(dir.path() / "no-such-file", dir.path() / "es-agent");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot open " + (dir.path() / "no-such-file").string()),
            std::string::npos)
      << missing.error().message;
  Status directory = InstallExecutable(dir.path(), dir.path() / "es-agent");
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().code, kInstallFailed);
  EXPECT_EQ(CountEntries(dir.path()), 0u);
}

TEST(SelfInstall, APathWithoutAFileNameIsRefused) {
  TempDir dir;
  Status s = InstallExecutable(AGENT_BINARY, dir.path().string() + "/");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kInstallFailed);
  EXPECT_NE(s.error().message.find("names no file"), std::string::npos) << s.error().message;
  EXPECT_EQ(CountEntries(dir.path()), 0u);
}

TEST(SelfInstall, TheCommandTakesExactlyOnePath) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{}, {"a", "b"}, {"--force"}, {""}}) {
    std::ostringstream out, err;
    EXPECT_EQ(RunInstallCommand(args, out, err), 2) << ::testing::PrintToString(args);
    EXPECT_NE(err.str().find("usage: es-agent install PATH"), std::string::npos);
    EXPECT_EQ(out.str(), "");
  }
  std::ostringstream out, err;
  EXPECT_EQ(RunInstallCommand({"--help"}, out, err), 0);
  EXPECT_EQ(out.str(), InstallUsage());
}

// The process's stderr and exit code.
struct Ran {
  int exit_code = -1;
  std::string err;
};

cli_backend::ProcessOutcome RunOrFail(std::vector<std::string> argv) {
  cli_backend::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = std::chrono::seconds(10);
  auto outcome = cli_backend::RunProcess(spec);
  EXPECT_TRUE(outcome.ok()) << (outcome.ok() ? "" : outcome.error().message);
  return outcome.ok() ? outcome.value() : cli_backend::ProcessOutcome{};
}

TEST(Process, InstallCopiesTheRunningAgentAndTheCopyRuns) {
  TempDir dir;
  const fs::path dest = dir.path() / "agent-bin" / "es-agent";
  fs::create_directory(dest.parent_path());
  auto installed = RunOrFail({AGENT_BINARY, "install", dest.string()});
  EXPECT_EQ(installed.exit_code, 0) << installed.err.bytes;
  EXPECT_EQ(installed.out.bytes, "es-agent installed at " + dest.string() + "\n");
  // /proc/self/exe: the binary that ran, byte for byte.
  EXPECT_EQ(ReadFileOrEmpty(dest), ReadFileOrEmpty(AGENT_BINARY));
  EXPECT_EQ(ModeOf(dest), 0755u);
  EXPECT_EQ(CountEntries(dest.parent_path()), 1u);
  // The copy runs, in an empty environment, as the chart's agent container runs it.
  auto version = RunOrFail({dest.string(), "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.bytes, "es-agent " AGENT_VERSION "\n");
  auto help = RunOrFail({dest.string(), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.bytes.find("es-agent install PATH"), std::string::npos) << help.out.bytes;
  // And installs itself again over the first copy (an init container run twice).
  auto again = RunOrFail({dest.string(), "install", dest.string()});
  EXPECT_EQ(again.exit_code, 0) << again.err.bytes;
  EXPECT_EQ(ReadFileOrEmpty(dest), ReadFileOrEmpty(AGENT_BINARY));
}

// Runs `es-agent install dest` as a user that may not write dest's directory: the caller
// itself, or nobody when the tests run as root.
Ran InstallAsAnotherUser(const fs::path& dest, const fs::path& err_file) {
  const int err_fd = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  EXPECT_GE(err_fd, 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    if (::dup2(err_fd, 2) < 0) ::_exit(126);
    if (::geteuid() == 0 &&
        (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)) {
      ::_exit(126);
    }
    const char* argv[] = {AGENT_BINARY, "install", dest.c_str(), nullptr};
    ::execv(argv[0], const_cast<char* const*>(argv));
    ::_exit(127);
  }
  ::close(err_fd);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFileOrEmpty(err_file)};
}

TEST(Process, InstallIntoAnUnwritableDirectoryExits1NamingItAndLeavesNothing) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);  // nobody may look in, not write
  const fs::path ro = dir.path() / "ro";
  fs::create_directory(ro);
  ASSERT_EQ(::chmod(ro.c_str(), 0555), 0);
  Ran ran = InstallAsAnotherUser(ro / "es-agent", dir.path() / "stderr");
  ::chmod(ro.c_str(), 0755);
  EXPECT_EQ(ran.exit_code, 1) << ran.err;
  EXPECT_NE(ran.err.find("es-agent install: error: INSTALL_FAILED: cannot create a file in " +
                         ro.string() + ": Permission denied"),
            std::string::npos)
      << ran.err;
  EXPECT_EQ(CountEntries(ro), 0u);
}

}  // namespace
}  // namespace agent::app

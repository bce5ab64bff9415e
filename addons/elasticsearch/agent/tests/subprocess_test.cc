// RunProcess with real programs (sh, cat, env): exit codes, stdin, a clean environment and
// descriptor table, bounded output, no SIGPIPE, and a timeout that kills the whole group.
#include "cli_backend/subprocess.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <string>

#include "test_util.h"

namespace agent::cli_backend {
namespace {

using std::chrono::milliseconds;

ProcessSpec Shell(const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.timeout = milliseconds(10000);
  return spec;
}

// Running, as opposed to gone or a zombie that nobody has reaped yet.
void ExpectNoChildLeft() {
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD) << "a child of the test process is left unreaped";
}

TEST(Subprocess, ReportsExitCodeAndBothStreams) {
  auto run = RunProcess(Shell("echo out; echo err >&2; exit 7"));
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_FALSE(run.value().timed_out);
  EXPECT_EQ(run.value().exit_code, 7);
  EXPECT_EQ(run.value().signal, 0);
  EXPECT_EQ(run.value().out.bytes, "out\n");
  EXPECT_EQ(run.value().err.bytes, "err\n");
  ExpectNoChildLeft();
}

TEST(Subprocess, ReportsTheSignalThatEndedIt) {
  auto run = RunProcess(Shell("kill -s KILL $$"));
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run.value().exit_code, -1);
  EXPECT_EQ(run.value().signal, SIGKILL);
}

TEST(Subprocess, FeedsStdinThenEndOfFile) {
  const std::string input = "first line\nsecond line\n";
  ProcessSpec spec = Shell("cat; echo done");
  spec.stdin_bytes = input;
  auto run = RunProcess(spec);
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run.value().out.bytes, input + "done\n");
}

TEST(Subprocess, ChildGetsOnlyTheGivenEnvironment) {
  ::setenv("AGENT_TEST_SHOULD_NOT_LEAK", "1", 1);
  ProcessSpec spec;
  spec.argv = {"/usr/bin/env"};
  spec.env = {"A=1", "B=two words"};
  auto run = RunProcess(spec);
  ::unsetenv("AGENT_TEST_SHOULD_NOT_LEAK");
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run.value().out.bytes, "A=1\nB=two words\n");
}

TEST(Subprocess, ChildInheritsNoOtherDescriptor) {
  // Opened without O_CLOEXEC on purpose, as a careless part of the agent might.
  int leaky = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 0);
  const std::string fd = std::to_string(leaky);
  auto run = RunProcess(
      Shell("for fd in 0 1 2 " + fd + "; do [ -e /proc/$$/fd/$fd ] && echo open $fd; done; true"));
  ::close(leaky);
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run.value().out.bytes, "open 0\nopen 1\nopen 2\n");
}

TEST(Subprocess, ChildThatIgnoresStdinRaisesNoSigpipe) {
  // With SIGPIPE at its default, a write to a closed pipe would kill this test process.
  ::signal(SIGPIPE, SIG_DFL);
  const std::string input(4 << 20, 'x');  // far more than a socket buffer holds
  ProcessSpec spec = Shell("exit 3");
  spec.stdin_bytes = input;
  auto run = RunProcess(spec);
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run.value().exit_code, 3);
}

TEST(Subprocess, KeepsOnlyTheTailOfLongOutput) {
  ProcessSpec spec = Shell("head -c 1000000 /dev/zero | tr '\\0' a; echo; echo END");
  spec.output_limit = 1000;
  auto run = RunProcess(spec);
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_TRUE(run.value().out.truncated);
  EXPECT_EQ(run.value().out.bytes.size(), 1000u);
  EXPECT_EQ(run.value().out.bytes.substr(995), "\nEND\n");
  EXPECT_FALSE(run.value().err.truncated);
}

TEST(Subprocess, TimeoutKillsTheWholeGroupEvenWhenItIgnoresSigterm) {
  // The shell and its background child both ignore SIGTERM: only the SIGKILL that follows
  // the grace period ends them. The child's pid goes to a file, since output of a killed
  // shell may be lost.
  testing::TempDir dir;
  const std::string pid_file = (dir.path() / "pids").string();
  ProcessSpec spec = Shell("trap '' TERM; sleep 300 & echo $$ $! > " + pid_file + "; wait");
  spec.timeout = milliseconds(500);
  spec.kill_grace = milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  auto run = RunProcess(spec);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_TRUE(run.value().timed_out);
  EXPECT_EQ(run.value().signal, SIGKILL);
  EXPECT_GE(took, milliseconds(800));
  EXPECT_LT(took, milliseconds(3000));
  std::istringstream pids(testing::ReadFileOrEmpty(pid_file));
  pid_t shell = 0, sleeper = 0;
  ASSERT_TRUE(pids >> shell >> sleeper) << "the script did not start";
  EXPECT_TRUE(testing::EndsWithin(shell, milliseconds(3000)));
  EXPECT_TRUE(testing::EndsWithin(sleeper, milliseconds(3000)))
      << "the background sleep survived the timeout";
  ExpectNoChildLeft();
}

TEST(Subprocess, ProgramThatExitsEarlyTakesItsGroupAlong) {
  // The leader exits at once and leaves a child holding its stdout: the run still ends
  // promptly, and the child is killed with the group.
  testing::TempDir dir;
  const std::string pid_file = (dir.path() / "pid").string();
  auto run = RunProcess(Shell("sleep 300 & echo $! > " + pid_file + "; exit 0"));
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run.value().exit_code, 0);
  pid_t sleeper = 0;
  std::istringstream(testing::ReadFileOrEmpty(pid_file)) >> sleeper;
  ASSERT_GT(sleeper, 0);
  EXPECT_TRUE(testing::EndsWithin(sleeper, milliseconds(3000)));
}

TEST(Subprocess, MissingProgramIsASpawnError) {
  ProcessSpec spec;
  spec.argv = {"/no/such/program"};
  auto run = RunProcess(spec);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().code, kSpawnFailed);
  EXPECT_NE(run.error().message.find("/no/such/program"), std::string::npos);
  ExpectNoChildLeft();
}

}  // namespace
}  // namespace agent::cli_backend

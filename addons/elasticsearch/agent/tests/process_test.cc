// The es-agent binary as a process: it refuses bad options with exit code 2, and on SIGTERM
// it stops accepting and exits 0.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

extern char** environ;

namespace {

pid_t Spawn(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);  // quiet output
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// The exit status, or -1 when the process is still running after `timeout`.
int WaitFor(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

TEST(Process, BadOptionsExitWith2) {
  EXPECT_EQ(WaitFor(Spawn({AGENT_BINARY, "serve", "--port", "0"}), std::chrono::seconds(5)), 2);
  EXPECT_EQ(WaitFor(Spawn({AGENT_BINARY, "frobnicate"}), std::chrono::seconds(5)), 2);
  EXPECT_EQ(WaitFor(Spawn({AGENT_BINARY, "serve", "--config-dir", "/no/such/dir"}),
                    std::chrono::seconds(5)),
            2);
  EXPECT_EQ(WaitFor(Spawn({AGENT_BINARY, "--version"}), std::chrono::seconds(5)), 0);
}

TEST(Process, WithoutCredentialsOrAnExplicitModeTheAgentRefusesToStart) {
  agent::testing::TempDir dir;
  const std::string config = dir.path().string();
  EXPECT_EQ(WaitFor(Spawn({AGENT_BINARY, "serve", "--listen-address", "127.0.0.62", "--port",
                           "18432", "--config-dir", config}),
                    std::chrono::seconds(5)),
            2);
  EXPECT_EQ(WaitFor(Spawn({AGENT_BINARY, "serve", "--listen-address", "127.0.0.62", "--port",
                           "18432", "--config-dir", config, "--auth-mode", "static"}),
                    std::chrono::seconds(5)),
            2);
}

TEST(Process, SigtermStopsTheAgentWithExitCode0) {
  agent::testing::TempDir dir;
  pid_t pid =
      Spawn({AGENT_BINARY, "serve", "--listen-address", "127.0.0.62", "--port", "18431",
             "--config-dir", dir.path().string(), "--engine", "opensearch", "--auth-mode", "none"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(WaitFor(pid, std::chrono::seconds(5)), 0);
}

}  // namespace

#include "cli_backend/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

#include "storage/keystore_file.h"

namespace agent::cli_backend {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using storage::UniqueFd;

constexpr milliseconds kPollTick{20};  // how often a running child is checked for its exit
// After the program exits, how long to wait for the end of its output: a process that left
// its group (setsid) could hold the pipes open for ever.
constexpr milliseconds kDrainAfterExit{500};
constexpr size_t kReadChunk = 8192;

Error IoError(const char* what) {
  return MakeError(kProcessIoFailed, std::string(what) + ": " + std::strerror(errno));
}

// The child's process group: killed with SIGKILL and reaped when this goes away, unless
// Reap() has already collected the leader. Until then the leader stays at least a zombie, so
// its pid, which is also the group's id, cannot be reused and signals reach only our group.
class ChildGroup {
 public:
  explicit ChildGroup(pid_t pid) : pid_(pid) {}
  ChildGroup(const ChildGroup&) = delete;
  ChildGroup& operator=(const ChildGroup&) = delete;
  ~ChildGroup() {
    if (pid_ > 0) {
      Signal(SIGKILL);
      Reap();
    }
  }

  void Signal(int sig) const { ::kill(-pid_, sig); }  // ESRCH (nobody left) is fine

  // True once the leader has exited; it is not reaped yet (WNOWAIT).
  bool LeaderExited() const {
    siginfo_t info{};
    for (;;) {
      if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
        return info.si_pid == pid_;
      }
      if (errno != EINTR) return true;  // ECHILD: someone else reaped it; it is gone
    }
  }

  // Waits for the leader and returns its wait status (0 when it cannot be had).
  int Reap() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0) {
      if (errno != EINTR) {
        status = 0;
        break;
      }
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_;
};

// Both ends of the three standard streams. Every descriptor is close-on-exec; the child gets
// its ends through dup2, which clears the flag on the copies.
struct Pipes {
  UniqueFd stdin_parent, stdin_child;
  UniqueFd out_parent, out_child;
  UniqueFd err_parent, err_child;
};

Status OpenPipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return IoError("cannot create a pipe");
  read_end = UniqueFd(fds[0]);
  write_end = UniqueFd(fds[1]);
  // Only our end is non-blocking: the child sees an ordinary blocking pipe.
  if (::fcntl(read_end.get(), F_SETFL, O_NONBLOCK) != 0) return IoError("cannot set O_NONBLOCK");
  return Ok{};
}

Result<Pipes> OpenPipes() {
  Pipes p;
  // stdin is a socket pair, not a pipe: send(MSG_NOSIGNAL) to a child that has stopped
  // reading fails with EPIPE instead of raising SIGPIPE in this process.
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return IoError("cannot create a socket pair");
  }
  p.stdin_parent = UniqueFd(sv[0]);
  p.stdin_child = UniqueFd(sv[1]);
  if (auto s = OpenPipe(p.out_parent, p.out_child); !s.ok()) return s.error();
  if (auto s = OpenPipe(p.err_parent, p.err_child); !s.ok()) return s.error();
  return p;
}

// posix_spawn's attribute and file-action objects, destroyed on every path.
class SpawnSetup {
 public:
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions_);
    posix_spawnattr_init(&attr_);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions_);
    posix_spawnattr_destroy(&attr_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // Standard streams from `p`, nothing else open; default signal dispositions and an empty
  // mask whatever this process has; a process group of its own, so that a timeout can kill
  // the tool's whole tree (shell script, JVM).
  int Configure(const Pipes& p) {
    int rc = posix_spawn_file_actions_adddup2(&actions_, p.stdin_child.get(), STDIN_FILENO);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions_, p.out_child.get(), STDOUT_FILENO);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions_, p.err_child.get(), STDERR_FILENO);
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions_, STDERR_FILENO + 1);
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr_, &none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr_, &all);
    if (rc == 0) rc = posix_spawnattr_setpgroup(&attr_, 0);
    if (rc == 0) {
      rc = posix_spawnattr_setflags(
          &attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    }
    return rc;
  }

  const posix_spawn_file_actions_t* actions() const { return &actions_; }
  const posix_spawnattr_t* attr() const { return &attr_; }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
};

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

Result<pid_t> Spawn(const ProcessSpec& spec, const Pipes& pipes) {
  SpawnSetup setup;
  int rc = setup.Configure(pipes);
  if (rc != 0) {
    return MakeError(kSpawnFailed, std::string("cannot prepare to run ") + spec.argv[0] + ": " +
                                       std::strerror(rc));
  }
  std::vector<char*> argv = CStrings(spec.argv);
  std::vector<char*> envp = CStrings(spec.env);
  pid_t pid = -1;
  rc = ::posix_spawn(&pid, argv[0], setup.actions(), setup.attr(), argv.data(), envp.data());
  if (rc != 0) {
    return MakeError(kSpawnFailed,
                     std::string("cannot run ") + spec.argv[0] + ": " + std::strerror(rc));
  }
  return pid;
}

// Keeps the last `limit` bytes of a stream (trimming in batches, not on every read).
void Append(CapturedStream& stream, const char* data, size_t n, size_t limit) {
  stream.bytes.append(data, n);
  if (stream.bytes.size() > 2 * limit + kReadChunk) {
    stream.bytes.erase(0, stream.bytes.size() - limit);
    stream.truncated = true;
  }
}

void Trim(CapturedStream& stream, size_t limit) {
  if (stream.bytes.size() <= limit) return;
  stream.bytes.erase(0, stream.bytes.size() - limit);
  stream.truncated = true;
}

// The parent's side of a running child's streams: feeds stdin, collects stdout and stderr.
class StreamPump {
 public:
  StreamPump(Pipes& pipes, const ProcessSpec& spec)
      : stdin_(std::move(pipes.stdin_parent)),
        out_(std::move(pipes.out_parent)),
        err_(std::move(pipes.err_parent)),
        input_(spec.stdin_bytes),
        limit_(spec.output_limit) {
    if (input_.empty()) stdin_ = UniqueFd();  // EOF at once
  }

  bool OutputOpen() const { return out_.valid() || err_.valid(); }
  void CloseStdin() { stdin_ = UniqueFd(); }

  // One poll of at most `wait`: writes what stdin takes, reads what the pipes hold.
  Status PumpOnce(milliseconds wait, ProcessOutcome& outcome) {
    pollfd fds[3];
    nfds_t n = 0;
    int stdin_slot = -1, out_slot = -1, err_slot = -1;
    if (stdin_.valid()) fds[stdin_slot = static_cast<int>(n++)] = {stdin_.get(), POLLOUT, 0};
    if (out_.valid()) fds[out_slot = static_cast<int>(n++)] = {out_.get(), POLLIN, 0};
    if (err_.valid()) fds[err_slot = static_cast<int>(n++)] = {err_.get(), POLLIN, 0};
    if (n == 0) {
      std::this_thread::sleep_for(wait);
      return Ok{};
    }
    int ready = ::poll(fds, n, static_cast<int>(wait.count()));
    if (ready < 0) {
      if (errno == EINTR) return Ok{};
      return IoError("poll failed");
    }
    if (stdin_slot >= 0 && fds[stdin_slot].revents != 0) WriteInput();
    if (out_slot >= 0 && fds[out_slot].revents != 0) {
      if (auto s = ReadOutput(out_, outcome.out); !s.ok()) return s;
    }
    if (err_slot >= 0 && fds[err_slot].revents != 0) {
      if (auto s = ReadOutput(err_, outcome.err); !s.ok()) return s;
    }
    return Ok{};
  }

 private:
  void WriteInput() {
    ssize_t n = ::send(stdin_.get(), input_.data() + written_, input_.size() - written_,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      written_ += static_cast<size_t>(n);
      if (written_ == input_.size()) CloseStdin();
      return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    CloseStdin();  // EPIPE, ECONNRESET: the child no longer reads; what it read is what counts
  }

  Status ReadOutput(UniqueFd& fd, CapturedStream& stream) {
    char buf[kReadChunk];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n > 0) {
        Append(stream, buf, static_cast<size_t>(n), limit_);
        continue;
      }
      if (n == 0) {
        fd = UniqueFd();  // end of stream
        return Ok{};
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return Ok{};
      return IoError("cannot read the program's output");
    }
  }

  UniqueFd stdin_, out_, err_;
  std::string_view input_;
  size_t written_ = 0;
  size_t limit_;
};

milliseconds Until(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  return std::clamp(left, milliseconds(0), kPollTick);
}

void RecordStatus(int status, ProcessOutcome& outcome) {
  if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
}

}  // namespace

Result<ProcessOutcome> RunProcess(const ProcessSpec& spec) {
  if (spec.argv.empty()) return MakeError(kSpawnFailed, "no program to run");
  auto pipes = OpenPipes();
  if (!pipes.ok()) return pipes.error();
  auto pid = Spawn(spec, pipes.value());
  if (!pid.ok()) return pid.error();
  ChildGroup child(pid.value());
  // Our copies of the child's ends must go, or the pipes never report end of stream.
  pipes.value().stdin_child = UniqueFd();
  pipes.value().out_child = UniqueFd();
  pipes.value().err_child = UniqueFd();
  StreamPump pump(pipes.value(), spec);

  ProcessOutcome outcome;
  const auto deadline = Clock::now() + spec.timeout;
  std::optional<Clock::time_point> exited_at;
  for (;;) {
    if (!exited_at && child.LeaderExited()) {
      exited_at = Clock::now();
      pump.CloseStdin();
      child.Signal(SIGKILL);  // whatever it left behind in its group
    }
    if (exited_at && (!pump.OutputOpen() || Clock::now() >= *exited_at + kDrainAfterExit)) break;
    if (!exited_at && Clock::now() >= deadline) {
      outcome.timed_out = true;
      break;
    }
    auto wait = exited_at ? Until(*exited_at + kDrainAfterExit) : Until(deadline);
    if (auto s = pump.PumpOnce(wait, outcome); !s.ok()) return s.error();
  }
  if (outcome.timed_out) {
    child.Signal(SIGTERM);
    const auto grace_end = Clock::now() + spec.kill_grace;
    while (!child.LeaderExited() && Clock::now() < grace_end) {
      if (auto s = pump.PumpOnce(Until(grace_end), outcome); !s.ok()) return s.error();
    }
    child.Signal(SIGKILL);
  }
  RecordStatus(child.Reap(), outcome);
  Trim(outcome.out, spec.output_limit);
  Trim(outcome.err, spec.output_limit);
  return outcome;
}

}  // namespace agent::cli_backend

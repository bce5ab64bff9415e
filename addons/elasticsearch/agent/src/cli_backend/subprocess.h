// RunProcess: runs one program (explicit argv, no shell, only the environment it is given) in
// its own process group, feeds it stdin, captures its output, and kills it on a deadline.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace agent::cli_backend {

inline constexpr char kSpawnFailed[] = "PROCESS_SPAWN_FAILED";
inline constexpr char kProcessIoFailed[] = "PROCESS_IO_FAILED";

// What to run and how long to let it.
struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is the program's path: no PATH search
  std::vector<std::string> env;   // "NAME=value": the child's whole environment
  // Written to the child's stdin, which is then closed. Not copied: the caller keeps the
  // bytes alive for the call and wipes them after it when they are secret.
  std::string_view stdin_bytes;
  std::chrono::milliseconds timeout{30000};
  std::chrono::milliseconds kill_grace{1000};  // between SIGTERM and SIGKILL on timeout
  size_t output_limit = 64 * 1024;             // per stream; the tail is kept
};

struct CapturedStream {
  std::string bytes;       // the last output_limit bytes
  bool truncated = false;  // earlier bytes were dropped
};

struct ProcessOutcome {
  bool timed_out = false;  // killed at the deadline; exit_code and signal then say how it died
  int exit_code = -1;      // when it exited; -1 when a signal ended it
  int signal = 0;          // the signal that ended it, or 0
  CapturedStream out;
  CapturedStream err;
};

// Runs `spec` to completion. Returns an Error only when the program could not be started
// (kSpawnFailed) or its pipes failed (kProcessIoFailed); a program that fails or times out is
// an outcome. Whatever happens, the process and the rest of its group are gone and reaped when
// this returns. A child that exits without reading all of stdin is not an error.
Result<ProcessOutcome> RunProcess(const ProcessSpec& spec);

}  // namespace agent::cli_backend

// Logger: one line per event on standard error, "<UTC time> <level> <message>". Messages
// are built by callers that never put a secret in them.
#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string_view>

namespace agent {

class Logger {
 public:
  void Info(std::string_view message) { Write("INFO", message); }
  void Warn(std::string_view message) { Write("WARN", message); }
  void Error(std::string_view message) { Write("ERROR", message); }

 private:
  void Write(const char* level, std::string_view message) {
    std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::lock_guard lock(mutex_);
    std::fprintf(stderr, "%s %s %.*s\n", stamp, level, static_cast<int>(message.size()),
                 message.data());
    std::fflush(stderr);
  }

  std::mutex mutex_;  // keeps lines from different threads whole
};

}  // namespace agent

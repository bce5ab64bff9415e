// Logger: one JSON object per line on standard output: time, level, msg and the event's own
// fields (a request's id, route, status, duration). Callers never put a secret in a field.
#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace agent {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

inline std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return std::nullopt;
}

class Logger {
 public:
  explicit Logger(LogLevel min_level = LogLevel::kInfo, std::FILE* out = stdout)
      : min_level_(min_level), out_(out) {}

  void Debug(std::string_view msg, nlohmann::json fields = {}) {
    Write(LogLevel::kDebug, msg, std::move(fields));
  }
  void Info(std::string_view msg, nlohmann::json fields = {}) {
    Write(LogLevel::kInfo, msg, std::move(fields));
  }
  void Warn(std::string_view msg, nlohmann::json fields = {}) {
    Write(LogLevel::kWarn, msg, std::move(fields));
  }
  void Error(std::string_view msg, nlohmann::json fields = {}) {
    Write(LogLevel::kError, msg, std::move(fields));
  }

 private:
  void Write(LogLevel level, std::string_view msg, nlohmann::json fields) {
    if (level < min_level_) return;
    static constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
    const auto now = std::chrono::system_clock::now();
    const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char stamp[96];  // room for any int the compiler cannot rule out
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(millis));
    nlohmann::ordered_json line;  // time, level and msg first, for people reading it
    line["time"] = stamp;
    line["level"] = kNames[static_cast<int>(level)];
    line["msg"] = std::string(msg);
    if (fields.is_object()) {
      for (const auto& [key, value] : fields.items()) line[key] = value;
    }
    // Text from a caller (a path) may be invalid UTF-8: replaced, never a reason to throw.
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    std::lock_guard lock(mutex_);
    std::fprintf(out_, "%s\n", text.c_str());
    std::fflush(out_);
  }

  LogLevel min_level_;
  std::FILE* out_;
  std::mutex mutex_;  // keeps lines from different threads whole
};

}  // namespace agent

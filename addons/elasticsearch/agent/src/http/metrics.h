// Metrics: the agent's counters and its write-latency histogram, rendered in the Prometheus
// text format for GET /metrics. Safe to update from every handler thread at once.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

namespace agent::http {

class Metrics {
 public:
  // `route` must come from a fixed set (the router passes "other" for unknown paths), so
  // that a caller cannot grow the label space.
  void CountRequest(std::string_view route, std::string_view method, int status);
  // One keystore save attempt (`operation` "write" or "delete"), with its outcome and time.
  void ObserveKeystoreChange(std::string_view operation, bool ok, double seconds);
  void CountReload(bool ok);
  // A connection over the cap: answered with 503 (`answered`), or, in a flood beyond twice the
  // cap, closed without an answer.
  void CountConnectionRefused(bool answered);
  std::string Render() const;

  // Upper bounds of the write-latency buckets, in seconds: a native write is milliseconds,
  // the CLI backend seconds.
  static constexpr std::array<double, 13> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                      0.25,  0.5,    1,     2.5,  5,     10};

 private:
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::map<std::pair<std::string, std::string>, uint64_t> changes_;  // operation, result
  std::array<uint64_t, kBuckets.size()> bucket_counts_{};            // not cumulative
  uint64_t duration_count_ = 0;
  double duration_sum_ = 0;
  uint64_t reloads_ok_ = 0;
  uint64_t reloads_failed_ = 0;
  uint64_t refused_answered_ = 0;
  uint64_t refused_closed_ = 0;
};

}  // namespace agent::http

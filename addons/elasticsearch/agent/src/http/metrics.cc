#include "http/metrics.h"

#include <charconv>

namespace agent::http {
namespace {

// A number in its shortest exact form, as in le="0.005" (not "5e-03").
std::string Number(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

void Header(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

void Metrics::CountRequest(std::string_view route, std::string_view method, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{std::string(route), std::string(method), status}];
}

void Metrics::ObserveKeystoreChange(std::string_view operation, bool ok, double seconds) {
  std::lock_guard lock(mutex_);
  ++changes_[{std::string(operation), ok ? "ok" : "error"}];
  if (!ok) return;  // the histogram is of saves that happened
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++bucket_counts_[i];
      break;
    }
  }
  ++duration_count_;
  duration_sum_ += seconds;
}

void Metrics::CountReload(bool ok) {
  std::lock_guard lock(mutex_);
  ++(ok ? reloads_ok_ : reloads_failed_);
}

void Metrics::CountConnectionRefused(bool answered) {
  std::lock_guard lock(mutex_);
  ++(answered ? refused_answered_ : refused_closed_);
}

std::string Metrics::Render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  Header(out, "es_agent_build_info", "gauge", "The agent's version; always 1.");
  out += "es_agent_build_info{version=\"" AGENT_VERSION "\"} 1\n";

  Header(out, "es_agent_http_requests_total", "counter",
         "HTTP requests by route, method and status.");
  for (const auto& [key, n] : requests_) {
    const auto& [route, method, status] = key;
    out += "es_agent_http_requests_total{route=\"" + route + "\",method=\"" + method +
           "\",code=\"" + std::to_string(status) + "\"} " + std::to_string(n) + "\n";
  }

  Header(out, "es_agent_keystore_changes_total", "counter",
         "Keystore writes and deletes through the API, by outcome.");
  for (const auto& [key, n] : changes_) {
    out += "es_agent_keystore_changes_total{operation=\"" + key.first + "\",result=\"" +
           key.second + "\"} " + std::to_string(n) + "\n";
  }

  Header(out, "es_agent_keystore_change_duration_seconds", "histogram",
         "Time of successful keystore writes and deletes, lock wait included.");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    cumulative += bucket_counts_[i];
    out += "es_agent_keystore_change_duration_seconds_bucket{le=\"" + Number(kBuckets[i]) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  out += "es_agent_keystore_change_duration_seconds_bucket{le=\"+Inf\"} " +
         std::to_string(duration_count_) + "\n";
  out += "es_agent_keystore_change_duration_seconds_sum " + Number(duration_sum_) + "\n";
  out +=
      "es_agent_keystore_change_duration_seconds_count " + std::to_string(duration_count_) + "\n";

  Header(out, "es_agent_reloads_total", "counter",
         "Reloads of the node's secure settings asked for by callers, by outcome.");
  out += "es_agent_reloads_total{result=\"ok\"} " + std::to_string(reloads_ok_) + "\n";
  out += "es_agent_reloads_total{result=\"error\"} " + std::to_string(reloads_failed_) + "\n";

  Header(out, "es_agent_connections_refused_total", "counter",
         "Connections over --max-connections: answered 503, or closed unanswered in a flood.");
  out += "es_agent_connections_refused_total{answer=\"503\"} " + std::to_string(refused_answered_) +
         "\n";
  out += "es_agent_connections_refused_total{answer=\"none\"} " + std::to_string(refused_closed_) +
         "\n";
  return out;
}

}  // namespace agent::http

// The Prometheus text the agent serves on /metrics: names, labels, cumulative buckets.
#include <gtest/gtest.h>

#include "http/metrics.h"

namespace agent::http {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(Metrics, CountsRequestsByRouteMethodAndStatus) {
  Metrics m;
  m.CountRequest("/keystore", "POST", 200);
  m.CountRequest("/keystore", "POST", 200);
  m.CountRequest("/keystore", "POST", 401);
  const std::string text = m.Render();
  EXPECT_TRUE(
      Has(text, R"(es_agent_http_requests_total{route="/keystore",method="POST",code="200"} 2)"))
      << text;
  EXPECT_TRUE(
      Has(text, R"(es_agent_http_requests_total{route="/keystore",method="POST",code="401"} 1)"));
  EXPECT_TRUE(Has(text, "# TYPE es_agent_http_requests_total counter"));
  EXPECT_TRUE(Has(text, R"(es_agent_build_info{version=")" AGENT_VERSION R"("} 1)"));
}

TEST(Metrics, TheWriteHistogramIsCumulativeAndCountsOnlySaves) {
  Metrics m;
  m.ObserveKeystoreChange("write", true, 0.004);   // bucket 0.005
  m.ObserveKeystoreChange("write", true, 0.2);     // bucket 0.25
  m.ObserveKeystoreChange("delete", true, 30);     // beyond the last finite bucket
  m.ObserveKeystoreChange("write", false, 0.001);  // a failure: counted, not timed
  const std::string text = m.Render();
  EXPECT_TRUE(Has(text, R"(es_agent_keystore_changes_total{operation="write",result="ok"} 2)"));
  EXPECT_TRUE(Has(text, R"(es_agent_keystore_changes_total{operation="write",result="error"} 1)"));
  EXPECT_TRUE(Has(text, R"(es_agent_keystore_changes_total{operation="delete",result="ok"} 1)"));
  EXPECT_TRUE(Has(text, R"(es_agent_keystore_change_duration_seconds_bucket{le="0.0025"} 0)"));
  EXPECT_TRUE(Has(text, R"(es_agent_keystore_change_duration_seconds_bucket{le="0.005"} 1)"));
  EXPECT_TRUE(Has(text, R"(es_agent_keystore_change_duration_seconds_bucket{le="0.25"} 2)"));
  EXPECT_TRUE(Has(text, R"(es_agent_keystore_change_duration_seconds_bucket{le="10"} 2)"));
  EXPECT_TRUE(Has(text, R"(es_agent_keystore_change_duration_seconds_bucket{le="+Inf"} 3)"));
  EXPECT_TRUE(Has(text, "es_agent_keystore_change_duration_seconds_count 3"));
  EXPECT_TRUE(Has(text, "es_agent_keystore_change_duration_seconds_sum 30.204"));
}

TEST(Metrics, CountsReloads) {
  Metrics m;
  m.CountReload(true);
  m.CountReload(false);
  m.CountReload(false);
  const std::string text = m.Render();
  EXPECT_TRUE(Has(text, R"(es_agent_reloads_total{result="ok"} 1)"));
  EXPECT_TRUE(Has(text, R"(es_agent_reloads_total{result="error"} 2)"));
}

}  // namespace
}  // namespace agent::http

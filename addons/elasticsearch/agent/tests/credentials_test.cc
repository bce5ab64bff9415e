// Validation of the POST /keystore body: every bad input is refused with its code, and no
// message repeats a value.
#include <gtest/gtest.h>

#include "service/credentials.h"

namespace agent::service {
namespace {

TEST(Credentials, AcceptsTheUpstreamFieldNames) {
  auto c = ParseS3Credentials(R"({"access_key_id":"AK","secret_access_key":"SK/+="})");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c.value().client, "default");
  EXPECT_EQ(c.value().access_key, "AK");
  EXPECT_EQ(c.value().secret_key, "SK/+=");
  EXPECT_FALSE(c.value().session_token.has_value());
  EXPECT_EQ(c.value().SettingName("secret_key"), "s3.client.default.secret_key");
}

TEST(Credentials, AcceptsClientAndSessionToken) {
  auto c = ParseS3Credentials(
      R"({"access_key_id":"AK","secret_access_key":"SK","session_token":"T","client":"kb_b-1"})");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.value().client, "kb_b-1");
  EXPECT_EQ(c.value().session_token, "T");
}

TEST(Credentials, RefusesBadInputNamingTheProblem) {
  struct Case {
    const char* body;
    const char* code;
    const char* phrase;
  };
  const Case cases[] = {
      {"not json", kNotJson, "not valid JSON"},
      {"[1,2]", kNotJson, "JSON object"},
      {"", kNotJson, "not valid JSON"},
      {R"({"secret_access_key":"SECRETVALUE"})", kFieldMissing, "access_key_id"},
      {R"({"access_key_id":"AK"})", kFieldMissing, "secret_access_key"},
      {R"({"access_key_id":"","secret_access_key":"SECRETVALUE"})", kFieldInvalid, "empty"},
      {R"({"access_key_id":7,"secret_access_key":"SECRETVALUE"})", kFieldInvalid, "string"},
      {R"({"access_key_id":"AK","secret_access_key":"SECRET\nVALUE"})", kFieldInvalid, "control"},
      {R"({"access_key_id":"AK","secret_access_key":"SECRETVALUE","x":1})", kFieldUnknown, "\"x\""},
      {R"({"access_key_id":"AK","secret_access_key":"SECRETVALUE","client":"Bad.Name"})",
       kClientNameInvalid, "[a-z0-9_-]+"},
      {R"({"access_key_id":"AK","secret_access_key":"SECRETVALUE","client":"../etc"})",
       kClientNameInvalid, "client"},
      {"{\"access_key_id\":\"AK\",\"secret_access_key\":\"\xff\xfe\"}", kNotJson, "JSON"},
      {R"({"access_key_id":"AK","access_key_id":"AK2","secret_access_key":"SECRETVALUE"})",
       kFieldInvalid, "twice"},
      {R"({"access_key_id":"   ","secret_access_key":"SECRETVALUE"})", kFieldInvalid, "blank"},
      {R"({"access_key_id":"AK","secret_access_key":"SECRETVALUE","Xq7/SECRETLIKE+abc":1})",
       kFieldUnknown, "unknown field;"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    auto r = ParseS3Credentials(c.body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, c.code);
    EXPECT_NE(r.error().message.find(c.phrase), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("SECRET"), std::string::npos) << r.error().message;
  }
}

TEST(Credentials, AnUnknownFieldThatLooksLikeASecretIsNotEchoed) {
  std::string long_key(60, 'k');
  auto r = ParseS3Credentials("{\"" + long_key + "\":1}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kFieldUnknown);
  EXPECT_EQ(r.error().message.find(long_key), std::string::npos);
}

TEST(Credentials, ClientNameIsBounded) {
  std::string body =
      R"({"access_key_id":"AK","secret_access_key":"SK","client":")" + std::string(65, 'a') + "\"}";
  EXPECT_EQ(ParseS3Credentials(body).error().code, kClientNameInvalid);
}

TEST(Credentials, ReloadIsAnOptionalBoolean) {
  const std::string keys = R"("access_key_id":"AK","secret_access_key":"SK")";
  EXPECT_FALSE(ParseS3Credentials("{" + keys + "}").value().reload);
  EXPECT_TRUE(ParseS3Credentials("{" + keys + R"(,"reload":true})").value().reload);
  EXPECT_FALSE(ParseS3Credentials("{" + keys + R"(,"reload":false})").value().reload);
  EXPECT_EQ(ParseS3Credentials("{" + keys + R"(,"reload":"yes"})").error().code, kFieldInvalid);
}

TEST(Credentials, DeleteQueryTakesAClientAndAnOptionalReload) {
  auto plain = ParseClientQuery("client=kb");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain.value().client, "kb");
  EXPECT_FALSE(plain.value().reload);
  auto reload = ParseClientQuery("reload=true&client=kb-1");
  ASSERT_TRUE(reload.ok());
  EXPECT_EQ(reload.value().client, "kb-1");
  EXPECT_TRUE(reload.value().reload);
  EXPECT_EQ(ParseClientQuery("").error().code, kFieldMissing);
  EXPECT_EQ(ParseClientQuery("reload=true").error().code, kFieldMissing);
  EXPECT_EQ(ParseClientQuery("client=a&client=b").error().code, kFieldInvalid);
  EXPECT_EQ(ParseClientQuery("client=a&reload=1").error().code, kFieldInvalid);
  EXPECT_EQ(ParseClientQuery("client=a&reload=true&reload=false").error().code, kFieldInvalid);
  EXPECT_EQ(ParseClientQuery("client=a&force=true").error().code, kFieldUnknown);
  EXPECT_EQ(ParseClientQuery("client=A").error().code, kClientNameInvalid);
}

TEST(Credentials, DeleteQueryValuesArePercentDecoded) {
  auto encoded = ParseClientQuery("client=k%62-%31&reload=%74rue");  // a client may encode any byte
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(encoded.value().client, "kb-1");
  EXPECT_TRUE(encoded.value().reload);
  EXPECT_EQ(ParseClientQuery("client=kb%").error().code, kFieldInvalid);
  EXPECT_EQ(ParseClientQuery("client=kb%6").error().code, kFieldInvalid);
  EXPECT_EQ(ParseClientQuery("client=kb%zz").error().code, kFieldInvalid);
  EXPECT_EQ(ParseClientQuery("client=k%2Fb").error().code, kClientNameInvalid);  // "k/b"
  EXPECT_EQ(ParseClientQuery("client=k+b").error().code, kClientNameInvalid);    // "k b"
}

}  // namespace
}  // namespace agent::service

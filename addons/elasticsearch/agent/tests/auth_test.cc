// Basic authentication: parsing the header, and accepting exactly the configured credentials.
#include <gtest/gtest.h>

#include "http/auth.h"

namespace agent::http {
namespace {

TEST(Auth, ParsesBasicCredentialsAndKeepsColonsInThePassword) {
  auto c = ParseBasicAuthorization("Basic " + std::string("dXNlcjpwYTpzcw=="));  // user:pa:ss
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->user, "user");
  EXPECT_EQ(c->password, "pa:ss");
  auto lower = ParseBasicAuthorization("basic dXNlcjpwYTpzcw==");
  ASSERT_TRUE(lower.has_value());
}

TEST(Auth, EncodesWhatItParses) {
  BasicCredentials in{"elastic", "p\xc3\xa4ss:word"};
  auto out = ParseBasicAuthorization(BasicAuthorization(in));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->user, in.user);
  EXPECT_EQ(out->password, in.password);
}

TEST(Auth, RefusesMalformedHeaders) {
  EXPECT_FALSE(ParseBasicAuthorization(""));
  EXPECT_FALSE(ParseBasicAuthorization("Bearer abc"));
  EXPECT_FALSE(ParseBasicAuthorization("Basic !!!!"));
  EXPECT_FALSE(ParseBasicAuthorization("Basic dXNlcg=="));  // "user": no colon
  EXPECT_FALSE(ParseBasicAuthorization("Basic abc"));       // not a multiple of 4
}

TEST(Auth, AllowsOnlyTheExpectedCredentials) {
  Authenticator auth(BasicCredentials{"u", "p"});
  EXPECT_TRUE(auth.required());
  EXPECT_TRUE(auth.Allows(BasicAuthorization({"u", "p"})));
  EXPECT_FALSE(auth.Allows(BasicAuthorization({"u", "q"})));
  EXPECT_FALSE(auth.Allows(BasicAuthorization({"v", "p"})));
  EXPECT_FALSE(auth.Allows(BasicAuthorization({"u", "p "})));
  EXPECT_FALSE(auth.Allows(BasicAuthorization({"", ""})));
  EXPECT_FALSE(auth.Allows(""));
}

TEST(Auth, WithoutExpectedCredentialsEveryoneIsAllowed) {
  Authenticator open(std::nullopt);
  EXPECT_FALSE(open.required());
  EXPECT_TRUE(open.Allows(""));
}

}  // namespace
}  // namespace agent::http

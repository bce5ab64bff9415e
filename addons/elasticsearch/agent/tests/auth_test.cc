// Who may call: the Basic header parsed, and each auth mode accepting exactly its callers.
#include <gtest/gtest.h>

#include <vector>

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

bool Allows(const Authenticator& auth, const std::string& header) {
  return auth.Authenticate(header).ok();
}

TEST(Auth, StaticAllowsOnlyTheExpectedCredentials) {
  Authenticator auth = Authenticator::Static({"u", "p"});
  EXPECT_EQ(auth.mode(), AuthMode::kStatic);
  auto caller = auth.Authenticate(BasicAuthorization({"u", "p"}));
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller.value().user, "u");
  EXPECT_EQ(caller.value().node_authorization, "");  // the agent's own credentials on the node
  EXPECT_FALSE(Allows(auth, BasicAuthorization({"u", "q"})));
  EXPECT_FALSE(Allows(auth, BasicAuthorization({"v", "p"})));
  EXPECT_FALSE(Allows(auth, BasicAuthorization({"u", "p "})));
  EXPECT_FALSE(Allows(auth, BasicAuthorization({"", ""})));
  EXPECT_FALSE(Allows(auth, "Bearer abc"));
  auto refused = auth.Authenticate("");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, kUnauthorized);
}

TEST(Auth, NoneAllowsEveryone) {
  Authenticator open = Authenticator::None();
  EXPECT_EQ(open.mode(), AuthMode::kNone);
  EXPECT_TRUE(Allows(open, ""));
  EXPECT_TRUE(Allows(open, "Basic garbage"));
}

TEST(Auth, PassthroughAsksTheCheckAndForwardsTheCallersHeader) {
  std::vector<std::string> asked;
  Authenticator auth = Authenticator::Passthrough([&asked](const std::string& header) {
    asked.push_back(header);
    if (header == "Bearer good") return Result<std::string>("alice");
    if (header == "ApiKey weak") return Result<std::string>(MakeError(kForbidden, "no manage"));
    return Result<std::string>(MakeError(kUnauthorized, "unknown"));
  });
  auto alice = auth.Authenticate("Bearer good");
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice.value().user, "alice");
  EXPECT_EQ(alice.value().node_authorization, "Bearer good");
  EXPECT_EQ(auth.Authenticate("ApiKey weak").error().code, kForbidden);
  EXPECT_EQ(auth.Authenticate("Basic Zm9vOmJhcg==").error().code, kUnauthorized);
  // No header, or a scheme the node does not take: refused without asking the node.
  EXPECT_EQ(auth.Authenticate("").error().code, kUnauthorized);
  EXPECT_EQ(auth.Authenticate("Digest x").error().code, kUnauthorized);
  EXPECT_EQ(asked, (std::vector<std::string>{"Bearer good", "ApiKey weak", "Basic Zm9vOmJhcg=="}));
}

TEST(Auth, ModesHaveNames) {
  for (AuthMode m : {AuthMode::kStatic, AuthMode::kPassthrough, AuthMode::kNone}) {
    EXPECT_EQ(ParseAuthMode(AuthModeName(m)), m);
  }
  EXPECT_FALSE(ParseAuthMode("Static"));
  EXPECT_FALSE(ParseAuthMode(""));
}

}  // namespace
}  // namespace agent::http

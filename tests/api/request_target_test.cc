#include "api/request_target.h"

#include <gtest/gtest.h>

namespace warden::api {
namespace {

TEST(RequestTargetTest, SplitsPathIntoDecodedSegmentsAndQueryIntoParameters) {
  auto target = RequestTarget::Parse("/api/executions/a%2Fb/events?after=3&follow=true");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->segments, (std::vector<std::string>{"api", "executions", "a/b", "events"}));
  EXPECT_EQ(target->Param("after"), "3");
  EXPECT_EQ(target->Param("follow"), "true");
  EXPECT_FALSE(target->Param("state").has_value());
}

TEST(RequestTargetTest, PlusInQueryIsASpaceAndLastRepeatWins) {
  auto target = RequestTarget::Parse("/x?note=a+b&note=c%20d&flag");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->Param("note"), "c d");
  EXPECT_EQ(target->Param("flag"), "");
}

TEST(RequestTargetTest, MalformedEscapeAndRelativeTargetAreRefused) {
  EXPECT_EQ(RequestTarget::Parse("/api/%zz").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RequestTarget::Parse("/api/%4").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RequestTarget::Parse("api/health").status().code(), StatusCode::kInvalidArgument);
}

TEST(RequestTargetTest, AbsoluteFormNamesTheSameResourceAsItsPath) {
  auto target = RequestTarget::Parse("http://x/api/executions/a%2Fb/events?after=3");
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  EXPECT_EQ(target->path, "/api/executions/a%2Fb/events");
  EXPECT_EQ(target->segments, (std::vector<std::string>{"api", "executions", "a/b", "events"}));
  EXPECT_EQ(target->Param("after"), "3");

  auto https = RequestTarget::Parse("HTTPS://user@host.example:8443/api/health");
  ASSERT_TRUE(https.ok()) << "the scheme is case-insensitive";
  EXPECT_EQ(https->segments, (std::vector<std::string>{"api", "health"}));

  for (const char* root : {"http://x", "http://x/", "http://x?a=1"}) {
    auto r = RequestTarget::Parse(root);
    ASSERT_TRUE(r.ok()) << root;
    EXPECT_EQ(r->path, "/") << root;
    EXPECT_TRUE(r->segments.empty()) << root;
  }
  EXPECT_EQ(RequestTarget::Parse("http://x?a=1")->Param("a"), "1");
}

TEST(RequestTargetTest, OtherFormsAndSchemesAreRefused) {
  for (const char* target : {"*", "x:80", "ftp://x/api/health", "http:/api/health", "httpx://x/"}) {
    EXPECT_EQ(RequestTarget::Parse(target).status().code(), StatusCode::kInvalidArgument) << target;
  }
}

}  // namespace
}  // namespace warden::api

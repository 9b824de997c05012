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

}  // namespace
}  // namespace warden::api

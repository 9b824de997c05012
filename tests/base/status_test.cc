#include "base/status.h"

#include <gtest/gtest.h>

namespace warden {
namespace {

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status s = Status::Conflict("pause refused: execution is stopped");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kConflict);
  EXPECT_EQ(s.ToString(), "conflict: pause refused: execution is stopped");
}

TEST(StatusTest, FromErrnoNamesTheCallAndTheReason) {
  Status s = Status::FromErrno("open /nope", ENOENT);
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_EQ(s.message(), "open /nope: No such file or directory");
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad = Status::NotFound("execution x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
}

Status FailsEarly(bool fail) {
  WARDEN_RETURN_IF_ERROR(fail ? Status::IoError("disk") : Status::Ok());
  return Status::Internal("reached the end");
}

TEST(StatusTest, ReturnIfErrorStopsAtFirstFailure) {
  EXPECT_EQ(FailsEarly(true).code(), StatusCode::kIoError);
  EXPECT_EQ(FailsEarly(false).code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace warden

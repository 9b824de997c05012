// Containment detection: flags, forced modes, and the cgroup2 mount on this host.
#include "process/containment.h"

#include <unistd.h>

#include <gtest/gtest.h>

namespace warden::process {
namespace {

TEST(ContainmentTest, FlagValuesAreParsedAndOthersRefused) {
  EXPECT_EQ(*ParseContainmentRequest("auto"), ContainmentOptions::Request::kAuto);
  EXPECT_EQ(*ParseContainmentRequest("cgroup"), ContainmentOptions::Request::kCgroup);
  EXPECT_EQ(*ParseContainmentRequest("pgroup"), ContainmentOptions::Request::kProcessGroup);
  EXPECT_EQ(ParseContainmentRequest("systemd").status().code(), StatusCode::kInvalidArgument);
}

TEST(ContainmentTest, ForcedProcessGroupModeIsReportedAsPgroup) {
  ContainmentOptions options;
  options.request = ContainmentOptions::Request::kProcessGroup;
  Result<Containment> containment = DetectContainment(options);
  ASSERT_TRUE(containment.ok());
  EXPECT_EQ(containment->mode, ContainmentMode::kProcessGroup);
  EXPECT_EQ(ContainmentModeName(containment->mode), "pgroup");
  EXPECT_TRUE(containment->cgroup_root.empty());
}

TEST(ContainmentTest, ForcedCgroupModeWithUnusableRootFails) {
  ContainmentOptions options;
  options.request = ContainmentOptions::Request::kCgroup;
  options.cgroup_root = "/proc/warden-not-a-cgroup";
  EXPECT_EQ(DetectContainment(options).status().code(), StatusCode::kUnavailable);
}

TEST(ContainmentTest, AutoFallsBackToProcessGroupsWithAReason) {
  ContainmentOptions options;
  options.cgroup_root = "/proc/warden-not-a-cgroup";
  Result<Containment> containment = DetectContainment(options);
  ASSERT_TRUE(containment.ok());
  EXPECT_EQ(containment->mode, ContainmentMode::kProcessGroup);
  EXPECT_NE(containment->reason.find("process groups"), std::string::npos);
}

TEST(ContainmentTest, WritableCgroup2RootIsUsedInAutoMode) {
  Result<std::filesystem::path> mount = FindCgroup2Mount();
  if (!mount.ok()) GTEST_SKIP() << "no cgroup2 on this host";
  ContainmentOptions options;
  options.cgroup_root = *mount / ("warden-containment-test-" + std::to_string(::getpid()));
  Result<Containment> containment = DetectContainment(options);
  ASSERT_TRUE(containment.ok());
  if (containment->mode != ContainmentMode::kCgroup) {
    GTEST_SKIP() << "cgroup2 not writable here: " << containment->reason;
  }
  EXPECT_EQ(ContainmentModeName(containment->mode), "cgroup");
  EXPECT_EQ(containment->cgroup_root, options.cgroup_root);
  EXPECT_EQ(::rmdir(options.cgroup_root.c_str()), 0);
}

}  // namespace
}  // namespace warden::process

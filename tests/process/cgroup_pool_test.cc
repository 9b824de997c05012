#include "process/cgroup_pool.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "process/cgroup.h"
#include "process/containment.h"

namespace warden::process {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A pid that names no process: a child that has been reaped.
pid_t DeadPid() {
  pid_t pid = ::fork();
  if (pid == 0) _exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

bool EventuallyGone(const fs::path& path) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!fs::exists(path)) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// Forks a child that joins `group` and pauses; returns its pid once it is a member (or
// after 5 s, for the caller's check to fail).
pid_t ForkMemberOf(const fs::path& group) {
  const std::string procs_path = (group / "cgroup.procs").string();
  pid_t member = ::fork();
  if (member == 0) {
    int fd = ::open(procs_path.c_str(), O_WRONLY);
    if (fd < 0 || ::write(fd, "0", 1) != 1) _exit(1);
    ::pause();
    _exit(0);
  }
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (member > 0 && !ProcessInCgroup(member, group) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  return member;
}

class CgroupPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<fs::path> mount = FindCgroup2Mount();
    if (!mount.ok()) GTEST_SKIP() << "no cgroup2 on this host";
    root_ = *mount / ("warden-pool-test-" + std::to_string(::getpid()));
    ContainmentOptions options;
    options.cgroup_root = root_;
    Result<Containment> containment = DetectContainment(options);
    if (!containment.ok() || containment->mode != ContainmentMode::kCgroup) {
      root_.clear();
      GTEST_SKIP() << "cgroup2 not writable here";
    }
  }
  void TearDown() override {
    if (root_.empty()) return;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(root_, ec)) ::rmdir(entry.path().c_str());
    ::rmdir(root_.c_str());
  }
  fs::path root_;
};

TEST_F(CgroupPoolTest, EmptyGroupsOfADeadDaemonAreRemovedAndOthersKept) {
  pid_t dead = DeadPid();
  fs::path leftover = root_ / ("node-" + std::to_string(dead) + "-3");
  fs::path live_owner = root_ / "node-1-0";  // pid 1 runs
  fs::path not_ours = root_ / "batch-jobs";
  for (const auto& path : {leftover, live_owner, not_ours}) {
    ASSERT_EQ(::mkdir(path.c_str(), 0755), 0) << path;
  }
  // A leftover group that still has a member is never removed (nor is the member touched).
  fs::path populated = root_ / ("node-" + std::to_string(DeadPid()) + "-0");
  ASSERT_EQ(::mkdir(populated.c_str(), 0755), 0);
  pid_t member = ForkMemberOf(populated);
  ASSERT_GT(member, 0);
  ASSERT_TRUE(ProcessInCgroup(member, populated));

  {
    CgroupPool pool(root_, 2);
    EXPECT_TRUE(EventuallyGone(leftover));
    Result<CgroupSlot> slot = pool.Take();
    ASSERT_TRUE(slot.ok()) << slot.status().ToString();
    EXPECT_TRUE(fs::exists(slot->path));
    pool.Remove(slot->path);
  }
  EXPECT_TRUE(fs::exists(live_owner));
  EXPECT_TRUE(fs::exists(not_ours));
  EXPECT_TRUE(fs::exists(populated));
  EXPECT_EQ(::kill(member, 0), 0) << "the member of a populated leftover is left alone";
  ::kill(member, SIGKILL);
  ::waitpid(member, nullptr, 0);
}

TEST_F(CgroupPoolTest, ProcessInCgroupTellsMembersFromOthers) {
  fs::path group = root_ / "members";
  ASSERT_EQ(::mkdir(group.c_str(), 0755), 0);
  pid_t member = ForkMemberOf(group);
  ASSERT_GT(member, 0);
  EXPECT_TRUE(ProcessInCgroup(member, group));
  EXPECT_FALSE(ProcessInCgroup(::getpid(), group)) << "this process is elsewhere";
  EXPECT_FALSE(ProcessInCgroup(member, root_)) << "a parent group is not the group";
  ::kill(member, SIGKILL);
  ::waitpid(member, nullptr, 0);
  EXPECT_FALSE(ProcessInCgroup(member, group)) << "gone";
}

}  // namespace
}  // namespace warden::process

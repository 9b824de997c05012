// Identity: parsing /proc, classifying a recorded identity, refusing to signal a stranger.
#include "process/process_identity.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "process/proc_stat.h"

namespace warden::process {
namespace {

// A sleeping child of the test, killed and reaped by the destructor.
class SleepingChild {
 public:
  SleepingChild() {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/bin/sleep", "sleep", "1000", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~SleepingChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  ProcessIdentity Identity() const {
    ProcessIdentity identity;
    identity.boot_id = *ReadBootId();
    identity.pid = pid_;
    identity.start_ticks = ReadProcStat(pid_)->start_ticks;
    identity.pgid = identity.sid = pid_;
    return identity;
  }
  // Waits until the child is a zombie (without reaping it).
  void WaitUntilZombie() {
    siginfo_t info{};
    ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT);
  }
  void Reap() {
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

TEST(ProcStatTest, FieldsAreReadAfterTheLastParenthesis) {
  std::string line =
      "4242 (evil) S 1 2 (x) R 7 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 "
      "1000 100 18446744073709551615\n";
  Result<ProcStat> stat = ParseProcStat(line);
  ASSERT_TRUE(stat.ok()) << stat.status().ToString();
  EXPECT_EQ(stat->pid, 4242);
  EXPECT_EQ(stat->state, 'R');
  EXPECT_EQ(stat->ppid, 7);
  EXPECT_EQ(stat->pgrp, 4242);
  EXPECT_EQ(stat->session, 4242);
  EXPECT_EQ(stat->start_ticks, 987654u);
}

TEST(ProcStatTest, TruncatedLineIsCorruption) {
  EXPECT_EQ(ParseProcStat("12 (x) S 1 2").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ParseProcStat("garbage").status().code(), StatusCode::kCorruption);
}

TEST(ProcStatTest, MissingProcessIsNotFound) {
  EXPECT_EQ(ReadProcStat(0x3ffffff).status().code(), StatusCode::kNotFound);
}

TEST(ClassifyIdentityTest, LiveProcessIsTheSameProcess) {
  SleepingChild child;
  EXPECT_EQ(*ClassifyIdentity(child.Identity()), IdentityMatch::kSameProcess);
}

TEST(ClassifyIdentityTest, WrongStartTimeMeansThePidWasReused) {
  SleepingChild child;
  ProcessIdentity identity = child.Identity();
  identity.start_ticks += 1;
  EXPECT_EQ(*ClassifyIdentity(identity), IdentityMatch::kPidReused);
}

TEST(ClassifyIdentityTest, OtherBootIdMeansTheHostRebooted) {
  SleepingChild child;
  ProcessIdentity identity = child.Identity();
  identity.boot_id = "00000000-0000-0000-0000-000000000000";
  EXPECT_EQ(*ClassifyIdentity(identity), IdentityMatch::kHostRebooted);
}

TEST(ClassifyIdentityTest, ExitedUnreapedProcessIsAZombieAndReapedOneIsGone) {
  SleepingChild child;
  ProcessIdentity identity = child.Identity();
  ::kill(child.pid(), SIGKILL);
  child.WaitUntilZombie();
  EXPECT_EQ(*ClassifyIdentity(identity), IdentityMatch::kZombie);
  child.Reap();
  EXPECT_EQ(*ClassifyIdentity(identity), IdentityMatch::kGone);
}

TEST(SignalIdentityTest, RecordedIdentityWithWrongStartTimeIsRefused) {
  SleepingChild child;
  ProcessIdentity identity = child.Identity();
  identity.start_ticks -= 1;
  Status status = SignalIdentity(identity, SIGKILL);
  EXPECT_EQ(status.code(), StatusCode::kConflict) << status.ToString();
  EXPECT_EQ(*ClassifyIdentity(child.Identity()), IdentityMatch::kSameProcess)
      << "the process must not have been signalled";
}

TEST(SignalIdentityTest, RecordedIdentityOfAnotherBootIsRefused) {
  SleepingChild child;
  ProcessIdentity identity = child.Identity();
  identity.boot_id = "not-this-boot";
  EXPECT_EQ(SignalIdentity(identity, SIGKILL).code(), StatusCode::kConflict);
  EXPECT_EQ(*ClassifyIdentity(child.Identity()), IdentityMatch::kSameProcess);
}

TEST(SignalIdentityTest, MatchingIdentityIsSignalled) {
  SleepingChild child;
  ProcessIdentity identity = child.Identity();
  ASSERT_TRUE(SignalIdentity(identity, SIGKILL).ok());
  child.WaitUntilZombie();
  EXPECT_EQ(*ClassifyIdentity(identity), IdentityMatch::kZombie);
}

TEST(SignalIdentityTest, ReapedProcessIsNotFound) {
  SleepingChild child;
  ProcessIdentity identity = child.Identity();
  ::kill(child.pid(), SIGKILL);
  child.Reap();
  EXPECT_EQ(SignalIdentity(identity, SIGTERM).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace warden::process

// OrphanReaper against real orphaned trees: process_test_helper trees started through a middle
// process that exits at once, so that the test is not their parent (as the new daemon is not
// after a crash). Every case runs in pgroup mode and, where /sys/fs/cgroup/unified is a
// writable cgroup v2 hierarchy, in cgroup mode. TearDown SIGKILLs every process a test
// started (by pidfd, after checking its start time) and removes the test's cgroups; before
// that it ends the FUSE servers a test started (which releases their blocked readers) and
// detaches their mounts.
#include "recovery/orphan_reaper.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "process/cgroup.h"
#include "process/pidfd.h"
#include "process/proc_stat.h"

namespace warden::recovery {
namespace {

using namespace std::chrono_literals;
using process::ContainmentMode;

const std::filesystem::path kCgroupMount = "/sys/fs/cgroup/unified";

int64_t WallMs() { return SystemClock::Instance().WallMs(); }

// Live (not a zombie): the reaper ignores zombies, so must the checks.
bool IsAlive(pid_t pid) {
  Result<process::ProcStat> stat = process::ReadProcStat(pid);
  return stat.ok() && !stat->exited();
}

uint64_t StartTicks(pid_t pid) {
  Result<process::ProcStat> stat = process::ReadProcStat(pid);
  return stat.ok() ? stat->start_ticks : 0;
}

bool Contains(const std::vector<pid_t>& pids, pid_t pid) {
  return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

// Polls `done` every 5 ms for up to `timeout`.
template <typename F>
bool WaitFor(F done, std::chrono::milliseconds timeout = 5s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// One node tree, orphaned.
struct Tree {
  pid_t leader = 0;
  uint64_t start_ticks = 0;
  std::vector<pid_t> pids;      // "pid=" notes: every process of the tree
  std::vector<pid_t> escapees;  // "escapee=" notes
  process::Cookie cookie;
  std::string cgroup;  // cgroup mode: its own group
  std::vector<pid_t> All() const {
    std::vector<pid_t> all = pids;
    all.insert(all.end(), escapees.begin(), escapees.end());
    return all;
  }
};

class OrphanReaperTest : public ::testing::TestWithParam<ContainmentMode> {
 protected:
  static void SetUpTestSuite() {
    // Orphans must go to an ancestor or init, not to us: we would be their parent again.
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0), 0);
  }

  void SetUp() override {
    int subreaper = -1;
    ASSERT_EQ(::prctl(PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0), 0);
    ASSERT_EQ(subreaper, 0);
    ASSERT_TRUE(process::ReadBootId().ok());
    boot_id_ = *process::ReadBootId();
    if (cgroup_mode()) {
      base_ = kCgroupMount / ("warden-reaper-test-" + std::to_string(::getpid()));
      if (::mkdir(base_.c_str(), 0755) != 0 && errno != EEXIST) {
        GTEST_SKIP() << "no writable cgroup v2 hierarchy at " << kCgroupMount;
      }
      if (!std::filesystem::exists(base_ / "cgroup.kill")) {
        ::rmdir(base_.c_str());
        GTEST_SKIP() << "cgroup v2 without cgroup.kill here";
      }
    }
  }

  void TearDown() override {
    for (FuseServer& server : fuse_servers_) StopFuseServer(server);
    for (auto [pid, start] : started_) {
      Result<process::UniqueFd> pidfd = process::OpenPidfd(pid);
      if (!pidfd.ok() || StartTicks(pid) != start) continue;
      (void)process::SendSignal(*pidfd, SIGKILL);
      pollfd p{pidfd->get(), POLLIN, 0};
      ::poll(&p, 1, 5000);
    }
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    for (int fd : notify_fds_) ::close(fd);
    for (const auto& group : groups_) {
      WaitFor([&] { return process::RemoveCgroupTree(group) == 0; }, 2s);
    }
    if (!base_.empty()) ::rmdir(base_.c_str());
  }

  bool cgroup_mode() const { return GetParam() == ContainmentMode::kCgroup; }

  // A new empty group under the test's own (cgroup mode), else "".
  std::string NewGroup() {
    if (!cgroup_mode()) return {};
    std::filesystem::path group = base_ / ("t" + std::to_string(++counter_));
    EXPECT_EQ(::mkdir(group.c_str(), 0755), 0) << group;
    groups_.push_back(group);
    return group.string();
  }

  // Starts process_test_helper `args` as a node in its own session (and group), orphaned;
  // returns once `pid_notes` pids and `escapee_notes` escapees have announced themselves.
  Tree Launch(std::vector<std::string> args, size_t pid_notes, size_t escapee_notes = 0) {
    Tree tree;
    ++counter_;
    tree.cookie = {"exec-" + std::to_string(::getpid()) + "-" + std::to_string(counter_),
                   "node-" + std::to_string(counter_), 1};
    tree.cgroup = NewGroup();
    int pipe_fds[2];
    EXPECT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
    const int notify = ::dup(pipe_fds[1]);  // inherited by the helper (no O_CLOEXEC)
    ::close(pipe_fds[1]);
    notify_fds_.push_back(pipe_fds[0]);
    // Everything the children need is made before fork().
    std::vector<std::string> env = {
        "PATH=/usr/bin:/bin",
        std::string(process::kEnvExecutionId) + "=" + tree.cookie.execution_id,
        std::string(process::kEnvNodeId) + "=" + tree.cookie.node_id,
        std::string(process::kEnvAttempt) + "=" + std::to_string(tree.cookie.attempt),
        std::string(process::kEnvNotifyFd) + "=" + std::to_string(notify)};
    args.insert(args.begin(), WARDEN_TEST_HELPER);
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const std::string procs = tree.cgroup.empty() ? "" : tree.cgroup + "/cgroup.procs";

    pid_t middle = ::fork();
    if (middle == 0) {
      pid_t leader = ::fork();
      if (leader == 0) {
        ::setsid();
        if (!procs.empty()) {
          int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
          if (fd < 0 || ::write(fd, "0", 1) != 1) _exit(126);
        }
        ::execve(argv[0], argv.data(), envp.data());
        _exit(127);
      }
      char line[32];
      int n = std::snprintf(line, sizeof line, "leader=%d\n", leader);
      (void)!::write(notify, line, static_cast<size_t>(n));
      _exit(0);
    }
    ::close(notify);
    EXPECT_GT(middle, 0);
    ::waitpid(middle, nullptr, 0);

    std::string buffer;
    auto until = std::chrono::steady_clock::now() + 5s;
    while ((tree.leader == 0 || tree.pids.size() < pid_notes ||
            tree.escapees.size() < escapee_notes) &&
           std::chrono::steady_clock::now() < until) {
      pollfd p{pipe_fds[0], POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char chunk[512];
      ssize_t n = ::read(pipe_fds[0], chunk, sizeof chunk);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<size_t>(n));
      for (size_t eol; (eol = buffer.find('\n')) != std::string::npos; buffer.erase(0, eol + 1)) {
        std::string line = buffer.substr(0, eol);
        size_t eq = line.find('=');
        if (eq == std::string::npos) continue;
        std::string key = line.substr(0, eq);
        if (key == "error") {
          ADD_FAILURE() << "helper: " << line;
          continue;
        }
        pid_t pid = std::stoi(line.substr(eq + 1));
        if (key == "leader") tree.leader = pid;
        if (key == "pid") tree.pids.push_back(pid);
        if (key == "escapee") tree.escapees.push_back(pid);
      }
    }
    EXPECT_NE(tree.leader, 0);
    EXPECT_EQ(tree.pids.size(), pid_notes);
    EXPECT_EQ(tree.escapees.size(), escapee_notes);
    tree.start_ticks = StartTicks(tree.leader);
    for (pid_t pid : tree.All()) started_.emplace_back(pid, StartTicks(pid));
    for (pid_t pid : tree.All()) {
      EXPECT_NE(process::ReadProcStat(pid)->ppid, ::getpid()) << "not an orphan: " << pid;
    }
    return tree;
  }

  RecordedAttempt Record(const Tree& tree, std::chrono::milliseconds grace,
                         bool with_identity = true) const {
    RecordedAttempt a;
    a.execution_id = tree.cookie.execution_id;
    a.node_id = tree.cookie.node_id;
    a.attempt = tree.cookie.attempt;
    a.mode = GetParam();
    a.cgroup_path = tree.cgroup;
    a.cookie = tree.cookie;
    a.grace = grace;
    if (with_identity) {
      a.identity = process::ProcessIdentity{boot_id_,    tree.leader, tree.start_ticks, tree.leader,
                                            tree.leader, tree.cgroup, tree.cookie};
    }
    return a;
  }

  // A FUSE file system served by process_test_helper fuse-serve: the test's own child, in a
  // session of its own, in no tree's cgroup and without a cookie, so never a member of a
  // recorded tree. A read of `dir`/f is a request it takes and never answers.
  struct FuseServer {
    pid_t pid = 0;
    std::string dir;  // the mount point (a new directory under /tmp)
    bool mounted = false;
    int notes = -1;      // read end of its notify pipe
    std::string buffer;  // notes read but not taken yet
  };

  // The next note the server writes ("key=value"), or nullopt after `timeout` or once the
  // server has closed its end.
  static std::optional<std::string> NextNote(FuseServer& server,
                                             std::chrono::milliseconds timeout = 5s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (size_t eol = server.buffer.find('\n'); eol != std::string::npos) {
        std::string line = server.buffer.substr(0, eol);
        server.buffer.erase(0, eol + 1);
        return line;
      }
      auto left =
          std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{server.notes, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[512];
      ssize_t n = ::read(server.notes, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      server.buffer.append(chunk, static_cast<size_t>(n));
    }
  }

  // Starts a FUSE server on a new directory. Returns "" once it is mounted, else why not;
  // `unavailable` is set when the host does not allow it (no usable /dev/fuse, or the mount
  // refused with EPERM): a reason to skip, not a failure.
  std::string StartFuseServer(FuseServer& server, bool& unavailable) {
    unavailable = false;
    if (::access("/dev/fuse", R_OK | W_OK) != 0) {
      unavailable = true;
      return std::string("/dev/fuse: ") + std::strerror(errno);
    }
    char dir[] = "/tmp/warden-reaper-fuse-XXXXXX";
    if (::mkdtemp(dir) == nullptr) return std::string("mkdtemp: ") + std::strerror(errno);
    server.dir = dir;
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
    const int notify = ::dup(pipe_fds[1]);  // inherited by the server (no O_CLOEXEC)
    ::close(pipe_fds[1]);
    server.notes = pipe_fds[0];
    std::vector<std::string> args = {WARDEN_TEST_HELPER, "fuse-serve", server.dir};
    std::vector<std::string> env = {
        "PATH=/usr/bin:/bin", std::string(process::kEnvNotifyFd) + "=" + std::to_string(notify)};
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setsid();
      ::execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    ::close(notify);
    if (pid < 0) return std::string("fork: ") + std::strerror(errno);
    server.pid = pid;
    // "pid=", then "mounted=" or "mount-errno=" (then it exits).
    while (std::optional<std::string> note = NextNote(server)) {
      if (note->rfind("mounted=", 0) == 0) {
        server.mounted = true;
        return "";
      }
      if (note->rfind("mount-errno=", 0) == 0) {
        const int code = std::atoi(note->c_str() + std::strlen("mount-errno="));
        unavailable = code == EPERM || code == EACCES || code == ENODEV || code == ENOENT;
        return "FUSE on " + server.dir + ": " + std::strerror(code);
      }
    }
    return "the FUSE server did not mount " + server.dir;
  }

  // Ends the server: its death closes its /dev/fuse descriptor, which aborts the connection
  // and so ends every request it left unanswered (its readers can die). Then detaches the
  // mount and removes the directory. Idempotent.
  void StopFuseServer(FuseServer& server) {
    if (server.pid > 0) {
      // Our child, not reaped yet: the pid cannot belong to anyone else.
      ::kill(server.pid, SIGKILL);
      ::waitpid(server.pid, nullptr, 0);
      server.pid = 0;
    }
    if (server.mounted && ::umount2(server.dir.c_str(), MNT_DETACH) == 0) server.mounted = false;
    if (!server.dir.empty() && !server.mounted) {
      ::rmdir(server.dir.c_str());
      server.dir.clear();
    }
    if (server.notes >= 0) ::close(server.notes);
    server.notes = -1;
  }

  ReaperOptions Options() const {
    ReaperOptions options;
    options.kill_timeout = 2000ms;
    return options;
  }

  std::string boot_id_;
  std::filesystem::path base_;
  std::vector<std::filesystem::path> groups_;
  std::vector<std::pair<pid_t, uint64_t>> started_;
  std::vector<int> notify_fds_;
  std::vector<FuseServer> fuse_servers_;
  int counter_ = 0;
};

TEST_P(OrphanReaperTest, CooperativeTreeIsTerminatedWithoutSigkill) {
  Tree tree = Launch({"coop", "2"}, 3);
  std::vector<RecordedAttempt> attempts = {Record(tree, 2000ms)};
  OrphanReaper reaper(Options());
  std::vector<Finding> findings = reaper.Examine(attempts);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].verdict, Verdict::kSameProcess);
  EXPECT_EQ(findings[0].detection, Detection::kPid);
  EXPECT_EQ(findings[0].leader, process::IdentityMatch::kSameProcess);
  EXPECT_EQ(findings[0].observed_start_ticks, tree.start_ticks);
  for (pid_t pid : tree.pids) EXPECT_TRUE(Contains(findings[0].members, pid)) << pid;
  EXPECT_LE(std::abs(findings[0].found_at_ms - WallMs()), 1000);

  std::vector<std::pair<size_t, int64_t>> sigterms;
  auto start = std::chrono::steady_clock::now();
  std::vector<Outcome> outcomes = reaper.Terminate(
      attempts, findings, [&](size_t i, int64_t ms) { sigterms.emplace_back(i, ms); });
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].action, Action::kTerminated);
  EXPECT_FALSE(outcomes[0].sigkill_sent_ms);
  ASSERT_TRUE(outcomes[0].sigterm_sent_ms);
  ASSERT_EQ(sigterms.size(), 1u);
  EXPECT_EQ(sigterms[0], std::make_pair(size_t{0}, *outcomes[0].sigterm_sent_ms));
  EXPECT_GE(outcomes[0].finished_at_ms, *outcomes[0].sigterm_sent_ms);
  EXPECT_LT(elapsed, 1500ms);  // well before the grace
  EXPECT_TRUE(outcomes[0].unkillable.empty());
  for (pid_t pid : tree.pids) EXPECT_FALSE(IsAlive(pid)) << pid;
  if (cgroup_mode()) {
    EXPECT_TRUE(outcomes[0].cgroup_removed);
    EXPECT_FALSE(std::filesystem::exists(tree.cgroup));
  }
}

TEST_P(OrphanReaperTest, TermIgnoringTreeIsKilledAfterGrace) {
  Tree tree = Launch({"ignore", "2"}, 3);
  std::vector<RecordedAttempt> attempts = {Record(tree, 200ms)};
  OrphanReaper reaper(Options());
  std::vector<Finding> findings = reaper.Examine(attempts);
  ASSERT_EQ(findings[0].verdict, Verdict::kSameProcess);
  EXPECT_EQ(findings[0].members.size(), 3u);
  std::vector<Outcome> outcomes = reaper.Terminate(attempts, findings);
  EXPECT_EQ(outcomes[0].action, Action::kKilled);
  ASSERT_TRUE(outcomes[0].sigterm_sent_ms && outcomes[0].sigkill_sent_ms);
  const int64_t waited = *outcomes[0].sigkill_sent_ms - *outcomes[0].sigterm_sent_ms;
  EXPECT_GE(waited, 199);
  EXPECT_LT(waited, 500);
  EXPECT_TRUE(outcomes[0].unkillable.empty());
  for (pid_t pid : tree.pids) EXPECT_FALSE(IsAlive(pid)) << pid;
}

TEST_P(OrphanReaperTest, SetsidGrandchildCarryingCookieIsFoundAndTerminated) {
  Tree tree = Launch({"escape"}, 1, 1);
  const pid_t escapee = tree.escapees[0];
  ASSERT_NE(process::ReadProcStat(escapee)->session, tree.leader);  // left the session
  std::vector<RecordedAttempt> attempts = {Record(tree, 200ms)};
  OrphanReaper reaper(Options());
  std::vector<Finding> findings = reaper.Examine(attempts);
  ASSERT_EQ(findings[0].verdict, Verdict::kSameProcess);
  EXPECT_TRUE(Contains(findings[0].members, tree.leader));
  EXPECT_TRUE(Contains(findings[0].members, escapee));
  std::vector<Outcome> outcomes = reaper.Terminate(attempts, findings);
  EXPECT_EQ(outcomes[0].action, Action::kKilled);  // the escapee ignores SIGTERM
  EXPECT_FALSE(IsAlive(escapee));
  EXPECT_FALSE(IsAlive(tree.leader));
}

TEST_P(OrphanReaperTest, ReusedPidIsNeverSignalled) {
  // A live process that is not ours holds the recorded pid: our own child, not an orphan.
  pid_t stranger = ::fork();
  if (stranger == 0) {
    for (;;) ::pause();
  }
  ASSERT_GT(stranger, 0);
  ASSERT_TRUE(WaitFor([&] { return StartTicks(stranger) != 0; }));
  started_.emplace_back(stranger, StartTicks(stranger));
  Tree tree;
  tree.leader = stranger;
  tree.start_ticks = StartTicks(stranger) + 1000;  // what "our" leader had
  tree.cookie = {"exec-reused-" + std::to_string(::getpid()), "node", 1};
  tree.cgroup = NewGroup();
  std::vector<RecordedAttempt> attempts = {Record(tree, 100ms)};
  OrphanReaper reaper(Options());
  std::vector<Finding> findings = reaper.Examine(attempts);
  EXPECT_EQ(findings[0].verdict, Verdict::kPidReused);
  EXPECT_EQ(findings[0].leader, process::IdentityMatch::kPidReused);
  EXPECT_EQ(findings[0].observed_start_ticks, StartTicks(stranger));
  EXPECT_TRUE(findings[0].members.empty());
  std::vector<Outcome> outcomes = reaper.Terminate(attempts, findings);
  EXPECT_EQ(outcomes[0].action, Action::kPidReused);
  EXPECT_FALSE(outcomes[0].sigterm_sent_ms || outcomes[0].sigkill_sent_ms);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(::waitpid(stranger, nullptr, WNOHANG), 0);  // not exited, not even stopped
  EXPECT_TRUE(IsAlive(stranger));
  EXPECT_NE(process::ReadProcStat(stranger)->state, 'T');
  if (cgroup_mode()) {
    EXPECT_TRUE(outcomes[0].cgroup_removed);  // it was empty
  }
}

TEST_P(OrphanReaperTest, HostRebootedSignalsNothing) {
  Tree tree = Launch({"coop", "1"}, 2);  // would exit at any SIGTERM
  std::vector<RecordedAttempt> attempts = {Record(tree, 100ms)};
  attempts[0].identity->boot_id = "00000000-0000-0000-0000-000000000000";
  OrphanReaper reaper(Options());
  std::vector<Finding> findings = reaper.Examine(attempts);
  EXPECT_EQ(findings[0].verdict, Verdict::kHostRebooted);
  EXPECT_TRUE(findings[0].members.empty());
  std::vector<Outcome> outcomes = reaper.Terminate(attempts, findings);
  EXPECT_EQ(outcomes[0].action, Action::kHostRebooted);
  EXPECT_FALSE(outcomes[0].sigterm_sent_ms || outcomes[0].sigkill_sent_ms);
  std::this_thread::sleep_for(200ms);
  for (pid_t pid : tree.pids) EXPECT_TRUE(IsAlive(pid)) << pid;
  if (cgroup_mode()) {
    EXPECT_FALSE(outcomes[0].cgroup_removed);
    EXPECT_TRUE(std::filesystem::exists(tree.cgroup));
  }
}

TEST_P(OrphanReaperTest, IntentOnlyTreeIsFoundByCookieOrCgroup) {
  Tree tree = Launch({"coop", "1"}, 2);
  std::vector<RecordedAttempt> attempts = {Record(tree, 2000ms, /*with_identity=*/false)};
  OrphanReaper reaper(Options());
  std::vector<Finding> findings = reaper.Examine(attempts);
  ASSERT_EQ(findings[0].verdict, Verdict::kSameProcess);
  EXPECT_EQ(findings[0].detection, cgroup_mode() ? Detection::kCgroup : Detection::kCookie);
  EXPECT_FALSE(findings[0].leader);
  for (pid_t pid : tree.pids) EXPECT_TRUE(Contains(findings[0].members, pid)) << pid;
  std::vector<Outcome> outcomes = reaper.Terminate(attempts, findings);
  EXPECT_EQ(outcomes[0].action, Action::kTerminated);
  for (pid_t pid : tree.pids) EXPECT_FALSE(IsAlive(pid)) << pid;
}

TEST_P(OrphanReaperTest, LeaderDeadButMemberAliveIsStillTerminated) {
  Tree tree = Launch({"coop", "1"}, 2);
  const pid_t member = tree.pids[1];
  {
    Result<process::UniqueFd> pidfd = process::OpenPidfd(tree.leader);
    ASSERT_TRUE(pidfd.ok());
    ASSERT_TRUE(process::SendSignal(*pidfd, SIGKILL).ok());
    pollfd p{pidfd->get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
  }
  ASSERT_TRUE(IsAlive(member));
  std::vector<RecordedAttempt> attempts = {Record(tree, 2000ms)};
  OrphanReaper reaper(Options());
  std::vector<Finding> findings = reaper.Examine(attempts);
  ASSERT_EQ(findings[0].verdict, Verdict::kSameProcess);
  EXPECT_NE(findings[0].leader, process::IdentityMatch::kSameProcess);  // zombie, or reaped
  EXPECT_EQ(findings[0].members, std::vector<pid_t>{member});
  EXPECT_EQ(findings[0].detection, cgroup_mode() ? Detection::kCgroup : Detection::kPid);
  std::vector<Outcome> outcomes = reaper.Terminate(attempts, findings);
  EXPECT_EQ(outcomes[0].action, Action::kTerminated);
  EXPECT_FALSE(IsAlive(member));
}

TEST_P(OrphanReaperTest, StoppedTreeIsTerminatedGracefullyThanksToSigcont) {
  Tree tree = Launch({"coop", "2"}, 3);
  for (pid_t pid : tree.pids) {
    Result<process::UniqueFd> pidfd = process::OpenPidfd(pid);
    ASSERT_TRUE(pidfd.ok());
    ASSERT_TRUE(process::SendSignal(*pidfd, SIGSTOP).ok());
  }
  ASSERT_TRUE(WaitFor([&] {
    return std::all_of(tree.pids.begin(), tree.pids.end(),
                       [](pid_t pid) { return process::ReadProcStat(pid)->state == 'T'; });
  }));
  if (cgroup_mode()) {
    ASSERT_TRUE(process::WriteCgroupFile(tree.cgroup, "cgroup.freeze", "1").ok());
    ASSERT_TRUE(WaitFor([&] { return process::ReadCgroupEvents(tree.cgroup)->frozen; }));
  }
  std::vector<RecordedAttempt> attempts = {Record(tree, 3000ms)};
  OrphanReaper reaper(Options());
  std::vector<Finding> findings = reaper.Examine(attempts);
  ASSERT_EQ(findings[0].verdict, Verdict::kSameProcess);
  auto start = std::chrono::steady_clock::now();
  std::vector<Outcome> outcomes = reaper.Terminate(attempts, findings);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  EXPECT_EQ(outcomes[0].action, Action::kTerminated);
  EXPECT_FALSE(outcomes[0].sigkill_sent_ms);
  for (pid_t pid : tree.pids) EXPECT_FALSE(IsAlive(pid)) << pid;
}

TEST_P(OrphanReaperTest, RecordedSigtermPastTheGraceMeansSigkillAtOnce) {
  Tree tree = Launch({"ignore", "1"}, 2);
  std::vector<RecordedAttempt> attempts = {Record(tree, 300ms)};
  attempts[0].sigterm_sent_ms = WallMs() - 10000;
  OrphanReaper reaper(Options());
  std::vector<Finding> findings = reaper.Examine(attempts);
  ASSERT_EQ(findings[0].verdict, Verdict::kSameProcess);
  bool called = false;
  auto start = std::chrono::steady_clock::now();
  const int64_t start_ms = WallMs();
  std::vector<Outcome> outcomes =
      reaper.Terminate(attempts, findings, [&](size_t, int64_t) { called = true; });
  EXPECT_LT(std::chrono::steady_clock::now() - start, 250ms);  // no new grace
  EXPECT_EQ(outcomes[0].action, Action::kKilled);
  EXPECT_FALSE(called);
  EXPECT_FALSE(outcomes[0].sigterm_sent_ms);
  ASSERT_TRUE(outcomes[0].sigkill_sent_ms);
  EXPECT_LE(*outcomes[0].sigkill_sent_ms - start_ms, 100);
  for (pid_t pid : tree.pids) EXPECT_FALSE(IsAlive(pid)) << pid;
}

TEST_P(OrphanReaperTest, SeveralTreesFinishInAboutOneGrace) {
  constexpr auto kGrace = 400ms;
  std::vector<Tree> trees;
  std::vector<RecordedAttempt> attempts;
  for (int i = 0; i < 3; ++i) {
    trees.push_back(Launch({"ignore", "1"}, 2));
    attempts.push_back(Record(trees.back(), kGrace));
  }
  OrphanReaper reaper(Options());
  std::vector<Finding> findings = reaper.Examine(attempts);
  for (const Finding& f : findings) ASSERT_EQ(f.verdict, Verdict::kSameProcess);
  std::vector<size_t> signalled;
  auto start = std::chrono::steady_clock::now();
  std::vector<Outcome> outcomes =
      reaper.Terminate(attempts, findings, [&](size_t i, int64_t) { signalled.push_back(i); });
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, kGrace);
  EXPECT_LT(elapsed, 2 * kGrace);  // one after another would take 3 graces
  EXPECT_EQ(signalled, (std::vector<size_t>{0, 1, 2}));
  for (size_t i = 0; i < trees.size(); ++i) {
    EXPECT_EQ(outcomes[i].action, Action::kKilled) << i;
    ASSERT_TRUE(outcomes[i].sigterm_sent_ms && outcomes[i].sigkill_sent_ms);
    EXPECT_GE(*outcomes[i].sigkill_sent_ms - *outcomes[i].sigterm_sent_ms, kGrace.count() - 1);
    for (pid_t pid : trees[i].pids) EXPECT_FALSE(IsAlive(pid)) << pid;
  }
}

TEST_P(OrphanReaperTest, MemberThatSurvivesSigkillIsUnkillableAndTheRestStillEnds) {
  // The reader of a FUSE file whose server has taken the read request and never answers:
  // once a fatal signal is pending it waits for the answer uninterruptibly (D state), so
  // neither SIGTERM nor SIGKILL ends it while the server lives.
  fuse_servers_.emplace_back();
  FuseServer& server = fuse_servers_.back();
  bool unavailable = false;
  std::string error = StartFuseServer(server, unavailable);
  if (unavailable) GTEST_SKIP() << "no FUSE here: " << error;
  ASSERT_EQ(error, "");
  Tree stuck = Launch({"fuse-read", server.dir + "/f"}, 2);
  ASSERT_EQ(stuck.pids.size(), 2u);
  const pid_t reader = stuck.pids[0] == stuck.leader ? stuck.pids[1] : stuck.pids[0];
  std::optional<std::string> blocked = NextNote(server);
  ASSERT_TRUE(blocked) << "the FUSE server got no read request";
  ASSERT_EQ(*blocked, "blocked=" + std::to_string(reader));
  ASSERT_TRUE(WaitFor([&] { return process::ReadProcStat(reader)->state == 'S'; }))
      << "the reader does not wait for the answer";
  Tree coop = Launch({"coop", "1"}, 2);  // recovered in the same call

  constexpr auto kGrace = 200ms;
  constexpr auto kKillTimeout = 500ms;
  std::vector<RecordedAttempt> attempts = {Record(stuck, kGrace), Record(coop, kGrace)};
  ReaperOptions options = Options();
  options.kill_timeout = kKillTimeout;
  OrphanReaper reaper(options);
  std::vector<Finding> findings = reaper.Examine(attempts);
  ASSERT_EQ(findings[0].verdict, Verdict::kSameProcess);
  EXPECT_TRUE(Contains(findings[0].members, reader));
  ASSERT_EQ(findings[1].verdict, Verdict::kSameProcess);
  auto start = std::chrono::steady_clock::now();
  std::vector<Outcome> outcomes = reaper.Terminate(attempts, findings);
  auto elapsed = std::chrono::steady_clock::now() - start;

  // Bounded: the grace, then kill_timeout after SIGKILL, and it is over.
  EXPECT_GE(elapsed, kKillTimeout);
  EXPECT_LT(elapsed, kGrace + kKillTimeout + 1000ms);
  EXPECT_EQ(outcomes[0].action, Action::kUnkillable);
  EXPECT_EQ(outcomes[0].unkillable, std::vector<pid_t>{reader});
  ASSERT_TRUE(outcomes[0].sigterm_sent_ms && outcomes[0].sigkill_sent_ms);
  EXPECT_GE(*outcomes[0].sigkill_sent_ms - *outcomes[0].sigterm_sent_ms, kGrace.count() - 1);
  EXPECT_GE(outcomes[0].finished_at_ms - *outcomes[0].sigkill_sent_ms, kKillTimeout.count() - 1);
  Result<process::ProcStat> stat = process::ReadProcStat(reader);
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->state, 'D') << "the unkillable member is in uninterruptible sleep";
  EXPECT_FALSE(IsAlive(stuck.leader)) << "the leader ended at SIGTERM";
  // The other tree was not held up by the unkillable one.
  EXPECT_EQ(outcomes[1].action, Action::kTerminated);
  EXPECT_TRUE(outcomes[1].unkillable.empty());
  EXPECT_LE(outcomes[1].finished_at_ms, *outcomes[0].sigkill_sent_ms);
  for (pid_t pid : coop.pids) EXPECT_FALSE(IsAlive(pid)) << pid;
  // The FUSE server is not ours: never signalled.
  EXPECT_EQ(::waitpid(server.pid, nullptr, WNOHANG), 0);
  EXPECT_TRUE(IsAlive(server.pid));
  EXPECT_NE(process::ReadProcStat(server.pid)->state, 'T');
  if (cgroup_mode()) {
    EXPECT_FALSE(outcomes[0].cgroup_removed) << "the group still holds the unkillable reader";
    EXPECT_TRUE(std::filesystem::exists(stuck.cgroup));
    EXPECT_TRUE(outcomes[1].cgroup_removed);
  }

  // Without its server, the request ends and the reader dies at last.
  Result<process::UniqueFd> reader_fd = process::OpenPidfd(reader);
  ASSERT_TRUE(reader_fd.ok());
  StopFuseServer(server);
  pollfd p{reader_fd->get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 5000), 1) << "the reader outlived its FUSE server";
}

TEST(OrphanReaperNamesTest, NamesAreTheJournalsWords) {
  EXPECT_EQ(VerdictName(Verdict::kSameProcess), "same_process");
  EXPECT_EQ(VerdictName(Verdict::kHostRebooted), "host_rebooted");
  EXPECT_EQ(DetectionName(Detection::kCgroup), "cgroup");
  EXPECT_EQ(DetectionName(Detection::kCookie), "cookie");
  EXPECT_EQ(ActionName(Action::kTerminated), "terminated");
  EXPECT_EQ(ActionName(Action::kUnkillable), "unkillable");
  EXPECT_EQ(ActionName(Action::kHostRebooted), "host_rebooted");
}

std::string ModeName(const ::testing::TestParamInfo<ContainmentMode>& info) {
  return std::string(process::ContainmentModeName(info.param));
}

INSTANTIATE_TEST_SUITE_P(BothModes, OrphanReaperTest,
                         ::testing::Values(ContainmentMode::kProcessGroup,
                                           ContainmentMode::kCgroup),
                         ModeName);

}  // namespace
}  // namespace warden::recovery

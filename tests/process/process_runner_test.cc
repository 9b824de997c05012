// LocalProcessRunner with real processes, in both containment modes (each test runs twice:
// ".../cgroup" and ".../pgroup").
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "process/cgroup.h"
#include "process/spawner.h"
#include "runner_fixture.h"

namespace warden::process {
namespace {

using ProcessRunnerTest = RunnerFixture;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::filesystem::path TempPath(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("warden-process-test-" + std::to_string(::getpid()) + "-" + name);
}

TEST_P(ProcessRunnerTest, CooperativeTreeExitsGracefullyInsideTheGrace) {
  auto node = Launch({"@helper", "coop", "2"});
  WaitForPids(*node, "pid", 3);
  TerminationReport report = TerminateAndWait(*node, 5000ms);
  EXPECT_TRUE(report.graceful);
  EXPECT_TRUE(report.sigterm_sent_ms.has_value());
  EXPECT_FALSE(report.sigkill_sent_ms.has_value());
  ASSERT_TRUE(report.tree_empty_ms.has_value());
  EXPECT_LT(*report.tree_empty_ms - *report.sigterm_sent_ms, 1000);
  EXPECT_TRUE(report.unkillable.empty());
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  EXPECT_EQ(node->exit->exit_code, 0);
  EXPECT_FALSE(node->exit->signal.has_value());
  for (pid_t pid : node->Pids("pid")) EXPECT_FALSE(IsAlive(pid)) << pid;
}

TEST_P(ProcessRunnerTest, TermIgnoringTreeIsKilledAtTheGrace) {
  auto node = Launch({"@helper", "ignore", "1"});
  WaitForPids(*node, "pid", 2);
  TerminationReport report = TerminateAndWait(*node, 300ms);
  EXPECT_FALSE(report.graceful);
  ASSERT_TRUE(report.sigterm_sent_ms && report.sigkill_sent_ms && report.tree_empty_ms);
  EXPECT_GE(*report.sigkill_sent_ms - *report.sigterm_sent_ms, 300);
  EXPECT_LT(*report.sigkill_sent_ms - *report.sigterm_sent_ms, 400);
  EXPECT_LT(*report.tree_empty_ms - *report.sigterm_sent_ms, 400) << "gone within 100 ms";
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  EXPECT_EQ(node->exit->signal, SIGKILL);
  EXPECT_FALSE(node->exit->exit_code.has_value());
  for (pid_t pid : node->Pids("pid")) EXPECT_FALSE(IsAlive(pid)) << pid;
}

TEST_P(ProcessRunnerTest, SetsidDoubleForkedGrandchildEndsWithTheTree) {
  auto node = Launch({"@helper", "escape"});
  WaitForPids(*node, "escapee", 1);
  pid_t escapee = node->Pids("escapee")[0];
  ASSERT_TRUE(IsAlive(escapee));
  EXPECT_NE(ReadProcStat(escapee)->session, node->tree->identity().sid)
      << "it left the node's session";
  TerminationReport report = TerminateAndWait(*node, 300ms);
  EXPECT_TRUE(report.tree_empty_ms.has_value());
  EXPECT_TRUE(report.sigkill_sent_ms.has_value()) << "the escapee ignores SIGTERM";
  EXPECT_FALSE(IsAlive(escapee));
  EXPECT_FALSE(IsAlive(node->Pids("pid")[0]));
}

// The middle process of a double fork may outlive the leader, so it is adopted and found
// as an escapee itself, and may exit while a scan is under way. Whenever it exits, the tree
// still ends once the grandchild is killed: a reaped pid is never kept as a member.
TEST_P(ProcessRunnerTest, MiddleOfADoubleForkThatOutlivesTheLeaderNeverHoldsTheTree) {
  for (long linger_us = 0; linger_us <= 2000; linger_us += 100) {
    SCOPED_TRACE("middle lingers " + std::to_string(linger_us) + " us");
    auto node = Launch({"@helper", "escape-linger", std::to_string(linger_us)});
    WaitForPids(*node, "escapee", 1);
    WaitForPids(*node, "middle", 1);
    pid_t escapee = node->Pids("escapee")[0];
    pid_t middle = node->Pids("middle")[0];
    TerminationReport report = TerminateAndWait(*node, 50ms);
    ASSERT_TRUE(report.tree_empty_ms.has_value());
    EXPECT_TRUE(report.unkillable.empty());
    EXPECT_FALSE(IsAlive(escapee));
    EXPECT_FALSE(IsAlive(middle));
    ASSERT_TRUE(RunUntil([&] { return runner_->live_trees() == 0; }, 2s));
  }
}

// An embedding program may install its own SIGCHLD handler over the runner's: the tree
// still ends when its last process exits, not at the SIGKILL deadline.
TEST_P(ProcessRunnerTest, TreeEndsOnTimeWithoutTheRunnersSigchldHandler) {
  auto node = Launch({"@helper", "slow-term", "100"});
  WaitForPids(*node, "pid", 2);
  struct sigaction theirs {};
  struct sigaction runners {};
  theirs.sa_handler = [](int) {};
  ASSERT_EQ(::sigaction(SIGCHLD, &theirs, &runners), 0);
  TerminationReport report = TerminateAndWait(*node, 3000ms);
  ::sigaction(SIGCHLD, &runners, nullptr);
  EXPECT_TRUE(report.graceful) << "both processes exited at SIGTERM";
  EXPECT_FALSE(report.sigkill_sent_ms.has_value());
  ASSERT_TRUE(report.tree_empty_ms.has_value());
  for (pid_t pid : node->Pids("pid")) EXPECT_FALSE(IsAlive(pid)) << pid;
}

// An adopted escapee whose main thread has exited (its other threads run on) has no memory
// of its own to read the cookie from: its threads' is read instead. Other nodes finish
// meanwhile, and the escapee ends with its tree.
TEST_P(ProcessRunnerTest, EscapeeWhoseMainThreadExitedIsFoundAndHoldsUpNoOtherTree) {
  auto node = Launch({"@helper", "escape-threaded"});
  WaitForPids(*node, "escapee", 1);
  pid_t escapee = node->Pids("escapee")[0];
  ASSERT_TRUE(RunUntil([&] {
    auto stat = ReadProcStat(escapee);
    return stat.ok() && stat->state == 'Z';  // the leader thread is gone, the process lives
  }));
  auto other = Launch({"@helper", "exit", "0"});
  ASSERT_TRUE(RunUntil([&] { return other->exit.has_value(); }, 2s));
  EXPECT_EQ(other->exit->exit_code, 0);
  TerminationReport report = TerminateAndWait(*node, 100ms);
  EXPECT_TRUE(report.tree_empty_ms.has_value());
  EXPECT_TRUE(report.unkillable.empty());
  EXPECT_TRUE(RunUntil([&] { return !ReadProcStat(escapee).ok(); }, 2s))
      << "killed with its tree, and reaped";
}

TEST_P(ProcessRunnerTest, EscapeeThatDropsTheCookieIsContainedOnlyByACgroup) {
  auto node = Launch({"@helper", "escape-clean"});
  WaitForPids(*node, "escapee", 1);
  pid_t escapee = node->Pids("escapee")[0];
  // Wait for the exec that wipes the environment.
  ASSERT_TRUE(RunUntil([&] {
    return ReadFile("/proc/" + std::to_string(escapee) + "/environ").find("WARDEN_") ==
           std::string::npos;
  }));
  TerminationReport report = TerminateAndWait(*node, 300ms);
  EXPECT_TRUE(report.tree_empty_ms.has_value());
  if (GetParam() == ContainmentMode::kCgroup) {
    EXPECT_FALSE(IsAlive(escapee)) << "nothing leaves a cgroup";
  } else {
    // The documented limit of pgroup mode: out of the session and without the cookie, it
    // is not ours to find. Clean it up by hand; the runner reaps it as subreaper.
    EXPECT_TRUE(IsAlive(escapee));
    ::kill(escapee, SIGKILL);
    EXPECT_TRUE(RunUntil([&] { return !ReadProcStat(escapee).ok(); }));
  }
}

// A node may make cgroups of its own inside the one it was given (a build sandbox, a
// nested runner). Its processes there are part of its tree: they get the SIGTERM too, and
// the groups go with the node's.
TEST_P(ProcessRunnerTest, ProcessInAGroupTheNodeMadeBelowItsOwnGetsSigterm) {
  if (GetParam() != ContainmentMode::kCgroup) GTEST_SKIP() << "a cgroup mode case";
  auto node = Launch({"@helper", "nested-cgroup"});
  ASSERT_TRUE(RunUntil([&] {
    return !node->Pids("inner").empty() ||
           std::any_of(node->notes.begin(), node->notes.end(),
                       [](const auto& note) { return note.first == "error"; });
  }));
  ASSERT_EQ(node->Pids("inner").size(), 1u) << (node->notes.empty() ? "" : node->notes[0].second);
  const pid_t inner = node->Pids("inner")[0];
  const std::filesystem::path group = node->tree->identity().cgroup_path;
  ASSERT_TRUE(ProcessInCgroup(inner, group / "inner"));
  EXPECT_NE(ReadProcStat(inner)->pgrp, node->tree->identity().pgid) << "no group signal reaches it";

  TerminationReport report = TerminateAndWait(*node, 5000ms);
  EXPECT_TRUE(report.graceful) << "the inner process exits at SIGTERM";
  EXPECT_FALSE(report.sigkill_sent_ms.has_value());
  ASSERT_TRUE(report.tree_empty_ms && report.sigterm_sent_ms);
  EXPECT_LT(*report.tree_empty_ms - *report.sigterm_sent_ms, 1000);
  ASSERT_TRUE(RunUntil([&] { return node->Pids("term").size() == 1; }));
  EXPECT_EQ(node->Pids("term")[0], inner);
  EXPECT_FALSE(IsAlive(inner));
  EXPECT_TRUE(RunUntil([&] { return !std::filesystem::exists(group); }, 5s))
      << group << " and the group inside it are removed once the node ends";
}

TEST_P(ProcessRunnerTest, PausedTreeThatIsTerminatedExitsGracefully) {
  auto node = Launch({"@helper", "coop", "1"});
  WaitForPids(*node, "pid", 2);
  std::optional<Status> paused;
  node->tree->Pause([&](Status s) { paused = s; });
  ASSERT_TRUE(RunUntil([&] { return paused.has_value(); }));
  ASSERT_TRUE(paused->ok()) << paused->ToString();
  for (pid_t pid : node->Pids("pid")) {
    ASSERT_TRUE(RunUntil([&] { return ReadProcStat(pid)->state != 'S'; }, 2s) ||
                GetParam() == ContainmentMode::kCgroup);
  }
  TerminationReport report = TerminateAndWait(*node, 5000ms);
  EXPECT_TRUE(report.graceful);
  EXPECT_FALSE(report.sigkill_sent_ms.has_value());
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  EXPECT_EQ(node->exit->exit_code, 0);
}

TEST_P(ProcessRunnerTest, PauseStopsTheTreeAndResumeReportsTimePaused) {
  auto node = Launch({"@helper", "coop", "1"});
  WaitForPids(*node, "pid", 2);
  std::optional<Status> paused;
  node->tree->Pause([&](Status s) { paused = s; });
  ASSERT_TRUE(RunUntil([&] { return paused.has_value(); }));
  ASSERT_TRUE(paused->ok());
  if (GetParam() == ContainmentMode::kProcessGroup) {
    // A member the runner's last /proc pass has not seen yet (forked a moment ago) is
    // stopped by the group signal but not waited for, so it may take a moment more.
    for (pid_t pid : node->Pids("pid")) {
      EXPECT_TRUE(RunUntil([&] { return ReadProcStat(pid)->state == 'T'; }, 2s)) << pid;
    }
  } else {
    EXPECT_TRUE(ReadCgroupEvents(node->tree->identity().cgroup_path)->frozen);
  }
  RunFor(200ms);
  std::optional<Result<std::chrono::milliseconds>> resumed;
  node->tree->Resume([&](Result<std::chrono::milliseconds> r) { resumed = r; });
  ASSERT_TRUE(RunUntil([&] { return resumed.has_value(); }));
  ASSERT_TRUE(resumed->ok());
  EXPECT_GE(resumed->value(), 200ms);
  EXPECT_EQ(node->tree->total_paused(), resumed->value());
  std::optional<Result<std::chrono::milliseconds>> again;
  node->tree->Resume([&](Result<std::chrono::milliseconds> r) { again = r; });
  ASSERT_TRUE(RunUntil([&] { return again.has_value(); }));
  EXPECT_EQ(again->status().code(), StatusCode::kConflict) << "not paused any more";
}

TEST_P(ProcessRunnerTest, PauseRightAfterLaunchFreezesTheNodeOnlyOnceItHasExeced) {
  // Frozen before its exec, the child would still be the daemon (same executable) and hold
  // copies of every daemon descriptor for as long as the pause lasts.
  const auto self = std::filesystem::read_symlink("/proc/self/exe");
  for (int i = 0; i < 20; ++i) {
    auto node = Launch({"/bin/sleep", "30"});
    std::optional<Status> paused;
    node->tree->Pause([&](Status s) { paused = s; });
    ASSERT_TRUE(RunUntil([&] { return paused.has_value(); }));
    ASSERT_TRUE(paused->ok()) << paused->ToString();
    const pid_t pid = node->tree->identity().pid;
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_NE(exe, self) << "attempt " << i << ": frozen before its exec";
    std::optional<TerminationReport> report;
    node->tree->Terminate(100ms, [&](const TerminationReport& r) { report = r; });
    ASSERT_TRUE(RunUntil([&] { return report.has_value() && node->exit.has_value(); }));
  }
}

TEST_P(ProcessRunnerTest, ChildHoldsOnlyStdioAndTheNotifyFd) {
  LaunchSpec spec;
  spec.output.stdout_path = TempPath("fds");
  auto node = Launch({"@helper", "fds"}, spec);
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  EXPECT_EQ(ReadFile(spec.output.stdout_path), "0 1 2 3 ");
  std::filesystem::remove(spec.output.stdout_path);
}

TEST_P(ProcessRunnerTest, MissingExecutableIsAFailedLaunchWithExitCode127) {
  LaunchSpec spec;
  spec.argv = {"/nonexistent/warden-no-such-program"};
  spec.cookie = {"e", "n", 1};
  Result<std::shared_ptr<ProcessTree>> tree = runner_->Launch(spec, {});
  ASSERT_FALSE(tree.ok());
  EXPECT_EQ(tree.status().code(), StatusCode::kNotFound) << tree.status().ToString();
  EXPECT_EQ(ExitCodeForLaunchFailure(tree.status()), 127);

  spec.argv = {"warden-no-such-program-in-path"};
  tree = runner_->Launch(spec, {});
  ASSERT_FALSE(tree.ok());
  EXPECT_EQ(ExitCodeForLaunchFailure(tree.status()), 127);
}

// A relative program path (or PATH entry) means relative to the node's cwd, where it runs,
// never to the daemon's own directory.
TEST_P(ProcessRunnerTest, RelativeProgramIsFoundInTheNodesCwd) {
  std::filesystem::path dir = TempPath("project");
  std::filesystem::create_directories(dir / "bin");
  for (const char* name : {"hello.sh", "bin/tool"}) {
    std::ofstream(dir / name) << "#!/bin/sh\nexit 7\n";
    std::filesystem::permissions(dir / name, std::filesystem::perms::owner_all);
  }
  LaunchSpec spec;
  spec.cwd = dir.string();
  auto node = Launch({"./hello.sh"}, spec);
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  EXPECT_EQ(node->exit->exit_code, 7);

  spec.env = {{"PATH", "bin:/usr/bin:/bin"}};
  auto via_path = Launch({"tool"}, spec);
  ASSERT_TRUE(RunUntil([&] { return via_path->exit.has_value(); }));
  EXPECT_EQ(via_path->exit->exit_code, 7);

  spec.cwd = "/";  // no hello.sh there
  spec.env.clear();
  spec.argv = {"./hello.sh"};
  spec.cookie = {"e", "n", 1};
  Result<std::shared_ptr<ProcessTree>> missing = runner_->Launch(spec, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(ExitCodeForLaunchFailure(missing.status()), 127);
  std::filesystem::remove_all(dir);
}

TEST_P(ProcessRunnerTest, BadCwdIsAFailedLaunchWithExitCode126) {
  LaunchSpec spec;
  spec.argv = {"/bin/true"};
  spec.cwd = "/nonexistent/dir";
  spec.cookie = {"e", "n", 1};
  Result<std::shared_ptr<ProcessTree>> tree = runner_->Launch(spec, {});
  ASSERT_FALSE(tree.ok());
  EXPECT_NE(tree.status().message().find("chdir"), std::string::npos);
  EXPECT_EQ(ExitCodeForLaunchFailure(tree.status()), 126);
}

TEST_P(ProcessRunnerTest, TreeOf200ProcessesIsKilledCompletely) {
  auto node = Launch({"@helper", "ignore", "199"});
  WaitForPids(*node, "pid", 200);
  std::vector<pid_t> pids = node->Pids("pid");
  ASSERT_EQ(pids.size(), 200u);
  TerminationReport report = TerminateAndWait(*node, 200ms);
  EXPECT_TRUE(report.unkillable.empty());
  EXPECT_TRUE(report.tree_empty_ms.has_value());
  for (pid_t pid : pids) EXPECT_FALSE(IsAlive(pid)) << pid;
}

TEST_P(ProcessRunnerTest, ExitCodeAndSignalAreKeptApart) {
  auto exited = Launch({"@helper", "exit", "3"});
  auto killed = Launch({"/bin/sh", "-c", "kill -KILL $$"});
  ASSERT_TRUE(RunUntil([&] { return exited->exit && killed->exit; }));
  EXPECT_EQ(exited->exit->exit_code, 3);
  EXPECT_FALSE(exited->exit->signal.has_value());
  EXPECT_EQ(killed->exit->signal, SIGKILL);
  EXPECT_FALSE(killed->exit->exit_code.has_value());
  EXPECT_FALSE(exited->exit->leftovers_terminated);
}

TEST_P(ProcessRunnerTest, NotifyLinesReachTheCallerInOrder) {
  auto node = Launch({"@helper", "notify", "cost_usd=0.25", "cost_usd=0.5"});
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  RunFor(10ms);
  ASSERT_EQ(node->notes.size(), 2u);
  EXPECT_EQ(node->notes[0], (std::pair<std::string, std::string>{"cost_usd", "0.25"}));
  EXPECT_EQ(node->notes[1], (std::pair<std::string, std::string>{"cost_usd", "0.5"}));
}

TEST_P(ProcessRunnerTest, MalformedNotifyLinesReachTheCallerWithAnEmptyKey) {
  const std::string overlong(5000, 'x');  // over the default notify_line_max, 4096
  auto node = Launch(
      {"@helper", "notify", "no equals sign", "=no key", "", overlong + "=1", "progress=50"});
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  RunFor(10ms);
  using Note = std::pair<std::string, std::string>;
  EXPECT_EQ(node->notes,
            (std::vector<Note>{
                {"", "no equals sign"}, {"", "=no key"}, {"", ""}, {"", ""}, {"progress", "50"}}));
}

TEST_P(ProcessRunnerTest, CapturedOutputStopsAtTheCapAndCountsTheRest) {
  LaunchSpec spec;
  spec.output.stdout_path = TempPath("spew");
  spec.output.cap_bytes = 1000;
  auto node = Launch({"@helper", "spew", "100000"}, spec);
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  EXPECT_EQ(node->exit->exit_code, 0) << "the writer is never blocked or failed";
  EXPECT_EQ(std::filesystem::file_size(spec.output.stdout_path), 1000u);
  EXPECT_EQ(node->exit->stdout_bytes, 1000u);
  EXPECT_EQ(node->exit->stdout_dropped, 99000u);
  std::filesystem::remove(spec.output.stdout_path);
}

// A capture file is made on its stream's first byte: a node that writes nothing costs no
// file at all, and one that writes only to stderr gets only the stderr file.
TEST_P(ProcessRunnerTest, CaptureFileIsMadeOnlyWhenItsStreamWrites) {
  LaunchSpec spec;
  spec.output.stdout_path = TempPath("silent.stdout");
  spec.output.stderr_path = TempPath("silent.stderr");
  auto silent = Launch({"/bin/true"}, spec);
  ASSERT_TRUE(RunUntil([&] { return silent->exit.has_value(); }));
  EXPECT_EQ(silent->exit->exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(spec.output.stdout_path));
  EXPECT_FALSE(std::filesystem::exists(spec.output.stderr_path));

  LaunchSpec loud;
  loud.output.stdout_path = TempPath("loud.stdout");
  loud.output.stderr_path = TempPath("loud.stderr");
  auto node = Launch({"/bin/sh", "-c", "echo oops >&2"}, loud);
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  EXPECT_FALSE(std::filesystem::exists(loud.output.stdout_path));
  EXPECT_EQ(ReadFile(loud.output.stderr_path), "oops\n");
  std::filesystem::remove(loud.output.stderr_path);
}

// A capture file that cannot be made loses that output, counted as dropped, never the node.
TEST_P(ProcessRunnerTest, CaptureFileThatCannotBeMadeDropsTheOutputNotTheNode) {
  LaunchSpec spec;
  spec.output.stdout_path = TempPath("no-such-dir") / "out";
  auto node = Launch({"@helper", "spew", "5000"}, spec);
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  EXPECT_EQ(node->exit->exit_code, 0);
  EXPECT_EQ(node->exit->stdout_bytes, 0u);
  EXPECT_EQ(node->exit->stdout_dropped, 5000u);
}

// Output the file cannot take (a full disk: /dev/full answers ENOSPC) is counted as dropped,
// never as kept, and the node runs on regardless.
TEST_P(ProcessRunnerTest, OutputTheFileCannotTakeIsCountedAsDropped) {
  LaunchSpec spec;
  spec.output.stdout_path = "/dev/full";
  auto node = Launch({"@helper", "spew", "10000"}, spec);
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  EXPECT_EQ(node->exit->exit_code, 0);
  EXPECT_EQ(node->exit->stdout_bytes, 0u);
  EXPECT_EQ(node->exit->stdout_dropped, 10000u);
}

// A node must not fill the disk the journal is on: under the free-space reserve its output
// is dropped (counted), and the node runs on.
TEST_P(ProcessRunnerTest, OutputUnderTheFreeSpaceReserveIsDroppedNotWritten) {
  LaunchSpec spec;
  spec.output.stdout_path = TempPath("reserve");
  spec.output.reserve_bytes = std::numeric_limits<uint64_t>::max();  // no disk has that much
  auto node = Launch({"@helper", "spew", "100000"}, spec);
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  EXPECT_EQ(node->exit->exit_code, 0);
  EXPECT_EQ(node->exit->stdout_bytes, 0u);
  EXPECT_EQ(node->exit->stdout_dropped, 100000u);
  EXPECT_EQ(std::filesystem::file_size(spec.output.stdout_path), 0u);
  std::filesystem::remove(spec.output.stdout_path);
}

// Megabytes written right before the exit: every byte reaches the file, in order, however
// the last reads and the exit interleave on the event loop.
TEST_P(ProcessRunnerTest, OutputWrittenJustBeforeTheExitIsKeptWhole) {
  for (int run = 0; run < 30; ++run) {
    LaunchSpec spec;
    spec.output.stdout_path = TempPath("burst");
    spec.output.cap_bytes = 16 << 20;
    auto node = Launch({"@helper", "spew", "3000000"}, spec);
    ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
    ASSERT_EQ(node->exit->exit_code, 0);
    EXPECT_EQ(node->exit->stdout_bytes, 3000000u) << "run " << run;
    EXPECT_EQ(std::filesystem::file_size(spec.output.stdout_path), 3000000u) << "run " << run;
    std::filesystem::remove(spec.output.stdout_path);
  }
}

TEST_P(ProcessRunnerTest, EnvironmentCarriesTheCookieAndDropsNotifySocket) {
  ::setenv("NOTIFY_SOCKET", "/run/should-not-pass", 1);
  ::setenv("LISTEN_FDS", "3", 1);
  // The runner snapshots the daemon's environment at creation: make a fresh one.
  RunnerOptions options;
  options.containment.request = ContainmentOptions::Request::kProcessGroup;
  auto runner = LocalProcessRunner::Create(io_, options);
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("LISTEN_FDS");
  ASSERT_TRUE(runner.ok());
  LaunchSpec spec;
  spec.argv = {"env"};
  spec.env = {{"MODE", "full"}, {"WARDEN_NODE_ID", "forged"}};
  spec.cookie = {"exec-1", "extract", 2};
  spec.output.stdout_path = TempPath("env");
  bool done = false;
  LaunchCallbacks callbacks;
  callbacks.on_exit = [&](const ExitInfo&) { done = true; };
  auto tree = (*runner)->Launch(spec, std::move(callbacks));
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  ASSERT_TRUE(RunUntil([&] { return done; }));
  std::string env = ReadFile(spec.output.stdout_path);
  EXPECT_NE(env.find("WARDEN_EXECUTION_ID=exec-1\n"), std::string::npos);
  EXPECT_NE(env.find("WARDEN_NODE_ID=extract\n"), std::string::npos);
  EXPECT_NE(env.find("WARDEN_ATTEMPT=2\n"), std::string::npos);
  EXPECT_NE(env.find("WARDEN_NOTIFY_FD=3\n"), std::string::npos);
  EXPECT_NE(env.find("MODE=full\n"), std::string::npos);
  EXPECT_EQ(env.find("forged"), std::string::npos);
  EXPECT_EQ(env.find("NOTIFY_SOCKET"), std::string::npos);
  EXPECT_EQ(env.find("LISTEN_FDS"), std::string::npos);
  std::filesystem::remove(spec.output.stdout_path);
}

TEST_P(ProcessRunnerTest, NodeStartsAtTheNiceValueItIsGivenNotTheDaemons) {
  errno = 0;
  const int own = ::getpriority(PRIO_PROCESS, 0);
  ASSERT_EQ(errno, 0);
  const int wanted = std::min(own + 3, 19);
  ASSERT_NE(wanted, own) << "the test runs at nice 19 already";
  RunnerOptions options;
  options.containment.request = ContainmentOptions::Request::kProcessGroup;
  options.node_nice = wanted;
  auto runner = LocalProcessRunner::Create(io_, options);
  ASSERT_TRUE(runner.ok());
  LaunchSpec spec;
  // Field 19 of /proc/PID/stat is the nice value (awk's own name has no space in it).
  spec.argv = {"awk", "{print $19}", "/proc/self/stat"};
  spec.output.stdout_path = TempPath("nice");
  bool done = false;
  LaunchCallbacks callbacks;
  callbacks.on_exit = [&](const ExitInfo&) { done = true; };
  auto tree = (*runner)->Launch(spec, std::move(callbacks));
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  ASSERT_TRUE(RunUntil([&] { return done; }));
  EXPECT_EQ(ReadFile(spec.output.stdout_path), std::to_string(wanted) + "\n");
  EXPECT_EQ(::getpriority(PRIO_PROCESS, 0), own) << "the daemon's own priority is untouched";
  std::filesystem::remove(spec.output.stdout_path);
}

TEST_P(ProcessRunnerTest, IdentityIsCapturedAtLaunchAndMatchesProc) {
  auto node = Launch({"@helper", "coop", "0"});
  const ProcessIdentity& identity = node->tree->identity();
  // Launch returns before the child has exec'd; once it runs, /proc agrees with the record.
  WaitForPids(*node, "pid", 1);
  EXPECT_GT(identity.pid, 0);
  EXPECT_EQ(identity.pgid, identity.pid);
  EXPECT_EQ(identity.sid, identity.pid);
  Result<ProcStat> stat = ReadProcStat(identity.pid);
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->start_ticks, identity.start_ticks);
  EXPECT_EQ(stat->pgrp, identity.pid);
  EXPECT_EQ(stat->session, identity.pid);
  EXPECT_EQ(*ClassifyIdentity(identity), IdentityMatch::kSameProcess);
  if (GetParam() == ContainmentMode::kCgroup) {
    EXPECT_EQ(identity.cgroup_path.rfind(cgroup_root_.string(), 0), 0u);
    std::string procs = ReadFile(std::filesystem::path(identity.cgroup_path) / "cgroup.procs");
    EXPECT_EQ(procs, std::to_string(identity.pid) + "\n");
  } else {
    EXPECT_TRUE(identity.cgroup_path.empty());
  }
  TerminateAndWait(*node, 2000ms);
  EXPECT_EQ(*ClassifyIdentity(identity), IdentityMatch::kGone);
}

TEST_P(ProcessRunnerTest, IntentIsOfferedBeforeLaunchAndCanVetoIt) {
  LaunchSpec spec;
  spec.argv = {"/bin/true"};
  spec.cookie = {"exec-veto", "n", 1};
  std::optional<LaunchIntent> seen;
  LaunchCallbacks callbacks;
  callbacks.on_intent = [&](const LaunchIntent& intent) {
    seen = intent;
    return Status::Unavailable("journal down");
  };
  Result<std::shared_ptr<ProcessTree>> tree = runner_->Launch(spec, std::move(callbacks));
  EXPECT_EQ(tree.status().code(), StatusCode::kUnavailable);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->cookie, spec.cookie);
  EXPECT_EQ(seen->mode, GetParam());
  EXPECT_EQ(seen->cgroup_path.empty(), GetParam() == ContainmentMode::kProcessGroup);
}

TEST_P(ProcessRunnerTest, LeftoversOfAnExitedLeaderAreTerminated) {
  auto node = Launch({"/bin/sh", "-c", "sleep 1000 & echo pid=$! >&3; exit 0"});
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  EXPECT_EQ(node->exit->exit_code, 0);
  EXPECT_TRUE(node->exit->leftovers_terminated);
  ASSERT_EQ(node->Pids("pid").size(), 1u);
  EXPECT_FALSE(IsAlive(node->Pids("pid")[0]));
}

TEST_P(ProcessRunnerTest, ManyTreesTerminateInParallelUnderOneGrace) {
  std::vector<std::shared_ptr<Observed>> nodes;
  for (int i = 0; i < 10; ++i) nodes.push_back(Launch({"@helper", "ignore", "1"}));
  for (auto& node : nodes) WaitForPids(*node, "pid", 2);
  int reports = 0;
  auto start = std::chrono::steady_clock::now();
  for (auto& node : nodes)
    node->tree->Terminate(300ms, [&](const TerminationReport&) { ++reports; });
  ASSERT_TRUE(RunUntil([&] { return reports == 10; }));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms) << "not one after another";
}

TEST_P(ProcessRunnerTest, TerminatingAFinishedTreeReportsItGraceful) {
  auto node = Launch({"@helper", "exit", "0"});
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  TerminationReport report = TerminateAndWait(*node, 100ms);
  EXPECT_TRUE(report.graceful);
  EXPECT_FALSE(report.sigterm_sent_ms.has_value());
}

TEST_P(ProcessRunnerTest, ExecFailureSeenOnlyByTheChildEndsTheNodeWith126) {
  // Executable by its mode bits, so the pre-check passes; the kernel refuses the format.
  std::filesystem::path bogus = TempPath("not-a-program");
  { std::ofstream(bogus) << "this is not an executable format\n"; }
  std::filesystem::permissions(bogus, std::filesystem::perms::owner_all);
  auto node = Launch({bogus.string()});
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  EXPECT_EQ(node->exit->exit_code, 126);
  EXPECT_NE(node->exit->launch_error.find("exec"), std::string::npos) << node->exit->launch_error;
  std::filesystem::remove(bogus);
}

TEST_P(ProcessRunnerTest, ChildStartsWithDefaultSignalsAndNoNewPrivs) {
  // The daemon blocks and ignores signals of its own; none of that reaches a node.
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &block, &old_mask);
  struct sigaction ignore {
  }, old_action{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGUSR2, &ignore, &old_action);
  LaunchSpec spec;
  spec.output.stdout_path = TempPath("status");
  auto node = Launch({"grep", "-E", "^(SigBlk|SigIgn|NoNewPrivs)", "/proc/self/status"}, spec);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGUSR2, &old_action, nullptr);
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  std::string status = ReadFile(spec.output.stdout_path);
  EXPECT_NE(status.find("SigBlk:\t0000000000000000"), std::string::npos) << status;
  EXPECT_NE(status.find("SigIgn:\t0000000000000000"), std::string::npos) << status;
  EXPECT_NE(status.find("NoNewPrivs:\t1"), std::string::npos) << status;
  std::filesystem::remove(spec.output.stdout_path);
}

TEST_P(ProcessRunnerTest, NodeRunsAsTheNamedUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "only root may switch users";
  LaunchSpec spec;
  spec.user = "nobody";
  spec.output.stdout_path = TempPath("id");
  auto node = Launch({"id", "-u"}, spec);
  ASSERT_TRUE(RunUntil([&] { return node->exit.has_value(); }));
  EXPECT_EQ(node->exit->exit_code, 0);
  EXPECT_EQ(ReadFile(spec.output.stdout_path), "65534\n");
  std::filesystem::remove(spec.output.stdout_path);
}

TEST_P(ProcessRunnerTest, UnknownUserIsRefused) {
  LaunchSpec spec;
  spec.argv = {"/bin/true"};
  spec.user = "warden-no-such-user";
  spec.cookie = {"e", "n", 1};
  EXPECT_EQ(runner_->Launch(spec, {}).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(ProcessRunnerTest, SecondTerminateJoinsTheFirstAndAnEarlierDeadlineWins) {
  auto node = Launch({"@helper", "ignore", "0"});
  WaitForPids(*node, "pid", 1);
  std::optional<TerminationReport> first, second;
  node->tree->Terminate(10000ms, [&](const TerminationReport& r) { first = r; });
  node->tree->Terminate(200ms, [&](const TerminationReport& r) { second = r; });
  std::optional<Status> paused;
  node->tree->Pause([&](Status s) { paused = s; });
  ASSERT_TRUE(RunUntil([&] { return first && second && paused; }, 5s));
  EXPECT_EQ(paused->code(), StatusCode::kConflict) << "no pause while terminating";
  EXPECT_EQ(first->sigterm_sent_ms, second->sigterm_sent_ms);
  EXPECT_EQ(first->sigkill_sent_ms, second->sigkill_sent_ms);
  ASSERT_TRUE(first->sigkill_sent_ms && first->sigterm_sent_ms);
  EXPECT_LT(*first->sigkill_sent_ms - *first->sigterm_sent_ms, 1000) << "the 200 ms grace won";
}

INSTANTIATE_TEST_SUITE_P(BothModes, ProcessRunnerTest,
                         ::testing::Values(ContainmentMode::kCgroup,
                                           ContainmentMode::kProcessGroup),
                         ModeName);

}  // namespace
}  // namespace warden::process

#include "runner_fixture.h"

#include <dirent.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace warden::process {

std::vector<pid_t> Observed::Pids(std::string_view key) const {
  std::vector<pid_t> pids;
  for (const auto& [k, v] : notes) {
    if (k == key) pids.push_back(std::stoi(v));
  }
  return pids;
}

bool IsAlive(pid_t pid) {
  Result<ProcStat> stat = ReadProcStat(pid);
  return stat.ok() && !stat->exited();
}

std::vector<pid_t> ChildrenOfThisProcess() {
  std::vector<pid_t> children;
  DIR* dir = ::opendir("/proc");
  while (dirent* entry = ::readdir(dir)) {
    pid_t pid = 0;
    auto [ptr, ec] =
        std::from_chars(entry->d_name, entry->d_name + std::strlen(entry->d_name), pid);
    if (ec != std::errc() || *ptr != '\0') continue;
    Result<ProcStat> stat = ReadProcStat(pid);
    if (stat.ok() && stat->ppid == ::getpid()) children.push_back(pid);
  }
  ::closedir(dir);
  return children;
}

std::string ModeName(const ::testing::TestParamInfo<ContainmentMode>& info) {
  return std::string(ContainmentModeName(info.param));
}

void RunnerFixture::SetUp() {
  RunnerOptions options;
  options.kill_timeout = 2s;
  options.leftover_grace = 300ms;
  if (GetParam() == ContainmentMode::kCgroup) {
    Result<std::filesystem::path> mount = FindCgroup2Mount();
    if (!mount.ok()) GTEST_SKIP() << "no cgroup2 on this host";
    cgroup_root_ = *mount / ("warden-test-" + std::to_string(::getpid()));
    options.containment.request = ContainmentOptions::Request::kCgroup;
    options.containment.cgroup_root = cgroup_root_;
  } else {
    options.containment.request = ContainmentOptions::Request::kProcessGroup;
  }
  Result<std::unique_ptr<LocalProcessRunner>> runner = LocalProcessRunner::Create(io_, options);
  if (!runner.ok() && GetParam() == ContainmentMode::kCgroup &&
      runner.status().code() == StatusCode::kUnavailable) {
    cgroup_root_.clear();
    GTEST_SKIP() << runner.status().ToString();
  }
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  runner_ = std::move(runner).value();
  ASSERT_EQ(runner_->containment(), GetParam());
}

void RunnerFixture::TearDown() {
  if (runner_ != nullptr) {
    for (auto& observed : launched_) {
      if (!observed->tree->finished()) {
        bool done = false;
        observed->tree->Terminate(0ms, [&](const TerminationReport&) { done = true; });
        RunUntil([&] { return done; }, 5s);
      }
    }
    EXPECT_TRUE(RunUntil([&] { return runner_->live_trees() == 0; }, 5s));
    // Adopted orphans die with their tree but are reaped on the SIGCHLD that follows.
    RunUntil([&] { return ChildrenOfThisProcess().empty(); }, 2s);
    launched_.clear();
    runner_.reset();
  }
  io_.poll();
  if (!cgroup_root_.empty()) ::rmdir(cgroup_root_.c_str());
  EXPECT_TRUE(ChildrenOfThisProcess().empty()) << "a test left a child process behind";
}

std::shared_ptr<Observed> RunnerFixture::Launch(std::vector<std::string> argv, LaunchSpec spec) {
  for (std::string& arg : argv) {
    if (arg == "@helper") arg = WARDEN_TEST_HELPER;
  }
  spec.argv = std::move(argv);
  if (spec.cookie.execution_id.empty()) {
    spec.cookie = {"exec-" + std::to_string(::getpid()), "node", next_attempt_++};
  }
  auto observed = std::make_shared<Observed>();
  LaunchCallbacks callbacks;
  std::weak_ptr<Observed> weak = observed;
  callbacks.on_notify = [weak](std::string_view key, std::string_view value) {
    if (auto o = weak.lock()) o->notes.emplace_back(key, value);
  };
  callbacks.on_exit = [weak](const ExitInfo& exit) {
    if (auto o = weak.lock()) o->exit = exit;
  };
  Result<std::shared_ptr<ProcessTree>> tree = runner_->Launch(spec, std::move(callbacks));
  EXPECT_TRUE(tree.ok()) << tree.status().ToString();
  if (!tree.ok()) return nullptr;
  observed->tree = *tree;
  launched_.push_back(observed);
  return observed;
}

bool RunnerFixture::RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io_.stopped()) io_.restart();
    // Wakes at least every 10 ms: `done` may watch something no handler runs for (a
    // process's exit, a file).
    io_.run_one_until(std::min(deadline, std::chrono::steady_clock::now() + 10ms));
  }
  return true;
}

void RunnerFixture::RunFor(std::chrono::milliseconds duration) {
  auto deadline = std::chrono::steady_clock::now() + duration;
  RunUntil([&] { return std::chrono::steady_clock::now() >= deadline; }, duration + 1s);
}

TerminationReport RunnerFixture::TerminateAndWait(Observed& observed,
                                                  std::chrono::milliseconds grace) {
  std::optional<TerminationReport> report;
  observed.tree->Terminate(grace, [&](const TerminationReport& r) { report = r; });
  EXPECT_TRUE(RunUntil([&] { return report.has_value(); }, grace + 5s));
  return report.value_or(TerminationReport{});
}

void RunnerFixture::WaitForPids(Observed& observed, std::string_view key, size_t count) {
  EXPECT_TRUE(RunUntil([&] { return observed.Pids(key).size() >= count; }))
      << "only " << observed.Pids(key).size() << " of " << count << " '" << key << "' lines";
}

}  // namespace warden::process

// RunnerFixture: a LocalProcessRunner on a private io_context, in the containment mode given
// as the test parameter, plus helpers to launch trees and wait for them with bounded time.
// TearDown terminates whatever a test left running and checks that no child is left behind.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "process/local_process_runner.h"
#include "process/proc_stat.h"

namespace warden::process {

using namespace std::chrono_literals;

// What a test sees of one launched tree.
struct Observed {
  std::shared_ptr<ProcessTree> tree;
  std::vector<std::pair<std::string, std::string>> notes;  // notify lines, in order
  std::optional<ExitInfo> exit;
  std::vector<pid_t> Pids(std::string_view key) const;  // values of `key` lines
};

class RunnerFixture : public ::testing::TestWithParam<ContainmentMode> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Launches argv (helper path substituted for "@helper"); fails the test on error.
  std::shared_ptr<Observed> Launch(std::vector<std::string> argv, LaunchSpec spec = {});
  // Runs the io_context until `done()` or `timeout`; returns done().
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s);
  // Runs the io_context for `duration`.
  void RunFor(std::chrono::milliseconds duration);
  // Terminates and waits for the report.
  TerminationReport TerminateAndWait(Observed& observed, std::chrono::milliseconds grace);
  // Waits until `key=` lines name `count` pids.
  void WaitForPids(Observed& observed, std::string_view key, size_t count);

  boost::asio::io_context io_;
  std::unique_ptr<LocalProcessRunner> runner_;
  std::filesystem::path cgroup_root_;
  std::vector<std::shared_ptr<Observed>> launched_;
  int next_attempt_ = 1;
};

// True while `pid` names a live (not zombie) process.
bool IsAlive(pid_t pid);
// Pids (live or zombie) whose parent is this test process.
std::vector<pid_t> ChildrenOfThisProcess();
// Human-readable name of a containment mode for parameterized test names.
std::string ModeName(const ::testing::TestParamInfo<ContainmentMode>& info);

}  // namespace warden::process

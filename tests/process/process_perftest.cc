// process_perftest: what process control costs beside the floor measured in the same run.
//
//   Launch/*   one Launch() of `/bin/sleep 1000` (a child that stays put, so its exit does
//              not overlap the timing) beside a bare posix_spawn() of the same program.
//   Ready/*    launch until the program runs (end to end), beside posix_spawn with
//              POSIX_SPAWN_SETSID; Launch() returns before exec, so this is the fair pair
//              for what a node waits, while Launch/* is what the event loop pays.
//   Stop/*     stopping 100 cooperative trees (leader + one child, both exiting on SIGTERM)
//              with Terminate() on all of them at once, until every report has arrived,
//              beside a plain loop of kill(-pgid, SIGTERM) then waitpid() of every leader.
//
// Repetitions are interleaved at random so a busy neighbour hurts every variant alike; the
// ratios printed at the end compare medians. Run: process_perftest (no arguments needed).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "process/local_process_runner.h"

extern char** environ;

namespace warden::process {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kLaunchBatch = 20;
constexpr int kStopTrees = 100;

}  // namespace

std::filesystem::path CgroupRootForBench() {
  Result<std::filesystem::path> mount = FindCgroup2Mount();
  if (!mount.ok()) return {};
  return *mount / ("warden-perftest-" + std::to_string(::getpid()));
}

namespace {

// One runner per mode for the whole run, like a daemon.
struct Bench {
  boost::asio::io_context io;
  std::unique_ptr<LocalProcessRunner> runner;

  explicit Bench(ContainmentMode mode) {
    RunnerOptions options;
    options.cgroup_pool_size = 32;
    if (mode == ContainmentMode::kCgroup) {
      options.containment.request = ContainmentOptions::Request::kCgroup;
      options.containment.cgroup_root = CgroupRootForBench();
    } else {
      options.containment.request = ContainmentOptions::Request::kProcessGroup;
    }
    auto made = LocalProcessRunner::Create(io, options);
    if (made.ok()) runner = std::move(made).value();
  }
  void RunUntil(const std::function<bool()>& done) {
    auto deadline = Clock::now() + 30s;
    while (!done() && Clock::now() < deadline) io.run_one_until(deadline);
  }
  void TerminateAll(std::vector<std::shared_ptr<ProcessTree>>& trees,
                    std::chrono::milliseconds grace) {
    int left = static_cast<int>(trees.size());
    for (auto& tree : trees) tree->Terminate(grace, [&](const TerminationReport&) { --left; });
    RunUntil([&] { return left == 0 && runner->live_trees() == 0; });
    trees.clear();
  }
};

}  // namespace

Bench& BenchFor(ContainmentMode mode) {
  static Bench pgroup(ContainmentMode::kProcessGroup);
  static Bench cgroup(ContainmentMode::kCgroup);
  return mode == ContainmentMode::kCgroup ? cgroup : pgroup;
}

void LaunchBaseline(benchmark::State& state) {
  char* argv[] = {const_cast<char*>("/bin/sleep"), const_cast<char*>("1000"), nullptr};
  for (auto _ : state) {
    std::vector<pid_t> pids(kLaunchBatch);
    auto start = Clock::now();
    for (pid_t& pid : pids) posix_spawn(&pid, argv[0], nullptr, nullptr, argv, environ);
    auto elapsed = Clock::now() - start;
    state.SetIterationTime(std::chrono::duration<double>(elapsed).count() / kLaunchBatch);
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    for (pid_t pid : pids) ::waitpid(pid, nullptr, 0);
  }
}

void LaunchWithRunner(benchmark::State& state, ContainmentMode mode) {
  Bench& bench = BenchFor(mode);
  if (!bench.runner) {
    state.SkipWithError("runner unavailable in this mode");
    return;
  }
  LaunchSpec spec;
  spec.argv = {"/bin/sleep", "1000"};
  int attempt = 0;
  for (auto _ : state) {
    std::vector<std::shared_ptr<ProcessTree>> trees;
    auto start = Clock::now();
    for (int i = 0; i < kLaunchBatch; ++i) {
      spec.cookie = {"bench", "launch", ++attempt};
      auto tree = bench.runner->Launch(spec, {});
      if (tree.ok()) trees.push_back(*tree);
    }
    auto elapsed = Clock::now() - start;
    state.SetIterationTime(std::chrono::duration<double>(elapsed).count() / kLaunchBatch);
    bench.TerminateAll(trees, 0ms);
  }
}

// Launch until running: from the first launch until every one of kLaunchBatch helpers has
// written its first notify line (so it has exec'd and run), beside posix_spawn with
// POSIX_SPAWN_SETSID (a node needs its own session) and the same pipe. Launch() returns
// before the child's exec, so this is the end-to-end view of the same work.
void ReadyBaseline(benchmark::State& state) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.emplace_back("WARDEN_NOTIFY_FD=3");
  std::vector<char*> env;
  for (auto& s : env_strings) env.push_back(s.data());
  env.push_back(nullptr);
  char* argv[] = {const_cast<char*>(WARDEN_TEST_HELPER), const_cast<char*>("coop"),
                  const_cast<char*>("0"), nullptr};
  for (auto _ : state) {
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, ready[1], 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
    std::vector<pid_t> pids(kLaunchBatch);
    auto start = Clock::now();
    for (pid_t& pid : pids) posix_spawn(&pid, argv[0], &actions, &attr, argv, env.data());
    int lines = 0;
    char buffer[4096];
    while (lines < kLaunchBatch) {
      ssize_t n = ::read(ready[0], buffer, sizeof buffer);
      if (n <= 0) break;
      lines += static_cast<int>(std::count(buffer, buffer + n, '\n'));
    }
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - start).count() /
                           kLaunchBatch);
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    for (pid_t pid : pids) ::waitpid(pid, nullptr, 0);
    ::close(ready[0]);
    ::close(ready[1]);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
}

void ReadyWithRunner(benchmark::State& state, ContainmentMode mode) {
  Bench& bench = BenchFor(mode);
  if (!bench.runner) {
    state.SkipWithError("runner unavailable in this mode");
    return;
  }
  LaunchSpec spec;
  spec.argv = {WARDEN_TEST_HELPER, "coop", "0"};
  int attempt = 0;
  for (auto _ : state) {
    std::vector<std::shared_ptr<ProcessTree>> trees;
    int announced = 0;
    auto start = Clock::now();
    for (int i = 0; i < kLaunchBatch; ++i) {
      spec.cookie = {"bench", "ready", ++attempt};
      LaunchCallbacks callbacks;
      callbacks.on_notify = [&announced](std::string_view, std::string_view) { ++announced; };
      auto tree = bench.runner->Launch(spec, std::move(callbacks));
      if (tree.ok()) trees.push_back(*tree);
    }
    bench.RunUntil([&] { return announced >= kLaunchBatch; });
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - start).count() /
                           kLaunchBatch);
    bench.TerminateAll(trees, 0ms);
  }
}

// Both variants start the same cooperative trees and wait until every process has announced
// itself (so its TERM handler is installed) before the clock starts.
void StopFloor(benchmark::State& state) {
  for (auto _ : state) {
    int ready[2];
    if (::pipe(ready) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, ready[1], 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
    env_strings.emplace_back("WARDEN_NOTIFY_FD=3");
    std::vector<char*> env;
    for (auto& s : env_strings) env.push_back(s.data());
    env.push_back(nullptr);
    char* argv[] = {const_cast<char*>(WARDEN_TEST_HELPER), const_cast<char*>("coop"),
                    const_cast<char*>("1"), nullptr};
    std::vector<pid_t> pids(kStopTrees);
    for (pid_t& pid : pids) posix_spawn(&pid, argv[0], &actions, &attr, argv, env.data());
    ::close(ready[1]);
    int lines = 0;
    char buffer[4096];
    while (lines < 2 * kStopTrees) {
      ssize_t n = ::read(ready[0], buffer, sizeof buffer);
      if (n <= 0) break;
      lines += static_cast<int>(std::count(buffer, buffer + n, '\n'));
    }
    auto start = Clock::now();
    for (pid_t pid : pids) ::kill(-pid, SIGTERM);
    for (pid_t pid : pids) ::waitpid(pid, nullptr, 0);
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - start).count());
    ::close(ready[0]);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
}

void StopWithRunner(benchmark::State& state, ContainmentMode mode) {
  Bench& bench = BenchFor(mode);
  if (!bench.runner) {
    state.SkipWithError("runner unavailable in this mode");
    return;
  }
  LaunchSpec spec;
  spec.argv = {WARDEN_TEST_HELPER, "coop", "1"};
  int attempt = 0;
  for (auto _ : state) {
    std::vector<std::shared_ptr<ProcessTree>> trees;
    int announced = 0;
    for (int i = 0; i < kStopTrees; ++i) {
      spec.cookie = {"bench", "stop", ++attempt};
      LaunchCallbacks callbacks;
      callbacks.on_notify = [&announced](std::string_view, std::string_view) { ++announced; };
      auto tree = bench.runner->Launch(spec, std::move(callbacks));
      if (tree.ok()) trees.push_back(*tree);
    }
    bench.RunUntil([&] { return announced >= 2 * kStopTrees; });
    int left = static_cast<int>(trees.size());
    auto start = Clock::now();
    for (auto& tree : trees) tree->Terminate(10s, [&](const TerminationReport&) { --left; });
    bench.RunUntil([&] { return left == 0; });
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - start).count());
    bench.RunUntil([&] { return bench.runner->live_trees() == 0; });
  }
}

namespace {

// Median seconds per iteration of every run, by benchmark name.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Iteration && run.iterations > 0 && !run.error_occurred) {
        samples_[run.run_name.function_name].push_back(run.GetAdjustedRealTime());
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  double Median(const std::string& name) {
    auto& v = samples_[name];
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }
  void PrintRatio(const char* what, const std::string& ours, const std::string& floor,
                  double limit) {
    double a = Median(ours), b = Median(floor);
    if (a == 0 || b == 0) {
      std::printf("%-34s n/a (a variant did not run)\n", what);
      return;
    }
    double ratio = a / b;
    std::printf("%-34s %.3f  (%s %.1f us / %s %.1f us; limit %.2f: %s)\n", what, ratio,
                ours.c_str(), a / 1e3, floor.c_str(), b / 1e3, limit,
                ratio <= limit ? "ok" : "OVER");
  }

 private:
  std::map<std::string, std::vector<double>> samples_;
};

}  // namespace
}  // namespace warden::process

int main(int argc, char** argv) {
  using namespace warden::process;
  benchmark::RegisterBenchmark("Launch/posix_spawn", LaunchBaseline)
      ->UseManualTime()
      ->Iterations(10);
  benchmark::RegisterBenchmark("Launch/pgroup", LaunchWithRunner, ContainmentMode::kProcessGroup)
      ->UseManualTime()
      ->Iterations(10);
  benchmark::RegisterBenchmark("Launch/cgroup", LaunchWithRunner, ContainmentMode::kCgroup)
      ->UseManualTime()
      ->Iterations(10);
  benchmark::RegisterBenchmark("Ready/posix_spawn_setsid", ReadyBaseline)
      ->UseManualTime()
      ->Iterations(5);
  benchmark::RegisterBenchmark("Ready/pgroup", ReadyWithRunner, ContainmentMode::kProcessGroup)
      ->UseManualTime()
      ->Iterations(5);
  benchmark::RegisterBenchmark("Ready/cgroup", ReadyWithRunner, ContainmentMode::kCgroup)
      ->UseManualTime()
      ->Iterations(5);
  benchmark::RegisterBenchmark("Stop/kill_waitpid_floor", StopFloor)
      ->UseManualTime()
      ->Iterations(2);
  benchmark::RegisterBenchmark("Stop/pgroup", StopWithRunner, ContainmentMode::kProcessGroup)
      ->UseManualTime()
      ->Iterations(2);
  benchmark::RegisterBenchmark("Stop/cgroup", StopWithRunner, ContainmentMode::kCgroup)
      ->UseManualTime()
      ->Iterations(2);

  // Defaults that make the ratios meaningful on a shared machine; flags still override.
  std::vector<char*> args(argv, argv + argc);
  std::string repetitions = "--benchmark_repetitions=15";
  std::string interleave = "--benchmark_enable_random_interleaving=true";
  std::string no_aggregates = "--benchmark_report_aggregates_only=false";
  args.insert(args.begin() + 1, {repetitions.data(), interleave.data(), no_aggregates.data()});
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());

  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\nRatios (median of repetitions, same run):\n");
  reporter.PrintRatio("launch overhead, pgroup:", "Launch/pgroup", "Launch/posix_spawn", 1.15);
  reporter.PrintRatio("launch overhead, cgroup:", "Launch/cgroup", "Launch/posix_spawn", 1.25);
  reporter.PrintRatio("launch until running, pgroup:", "Ready/pgroup", "Ready/posix_spawn_setsid",
                      1.15);
  reporter.PrintRatio("launch until running, cgroup:", "Ready/cgroup", "Ready/posix_spawn_setsid",
                      1.25);
  reporter.PrintRatio("stop latency, pgroup:", "Stop/pgroup", "Stop/kill_waitpid_floor", 2.0);
  reporter.PrintRatio("stop latency, cgroup:", "Stop/cgroup", "Stop/kill_waitpid_floor", 2.0);
  benchmark::Shutdown();
  BenchFor(ContainmentMode::kCgroup).runner.reset();
  BenchFor(ContainmentMode::kProcessGroup).runner.reset();
  std::filesystem::path root = CgroupRootForBench();
  if (!root.empty()) ::rmdir(root.c_str());
  return 0;
}

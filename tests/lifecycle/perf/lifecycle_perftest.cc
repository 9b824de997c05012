// lifecycle_perftest: Warden against references measured in the same run.
//
//   1. 1000-node DAGs of /bin/true in three shapes (independent, chain, 10 layers of 100
//      each needing all of the previous layer) run end to end through the library with the
//      durable journal, in cgroup and pgroup containment, beside ninja running the same
//      graphs with -j equal to maxParallel.
//   2. Stopping an execution of 100 running cooperative nodes (sleep), beside a plain
//      kill(SIGTERM) + waitpid of 100 such processes.
//
// Each figure is the median of --runs runs (default 5). Run:
//   build/tests/lifecycle/perf/lifecycle_perftest [--runs N] [--max-parallel N]
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lifecycle/execution_manager.h"
#include "process/local_process_runner.h"

extern char** environ;

namespace {

using namespace warden;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

struct Shape {
  const char* name;
  // needs[i]: the nodes node i needs.
  std::vector<std::vector<int>> needs;
};

std::vector<Shape> Shapes() {
  Shape independent{"independent", std::vector<std::vector<int>>(1000)};
  Shape chain{"chain", std::vector<std::vector<int>>(1000)};
  for (int i = 1; i < 1000; ++i) chain.needs[i] = {i - 1};
  Shape layered{"layered 10x100", std::vector<std::vector<int>>(1000)};
  for (int i = 100; i < 1000; ++i) {
    int layer = i / 100;
    for (int j = (layer - 1) * 100; j < layer * 100; ++j) layered.needs[i].push_back(j);
  }
  return {independent, chain, layered};
}

std::string SpecJson(const Shape& shape, int max_parallel, const std::string& argv0,
                     int extra_arg = -1) {
  boost::json::array nodes;
  for (size_t i = 0; i < shape.needs.size(); ++i) {
    boost::json::object n;
    n["id"] = "n" + std::to_string(i);
    boost::json::array argv{argv0};
    if (extra_arg >= 0) argv.push_back(boost::json::value(std::to_string(extra_arg)));
    n["argv"] = argv;
    if (!shape.needs[i].empty()) {
      boost::json::array needs;
      for (int d : shape.needs[i]) needs.push_back(boost::json::value("n" + std::to_string(d)));
      n["needs"] = needs;
    }
    nodes.push_back(n);
  }
  boost::json::object spec{{"name", shape.name}, {"maxParallel", max_parallel}, {"nodes", nodes}};
  return boost::json::serialize(spec);
}

std::string TempDir(const char* what) {
  std::string tmpl = (fs::temp_directory_path() / (std::string(what) + "-XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) std::abort();
  return tmpl;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ninja on the same graph: one build statement per node, ordered by order-only inputs.
double NinjaMs(const Shape& shape, int jobs) {
  std::string dir = TempDir("warden-ninja");
  {
    std::ofstream f(dir + "/build.ninja");
    f << "rule t\n  command = /bin/true\n";
    for (size_t i = 0; i < shape.needs.size(); ++i) {
      f << "build n" << i << ": t";
      if (!shape.needs[i].empty()) {
        f << " ||";
        for (int d : shape.needs[i]) f << " n" << d;
      }
      f << "\n";
    }
  }
  std::string cmd = "ninja -C " + dir + " -j " + std::to_string(jobs) + " >/dev/null";
  auto t0 = Clock::now();
  int rc = std::system(cmd.c_str());
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  fs::remove_all(dir);
  if (rc != 0) {
    std::fprintf(stderr, "ninja failed (%d): is ninja-build installed?\n", rc);
    std::exit(1);
  }
  return ms;
}

struct Harness {
  explicit Harness(process::ContainmentOptions::Request mode) : dir(TempDir("warden-perf")) {
    auto j = journal::Journal::Open(dir + "/warden.db");
    if (!j.ok()) std::abort();
    journal = std::move(*j);
    process::RunnerOptions ro;
    ro.containment.request = mode;
    auto r = process::LocalProcessRunner::Create(io, ro);
    if (!r.ok()) {
      std::fprintf(stderr, "runner: %s\n", r.status().ToString().c_str());
      std::exit(1);
    }
    runner = std::move(*r);
    manager = std::make_unique<lifecycle::ExecutionManager>(io, *journal, *runner);
  }
  ~Harness() {
    manager.reset();
    runner.reset();
    journal.reset();
    fs::remove_all(dir);
  }
  // Runs the io_context until execution `id` has ended (told by its terminal event).
  void RunUntilEnded(const std::string& id) {
    bool ended = !lifecycle::IsActive(manager->Get(id)->status);
    auto sub = manager->Subscribe(id, [&](const journal::Event& e) {
      ended = ended || e.kind == "execution.completed" || e.kind == "execution.failed" ||
              e.kind == "execution.stopped";
    });
    while (!ended && io.run_one()) {
    }
  }
  std::string dir;
  boost::asio::io_context io;
  std::unique_ptr<journal::Journal> journal;
  std::unique_ptr<process::LocalProcessRunner> runner;
  std::unique_ptr<lifecycle::ExecutionManager> manager;
};

double WardenMs(Harness& h, const std::string& spec) {
  auto t0 = Clock::now();
  auto created = h.manager->Create(spec, {}, true);
  if (!created.ok()) {
    std::fprintf(stderr, "create: %s\n", created.status().ToString().c_str());
    std::exit(1);
  }
  h.RunUntilEnded(created->execution.id);
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (h.manager->Get(created->execution.id)->status != lifecycle::ExecutionState::kCompleted) {
    std::fprintf(stderr, "execution did not complete\n");
    std::exit(1);
  }
  return ms;
}

// 100 `sleep 60` started with posix_spawn, then SIGTERM to each and waitpid for each.
double KillFloorMs() {
  std::vector<pid_t> pids;
  for (int i = 0; i < 100; ++i) {
    pid_t pid;
    char* argv[] = {const_cast<char*>("sleep"), const_cast<char*>("60"), nullptr};
    if (posix_spawnp(&pid, "sleep", nullptr, nullptr, argv, environ) != 0) std::abort();
    pids.push_back(pid);
  }
  usleep(200'000);  // let every sleep reach its exec, as the Warden side waits for running
  auto t0 = Clock::now();
  for (pid_t pid : pids) kill(pid, SIGTERM);
  for (pid_t pid : pids) waitpid(pid, nullptr, 0);
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double WardenStopMs(Harness& h) {
  Shape wide{"stop-100", std::vector<std::vector<int>>(100)};
  auto created = h.manager->Create(SpecJson(wide, 100, "sleep", 60), {}, true);
  if (!created.ok()) std::abort();
  std::string id = created->execution.id;
  auto all_running = [&] {
    auto view = h.manager->Get(id);
    for (const auto& n : view->nodes) {
      if (n.status != lifecycle::NodeStatus::kRunning) return false;
    }
    return true;
  };
  while (!all_running()) h.io.run_one();
  auto settle = Clock::now() + std::chrono::milliseconds(200);
  while (Clock::now() < settle) h.io.run_for(std::chrono::milliseconds(10));
  bool done = false;
  auto t0 = Clock::now();
  h.manager->Stop(id, {}, nullptr, [&](Result<lifecycle::StopResult> r) {
    if (!r.ok() || r->nodes_killed != 0) std::abort();
    done = true;
  });
  while (!done) h.io.run_one();
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  int max_parallel = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--max-parallel")) max_parallel = std::atoi(argv[i + 1]);
  }
  std::printf("median of %d runs; maxParallel = ninja -j = %d\n\n", runs, max_parallel);

  // The floors first: the runner reaps every child of this process once it exists.
  std::vector<double> floor;
  for (int r = 0; r < runs; ++r) floor.push_back(KillFloorMs());
  std::vector<std::vector<double>> ninja(3);
  auto shapes = Shapes();
  for (int r = 0; r < runs; ++r) {
    for (size_t s = 0; s < shapes.size(); ++s) ninja[s].push_back(NinjaMs(shapes[s], max_parallel));
  }

  std::printf("%-16s %-8s %12s %12s %8s\n", "shape", "mode", "warden ms", "ninja ms", "ratio");
  for (auto mode : {process::ContainmentOptions::Request::kProcessGroup,
                    process::ContainmentOptions::Request::kCgroup}) {
    const char* mode_name =
        mode == process::ContainmentOptions::Request::kCgroup ? "cgroup" : "pgroup";
    Harness h(mode);
    for (size_t s = 0; s < shapes.size(); ++s) {
      std::string spec = SpecJson(shapes[s], max_parallel, "/bin/true");
      std::vector<double> warden;
      for (int r = 0; r < runs; ++r) warden.push_back(WardenMs(h, spec));
      double w = Median(warden), n = Median(ninja[s]);
      std::printf("%-16s %-8s %12.1f %12.1f %8.2f\n", shapes[s].name, mode_name, w, n, w / n);
    }
    std::vector<double> stop;
    for (int r = 0; r < runs; ++r) stop.push_back(WardenStopMs(h));
    double w = Median(stop), f = Median(floor);
    std::printf("%-16s %-8s %12.1f %12.1f %8.2f   (floor: kill + waitpid)\n", "stop 100 nodes",
                mode_name, w, f, w / f);
  }
  return 0;
}

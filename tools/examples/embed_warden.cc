// embed_warden: Warden as a library inside another program. It owns the io_context, opens a
// journal in a scratch directory, runs a small DAG to completion, then starts a slow one and
// stops it, printing what a user would see. Exits 0 when both behave as expected.
//
//   build/tools/examples/embed_warden [DATA_DIR]
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <filesystem>
#include <string>

#include "lifecycle/execution_manager.h"
#include "process/local_process_runner.h"

using namespace warden;

namespace {

// Runs `io` until execution `id` has a terminal journal event.
void RunUntilEnded(boost::asio::io_context& io, lifecycle::ExecutionManager& manager,
                   const std::string& id) {
  bool ended = false;
  auto sub = manager.Subscribe(id, [&](const journal::Event& e) {
    std::printf("  event %-26s %s\n", e.kind.c_str(), e.node_id.c_str());
    if (e.kind == "execution.completed" || e.kind == "execution.failed" ||
        e.kind == "execution.stopped") {
      ended = true;
    }
  });
  while (!ended && io.run_one()) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "";
  if (dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "embed-warden-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) return 1;
    dir = tmpl;
  }
  boost::asio::io_context io;
  auto journal = journal::Journal::Open(dir + "/warden.db");
  if (!journal.ok()) {
    std::fprintf(stderr, "%s\n", journal.status().ToString().c_str());
    return 1;
  }
  auto runner = process::LocalProcessRunner::Create(io, {});
  if (!runner.ok()) {
    std::fprintf(stderr, "%s\n", runner.status().ToString().c_str());
    return 1;
  }
  lifecycle::ManagerOptions options;
  options.log_dir = dir + "/logs";
  lifecycle::ExecutionManager manager(io, **journal, **runner, options);
  std::printf("containment: %s\n",
              std::string(process::ContainmentModeName(manager.containment())).c_str());

  // 1. A diamond that completes.
  auto created = manager.Create(R"({
    "name": "diamond",
    "nodes": [
      {"id": "fetch", "argv": ["/bin/sh", "-c", "echo fetched"]},
      {"id": "left",  "argv": ["/bin/true"], "needs": ["fetch"]},
      {"id": "right", "argv": ["/bin/sh", "-c", "echo cost_usd=0.25 >&$WARDEN_NOTIFY_FD"],
       "needs": ["fetch"]},
      {"id": "join",  "argv": ["/bin/true"], "needs": ["left", "right"]}
    ]})",
                                lifecycle::Requester{}, /*start=*/true);
  if (!created.ok()) {
    std::fprintf(stderr, "create: %s\n", created.status().ToString().c_str());
    return 1;
  }
  std::string id = created->execution.id;
  std::printf("execution %s (diamond) started\n", id.c_str());
  RunUntilEnded(io, manager, id);
  auto done = manager.Get(id);
  std::printf("diamond: %s, cost %.4f USD\n",
              std::string(lifecycle::ExecutionStateName(done->status)).c_str(), done->cost_usd);
  if (done->status != lifecycle::ExecutionState::kCompleted || done->cost_usd < 0.25) return 2;

  // 2. A slow execution, stopped while it runs.
  auto slow =
      manager.Create(R"({"name": "slow", "nodes": [{"id": "sleeper", "argv": ["sleep", "30"]}]})",
                     lifecycle::Requester{}, true);
  if (!slow.ok()) return 1;
  std::string slow_id = slow->execution.id;
  // Let the node start, then stop.
  while (manager.Get(slow_id)->nodes[0].status != lifecycle::NodeStatus::kRunning) io.run_one();
  std::optional<lifecycle::StopResult> result;
  lifecycle::StopRequest request;
  request.note = "embedding example";
  manager.Stop(slow_id, request, nullptr,
               [&](Result<lifecycle::StopResult> r) { result = r.ok() ? *r : result; });
  while (!result && io.run_one()) {
  }
  if (!result) return 3;
  std::printf("slow: %s after %lld ms (reason %s, %d killed)\n",
              std::string(lifecycle::ExecutionStateName(result->status)).c_str(),
              static_cast<long long>(result->summary.duration_ms),
              std::string(lifecycle::StopReasonName(result->reason)).c_str(), result->nodes_killed);
  if (result->status != lifecycle::ExecutionState::kStopped || result->nodes_killed != 0) return 4;
  if (argc <= 1) std::filesystem::remove_all(dir);
  return 0;
}

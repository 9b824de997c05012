// End to end with the real LocalProcessRunner: /bin/sh nodes run in dependency order, a stop
// of cooperative sleeps ends gracefully and leaves no process behind, and a node that ignores
// SIGTERM is killed and counted. Containment is whatever the host gives (auto).
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "lifecycle_test_util.h"
#include "process/local_process_runner.h"

namespace warden::lifecycle_test {
namespace {

using V = std::vector<std::string>;

// A node running `script` with /bin/sh -c.
std::string ShNode(const std::string& id, const std::string& script,
                   const std::vector<std::string>& needs = {}, const std::string& extra = "") {
  std::string escaped;
  for (char c : script) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  std::string json = R"({"id": ")" + id + R"(", "argv": ["/bin/sh", "-c", ")" + escaped + R"("])";
  if (!needs.empty()) {
    json += R"(, "needs": [)";
    for (size_t i = 0; i < needs.size(); ++i) json += (i ? ", \"" : "\"") + needs[i] + "\"";
    json += "]";
  }
  if (!extra.empty()) json += ", " + extra;
  return json + "}";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Pids of live processes whose environment carries WARDEN_EXECUTION_ID=`id`.
std::vector<pid_t> ProcessesWithCookie(const std::string& id) {
  std::vector<pid_t> found;
  std::string needle = "WARDEN_EXECUTION_ID=" + id;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename();
    if (name.empty() || !isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::string environ = ReadFile(entry.path() / "environ");
    std::string stat = ReadFile(entry.path() / "stat");
    if (stat.find(") Z ") != std::string::npos) continue;  // a zombie holds nothing
    size_t at = environ.find(needle);
    if (at != std::string::npos &&
        (at + needle.size() == environ.size() || environ[at + needle.size()] == '\0')) {
      found.push_back(std::stoi(name));
    }
  }
  return found;
}

// Runs every scenario in both containment modes (cgroup is skipped where the host has none).
class RealProcessTest : public ::testing::TestWithParam<process::ContainmentMode> {
 protected:
  void SetUp() override {
    process::RunnerOptions runner_options;
    runner_options.kill_timeout = 2000ms;
    runner_options.containment.request = GetParam() == process::ContainmentMode::kCgroup
                                             ? process::ContainmentOptions::Request::kCgroup
                                             : process::ContainmentOptions::Request::kProcessGroup;
    auto runner = process::LocalProcessRunner::Create(io_, runner_options);
    if (!runner.ok() && GetParam() == process::ContainmentMode::kCgroup &&
        runner.status().code() == StatusCode::kUnavailable) {
      GTEST_SKIP() << "no cgroup v2 containment here: " << runner.status().ToString();
    }
    ASSERT_TRUE(runner.ok()) << runner.status().ToString();
    runner_ = std::move(*runner);
    ASSERT_EQ(runner_->containment(), GetParam());
    RecordProperty("containment",
                   std::string(process::ContainmentModeName(runner_->containment())));
    auto journal = journal::Journal::Open(dir_.File("warden.db"));
    ASSERT_TRUE(journal.ok()) << journal.status().ToString();
    journal_ = std::move(*journal);
    ManagerOptions options;
    options.log_dir = dir_.File("logs");
    manager_ = std::make_unique<ExecutionManager>(io_, *journal_, *runner_, options);
  }

  void TearDown() override {
    if (!manager_) return;
    bool done = false;
    manager_->StopAll(/*kill_now=*/true, [&] { done = true; });
    EXPECT_TRUE(RunUntil([&] { return done; }, 10s));
    EXPECT_EQ(runner_->live_trees(), 0u) << "a tree outlived its execution";
    manager_.reset();
  }

  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      if (io_.stopped()) io_.restart();
      if (io_.run_one_for(10ms) == 0) std::this_thread::sleep_for(1ms);
    }
    return true;
  }

  std::string Create(const std::string& spec) {
    auto created = manager_->Create(spec, lifecycle::Requester{}, /*start=*/true);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? created->execution.id : "";
  }

  ExecutionView View(const std::string& id) {
    auto view = manager_->Get(id);
    EXPECT_TRUE(view.ok()) << view.status().ToString();
    return view.ok() ? *view : ExecutionView{};
  }

  // Every node runs and shows its pid (which it does once its identity is journaled).
  bool AllRunning(const std::string& id) {
    for (const auto& node : View(id).nodes) {
      if (node.status != NodeStatus::kRunning || !node.pid) return false;
    }
    return true;
  }

  bool RunUntilEnded(const std::string& id, std::chrono::milliseconds limit = 10s) {
    return RunUntil([&] { return lifecycle::IsTerminal(View(id).status); }, limit);
  }

  Result<StopResult> StopAndWait(const std::string& id, std::optional<int64_t> grace_ms) {
    std::optional<Result<StopResult>> result;
    StopRequest request;
    request.grace_ms = grace_ms;
    manager_->Stop(id, request, nullptr, [&](Result<StopResult> r) { result = std::move(r); });
    if (!RunUntil([&] { return result.has_value(); }, 15s)) {
      return Status::Internal("the stop never completed");
    }
    return *result;
  }

  ScratchDir dir_;
  boost::asio::io_context io_;
  std::unique_ptr<process::LocalProcessRunner> runner_;
  std::unique_ptr<journal::Journal> journal_;
  std::unique_ptr<ExecutionManager> manager_;
};

TEST_P(RealProcessTest, SmallDagOfShellCommandsCompletesInOrder) {
  std::string out = dir_.File("order.txt");
  std::string env = R"("env": {"OUT": ")" + out + R"("})";
  std::string line = R"(echo "$WARDEN_NODE_ID $WARDEN_ATTEMPT" >> "$OUT")";
  std::string id = Create(
      Dag({ShNode("fetch", line, {}, env), ShNode("left", "sleep 0.05; " + line, {"fetch"}, env),
           ShNode("right", line, {"fetch"}, env), ShNode("join", line, {"left", "right"}, env)},
          R"("maxParallel": 4)"));
  ASSERT_TRUE(RunUntilEnded(id));
  ExecutionView view = View(id);
  EXPECT_EQ(view.status, ExecutionState::kCompleted) << ReadFile(out);
  for (const auto& node : view.nodes) {
    EXPECT_EQ(node.status, NodeStatus::kSucceeded) << node.id;
    EXPECT_EQ(node.exit_code, 0) << node.id;
    EXPECT_GT(node.pid.value_or(0), 0) << node.id;
  }
  // right does not wait for left's sleep: no waves.
  EXPECT_EQ(ReadFile(out), "fetch 1\nright 1\nleft 1\njoin 1\n");
  EXPECT_TRUE(ProcessesWithCookie(id).empty());
}

TEST_P(RealProcessTest, APidIsShownOnlyOnceItsIdentityIsOnDisk) {
  std::string id = Create(Dag(
      {ShNode("a", "exec sleep 30"), ShNode("b", "exec sleep 30"), ShNode("c", "exec sleep 30")},
      R"("maxParallel": 3)"));
  // Read the journal the moment each pid shows: a crash right then must find it recorded.
  std::map<std::string, int> seen;
  ASSERT_TRUE(RunUntil(
      [&] {
        for (const auto& node : View(id).nodes) {
          if (!node.pid || seen.count(node.id)) continue;
          seen[node.id] = *node.pid;
          auto events = journal_->ReadExecution(id);
          EXPECT_TRUE(events.ok());
          bool recorded = false;
          for (const auto& e : events.ok() ? *events : std::vector<journal::Event>{}) {
            recorded |=
                e.kind == "node.started" && e.node_id == node.id &&
                e.payload.find("\"pid\":" + std::to_string(*node.pid) + ",") != std::string::npos;
          }
          EXPECT_TRUE(recorded) << node.id << " showed pid " << *node.pid
                                << " before it was journaled";
        }
        return seen.size() == 3;
      },
      5s));
}

TEST_P(RealProcessTest, StopOfCooperativeSleepsEndsGracefullyWithNoProcessLeft) {
  std::string id = Create(Dag(
      {ShNode("s1", "exec sleep 30"), ShNode("s2", "sleep 30"), ShNode("s3", "sleep 30 & wait")},
      R"("maxParallel": 3)"));
  ASSERT_TRUE(RunUntil([&] { return AllRunning(id); }, 5s));
  std::vector<int> pids;
  for (const auto& node : View(id).nodes) pids.push_back(node.pid.value_or(0));
  // Let the shells start their sleeps, so that the stop meets whole trees.
  RunUntil([] { return false; }, 200ms);
  ASSERT_GE(ProcessesWithCookie(id).size(), 3u);

  auto started = std::chrono::steady_clock::now();
  auto result = StopAndWait(id, /*grace_ms=*/5000);
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->status, ExecutionState::kStopped);
  EXPECT_EQ(result->nodes_killed, 0) << "sleep and sh end on SIGTERM";
  EXPECT_EQ(result->nodes_unkillable, 0);
  EXPECT_EQ(result->summary.nodes_total, 3);
  EXPECT_LT(took, 3000ms) << "a graceful stop does not wait out the grace";
  EXPECT_TRUE(ProcessesWithCookie(id).empty()) << "a process of the execution survived";
  for (int pid : pids) {
    EXPECT_NE(kill(pid, 0), 0) << "pid " << pid << " still exists (zombie or alive)";
  }
  for (const auto& node : View(id).nodes) {
    EXPECT_EQ(node.status, NodeStatus::kStopped) << node.id;
  }
}

TEST_P(RealProcessTest, TermIgnoringNodeIsKilledAndCountedInNodesKilled) {
  std::string ready = dir_.File("ready");
  std::string id = Create(
      Dag({ShNode("stubborn", "trap '' TERM; touch '" + ready + "'; while :; do sleep 1; done"),
           ShNode("polite", "sleep 30")},
          R"("maxParallel": 2)"));
  ASSERT_TRUE(RunUntil([&] { return std::filesystem::exists(ready) && AllRunning(id); }, 5s));
  auto result = StopAndWait(id, /*grace_ms=*/200);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->status, ExecutionState::kStopped);
  EXPECT_EQ(result->nodes_killed, 1);
  EXPECT_EQ(result->nodes_unkillable, 0);
  ExecutionView view = View(id);
  EXPECT_EQ(view.nodes[0].signal, "SIGKILL");
  EXPECT_EQ(view.nodes[1].signal, "SIGTERM");
  EXPECT_TRUE(ProcessesWithCookie(id).empty());

  SQLite::Database db(journal_->path(), SQLite::OPEN_READONLY);
  SQLite::Statement row(db,
                        "SELECT nodes_killed, nodes_unkillable, status FROM stops "
                        "WHERE execution_id = ?");
  row.bind(1, id);
  ASSERT_TRUE(row.executeStep());
  EXPECT_EQ(row.getColumn(0).getInt(), 1);
  EXPECT_EQ(row.getColumn(1).getInt(), 0);
  EXPECT_EQ(row.getColumn(2).getString(), "stopped");
}

TEST_P(RealProcessTest, OutputAndReportedCostReachTheirPlaces) {
  std::string id = Create(Dag({ShNode("talker",
                                      "echo hello; echo oops >&2; "
                                      "echo cost_usd=0.42 >&$WARDEN_NOTIFY_FD",
                                      {}, R"("costPerSecondUsd": 0)")}));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(View(id).status, ExecutionState::kCompleted);
  EXPECT_NEAR(View(id).cost_usd, 0.42, 1e-9);
  auto out = manager_->OutputPath(id, "talker", /*stderr_stream=*/false);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(ReadFile(*out), "hello\n");
  auto err = manager_->OutputPath(id, "talker", /*stderr_stream=*/true);
  ASSERT_TRUE(err.ok()) << err.status().ToString();
  EXPECT_EQ(ReadFile(*err), "oops\n");
}

TEST_P(RealProcessTest, PausedTreeDoesNotRunAndResumesToCompletion) {
  std::string marker = dir_.File("marker");
  std::string id = Create(Dag({ShNode("ticker", "sleep 0.2; touch '" + marker + "'")}));
  ASSERT_TRUE(RunUntil([&] { return AllRunning(id); }, 5s));
  std::optional<Result<ExecutionView>> paused;
  manager_->Pause(id, lifecycle::Requester{}, [&](Result<ExecutionView> r) { paused = r; });
  ASSERT_TRUE(RunUntil([&] { return paused.has_value(); }, 5s));
  ASSERT_TRUE(paused->ok()) << paused->status().ToString();
  RunUntil([] { return false; }, 500ms);
  EXPECT_FALSE(std::filesystem::exists(marker)) << "a frozen tree made progress";
  EXPECT_EQ(View(id).status, ExecutionState::kPaused);
  std::optional<Result<ExecutionView>> resumed;
  manager_->Resume(id, lifecycle::Requester{}, [&](Result<ExecutionView> r) { resumed = r; });
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(View(id).status, ExecutionState::kCompleted);
  EXPECT_TRUE(std::filesystem::exists(marker));
}

TEST_P(RealProcessTest, StopOfAPausedExecutionThawsAndEndsGracefully) {
  std::string id = Create(
      Dag({ShNode("s1", "sleep 30"), ShNode("s2", "sleep 30 & wait")}, R"("maxParallel": 2)"));
  ASSERT_TRUE(RunUntil([&] { return AllRunning(id); }, 5s));
  RunUntil([] { return false; }, 100ms);
  std::optional<Result<ExecutionView>> paused;
  manager_->Pause(id, lifecycle::Requester{}, [&](Result<ExecutionView> r) { paused = r; });
  ASSERT_TRUE(RunUntil([&] { return paused.has_value(); }, 5s));
  ASSERT_TRUE(paused->ok()) << paused->status().ToString();
  auto started = std::chrono::steady_clock::now();
  auto result = StopAndWait(id, /*grace_ms=*/5000);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->status, ExecutionState::kStopped);
  EXPECT_EQ(result->nodes_killed, 0) << "a thawed tree handles SIGTERM by itself";
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3000ms);
  EXPECT_TRUE(ProcessesWithCookie(id).empty());
}

INSTANTIATE_TEST_SUITE_P(BothContainments, RealProcessTest,
                         ::testing::Values(process::ContainmentMode::kCgroup,
                                           process::ContainmentMode::kProcessGroup),
                         [](const ::testing::TestParamInfo<process::ContainmentMode>& info) {
                           return std::string(process::ContainmentModeName(info.param));
                         });

}  // namespace
}  // namespace warden::lifecycle_test

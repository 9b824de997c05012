// The fixture shared by the lifecycle tests: an ExecutionManager over a FakeProcessRunner and a
// real Journal in a scratch directory, plus helpers to drive the io_context, build specs, and
// read the journal and its audit views the way an operator would (SQLite, read-only).
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fake_process_runner.h"
#include "journal/journal.h"
#include "lifecycle/execution_manager.h"
#include "manual_clock.h"

namespace warden::lifecycle_test {

using lifecycle::ExecutionManager;
using lifecycle::ExecutionState;
using lifecycle::ExecutionView;
using lifecycle::ManagerOptions;
using lifecycle::NodeStatus;
using lifecycle::NodeView;
using lifecycle::StopReason;
using lifecycle::StopRequest;
using lifecycle::StopResult;
using namespace std::chrono_literals;

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "warden-lifecycle-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// --- Spec text. Node(...) is one node object, Dag(...) a whole spec.
// `extra` is inserted verbatim as more fields, e.g. R"("retries": 2)".
inline std::string Node(const std::string& id, const std::vector<std::string>& needs = {},
                        const std::string& extra = "") {
  std::string json = R"({"id": ")" + id + R"(", "argv": ["/bin/true", ")" + id + R"("])";
  if (!needs.empty()) {
    json += R"(, "needs": [)";
    for (size_t i = 0; i < needs.size(); ++i) {
      json += (i ? ", \"" : "\"") + needs[i] + "\"";
    }
    json += "]";
  }
  if (!extra.empty()) json += ", " + extra;
  return json + "}";
}
inline std::string Dag(const std::vector<std::string>& nodes, const std::string& extra = "") {
  std::string json = "{";
  if (extra.find("\"name\"") == std::string::npos) json += R"("name": "test", )";
  if (!extra.empty()) json += extra + ", ";
  json += R"("nodes": [)";
  for (size_t i = 0; i < nodes.size(); ++i) json += (i ? ", " : "") + nodes[i];
  return json + "]}";
}

// --- JSON fields of a payload, read by SQLite's own json functions.
// The value at `path` as text (numbers as SQLite prints them), or nullopt for JSON null or
// a missing field.
std::optional<std::string> JsonText(const std::string& json, const std::string& path);
std::optional<double> JsonNumber(const std::string& json, const std::string& path);
// "null", "integer", "real", "text", "true", "false", "object", "array", or nullopt when
// the field is missing.
std::optional<std::string> JsonType(const std::string& json, const std::string& path);

// One row of the `stops` view.
struct StopRow {
  std::string execution_id;
  int64_t stop_seq = 0;
  int64_t requested_at = 0;
  std::optional<std::string> requested_by, reason, note, status;
  std::optional<int64_t> grace_ms, completed_at, nodes_completed, nodes_failed, nodes_total,
      duration_ms, nodes_killed, nodes_unkillable, journaled;
  std::optional<double> final_cost_usd;
  int64_t joined = 0;  // 1: the request joined a stop already in progress
};
// One row of the `executions` view.
struct ExecutionRow {
  std::string id;
  std::optional<std::string> name, status;
  int64_t created_at = 0;
  std::optional<int64_t> started_at, ended_at;
  std::optional<double> cost_usd;
};

// What one Stop call produced.
struct StopOutcome {
  int accepted_calls = 0;
  std::optional<Result<ExecutionView>> accepted;
  std::optional<Result<StopResult>> done;
};

class LifecycleTest : public ::testing::Test {
 protected:
  // `manual_clock`: the manager, runner and journal run on clock_ (cost and duration
  // arithmetic); otherwise on the system clock (timeouts, which Asio times in real time).
  explicit LifecycleTest(bool manual_clock = true);
  ~LifecycleTest() override;

  void TearDown() override;

  // (Re)makes the manager with `options`; its clock is replaced by the fixture's clock.
  void MakeManager(ManagerOptions options = {});
  // Reopens the journal with `options` (and a new manager), e.g. a tiny max_page_count.
  void ReopenJournal(journal::JournalOptions options);

  // --- Driving the io_context (the test thread is its thread).
  // Runs every handler that is ready, repeatedly, without waiting for timers.
  void Drain();
  // Runs the io_context until `done` holds or `limit` (real time) passes; false on timeout.
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 3s);
  // Runs the io_context for `duration` of real time.
  void RunFor(std::chrono::milliseconds duration);
  // Lets the manager react to what the test just did: ready handlers and short timers
  // (a few ms of real time), so that "nothing happened" is a meaningful observation.
  void Settle() { RunFor(5ms); }

  // --- Requests.
  std::string Create(const std::string& spec, bool start = true);
  Result<ExecutionView> PauseAndWait(const std::string& id);
  Result<ExecutionView> ResumeAndWait(const std::string& id);
  // Calls Stop and returns at once (with what already arrived).
  std::shared_ptr<StopOutcome> StopAsync(const std::string& id, StopRequest request = {});
  // Calls Stop and runs until `done` arrives.
  StopOutcome StopAndWait(const std::string& id, StopRequest request = {});
  // Runs until the execution has reached a terminal state.
  bool RunUntilEnded(const std::string& id, std::chrono::milliseconds limit = 3s);

  // --- Views.
  ExecutionView View(const std::string& id);
  ExecutionState StateOf(const std::string& id);
  NodeView NodeOf(const std::string& id, const std::string& node);
  NodeStatus NodeStatusOf(const std::string& id, const std::string& node);

  // --- The journal, as an operator reads it.
  std::vector<journal::Event> Events(const std::string& id);
  std::vector<std::string> Kinds(const std::string& id);
  // Events of `id` of `kind` (and of `node`, if given), oldest first.
  std::vector<journal::Event> EventsOf(const std::string& id, std::string_view kind,
                                       const std::string& node = "");
  // The index of the first event of `kind` (and `node`) in Events(id), or -1.
  int IndexOf(const std::vector<journal::Event>& events, std::string_view kind,
              const std::string& node = "");
  std::vector<StopRow> StopRows(const std::string& id);
  std::optional<ExecutionRow> ExecutionRowOf(const std::string& id);

  // Expects `id`'s node statuses, in spec order, to be `expected` (names as api.md spells
  // them), e.g. {"a=succeeded", "b=running"}.
  std::vector<std::string> NodeStatuses(const std::string& id);

  ScratchDir dir_;
  boost::asio::io_context io_;
  ManualClock manual_clock_;
  const Clock* clock_;
  std::unique_ptr<journal::Journal> journal_;
  std::unique_ptr<FakeProcessRunner> runner_;
  std::unique_ptr<ExecutionManager> manager_;
  lifecycle::Requester lib_;
};

// The same fixture on the system clock, for timeout tests (tens of ms of real time).
class RealTimeLifecycleTest : public LifecycleTest {
 protected:
  RealTimeLifecycleTest() : LifecycleTest(/*manual_clock=*/false) {}
};

// "pending", "running", ... through the header's own names.
std::string Name(NodeStatus status);
std::string Name(ExecutionState state);

}  // namespace warden::lifecycle_test

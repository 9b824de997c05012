// Power loss: an append the journal acknowledged as durable survives a power cut at any
// point. The journal runs over PowerLossVfs, which loses what was not synced; the workload is
// the daemon's (creates, starts, node rows, stops, ends) and the cut falls on a random VFS
// operation. After each cut the journal must open, pass integrity_check, hold every
// acknowledged append, and hold a prefix of what was appended (crash-safe rows after the last
// sync may be lost, but only from the end).
//
// WARDEN_POWER_CUTS sets the number of cuts (default 200); WARDEN_POWER_SEED repeats a run.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "journal/journal.h"
#include "journal/records.h"
#include "journal_test_util.h"
#include "power_loss_vfs.h"

namespace warden::journal {
namespace {

constexpr int64_t kBaseMs = 1'700'000'000'000;

// One Append, as the daemon makes it.
struct Commit {
  std::vector<Event> events;
  Durability durability = Durability::kCrashSafe;
  bool restart_first = false;  // the daemon stops cleanly and starts again before it
};

Event Make(const std::string& execution, const std::string& node, const Record& record) {
  Event e;
  e.execution_id = execution;
  e.node_id = node;
  e.attempt = node.empty() ? 0 : 1;
  EncodeTo(record, e);
  return e;
}

// The commits of one execution, in the order and with the durability the daemon uses
// (lifecycle/execution.cc): creation and start durable (the client's answer waits for
// them), a node's rows crash-safe, a stop request durable before anything is signalled,
// and the end durable. `stop_at` < 3: a client stops it while that node runs.
std::vector<Commit> ExecutionCommits(int n, int stop_at) {
  const std::string id = "01HXEXEC" + std::to_string(1000 + n);
  const std::string nodes[] = {"fetch", "build", "test"};
  const std::string spec = R"({"name":"ci-)" + std::to_string(n) +
                           R"(","nodes":[{"id":"fetch","argv":["git","fetch"]},)"
                           R"({"id":"build","argv":["make","-j8"],"dependsOn":["fetch"]},)"
                           R"({"id":"test","argv":["make","check"],"dependsOn":["build"]}]})";
  std::vector<Commit> commits;
  auto add = [&](Durability durability, std::vector<Event> events) {
    commits.push_back({std::move(events), durability});
  };
  add(Durability::kDurable, {Make(id, "",
                                  ExecutionCreated{.name = "ci-" + std::to_string(n),
                                                   .request_id = "req-" + std::to_string(n),
                                                   .requested_by = "alice",
                                                   .spec_json = spec})});
  add(Durability::kDurable, {Make(id, "", ExecutionStarted{.requested_by = "alice"})});
  double cost = 0;
  for (int i = 0; i < 3; ++i) {
    const std::string& node = nodes[i];
    const std::string cgroup = "/sys/fs/cgroup/warden/" + id + "/" + node;
    const int64_t pid = 4000 + 10 * n + i;
    add(Durability::kCrashSafe, {Make(id, node,
                                      NodeIntent{.argv = {"make", node},
                                                 .cwd = "/srv/ci",
                                                 .cookie_execution_id = id,
                                                 .cookie_node_id = node,
                                                 .cookie_attempt = 1,
                                                 .cgroup = cgroup,
                                                 .containment = "cgroup"})});
    add(Durability::kCrashSafe,
        {Make(id, node,
              NodeStarted{.pid = pid,
                          .start_time = 90'000u + static_cast<uint64_t>(pid),
                          .boot_id = "3f1c2a9e-boot",
                          .pgid = pid,
                          .sid = pid,
                          .cgroup = cgroup,
                          .containment = "cgroup"})});
    if (i == stop_at) {
      add(Durability::kDurable, {Make(id, "",
                                      ExecutionStopRequested{.requested_by = "bob",
                                                             .requested_by_comm = "curl",
                                                             .reason = "user_abort",
                                                             .note = "",
                                                             .grace_ms = 5000,
                                                             .joined = false})});
      add(Durability::kCrashSafe,
          {Make(id, node, NodeSignalled{.signal = "SIGTERM", .why = "stop", .grace_ms = 5000})});
      std::vector<Event> ended = {Make(id, node,
                                       NodeExited{.exit_code = std::nullopt,
                                                  .signal = "SIGTERM",
                                                  .graceful = true,
                                                  .killed = false,
                                                  .cost_usd = cost,
                                                  .duration_ms = 800,
                                                  .paused_ms = 0,
                                                  .outcome = "stopped"})};
      for (int j = i + 1; j < 3; ++j) {
        ended.push_back(Make(id, nodes[j], NodeStopped{.reason = "user_abort"}));
      }
      add(Durability::kCrashSafe, std::move(ended));
      add(Durability::kDurable, {Make(id, "",
                                      ExecutionStopCompleted{.status = "stopped",
                                                             .reason = "user_abort",
                                                             .final_cost_usd = cost,
                                                             .nodes_completed = i,
                                                             .nodes_total = 3,
                                                             .duration_ms = 2400,
                                                             .stopped_at = kBaseMs}),
                                 Make(id, "", ExecutionStopped{.cost_usd = cost})});
      return commits;
    }
    cost += 0.01;
    add(Durability::kCrashSafe, {Make(id, node, CostReported{.cost_usd = cost})});
    add(Durability::kCrashSafe, {Make(id, node,
                                      NodeExited{.exit_code = 0,
                                                 .signal = std::nullopt,
                                                 .graceful = true,
                                                 .killed = false,
                                                 .cost_usd = cost,
                                                 .duration_ms = 1000,
                                                 .paused_ms = 0,
                                                 .outcome = "succeeded"})});
  }
  add(Durability::kDurable, {Make(id, "", ExecutionCompleted{.cost_usd = cost})});
  return commits;
}

Commit DaemonCommit(const Record& record) { return {{Make("", "", record)}, Durability::kDurable}; }

// The daemon's journal traffic: 96 executions, up to 4 at a time, interleaved at random; a
// third of them stopped by a client; a clean restart of the daemon a third of the way in.
// Long enough that the WAL is checkpointed and then reused from its start (after 1000
// pages), besides being checkpointed and deleted when the journal closes.
std::vector<Commit> MakeWorkload(std::mt19937_64& random) {
  constexpr int kExecutions = 96;
  constexpr size_t kConcurrent = 4;
  const DaemonStarted started{.pid = 812,
                              .version = "0.1.0",
                              .boot_id = "3f1c2a9e-boot",
                              .containment = "cgroup",
                              .cgroup_root = "/sys/fs/cgroup/warden",
                              .scan_from = 0};
  std::vector<Commit> workload = {DaemonCommit(started)};
  std::vector<std::deque<Commit>> running;
  int created = 0;
  while (created < kExecutions || !running.empty()) {
    const bool can_create = created < kExecutions && running.size() < kConcurrent;
    if (can_create && (running.empty() || std::bernoulli_distribution(0.3)(random))) {
      if (created == kExecutions / 3) {
        workload.push_back(DaemonCommit(DaemonStopped{.pid = 812, .version = "0.1.0"}));
        workload.push_back(DaemonCommit(started));
        workload.back().restart_first = true;
      }
      std::vector<Commit> commits =
          ExecutionCommits(created++, std::uniform_int_distribution<int>(0, 5)(random));
      running.emplace_back(commits.begin(), commits.end());
      continue;
    }
    const size_t k = std::uniform_int_distribution<size_t>(0, running.size() - 1)(random);
    workload.push_back(std::move(running[k].front()));
    running[k].pop_front();
    if (running[k].empty()) running.erase(running.begin() + static_cast<std::ptrdiff_t>(k));
  }
  workload.push_back(DaemonCommit(DaemonStopped{.pid = 812, .version = "0.1.0"}));
  int64_t at = kBaseMs;
  for (Commit& c : workload) {
    for (Event& e : c.events) e.at_ms = ++at;
  }
  return workload;
}

JournalOptions ThroughTheVfs() {
  JournalOptions options;
  options.vfs = PowerLossVfs::kName;
  return options;
}

// What a run told its clients.
struct Outcome {
  std::vector<Event> appended;       // every event handed to Append, with the seq it gets
  std::vector<size_t> acknowledged;  // per durable Append that returned ok: rows through it
};

// Runs `workload` on a new journal at `path` until it ends or the power fails, then closes
// the journal (cleanly, if the power is still on).
Outcome RunWorkload(const PowerLossVfs& vfs, const std::vector<Commit>& workload,
                    const std::string& path) {
  Outcome out;
  auto opened = Journal::Open(path, ThroughTheVfs());
  if (!opened.ok()) {
    if (!vfs.powered_off())
      ADD_FAILURE() << "open with the power on: " << opened.status().ToString();
    return out;
  }
  std::unique_ptr<Journal> journal = std::move(*opened);
  for (const Commit& commit : workload) {
    if (commit.restart_first) {
      journal.reset();
      auto reopened = Journal::Open(path, ThroughTheVfs());
      if (!reopened.ok()) {
        if (!vfs.powered_off())
          ADD_FAILURE() << "reopen with the power on: " << reopened.status().ToString();
        return out;
      }
      journal = std::move(*reopened);
    }
    std::vector<Event> batch = commit.events;
    auto appended = journal->Append(batch, commit.durability);
    // Rows of a failed append may still be on disk: the cut may fall after its commit.
    for (Event& e : batch) {
      e.seq = static_cast<int64_t>(out.appended.size()) + 1;
      out.appended.push_back(std::move(e));
    }
    if (!appended.ok()) {
      if (!vfs.powered_off())
        ADD_FAILURE() << "append with the power on: " << appended.status().ToString();
      return out;
    }
    EXPECT_EQ(*appended, static_cast<int64_t>(out.appended.size()));
    if (commit.durability == Durability::kDurable) out.acknowledged.push_back(out.appended.size());
  }
  return out;
}

// What a restart after the cut finds.
struct Verdict {
  int64_t acknowledgements_lost = 0;
  int64_t rows_lost = 0;  // appended, acknowledged or not, and gone
  std::string problem;    // empty: opens, intact, a prefix of what was appended
};

Verdict Check(const Outcome& out, const std::string& path) {
  Verdict v;
  auto opened = Journal::Open(path, ThroughTheVfs());
  if (!opened.ok()) {
    v.problem = "the journal does not open: " + opened.status().ToString();
    v.acknowledgements_lost = static_cast<int64_t>(out.acknowledged.size());
    return v;
  }
  std::unique_ptr<Journal> journal = std::move(*opened);
  try {
    SQLite::Database db(path, SQLite::OPEN_READONLY, 0, PowerLossVfs::kName);
    std::string integrity = db.execAndGet("PRAGMA integrity_check").getString();
    if (integrity != "ok") v.problem = "integrity_check: " + integrity;
  } catch (const SQLite::Exception& e) {
    v.problem = std::string("integrity_check fails: ") + e.what();
  }
  auto rows = journal->ReadAll();
  if (!rows.ok()) {
    v.problem = "reading: " + rows.status().ToString();
    v.acknowledgements_lost = static_cast<int64_t>(out.acknowledged.size());
    return v;
  }
  size_t prefix = 0;
  while (prefix < rows->size() && prefix < out.appended.size() &&
         (*rows)[prefix] == out.appended[prefix]) {
    ++prefix;
  }
  if (prefix < rows->size() && v.problem.empty()) {
    const Event& e = (*rows)[prefix];
    v.problem = "row " + std::to_string(prefix + 1) + " (seq " + std::to_string(e.seq) + " " +
                e.kind + ") is not the row appended there: not a prefix of the appends";
  }
  for (size_t end : out.acknowledged) {
    if (end > prefix) ++v.acknowledgements_lost;
  }
  v.rows_lost = static_cast<int64_t>(out.appended.size() - prefix);
  // Open for business again: the next append works.
  Event next = Make("", "",
                    DaemonStarted{.pid = 813,
                                  .version = "0.1.0",
                                  .boot_id = "3f1c2a9e-boot",
                                  .containment = "cgroup",
                                  .cgroup_root = "/sys/fs/cgroup/warden",
                                  .scan_from = 0});
  if (auto r = journal->Append(next, Durability::kDurable); !r.ok() && v.problem.empty()) {
    v.problem = "append after the restart: " + r.status().ToString();
  }
  return v;
}

int64_t EnvOr(const char* name, int64_t otherwise) {
  const char* value = std::getenv(name);
  return value && *value ? std::strtoll(value, nullptr, 10) : otherwise;
}

TEST(PowerLossTest, AcknowledgedAppendsSurviveACutAtAnyOperation) {
  const int64_t cuts = EnvOr("WARDEN_POWER_CUTS", 200);
  const uint64_t seed = static_cast<uint64_t>(EnvOr("WARDEN_POWER_SEED", std::random_device{}()));
  std::cout << "power loss: seed " << seed << " (WARDEN_POWER_SEED=" << seed << " repeats it), "
            << cuts << " cuts\n";
  PowerLossVfs vfs;
  std::mt19937_64 workload_random(seed);
  const std::vector<Commit> workload = MakeWorkload(workload_random);

  // A run without a cut: how many operations a cut can fall on, and all acknowledged.
  int64_t operations = 0;
  size_t durable_commits = 0;
  for (const Commit& c : workload) durable_commits += c.durability == Durability::kDurable;
  {
    ScratchDir dir;
    const int64_t before = vfs.operations();
    Outcome out = RunWorkload(vfs, workload, dir.File("warden.db"));
    operations = vfs.operations() - before;
    ASSERT_EQ(out.acknowledged.size(), durable_commits);
    vfs.Forget();
  }
  std::cout << "power loss: the workload is " << workload.size() << " appends (" << durable_commits
            << " durable), " << operations << " VFS operations\n";

  int64_t acknowledged = 0, lost = 0, rows_lost = 0, mid_workload = 0;
  for (int64_t cut = 0; cut < cuts; ++cut) {
    // Each cut draws from its own generator, so a failing one is named by seed and number.
    std::mt19937_64 random(seed + 1 + static_cast<uint64_t>(cut));
    const int64_t at = std::uniform_int_distribution<int64_t>(0, operations)(random);
    const auto unsynced =
        cut % 2 == 0 ? PowerLossVfs::Unsynced::kAllLost : PowerLossVfs::Unsynced::kSomeSurvive;
    ScratchDir dir;
    const std::string path = dir.File("warden.db");
    vfs.CutAfter(at);
    Outcome out = RunWorkload(vfs, workload, path);
    mid_workload += vfs.powered_off();
    vfs.Restart(unsynced, random);
    Verdict v = Check(out, path);
    acknowledged += static_cast<int64_t>(out.acknowledged.size());
    lost += v.acknowledgements_lost;
    rows_lost += v.rows_lost;
    EXPECT_TRUE(v.problem.empty() && v.acknowledgements_lost == 0)
        << "seed " << seed << ", cut " << cut << " after operation " << at << " of " << operations
        << ": " << (v.problem.empty() ? "" : v.problem + "; ") << "acknowledgements lost "
        << v.acknowledgements_lost;
    vfs.Forget();
  }
  std::cout << "power loss: cuts simulated " << cuts << " (" << mid_workload
            << " during the workload), acknowledgements lost " << lost << " of " << acknowledged
            << " (unacknowledged rows lost: " << rows_lost << ")\n";
  EXPECT_EQ(lost, 0);
}

// The negative control: the VFS does lose what was not synced, so the test above can fail.
TEST(PowerLossTest, CrashSafeAppendsAfterTheLastSyncAreLostAtACut) {
  PowerLossVfs vfs;
  ScratchDir dir;
  const std::string path = dir.File("warden.db");
  Outcome out;
  {
    auto journal = Journal::Open(path, ThroughTheVfs());
    ASSERT_TRUE(journal.ok()) << journal.status().ToString();
    for (const Commit& c : ExecutionCommits(1, /*stop_at=*/3)) {
      if (out.appended.size() >= 4) break;  // created, started (durable), intent, started
      std::vector<Event> batch = c.events;
      ASSERT_TRUE((*journal)->Append(batch, c.durability).ok());
      out.appended.insert(out.appended.end(), batch.begin(), batch.end());
      out.acknowledged.push_back(out.appended.size());  // as if each had been acknowledged
    }
    vfs.CutNow();
  }
  std::mt19937_64 random(1);
  vfs.Restart(PowerLossVfs::Unsynced::kAllLost, random);

  Verdict v = Check(out, path);
  EXPECT_EQ(v.problem, "");
  EXPECT_EQ(v.rows_lost, 2) << "the two crash-safe node rows were never synced";
  EXPECT_EQ(v.acknowledgements_lost, 2) << "the check counts them when they were acknowledged";
}

TEST(PowerLossTest, DurableAppendMakesEveryEarlierAppendSurviveACut) {
  PowerLossVfs vfs;
  ScratchDir dir;
  const std::string path = dir.File("warden.db");
  Outcome out;
  {
    auto journal = Journal::Open(path, ThroughTheVfs());
    ASSERT_TRUE(journal.ok()) << journal.status().ToString();
    std::vector<Commit> commits = ExecutionCommits(1, /*stop_at=*/0);
    // created, started, intent, started (crash-safe), then the durable stop request
    for (size_t i = 0; i < 5; ++i) {
      std::vector<Event> batch = commits[i].events;
      ASSERT_TRUE((*journal)->Append(batch, commits[i].durability).ok());
      out.appended.insert(out.appended.end(), batch.begin(), batch.end());
    }
    ASSERT_EQ(commits[4].events[0].kind, kind::kExecutionStopRequested);
    out.acknowledged.push_back(out.appended.size());
    vfs.CutNow();
  }
  std::mt19937_64 random(1);
  vfs.Restart(PowerLossVfs::Unsynced::kAllLost, random);

  Verdict v = Check(out, path);
  EXPECT_EQ(v.problem, "");
  EXPECT_EQ(v.rows_lost, 0);
  EXPECT_EQ(v.acknowledgements_lost, 0);
}

}  // namespace
}  // namespace warden::journal

#include "journal/journal.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <filesystem>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "journal/migrations.h"
#include "journal_test_util.h"

extern char** environ;

namespace warden::journal {
namespace {

std::unique_ptr<Journal> OpenOrDie(const std::string& path, JournalOptions options = {}) {
  auto j = Journal::Open(path, options);
  EXPECT_TRUE(j.ok()) << j.status().ToString();
  return j.ok() ? std::move(*j) : nullptr;
}

Event Make(std::string execution, std::string kind, std::string payload = "{}",
           std::string node = "", int64_t attempt = 0) {
  Event e;
  e.execution_id = std::move(execution);
  e.kind = std::move(kind);
  e.payload = std::move(payload);
  e.node_id = std::move(node);
  e.attempt = attempt;
  return e;
}

// Runs the stock sqlite3 shell on `db` and returns its exit status and combined output.
std::pair<int, std::string> Sqlite3Shell(const std::string& db, const std::string& sql) {
  std::string cmd = "sqlite3 '" + db + "' \"" + sql + "\" 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[256];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  int status = p ? pclose(p) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(JournalTest, ReadingBackReturnsExactlyWhatWasAppended) {
  ScratchDir dir;
  auto journal = OpenOrDie(dir.File("warden.db"));
  std::vector<Event> batch = {
      Make("e1", "execution.created", R"({"name":"nightly","n":[1,2,3]})"),
      Make("e1", "node.intent", R"({"argv":["/bin/true"],"quote":"it's \"x\""})", "extract", 1),
      Make("e2", "execution.created", R"({"name":"other"})"),
      Make("", "daemon.started", R"({"pid":1})"),
  };
  batch[1].at_ms = 1234;
  auto last = journal->Append(batch, Durability::kDurable);
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_EQ(*last, batch.back().seq);
  EXPECT_LT(batch[0].seq, batch[1].seq);
  EXPECT_EQ(batch[1].at_ms, 1234) << "an explicit time is kept";
  EXPECT_GT(batch[0].at_ms, 1'700'000'000'000) << "a missing time is stamped with the wall clock";

  auto e1 = journal->ReadExecution("e1");
  ASSERT_TRUE(e1.ok());
  ASSERT_EQ(e1->size(), 2u);
  EXPECT_EQ((*e1)[0], batch[0]);
  EXPECT_EQ((*e1)[1], batch[1]);

  auto all = journal->ReadAll();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[3], batch[3]);
  EXPECT_TRUE((*all)[3].execution_id.empty());
  EXPECT_EQ((*all)[3].attempt, 0);

  auto after = journal->ReadExecution("e1", batch[0].seq);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ(after->front().kind, "node.intent");
}

TEST(JournalTest, EventsSurviveReopening) {
  ScratchDir dir;
  Event e = Make("e1", "execution.created", R"({"name":"kept"})");
  {
    auto journal = OpenOrDie(dir.File("warden.db"));
    ASSERT_TRUE(journal->Append(e, Durability::kDurable).ok());
  }
  auto journal = OpenOrDie(dir.File("warden.db"));
  auto read = journal->ReadExecution("e1");
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(read->front(), e);
}

TEST(JournalTest, BatchWithInvalidPayloadWritesNothingAndJournalStaysHealthy) {
  ScratchDir dir;
  auto journal = OpenOrDie(dir.File("warden.db"));
  std::vector<Event> batch = {Make("e1", "execution.created"),
                              Make("e1", "execution.started", "{not json")};
  auto r = journal->Append(batch, Durability::kCrashSafe);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("execution.started"), std::string::npos);
  EXPECT_TRUE(journal->ReadAll()->empty()) << "the valid first event was rolled back too";
  EXPECT_TRUE(journal->health().ok());
  Event ok = Make("e1", "execution.created");
  EXPECT_TRUE(journal->Append(ok, Durability::kCrashSafe).ok());
}

TEST(JournalTest, CommitObserverSeesEachCommittedTransactionOnly) {
  ScratchDir dir;
  auto journal = OpenOrDie(dir.File("warden.db"));
  std::vector<std::pair<Durability, std::chrono::nanoseconds>> seen;
  journal->SetCommitObserver(
      [&](Durability d, std::chrono::nanoseconds took) { seen.emplace_back(d, took); });
  std::vector<Event> batch = {Make("e1", "execution.created"), Make("e1", "execution.started")};
  ASSERT_TRUE(journal->Append(batch, Durability::kDurable).ok());
  Event one = Make("e1", "node.intent");
  ASSERT_TRUE(journal->Append(one, Durability::kCrashSafe).ok());
  Event bad = Make("e1", "node.started", "{not json");
  EXPECT_FALSE(journal->Append(bad, Durability::kDurable).ok());
  ASSERT_EQ(seen.size(), 2u) << "one per transaction, none for the rolled-back one";
  EXPECT_EQ(seen[0].first, Durability::kDurable);
  EXPECT_EQ(seen[1].first, Durability::kCrashSafe);
  EXPECT_GT(seen[0].second.count(), 0);
  EXPECT_GT(seen[1].second.count(), 0);
  journal->SetCommitObserver(nullptr);
  Event later = Make("e1", "node.exited");
  ASSERT_TRUE(journal->Append(later, Durability::kDurable).ok());
  EXPECT_EQ(seen.size(), 2u);
}

TEST(JournalTest, EventWithoutKindIsRefused) {
  ScratchDir dir;
  auto journal = OpenOrDie(dir.File("warden.db"));
  Event e = Make("e1", "");
  auto r = journal->Append(e, Durability::kCrashSafe);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(JournalTest, UpdateAndDeleteAreRefusedAsAppendOnly) {
  ScratchDir dir;
  std::string path = dir.File("warden.db");
  auto journal = OpenOrDie(path);
  Event e = Make("e1", "execution.created");
  ASSERT_TRUE(journal->Append(e, Durability::kDurable).ok());

  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  try {
    db.exec("UPDATE journal SET kind = 'forged'");
    ADD_FAILURE() << "UPDATE succeeded";
  } catch (const SQLite::Exception& ex) {
    EXPECT_NE(std::string(ex.what()).find("journal is append-only"), std::string::npos);
  }
  try {
    db.exec("DELETE FROM journal");
    ADD_FAILURE() << "DELETE succeeded";
  } catch (const SQLite::Exception& ex) {
    EXPECT_NE(std::string(ex.what()).find("journal is append-only"), std::string::npos);
  }
  EXPECT_EQ(journal->ReadAll()->size(), 1u);
}

TEST(JournalTest, StockSqliteShellCannotRewriteHistoryWhileJournalIsOpen) {
  ScratchDir dir;
  std::string path = dir.File("warden.db");
  auto journal = OpenOrDie(path);
  Event e = Make("e1", "execution.created");
  ASSERT_TRUE(journal->Append(e, Durability::kDurable).ok());
  for (const char* sql :
       {"UPDATE journal SET rowid = rowid", "DELETE FROM journal",
        "INSERT OR REPLACE INTO journal (seq, at_ms, kind) VALUES (1, 0, 'forged')",
        "REPLACE INTO journal (seq, at_ms, kind) VALUES (1, 0, 'forged')",
        "INSERT INTO journal (seq, at_ms, kind) VALUES (1, 0, 'forged') "
        "ON CONFLICT (seq) DO UPDATE SET kind = 'forged'"}) {
    auto [code, out] = Sqlite3Shell(path, sql);
    EXPECT_NE(code, 0) << sql;
    EXPECT_NE(out.find("journal is append-only"), std::string::npos) << out;
  }
  auto [code, out] = Sqlite3Shell(path, "SELECT count(*), min(kind) FROM journal");
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "1|execution.created\n");
}

TEST(JournalTest, OperatorReaderInsideATransactionDoesNotBlockAppends) {
  ScratchDir dir;
  std::string path = dir.File("warden.db");
  auto journal = OpenOrDie(path);
  Event first = Make("e1", "execution.created");
  ASSERT_TRUE(journal->Append(first, Durability::kCrashSafe).ok());

  SQLite::Database reader(path, SQLite::OPEN_READONLY);
  SQLite::Transaction read_tx(reader);  // holds a read snapshot, as a long audit query does
  EXPECT_EQ(reader.execAndGet("SELECT count(*) FROM journal").getInt(), 1);
  Event second = Make("e1", "execution.started");
  auto r = journal->Append(second, Durability::kDurable);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(reader.execAndGet("SELECT count(*) FROM journal").getInt(), 1) << "snapshot kept";
}

TEST(JournalTest, NonTerminalExecutionsAreThoseCreatedButNotEnded) {
  ScratchDir dir;
  auto journal = OpenOrDie(dir.File("warden.db"));
  std::vector<Event> events = {
      Make("done", "execution.created"), Make("run", "execution.created"),
      Make("idle", "execution.created"), Make("done", "execution.started"),
      Make("run", "execution.started"),  Make("done", "execution.completed"),
      Make("stop", "execution.created"), Make("stop", "execution.stopped"),
      Make("fail", "execution.created"), Make("fail", "execution.failed"),
      Make("halt", "execution.created"), Make("halt", "execution.stop_requested"),
  };
  ASSERT_TRUE(journal->Append(events, Durability::kCrashSafe).ok());
  auto ids = journal->NonTerminalExecutionIds();
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<std::string>{"run", "idle", "halt"}));
}

TEST(JournalTest, NonTerminalQueryUsesIndexesNotTheWholeHistory) {
  ScratchDir dir;
  std::string path = dir.File("warden.db");
  OpenOrDie(path);
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement plan(db, std::string("EXPLAIN QUERY PLAN ") + Journal::kNonTerminalQuery);
  std::string details;
  while (plan.executeStep()) details += plan.getColumn(3).getString() + "\n";
  EXPECT_NE(details.find("journal_created_seq"), std::string::npos) << details;
  EXPECT_NE(details.find("journal_terminal"), std::string::npos) << details;
  EXPECT_EQ(details.find("SCAN journal\n"), std::string::npos) << details;
  EXPECT_EQ(details.find("SCAN c\n"), std::string::npos) << details;
}

TEST(JournalTest, StartUpReadsOnlyTheExecutionsSinceTheLastStartsWatermark) {
  ScratchDir dir;
  std::string path = dir.File("warden.db");
  auto journal = OpenOrDie(path);
  auto append = [&](std::string execution, std::string kind, std::string payload = "{}") {
    Event e = Make(std::move(execution), std::move(kind), std::move(payload));
    EXPECT_TRUE(journal->Append(e, Durability::kDurable).ok());
    return e.seq;
  };
  append("ended", "execution.created");
  append("ended", "execution.completed");
  const int64_t open_seq = append("open", "execution.created");
  auto watermark = journal->ScanWatermark();
  ASSERT_TRUE(watermark.ok());
  EXPECT_EQ(*watermark, open_seq) << "the oldest execution not ended";
  append("", "daemon.started", R"({"scanFrom":)" + std::to_string(*watermark) + "}");
  EXPECT_EQ(*journal->NonTerminalExecutionIds(), (std::vector<std::string>{"open"}));

  append("open", "execution.stopped");
  watermark = journal->ScanWatermark();
  ASSERT_TRUE(watermark.ok());
  append("", "daemon.started", R"({"scanFrom":)" + std::to_string(*watermark) + "}");
  const int64_t later_seq = append("later", "execution.created");
  EXPECT_LE(*watermark, later_seq) << "all ended: from the next seq on";
  EXPECT_EQ(*journal->NonTerminalExecutionIds(), (std::vector<std::string>{"later"}));

  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement plan(db, std::string("EXPLAIN QUERY PLAN ") + Journal::kNonTerminalQuery);
  std::string details;
  while (plan.executeStep()) details += plan.getColumn(3).getString() + "\n";
  EXPECT_NE(details.find("journal_created_seq (seq>?)"), std::string::npos)
      << "a range of the index, not all of it:\n"
      << details;
}

TEST(JournalTest, StopsViewDescribesAStopFromItsEvents) {
  ScratchDir dir;
  std::string path = dir.File("warden.db");
  auto journal = OpenOrDie(path);
  std::vector<Event> events = {
      Make("e1", "execution.created", R"({"name":"etl"})"),
      Make("e1", "execution.started"),
      Make("e1", "node.signalled", R"({"signal":"SIGTERM","why":"stop"})", "a", 1),
      Make("e1", "execution.stop_requested",
           R"({"requestedBy":"uid:0 pid:42","reason":"user_abort","note":"deploy","graceMs":500})"),
      Make("e1", "node.signalled", R"({"signal":"SIGTERM","why":"stop"})", "a", 1),
      Make("e1", "node.signalled", R"({"signal":"SIGTERM","why":"stop"})", "b", 1),
      Make("e1", "node.signalled", R"({"signal":"SIGKILL","why":"grace expired"})", "b", 1),
      Make("e1", "node.unkillable", R"({"pids":[77]})", "c", 1),
      Make("e1", "execution.stop_completed",
           R"({"status":"failed","finalCostUsd":0.25,"nodesCompleted":1,"nodesFailed":1,)"
           R"("nodesTotal":4,"durationMs":900})"),
      Make("e1", "execution.failed", R"({"costUsd":0.25})"),
  };
  ASSERT_TRUE(journal->Append(events, Durability::kDurable).ok());
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db,
                      "SELECT execution_id, requested_at, requested_by, reason, note, grace_ms, "
                      "completed_at, final_cost_usd, nodes_completed, nodes_failed, nodes_total, "
                      "duration_ms, nodes_killed, nodes_unkillable, status FROM stops");
  ASSERT_TRUE(q.executeStep());
  EXPECT_EQ(q.getColumn(0).getString(), "e1");
  EXPECT_EQ(q.getColumn(1).getInt64(), events[3].at_ms);
  EXPECT_EQ(q.getColumn(2).getString(), "uid:0 pid:42");
  EXPECT_EQ(q.getColumn(3).getString(), "user_abort");
  EXPECT_EQ(q.getColumn(4).getString(), "deploy");
  EXPECT_EQ(q.getColumn(5).getInt(), 500);
  EXPECT_EQ(q.getColumn(6).getInt64(), events[8].at_ms);
  EXPECT_DOUBLE_EQ(q.getColumn(7).getDouble(), 0.25);
  EXPECT_EQ(q.getColumn(8).getInt(), 1);
  EXPECT_EQ(q.getColumn(9).getInt(), 1);
  EXPECT_EQ(q.getColumn(10).getInt(), 4);
  EXPECT_EQ(q.getColumn(11).getInt(), 900);
  EXPECT_EQ(q.getColumn(12).getInt(), 1) << "only b needed SIGKILL";
  EXPECT_EQ(q.getColumn(13).getInt(), 1) << "c was unkillable";
  EXPECT_EQ(q.getColumn(14).getString(), "failed");
  EXPECT_FALSE(q.executeStep()) << "one row per stop request";

  SQLite::Statement ex(db,
                       "SELECT id, name, status, started_at, ended_at, cost_usd FROM executions");
  ASSERT_TRUE(ex.executeStep());
  EXPECT_EQ(ex.getColumn(0).getString(), "e1");
  EXPECT_EQ(ex.getColumn(1).getString(), "etl");
  EXPECT_EQ(ex.getColumn(2).getString(), "failed");
  EXPECT_EQ(ex.getColumn(3).getInt64(), events[1].at_ms);
  EXPECT_EQ(ex.getColumn(4).getInt64(), events[9].at_ms);
  EXPECT_DOUBLE_EQ(ex.getColumn(5).getDouble(), 0.25);
}

TEST(JournalTest, OrphansViewTakesTheActionFromTheOutcomeOrTheVerdict) {
  ScratchDir dir;
  std::string path = dir.File("warden.db");
  auto journal = OpenOrDie(path);
  std::vector<Event> events = {
      Make("e1", "orphan.found", R"({"pid":100,"verdict":"same"})", "a", 1),
      Make("e1", "orphan.found", R"({"pid":101,"verdict":"pid_reused"})", "b", 2),
      Make("e1", "orphan.found", R"({"pid":102,"verdict":"zombie"})", "c", 1),
      Make("e1", "orphan.found", R"({"pid":103,"verdict":"same"})", "d", 1),
      Make("e1", "orphan.killed", R"({"pid":100})", "a", 1),
  };
  events[4].at_ms = 5000;
  ASSERT_TRUE(journal->Append(events, Durability::kDurable).ok());
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db,
                      "SELECT node_id, attempt, pid, action, finished_at FROM orphans "
                      "ORDER BY node_id");
  std::map<std::string, std::pair<std::string, int64_t>> rows;
  while (q.executeStep()) {
    rows[q.getColumn(0).getString()] = {
        q.getColumn(3).isNull() ? "NULL" : q.getColumn(3).getString(),
        q.getColumn(4).isNull() ? -1 : q.getColumn(4).getInt64()};
  }
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows["a"], std::make_pair(std::string("killed"), int64_t{5000}));
  EXPECT_EQ(rows["b"], std::make_pair(std::string("pid_reused"), events[1].at_ms));
  EXPECT_EQ(rows["c"], std::make_pair(std::string("gone"), events[2].at_ms));
  EXPECT_EQ(rows["d"], std::make_pair(std::string("NULL"), int64_t{-1})) << "still in progress";
}

TEST(JournalTest, OrphansViewGivesAnInterruptedRecoverysRowTheNextOnesOutcome) {
  // A first recovery found a and b alive and was killed before acting; the next one found
  // a gone and b alive again, and killed b. Every row ends with an action.
  ScratchDir dir;
  std::string path = dir.File("warden.db");
  auto journal = OpenOrDie(path);
  std::vector<Event> events = {
      Make("e1", "orphan.found", R"({"pid":100,"verdict":"same"})", "a", 1),
      Make("e1", "orphan.found", R"({"pid":101,"verdict":"same"})", "b", 1),
      Make("e1", "orphan.found", R"({"pid":100,"verdict":"gone"})", "a", 1),
      Make("e1", "orphan.found", R"({"pid":101,"verdict":"same"})", "b", 1),
      Make("e1", "orphan.killed", R"({"pid":101})", "b", 1),
      // Another attempt's outcome is not this one's.
      Make("e1", "orphan.found", R"({"pid":102,"verdict":"same"})", "c", 1),
      Make("e1", "orphan.found", R"({"pid":103,"verdict":"gone"})", "c", 2),
  };
  for (size_t i = 0; i < events.size(); ++i) events[i].at_ms = 1000 * static_cast<int64_t>(i + 1);
  ASSERT_TRUE(journal->Append(events, Durability::kDurable).ok());
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(
      db, "SELECT node_id, attempt, action, finished_at FROM orphans ORDER BY found_at");
  std::vector<std::string> rows;
  while (q.executeStep()) {
    rows.push_back(q.getColumn(0).getString() + "." + q.getColumn(1).getString() + " " +
                   (q.getColumn(2).isNull() ? "NULL" : q.getColumn(2).getString()) + " " +
                   (q.getColumn(3).isNull() ? "NULL" : q.getColumn(3).getString()));
  }
  EXPECT_EQ(rows, (std::vector<std::string>{"a.1 gone 3000", "b.1 killed 5000", "a.1 gone 3000",
                                            "b.1 killed 5000", "c.1 NULL NULL", "c.2 gone 7000"}));
}

TEST(JournalTest, WalTruncatedMidFrameRecoversToTheLastIntactTransaction) {
  ScratchDir dir;
  std::string path = dir.File("warden.db");
  auto journal = OpenOrDie(path);
  for (const char* batch : {"intact", "torn"}) {
    std::vector<Event> events;
    for (int i = 0; i < 50; ++i) events.push_back(Make(batch, "node.started"));
    ASSERT_TRUE(journal->Append(events, Durability::kDurable).ok());
  }
  // A copy of the database as a crash would leave it, with its last WAL frame cut short
  // (the journal stays open, so the WAL is not checkpointed away).
  std::string copy = dir.File("copy.db");
  std::filesystem::copy_file(path, copy);
  std::filesystem::copy_file(path + "-wal", copy + "-wal");
  const auto wal_size = std::filesystem::file_size(copy + "-wal");
  ASSERT_GT(wal_size, 200u);
  std::filesystem::resize_file(copy + "-wal", wal_size - 100);

  auto reopened = OpenOrDie(copy);
  auto intact = reopened->ReadExecution("intact");
  auto torn = reopened->ReadExecution("torn");
  ASSERT_TRUE(intact.ok() && torn.ok());
  EXPECT_EQ(intact->size(), 50u) << "every transaction before the torn one is kept";
  EXPECT_EQ(torn->size(), 0u) << "the torn transaction is dropped whole";
  EXPECT_EQ(IntegrityCheck(copy), "ok");
  Event after = Make("after", "execution.created");
  EXPECT_TRUE(reopened->Append(after, Durability::kDurable).ok()) << "and it takes more";
}

TEST(JournalTest, BatchIsAllOrNothingWhenTheWriterIsKilledMidBatch) {
  ScratchDir dir;
  std::string path = dir.File("warden.db");
  constexpr int kBatchSize = 4000;
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::string size = std::to_string(kBatchSize);
  char* argv[] = {const_cast<char*>(JOURNAL_BATCH_WRITER), path.data(), size.data(), nullptr};
  pid_t pid;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv, environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  // Wait for three commits, then kill at once: the writer is almost always inside its next
  // transaction, and whichever batch it was in must be wholly absent.
  FILE* lines = fdopen(out[0], "r");
  char line[64];
  int commits = 0;
  while (commits < 3 && fgets(line, sizeof line, lines)) ++commits;
  usleep(2000);
  kill(pid, SIGKILL);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  fclose(lines);
  ASSERT_EQ(commits, 3) << "the writer did not commit";
  ASSERT_TRUE(WIFSIGNALED(status));

  EXPECT_EQ(IntegrityCheck(path), "ok");
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, "SELECT execution_id, count(*) FROM journal GROUP BY execution_id");
  int batches = 0;
  while (q.executeStep()) {
    ++batches;
    EXPECT_EQ(q.getColumn(1).getInt(), kBatchSize) << q.getColumn(0).getString() << " is torn";
  }
  EXPECT_GE(batches, 3);
  // The journal opens cleanly after the crash and accepts more.
  auto journal = OpenOrDie(path);
  Event e = Make("after", "execution.created");
  EXPECT_TRUE(journal->Append(e, Durability::kDurable).ok());
}

}  // namespace
}  // namespace warden::journal

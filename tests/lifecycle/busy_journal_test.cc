// An operator's sqlite3 shell holds the journal's write lock (BEGIN IMMEDIATE) while
// executions run. Commits run on the journal writer's thread, so the event loop goes on:
// exits and stops are handled at once, new work is refused quickly and leaves no trace,
// launches wait for the lock instead of failing, and nothing is lost once it is released.
#include <SQLiteCpp/SQLiteCpp.h>
#include <signal.h>

#include "lifecycle_test_util.h"

namespace warden::lifecycle_test {
namespace {

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += item + "\n";
  return out;
}

// The operator's shell: a second connection inside a write transaction until Release.
class WriteLock {
 public:
  explicit WriteLock(const std::string& path) : db_(path, SQLite::OPEN_READWRITE) {
    db_.exec("BEGIN IMMEDIATE");
  }
  ~WriteLock() { Release(); }
  void Release() {
    if (held_) db_.exec("ROLLBACK");
    held_ = false;
  }

 private:
  SQLite::Database db_;
  bool held_ = true;
};

TEST_F(LifecycleTest, WhileTheWriteLockIsHeldExitsAndStopsGoOnAndLaunchesWait) {
  runner_->SetTermBehavior("x", TermBehavior::kHoldOnTerm);
  std::string chain = Create(Dag({Node("a"), Node("b", {"a"})}));
  std::string other = Create(Dag({Node("x")}));
  Settle();
  ASSERT_NE(runner_->Tree("a"), nullptr);
  ASSERT_NE(runner_->Tree("x"), nullptr);

  WriteLock lock(journal_->path());
  // a ends: its exit is queued behind the lock; b's launch needs its intent on disk first,
  // so it waits (the loop blocks at most the writer's lock_bound for it, once).
  ASSERT_TRUE(runner_->Exit("a", 0));
  Settle();
  EXPECT_EQ(runner_->Tree("b"), nullptr) << "b was launched without its intent journaled";
  EXPECT_FALSE(manager_->journal_busy().ok()) << "health must say the journal is busy";
  EXPECT_TRUE(manager_->journal_health().ok()) << "a busy journal has not failed";

  // A stop signals while the lock is still held: it does not wait for it. (The test thread
  // holds the lock, so anything that waited for its release would never return.)
  auto stop = StopAsync(other);
  ASSERT_TRUE(RunUntil([&] { return runner_->Tree("x")->got_signal(SIGTERM); }));

  // New work is refused while the lock is held, naming the cause.
  auto refused = manager_->Create(Dag({Node("c")}), lib_, /*start=*/true);
  ASSERT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("busy"), std::string::npos)
      << refused.status().message();

  // x ends; its stop is answered without waiting for the lock, and says it is not journaled
  // yet.
  ASSERT_TRUE(runner_->Tree("x")->Exit(0));
  ASSERT_TRUE(RunUntil([&] { return stop->done.has_value(); }));
  ASSERT_TRUE(stop->done->ok()) << stop->done->status().ToString();
  EXPECT_FALSE((*stop->done)->journaled);
  EXPECT_EQ(StateOf(chain), ExecutionState::kRunning) << "a busy journal failed an execution";

  // Released: b is launched, the chain completes, and the journal tells the whole story.
  lock.Release();
  ASSERT_TRUE(RunUntil([&] { return runner_->Tree("b") != nullptr; }, 2s));
  ASSERT_TRUE(runner_->Exit("b", 0));
  ASSERT_TRUE(RunUntilEnded(chain));
  EXPECT_EQ(StateOf(chain), ExecutionState::kCompleted);
  EXPECT_EQ(EventsOf(chain, journal::kind::kNodeExited, "a").size(), 1u) << Joined(Kinds(chain));
  EXPECT_EQ(EventsOf(chain, journal::kind::kNodeStarted, "b").size(), 1u) << Joined(Kinds(chain));
  EXPECT_EQ(NodeOf(chain, "b").attempt, 1) << "waiting for the journal used up an attempt";
  EXPECT_EQ(EventsOf(other, journal::kind::kExecutionStopped).size(), 1u) << Joined(Kinds(other));
  // The stop's rows carry when it happened, not when the commit got through.
  auto requested = EventsOf(other, journal::kind::kExecutionStopRequested);
  auto signalled = EventsOf(other, journal::kind::kNodeSignalled, "x");
  ASSERT_EQ(requested.size(), 1u);
  ASSERT_FALSE(signalled.empty());
  EXPECT_LE(requested[0].at_ms, signalled[0].at_ms);
  EXPECT_LT(requested[0].seq, signalled[0].seq) << "the request row must precede the signal";
}

TEST_F(LifecycleTest, OperatorHoldingTheWriteLockPastTheBusyTimeoutLosesNoEvent) {
  // An operator's sqlite3 shell sits in a write transaction longer than the busy timeout.
  // Journal::Append then answers Unavailable without failing for good: once the lock is
  // gone, the journal must still tell the whole story, and node b did not fail to execute.
  journal::JournalOptions options;
  options.busy_timeout = 30ms;
  ReopenJournal(options);
  std::string id = Create(Dag({Node("a"), Node("b", {"a"})}));
  Settle();
  {
    SQLite::Database shell(journal_->path(), SQLite::OPEN_READWRITE);
    shell.exec("BEGIN IMMEDIATE");
    ASSERT_TRUE(runner_->Exit("a", 0));
    Settle();
    RunFor(100ms);
    shell.exec("ROLLBACK");
  }
  EXPECT_TRUE(journal_->health().ok()) << "a busy journal has not failed";
  RunFor(50ms);
  if (FakeProcessTree* b = runner_->Tree("b"); b != nullptr && !b->finished()) b->Exit(0);
  if (!lifecycle::IsTerminal(StateOf(id))) StopAndWait(id);
  ASSERT_TRUE(RunUntilEnded(id));

  EXPECT_NE(NodeOf(id, "b").exit_code, std::optional<int>(126))
      << "a busy journal is not an executable that cannot run";
  EXPECT_TRUE(EventsOf(id, journal::kind::kNodeLaunchFailed, "b").empty());
  EXPECT_EQ(EventsOf(id, journal::kind::kNodeExited, "a").size(), 1u)
      << "a's exit was dropped from the journal: " << Joined(Kinds(id));
  auto row = ExecutionRowOf(id);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->status, Name(StateOf(id))) << "the executions view disagrees with Get";
}

TEST_F(LifecycleTest, RequestsRefusedWhileTheJournalIsBusyLeaveNoTrace) {
  // The operator's write lock outlasts the busy timeout while a create, a start and a
  // resume come in. Each is refused (503 over HTTP), and none of them may reach the journal
  // later through the retry: the audit would show a change nobody was told of.
  journal::JournalOptions options;
  options.busy_timeout = 30ms;
  ReopenJournal(options);
  std::string idle = Create(Dag({Node("a")}), /*start=*/false);
  std::string paused = Create(Dag({Node("p")}));
  Settle();
  ASSERT_TRUE(PauseAndWait(paused).ok());
  {
    SQLite::Database shell(journal_->path(), SQLite::OPEN_READWRITE);
    shell.exec("BEGIN IMMEDIATE");
    auto created = manager_->Create(Dag({Node("c")}), lib_, /*start=*/true);
    EXPECT_EQ(created.status().code(), StatusCode::kUnavailable) << created.status().ToString();
    auto started = manager_->Start(idle, lib_);
    EXPECT_EQ(started.status().code(), StatusCode::kUnavailable) << started.status().ToString();
    std::optional<Result<ExecutionView>> resumed;
    manager_->Resume(paused, lib_, [&](Result<ExecutionView> r) { resumed = std::move(r); });
    ASSERT_TRUE(RunUntil([&] { return resumed.has_value(); }));
    EXPECT_EQ(resumed->status().code(), StatusCode::kUnavailable) << resumed->status().ToString();
    shell.exec("ROLLBACK");
  }
  RunFor(100ms);  // the busy retry has run
  EXPECT_TRUE(journal_->health().ok());
  EXPECT_EQ(manager_->List(/*include_ended=*/true)->size(), 2u);
  EXPECT_EQ(StateOf(idle), ExecutionState::kIdle);
  EXPECT_TRUE(EventsOf(idle, journal::kind::kExecutionStarted).empty()) << Joined(Kinds(idle));
  EXPECT_EQ(ExecutionRowOf(idle)->status, "idle");
  EXPECT_EQ(StateOf(paused), ExecutionState::kPaused);
  EXPECT_TRUE(EventsOf(paused, journal::kind::kExecutionResumed).empty()) << Joined(Kinds(paused));
  EXPECT_EQ(ExecutionRowOf(paused)->status, "paused");
  {
    SQLite::Database db(journal_->path(), SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("SELECT count(*) FROM executions").getInt(), 2)
        << "the refused create reached the journal";
  }

  // Once the lock is gone the same requests work.
  ASSERT_TRUE(manager_->Start(idle, lib_).ok());
  ASSERT_TRUE(ResumeAndWait(paused).ok());
  EXPECT_EQ(EventsOf(idle, journal::kind::kExecutionStarted).size(), 1u);
  EXPECT_EQ(EventsOf(paused, journal::kind::kExecutionResumed).size(), 1u);
  StopAndWait(idle);
  StopAndWait(paused);
}

}  // namespace
}  // namespace warden::lifecycle_test

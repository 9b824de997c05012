// Journal: the append-only SQLite table of every record and transition (the source of truth).
//
// Durability: the database runs in WAL mode with synchronous=NORMAL, so every committed
// transaction survives a crash of the daemon process. A commit made with Durability::kDurable
// also fsyncs the WAL (synchronous=FULL for that commit), which makes it, and every commit
// before it, survive power loss: use it for changes acknowledged to a client.
//
// Failure: a commit that fails for any reason but a lock held past the busy timeout, or a
// WAL file deleted by another program (seen at the next commit), puts the journal in a
// sticky failed state: the state on disk is unknown, so every later Append
// returns the same Unavailable status. Reads keep working as far as SQLite allows.
//
// Thread-safety: all methods may be called from any thread; they serialize on one mutex.
#pragma once

#include <sqlite3.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "journal/event.h"

namespace SQLite {
class Database;
}

namespace warden::journal {

enum class Durability {
  kCrashSafe,  // survives a crash of the daemon process (no fsync)
  kDurable,    // also survives power loss (fsync of the WAL before returning)
};

struct JournalOptions {
  // How long a write waits for a lock held by another connection (an operator's sqlite3
  // shell inside a write transaction). Readers in WAL mode never block the journal.
  std::chrono::milliseconds busy_timeout{10'000};
  // Upper bound on the database size in pages (PRAGMA max_page_count); 0 = SQLite's default.
  // Reaching it fails the journal like a full disk does.
  int64_t max_page_count = 0;
  const Clock* clock = &SystemClock::Instance();
  // The registered SQLite VFS to open the file through; empty = SQLite's default. Tests use
  // it to put a fault-injecting layer under the journal.
  std::string vfs;
};

class Journal {
 public:
  // Opens (creating if missing) the database file at `path` (its directory must exist),
  // switches it to WAL, checks that synchronous took effect, and applies pending migrations.
  // Errors: IoError naming the path for an unopenable or read-only file, InvalidArgument for
  // a database made by a newer Warden (the message names both schema versions).
  static Result<std::unique_ptr<Journal>> Open(const std::string& path,
                                               JournalOptions options = {});
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Appends `events` in one transaction (group commit): all of them or none. Assigns each
  // event's seq, and at_ms where it is 0. Returns the seq of the last event (0 for an empty
  // span). Errors: Unavailable when the journal has failed (sticky; see above) or when a lock
  // was held past the busy timeout (not sticky); InvalidArgument for an event with no kind.
  Result<int64_t> Append(std::span<Event> events, Durability durability);
  Result<int64_t> Append(Event& event, Durability durability) {
    return Append(std::span<Event>(&event, 1), durability);
  }
  // Append, waiting at most `lock_wait` (instead of JournalOptions::busy_timeout) for a lock
  // held by another connection: the journal writer's retry slice (journal_writer.h).
  Result<int64_t> Append(std::span<Event> events, Durability durability,
                         std::chrono::milliseconds lock_wait);
  // Takes the write lock and gives it back at once, waiting at most `lock_wait`: Ok once
  // another connection's write transaction has ended; Unavailable while it lasts.
  Status ProbeWriteLock(std::chrono::milliseconds lock_wait);

  // Called after each successful Append with its durability and how long its transaction
  // took (fsync included for kDurable). It runs on the appending thread with the journal's
  // lock held: it must be quick and must not call the journal. Replaces any earlier one;
  // nullptr removes it.
  using CommitObserver = std::function<void(Durability, std::chrono::nanoseconds)>;
  void SetCommitObserver(CommitObserver observer);

  // Ok while appends work; otherwise the sticky failure every Append returns.
  Status health() const;

  // The events of one execution with seq > after_seq, oldest first.
  Result<std::vector<Event>> ReadExecution(const std::string& execution_id,
                                           int64_t after_seq = 0) const;
  // Every event with seq > after_seq, oldest first, at most `limit` of them.
  Result<std::vector<Event>> ReadAll(int64_t after_seq = 0, int64_t limit = 1'000'000) const;
  // Ids of executions that have an `execution.created` event but no terminal one
  // (stopped, completed, failed), oldest first. Reads only the executions created from the
  // last `daemon.started`'s `scanFrom` on (all of them when there is none), through partial
  // indexes: start-up does not read the history of executions that had ended before.
  Result<std::vector<std::string>> NonTerminalExecutionIds() const;
  // The `scanFrom` for a `daemon.started` written now: the seq of the oldest execution that
  // has not ended, or the next seq when all have. Every execution created before it has
  // ended, and ended executions stay ended.
  Result<int64_t> ScanWatermark() const;

  // Ids of every execution in the journal (those with an `execution.created` event), in id
  // order, which is creation order; at most `limit`, starting after `after_id` (empty: from
  // the first). Reads the partial index only.
  Result<std::vector<std::string>> ExecutionIds(const std::string& after_id = "",
                                                int64_t limit = -1) const;
  // The greatest execution id in the journal (ids sort by creation time), or an empty string.
  Result<std::string> NewestExecutionId() const;
  // The execution whose `execution.created` carries `request_id`, or an empty string.
  // Uses the requestId index.
  Result<std::string> FindByRequestId(const std::string& request_id) const;

  // The query behind NonTerminalExecutionIds (public so that its plan can be checked).
  static const char* const kNonTerminalQuery;

  // The path this journal was opened with.
  const std::string& path() const { return path_; }

 private:
  Journal(std::string path, JournalOptions options, std::unique_ptr<SQLite::Database> db);
  Status Prepare();
  Status SetSynchronous(int level);  // 1 = NORMAL, 2 = FULL; read back and checked
  // The same, unchecked (parsed each time, see the .cc): per durable commit.
  Status SwitchSynchronous(int level);
  Result<int64_t> AppendLocked(std::span<Event> events, Durability durability);
  Status FailFrom(const char* what, int rc);  // sticky unless rc is SQLITE_BUSY
  // After a commit: fails the journal (stickily) when the WAL file is gone or replaced,
  // after saving its commits with a checkpoint. Call with mu_ held.
  void CheckWal();
  // (seq of execution.created, id) of the executions not ended, oldest first.
  Result<std::vector<std::pair<int64_t, std::string>>> NonTerminal() const;
  // The last daemon.started's scanFrom, 0 without one. Call with mu_ held.
  Result<int64_t> ScanFromLocked() const;
  Result<std::vector<Event>> Read(const std::string& sql, const std::string* text_arg,
                                  int64_t int_arg, int64_t limit) const;

  const std::string path_;
  const JournalOptions options_;
  mutable std::mutex mu_;
  std::unique_ptr<SQLite::Database> db_;
  sqlite3_stmt* insert_ = nullptr;  // owned; finalized in the destructor
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* rollback_ = nullptr;
  Status failed_;  // sticky; ok while healthy
  // The WAL file's identity, from the first commit on.
  ino_t wal_ino_ = 0;
  dev_t wal_dev_ = 0;
  CommitObserver on_commit_;
};

}  // namespace warden::journal

#include "journal/journal.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <utility>

#include "journal/migrations.h"

namespace warden::journal {
namespace {

// Binds `s` without copying: the event outlives the step that reads it.
int BindTextOrNull(sqlite3_stmt* stmt, int index, const std::string& s) {
  if (s.empty()) return sqlite3_bind_null(stmt, index);
  return sqlite3_bind_text(stmt, index, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
}

std::string ColumnText(SQLite::Statement& q, int index) {
  return q.isColumnNull(index) ? std::string() : q.getColumn(index).getString();
}

}  // namespace

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& path, JournalOptions options) {
  std::unique_ptr<SQLite::Database> db;
  try {
    db = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE,
                                            /*aBusyTimeoutMs=*/0, options.vfs);
  } catch (const SQLite::Exception& e) {
    return Status::IoError("cannot open journal " + path + ": " + e.what());
  }
  // SQLite silently falls back to read-only when the file or its filesystem is not writable;
  // a journal that cannot be written must not pretend to be open for business.
  if (sqlite3_db_readonly(db->getHandle(), "main") == 1) {
    return Status::IoError("journal " + path + " is read-only: Warden needs to write it");
  }
  try {
    db->setBusyTimeout(static_cast<int>(options.busy_timeout.count()));
    std::string mode = db->execAndGet("PRAGMA journal_mode = WAL").getString();
    if (mode != "wal") {
      return Status::IoError("journal " + path + ": cannot switch to WAL mode (got '" + mode +
                             "')");
    }
    if (options.max_page_count > 0) {
      db->execAndGet("PRAGMA max_page_count = " + std::to_string(options.max_page_count));
    }
  } catch (const SQLite::Exception& e) {
    return Status::IoError("cannot set up journal " + path + ": " + e.what());
  }
  WARDEN_RETURN_IF_ERROR(Migrate(*db));
  std::unique_ptr<Journal> journal(new Journal(path, options, std::move(db)));
  // Both levels are checked once here, so a build of SQLite that ignores the pragma (or
  // one compiled with a fixed level) is caught before anything is acknowledged.
  WARDEN_RETURN_IF_ERROR(journal->SetSynchronous(2));
  WARDEN_RETURN_IF_ERROR(journal->SetSynchronous(1));
  WARDEN_RETURN_IF_ERROR(journal->Prepare());
  return journal;
}

Journal::Journal(std::string path, JournalOptions options, std::unique_ptr<SQLite::Database> db)
    : path_(std::move(path)), options_(options), db_(std::move(db)) {}

Journal::~Journal() {
  for (sqlite3_stmt* stmt : {insert_, begin_, commit_, rollback_}) {
    sqlite3_finalize(stmt);
  }
}

Status Journal::Prepare() {
  sqlite3* h = db_->getHandle();
  struct {
    sqlite3_stmt** stmt;
    const char* sql;
  } statements[] = {
      {&insert_,
       "INSERT INTO journal (at_ms, execution_id, node_id, attempt, kind, payload) "
       "VALUES (?, ?, ?, ?, ?, ?)"},
      {&begin_, "BEGIN IMMEDIATE"},
      {&commit_, "COMMIT"},
      {&rollback_, "ROLLBACK"},
  };
  for (auto& s : statements) {
    int rc = sqlite3_prepare_v3(h, s.sql, -1, SQLITE_PREPARE_PERSISTENT, s.stmt, nullptr);
    if (rc != SQLITE_OK) {
      return Status::IoError("journal " + path_ + ": preparing '" + s.sql +
                             "': " + sqlite3_errmsg(h));
    }
  }
  return Status::Ok();
}

Status Journal::SetSynchronous(int level) {
  try {
    db_->exec("PRAGMA synchronous = " + std::to_string(level));
    int actual = db_->execAndGet("PRAGMA synchronous").getInt();
    if (actual != level) {
      return Status::IoError("journal " + path_ +
                             ": PRAGMA synchronous = " + std::to_string(level) +
                             " did not take effect (reads back " + std::to_string(actual) + ")");
    }
  } catch (const SQLite::Exception& e) {
    return Status::IoError("journal " + path_ + ": setting synchronous: " + e.what());
  }
  return Status::Ok();
}

Status Journal::SwitchSynchronous(int level) {
  // Parsed every time: SQLite sets the level when it prepares the statement, and a prepared
  // one stepped again does not reliably set it again.
  int rc = sqlite3_exec(db_->getHandle(),
                        level == 2 ? "PRAGMA synchronous = 2" : "PRAGMA synchronous = 1", nullptr,
                        nullptr, nullptr);
  if (rc != SQLITE_OK) {
    return Status::IoError("journal " + path_ +
                           ": setting synchronous: " + sqlite3_errmsg(db_->getHandle()));
  }
  return Status::Ok();
}

void Journal::CheckWal() {
  const std::string wal = path_ + "-wal";
  struct stat st {};
  if (::stat(wal.c_str(), &st) == 0 &&
      (wal_ino_ == 0 || (st.st_ino == wal_ino_ && st.st_dev == wal_dev_))) {
    wal_ino_ = st.st_ino;
    wal_dev_ = st.st_dev;
    return;
  }
  // Another program deleted (or replaced) the WAL this connection writes into: the commits
  // in it would be lost at the next crash or close. A checkpoint copies them into the
  // database file while the connection still holds the deleted file open. From here on the
  // journal is failed, so nothing more goes into a file nobody will read.
  int frames = -1, copied = -1;
  int rc = sqlite3_wal_checkpoint_v2(db_->getHandle(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, &frames,
                                     &copied);
  std::string saved = rc == SQLITE_OK && frames == copied
                          ? "every commit was saved into the database file by a checkpoint"
                          : std::string("the checkpoint that would save its commits failed (") +
                                sqlite3_errstr(rc) +
                                "): those since the last checkpoint may be lost";
  failed_ = Status::Unavailable("journal " + path_ + ": its WAL file " + wal +
                                " was deleted or replaced by another program; " + saved +
                                "; restart the daemon to go on");
}

Status Journal::FailFrom(const char* what, int rc) {
  sqlite3* h = db_->getHandle();
  std::string message =
      "journal " + path_ + ": " + what + ": " + sqlite3_errmsg(h) + " (" + sqlite3_errstr(rc) + ")";
  if (!sqlite3_get_autocommit(h)) {
    sqlite3_step(rollback_);
    sqlite3_reset(rollback_);
  }
  if ((rc & 0xff) == SQLITE_BUSY) {
    // Another connection held the write lock past the busy timeout. Nothing was written and
    // nothing is unknown, so this append fails alone.
    return Status::Unavailable(message + " after waiting " +
                               std::to_string(options_.busy_timeout.count()) + " ms");
  }
  failed_ = Status::Unavailable(message);
  return failed_;
}

Result<int64_t> Journal::Append(std::span<Event> events, Durability durability) {
  std::lock_guard lock(mu_);
  return AppendLocked(events, durability);
}

Result<int64_t> Journal::Append(std::span<Event> events, Durability durability,
                                std::chrono::milliseconds lock_wait) {
  std::lock_guard lock(mu_);
  sqlite3* h = db_->getHandle();
  sqlite3_busy_timeout(h, static_cast<int>(lock_wait.count()));
  auto r = AppendLocked(events, durability);
  sqlite3_busy_timeout(h, static_cast<int>(options_.busy_timeout.count()));
  return r;
}

Status Journal::ProbeWriteLock(std::chrono::milliseconds lock_wait) {
  std::lock_guard lock(mu_);
  if (!failed_.ok()) return failed_;
  sqlite3* h = db_->getHandle();
  sqlite3_busy_timeout(h, static_cast<int>(lock_wait.count()));
  int rc = sqlite3_step(begin_);
  sqlite3_reset(begin_);
  sqlite3_busy_timeout(h, static_cast<int>(options_.busy_timeout.count()));
  if (rc != SQLITE_DONE) return FailFrom("BEGIN", rc);
  sqlite3_step(rollback_);
  sqlite3_reset(rollback_);
  return Status::Ok();
}

Result<int64_t> Journal::AppendLocked(std::span<Event> events, Durability durability) {
  if (!failed_.ok()) return failed_;
  if (events.empty()) return int64_t{0};
  for (const Event& e : events) {
    if (e.kind.empty()) return Status::InvalidArgument("journal event without a kind");
  }
  const auto began = std::chrono::steady_clock::now();
  if (durability == Durability::kDurable) {
    if (Status s = SwitchSynchronous(2); !s.ok()) {
      return failed_ = Status::Unavailable(s.message());
    }
  }
  // An append that fails without failing the journal (busy, a rejected event) must not leave
  // it fsyncing every later commit: back to NORMAL on those paths too.
  struct RestoreNormal {
    Journal* journal;
    bool armed;
    ~RestoreNormal() {
      if (armed && journal->failed_.ok()) (void)journal->SwitchSynchronous(1);
    }
  } restore{this, durability == Durability::kDurable};
  int64_t now = options_.clock->WallMs();
  auto step = [](sqlite3_stmt* stmt) {
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc;
  };
  int rc = step(begin_);
  if (rc != SQLITE_DONE) return FailFrom("BEGIN", rc);
  for (Event& e : events) {
    if (e.at_ms == 0) e.at_ms = now;
    sqlite3_bind_int64(insert_, 1, e.at_ms);
    BindTextOrNull(insert_, 2, e.execution_id);
    BindTextOrNull(insert_, 3, e.node_id);
    if (e.attempt > 0) {
      sqlite3_bind_int64(insert_, 4, e.attempt);
    } else {
      sqlite3_bind_null(insert_, 4);
    }
    sqlite3_bind_text(insert_, 5, e.kind.data(), static_cast<int>(e.kind.size()), SQLITE_STATIC);
    sqlite3_bind_text(insert_, 6, e.payload.data(), static_cast<int>(e.payload.size()),
                      SQLITE_STATIC);
    rc = sqlite3_step(insert_);
    sqlite3_reset(insert_);
    if (rc != SQLITE_DONE) {
      // A CHECK (bad payload JSON) is the caller's error, not the journal's: roll back and
      // leave the journal healthy.
      if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        std::string message = sqlite3_errmsg(db_->getHandle());
        step(rollback_);
        return Status::InvalidArgument("journal event " + e.kind + " rejected: " + message);
      }
      return FailFrom("INSERT", rc);
    }
    e.seq = sqlite3_last_insert_rowid(db_->getHandle());
  }
  rc = step(commit_);
  if (rc != SQLITE_DONE) return FailFrom("COMMIT", rc);
  CheckWal();
  if (on_commit_) on_commit_(durability, std::chrono::steady_clock::now() - began);
  if (durability == Durability::kDurable) {
    restore.armed = false;
    if (Status s = SwitchSynchronous(1); !s.ok()) {
      return failed_ = Status::Unavailable(s.message());
    }
  }
  sqlite3_clear_bindings(insert_);
  return events.back().seq;
}

void Journal::SetCommitObserver(CommitObserver observer) {
  std::lock_guard lock(mu_);
  on_commit_ = std::move(observer);
}

Status Journal::health() const {
  std::lock_guard lock(mu_);
  return failed_;
}

Result<std::vector<Event>> Journal::Read(const std::string& sql, const std::string* text_arg,
                                         int64_t int_arg, int64_t limit) const {
  std::lock_guard lock(mu_);
  std::vector<Event> out;
  try {
    SQLite::Statement q(*db_, sql);
    int index = 1;
    if (text_arg) q.bind(index++, *text_arg);
    q.bind(index++, int_arg);
    q.bind(index++, limit);
    while (q.executeStep()) {
      Event e;
      e.seq = q.getColumn(0).getInt64();
      e.at_ms = q.getColumn(1).getInt64();
      e.execution_id = ColumnText(q, 2);
      e.node_id = ColumnText(q, 3);
      e.attempt = q.isColumnNull(4) ? 0 : q.getColumn(4).getInt64();
      e.kind = q.getColumn(5).getString();
      e.payload = q.getColumn(6).getString();
      out.push_back(std::move(e));
    }
  } catch (const SQLite::Exception& ex) {
    return Status::IoError("journal " + path_ + ": reading: " + ex.what());
  }
  return out;
}

Result<std::vector<Event>> Journal::ReadExecution(const std::string& execution_id,
                                                  int64_t after_seq) const {
  return Read(
      "SELECT seq, at_ms, execution_id, node_id, attempt, kind, payload FROM journal "
      "WHERE execution_id = ? AND seq > ? ORDER BY seq LIMIT ?",
      &execution_id, after_seq, -1);
}

Result<std::vector<Event>> Journal::ReadAll(int64_t after_seq, int64_t limit) const {
  return Read(
      "SELECT seq, at_ms, execution_id, node_id, attempt, kind, payload FROM journal "
      "WHERE seq > ? ORDER BY seq LIMIT ?",
      nullptr, after_seq, limit);
}

// The two conditions match the partial indexes journal_created and journal_terminal exactly,
// so SQLite answers from them instead of the whole history.
const char* const Journal::kNonTerminalQuery =
    "SELECT c.seq, c.execution_id FROM journal c INDEXED BY journal_created_seq "
    "WHERE c.kind = 'execution.created' AND c.seq >= ? AND NOT EXISTS ("
    "SELECT 1 FROM journal t WHERE t.execution_id = c.execution_id "
    "AND t.kind IN ('execution.stopped', 'execution.completed', 'execution.failed'))";

Result<int64_t> Journal::ScanFromLocked() const {
  try {
    SQLite::Statement q(*db_,
                        "SELECT json_extract(payload, '$.scanFrom') FROM journal "
                        "INDEXED BY journal_daemon_started WHERE kind = 'daemon.started' "
                        "ORDER BY seq DESC LIMIT 1");
    if (q.executeStep() && !q.getColumn(0).isNull()) return q.getColumn(0).getInt64();
  } catch (const SQLite::Exception& ex) {
    return Status::IoError("journal " + path_ + ": reading: " + ex.what());
  }
  return int64_t{0};
}

Result<int64_t> Journal::ScanWatermark() const {
  auto ids = NonTerminal();
  if (!ids.ok()) return ids.status();
  if (!ids->empty()) return ids->front().first;
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement q(*db_, "SELECT coalesce(max(seq), 0) + 1 FROM journal");
    if (q.executeStep()) return q.getColumn(0).getInt64();
  } catch (const SQLite::Exception& ex) {
    return Status::IoError("journal " + path_ + ": reading: " + ex.what());
  }
  return int64_t{1};
}

Result<std::vector<std::string>> Journal::NonTerminalExecutionIds() const {
  auto rows = NonTerminal();
  if (!rows.ok()) return rows.status();
  std::vector<std::string> ids;
  for (auto& row : *rows) ids.push_back(std::move(row.second));
  return ids;
}

Result<std::vector<std::pair<int64_t, std::string>>> Journal::NonTerminal() const {
  std::lock_guard lock(mu_);
  auto from = ScanFromLocked();
  if (!from.ok()) return from.status();
  try {
    SQLite::Statement q(*db_, kNonTerminalQuery);
    q.bind(1, *from);
    // No ORDER BY: sorting by seq in SQL makes SQLite prefer a rowid scan of the whole
    // table over the partial index, so the few rows are sorted here instead.
    std::vector<std::pair<int64_t, std::string>> rows;
    while (q.executeStep())
      rows.emplace_back(q.getColumn(0).getInt64(), q.getColumn(1).getString());
    std::sort(rows.begin(), rows.end());
    return rows;
  } catch (const SQLite::Exception& ex) {
    return Status::IoError("journal " + path_ + ": reading: " + ex.what());
  }
}

Result<std::vector<std::string>> Journal::ExecutionIds(const std::string& after_id,
                                                       int64_t limit) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  try {
    SQLite::Statement q(*db_,
                        "SELECT execution_id FROM journal INDEXED BY journal_created "
                        "WHERE kind = 'execution.created' AND execution_id > ? "
                        "ORDER BY execution_id LIMIT ?");
    q.bind(1, after_id);
    q.bind(2, static_cast<int64_t>(limit));
    while (q.executeStep()) ids.push_back(q.getColumn(0).getString());
  } catch (const SQLite::Exception& ex) {
    return Status::IoError("journal " + path_ + ": reading: " + ex.what());
  }
  return ids;
}

Result<std::string> Journal::NewestExecutionId() const {
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement q(*db_,
                        "SELECT max(execution_id) FROM journal INDEXED BY journal_created "
                        "WHERE kind = 'execution.created'");
    if (q.executeStep() && !q.getColumn(0).isNull()) return q.getColumn(0).getString();
  } catch (const SQLite::Exception& ex) {
    return Status::IoError("journal " + path_ + ": reading: " + ex.what());
  }
  return std::string();
}

Result<std::string> Journal::FindByRequestId(const std::string& request_id) const {
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement q(*db_,
                        "SELECT execution_id FROM journal INDEXED BY journal_request_id "
                        "WHERE kind = 'execution.created' "
                        "AND json_extract(payload, '$.requestId') = ? ORDER BY seq LIMIT 1");
    q.bind(1, request_id);
    if (q.executeStep()) return q.getColumn(0).getString();
  } catch (const SQLite::Exception& ex) {
    return Status::IoError("journal " + path_ + ": reading: " + ex.what());
  }
  return std::string();
}

}  // namespace warden::journal

// JournalWriter: the one thread that commits to the journal, so that the thread that runs
// the daemon's event loop never waits on SQLite.
//
// Batches are committed in the order they were submitted. Whatever has queued while a
// commit ran goes into the next transaction together (group commit, as LevelDB's writer
// queue does), durable if any of its batches asked for it: one fsync for all of them.
//
// A lock held by another connection (an operator's sqlite3 shell inside BEGIN IMMEDIATE) is
// not a failure: the writer keeps trying, in slices of `lock_slice`, for as long as it lasts,
// and meanwhile reports itself busy. A caller that must not wait that long (a client's
// request) waits with Wait(..., withdraw = true): once the writer has waited `lock_bound`
// for the lock, its batch is withdrawn, never to be written. Any other failure is the
// journal's sticky one (journal.h) and decides every batch queued.
//
// Threading: Submit, Wait and the getters may be called from any thread. `done` callbacks
// run on the writer thread (or, for a batch withdrawn before the writer took it, on the
// thread that withdrew it): they must be quick and must not call the writer.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "journal/journal.h"

namespace warden::journal {

struct WriterOptions {
  // How long one attempt waits for another connection's lock before the writer looks at
  // withdrawals and tries again.
  std::chrono::milliseconds lock_slice{10};
  // How long the writer waits for a lock before it counts as busy (health says so, and
  // requests waiting with withdraw are withdrawn).
  std::chrono::milliseconds lock_bound{100};
  // On destruction, how long the writer still waits for a lock before it gives up on what
  // is queued (each batch is then decided Unavailable).
  std::chrono::milliseconds drain_limit{10'000};
};

class JournalWriter {
 public:
  // One submitted batch. Its fields are the writer's until it is decided.
  struct Batch;
  using Ticket = std::shared_ptr<Batch>;
  using Done = std::function<void()>;

  explicit JournalWriter(Journal& journal, WriterOptions options = {});
  // Commits what is queued (waiting at most drain_limit for a lock), then stops the thread.
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Queues `events` for commit; `done` runs once the batch is decided (committed, refused or
  // withdrawn). Returns the ticket to Wait on and to read the outcome from.
  // With `wake` false the writer is not woken for it: pass false for every batch but the
  // last of several submitted together, so that they go into one transaction.
  Ticket Submit(std::vector<Event> events, Durability durability, Done done, bool wake = true);
  // Wakes the writer thread for batches submitted without `wake`.
  void Wake() { queued_cv_.notify_one(); }
  // True once `ticket` is decided (its fields are then final and may be read freely).
  bool decided(const Ticket& ticket) const;

  // Waits until `ticket` is decided and returns its status. While the writer thread is
  // idle and no lock is known to be held, the caller commits what is queued (its batch
  // among it) itself, in one transaction: the path a request or a launch waits on then
  // costs no thread switch. An attempt that finds another connection's lock waits at most
  // lock_slice and hands the batches back to the writer thread. While the writer has
  // waited for another connection's lock for lock_bound or longer: with `withdraw`,
  // withdraws the batch (if it is not being committed this instant) and returns
  // Unavailable naming the lock; without, returns nothing and leaves the batch queued.
  std::optional<Status> Wait(const Ticket& ticket, bool withdraw);

  // True while the writer has waited for another connection's lock for lock_bound or more.
  bool busy() const;
  // Unavailable naming how long the lock has been held, while busy(); Ok otherwise.
  Status BusyStatus() const;
  // Called (on the writer thread) when a lock the writer was busy on is released. Set it
  // before the first Submit.
  void SetOnWritable(std::function<void()> on_writable) { on_writable_ = std::move(on_writable); }

  Journal& journal() { return journal_; }

 private:
  void Run();
  // One turn of the writer thread: commits what is queued, or probes the lock while busy
  // with nothing queued. Call with mu_ held and committing_ set.
  void RunOnce(std::unique_lock<std::mutex>& lock);
  // Commits `group` (one transaction), retrying while another connection holds the lock;
  // with `caller`, on a waiter's thread, it does not retry: a group that found the lock
  // held goes back to the head of the queue for the writer thread. Call with mu_ held and
  // committing_ set; returns with mu_ held.
  void CommitGroup(std::vector<Ticket>& group, std::unique_lock<std::mutex>& lock,
                   bool caller = false);
  void Decide(const Ticket& ticket, Status status);  // with mu_ held
  Status BusyStatusLocked() const;

  Journal& journal_;
  const WriterOptions options_;
  std::function<void()> on_writable_;

  mutable std::mutex mu_;
  std::condition_variable queued_cv_;   // the writer waits for work
  std::condition_variable decided_cv_;  // waiters wait for their batch
  std::deque<Ticket> queue_;
  bool stopping_ = false;
  // A thread (the writer's or a waiter's) is using the journal: the others keep off it.
  bool committing_ = false;
  // Since when the writer has waited for another connection's lock; empty while it has not.
  std::optional<std::chrono::steady_clock::time_point> lock_wait_since_;
  std::thread thread_;
};

struct JournalWriter::Batch {
  std::vector<Event> events;  // seq and at_ms filled in once committed
  Durability durability = Durability::kCrashSafe;
  Done done;
  enum class State { kQueued, kCommitting, kDecided } state = State::kQueued;
  bool withdraw_requested = false;
  bool withdrawn = false;
  Status status;  // once decided
};

}  // namespace warden::journal

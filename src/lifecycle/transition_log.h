// TransitionLog: the lifecycle's one way into the journal. Transitions that happen together
// are queued with Add and handed to the journal writer's thread by one Commit (group
// commit); subscribers see each event once it has committed. The event loop waits for a
// commit only where a rule requires it (a client's request, a launch's write-ahead intent),
// and never for another connection's lock beyond the writer's lock_bound.
//
// Threading: the manager's thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <optional>

#include "base/status.h"
#include "journal/journal.h"
#include "journal/journal_writer.h"

namespace warden::lifecycle {

class TransitionLog {
 public:
  using Listener = std::function<void(const journal::Event&)>;
  using Done = std::function<void(Status)>;

  TransitionLog(journal::Journal& journal, boost::asio::io_context& io,
                journal::WriterOptions writer_options = {});
  // Commits what is still queued and waits for the writer to finish (at most its drain
  // limit while another connection holds the lock); what it could not write is logged.
  ~TransitionLog();
  TransitionLog(const TransitionLog&) = delete;
  TransitionLog& operator=(const TransitionLog&) = delete;

  // Queues `event` for the next Commit.
  void Add(journal::Event event) { pending_.push_back(std::move(event)); }
  // Queues an event built from its parts; `payload` is a JSON object's text.
  void Add(std::string execution_id, std::string node_id, int64_t attempt, std::string_view kind,
           std::string payload);

  // Hands every queued event to the journal writer as one batch and returns at once. Once
  // the batch is decided, on this thread: the subscribers hear its events, then `done`
  // (optional) its outcome. A batch the journal refused for good is logged to stderr and
  // handed to the subscribers with seq 0 (not journaled), so that a follower of an execution
  // that ends now sees it end. While another connection holds the lock, the writer keeps
  // trying: nothing is lost once it is released.
  void Commit(journal::Durability durability, Done done = nullptr);

  // How many events are queued: the mark to pass to CommitRequest, taken before a request's
  // events are added.
  size_t pending_count() const { return pending_.size(); }
  // Commits a client's request (or a launch's write-ahead intent) whose events were queued
  // after `mark`, and waits for it. The events before `mark` are committed ahead of it, in
  // the same transaction when the writer can. When the journal is busy (another connection
  // has held the lock for the writer's lock_bound), the request is refused: its events are
  // withdrawn (a refused create or start must not reach the journal later) and the busy
  // Unavailable is returned; already busy, it is refused without waiting.
  Status CommitRequest(size_t mark, journal::Durability durability);

  // Commits what is queued and waits for it, unless the journal is busy: then returns
  // nothing at once (or after the writer's lock_bound, when the lock was taken just now) and
  // the events commit later, with the times they were recorded at. For the write-ahead of a
  // stop, which must not wait on an operator's lock: safety beats bookkeeping.
  std::optional<Status> CommitBounded(journal::Durability durability);

  // Hands every queued event to the journal writer as one crash-safe batch, like Commit,
  // but lets it wait up to `linger` for the loop's next commit (a launch's intent, a
  // request), which then takes it along in its own transaction: a launch's identities ride
  // with the next launch's write-ahead instead of costing a commit of their own. After
  // `linger` the writer thread commits it.
  void CommitLingering(std::chrono::microseconds linger, Done done);

  // Commits (crash-safe) whatever is queued once the handlers already queued on the
  // io_context have run: the completions of one wake-up, such as the exits of a mass stop,
  // share one transaction. An earlier Commit takes the events with it.
  void CommitSoon();

  // Calls `done` on this thread with the outcome of the last batch handed over so far (or
  // of what is queued, committed now), once it and every batch before it are decided.
  void WhenCommitted(Done done);

  // Hands what is queued to the writer and waits until every batch handed over so far is
  // decided, or until the journal is busy, then hands out the outcomes decided.
  void WaitIdle();

  // Ok while the journal accepts appends.
  Status health() const { return writer_->journal().health(); }
  // Unavailable naming the lock while the journal is busy; Ok otherwise.
  Status busy_status() const { return writer_->BusyStatus(); }
  bool busy() const { return writer_->busy(); }
  // Called on this thread when the journal is writable again after being busy.
  void SetOnWritable(std::function<void()> on_writable) { on_writable_ = std::move(on_writable); }

  // The highest seq committed for `execution_id` by this log so far; 0 if none (or after
  // Forget).
  int64_t committed_seq(const std::string& execution_id) const {
    auto it = committed_seq_.find(execution_id);
    return it == committed_seq_.end() ? 0 : it->second;
  }
  // Drops what committed_seq remembers of `execution_id` (the manager no longer holds it).
  void Forget(const std::string& execution_id) { committed_seq_.erase(execution_id); }

  // Registers `listener` for the committed events of `execution_id`; returns a key for
  // Unsubscribe.
  uint64_t Subscribe(const std::string& execution_id, Listener listener);
  void Unsubscribe(uint64_t key);

 private:
  struct InFlight {
    journal::JournalWriter::Ticket ticket;
    Done done;
    std::vector<Done> after;  // WhenCommitted
  };
  journal::JournalWriter::Ticket Submit(std::vector<journal::Event> events,
                                        journal::Durability durability, Done done, bool wake);
  // Hands out the outcomes of the decided batches at the head of in_flight_, in order.
  void Drain();
  void Notify(const std::vector<journal::Event>& batch);  // tells the subscribers

  boost::asio::io_context& io_;
  std::vector<journal::Event> pending_;
  bool commit_posted_ = false;
  // Wakes the writer for lingering batches; armed while one may be queued.
  boost::asio::steady_timer linger_timer_;
  bool linger_armed_ = false;
  // Posted handlers hold a weak_ptr to this and do nothing once the log is gone.
  std::shared_ptr<int> lifetime_ = std::make_shared<int>(0);
  // Submitted batches, oldest first; the io_context is kept running while there are any.
  std::deque<InFlight> in_flight_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  bool draining_ = false;
  std::function<void()> on_writable_;
  uint64_t next_key_ = 1;
  std::map<uint64_t, std::pair<std::string, Listener>> listeners_;
  std::unordered_map<std::string, int64_t> committed_seq_;  // execution id -> highest seq
  // Last: destroyed first, so its thread's callbacks find everything above still there.
  std::unique_ptr<journal::JournalWriter> writer_;
};

}  // namespace warden::lifecycle

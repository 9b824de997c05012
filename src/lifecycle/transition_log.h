// TransitionLog: the lifecycle's one way into the journal. Transitions that happen together
// are queued with Add and written by one Commit (group commit); subscribers see each event
// once it has committed.
//
// Threading: the manager's thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/status.h"
#include "journal/journal.h"

namespace warden::lifecycle {

class TransitionLog {
 public:
  using Listener = std::function<void(const journal::Event&)>;

  TransitionLog(journal::Journal& journal, boost::asio::io_context& io)
      : journal_(journal), io_(io), retry_timer_(io) {}
  // Commits what is still queued (a CommitSoon not yet run), if the journal takes it.
  ~TransitionLog();
  TransitionLog(const TransitionLog&) = delete;
  TransitionLog& operator=(const TransitionLog&) = delete;

  // Queues `event` for the next Commit.
  void Add(journal::Event event) { pending_.push_back(std::move(event)); }
  // Queues an event built from its parts; `payload` is a JSON object's text.
  void Add(std::string execution_id, std::string node_id, int64_t attempt, std::string_view kind,
           std::string payload);

  // Writes every queued event in one transaction and then tells the subscribers. Returns the
  // journal's error on failure:
  //  - busy (another connection held the write lock past the busy timeout; the journal is
  //    still healthy): the events stay queued, ahead of later ones, and a retry is armed, so
  //    nothing is lost once the lock is released;
  //  - failed for good: the events are logged to stderr (so an operator still has them),
  //    handed to the subscribers with seq 0 (not journaled), and dropped.
  Status Commit(journal::Durability durability);

  // How many events are queued: the mark to pass to CommitRequest, taken before a request's
  // events are added.
  size_t pending_count() const { return pending_.size(); }
  // Commits a client's request whose events were queued after `mark`. Like Commit, except
  // when the journal is only busy: then the request is refused, so its events are withdrawn
  // (a refused create or start must not reach the journal later); the events queued before
  // `mark` stay for the retry.
  Status CommitRequest(size_t mark, journal::Durability durability);

  // Commits (crash-safe) whatever is queued once the handlers already queued on the
  // io_context have run: the completions of one wake-up, such as the exits of a mass stop,
  // share one transaction. An earlier Commit takes the events with it.
  void CommitSoon();

  // Ok while the journal accepts appends.
  Status health() const { return journal_.health(); }

  // Registers `listener` for the committed events of `execution_id`; returns a key for
  // Unsubscribe.
  uint64_t Subscribe(const std::string& execution_id, Listener listener);
  void Unsubscribe(uint64_t key);

 private:
  void ArmRetry();
  void Notify(const std::vector<journal::Event>& batch);  // tells the subscribers

  journal::Journal& journal_;
  boost::asio::io_context& io_;
  std::vector<journal::Event> pending_;
  bool commit_posted_ = false;
  // Posted handlers hold a weak_ptr to this and do nothing once the log is gone.
  std::shared_ptr<int> lifetime_ = std::make_shared<int>(0);
  boost::asio::steady_timer retry_timer_;
  bool retry_armed_ = false;
  uint64_t next_key_ = 1;
  std::map<uint64_t, std::pair<std::string, Listener>> listeners_;
};

}  // namespace warden::lifecycle

#include "lifecycle/transition_log.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <chrono>

namespace warden::lifecycle {

namespace {

// What the journal did not take stays on stderr, so an operator still has it.
void LogNotJournaled(const Status& why, const std::vector<journal::Event>& events) {
  for (const auto& e : events) {
    spdlog::error("not journaled ({}): {} {} {} {} {}", why.message(), e.execution_id, e.node_id,
                  e.attempt, e.kind, e.payload);
  }
}

}  // namespace

TransitionLog::~TransitionLog() {
  retry_timer_.cancel();
  // Still queued after this: the journal was busy, and there is no later retry.
  Status s = Commit(journal::Durability::kCrashSafe);
  LogNotJournaled(s, pending_);
}

void TransitionLog::Add(std::string execution_id, std::string node_id, int64_t attempt,
                        std::string_view kind, std::string payload) {
  journal::Event e;
  e.execution_id = std::move(execution_id);
  e.node_id = std::move(node_id);
  e.attempt = attempt;
  e.kind = std::string(kind);
  e.payload = std::move(payload);
  pending_.push_back(std::move(e));
}

Status TransitionLog::Commit(journal::Durability durability) {
  if (pending_.empty()) return Status::Ok();
  // Append stamps at_ms on events that have none, so a retried event keeps its real time.
  auto r = journal_.Append(pending_, durability);
  if (!r.ok()) {
    if (journal_.health().ok()) {
      ArmRetry();
      return r.status();
    }
    // Safety beats bookkeeping: the daemon goes on stopping what runs, and what it could not
    // journal is at least on stderr.
    std::vector<journal::Event> dropped;
    dropped.swap(pending_);
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    LogNotJournaled(r.status(), dropped);
    for (auto& e : dropped) {
      e.seq = 0;
      if (e.at_ms == 0) e.at_ms = now_ms;
    }
    // Subscribers still hear what happened (seq 0: not journaled), so that a follower of an
    // execution that ends now sees it end.
    Notify(dropped);
    return r.status();
  }
  std::vector<journal::Event> batch;
  batch.swap(pending_);
  Notify(batch);
  return Status::Ok();
}

Status TransitionLog::CommitRequest(size_t mark, journal::Durability durability) {
  Status s = Commit(durability);
  if (!s.ok() && journal_.health().ok() && mark < pending_.size()) {
    for (auto it = pending_.begin() + static_cast<std::ptrdiff_t>(mark); it != pending_.end();
         ++it) {
      spdlog::warn("refused while the journal is busy, withdrawn: {} {}", it->execution_id,
                   it->kind);
    }
    pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(mark), pending_.end());
  }
  return s;
}

void TransitionLog::Notify(const std::vector<journal::Event>& batch) {
  if (listeners_.empty()) return;
  // A listener may unsubscribe (or subscribe) while it is called: iterate over a copy of the
  // matching keys and look each one up again.
  for (const auto& e : batch) {
    std::vector<uint64_t> keys;
    for (const auto& [key, entry] : listeners_) {
      if (entry.first == e.execution_id) keys.push_back(key);
    }
    for (uint64_t key : keys) {
      auto it = listeners_.find(key);
      if (it != listeners_.end()) it->second.second(e);
    }
  }
}

void TransitionLog::CommitSoon() {
  if (commit_posted_ || pending_.empty()) return;
  commit_posted_ = true;
  boost::asio::post(io_, [this, alive = std::weak_ptr<int>(lifetime_)] {
    if (alive.expired()) return;
    commit_posted_ = false;
    // A failure is on stderr already (failed for good) or retried (busy).
    (void)Commit(journal::Durability::kCrashSafe);
  });
}

void TransitionLog::ArmRetry() {
  if (retry_armed_) return;
  retry_armed_ = true;
  // Each attempt itself waits up to the busy timeout; this short pause only lets the event
  // loop serve other work in between.
  retry_timer_.expires_after(std::chrono::milliseconds(20));
  retry_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: the log may already be gone
    retry_armed_ = false;
    if (Status s = Commit(journal::Durability::kDurable); !s.ok()) {
      spdlog::warn("journal still unavailable, retrying: {}", s.message());
    }
  });
}

uint64_t TransitionLog::Subscribe(const std::string& execution_id, Listener listener) {
  uint64_t key = next_key_++;
  listeners_.emplace(key, std::make_pair(execution_id, std::move(listener)));
  return key;
}

void TransitionLog::Unsubscribe(uint64_t key) { listeners_.erase(key); }

}  // namespace warden::lifecycle

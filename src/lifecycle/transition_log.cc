#include "lifecycle/transition_log.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>
#include <iterator>

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

TransitionLog::TransitionLog(journal::Journal& journal, boost::asio::io_context& io,
                             journal::WriterOptions writer_options)
    : io_(io),
      linger_timer_(io),
      writer_(std::make_unique<journal::JournalWriter>(journal, writer_options)) {
  writer_->SetOnWritable([this, alive = std::weak_ptr<int>(lifetime_)] {
    boost::asio::post(io_, [this, alive] {
      if (alive.expired()) return;
      if (on_writable_) on_writable_();
    });
  });
}

TransitionLog::~TransitionLog() {
  Commit(journal::Durability::kCrashSafe);
  writer_.reset();  // commits what is queued, as far as the journal lets it
  lifetime_.reset();
  Drain();
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

journal::JournalWriter::Ticket TransitionLog::Submit(std::vector<journal::Event> events,
                                                     journal::Durability durability, Done done,
                                                     bool wake) {
  if (!work_) work_.emplace(io_.get_executor());
  auto ticket = writer_->Submit(
      std::move(events), durability,
      [this, alive = std::weak_ptr<int>(lifetime_)] {
        boost::asio::post(io_, [this, alive] {
          if (!alive.expired()) Drain();
        });
      },
      wake);
  in_flight_.push_back(InFlight{ticket, std::move(done), {}});
  return ticket;
}

void TransitionLog::Commit(journal::Durability durability, Done done) {
  if (pending_.empty()) {
    if (done) boost::asio::post(io_, [done] { done(Status::Ok()); });
    return;
  }
  std::vector<journal::Event> batch;
  batch.swap(pending_);
  Submit(std::move(batch), durability, std::move(done), /*wake=*/true);
}

Status TransitionLog::CommitRequest(size_t mark, journal::Durability durability) {
  mark = std::min(mark, pending_.size());
  std::vector<journal::Event> request(
      std::make_move_iterator(pending_.begin() + static_cast<std::ptrdiff_t>(mark)),
      std::make_move_iterator(pending_.end()));
  pending_.resize(mark);
  Status refused = writer_->BusyStatus();
  if (!pending_.empty()) {
    std::vector<journal::Event> before;
    before.swap(pending_);
    Submit(std::move(before), durability, nullptr, /*wake=*/!refused.ok() || request.empty());
  }
  if (refused.ok()) {
    if (request.empty()) return Status::Ok();
    // Not woken: Wait commits it on this thread unless the writer thread is at work.
    auto ticket = Submit(std::move(request), durability, nullptr, /*wake=*/false);
    refused = writer_->Wait(ticket, /*withdraw=*/true).value_or(Status::Ok());
    Drain();
    if (!ticket->withdrawn) return refused;
    request = std::move(ticket->events);
  }
  for (const auto& e : request) {
    spdlog::warn("refused while the journal is busy, withdrawn: {} {}", e.execution_id, e.kind);
  }
  return refused;
}

std::optional<Status> TransitionLog::CommitBounded(journal::Durability durability) {
  if (pending_.empty()) return Status::Ok();
  std::vector<journal::Event> batch;
  batch.swap(pending_);
  auto ticket = Submit(std::move(batch), durability, nullptr, /*wake=*/false);
  if (writer_->busy()) return std::nullopt;  // the writer thread waits for the lock with it
  std::optional<Status> s = writer_->Wait(ticket, /*withdraw=*/false);
  Drain();
  return s;
}

void TransitionLog::CommitLingering(std::chrono::microseconds linger, Done done) {
  if (pending_.empty()) {
    if (done) boost::asio::post(io_, [done] { done(Status::Ok()); });
    return;
  }
  std::vector<journal::Event> batch;
  batch.swap(pending_);
  Submit(std::move(batch), journal::Durability::kCrashSafe, std::move(done), /*wake=*/false);
  if (linger_armed_) return;  // the armed wake-up covers this batch too
  linger_armed_ = true;
  linger_timer_.expires_after(linger);
  linger_timer_.async_wait(
      [this, alive = std::weak_ptr<int>(lifetime_)](boost::system::error_code) {
        if (alive.expired()) return;
        linger_armed_ = false;
        // Whatever a commit of the loop has not taken along by now, the writer thread takes.
        if (!in_flight_.empty()) writer_->Wake();
      });
}

void TransitionLog::WhenCommitted(Done done) {
  if (!pending_.empty()) {
    Commit(journal::Durability::kCrashSafe, std::move(done));
  } else if (in_flight_.empty()) {
    boost::asio::post(io_, [done = std::move(done)] { done(Status::Ok()); });
  } else {
    in_flight_.back().after.push_back(std::move(done));
  }
}

void TransitionLog::WaitIdle() {
  Commit(journal::Durability::kCrashSafe);
  for (const InFlight& f : in_flight_) {
    if (!writer_->Wait(f.ticket, /*withdraw=*/false)) break;  // busy: the rest must wait
  }
  Drain();
}

void TransitionLog::Drain() {
  if (draining_) return;  // a listener committed: the loop below carries on with it
  draining_ = true;
  while (!in_flight_.empty() && (!writer_ || writer_->decided(in_flight_.front().ticket))) {
    InFlight head = std::move(in_flight_.front());
    in_flight_.pop_front();
    journal::JournalWriter::Batch& batch = *head.ticket;
    if (!batch.withdrawn) {
      if (!batch.status.ok()) {
        // Safety beats bookkeeping: the daemon goes on stopping what runs, and what it
        // could not journal is at least on stderr.
        LogNotJournaled(batch.status, batch.events);
        const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
        for (auto& e : batch.events) {
          e.seq = 0;
          if (e.at_ms == 0) e.at_ms = now_ms;
        }
      }
      Notify(batch.events);
    }
    if (head.done) head.done(batch.status);
    for (Done& after : head.after) after(batch.status);
  }
  if (in_flight_.empty()) work_.reset();
  draining_ = false;
}

void TransitionLog::Notify(const std::vector<journal::Event>& batch) {
  for (const auto& e : batch) {
    if (e.seq == 0 || e.execution_id.empty()) continue;
    int64_t& seq = committed_seq_[e.execution_id];
    if (e.seq > seq) seq = e.seq;
  }
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
    Commit(journal::Durability::kCrashSafe);
  });
}

uint64_t TransitionLog::Subscribe(const std::string& execution_id, Listener listener) {
  uint64_t key = next_key_++;
  listeners_.emplace(key, std::make_pair(execution_id, std::move(listener)));
  return key;
}

void TransitionLog::Unsubscribe(uint64_t key) { listeners_.erase(key); }

}  // namespace warden::lifecycle

#include "journal/journal_writer.h"

#include <algorithm>
#include <utility>

namespace warden::journal {

using std::chrono::steady_clock;

JournalWriter::JournalWriter(Journal& journal, WriterOptions options)
    : journal_(journal), options_(options), thread_([this] { Run(); }) {}

JournalWriter::~JournalWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  queued_cv_.notify_all();
  thread_.join();
}

JournalWriter::Ticket JournalWriter::Submit(std::vector<Event> events, Durability durability,
                                            Done done, bool wake) {
  auto ticket = std::make_shared<Batch>();
  ticket->events = std::move(events);
  ticket->durability = durability;
  ticket->done = std::move(done);
  {
    std::lock_guard lock(mu_);
    queue_.push_back(ticket);
  }
  if (wake) queued_cv_.notify_one();
  return ticket;
}

bool JournalWriter::decided(const Ticket& ticket) const {
  std::lock_guard lock(mu_);
  return ticket->state == Batch::State::kDecided;
}

std::optional<Status> JournalWriter::Wait(const Ticket& ticket, bool withdraw) {
  std::unique_lock lock(mu_);
  for (;;) {
    if (ticket->state == Batch::State::kDecided) return ticket->status;
    if (ticket->state == Batch::State::kQueued && !committing_ && !lock_wait_since_ && !stopping_) {
      std::vector<Ticket> group(queue_.begin(), queue_.end());
      queue_.clear();
      for (const Ticket& t : group) t->state = Batch::State::kCommitting;
      committing_ = true;
      CommitGroup(group, lock, /*caller=*/true);
      committing_ = false;
      if (!queue_.empty()) queued_cv_.notify_one();
      continue;
    }
    if (lock_wait_since_ && steady_clock::now() - *lock_wait_since_ >= options_.lock_bound) {
      if (!withdraw) return std::nullopt;
      if (ticket->state == Batch::State::kQueued) {
        queue_.erase(std::find(queue_.begin(), queue_.end(), ticket));
        ticket->withdrawn = true;
        Decide(ticket, BusyStatusLocked());
        Status status = ticket->status;
        Done done = std::move(ticket->done);
        lock.unlock();
        if (done) done();
        return status;
      }
      ticket->withdraw_requested = true;  // the writer drops it before its next attempt
    }
    decided_cv_.wait_for(lock, options_.lock_slice);
  }
}

bool JournalWriter::busy() const {
  std::lock_guard lock(mu_);
  return lock_wait_since_ && steady_clock::now() - *lock_wait_since_ >= options_.lock_bound;
}

Status JournalWriter::BusyStatus() const {
  std::lock_guard lock(mu_);
  if (!lock_wait_since_ || steady_clock::now() - *lock_wait_since_ < options_.lock_bound) {
    return Status::Ok();
  }
  return BusyStatusLocked();
}

Status JournalWriter::BusyStatusLocked() const {
  const auto held = std::chrono::duration_cast<std::chrono::milliseconds>(
      steady_clock::now() - lock_wait_since_.value_or(steady_clock::now()));
  return Status::Unavailable(
      "the journal is busy: another connection has held its write lock for " +
      std::to_string(held.count()) + " ms");
}

void JournalWriter::Decide(const Ticket& ticket, Status status) {
  ticket->state = Batch::State::kDecided;
  ticket->status = std::move(status);
}

void JournalWriter::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    queued_cv_.wait(
        lock, [&] { return !committing_ && (stopping_ || !queue_.empty() || lock_wait_since_); });
    committing_ = true;
    RunOnce(lock);
    committing_ = false;
    decided_cv_.notify_all();  // a waiter may commit the next batches itself
    if (stopping_ && queue_.empty()) return;
  }
}

void JournalWriter::RunOnce(std::unique_lock<std::mutex>& lock) {
  if (!queue_.empty()) {
    std::vector<Ticket> group(queue_.begin(), queue_.end());
    queue_.clear();
    for (const Ticket& t : group) t->state = Batch::State::kCommitting;
    CommitGroup(group, lock);
    return;
  }
  if (stopping_) return;
  // Busy with nothing left to write (every waiting batch was withdrawn): keep watching the
  // lock, so that busy() ends, and new work is let in, once it is released.
  lock.unlock();
  Status probe = journal_.ProbeWriteLock(options_.lock_slice);
  const bool still_busy = !probe.ok() && journal_.health().ok();
  lock.lock();
  if (still_busy) return;
  lock_wait_since_.reset();
  decided_cv_.notify_all();
  if (probe.ok() && on_writable_) {
    lock.unlock();
    on_writable_();
    lock.lock();
  }
}

void JournalWriter::CommitGroup(std::vector<Ticket>& group, std::unique_lock<std::mutex>& lock,
                                bool caller) {
  std::vector<Done> callbacks;
  auto run_callbacks = [&] {
    lock.unlock();
    for (Done& done : callbacks) {
      if (done) done();
    }
    callbacks.clear();
    lock.lock();
  };
  for (;;) {
    for (auto it = group.begin(); it != group.end();) {
      if (!(*it)->withdraw_requested) {
        ++it;
        continue;
      }
      (*it)->withdrawn = true;
      Decide(*it, BusyStatusLocked());
      callbacks.push_back(std::move((*it)->done));
      it = group.erase(it);
    }
    if (!callbacks.empty()) {
      decided_cv_.notify_all();
      run_callbacks();
    }
    if (group.empty()) return;

    // One transaction for the whole group; the events go back to their batches after it.
    std::vector<Event> all;
    Durability durability = Durability::kCrashSafe;
    for (const Ticket& t : group) {
      if (t->durability == Durability::kDurable) durability = Durability::kDurable;
      std::move(t->events.begin(), t->events.end(), std::back_inserter(all));
    }
    lock.unlock();
    Result<int64_t> r = journal_.Append(all, durability, options_.lock_slice);
    const bool lock_held =
        !r.ok() && r.status().code() == StatusCode::kUnavailable && journal_.health().ok();
    lock.lock();
    auto from = all.begin();
    for (const Ticket& t : group) {
      std::move(from, from + static_cast<std::ptrdiff_t>(t->events.size()), t->events.begin());
      from += static_cast<std::ptrdiff_t>(t->events.size());
    }

    if (lock_held) {
      const auto now = steady_clock::now();
      if (!lock_wait_since_) lock_wait_since_ = now;
      if (caller) {
        // The writer thread waits for the lock from here on; the caller only waits.
        for (auto it = group.rbegin(); it != group.rend(); ++it) {
          (*it)->state = Batch::State::kQueued;
          queue_.push_front(*it);
        }
        decided_cv_.notify_all();
        return;
      }
      if (stopping_ && now - *lock_wait_since_ >= options_.drain_limit) {
        for (const Ticket& t : group) {
          Decide(t, BusyStatusLocked());
          callbacks.push_back(std::move(t->done));
        }
        decided_cv_.notify_all();
        run_callbacks();
        return;
      }
      decided_cv_.notify_all();  // waiters look at the bound again
      continue;
    }
    if (!r.ok() && r.status().code() == StatusCode::kInvalidArgument && group.size() > 1) {
      // One batch's event was refused: the others are not to blame, so each goes alone.
      for (size_t k = 0; k < group.size(); ++k) {
        std::vector<Ticket> alone{group[k]};
        CommitGroup(alone, lock, caller);
        if (group[k]->state == Batch::State::kQueued) {
          // Handed back to the writer thread (the lock is held): the rest follow it, in order.
          for (size_t j = k + 1; j < group.size(); ++j) group[j]->state = Batch::State::kQueued;
          queue_.insert(queue_.begin() + 1, group.begin() + static_cast<std::ptrdiff_t>(k) + 1,
                        group.end());
          return;
        }
      }
      return;
    }
    const bool was_busy = lock_wait_since_.has_value();
    lock_wait_since_.reset();
    for (const Ticket& t : group) {
      Decide(t, r.ok() ? Status::Ok() : r.status());
      callbacks.push_back(std::move(t->done));
    }
    decided_cv_.notify_all();
    if (was_busy && r.ok() && on_writable_) callbacks.push_back(on_writable_);
    run_callbacks();
    return;
  }
}

}  // namespace warden::journal

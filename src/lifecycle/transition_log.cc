#include "lifecycle/transition_log.h"

#include <spdlog/spdlog.h>

namespace warden::lifecycle {

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
  std::vector<journal::Event> batch;
  batch.swap(pending_);
  auto r = journal_.Append(batch, durability);
  if (!r.ok()) {
    // Safety beats bookkeeping: the daemon goes on stopping what runs, and what it could not
    // journal is at least on stderr.
    for (const auto& e : batch) {
      spdlog::error("not journaled ({}): {} {} {} {} {}", r.status().message(), e.execution_id,
                    e.node_id, e.attempt, e.kind, e.payload);
    }
    return r.status();
  }
  if (listeners_.empty()) return Status::Ok();
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
  return Status::Ok();
}

uint64_t TransitionLog::Subscribe(const std::string& execution_id, Listener listener) {
  uint64_t key = next_key_++;
  listeners_.emplace(key, std::make_pair(execution_id, std::move(listener)));
  return key;
}

void TransitionLog::Unsubscribe(uint64_t key) { listeners_.erase(key); }

}  // namespace warden::lifecycle

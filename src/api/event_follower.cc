#include "api/event_follower.h"

#include <boost/asio/post.hpp>

#include "api/json_codec.h"
#include "base/json_text.h"

namespace warden::api {

Result<std::shared_ptr<EventFollower>> EventFollower::Open(boost::asio::io_context& io,
                                                           lifecycle::ExecutionManager& manager,
                                                           const std::string& id,
                                                           int64_t after_seq) {
  auto execution = manager.Get(id);
  if (!execution.ok()) return execution.status();
  std::shared_ptr<EventFollower> follower(new EventFollower(io, after_seq));
  // Subscribe first, read second: an event committed in between arrives through both and is
  // sent once, thanks to seq.
  std::weak_ptr<EventFollower> weak = follower;
  follower->subscription_ = manager.Subscribe(id, [weak](const journal::Event& event) {
    if (auto self = weak.lock()) self->OnEvent(event);
  });
  auto rows = manager.ReadEvents(id, after_seq);
  if (!rows.ok()) return rows.status();
  for (const journal::Event& event : *rows) follower->OnEvent(event);
  // An execution that had ended when this call began has nothing more to send, even when
  // its terminal event is at or before after_seq (or the failed journal never recorded it).
  if (!lifecycle::IsActive(execution->status)) follower->ended_ = true;
  return follower;
}

EventFollower::~EventFollower() = default;

void EventFollower::Start(std::function<void(std::string)> on_chunk, std::function<void()> on_end) {
  on_chunk_ = std::move(on_chunk);
  on_end_ = std::move(on_end);
  Flush();
}

void EventFollower::OnEvent(const journal::Event& event) {
  // seq 0: an event the failed journal could not record, sent as it happened.
  if (ended_ || (event.seq != 0 && event.seq <= last_seq_)) return;
  if (event.seq != 0) last_seq_ = event.seq;
  AppendJson(EventToJson(event), pending_);
  pending_ += '\n';
  if (IsTerminalEventKind(event.kind)) ended_ = true;
  Flush();
}

void EventFollower::Flush() {
  // Always posted: the callbacks never run inside Start or inside the manager's listener
  // call, and the subscription is never destroyed from inside its own listener.
  if (!on_chunk_ || flush_posted_) return;
  flush_posted_ = true;
  boost::asio::post(io_, [weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self) return;
    self->flush_posted_ = false;
    if (!self->pending_.empty()) self->on_chunk_(std::exchange(self->pending_, {}));
    if (self->ended_ && !self->end_sent_) {
      self->end_sent_ = true;
      self->subscription_.reset();
      self->on_end_();
    }
  });
}

}  // namespace warden::api

// EventFollower: the body of `GET /api/executions/{id}/events?follow=true` — the
// execution's journal rows as newline-delimited JSON, first those already committed, then
// each one as it commits, ending after the execution's terminal event.
//
// No row is lost or repeated: the follower subscribes to the manager before it reads the
// journal, and drops every event whose seq it has already sent. Threading: the io thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "api/http_message.h"
#include "base/status.h"
#include "journal/event.h"
#include "lifecycle/execution_manager.h"

namespace warden::api {

class EventFollower final : public ChunkStream, public std::enable_shared_from_this<EventFollower> {
 public:
  // Follows execution `id` from seq `after_seq` (exclusive). NotFound for an unknown
  // execution; the journal's error if its rows cannot be read. `manager` must outlive the
  // follower.
  static Result<std::shared_ptr<EventFollower>> Open(boost::asio::io_context& io,
                                                     lifecycle::ExecutionManager& manager,
                                                     const std::string& id, int64_t after_seq);
  ~EventFollower() override;

  void Start(std::function<void(std::string)> on_chunk, std::function<void()> on_end) override;

 private:
  explicit EventFollower(boost::asio::io_context& io, int64_t after_seq)
      : io_(io), last_seq_(after_seq) {}
  void OnEvent(const journal::Event& event);
  void Flush();  // hands `pending_` (and the end, once reached) to the callbacks

  boost::asio::io_context& io_;
  std::unique_ptr<lifecycle::ExecutionManager::Subscription> subscription_;
  int64_t last_seq_;       // the highest seq sent or queued
  std::string pending_;    // lines not yet handed to on_chunk
  bool ended_ = false;     // the terminal event was queued
  bool end_sent_ = false;  // on_end was called
  bool flush_posted_ = false;
  std::function<void(std::string)> on_chunk_;  // empty until Start
  std::function<void()> on_end_;
};

}  // namespace warden::api

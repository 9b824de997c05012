// DaemonClient: HTTP/1.1 to wardend over its Unix socket (Boost.Beast; the CLI's only
// translation unit that includes it).
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace warden::cli {

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
};

// Unavailable with "cannot connect to wardend at PATH: <reason>": the exit status 69 case.
Status CannotConnect(const std::string& socket_path, std::string_view reason);

class DaemonClient {
 public:
  explicit DaemonClient(std::string socket_path) : socket_path_(std::move(socket_path)) {}

  // Sends one request on a new connection and reads the whole answer (blocking). A body is
  // sent as application/json. Unavailable (CannotConnect) when the daemon cannot be reached
  // or hangs up; the reply otherwise, whatever its status. A signal that arrives meanwhile
  // does not break the call (it runs on a private io_context, never in a blocking syscall).
  Result<HttpReply> Call(std::string_view method, std::string_view target,
                         std::string_view body = {}) const;
  // The same without blocking: sends the request on `io` and calls `on_reply` once, on `io`,
  // with what Call would return.
  void AsyncCall(boost::asio::io_context& io, std::string_view method, std::string_view target,
                 std::string_view body, std::function<void(Result<HttpReply>)> on_reply) const;

  const std::string& socket_path() const { return socket_path_; }

 private:
  std::string socket_path_;
};

// Reads a streamed answer (`events?follow=true`) line by line on `io`, without blocking it.
class LineStream {
 public:
  // `on_line` gets each complete line (without '\n'). `on_end` runs once: Ok when the daemon
  // ended the stream, the error body's message for a non-200 answer, Unavailable when the
  // connection failed or broke. Neither runs after Cancel() or destruction.
  static std::shared_ptr<LineStream> Start(boost::asio::io_context& io,
                                           const std::string& socket_path, std::string target,
                                           std::function<void(std::string_view)> on_line,
                                           std::function<void(Status)> on_end);
  virtual ~LineStream() = default;
  virtual void Cancel() = 0;
};

// The message of an API error body (`{"error":{"message":…}}`), or the body itself.
std::string ErrorMessage(const HttpReply& reply);

}  // namespace warden::cli

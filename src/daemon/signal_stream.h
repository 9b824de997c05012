// SignalStream: the daemon's signals (SIGTERM, SIGINT, SIGHUP) read from a signalfd on the
// io_context, instead of through an asynchronous handler.
//
// The signals are blocked in the constructing thread, and so in every thread it creates
// afterwards; construct it in main() before any other thread exists. A signal sent before
// the loop runs stays pending and is read once it does. Children get their mask reset before
// exec (process layer), so the block does not leak into nodes.
//
// Why not boost::asio::signal_set: a handler that runs asynchronously can be delayed by the
// thread it lands on (sanitizer runtimes defer it while that thread is inside a blocking
// call, sometimes for good); a signalfd is just another readable descriptor for epoll.
//
// Threading: the io_context thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <initializer_list>

#include "base/status.h"

namespace warden::daemon {

class SignalStream {
 public:
  // Blocks `signals` and opens the signalfd. IoError if the kernel refuses.
  static Result<std::unique_ptr<SignalStream>> Open(boost::asio::io_context& io,
                                                    std::initializer_list<int> signals);

  // Calls `on_signal` with each signal number as it arrives, until the stream is destroyed.
  void Listen(std::function<void(int signo)> on_signal);

 private:
  SignalStream(boost::asio::io_context& io, int fd) : fd_(io, fd) {}
  void ReadNext();

  boost::asio::posix::stream_descriptor fd_;
  std::function<void(int)> on_signal_;
};

}  // namespace warden::daemon

#include "daemon/signal_stream.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

namespace warden::daemon {

Result<std::unique_ptr<SignalStream>> SignalStream::Open(boost::asio::io_context& io,
                                                         std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  if (int err = pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0) {
    return Status::FromErrno("blocking the daemon's signals", err);
  }
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return Status::FromErrno("signalfd", errno);
  return std::unique_ptr<SignalStream>(new SignalStream(io, fd));
}

void SignalStream::Listen(std::function<void(int signo)> on_signal) {
  on_signal_ = std::move(on_signal);
  ReadNext();
}

void SignalStream::ReadNext() {
  fd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                 [this](const boost::system::error_code& ec) {
                   if (ec) return;  // closed: the stream is gone
                   signalfd_siginfo info;
                   while (::read(fd_.native_handle(), &info, sizeof info) ==
                          static_cast<ssize_t>(sizeof info)) {
                     on_signal_(static_cast<int>(info.ssi_signo));
                   }
                   ReadNext();
                 });
}

}  // namespace warden::daemon

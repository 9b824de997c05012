#include "process/output_pipe.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace warden::process {

OutputPipe::OutputPipe(boost::asio::io_context& io, UniqueFd read_end)
    : pipe_(io, read_end.Release()) {
  boost::system::error_code ignored;
  pipe_.non_blocking(true, ignored);  // reads below never wait for a writer
}

std::shared_ptr<OutputPipe> OutputPipe::ToFile(boost::asio::io_context& io, UniqueFd read_end,
                                               std::filesystem::path file, uint64_t cap_bytes,
                                               uint64_t reserve_bytes) {
  std::shared_ptr<OutputPipe> pipe(new OutputPipe(io, std::move(read_end)));
  pipe->path_ = std::move(file);
  pipe->cap_ = cap_bytes;
  pipe->reserve_ = reserve_bytes;
  return pipe;
}

std::shared_ptr<OutputPipe> OutputPipe::ToLines(boost::asio::io_context& io, UniqueFd read_end,
                                                size_t line_max, LineHandler on_line) {
  std::shared_ptr<OutputPipe> pipe(new OutputPipe(io, std::move(read_end)));
  pipe->lines_ = true;
  pipe->line_max_ = line_max;
  pipe->on_line_ = std::move(on_line);
  return pipe;
}

void OutputPipe::Start() { ReadMore(); }

void OutputPipe::ReadMore() {
  // Waits for readiness and reads here, rather than async_read_some: that may read data
  // ahead of running its handler, and DrainAndClose, run in between, would close the file
  // with that data (which comes before what it drains) still in flight. Here the data stays
  // in the pipe until it is consumed, in order.
  pipe_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                   [self = shared_from_this()](boost::system::error_code ec) {
                     if (ec || !self->pipe_.is_open()) return;
                     // Up to 16 buffers per wake-up: a chatty node costs few loop turns,
                     // and still cannot hold the thread for long.
                     ReadResult r = ReadResult::kMore;
                     for (int i = 0; i < 16 && r == ReadResult::kMore; ++i) r = self->ReadOnce();
                     if (r != ReadResult::kEnd) self->ReadMore();
                   });
}

OutputPipe::ReadResult OutputPipe::ReadOnce() {
  for (;;) {
    ssize_t n = ::read(pipe_.native_handle(), buffer_.data(), buffer_.size());
    if (n > 0) {
      Consume(buffer_.data(), static_cast<size_t>(n));
      return ReadResult::kMore;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return ReadResult::kEmpty;
    eof_ = true;  // end of file, or an error that will not go away
    return ReadResult::kEnd;
  }
}

void OutputPipe::DrainAndClose() {
  if (!pipe_.is_open()) return;
  while (!eof_ && ReadOnce() == ReadResult::kMore) {
  }
  boost::system::error_code ignored;
  pipe_.close(ignored);
  file_.Reset();
}

bool OutputPipe::OpenFile() {
  if (file_.valid()) return true;
  if (open_failed_ || path_.empty()) return false;
  file_ =
      UniqueFd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640));
  if (file_.valid()) return true;
  open_failed_ = true;
  spdlog::warn("cannot create capture file {}: {}; this stream's output is dropped", path_.string(),
               std::strerror(errno));
  return false;
}

bool OutputPipe::SpaceLow(size_t incoming) {
  since_space_check_ += incoming;
  if (reserve_ == 0 || (space_checked_ && since_space_check_ < kSpaceCheckBytes)) {
    return space_low_;
  }
  space_checked_ = true;
  since_space_check_ = 0;
  struct statvfs st {};
  if (::fstatvfs(file_.get(), &st) != 0) return space_low_ = false;
  const uint64_t free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  const bool low = free_bytes < reserve_;
  if (low != space_low_) {
    if (low) {
      spdlog::warn(
          "capture file {}: {} bytes free, under the reserve of {}: output is dropped "
          "until space is freed, so that the journal beside it keeps room",
          path_.string(), free_bytes, reserve_);
    } else {
      spdlog::info("capture file {}: space freed, output kept again", path_.string());
    }
  }
  return space_low_ = low;
}

void OutputPipe::Consume(const char* data, size_t size) {
  if (!lines_) {
    uint64_t room = kept_ < cap_ ? cap_ - kept_ : 0;
    size_t keep = size < room ? size : static_cast<size_t>(room);
    if (keep > 0 && !OpenFile()) keep = 0;
    if (keep > 0 && SpaceLow(size)) keep = 0;
    // A regular file: write(2) does not block on the event loop for long, and a failed
    // write (disk full) only loses output, never the node. What could not be written is
    // counted as dropped: kept_ is always what the file holds.
    size_t done = 0;
    while (done < keep && file_.valid()) {
      ssize_t w = ::write(file_.get(), data + done, keep - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      done += static_cast<size_t>(w);
    }
    kept_ += done;
    dropped_ += size - done;
    return;
  }
  for (size_t i = 0; i < size; ++i) {
    char c = data[i];
    if (c != '\n') {
      if (overlong_) continue;
      partial_.push_back(c);
      if (partial_.size() > line_max_) {
        overlong_ = true;
        partial_.clear();
      }
      continue;
    }
    std::string_view line(partial_);
    size_t eq = overlong_ ? std::string_view::npos : line.find('=');
    if (eq != std::string_view::npos && eq > 0) {
      kept_ += line.size() + 1;
      on_line_(line.substr(0, eq), line.substr(eq + 1));
    } else {
      // Ignored, but handed on with an empty key so that the owner can count it.
      dropped_ += line.size() + 1;
      on_line_({}, line);
    }
    overlong_ = false;
    partial_.clear();
  }
}

}  // namespace warden::process

// OutputPipe: the daemon's end of one pipe from a node (stdout, stderr or the notify fd),
// read asynchronously on the io_context thread.
//
//   file mode   appends to a capture file up to a byte cap, then counts what it drops; the
//               node is never blocked (the pipe is always drained).
//   line mode   splits `key=value` lines and hands each to a callback, malformed ones too
//               (with an empty key), so that the owner can count them.
//
// Thread: the io_context thread only. The object must be held by shared_ptr while reading.
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "process/unique_fd.h"

namespace warden::process {

class OutputPipe : public std::enable_shared_from_this<OutputPipe> {
 public:
  // A malformed line (no '=', nothing before it, or longer than line_max) comes with an
  // empty key, and as `value` the line (empty for one too long to keep).
  using LineHandler = std::function<void(std::string_view key, std::string_view value)>;

  // File mode: what the node writes goes to `file`, created (truncated) when the first byte
  // comes, so a node that writes nothing costs no file. An empty path discards. A file that
  // cannot be created loses the output (counted as dropped, logged once), never the node.
  // While the file's filesystem has less than `reserve_bytes` free (looked at every MiB of
  // output), output is dropped too, and kept again once space is freed.
  static std::shared_ptr<OutputPipe> ToFile(boost::asio::io_context& io, UniqueFd read_end,
                                            std::filesystem::path file, uint64_t cap_bytes,
                                            uint64_t reserve_bytes = 0);
  // Line mode: `on_line` is called for every complete line: `key=value` for a line of at
  // most `line_max` bytes with a non-empty key before its first '=', else key empty.
  static std::shared_ptr<OutputPipe> ToLines(boost::asio::io_context& io, UniqueFd read_end,
                                             size_t line_max, LineHandler on_line);

  // Starts reading until end of file.
  void Start();
  // Reads whatever is buffered without waiting, then closes: called once the tree is empty,
  // so no writer is left (a writer that escaped the tree may still hold the pipe; it will
  // get EPIPE).
  void DrainAndClose();

  uint64_t bytes_kept() const { return kept_; }
  uint64_t bytes_dropped() const { return dropped_; }

 private:
  OutputPipe(boost::asio::io_context& io, UniqueFd read_end);
  void Consume(const char* data, size_t size);
  void ReadMore();
  enum class ReadResult { kMore, kEmpty, kEnd };
  // One non-blocking read into buffer_, consumed: data (kMore), nothing now (kEmpty), or
  // end of file (kEnd, sets eof_).
  ReadResult ReadOnce();

  // Opens path_ on the first byte to keep; false when it cannot be.
  bool OpenFile();
  // True while the file's filesystem is under reserve_ (looked at again every
  // kSpaceCheckBytes of output).
  bool SpaceLow(size_t incoming);
  static constexpr uint64_t kSpaceCheckBytes = 1 << 20;

  boost::asio::posix::stream_descriptor pipe_;
  std::filesystem::path path_;
  UniqueFd file_;
  bool open_failed_ = false;
  uint64_t cap_ = 0;
  uint64_t reserve_ = 0;
  uint64_t since_space_check_ = 0;
  bool space_checked_ = false;
  bool space_low_ = false;
  uint64_t kept_ = 0;
  uint64_t dropped_ = 0;
  bool eof_ = false;  // the async reader saw end of file: nothing is left to drain
  bool lines_ = false;
  size_t line_max_ = 0;
  bool overlong_ = false;  // inside a line longer than line_max_: skip to its end
  std::string partial_;
  LineHandler on_line_;
  std::array<char, 65536> buffer_;
};

}  // namespace warden::process

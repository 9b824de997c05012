// libFuzzer target: what a node writes to WARDEN_NOTIFY_FD, through the runner's line
// splitter (OutputPipe in line mode, reading a real pipe) and the `cost_usd=` value parse
// the lifecycle applies to each line (ParseCostUsd). The first input byte sets the longest
// line (1..256 bytes, so that short inputs reach the overlong-line path; the daemon's is
// 4096), the second the size of each write; the rest is what the node writes. Each line
// handed on must keep output_pipe.h's promise, and every accepted cost is finite and >= 0.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "lifecycle/execution.h"
#include "process/output_pipe.h"
#include "process/unique_fd.h"

namespace {

void RunReady(boost::asio::io_context& io) {
  io.restart();
  while (io.poll() > 0) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using warden::process::OutputPipe;
  using warden::process::UniqueFd;
  static boost::asio::io_context io;
  if (size < 2) return 0;
  const size_t line_max = size_t{data[0]} + 1;
  const size_t chunk = size_t{data[1]} + 1;
  data += 2;
  size -= 2;

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) __builtin_trap();
  UniqueFd write_end(fds[1]);
  auto on_line = [line_max](std::string_view key, std::string_view value) {
    if (key.find_first_of("=\n") != std::string_view::npos) __builtin_trap();
    if (value.find('\n') != std::string_view::npos) __builtin_trap();
    const size_t line = key.empty() ? value.size() : key.size() + 1 + value.size();
    if (line > line_max) __builtin_trap();
    std::optional<double> cost = warden::lifecycle::ParseCostUsd(value);
    if (cost && (!std::isfinite(*cost) || *cost < 0)) __builtin_trap();
  };
  auto pipe = OutputPipe::ToLines(io, UniqueFd(fds[0]), line_max, on_line);
  pipe->Start();
  // Writes of at most 256 bytes, each read before the next: the pipe never fills.
  for (size_t done = 0; done < size; done += chunk) {
    const size_t n = std::min(chunk, size - done);
    if (::write(write_end.get(), data + done, n) != static_cast<ssize_t>(n)) __builtin_trap();
    RunReady(io);
  }
  write_end.Reset();
  pipe->DrainAndClose();
  RunReady(io);  // the cancelled wait lets go of the pipe
  return 0;
}

// OutputKeeper: a small process that keeps node output pipes open when the daemon dies.
//
// A node writes its stdout, stderr and notify lines into pipes the daemon reads. If the
// daemon is killed, those read ends would close with it, and the node's next write would
// get SIGPIPE: a node would die because the daemon did. The keeper holds a copy of every
// live pipe's read end (passed over a Unix socket with SCM_RIGHTS), and does nothing else
// while the daemon lives: it never reads, so the daemon's capture is unchanged.
//
// When the daemon's end of the socket closes without a goodbye (a crash), the keeper
// drains every pipe it holds into the node's capture file (appending, up to the same cap;
// notify lines are discarded), until every writer is gone, which crash recovery brings
// about by terminating the orphans gracefully; then it exits. After a clean shutdown it is
// told to exit and closes everything at once.
//
// The keeper is forked, not exec'd: Start must be called while the calling process has a
// single thread (early in main). It runs in a session of its own, with default signal
// handling, and keeps no descriptor of the daemon's but its socket (so it never holds the
// data directory's lock, the journal or the listening socket).
//
// Threading: the handle's methods are called from one thread at a time (the io thread).
// Failures to reach the keeper are returned and do not affect the node: the keeper is a
// safety net, not part of the capture path.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "process/unique_fd.h"

namespace warden::process {

class OutputKeeper {
 public:
  // Forks the keeper. Errors: the socketpair or the fork failed.
  static Result<std::unique_ptr<OutputKeeper>> Start();
  // A clean goodbye: the keeper closes every pipe it holds and exits.
  ~OutputKeeper();
  OutputKeeper(const OutputKeeper&) = delete;
  OutputKeeper& operator=(const OutputKeeper&) = delete;

  // Hands the keeper copies of one node attempt's pipe read ends, `token` naming them for
  // Drop. files[i] is where pipe i's bytes go if the daemon dies (empty: discarded, as for
  // the notify pipe), at most `cap_bytes` per file. At most 4 pipes. Errors: IoError when the
  // keeper cannot be reached (it died).
  Status Hold(uint64_t token, std::span<const int> read_ends, std::span<const std::string> files,
              uint64_t cap_bytes);
  // The daemon is done with `token`'s pipes: the keeper closes its copies. The drop rides on
  // the next Hold (or goes once 256 are pending, or on Flush), so a launch costs one message.
  Status Drop(uint64_t token);
  // Sends the drops still pending now.
  Status Flush();

  // For tests: closes the socket without a goodbye, as a crash of the daemon would.
  void AbandonForTest();

  pid_t pid() const { return pid_; }

 private:
  OutputKeeper(pid_t pid, UniqueFd socket) : pid_(pid), socket_(std::move(socket)) {}
  Status Send(const std::string& header, std::span<const int> fds);

  pid_t pid_;
  UniqueFd socket_;
  std::vector<uint64_t> dropped_;  // drops not sent yet
};

}  // namespace warden::process

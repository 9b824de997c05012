// SocketFile: the daemon's Unix socket in the file system — where it goes by default, the
// permissions it gets, and what happens to a socket file left behind.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/status.h"

namespace warden::daemon {

// The default socket: /run/warden/wardend.sock for root, else
// $XDG_RUNTIME_DIR/warden/wardend.sock, else wardend.sock in DefaultDataDir().
std::string DefaultSocketPath();

class SocketFile {
 public:
  // Checks that the socket can be published at `path` without binding anything yet:
  // creates its directory (mode 0755, parents too) if missing and refuses a directory that
  // someone other than the daemon's user (or root) owns or that group or others may write.
  // A socket file there that accepts connections belongs to a live daemon: Conflict naming
  // the path. One that refuses them is stale and is removed. Any other file: Conflict.
  static Result<SocketFile> Prepare(const std::string& path);

  SocketFile(SocketFile&& other) noexcept;
  SocketFile& operator=(SocketFile&&) = delete;
  // Removes the published socket file (if it is still ours) and closes the listening socket
  // if it was never handed over.
  ~SocketFile();

  // Binds a listening socket, gives it mode 0600 (0660 and group `group` when set), and
  // only then makes it appear at the path (bound under a temporary name, then renamed), so a
  // client never sees a socket with the wrong permissions or one that is not yet accepting.
  // Returns the listening descriptor, which the caller then owns. InvalidArgument for an
  // unknown group; IoError otherwise.
  Result<int> Publish(const std::optional<std::string>& group);

  const std::string& path() const { return path_; }

 private:
  explicit SocketFile(std::string path) : path_(std::move(path)) {}
  std::string path_;
  bool published_ = false;
  dev_t dev_ = 0;  // of the published socket file, to remove only our own
  ino_t ino_ = 0;
};

}  // namespace warden::daemon

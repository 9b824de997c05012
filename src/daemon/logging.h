// The daemon's logs: spdlog to stderr and, once the data directory is ours, to a rotating
// file in it (wardend.log, 10 MiB x 3). SIGHUP reopens the file (after an outside rotation).
#pragma once

#include <string>

#include "base/status.h"

namespace warden::daemon {

// Makes "wardend" the default logger, writing to stderr at `level` ("trace" … "off").
// InvalidArgument for an unknown level.
Status SetUpLogging(const std::string& level);

// Adds the rotating file `<data_dir>/wardend.log`. IoError if it cannot be opened (the
// daemon then goes on logging to stderr only).
Status AddLogFile(const std::string& data_dir);

// Closes and reopens the log file (if any); for SIGHUP.
Status ReopenLogFile();

}  // namespace warden::daemon

// DaemonOptions: wardend's command line (api.md, "Command line").
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <variant>

#include "process/containment.h"

namespace warden::daemon {

struct DaemonOptions {
  std::string data_dir;                       // --data-dir (default: DefaultDataDir())
  std::string socket_path;                    // --socket (default: DefaultSocketPath())
  std::optional<std::string> socket_group;    // --socket-group: 0660 and this group
  std::optional<std::string> listen_address;  // --listen ADDR:PORT, the ADDR part
  uint16_t listen_port = 0;
  std::string token_file;                   // --token-file (required with --listen)
  bool allow_remote = false;                // --allow-remote
  int64_t grace_ms = 2000;                  // --grace-ms
  size_t max_running = 0;                   // --max-running (0: no cap)
  process::ContainmentOptions containment;  // --containment, --cgroup-root
  std::string log_level = "info";           // --log-level
};

// Parses wardend's arguments. Returns the options, or the exit status to leave with: 0 after
// --help or --version (printed on `out`), 64 after a usage error (explained on `err`).
std::variant<DaemonOptions, int> ParseDaemonOptions(int argc, const char* const* argv,
                                                    std::ostream& out, std::ostream& err);

}  // namespace warden::daemon

// Containment: how a node's process tree is held, chosen once at start-up.
//
//   cgroup  every node attempt runs in its own cgroup v2 group under a writable root; nothing
//           it forks can leave it (not even setsid plus a double fork); SIGKILL is atomic
//           (cgroup.kill) and pause is the freezer.
//   pgroup  the fallback: every node runs in its own session and process group and the daemon
//           is a child subreaper. Descendants that leave the session are contained only while
//           they keep the cookie in their environment (see local_process_tree.h).
//
// Thread-safe (reads /proc and the cgroup file system).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "base/status.h"

namespace warden::process {

enum class ContainmentMode { kCgroup, kProcessGroup };

// "cgroup" or "pgroup" (what /api/health reports).
std::string_view ContainmentModeName(ContainmentMode mode);

struct ContainmentOptions {
  enum class Request { kAuto, kCgroup, kProcessGroup };
  Request request = Request::kAuto;
  // Directory under which node groups are made. Empty: "<cgroup2 mount><daemon's own group>/
  // warden", from /proc/self/mountinfo and /proc/self/cgroup. Created if missing.
  std::filesystem::path cgroup_root;
};

// Parses "auto", "cgroup" or "pgroup" (the --containment flag).
Result<ContainmentOptions::Request> ParseContainmentRequest(std::string_view text);

struct Containment {
  ContainmentMode mode = ContainmentMode::kProcessGroup;
  std::filesystem::path cgroup_root;  // empty in pgroup mode
  std::string reason;                 // why this mode is in force, for the start-up log
};

// Decides the mode. `kAuto` tries cgroup and falls back to pgroup (saying why in `reason`);
// `kCgroup` fails with Unavailable when no writable cgroup v2 root with cgroup.kill and
// cgroup.freeze exists.
Result<Containment> DetectContainment(const ContainmentOptions& options);

// The cgroup2 mount point from /proc/self/mountinfo, or NotFound.
Result<std::filesystem::path> FindCgroup2Mount();

}  // namespace warden::process

// Scheduling priority: wardend runs a few nice levels ahead of its nodes, so that a host
// whose CPUs its own nodes keep busy still gets exits noticed, next nodes launched, stops
// signalled and requests answered without waiting out a node's time slice.
#pragma once

#include <optional>

namespace warden::daemon {

// Lowers the calling process's nice value (and, where the kernel groups tasks by session,
// its autogroup's) by `levels` below what it was started with. Call while the daemon has
// one thread: threads inherit it. Returns the nice value it was started with, which its
// nodes are to run at, or nothing when it was not allowed to (not root: nodes then inherit
// the daemon's own priority, unchanged).
std::optional<int> RunAheadOfNodes(int levels);

}  // namespace warden::daemon

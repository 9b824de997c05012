// CrashPoint: named places where a test can make the process die as `kill -9` would.
//
// Crash recovery must work from any moment of a crash; some moments (between a launch's
// intent and its identity, between two steps of recovery itself) are too short to hit with
// a signal from outside. A test sets WARDEN_CRASH_POINT=NAME in the daemon's environment,
// and the daemon SIGKILLs itself the first time it reaches CrashPoint("NAME"). Without the
// variable a call costs one comparison of a cached flag.
//
// Names in use: launch.after_intent (the intent is journaled, the process exists, its
// identity is not journaled), recovery.after_found (the findings and the stop request are
// journaled, nothing is signalled), recovery.after_sigterm (every SIGTERM is sent and
// journaled), recovery.before_close (the outcomes are journaled, the executions not
// closed). Thread-safe.
#pragma once

#include <string_view>

namespace warden {

void CrashPoint(std::string_view name);

}  // namespace warden

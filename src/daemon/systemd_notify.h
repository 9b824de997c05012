// NotifySystemd: the sd_notify(3) protocol without libsystemd — one datagram to the socket
// named by $NOTIFY_SOCKET (a path, or an abstract name starting with '@').
#pragma once

#include <string_view>

#include "base/status.h"

namespace warden::daemon {

// Sends `state` (e.g. "READY=1\nMAINPID=123") to $NOTIFY_SOCKET. Ok and does nothing when
// the variable is unset (not started by systemd with Type=notify); IoError if sending fails.
Status NotifySystemd(std::string_view state);

}  // namespace warden::daemon

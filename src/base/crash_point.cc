#include "base/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace warden {

void CrashPoint(std::string_view name) {
  static const std::string wanted = [] {
    const char* value = std::getenv("WARDEN_CRASH_POINT");
    return std::string(value ? value : "");
  }();
  if (wanted.empty() || wanted != name) return;
  ::kill(::getpid(), SIGKILL);
}

}  // namespace warden

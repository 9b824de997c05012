#include "process/process_identity.h"

#include <algorithm>
#include <charconv>

#include "process/pidfd.h"
#include "process/proc_stat.h"

namespace warden::process {

std::string_view IdentityMatchName(IdentityMatch match) {
  switch (match) {
    case IdentityMatch::kSameProcess:
      return "same_process";
    case IdentityMatch::kZombie:
      return "zombie";
    case IdentityMatch::kGone:
      return "gone";
    case IdentityMatch::kPidReused:
      return "pid_reused";
    case IdentityMatch::kHostRebooted:
      return "host_rebooted";
  }
  return "unknown";
}

Cookie ParseEnvironCookie(std::string_view environ) {
  Cookie cookie;
  while (!environ.empty()) {
    std::string_view entry = environ.substr(0, environ.find('\0'));
    environ.remove_prefix(std::min(environ.size(), entry.size() + 1));
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = entry.substr(0, eq), value = entry.substr(eq + 1);
    if (key == kEnvExecutionId) cookie.execution_id = value;
    if (key == kEnvNodeId) cookie.node_id = value;
    if (key == kEnvAttempt) {
      int attempt = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), attempt);
      if (ec == std::errc() && ptr == value.data() + value.size()) cookie.attempt = attempt;
    }
  }
  return cookie;
}

Result<IdentityMatch> ClassifyIdentity(const ProcessIdentity& identity,
                                       const std::filesystem::path& proc_root) {
  Result<std::string> boot_id = ReadBootId(proc_root);
  if (!boot_id.ok()) return boot_id.status();
  if (*boot_id != identity.boot_id) return IdentityMatch::kHostRebooted;
  Result<ProcStat> stat = ReadProcStat(identity.pid, proc_root);
  if (!stat.ok()) {
    if (stat.status().code() == StatusCode::kNotFound) return IdentityMatch::kGone;
    return stat.status();
  }
  if (stat->start_ticks != identity.start_ticks) return IdentityMatch::kPidReused;
  if (stat->exited()) return IdentityMatch::kZombie;
  return IdentityMatch::kSameProcess;
}

Status SignalIdentity(const ProcessIdentity& identity, int signo) {
  Result<std::string> boot_id = ReadBootId();
  if (!boot_id.ok()) return boot_id.status();
  if (*boot_id != identity.boot_id) {
    return Status::Conflict("host rebooted since pid " + std::to_string(identity.pid) +
                            " was recorded; not signalled");
  }
  // Open first, compare second: once the pidfd is held, the process it names cannot be
  // replaced, so a start time read afterwards that matches proves the pidfd names ours.
  Result<UniqueFd> pidfd = OpenPidfd(identity.pid);
  if (!pidfd.ok()) return pidfd.status();
  Result<ProcStat> stat = ReadProcStat(identity.pid);
  if (!stat.ok()) return stat.status();
  if (stat->start_ticks != identity.start_ticks) {
    return Status::Conflict("pid " + std::to_string(identity.pid) +
                            " now belongs to another process (start time " +
                            std::to_string(stat->start_ticks) + ", recorded " +
                            std::to_string(identity.start_ticks) + "); not signalled");
  }
  return SendSignal(*pidfd, signo);
}

}  // namespace warden::process

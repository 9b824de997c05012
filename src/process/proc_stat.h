// ProcStat: the few fields of /proc/PID/stat that process control needs, and the boot id.
//
// All functions are pure readers of /proc (or of a directory laid out like it, for tests) and
// may be called from any thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "base/status.h"

namespace warden::process {

struct ProcStat {
  pid_t pid = 0;
  char state = '?';  // R S D Z T t X I ...; 'Z' and 'X' mean the process has exited
  pid_t ppid = 0;
  pid_t pgrp = 0;
  pid_t session = 0;
  uint64_t start_ticks = 0;  // field 22: clock ticks after boot (10 ms resolution)

  bool exited() const { return state == 'Z' || state == 'X'; }
};

// Parses the text of /proc/PID/stat. The command name (field 2) may contain spaces and ')',
// so the fields are read after the LAST ')'. Returns Corruption on malformed text.
Result<ProcStat> ParseProcStat(std::string_view text);

// Reads /proc/PID/stat under `proc_root`. Returns NotFound when the process does not exist.
Result<ProcStat> ReadProcStat(pid_t pid, const std::filesystem::path& proc_root = "/proc");

// Reads /proc/sys/kernel/random/boot_id (trailing newline removed).
Result<std::string> ReadBootId(const std::filesystem::path& proc_root = "/proc");

}  // namespace warden::process

// libFuzzer target: the parsers of what the kernel writes in /proc and cgroupfs, each given
// the whole input as the file's text: /proc/PID/stat (ParseProcStat), /proc/PID/environ
// (ParseEnvironCookie), cgroup.events, cgroup.procs and /proc/PID/cgroup. They must accept
// any bytes without fault; what they return is not judged.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "process/cgroup.h"
#include "process/proc_stat.h"
#include "process/process_identity.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warden::process;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  warden::Result<ProcStat> stat = ParseProcStat(text);
  if (stat.ok()) (void)stat->exited();
  (void)ParseEnvironCookie(text);
  (void)ParseCgroupEvents(text);
  (void)ParseCgroupProcs(text);
  (void)ProcCgroupNamesGroup(text, "/sys/fs/cgroup/warden/node-4000-1");
  (void)ProcCgroupNamesGroup(text, "");
  return 0;
}

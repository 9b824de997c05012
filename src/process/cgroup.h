// Cgroup v2 files that process control reads and writes. Thread-safe (plain file I/O).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace warden::process {

struct CgroupEvents {
  bool populated = false;  // some live process is in the group or below
  bool frozen = false;     // the freezer has taken effect
};

// Parses the text of a cgroup.events file ("populated 1\nfrozen 0\n").
CgroupEvents ParseCgroupEvents(std::string_view text);

// Parses the text of a cgroup.procs file: the pids, one a line. Whatever is not a number is
// skipped.
std::vector<pid_t> ParseCgroupProcs(std::string_view text);

// Whether `text`, a /proc/PID/cgroup file, puts the process in `group` (an absolute path
// under the cgroup2 mount): its cgroup v2 line "0::/PATH" has a PATH that `group` ends with.
bool ProcCgroupNamesGroup(std::string_view text, std::string_view group);

// Reads <group>/cgroup.events. NotFound when the group is gone.
Result<CgroupEvents> ReadCgroupEvents(const std::filesystem::path& group);

// Reads an open cgroup.events descriptor from its start (kernfs regenerates it on every read
// at offset 0): one system call instead of open, read and close.
Result<CgroupEvents> ReadCgroupEvents(int events_fd);

// Reads <group>/cgroup.procs: the member pids (empty when the group is empty).
Result<std::vector<pid_t>> ReadCgroupProcs(const std::filesystem::path& group);

// One member of a group or of a group below it.
struct CgroupMember {
  pid_t pid = 0;
  std::filesystem::path group;  // the group whose cgroup.procs listed it
};

// Reads the cgroup.procs of <group> and of every group below it: a node may make groups of
// its own inside the one it was given, and its processes there are still its own. NotFound
// when <group> is gone; a group below that vanishes meanwhile is skipped.
Result<std::vector<CgroupMember>> ReadCgroupTreeProcs(const std::filesystem::path& group);

// Removes <group> and every group below it, deepest first. Returns 0, or the errno of the
// first rmdir that failed (EBUSY: a group still has members). A missing group is not an
// error.
int RemoveCgroupTree(const std::filesystem::path& group);

// Whether process `pid` is in cgroup `group` (an absolute path under the cgroup2 mount), per
// /proc/PID/cgroup. Used after pidfd_open of a pid read from cgroup.procs: the pidfd pins
// the process, so a pid recycled in between is caught here.
bool ProcessInCgroup(pid_t pid, const std::filesystem::path& group);

// Writes `value` to <group>/<file> (cgroup.kill, cgroup.freeze, ...).
Status WriteCgroupFile(const std::filesystem::path& group, std::string_view file,
                       std::string_view value);

}  // namespace warden::process

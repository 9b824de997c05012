#include "process/cgroup.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <string>

#include "process/unique_fd.h"

namespace warden::process {
namespace {

Result<std::string> ReadWhole(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    if (err == ENOENT) return Status::NotFound(path.string() + " does not exist");
    return Status::FromErrno("open " + path.string(), err);
  }
  std::string text;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("read " + path.string(), errno);
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

}  // namespace

CgroupEvents ParseCgroupEvents(std::string_view text) {
  CgroupEvents events;
  events.populated = text.find("populated 1") != std::string_view::npos;
  events.frozen = text.find("frozen 1") != std::string_view::npos;
  return events;
}

std::vector<pid_t> ParseCgroupProcs(std::string_view text) {
  std::vector<pid_t> pids;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    pid_t pid = 0;
    auto [next, ec] = std::from_chars(p, end, pid);
    if (ec == std::errc()) pids.push_back(pid);
    p = next;
    while (p < end && (*p < '0' || *p > '9')) ++p;
  }
  return pids;
}

bool ProcCgroupNamesGroup(std::string_view text, std::string_view group) {
  std::string_view rest = text;
  while (!rest.empty()) {
    std::string_view line = rest.substr(0, rest.find('\n'));
    rest.remove_prefix(std::min(rest.size(), line.size() + 1));
    if (line.substr(0, 4) != "0::/") continue;
    std::string_view path = line.substr(3);
    return path.size() > 1 && group.size() >= path.size() &&
           group.compare(group.size() - path.size(), path.size(), path) == 0;
  }
  return false;
}

Result<CgroupEvents> ReadCgroupEvents(const std::filesystem::path& group) {
  Result<std::string> text = ReadWhole(group / "cgroup.events");
  if (!text.ok()) return text.status();
  return ParseCgroupEvents(*text);
}

Result<CgroupEvents> ReadCgroupEvents(int events_fd) {
  char text[256];
  ssize_t n;
  do {
    n = ::pread(events_fd, text, sizeof text - 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == ENODEV || errno == ENOENT) return Status::NotFound("cgroup is gone");
    return Status::FromErrno("read cgroup.events", errno);
  }
  return ParseCgroupEvents(std::string_view(text, static_cast<size_t>(n)));
}

Result<std::vector<pid_t>> ReadCgroupProcs(const std::filesystem::path& group) {
  Result<std::string> text = ReadWhole(group / "cgroup.procs");
  if (!text.ok()) return text.status();
  return ParseCgroupProcs(*text);
}

namespace {

// The groups directly below `group` (its subdirectories).
std::vector<std::filesystem::path> ChildGroups(const std::filesystem::path& group) {
  std::vector<std::filesystem::path> children;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(group, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_directory(type_ec)) children.push_back(it->path());
  }
  return children;
}

void AddTreeProcs(const std::filesystem::path& group, int depth,
                  std::vector<CgroupMember>& members) {
  for (const auto& child : ChildGroups(group)) {
    Result<std::vector<pid_t>> pids = ReadCgroupProcs(child);
    if (!pids.ok()) continue;  // removed meanwhile
    for (pid_t pid : *pids) members.push_back({pid, child});
    // cgroup v2 nests at most as deep as cgroup.max.depth allows; a bound keeps a
    // pathological tree from recursing without end.
    if (depth < 32) AddTreeProcs(child, depth + 1, members);
  }
}

}  // namespace

Result<std::vector<CgroupMember>> ReadCgroupTreeProcs(const std::filesystem::path& group) {
  Result<std::vector<pid_t>> pids = ReadCgroupProcs(group);
  if (!pids.ok()) return pids.status();
  std::vector<CgroupMember> members;
  members.reserve(pids->size());
  for (pid_t pid : *pids) members.push_back({pid, group});
  AddTreeProcs(group, 1, members);
  return members;
}

int RemoveCgroupTree(const std::filesystem::path& group) {
  int first_error = 0;
  for (const auto& child : ChildGroups(group)) {
    int err = RemoveCgroupTree(child);
    if (err != 0 && first_error == 0) first_error = err;
  }
  if (::rmdir(group.c_str()) != 0 && errno != ENOENT && first_error == 0) first_error = errno;
  return first_error;
}

bool ProcessInCgroup(pid_t pid, const std::filesystem::path& group) {
  Result<std::string> text = ReadWhole("/proc/" + std::to_string(pid) + "/cgroup");
  return text.ok() && ProcCgroupNamesGroup(*text, group.string());
}

Status WriteCgroupFile(const std::filesystem::path& group, std::string_view file,
                       std::string_view value) {
  std::filesystem::path path = group / file;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("open " + path.string(), errno);
  ssize_t n;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Status::FromErrno("write " + path.string(), errno);
  return Status::Ok();
}

}  // namespace warden::process

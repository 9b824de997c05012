#include "process/containment.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>

namespace warden::process {
namespace {

// The daemon's own cgroup v2 group: the "0::/path" line of /proc/self/cgroup.
Result<std::string> OwnCgroup() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return Status::NotFound("no cgroup v2 entry in /proc/self/cgroup");
}

Status CheckCgroupRoot(const std::filesystem::path& root) {
  if (::mkdir(root.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::FromErrno("mkdir " + root.string(), errno);
  }
  // A probe group proves we may create groups there and that the kernel has what we use.
  std::filesystem::path probe = root / ("probe-" + std::to_string(::getpid()));
  if (::mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::FromErrno("mkdir " + probe.string(), errno);
  }
  bool has_kill = ::access((probe / "cgroup.kill").c_str(), W_OK) == 0;
  bool has_freeze = ::access((probe / "cgroup.freeze").c_str(), W_OK) == 0;
  bool has_procs = ::access((probe / "cgroup.procs").c_str(), W_OK) == 0;
  ::rmdir(probe.c_str());
  if (!has_kill || !has_freeze || !has_procs) {
    return Status::Unavailable(root.string() +
                               " lacks a writable cgroup.kill, cgroup.freeze or cgroup.procs");
  }
  return Status::Ok();
}

}  // namespace

std::string_view ContainmentModeName(ContainmentMode mode) {
  return mode == ContainmentMode::kCgroup ? "cgroup" : "pgroup";
}

Result<ContainmentOptions::Request> ParseContainmentRequest(std::string_view text) {
  if (text == "auto") return ContainmentOptions::Request::kAuto;
  if (text == "cgroup") return ContainmentOptions::Request::kCgroup;
  if (text == "pgroup") return ContainmentOptions::Request::kProcessGroup;
  return Status::InvalidArgument("containment must be auto, cgroup or pgroup, not '" +
                                 std::string(text) + "'");
}

Result<std::filesystem::path> FindCgroup2Mount() {
  // mountinfo: "id parent major:minor root mount-point options [optional...] - fstype ..."
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, devno, root, mount_point;
    head >> id >> parent >> devno >> root >> mount_point;
    if (!mount_point.empty()) return std::filesystem::path(mount_point);
  }
  return Status::NotFound("no cgroup2 file system in /proc/self/mountinfo");
}

Result<Containment> DetectContainment(const ContainmentOptions& options) {
  Containment result;
  if (options.request == ContainmentOptions::Request::kProcessGroup) {
    result.reason = "pgroup requested";
    return result;
  }
  Status status = Status::Ok();
  std::filesystem::path root = options.cgroup_root;
  if (root.empty()) {
    Result<std::filesystem::path> mount = FindCgroup2Mount();
    Result<std::string> own = OwnCgroup();
    if (!mount.ok()) {
      status = mount.status();
    } else if (!own.ok()) {
      status = own.status();
    } else {
      root = *mount / std::filesystem::path(*own).relative_path() / "warden";
    }
  }
  if (status.ok()) status = CheckCgroupRoot(root);
  if (status.ok()) {
    result.mode = ContainmentMode::kCgroup;
    result.cgroup_root = root.lexically_normal();
    result.reason = "writable cgroup v2 root " + result.cgroup_root.string();
    return result;
  }
  if (options.request == ContainmentOptions::Request::kCgroup) {
    return Status::Unavailable("cgroup containment unavailable: " + status.message());
  }
  result.reason = "no usable cgroup v2 root (" + status.message() + "); process groups";
  return result;
}

}  // namespace warden::process

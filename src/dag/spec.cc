#include "dag/spec.h"

#include <cmath>
#include <string>

namespace warden::dag {
namespace {

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string NodeField(size_t index, std::string_view field) {
  return "nodes[" + std::to_string(index) + "]." + std::string(field);
}

// execve() takes C strings: an embedded NUL would silently cut the value short.
bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

Status ValidateUser(const UserSpec& user, const std::string& path) {
  if (user.uid) {
    if (!user.name.empty())
      return Status::InvalidArgument(path + ": set a name or a uid, not both");
    // (uid_t)-1 means "no change" to setresuid(), never a real account.
    if (*user.uid == UINT32_MAX)
      return Status::InvalidArgument(path + ": uid must be below 4294967295");
    return Status::Ok();
  }
  if (user.name.empty()) return Status::InvalidArgument(path + ": must not be empty");
  for (char c : user.name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == ':' || c == '/' || c == 0x7f) {
      return Status::InvalidArgument(path + ": not a valid user name");
    }
  }
  return Status::Ok();
}

Status ValidateNode(const NodeSpec& node, size_t i) {
  if (!IsValidNodeId(node.id)) {
    return Status::InvalidArgument(NodeField(i, "id") +
                                   ": must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}");
  }
  if (node.argv.empty() || node.argv[0].empty()) {
    return Status::InvalidArgument(NodeField(i, "argv") +
                                   ": must be a non-empty array of strings, argv[0] non-empty");
  }
  for (size_t a = 0; a < node.argv.size(); ++a) {
    if (HasNul(node.argv[a])) {
      return Status::InvalidArgument(NodeField(i, "argv") + "[" + std::to_string(a) +
                                     "]: must not contain NUL");
    }
  }
  if (node.cwd.empty() || node.cwd[0] != '/' || HasNul(node.cwd)) {
    return Status::InvalidArgument(NodeField(i, "cwd") + ": must be an absolute path");
  }
  for (const auto& [name, value] : node.env) {
    if (name.empty() || name.find('=') != std::string::npos || HasNul(name)) {
      return Status::InvalidArgument(NodeField(i, "env") + ": variable name \"" + name +
                                     "\" must be non-empty, without '=' or NUL");
    }
    if (HasNul(value)) {
      return Status::InvalidArgument(NodeField(i, "env." + name) + ": must not contain NUL");
    }
  }
  if (node.timeout_ms > kMaxDurationMs) {
    return Status::InvalidArgument(NodeField(i, "timeoutMs") + ": too large");
  }
  if (node.grace_ms && *node.grace_ms > kMaxDurationMs) {
    return Status::InvalidArgument(NodeField(i, "graceMs") + ": too large");
  }
  if (!std::isfinite(node.cost_per_second_usd) || node.cost_per_second_usd < 0) {
    return Status::InvalidArgument(NodeField(i, "costPerSecondUsd") +
                                   ": must be a finite number >= 0");
  }
  if (node.user) WARDEN_RETURN_IF_ERROR(ValidateUser(*node.user, NodeField(i, "user")));
  return Status::Ok();
}

}  // namespace

std::string_view OnRecoveryName(OnRecovery on_recovery) {
  return on_recovery == OnRecovery::kResume ? "resume" : "fail";
}

std::string_view OnFailureName(OnFailure on_failure) {
  switch (on_failure) {
    case OnFailure::kStop:
      return "stop";
    case OnFailure::kContinue:
      return "continue";
  }
  return "stop";
}

bool IsValidNodeId(std::string_view id) {
  if (id.empty() || id.size() > 128 || !IsAsciiAlnum(id[0])) return false;
  for (char c : id.substr(1)) {
    if (!IsAsciiAlnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

uint64_t GraceMsInForce(std::optional<uint64_t> stop_request_grace_ms, const NodeSpec& node,
                        const ExecutionSpec& execution, uint64_t daemon_grace_ms) {
  if (stop_request_grace_ms) return *stop_request_grace_ms;
  if (node.grace_ms) return *node.grace_ms;
  if (execution.grace_ms) return *execution.grace_ms;
  return daemon_grace_ms;
}

Status ValidateSpecValues(const ExecutionSpec& spec, const SpecLimits& limits) {
  if (spec.request_id && spec.request_id->empty()) {
    return Status::InvalidArgument("requestId: must not be empty");
  }
  if (spec.max_parallel < 1) return Status::InvalidArgument("maxParallel: must be at least 1");
  if (spec.grace_ms && *spec.grace_ms > kMaxDurationMs) {
    return Status::InvalidArgument("graceMs: too large");
  }
  if (spec.timeout_ms > kMaxDurationMs) return Status::InvalidArgument("timeoutMs: too large");
  if (spec.nodes.empty()) return Status::InvalidArgument("nodes: must not be empty");
  if (spec.nodes.size() > limits.max_nodes) {
    return Status::InvalidArgument("nodes: " + std::to_string(spec.nodes.size()) +
                                   " nodes, over the limit of " + std::to_string(limits.max_nodes));
  }
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    WARDEN_RETURN_IF_ERROR(ValidateNode(spec.nodes[i], i));
  }
  return Status::Ok();
}

}  // namespace warden::dag

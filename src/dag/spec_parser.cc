#include "dag/spec_parser.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>

#include <boost/json.hpp>

#include "dag/dag.h"
#include "dag/strict_json.h"

namespace warden::dag {
namespace {

namespace json = boost::json;

constexpr std::array<std::string_view, 8> kExecutionFields = {
    "name", "requestId", "maxParallel", "graceMs", "timeoutMs", "onFailure", "onRecovery", "nodes"};
constexpr std::array<std::string_view, 10> kNodeFields = {
    "id",      "argv", "needs", "cwd", "env", "timeoutMs", "retries", "costPerSecondUsd",
    "graceMs", "user"};

// "got ..." part of a type error: numbers and booleans are shown, anything else is named.
std::string Got(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "got null";
    case json::kind::bool_:
    case json::kind::int64:
    case json::kind::uint64:
      return "got " + json::serialize(v);
    case json::kind::double_: {
      // Shortest form ("1.5"), not Boost's "1.5E0".
      char buffer[32];
      auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v.get_double());
      return "got " + (ec == std::errc() ? std::string(buffer, end) : json::serialize(v));
    }
    case json::kind::string:
      return "got a string";
    case json::kind::array:
      return "got an array";
    case json::kind::object:
      return "got an object";
  }
  return "got something else";
}

Status TypeError(const std::string& path, std::string_view expected, const json::value& v) {
  return Status::InvalidArgument(path + ": must be " + std::string(expected) + ", " + Got(v));
}

// The value of `key` in `object`, or nullptr when it is absent or null.
const json::value* Optional(const json::object& object, std::string_view key) {
  const json::value* v = object.if_contains(key);
  return (v == nullptr || v->is_null()) ? nullptr : v;
}

template <size_t N>
Status CheckKnownFields(const json::object& object, const std::array<std::string_view, N>& known,
                        const std::string& prefix) {
  for (const auto& member : object) {
    if (std::find(known.begin(), known.end(), member.key()) == known.end()) {
      return Status::InvalidArgument(prefix + std::string(member.key()) + ": unknown field");
    }
  }
  return Status::Ok();
}

Status ReadString(const json::value& v, const std::string& path, std::string* out) {
  if (!v.is_string()) return TypeError(path, "a string", v);
  *out = std::string(v.get_string());
  return Status::Ok();
}

// Accepts integers, and doubles with an integral value (1e3), in [0, max].
Status ReadUnsigned(const json::value& v, const std::string& path, uint64_t max, uint64_t* out) {
  constexpr std::string_view kExpected = "a non-negative integer";
  uint64_t n = 0;
  if (v.is_uint64()) {
    n = v.get_uint64();
  } else if (v.is_int64()) {
    if (v.get_int64() < 0) return TypeError(path, kExpected, v);
    n = static_cast<uint64_t>(v.get_int64());
  } else if (v.is_double()) {
    double d = v.get_double();
    // 2^64 as a double; anything at or above it does not fit.
    if (!(d >= 0) || d != std::floor(d) || d >= 18446744073709551616.0) {
      return TypeError(path, kExpected, v);
    }
    n = static_cast<uint64_t>(d);
  } else {
    return TypeError(path, kExpected, v);
  }
  if (n > max) {
    return Status::InvalidArgument(path + ": must be at most " + std::to_string(max) + ", " +
                                   Got(v));
  }
  *out = n;
  return Status::Ok();
}

Status ReadStringArray(const json::value& v, const std::string& path,
                       std::vector<std::string>* out) {
  if (!v.is_array()) return TypeError(path, "an array of strings", v);
  const json::array& array = v.get_array();
  out->clear();
  out->reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    if (!array[i].is_string()) {
      return TypeError(path + "[" + std::to_string(i) + "]", "a string", array[i]);
    }
    out->emplace_back(array[i].get_string());
  }
  return Status::Ok();
}

Status ReadUser(const json::value& v, const std::string& path, UserSpec* out) {
  if (v.is_string()) {
    std::string_view s = v.get_string();
    bool all_digits =
        !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!all_digits) {
      *out = UserSpec::ByName(std::string(s));
      return Status::Ok();
    }
    // A string of digits is a uid, as for chown(1).
    if (s.size() > 10 || std::stoull(std::string(s)) >= UINT32_MAX) {
      return Status::InvalidArgument(path + ": uid must be below 4294967295");
    }
    *out = UserSpec::ByUid(static_cast<uint32_t>(std::stoull(std::string(s))));
    return Status::Ok();
  }
  if (v.is_number()) {
    uint64_t uid = 0;
    WARDEN_RETURN_IF_ERROR(ReadUnsigned(v, path, UINT32_MAX - 1, &uid));
    *out = UserSpec::ByUid(static_cast<uint32_t>(uid));
    return Status::Ok();
  }
  return TypeError(path, "a user name or a uid", v);
}

Status ReadNode(const json::value& v, size_t index, NodeSpec* node) {
  const std::string prefix = "nodes[" + std::to_string(index) + "]";
  if (!v.is_object()) return TypeError(prefix, "an object", v);
  const json::object& object = v.get_object();
  WARDEN_RETURN_IF_ERROR(CheckKnownFields(object, kNodeFields, prefix + "."));

  const json::value* id = Optional(object, "id");
  if (id == nullptr) return Status::InvalidArgument(prefix + ".id: required");
  WARDEN_RETURN_IF_ERROR(ReadString(*id, prefix + ".id", &node->id));

  const json::value* argv = Optional(object, "argv");
  if (argv == nullptr || !argv->is_array() || argv->get_array().empty()) {
    return Status::InvalidArgument(prefix + ".argv: must be a non-empty array of strings");
  }
  WARDEN_RETURN_IF_ERROR(ReadStringArray(*argv, prefix + ".argv", &node->argv));

  if (const json::value* needs = Optional(object, "needs")) {
    WARDEN_RETURN_IF_ERROR(ReadStringArray(*needs, prefix + ".needs", &node->needs));
  }
  if (const json::value* cwd = Optional(object, "cwd")) {
    WARDEN_RETURN_IF_ERROR(ReadString(*cwd, prefix + ".cwd", &node->cwd));
  }
  if (const json::value* env = Optional(object, "env")) {
    if (!env->is_object()) return TypeError(prefix + ".env", "an object of strings", *env);
    for (const auto& member : env->get_object()) {
      std::string name(member.key());
      WARDEN_RETURN_IF_ERROR(ReadString(member.value(), prefix + ".env." + name, &node->env[name]));
    }
  }
  if (const json::value* timeout = Optional(object, "timeoutMs")) {
    WARDEN_RETURN_IF_ERROR(
        ReadUnsigned(*timeout, prefix + ".timeoutMs", kMaxDurationMs, &node->timeout_ms));
  }
  if (const json::value* retries = Optional(object, "retries")) {
    uint64_t n = 0;
    WARDEN_RETURN_IF_ERROR(ReadUnsigned(*retries, prefix + ".retries", UINT32_MAX, &n));
    node->retries = static_cast<uint32_t>(n);
  }
  if (const json::value* cost = Optional(object, "costPerSecondUsd")) {
    if (!cost->is_number()) return TypeError(prefix + ".costPerSecondUsd", "a number", *cost);
    node->cost_per_second_usd = cost->to_number<double>();
    if (!std::isfinite(node->cost_per_second_usd) || node->cost_per_second_usd < 0) {
      return TypeError(prefix + ".costPerSecondUsd", "a number >= 0", *cost);
    }
  }
  if (const json::value* grace = Optional(object, "graceMs")) {
    uint64_t n = 0;
    WARDEN_RETURN_IF_ERROR(ReadUnsigned(*grace, prefix + ".graceMs", kMaxDurationMs, &n));
    node->grace_ms = n;
  }
  if (const json::value* user = Optional(object, "user")) {
    UserSpec parsed;
    WARDEN_RETURN_IF_ERROR(ReadUser(*user, prefix + ".user", &parsed));
    node->user = std::move(parsed);
  }
  return Status::Ok();
}

uint32_t DefaultMaxParallel(const SpecLimits& limits) {
  if (limits.default_max_parallel > 0) return limits.default_max_parallel;
  return std::max(1u, std::thread::hardware_concurrency());
}

// Reads every field into `spec`, checking types and number ranges; values and the graph are
// checked afterwards by Dag::Build.
Status ReadExecution(const json::value& v, const SpecLimits& limits, ExecutionSpec* spec) {
  if (!v.is_object()) return TypeError("spec", "a JSON object", v);
  const json::object& object = v.get_object();
  WARDEN_RETURN_IF_ERROR(CheckKnownFields(object, kExecutionFields, ""));

  if (const json::value* name = Optional(object, "name")) {
    WARDEN_RETURN_IF_ERROR(ReadString(*name, "name", &spec->name.emplace()));
  }
  if (const json::value* request_id = Optional(object, "requestId")) {
    WARDEN_RETURN_IF_ERROR(ReadString(*request_id, "requestId", &spec->request_id.emplace()));
  }
  spec->max_parallel = DefaultMaxParallel(limits);
  if (const json::value* max_parallel = Optional(object, "maxParallel")) {
    uint64_t n = 0;
    WARDEN_RETURN_IF_ERROR(ReadUnsigned(*max_parallel, "maxParallel", UINT32_MAX, &n));
    spec->max_parallel = static_cast<uint32_t>(n);
  }
  if (const json::value* grace = Optional(object, "graceMs")) {
    WARDEN_RETURN_IF_ERROR(
        ReadUnsigned(*grace, "graceMs", kMaxDurationMs, &spec->grace_ms.emplace()));
  }
  if (const json::value* timeout = Optional(object, "timeoutMs")) {
    WARDEN_RETURN_IF_ERROR(ReadUnsigned(*timeout, "timeoutMs", kMaxDurationMs, &spec->timeout_ms));
  }
  if (const json::value* on_failure = Optional(object, "onFailure")) {
    if (on_failure->is_string() && on_failure->get_string() == "stop") {
      spec->on_failure = OnFailure::kStop;
    } else if (on_failure->is_string() && on_failure->get_string() == "continue") {
      spec->on_failure = OnFailure::kContinue;
    } else {
      return Status::InvalidArgument("onFailure: must be \"stop\" or \"continue\"");
    }
  }
  if (const json::value* on_recovery = Optional(object, "onRecovery")) {
    if (on_recovery->is_string() && on_recovery->get_string() == "fail") {
      spec->on_recovery = OnRecovery::kFail;
    } else if (on_recovery->is_string() && on_recovery->get_string() == "resume") {
      spec->on_recovery = OnRecovery::kResume;
    } else {
      return Status::InvalidArgument("onRecovery: must be \"fail\" or \"resume\"");
    }
  }

  const json::value* nodes = Optional(object, "nodes");
  if (nodes == nullptr) return Status::InvalidArgument("nodes: required");
  if (!nodes->is_array()) return TypeError("nodes", "an array of nodes", *nodes);
  const json::array& array = nodes->get_array();
  if (array.empty()) return Status::InvalidArgument("nodes: must not be empty");
  // Checked before reading so an oversized spec costs no more than its parse.
  if (array.size() > limits.max_nodes) {
    return Status::InvalidArgument("nodes: " + std::to_string(array.size()) +
                                   " nodes, over the limit of " + std::to_string(limits.max_nodes));
  }
  spec->nodes.resize(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    WARDEN_RETURN_IF_ERROR(ReadNode(array[i], i, &spec->nodes[i]));
  }
  return Status::Ok();
}

}  // namespace

Result<ExecutionSpec> ExecutionSpecFromJson(const json::value& json, const SpecLimits& limits) {
  ExecutionSpec spec;
  // std::bad_alloc is the only exception the reads above could raise; let nothing escape.
  try {
    WARDEN_RETURN_IF_ERROR(ReadExecution(json, limits, &spec));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("reading the spec: ") + e.what());
  }
  Result<Dag> dag = Dag::Build(std::move(spec), limits);
  if (!dag.ok()) return dag.status();
  return std::move(*dag).ReleaseSpec();
}

Result<ExecutionSpec> ParseExecutionSpec(std::string_view text, const SpecLimits& limits) {
  if (text.size() > limits.max_spec_bytes) {
    return Status::TooLarge("spec is " + std::to_string(text.size()) +
                            " bytes, over the limit of " + std::to_string(limits.max_spec_bytes));
  }
  // The document only lives until it is converted, so one arena holds all of it.
  json::monotonic_resource arena;
  Result<json::value> document = ParseStrictJson(text, &arena);
  if (!document.ok()) return document.status();
  return ExecutionSpecFromJson(*document, limits);
}

}  // namespace warden::dag

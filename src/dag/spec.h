// ExecutionSpec and NodeSpec: the DAG spec of api.md ("DAG spec") as plain C++ values.
//
// A spec is data only. `ParseExecutionSpec` (spec_parser.h) builds one from JSON,
// `ExecutionSpecToJson` (spec_writer.h) writes it back, and `Dag::Build` (dag.h) is the one
// gate that decides whether a spec is valid; `ValidateSpecValues` below is the per-field part
// of that gate, shared by the parser and by code that fills a spec in by hand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace warden::dag {

// Grace between SIGTERM and SIGKILL when nothing more specific says otherwise (api.md).
inline constexpr uint64_t kDefaultGraceMs = 2000;

// Largest value accepted for any duration in milliseconds (2^53 - 1: exact in a JSON double,
// far from overflowing a std::chrono::milliseconds when added to a clock reading).
inline constexpr uint64_t kMaxDurationMs = (uint64_t{1} << 53) - 1;

// What the execution does when a node fails for good (after its retries).
enum class OnFailure {
  kStop,      // "stop": stop the rest gracefully; the execution ends failed (default)
  kContinue,  // "continue": independent branches go on; dependents of the failed node skip
};

// "stop" or "continue", as written in a spec.
std::string_view OnFailureName(OnFailure on_failure);

// What crash recovery does with the execution once its orphans are terminated.
enum class OnRecovery {
  kFail,    // "fail": it ends failed with reason crash_recovery (default)
  kResume,  // "resume": succeeded nodes are kept, the rest run again as new attempts
};
// "fail" or "resume", as written in a spec.
std::string_view OnRecoveryName(OnRecovery on_recovery);

// The account a node runs as: a user name to resolve, or a numeric uid.
struct UserSpec {
  std::optional<uint32_t> uid;  // set: run as this uid (`name` is then empty)
  std::string name;             // uid unset: a non-empty user name to look up

  static UserSpec ByName(std::string name) { return {std::nullopt, std::move(name)}; }
  static UserSpec ByUid(uint32_t uid) { return {uid, {}}; }
  bool operator==(const UserSpec&) const = default;
};

// One vertex of the DAG: one command run as one process tree.
struct NodeSpec {
  std::string id;                          // matches [A-Za-z0-9][A-Za-z0-9_.-]{0,127}
  std::vector<std::string> argv;           // non-empty; argv[0] non-empty; never via a shell
  std::vector<std::string> needs;          // ids that must succeed first; no repeats, not self
  std::string cwd = "/";                   // absolute
  std::map<std::string, std::string> env;  // added to the daemon's environment
  uint64_t timeout_ms = 0;                 // per attempt; 0 = none
  uint32_t retries = 0;                    // extra attempts after a failure
  double cost_per_second_usd = 0;          // finite, >= 0
  std::optional<uint64_t> grace_ms;        // unset: the execution's grace applies
  std::optional<UserSpec> user;            // unset: the daemon's own user

  bool operator==(const NodeSpec&) const = default;
};

// One DAG execution as a client asked for it.
struct ExecutionSpec {
  std::optional<std::string> name;        // free text for humans
  std::optional<std::string> request_id;  // client-chosen idempotency key; non-empty if set
  uint32_t max_parallel = 1;              // >= 1; the parser fills in the CPU count if omitted
  std::optional<uint64_t> grace_ms;       // unset: the daemon's --grace-ms (default 2000)
  uint64_t timeout_ms = 0;                // whole execution, paused time excluded; 0 = none
  OnFailure on_failure = OnFailure::kStop;
  OnRecovery on_recovery = OnRecovery::kFail;
  std::vector<NodeSpec> nodes;  // non-empty; in spec order (the order ties are broken in)

  bool operator==(const ExecutionSpec&) const = default;
};

// Limits a spec must respect; configurable by the daemon.
struct SpecLimits {
  size_t max_nodes = 10'000;
  size_t max_spec_bytes = 4 * 1024 * 1024;  // over it: Status::TooLarge
  // maxParallel when the spec omits it; 0 means std::thread::hardware_concurrency() (>= 1).
  uint32_t default_max_parallel = 0;

  // No node or size limit: for specs that were accepted before (journal replay).
  static SpecLimits Unlimited() {
    SpecLimits limits;
    limits.max_nodes = SIZE_MAX;
    limits.max_spec_bytes = SIZE_MAX;
    return limits;
  }
};

// True if `id` matches [A-Za-z0-9][A-Za-z0-9_.-]{0,127}.
bool IsValidNodeId(std::string_view id);

// The grace in force for `node` of `execution` (api.md): the stop request's, else the
// node's, else the execution's, else the daemon's.
uint64_t GraceMsInForce(std::optional<uint64_t> stop_request_grace_ms, const NodeSpec& node,
                        const ExecutionSpec& execution, uint64_t daemon_grace_ms = kDefaultGraceMs);

// Checks every field's value on its own (ids, argv, cwd, env names, numbers, users, node
// count) — not the graph (unknown needs, duplicates, cycles: see Dag::Build). Returns
// InvalidArgument naming the field, e.g. `nodes[2].cwd: must be an absolute path`.
Status ValidateSpecValues(const ExecutionSpec& spec, const SpecLimits& limits);

}  // namespace warden::dag

// Parsing the DAG spec of api.md from JSON into an ExecutionSpec, with full validation.
#pragma once

#include <string_view>

#include <boost/json/value.hpp>

#include "base/status.h"
#include "dag/spec.h"

namespace warden::dag {

// Parses `text` (a JSON document) and validates it completely: fields, types, values and the
// graph (through Dag::Build). Omitted fields take their api.md defaults; `maxParallel` takes
// `limits.default_max_parallel` (the CPU count unless set). JSON `null` counts as omitted for
// optional fields. Never throws. Returns:
//   TooLarge        if text is longer than limits.max_spec_bytes;
//   InvalidArgument naming the place: `invalid JSON at line 3, column 7: syntax error`,
//                   `nodes[2].argv: must be a non-empty array of strings`,
//                   `nodes[0].colour: unknown field`, `node "b": needs unknown node "zz"`,
//                   `cycle: a -> b -> c -> a`, `invalid JSON at line 4, column 9: duplicate
//                   key "needs"`, ...
Result<ExecutionSpec> ParseExecutionSpec(std::string_view text, const SpecLimits& limits = {});

// As ParseExecutionSpec, from an already parsed document (e.g. the spec journaled in
// `execution.created`, written by ExecutionSpecToJson). No size limit is applied. To reload a
// spec that was accepted earlier, pass SpecLimits::Unlimited(): a limit lowered since then
// must not make a journaled execution unreadable.
Result<ExecutionSpec> ExecutionSpecFromJson(const boost::json::value& json,
                                            const SpecLimits& limits = {});

}  // namespace warden::dag

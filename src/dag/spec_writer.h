// Writing an ExecutionSpec back to JSON, e.g. into the journal's `execution.created` event.
#pragma once

#include <boost/json/value.hpp>

#include "dag/spec.h"

namespace warden::dag {

// The spec as api.md's JSON. ExecutionSpecFromJson of the result gives back an equal spec:
// `maxParallel` is always written (resolved, so a reload never depends on the CPU count of
// the host that reloads it); other fields are written only when they differ from their
// default or are set. Never throws except std::bad_alloc.
boost::json::value ExecutionSpecToJson(const ExecutionSpec& spec);

}  // namespace warden::dag

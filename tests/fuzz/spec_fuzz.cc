// libFuzzer target: the DAG spec of api.md as POST /api/executions reads it. The input is
// the request body; it is parsed and validated under the daemon's limits (ParseExecutionSpec,
// which ends in Dag::Build). An accepted spec must build again, every node must be found by
// its id, and the spec written back (ExecutionSpecToJson, as the journal keeps it) must read
// back equal (spec_writer.h).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dag/dag.h"
#include "dag/spec_parser.h"
#include "dag/spec_writer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warden::dag;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const SpecLimits limits;  // the daemon's: ManagerOptions::spec_limits is never changed
  warden::Result<ExecutionSpec> spec = ParseExecutionSpec(text, limits);
  if (!spec.ok()) return 0;

  warden::Result<Dag> dag = Dag::Build(*spec, limits);
  if (!dag.ok()) __builtin_trap();
  for (NodeIndex i = 0; i < dag->node_count(); ++i) {
    if (dag->Find(dag->node(i).id) != i) __builtin_trap();
    for (NodeIndex need : dag->needs(i)) {
      if (need >= dag->node_count() || need == i) __builtin_trap();
    }
  }

  warden::Result<ExecutionSpec> again =
      ExecutionSpecFromJson(ExecutionSpecToJson(*spec), SpecLimits::Unlimited());
  if (!again.ok() || !(*again == *spec)) __builtin_trap();
  return 0;
}

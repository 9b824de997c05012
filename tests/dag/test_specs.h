// Small spec builders shared by the dag tests.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "dag/dag.h"
#include "dag/spec.h"

namespace warden::dag::testing {

inline NodeSpec Node(std::string id, std::vector<std::string> needs = {}) {
  NodeSpec node;
  node.id = std::move(id);
  node.argv = {"/bin/true"};
  node.needs = std::move(needs);
  return node;
}

inline ExecutionSpec Spec(std::vector<NodeSpec> nodes, uint32_t max_parallel = 100,
                          OnFailure on_failure = OnFailure::kStop) {
  ExecutionSpec spec;
  spec.max_parallel = max_parallel;
  spec.on_failure = on_failure;
  spec.nodes = std::move(nodes);
  return spec;
}

// `layers` layers of `width` nodes "L<layer>_<k>"; each node needs every node of the
// previous layer: (layers - 1) * width * width edges.
inline ExecutionSpec LayeredSpec(int layers, int width, uint32_t max_parallel) {
  std::vector<NodeSpec> nodes;
  for (int layer = 0; layer < layers; ++layer) {
    for (int k = 0; k < width; ++k) {
      std::vector<std::string> needs;
      if (layer > 0) {
        for (int p = 0; p < width; ++p) {
          needs.push_back("L" + std::to_string(layer - 1) + "_" + std::to_string(p));
        }
      }
      nodes.push_back(Node("L" + std::to_string(layer) + "_" + std::to_string(k), needs));
    }
  }
  return Spec(std::move(nodes), max_parallel);
}

// Builds the Dag of `spec`, which the test expects to be valid.
inline Dag MustBuild(ExecutionSpec spec) {
  Result<Dag> dag = Dag::Build(std::move(spec));
  if (!dag.ok()) throw std::runtime_error(dag.status().ToString());
  return std::move(*dag);
}

// As MustBuild, shared, as SchedulePlan takes it.
inline std::shared_ptr<const Dag> SharedDag(ExecutionSpec spec) {
  return std::make_shared<const Dag>(MustBuild(std::move(spec)));
}

}  // namespace warden::dag::testing

// Dag: a validated ExecutionSpec as a graph of node indices, ready for scheduling.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "dag/spec.h"

namespace warden::dag {

// A node's position in ExecutionSpec::nodes (0..n-1); the name every scheduling call uses.
using NodeIndex = uint32_t;

// Immutable after Build. Owns its spec. Edges are stored once each way, as index vectors
// (compressed rows), so walking a node's needs or dependents touches only those edges.
class Dag {
 public:
  // The one gate for spec validity: checks every value (ValidateSpecValues), then the graph.
  // Returns InvalidArgument naming the node: `node "a": duplicate id (nodes[0] and nodes[3])`,
  // `node "b": needs unknown node "zz"`, `node "a": needs itself`,
  // `node "a": needs "b" more than once`, or the cycle: `cycle: a -> b -> c -> a`, where each
  // arrow reads "needs" (long cycles are shortened with "..."). O(nodes + edges).
  static Result<Dag> Build(ExecutionSpec spec, const SpecLimits& limits = {});

  const ExecutionSpec& spec() const { return spec_; }
  // Gives the spec back, leaving this Dag empty (for a caller that only wanted validation).
  ExecutionSpec ReleaseSpec() &&;

  size_t node_count() const { return spec_.nodes.size(); }
  size_t edge_count() const { return needs_.size(); }
  const NodeSpec& node(NodeIndex i) const { return spec_.nodes[i]; }

  // The nodes `i` needs, in the order its `needs` lists them.
  std::span<const NodeIndex> needs(NodeIndex i) const { return Row(needs_offsets_, needs_, i); }
  // The nodes that need `i`, in spec order.
  std::span<const NodeIndex> dependents(NodeIndex i) const {
    return Row(dependents_offsets_, dependents_, i);
  }
  // The index of the node called `id`, or nullopt.
  std::optional<NodeIndex> Find(std::string_view id) const;

 private:
  Dag() = default;
  static std::span<const NodeIndex> Row(const std::vector<uint32_t>& offsets,
                                        const std::vector<NodeIndex>& flat, NodeIndex i) {
    return {flat.data() + offsets[i], flat.data() + offsets[i + 1]};
  }
  Status IndexNodes();
  Status ResolveNeeds();
  Status CheckAcyclic() const;

  ExecutionSpec spec_;
  std::unordered_map<std::string, NodeIndex> index_by_id_;
  // Row i of needs is needs_[needs_offsets_[i] .. needs_offsets_[i+1]); same for dependents.
  std::vector<uint32_t> needs_offsets_;
  std::vector<NodeIndex> needs_;
  std::vector<uint32_t> dependents_offsets_;
  std::vector<NodeIndex> dependents_;
};

}  // namespace warden::dag
